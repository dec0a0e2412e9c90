//! Dual-stack labs: every IPv6 router kind behaves as documented, proven
//! with plain UDP sockets and the routers' conntrack tables, as `nat.rs`
//! does for IPv4; IPv6-only hosts; and conntrack accounting and UDP
//! counters over IPv6.

mod common;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use common::{SILENCE, expect_silence, recv, recv_expect, send};
use natlab::require_lab;
use natlab::{Counts, Error, Flow, Host, Input, Ipv6Kind, Lab, Nat, Router};

const INSIDE_PORT: u16 = 40000;
/// An IPv6 header without extension headers plus a UDP header.
const IPV6_UDP_HEADERS: u64 = 40 + 8;

fn build(builder: natlab::LabBuilder) -> Lab {
    builder.build().expect("build lab")
}

fn addr(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|_| panic!("bad address {text}"))
}

/// The host's IPv6 address.
fn ip6(host: &Host) -> IpAddr {
    host.ip6()
        .unwrap_or_else(|| panic!("{} has no IPv6", host.name()))
}

/// The router's IPv6 WAN address.
fn wan6(router: &Router) -> IpAddr {
    router
        .wan_ip6()
        .unwrap_or_else(|| panic!("{} has no IPv6 WAN", router.name()))
}

/// A UDP socket on `host`'s IPv6 address.
fn bind6(host: &Host, port: u16) -> UdpSocket {
    host.bind_udp(addr(ip6(host), port)).expect("bind IPv6")
}

/// The conntrack entry of the flow from `inside` to `remote`.
fn flow(router: &Router, inside: SocketAddr, remote: SocketAddr) -> Flow {
    let flows = router.conntrack().expect("conntrack");
    flows
        .iter()
        .find(|flow| flow.original.src == inside && flow.original.dst == remote)
        .copied()
        .unwrap_or_else(|| panic!("no flow {inside} -> {remote} in {flows:#?}"))
}

/// Reads a sysctl inside `host`'s namespace.
fn sysctl(host: &Host, key: &str) -> String {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    host.run(|| std::fs::read_to_string(&path))
        .expect("enter namespace")
        .unwrap_or_else(|error| panic!("{path}: {error}"))
        .trim()
        .to_owned()
}

#[test]
fn dual_stack_labs_give_every_node_its_documented_ipv6_addresses() {
    require_lab!();
    let lab = build(
        Lab::builder()
            .router("a", Nat::PortRestricted)
            .ipv6(Ipv6Kind::Masquerade)
            .router("b", Nat::Symmetric)
            .ipv6(Ipv6Kind::Firewall)
            .hosts(2)
            .router("c", Nat::PortRestricted) // IPv4 hosts only
            .router("d", Nat::PortRestricted)
            .ipv6(Ipv6Kind::MasqueradeFullyRandom)
            .ipv6_only()
            .public_host("p"),
    );
    assert!(lab.dual_stack());
    let relay = lab.relay();
    assert_eq!(
        relay.ips(),
        [
            ip("203.0.113.10"),
            ip("203.0.113.11"),
            ip("2001:db8:113::10"),
            ip("2001:db8:113::11")
        ]
    );
    assert_eq!(relay.ip(), ip("203.0.113.10"), "IPv4 stays primary");
    assert_eq!(
        lab.host("p").ips(),
        [ip("203.0.113.12"), ip("2001:db8:113::12")]
    );
    for (name, wan) in [("a", "::1"), ("b", "::2"), ("c", "::3"), ("d", "::4")] {
        let expected = ip(&format!("2001:db8:100{wan}"));
        assert_eq!(lab.router(name).wan_ip6(), Some(expected), "{name}");
    }
    assert_eq!(lab.host("a0").ips(), [ip("10.1.0.10"), ip("fd00:10:1::10")]);
    assert_eq!(lab.router("a").lan_ip6(), Some(ip("fd00:10:1::1")));
    assert_eq!(lab.router("a").ipv6(), Some(Ipv6Kind::Masquerade));
    assert_eq!(lab.host("b1").ip6(), Some(ip("2001:db8:1:2::11")));
    assert_eq!(lab.host("c0").ips(), [ip("10.3.0.10")]);
    assert_eq!(lab.router("c").ipv6(), None);
    assert_eq!(
        sysctl(lab.host("c0"), "net.ipv6.conf.all.disable_ipv6"),
        "1"
    );

    // An IPv6-only host: no IPv4 address, no IPv4 route.
    let (router_d, d0) = (lab.router("d"), lab.host("d0"));
    assert!(router_d.ipv6_only() && !lab.router("a").ipv6_only());
    assert_eq!(d0.ips(), [ip("fd00:10:4::10")]);
    assert_eq!((d0.ip(), d0.ip4()), (ip("fd00:10:4::10"), None));
    assert_eq!(router_d.lan_ip(), ip("fd00:10:4::1"));
    let v4 = d0.bind_udp(([0, 0, 0, 0], 0)).expect("bind IPv4");
    let error = v4
        .send_to(b"x", addr(relay.ip(), 5000))
        .expect_err("no IPv4 route");
    assert_eq!(error.kind(), ErrorKind::NetworkUnreachable, "{error}");

    // Every IPv6 host reaches the relay over IPv6.
    let server = bind6(relay, 5000);
    for name in ["p", "a0", "b0", "d0"] {
        let socket = bind6(lab.host(name), INSIDE_PORT);
        send(&socket, name.as_bytes(), addr(ip6(relay), 5000));
        let (payload, _) = recv_expect(&server, name);
        assert_eq!(payload, name.as_bytes());
    }
}

