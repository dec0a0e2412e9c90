//! Dual-stack labs: every IPv6 router kind behaves as documented, proven
//! with plain UDP sockets and the routers' conntrack tables, as `nat.rs`
//! does for IPv4; IPv6-only hosts; and conntrack accounting and UDP
//! counters over IPv6.

mod common;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use common::{
    ANY, Behind, Heard, MAIN, OTHER_IP, OTHER_PORT, addr, assert_blocked, assert_delivered, bind,
    bind6, build, flow, ip6, mapping, probe, punch, recv_expect, send, wan6,
};
use natlab::require_lab;
use natlab::{Counts, Error, Host, Input, Ipv6Kind, Lab, Nat, Router};

const INSIDE_PORT: u16 = 40000;
/// An IPv6 header without extension headers plus a UDP header.
const IPV6_UDP_HEADERS: u64 = 40 + 8;

fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|_| panic!("bad address {text}"))
}

/// A lab with port-restricted routers named and given IPv6 as `routers`
/// says.
fn lab(routers: &[(&str, Ipv6Kind)]) -> Lab {
    let mut builder = Lab::builder();
    for &(name, kind) in routers {
        builder = builder.router(name, Nat::PortRestricted).ipv6(kind);
    }
    build(builder)
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
    let lab = lab(&[("fw", Ipv6Kind::Firewall)]);
    let t = Behind::ipv6(&lab, "fw0", INSIDE_PORT);
    assert_eq!(t.inside_addr.ip(), ip("2001:db8:1:1::10"));
    t.assert_stateful_firewall();
    let flow = flow(t.router, t.inside_addr, t.remotes.addrs[MAIN]);
    assert_eq!(flow.external(), t.inside_addr, "{flow:?}");
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
    let t = Behind::ipv6(&lab, "m0", INSIDE_PORT);
    let external = t.preserved();

    // The relay's two IPv6 addresses, both at port 5000.
    let seen = t.mappings([MAIN, OTHER_IP]);
    assert_eq!(seen, [external; 2], "source port kept, one mapping");
    assert!(t.inside_addr.ip().to_string().starts_with("fd00:10:"));
    assert_eq!(t.tracked([MAIN, OTHER_IP]), [external; 2]);

    t.assert_delivered(MAIN, external, "reply from a contacted endpoint");
    t.assert_blocked(OTHER_PORT, external, "same IP, other port");
    let stranger = bind6(lab.host("p"), 5000);
    assert_blocked(&stranger, external, &t.inside, "an address never contacted");
}

#[test]
fn nat66_fully_random_maps_each_destination_to_its_own_port() {
    require_lab!();
    let lab = lab(&[("s", Ipv6Kind::MasqueradeFullyRandom)]);
    Behind::ipv6(&lab, "s0", INSIDE_PORT).assert_maps_per_destination();
}

/// Where `host`'s IPv6 socket on the inside port is, on the host.
fn inside6(host: &Host) -> SocketAddr {
    addr(ip6(host), INSIDE_PORT)
}

/// The router's IPv6 WAN address at the inside port: where NAT66 puts a
/// host's socket on that port.
fn public6(router: &Router) -> SocketAddr {
    addr(wan6(router), INSIDE_PORT)
}

/// Hosts `a0` and `b0` punch (up to 20 rounds) from their IPv6 addresses
/// at the inside port to each other's advertised address.
fn punch6(lab: &Lab, a_public: SocketAddr, b_public: SocketAddr) -> Heard {
    let a = bind6(lab.host("a0"), INSIDE_PORT);
    let b = bind6(lab.host("b0"), INSIDE_PORT);
    punch(&a, a_public, &b, b_public, 20)
}

#[test]
fn a_simultaneous_punch_between_a_nat66_host_and_a_firewalled_host_keeps_both_ports() {
    require_lab!();
    let lab = lab(&[("a", Ipv6Kind::Masquerade), ("b", Ipv6Kind::Firewall)]);
    let (a_public, b_public) = (public6(lab.router("a")), inside6(lab.host("b0")));

    let (a_heard, b_heard) = punch6(&lab, a_public, b_public);
    assert_eq!(a_heard, Some(b_public), "a heard b at its global address");
    assert_eq!(b_heard, Some(a_public), "b heard a at its router's address");
    let flow_a = flow(lab.router("a"), inside6(lab.host("a0")), b_public);
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
    let (a_public, b_public) = (public6(lab.router("a")), public6(lab.router("b")));

    let (a_heard, b_heard) = punch6(&lab, a_public, b_public);
    assert_eq!(a_heard, Some(b_public));
    assert_eq!(b_heard, Some(a_public));
    let flow_b = flow(lab.router("b"), inside6(b0), a_public);
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
    let far = public6(router_b);
    let entries =
        |router: &Router, src: SocketAddr| router.flows(src, far).expect("conntrack").len();
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
        let target = public6(router);
        let (from, answer) = probe(relay, target);
        let error = answer.expect_err("no datagram comes back");
        let tracked = router.flows(from, target).expect("conntrack");
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
        let inside = bind6(&router.hosts()[0], INSIDE_PORT);
        let server = bind6(relay, 0);
        let seen = mapping(&inside, &server);
        assert_delivered(&server, seen, &inside, &format!("{kind}: reply"));
    }

    // An open firewall still filters what it forwards to its hosts.
    let host = lab.host("open0x0");
    let inside = bind6(host, INSIDE_PORT);
    let stranger = bind6(relay, 5000);
    let what = "unsolicited inbound behind an open firewall";
    assert_blocked(&stranger, inside6(host), &inside, what);
}

#[test]
fn ipv6_flows_carry_packet_and_byte_counts_and_udp_counters_count_ipv6_headers() {
    require_lab!();
    let lab = lab(&[("a", Ipv6Kind::Masquerade)]);
    let (relay, router) = (lab.relay(), lab.router("a"));
    let counter = relay.udp_counter().expect("counter");
    let remote = addr(ip6(relay), 5000);
    let server = bind(relay, remote);
    let inside = bind6(lab.host("a0"), INSIDE_PORT);
    for _ in 0..4 {
        send(&inside, &[6; 100], remote);
        recv_expect(&server, "datagram");
    }
    // One IPv4 datagram too: counted apart from the IPv6 ones.
    let v4 = bind(lab.host("a0"), (ANY, 0));
    let v4_server = bind(relay, (relay.ip(), 5000));
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
    let flow = flow(router, inside6(lab.host("a0")), remote);
    assert_eq!(flow.external(), public6(router));
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
