//! Each NAT kind behaves as documented, proven with plain UDP sockets.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;

use common::{
    ANY, Behind, MAIN, OTHER_IP, OTHER_PORT, addr, assert_delivered, bind, build, flow, punch,
    recv_expect, send,
};
use natlab::require_lab;
use natlab::{Lab, Nat};

const INSIDE_PORT: u16 = 40000;

/// A lab with one router, `name`, of kind `nat`, and its host `<name>0`.
fn one_router(name: &str, nat: Nat) -> Lab {
    build(Lab::builder().router(name, nat))
}

#[test]
fn port_restricted_preserves_ports_and_filters_by_endpoint() {
    require_lab!();
    let lab = one_router("a", Nat::PortRestricted);
    let t = Behind::ipv4(&lab, "a0", INSIDE_PORT);
    let external = t.preserved();

    // An early, unsolicited packet dies at the router and must not disturb
    // the mapping the host gets afterwards.
    t.assert_blocked(MAIN, external, "unsolicited inbound before any outbound");

    assert_eq!(t.mappings([MAIN]), [external], "source port is preserved");
    let flow = flow(t.router, t.inside_addr, t.remotes.addrs[MAIN]);
    assert_eq!(flow.reply.dst, external, "conntrack reply tuple: {flow:?}");

    t.assert_delivered(MAIN, external, "reply from the contacted endpoint");
    t.assert_blocked(OTHER_PORT, external, "same IP, other port");
    t.assert_blocked(OTHER_IP, external, "other IP");
}

#[test]
fn symmetric_maps_each_destination_to_its_own_port() {
    require_lab!();
    let lab = one_router("s", Nat::Symmetric);
    let t = Behind::ipv4(&lab, "s0", INSIDE_PORT);
    t.assert_blocked(OTHER_PORT, t.preserved(), "unsolicited inbound");
    t.assert_maps_per_destination();
}

#[test]
fn port_rewriting_maps_endpoint_independently_without_preserving_ports() {
    require_lab!();
    let lab = one_router("w", Nat::PortRewriting);
    let t = Behind::ipv4(&lab, "w0", INSIDE_PORT);

    let seen = t.mappings([MAIN, OTHER_IP]);
    let expected = natlab::rewritten_port(0, INSIDE_PORT).expect("port is rewritten");
    assert_eq!(seen[0], addr(t.wan_ip(), expected));
    assert_eq!(seen[1], seen[0], "same external port for both destinations");
    assert_ne!(seen[0].port(), INSIDE_PORT, "port is not preserved");
    assert_eq!(t.tracked([MAIN, OTHER_IP]), [seen[0]; 2]);

    t.assert_delivered(OTHER_IP, seen[0], "reply");
    t.assert_blocked(OTHER_PORT, seen[0], "unsolicited inbound");
}

#[test]
fn full_cone_accepts_anyone_after_one_outbound_packet() {
    require_lab!();
    let lab = one_router("f", Nat::FullCone);
    let t = Behind::ipv4(&lab, "f0", INSIDE_PORT);
    let external = t.preserved();
    t.assert_blocked(OTHER_IP, external, "inbound before any outbound");

    assert_eq!(t.mappings([MAIN]), [external], "port preserved");
    t.assert_delivered(OTHER_IP, external, "inbound from a new remote");
    let answer = t.mappings([OTHER_IP]);
    assert_eq!(answer, [external], "the same mapping serves the new remote");
}

#[test]
fn restricted_cone_accepts_only_remote_ips_it_sent_to() {
    require_lab!();
    let lab = one_router("r", Nat::RestrictedCone);
    let t = Behind::ipv4(&lab, "r0", INSIDE_PORT);
    let external = t.preserved();

    assert_eq!(t.mappings([MAIN]), [external]);
    t.assert_delivered(OTHER_PORT, external, "another port of a contacted IP");
    t.assert_blocked(OTHER_IP, external, "an IP never contacted");

    // Once the host has sent to that IP (any port), it may send in.
    let other_ip = t.remotes.addrs[OTHER_IP].ip();
    send(&t.inside, b"hello", addr(other_ip, 7000));
    t.assert_delivered(OTHER_IP, external, "a newly contacted IP");
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
    let a = bind(lab.host("a0"), (ANY, INSIDE_PORT));
    let b = bind(lab.host("b0"), (ANY, INSIDE_PORT));
    // The advertised addresses: the routers' WAN IPs and the inside port.
    let a_public = addr(router_a.wan_ip(), INSIDE_PORT);
    let b_public = addr(router_b.wan_ip(), INSIDE_PORT);

    let (a_heard, b_heard) = punch(&a, a_public, &b, b_public, 20);
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
    let left = router_a.conntrack().expect("conntrack");
    assert!(left.is_empty(), "flushed: {left:?}");
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
    let t = Behind::ipv4(&lab, "fw1", INSIDE_PORT);
    assert_eq!(t.host.ip(), "203.0.113.35".parse::<IpAddr>().expect("ip"));
    t.assert_stateful_firewall();

    let public = lab.host("p");
    let open = bind(public, (ANY, 7000));
    let relay = &t.remotes.sockets[MAIN];
    assert_delivered(relay, addr(public.ip(), 7000), &open, "public host is open");
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
    let relay_socket = bind(relay, remote);
    for name in ["m", "n"] {
        let router = lab.router(name);
        assert_eq!(router.hosts().len(), 8);
        let sockets: Vec<_> = router
            .hosts()
            .iter()
            .map(|host| bind(host, (ANY, INSIDE_PORT)))
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