#[test]
fn ipv4_only_labs_keep_ipv6_disabled_everywhere() {
    require_lab!();
    let lab = build(Lab::builder().router("a", Nat::PortRestricted));
    assert!(!lab.dual_stack());
    assert_eq!(lab.relay().ip6(), None);
    assert_eq!(lab.router("a").wan_ip6(), None);
    assert_eq!(lab.router("a").lan_ip6(), None);
    for host in [lab.relay(), lab.host("a0")] {
        assert_eq!(sysctl(host, "net.ipv6.conf.all.disable_ipv6"), "1");
        assert!(host.ips().iter().all(IpAddr::is_ipv4), "{:?}", host.ips());
    }
}

#[test]
fn the_builder_rejects_ipv6_only_without_an_ipv6_kind() {
    require_lab!();
    let error = Lab::builder()
        .ipv6(Ipv6Kind::Firewall)
        .router("a", Nat::PortRestricted)
        .ipv6_only()
        .build()
        .expect_err("invalid");
    let Error::Config(message) = &error else {
        panic!("unexpected error {error}");
    };
    for part in ["`ipv6` must follow a `router`", "has no IPv6 kind"] {
        assert!(message.contains(part), "{part:?} missing from {message}");
    }
}

#[test]
fn ipv6_firewall_keeps_the_global_address_and_drops_unsolicited_inbound() {
    require_lab!();
    let lab = build(
        Lab::builder()
            .router("fw", Nat::PortRestricted)
            .ipv6(Ipv6Kind::Firewall),
    );
    let (relay, host) = (lab.relay(), lab.host("fw0"));
    let remote = addr(ip6(relay), 5000);
    let relay_main = relay.bind_udp(remote).expect("bind");
    let relay_other = relay.bind_udp(addr(ip6(relay), 5001)).expect("bind");
    let inside = bind6(host, INSIDE_PORT);
    let public = addr(ip6(host), INSIDE_PORT);
    assert_eq!(public.ip(), ip("2001:db8:1:1::10"));

    send(&relay_main, b"early", public);
    expect_silence(&inside, "unsolicited inbound");

    send(&inside, b"hello", remote);
    let (_, seen) = recv_expect(&relay_main, "outbound");
    assert_eq!(seen, public, "no translation");
    let flow = flow(lab.router("fw"), public, remote);
    assert_eq!(flow.external(), public, "{flow:?}");
    send(&relay_main, b"reply", public);
    assert_eq!(recv_expect(&inside, "reply").1, remote);
    send(&relay_other, b"other", public);
    expect_silence(&inside, "other remote port");
}

