//! Each NAT kind behaves as documented, proven with plain UDP sockets.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use common::{expect_silence, recv, recv_expect, send};
use natlab::require_lab;
use natlab::{Flow, Lab, Nat, Router};

const ANY: [u8; 4] = [0, 0, 0, 0];
const INSIDE_PORT: u16 = 40000;

fn build(builder: natlab::LabBuilder) -> Lab {
    builder.build().expect("build lab")
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

fn addr(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

#[test]
fn port_restricted_preserves_ports_and_filters_by_endpoint() {
    require_lab!();
    let lab = build(Lab::builder().router("a", Nat::PortRestricted));
    let (relay, router, host) = (lab.relay(), lab.router("a"), lab.host("a0"));
    let remote = addr(relay.ips()[0], 5000);
    let same_ip_other_port = addr(relay.ips()[0], 5001);
    let other_ip = addr(relay.ips()[1], 5000);
    let relay_main = relay.bind_udp(remote).expect("bind");
    let relay_port = relay.bind_udp(same_ip_other_port).expect("bind");
    let relay_ip = relay.bind_udp(other_ip).expect("bind");
    let inside = host.bind_udp((ANY, INSIDE_PORT)).expect("bind");
    let external = addr(router.wan_ip(), INSIDE_PORT);

    // An early, unsolicited packet dies at the router and must not disturb
    // the mapping the host gets afterwards.
    send(&relay_main, b"early", external);
    expect_silence(&inside, "unsolicited inbound before any outbound");

    send(&inside, b"hello", remote);
    let (_, seen) = recv_expect(&relay_main, "outbound packet");
    assert_eq!(seen, external, "source port is preserved");
    let flow = flow(router, addr(host.ip(), INSIDE_PORT), remote);
    assert_eq!(flow.reply.dst, external, "conntrack reply tuple: {flow:?}");

    send(&relay_main, b"reply", external);
    let (payload, from) = recv_expect(&inside, "reply from the contacted endpoint");
    assert_eq!((payload.as_slice(), from), (&b"reply"[..], remote));

    send(&relay_port, b"other port", external);
    expect_silence(&inside, "same IP, other port");
    send(&relay_ip, b"other ip", external);
    expect_silence(&inside, "other IP");
}

#[test]
fn symmetric_maps_each_destination_to_its_own_port() {
    require_lab!();
    let lab = build(Lab::builder().router("s", Nat::Symmetric));
    let (relay, router, host) = (lab.relay(), lab.router("s"), lab.host("s0"));
    let first = addr(relay.ips()[0], 5000);
    let second = addr(relay.ips()[1], 5000);
    let relay_first = relay.bind_udp(first).expect("bind");
    let relay_second = relay.bind_udp(second).expect("bind");
    let stranger = relay.bind_udp(addr(relay.ips()[0], 5001)).expect("bind");
    let inside = host.bind_udp((ANY, INSIDE_PORT)).expect("bind");

    send(&stranger, b"early", addr(router.wan_ip(), INSIDE_PORT));
    expect_silence(&inside, "unsolicited inbound");

    send(&inside, b"one", first);
    send(&inside, b"two", second);
    let (_, seen_first) = recv_expect(&relay_first, "first destination");
    let (_, seen_second) = recv_expect(&relay_second, "second destination");
    assert_eq!(seen_first.ip(), router.wan_ip());
    assert_eq!(seen_second.ip(), router.wan_ip());
    assert_ne!(
        seen_first.port(),
        seen_second.port(),
        "mapping is per destination"
    );

    let inside_addr = addr(host.ip(), INSIDE_PORT);
    assert_eq!(flow(router, inside_addr, first).external(), seen_first);
    assert_eq!(flow(router, inside_addr, second).external(), seen_second);

    send(&stranger, b"stranger", seen_first);
    expect_silence(&inside, "unsolicited inbound to a live mapping");
    send(&relay_first, b"reply", seen_first);
    let (_, from) = recv_expect(&inside, "reply through the first mapping");
    assert_eq!(from, first);
}

#[test]
fn port_rewriting_maps_endpoint_independently_without_preserving_ports() {
    require_lab!();
    let lab = build(Lab::builder().router("w", Nat::PortRewriting));
    let (relay, router, host) = (lab.relay(), lab.router("w"), lab.host("w0"));
    let first = addr(relay.ips()[0], 5000);
    let second = addr(relay.ips()[1], 5000);
    let relay_first = relay.bind_udp(first).expect("bind");
    let relay_second = relay.bind_udp(second).expect("bind");
    let inside = host.bind_udp((ANY, INSIDE_PORT)).expect("bind");

    send(&inside, b"one", first);
    send(&inside, b"two", second);
    let (_, seen_first) = recv_expect(&relay_first, "first destination");
    let (_, seen_second) = recv_expect(&relay_second, "second destination");
    let expected = natlab::rewritten_port(0, INSIDE_PORT).expect("port is rewritten");
    assert_eq!(seen_first, addr(router.wan_ip(), expected));
    assert_eq!(
        seen_second, seen_first,
        "same external port for both destinations"
    );
    assert_ne!(seen_first.port(), INSIDE_PORT, "port is not preserved");

    let inside_addr = addr(host.ip(), INSIDE_PORT);
    assert_eq!(flow(router, inside_addr, first).external(), seen_first);
    assert_eq!(flow(router, inside_addr, second).external(), seen_first);

    send(&relay_second, b"reply", seen_first);
    let (_, from) = recv_expect(&inside, "reply");
    assert_eq!(from, second);
    let stranger = relay.bind_udp(addr(relay.ips()[0], 5001)).expect("bind");
    send(&stranger, b"stranger", seen_first);
    expect_silence(&inside, "unsolicited inbound");
}

#[test]
fn full_cone_accepts_anyone_after_one_outbound_packet() {
    require_lab!();
    let lab = build(Lab::builder().router("f", Nat::FullCone));
    let (relay, router, host) = (lab.relay(), lab.router("f"), lab.host("f0"));
    let contacted = addr(relay.ips()[0], 5000);
    let stranger_addr = addr(relay.ips()[1], 6000);
    let relay_contacted = relay.bind_udp(contacted).expect("bind");
    let stranger = relay.bind_udp(stranger_addr).expect("bind");
    let inside = host.bind_udp((ANY, INSIDE_PORT)).expect("bind");
    let external = addr(router.wan_ip(), INSIDE_PORT);

    send(&stranger, b"early", external);
    expect_silence(&inside, "inbound before any outbound");

    send(&inside, b"hello", contacted);
    let (_, seen) = recv_expect(&relay_contacted, "outbound");
    assert_eq!(seen, external, "port preserved");

    send(&stranger, b"stranger", external);
    let (payload, from) = recv_expect(&inside, "inbound from a new remote");
    assert_eq!(
        (payload.as_slice(), from),
        (&b"stranger"[..], stranger_addr)
    );

    send(&inside, b"answer", stranger_addr);
    let (_, seen) = recv_expect(&stranger, "answer to the new remote");
    assert_eq!(seen, external, "the same mapping serves the new remote");
}

#[test]
fn restricted_cone_accepts_only_remote_ips_it_sent_to() {
    require_lab!();
    let lab = build(Lab::builder().router("r", Nat::RestrictedCone));
    let (relay, router, host) = (lab.relay(), lab.router("r"), lab.host("r0"));
    let contacted = addr(relay.ips()[0], 5000);
    let same_ip_addr = addr(relay.ips()[0], 6000);
    let other_ip_addr = addr(relay.ips()[1], 5000);
    let relay_contacted = relay.bind_udp(contacted).expect("bind");
    let same_ip = relay.bind_udp(same_ip_addr).expect("bind");
    let other_ip = relay.bind_udp(other_ip_addr).expect("bind");
    let inside = host.bind_udp((ANY, INSIDE_PORT)).expect("bind");
    let external = addr(router.wan_ip(), INSIDE_PORT);

    send(&inside, b"hello", contacted);
    let (_, seen) = recv_expect(&relay_contacted, "outbound");
    assert_eq!(seen, external);

    send(&same_ip, b"same ip", external);
    let (_, from) = recv_expect(&inside, "another port of a contacted IP");
    assert_eq!(from, same_ip_addr);

    send(&other_ip, b"other ip", external);
    expect_silence(&inside, "an IP never contacted");

    // Once the host has sent to that IP (any port), it may send in.
    send(&inside, b"hello", addr(relay.ips()[1], 7000));
    send(&other_ip, b"other ip again", external);
    let (_, from) = recv_expect(&inside, "a newly contacted IP");
    assert_eq!(from, other_ip_addr);
}

#[test]
fn simultaneous_punch_between_two_port_restricted_nats() {
    require_lab!();
    let lab = build(
        Lab::builder()
            .router("a", Nat::PortRestricted)
            .router("b", Nat::PortRestricted),
    );
    let (router_a, router_b) = (lab.router("a"), lab.router("b"));
    let a = lab.host("a0").bind_udp((ANY, INSIDE_PORT)).expect("bind");
    let b = lab.host("b0").bind_udp((ANY, INSIDE_PORT)).expect("bind");
    // The advertised addresses: the routers' WAN IPs and the inside port.
    let a_public = addr(router_a.wan_ip(), INSIDE_PORT);
    let b_public = addr(router_b.wan_ip(), INSIDE_PORT);

    let (mut a_heard, mut b_heard) = (None, None);
    for _ in 0..20 {
        send(&a, b"punch from a", b_public);
        send(&b, b"punch from b", a_public);
        if let Some((_, from)) = recv(&a, std::time::Duration::from_millis(50)) {
            a_heard = Some(from);
        }
        if let Some((_, from)) = recv(&b, std::time::Duration::from_millis(50)) {
            b_heard = Some(from);
        }
        if a_heard.is_some() && b_heard.is_some() {
            break;
        }
    }
    assert_eq!(
        a_heard,
        Some(b_public),
        "a heard b from its advertised address"
    );
    assert_eq!(
        b_heard,
        Some(a_public),
        "b heard a from its advertised address"
    );

    let flow_a = flow(router_a, addr(lab.host("a0").ip(), INSIDE_PORT), b_public);
    assert_eq!(flow_a.external(), a_public, "a's mapping was not remapped");
    assert!(flow_a.assured || flow_a.reply.src == b_public, "{flow_a:?}");
    let flow_b = flow(router_b, addr(lab.host("b0").ip(), INSIDE_PORT), a_public);
    assert_eq!(flow_b.external(), b_public, "b's mapping was not remapped");

    router_a.flush_conntrack().expect("flush");
    assert!(
        router_a.conntrack().expect("conntrack").is_empty(),
        "flushed"
    );
}

#[test]
fn firewall_hosts_are_public_and_stateful_and_public_hosts_are_open() {
    require_lab!();
    let lab = build(
        Lab::builder()
            .router("fw", Nat::Firewall)
            .hosts(2)
            .public_host("p"),
    );
    let relay = lab.relay();
    let host = lab.host("fw1");
    assert_eq!(host.ip(), "203.0.113.35".parse::<IpAddr>().expect("ip"));
    let remote = addr(relay.ip(), 5000);
    let relay_main = relay.bind_udp(remote).expect("bind");
    let relay_other = relay.bind_udp(addr(relay.ip(), 5001)).expect("bind");
    let inside = host.bind_udp((ANY, INSIDE_PORT)).expect("bind");
    let public_addr = addr(host.ip(), INSIDE_PORT);

    send(&relay_main, b"early", public_addr);
    expect_silence(&inside, "unsolicited inbound");

    send(&inside, b"hello", remote);
    let (_, seen) = recv_expect(&relay_main, "outbound");
    assert_eq!(seen, public_addr, "no translation");
    send(&relay_main, b"reply", public_addr);
    assert_eq!(recv_expect(&inside, "reply").1, remote);
    send(&relay_other, b"other", public_addr);
    expect_silence(&inside, "other remote port");

    let public = lab.host("p");
    let open = public.bind_udp((ANY, 7000)).expect("bind");
    send(&relay_main, b"to public host", addr(public.ip(), 7000));
    assert_eq!(recv_expect(&open, "public host is open").1, remote);
}

#[test]
fn many_hosts_share_one_wan_address() {
    require_lab!();
    let lab = build(
        Lab::builder()
            .router("m", Nat::PortRewriting)
            .hosts(8)
            .router("n", Nat::PortRestricted)
            .hosts(8),
    );
    let relay = lab.relay();
    let remote = addr(relay.ip(), 5000);
    let relay_socket = relay.bind_udp(remote).expect("bind");
    for name in ["m", "n"] {
        let router = lab.router(name);
        assert_eq!(router.hosts().len(), 8);
        let sockets: Vec<_> = router
            .hosts()
            .iter()
            .map(|host| host.bind_udp((ANY, INSIDE_PORT)).expect("bind"))
            .collect();
        for socket in &sockets {
            send(socket, b"hello", remote);
        }
        let mut ports = BTreeSet::new();
        for _ in &sockets {
            let (_, from) = recv_expect(&relay_socket, "one packet per host");
            assert_eq!(
                from.ip(),
                router.wan_ip(),
                "all hosts share the WAN address"
            );
            ports.insert(from.port());
        }
        assert_eq!(ports.len(), 8, "{name}: distinct external ports {ports:?}");
        if router.nat() == Nat::PortRewriting {
            let expected: BTreeSet<u16> = (0..8)
                .map(|index| natlab::rewritten_port(index, INSIDE_PORT).expect("rewritten"))
                .collect();
            assert_eq!(ports, expected);
        } else {
            assert!(
                ports.contains(&INSIDE_PORT),
                "the first host keeps its port"
            );
        }
    }
}
