//! "Open" routers, which accept unsolicited packets addressed to themselves
//! as a plain Linux box does, next to the lab's default dropping routers:
//! what they answer, the conntrack clash they cause for a simultaneous
//! punch, the low-TTL remedy, and how many hops a TTL must cover in the lab.
//! Proven with plain UDP sockets and the routers' conntrack tables.

mod common;

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::thread::sleep;
use std::time::Duration;

use common::{ANY, Heard, addr, bind, build, flow, probe, punch_rounds, recv, send};
use natlab::require_lab;
use natlab::{Input, KubeNode, Lab, Nat, PUNCH_PORTS, RouterKind};

/// The punch port both peers bind and advertise.
const PUNCH_PORT: u16 = 40000;
/// How long B sends after A in a "simultaneous" exchange: A's packet is at
/// B's router by then (the links have no delay).
const B_LAGS: Duration = Duration::from_millis(2);
/// The IP TTL of the remedy's first packet: enough to leave the sender's
/// own router, too little to reach the other router.
const LOW_TTL: u32 = 2;
/// The TTL the sockets use otherwise (Linux's default).
const NORMAL_TTL: u32 = 64;

/// Every router kind: the classic ones and the Kubernetes nodes.
fn every_kind() -> Vec<RouterKind> {
    let kube = [
        KubeNode::MASQUERADE,
        KubeNode::FULLY_RANDOM,
        KubeNode::FULLY_RANDOM.exempt(PUNCH_PORTS),
    ];
    let classic = Nat::ALL.into_iter().map(RouterKind::from);
    classic.chain(kube.map(RouterKind::from)).collect()
}

/// A lab with one router of every kind, each treating unsolicited input as
/// `input` says (routers `ra`, `rb`, ... in [`every_kind`] order).
fn lab_of_every_kind(input: Input) -> Lab {
    let mut builder = Lab::builder();
    for (index, kind) in every_kind().into_iter().enumerate() {
        let letter = char::from(b'a' + u8::try_from(index).expect("few kinds"));
        builder = builder.router(format!("r{letter}"), kind).input(input);
    }
    build(builder)
}

#[test]
fn open_routers_of_every_kind_track_an_unsolicited_packet_and_answer_port_unreachable() {
    require_lab!();
    let lab = lab_of_every_kind(Input::Accept);
    let relay = lab.relay();
    for router in lab.routers() {
        assert!(router.accepts_unsolicited(), "{}", router.kind());
        assert_eq!(router.input(), Input::Accept);
        let external = addr(router.wan_ip(), PUNCH_PORT);
        let (from, answer) = probe(relay, external);
        let error = answer.expect_err("an ICMP error, not a datagram");
        assert_eq!(
            error.kind(),
            ErrorKind::ConnectionRefused,
            "{}: ICMP port unreachable expected, got {error}",
            router.kind()
        );
        let entries = router.flows(from, external).expect("conntrack");
        assert_eq!(entries.len(), 1, "{}: {entries:?}", router.kind());
        assert!(
            !entries[0].replied && !entries[0].assured,
            "{}: [UNREPLIED] expected: {:?}",
            router.kind(),
            entries[0]
        );
    }
}

#[test]
fn dropping_routers_of_every_kind_stay_silent_and_track_nothing() {
    require_lab!();
    let lab = lab_of_every_kind(Input::Drop);
    let relay = lab.relay();
    for router in lab.routers() {
        assert!(!router.accepts_unsolicited(), "{}", router.kind());
        let external = addr(router.wan_ip(), PUNCH_PORT);
        let (from, answer) = probe(relay, external);
        let error = answer.expect_err("silence, not a datagram");
        assert!(
            matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "{}: silence expected, got {error}",
            router.kind()
        );
        let entries = router.flows(from, external).expect("conntrack");
        assert!(entries.is_empty(), "{}: {entries:?}", router.kind());
    }
}

#[test]
fn classic_kinds_drop_unsolicited_input_by_default_and_kube_nodes_accept_it() {
    require_lab!();
    let mut builder = Lab::builder();
    for (index, kind) in every_kind().into_iter().enumerate() {
        builder = builder.router(format!("d{index}x"), kind);
    }
    let lab = build(builder);
    let relay = lab.relay();
    for router in lab.routers() {
        assert_eq!(router.input(), router.kind().default_input());
        let expected = match router.kind() {
            RouterKind::Kube(_) => Input::Accept,
            RouterKind::Nat(_) => Input::Drop,
        };
        assert_eq!(router.input(), expected, "{}", router.kind());
        // What the kernel does agrees: an open node answers ICMP.
        let (_, answer) = probe(relay, addr(router.wan_ip(), PUNCH_PORT));
        let refused = matches!(answer, Err(e) if e.kind() == ErrorKind::ConnectionRefused);
        assert_eq!(refused, expected == Input::Accept, "{}", router.kind());
    }
}