#[test]
fn nat66_masquerade_keeps_the_port_maps_endpoint_independently_and_filters_by_address_and_port() {
    require_lab!();
    let lab = build(
        Lab::builder()
            .router("m", Nat::PortRestricted)
            .ipv6(Ipv6Kind::Masquerade)
            .public_host("p"),
    );
    let (relay, router, host) = (lab.relay(), lab.router("m"), lab.host("m0"));
    let first = addr(relay.ips()[2], 5000);
    let second = addr(relay.ips()[3], 5000);
    let relay_first = relay.bind_udp(first).expect("bind");
    let relay_second = relay.bind_udp(second).expect("bind");
    let same_ip_other_port = relay.bind_udp(addr(first.ip(), 5001)).expect("bind");
    let stranger = bind6(lab.host("p"), 5000);
    let inside = bind6(host, INSIDE_PORT);
    let external = addr(wan6(router), INSIDE_PORT);

    send(&inside, b"one", first);
    send(&inside, b"two", second);
    let (_, seen_first) = recv_expect(&relay_first, "first destination");
    let (_, seen_second) = recv_expect(&relay_second, "second destination");
    assert_eq!(seen_first, external, "source port kept");
    assert_eq!(seen_second, external, "same mapping for both destinations");
    let inside_addr = addr(ip6(host), INSIDE_PORT);
    assert!(inside_addr.ip().to_string().starts_with("fd00:10:"));
    assert_eq!(flow(router, inside_addr, first).external(), external);
    assert_eq!(flow(router, inside_addr, second).external(), external);

    send(&relay_first, b"reply", external);
    let (payload, from) = recv_expect(&inside, "reply from a contacted endpoint");
    assert_eq!((payload.as_slice(), from), (&b"reply"[..], first));
    send(&same_ip_other_port, b"other port", external);
    expect_silence(&inside, "same IP, other port");
    send(&stranger, b"stranger", external);
    expect_silence(&inside, "an address never contacted");
}

#[test]
fn nat66_fully_random_maps_each_destination_to_its_own_port() {
    require_lab!();
    let lab = build(
        Lab::builder()
            .router("s", Nat::PortRestricted)
            .ipv6(Ipv6Kind::MasqueradeFullyRandom),
    );
    let (relay, router, host) = (lab.relay(), lab.router("s"), lab.host("s0"));
    let first = addr(relay.ips()[2], 5000);
    let second = addr(relay.ips()[3], 5000);
    let relay_first = relay.bind_udp(first).expect("bind");
    let relay_second = relay.bind_udp(second).expect("bind");
    let stranger = relay.bind_udp(addr(first.ip(), 5001)).expect("bind");
    let inside = bind6(host, INSIDE_PORT);

    send(&inside, b"one", first);
    send(&inside, b"two", second);
    let (_, seen_first) = recv_expect(&relay_first, "first destination");
    let (_, seen_second) = recv_expect(&relay_second, "second destination");
    assert_eq!(seen_first.ip(), wan6(router));
    assert_eq!(seen_second.ip(), wan6(router));
    assert_ne!(
        seen_first.port(),
        seen_second.port(),
        "mapping is per destination"
    );
    let inside_addr = addr(ip6(host), INSIDE_PORT);
    assert_eq!(flow(router, inside_addr, first).external(), seen_first);
    assert_eq!(flow(router, inside_addr, second).external(), seen_second);

    send(&stranger, b"stranger", seen_first);
    expect_silence(&inside, "unsolicited inbound to a live mapping");
    send(&relay_first, b"reply", seen_first);
    assert_eq!(recv_expect(&inside, "reply").1, first);
}

/// Sends punch packets both ways (A first) for up to 20 rounds, until each
/// side has heard the other; returns whom each heard from.
fn punch(
    a: &UdpSocket,
    a_public: SocketAddr,
    b: &UdpSocket,
    b_public: SocketAddr,
) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let (mut a_heard, mut b_heard) = (None, None);
    for _ in 0..20 {
        send(a, b"punch from a", b_public);
        send(b, b"punch from b", a_public);
        if let Some((_, from)) = recv(a, Duration::from_millis(50)) {
            a_heard = Some(from);
        }
        if let Some((_, from)) = recv(b, Duration::from_millis(50)) {
            b_heard = Some(from);
        }
        if a_heard.is_some() && b_heard.is_some() {
            break;
        }
    }
    (a_heard, b_heard)
}

#[test]
fn a_simultaneous_punch_between_a_nat66_host_and_a_firewalled_host_keeps_both_ports() {
    require_lab!();
    let lab = build(
        Lab::builder()
            .router("a", Nat::PortRestricted)
            .ipv6(Ipv6Kind::Masquerade)
            .router("b", Nat::PortRestricted)
            .ipv6(Ipv6Kind::Firewall),
    );
    let (a0, b0) = (lab.host("a0"), lab.host("b0"));
    let a = bind6(a0, INSIDE_PORT);
    let b = bind6(b0, INSIDE_PORT);
    let a_public = addr(wan6(lab.router("a")), INSIDE_PORT);
    let b_public = addr(ip6(b0), INSIDE_PORT);

    let (a_heard, b_heard) = punch(&a, a_public, &b, b_public);
    assert_eq!(a_heard, Some(b_public), "a heard b at its global address");
    assert_eq!(b_heard, Some(a_public), "b heard a at its router's address");
    let a_inside = addr(ip6(a0), INSIDE_PORT);
    let flow_a = flow(lab.router("a"), a_inside, b_public);
    assert_eq!(flow_a.external(), a_public, "a's mapping kept its port");
    let flow_b = flow(lab.router("b"), b_public, a_public);
    assert_eq!(flow_b.external(), b_public, "{flow_b:?}");
}

#[test]
fn an_ipv6_only_host_and_a_dual_stack_host_punch_over_ipv6() {
    require_lab!();
    let lab = build(
        Lab::builder()
            .router("a", Nat::PortRestricted)
            .ipv6(Ipv6Kind::Masquerade)
            .ipv6_only()
            .router("b", Nat::PortRestricted)
            .ipv6(Ipv6Kind::Masquerade),
    );
    let (a0, b0) = (lab.host("a0"), lab.host("b0"));
    assert_eq!(a0.ip4(), None);
    assert!(b0.ip4().is_some() && b0.ip6().is_some());
    let a = bind6(a0, INSIDE_PORT);
    let b = bind6(b0, INSIDE_PORT);
    let a_public = addr(wan6(lab.router("a")), INSIDE_PORT);
    let b_public = addr(wan6(lab.router("b")), INSIDE_PORT);

    let (a_heard, b_heard) = punch(&a, a_public, &b, b_public);
    assert_eq!(a_heard, Some(b_public));
    assert_eq!(b_heard, Some(a_public));
    let flow_b = flow(lab.router("b"), addr(ip6(b0), INSIDE_PORT), a_public);
    assert_eq!(flow_b.external(), b_public, "{flow_b:?}");
}

/// Sets the unicast hop limit of an IPv6 socket (IPv6's TTL).
fn set_hop_limit(socket: &UdpSocket, hops: i32) {
    nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::Ipv6Ttl, &hops)
        .expect("IPV6_UNICAST_HOPS");
}

#[test]
fn hop_limit_2_leaves_the_own_router_and_dies_before_the_far_one_over_ipv6_too() {
    require_lab!();
    let lab = build(
        Lab::builder()
            .router("a", Nat::PortRestricted)
            .ipv6(Ipv6Kind::Masquerade)
            .router("b", Nat::PortRestricted)
            .ipv6(Ipv6Kind::Masquerade)
            .input(Input::Accept),
    );
    let (router_a, router_b, host) = (lab.router("a"), lab.router("b"), lab.host("a0"));
    let far = addr(wan6(router_b), INSIDE_PORT);
    let entries = |router: &Router, src: SocketAddr| {
        router
            .conntrack()
            .expect("conntrack")
            .iter()
            .filter(|flow| flow.original.src == src && flow.original.dst == far)
            .count()
    };
    let mut outcome = Vec::new();
    for hops in 1..=3_u16 {
        let port = 41000 + hops;
        let socket = bind6(host, port);
        set_hop_limit(&socket, i32::from(hops));
        send(&socket, b"how far", far);
        std::thread::sleep(Duration::from_millis(30));
        let left = entries(router_a, addr(ip6(host), port)) == 1;
        let reached = entries(router_b, addr(wan6(router_a), port)) == 1;
        outcome.push((hops, left, reached));
    }
    assert_eq!(
        outcome,
        [(1, false, false), (2, true, false), (3, true, true)],
        "(hop limit, left its own router, reached the far router)"
    );
}