/// Two hosts `a0` and `b0` behind port-restricted routers `a` and `b`,
/// both treating unsolicited input as `input` says, each with a socket on
/// the punch port.
struct Peers {
    lab: Lab,
    a: UdpSocket,
    b: UdpSocket,
}

impl Peers {
    fn new(input: Input) -> Self {
        let lab = build(
            Lab::builder()
                .router("a", Nat::PortRestricted)
                .input(input)
                .router("b", Nat::PortRestricted)
                .input(input),
        );
        let a = bind(lab.host("a0"), (ANY, PUNCH_PORT));
        let b = bind(lab.host("b0"), (ANY, PUNCH_PORT));
        Self { lab, a, b }
    }

    /// Where each peer advertises itself: its router's WAN address and the
    /// punch port.
    fn public(&self, router: &str) -> SocketAddr {
        addr(self.lab.router(router).wan_ip(), PUNCH_PORT)
    }

    fn inside(&self, host: &str) -> SocketAddr {
        addr(self.lab.host(host).ip(), PUNCH_PORT)
    }

    /// One packet from A to B's public address, then, [`B_LAGS`] later,
    /// one from B to A's.
    fn exchange_once(&self) {
        send(&self.a, b"punch from a", self.public("b"));
        sleep(B_LAGS);
        send(&self.b, b"punch from b", self.public("a"));
    }

    /// Exchanges packets (A first, B [`B_LAGS`] later) for up to ten
    /// rounds, until each has heard the other; returns whom each heard
    /// from.
    fn punch(&self) -> Heard {
        punch_rounds(&self.a, &self.b, 10, || self.exchange_once())
    }

    /// The external address each router gave its host's flow to the other
    /// peer.
    fn mappings(&self) -> (SocketAddr, SocketAddr) {
        let a = flow(self.lab.router("a"), self.inside("a0"), self.public("b"));
        let b = flow(self.lab.router("b"), self.inside("b0"), self.public("a"));
        (a.external(), b.external())
    }
}

#[test]
fn an_early_punch_packet_to_an_open_router_remaps_the_late_sides_flow() {
    require_lab!();
    let peers = Peers::new(Input::Accept);
    let (a_public, b_public) = (peers.public("a"), peers.public("b"));
    let (a_heard, b_heard) = peers.punch();

    // A's first packet reached B's router before B had sent anything: the
    // router accepted it and confirmed an entry A -> B:40000 ...
    let router_b = peers.lab.router("b");
    let early = router_b.flows(a_public, b_public).expect("conntrack");
    assert_eq!(early.len(), 1, "{:#?}", router_b.conntrack());
    assert!(!early[0].replied, "{:?}", early[0]);
    // ... so B's own flow to A, whose natural reply tuple A -> B:40000 was
    // taken, was mapped to another port.
    let (a_mapped, b_mapped) = peers.mappings();
    assert_eq!(a_mapped, a_public, "A, the early side, keeps its port");
    assert_eq!(b_mapped.ip(), b_public.ip());
    assert_ne!(b_mapped.port(), PUNCH_PORT, "B's flow was remapped");
    // And the punch fails: A's packets hit B's router, B's come from a port
    // A's router has no mapping for.
    assert_eq!(a_heard, None, "A heard {a_heard:?}");
    assert_eq!(b_heard, None, "B heard {b_heard:?}");
}

#[test]
fn the_same_exchange_through_dropping_routers_keeps_both_ports_and_gets_through() {
    require_lab!();
    let peers = Peers::new(Input::Drop);
    let (a_public, b_public) = (peers.public("a"), peers.public("b"));
    let (a_heard, b_heard) = peers.punch();
    assert_eq!(a_heard, Some(b_public), "A heard B from B's public address");
    assert_eq!(b_heard, Some(a_public), "B heard A from A's public address");
    assert_eq!(peers.mappings(), (a_public, b_public), "no remapping");
    let router_b = peers.lab.router("b");
    let inbound = router_b.flows(a_public, b_public).expect("conntrack");
    assert!(inbound.is_empty(), "no entry from A's packet: {inbound:?}");
}