#[test]
fn open_ipv6_routers_answer_unsolicited_packets_with_icmpv6_port_unreachable() {
    require_lab!();
    let kinds = [
        Ipv6Kind::Firewall,
        Ipv6Kind::Masquerade,
        Ipv6Kind::MasqueradeFullyRandom,
    ];
    let mut builder = Lab::builder();
    for (index, kind) in kinds.into_iter().enumerate() {
        for (input, tag) in [(Input::Accept, "open"), (Input::Drop, "shut")] {
            builder = builder
                .router(format!("{tag}{index}x"), Nat::PortRestricted)
                .ipv6(kind)
                .input(input);
        }
    }
    let lab = build(builder);
    let relay = lab.relay();
    for router in lab.routers() {
        let socket = bind6(relay, 0);
        let target = addr(wan6(router), INSIDE_PORT);
        socket.connect(target).expect("connect");
        socket.send(b"unsolicited").expect("send");
        socket.set_read_timeout(Some(SILENCE)).expect("timeout");
        let error = socket
            .recv(&mut [0; 64])
            .expect_err("no datagram comes back");
        let from = socket.local_addr().expect("local address");
        let tracked: Vec<Flow> = router
            .conntrack()
            .expect("conntrack")
            .into_iter()
            .filter(|flow| flow.original.src == from && flow.original.dst == target)
            .collect();
        let kind = router.ipv6().expect("IPv6 kind");
        if router.accepts_unsolicited() {
            assert_eq!(
                error.kind(),
                ErrorKind::ConnectionRefused,
                "{kind}, open: ICMPv6 port unreachable expected, got {error}"
            );
            assert_eq!(tracked.len(), 1, "{kind}, open: {tracked:?}");
            assert!(!tracked[0].replied, "{kind}: {:?}", tracked[0]);
        } else {
            assert!(
                matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
                "{kind}, dropping: silence expected, got {error}"
            );
            assert!(tracked.is_empty(), "{kind}, dropping: {tracked:?}");
        }
        // Either way the router forwards its host's traffic and the replies.
        let host = &router.hosts()[0];
        let inside = bind6(host, INSIDE_PORT);
        let server = bind6(relay, 0);
        let server_addr = server.local_addr().expect("local address");
        send(&inside, b"out", server_addr);
        let (_, seen) = recv_expect(&server, "outbound through the router");
        send(&server, b"back", seen);
        assert_eq!(recv_expect(&inside, "reply").1, server_addr, "{kind}");
    }

    // An open firewall still filters what it forwards to its hosts.
    let host = lab.host("open0x0");
    let inside = bind6(host, INSIDE_PORT);
    let stranger = bind6(relay, 5000);
    send(&stranger, b"unsolicited", addr(ip6(host), INSIDE_PORT));
    expect_silence(&inside, "unsolicited inbound behind an open firewall");
}

#[test]
fn ipv6_flows_carry_packet_and_byte_counts_and_udp_counters_count_ipv6_headers() {
    require_lab!();
    let lab = build(
        Lab::builder()
            .router("a", Nat::PortRestricted)
            .ipv6(Ipv6Kind::Masquerade),
    );
    let (relay, router) = (lab.relay(), lab.router("a"));
    let counter = relay.udp_counter().expect("counter");
    let remote = addr(ip6(relay), 5000);
    let server = relay.bind_udp(remote).expect("bind");
    let inside = bind6(lab.host("a0"), INSIDE_PORT);
    for _ in 0..4 {
        send(&inside, &[6; 100], remote);
        recv_expect(&server, "datagram");
    }
    // One IPv4 datagram too: counted apart from the IPv6 ones.
    let v4 = lab.host("a0").bind_udp(([0, 0, 0, 0], 0)).expect("bind");
    let v4_server = relay.bind_udp((relay.ip(), 5000)).expect("bind");
    send(&v4, &[4; 100], addr(relay.ip(), 5000));
    recv_expect(&v4_server, "IPv4 datagram");

    let ipv6_counts = Counts {
        packets: 4,
        bytes: 4 * (100 + IPV6_UDP_HEADERS),
    };
    let ipv4_counts = Counts {
        packets: 1,
        bytes: 100 + 20 + 8,
    };
    let flow = flow(router, addr(ip6(lab.host("a0")), INSIDE_PORT), remote);
    assert_eq!(flow.external(), addr(wan6(router), INSIDE_PORT));
    assert_eq!(flow.original_counts, Some(ipv6_counts));
    assert_eq!(flow.reply_counts, Some(Counts::default()));
    assert_eq!(
        counter.by_source().expect("by source"),
        BTreeMap::from([(router.wan_ip(), ipv4_counts), (wan6(router), ipv6_counts)])
    );
    assert_eq!(
        counter.read().expect("read"),
        Counts {
            packets: 5,
            bytes: ipv6_counts.bytes + ipv4_counts.bytes
        }
    );

    let flows = router.conntrack().expect("conntrack");
    assert!(flows.iter().any(|flow| flow.original.src.is_ipv6()));
    assert!(flows.iter().any(|flow| flow.original.src.is_ipv4()));
    router.flush_conntrack().expect("flush");
    let left = router.conntrack().expect("conntrack");
    assert!(left.is_empty(), "both families flushed: {left:?}");
}