#[test]
fn a_low_ttl_packet_first_keeps_both_ports_and_the_punch_gets_through_open_routers() {
    require_lab!();
    let peers = Peers::new(Input::Accept);
    let (a_public, b_public) = (peers.public("a"), peers.public("b"));

    for (socket, to) in [(&peers.a, b_public), (&peers.b, a_public)] {
        socket.set_ttl(LOW_TTL).expect("low TTL");
        send(socket, b"open my mapping", to);
        socket.set_ttl(NORMAL_TTL).expect("normal TTL");
        sleep(B_LAGS);
    }
    sleep(Duration::from_millis(20));
    // Each low-TTL packet opened its sender's mapping and died before the
    // other router.
    assert_eq!(peers.mappings(), (a_public, b_public), "mappings opened");
    for (router, from, to) in [("a", b_public, a_public), ("b", a_public, b_public)] {
        let reached = peers.lab.router(router).flows(from, to).expect("conntrack");
        assert!(reached.is_empty(), "{router}: {reached:?}");
    }

    let (a_heard, b_heard) = peers.punch();
    assert_eq!(a_heard, Some(b_public), "A heard B from B's public address");
    assert_eq!(b_heard, Some(a_public), "B heard A from A's public address");
    assert_eq!(peers.mappings(), (a_public, b_public), "no remapping");
}

#[test]
fn ttl_2_leaves_the_own_router_and_dies_before_the_far_one_which_ttl_3_reaches() {
    require_lab!();
    // Delayed links forward in userspace and must not count as hops.
    for delay in [Duration::ZERO, Duration::from_millis(2)] {
        let lab = build(
            Lab::builder()
                .router("a", Nat::PortRestricted)
                .router("b", Nat::PortRestricted)
                .input(Input::Accept)
                .wan_delay(delay),
        );
        let (router_a, router_b) = (lab.router("a"), lab.router("b"));
        let host = lab.host("a0");
        let far = addr(router_b.wan_ip(), PUNCH_PORT);
        let mut outcome = Vec::new();
        for ttl in 1..=3_u16 {
            let port = 41000 + ttl;
            let socket = bind(host, (ANY, port));
            socket.set_ttl(u32::from(ttl)).expect("ttl");
            send(&socket, b"how far", far);
            sleep(Duration::from_millis(30) + 2 * delay);
            let inside = addr(host.ip(), port);
            let left = !router_a.flows(inside, far).expect("conntrack").is_empty();
            let external = addr(router_a.wan_ip(), port);
            let reached = !router_b.flows(external, far).expect("conntrack").is_empty();
            outcome.push((ttl, left, reached));
        }
        assert_eq!(
            outcome,
            [(1, false, false), (2, true, false), (3, true, true)],
            "(ttl, left its own router, reached the far router) with delay {delay:?}"
        );

        // The relay is one forwarding hop (the internet) away from the
        // router, like the far router: TTL 2 misses it too, TTL 3 reaches it.
        let relay = lab.relay();
        let server = bind(relay, (relay.ip(), 5000));
        let socket = bind(host, (ANY, 41010));
        let mut arrived = Vec::new();
        for ttl in [LOW_TTL, LOW_TTL + 1] {
            socket.set_ttl(ttl).expect("ttl");
            send(
                &socket,
                &[u8::try_from(ttl).expect("small")],
                addr(relay.ip(), 5000),
            );
            if let Some((payload, _)) = recv(&server, Duration::from_millis(300)) {
                arrived.extend(payload);
            }
        }
        assert_eq!(arrived, [3], "TTLs that reached the relay, delay {delay:?}");

        // A host behind the far router, whose mapping to us is open, is one
        // hop further: TTL 4.
        let b0 = bind(lab.host("b0"), (ANY, PUNCH_PORT));
        let a0 = bind(host, (ANY, 41020));
        send(&b0, b"open b's mapping", addr(router_a.wan_ip(), 41020));
        sleep(Duration::from_millis(30) + 2 * delay);
        let mut arrived = Vec::new();
        for ttl in [3_u8, 4] {
            a0.set_ttl(u32::from(ttl)).expect("ttl");
            send(&a0, &[ttl], far);
            if let Some((payload, _)) = recv(&b0, Duration::from_millis(300)) {
                arrived.extend(payload);
            }
        }
        assert_eq!(arrived, [4], "TTLs that reached b0, delay {delay:?}");
    }
}
