//! The Kubernetes case: eight peers in their own namespaces behind one
//! port-preserving NAT, all binding the first port of the range. The NAT
//! keeps that port for one of them and remaps the others; each of those
//! notices, moves its punch socket to another port of the range, and all
//! eight then punch to a peer behind another NAT.
//!
//! All eight dial the same peer through the relay within a second. The
//! libp2p-relay 0.22 client hands at most one accepted inbound circuit per
//! handler poll to its transport, so when two circuit requests (STOP) reach
//! the target within one poll, the second waited until the dialer's 10 s
//! timeout woke the connection: the "stall" after a socket move. Our relay
//! sends one destination one STOP at a time
//! (`src/relay/`), and each peer here must be direct
//! within [`NO_STALL`]. `PUNCHPORT_STALL_DIR=<dir>` writes every node's
//! stderr and router a's conntrack table there when a peer took longer than
//! 5 s (run with `PUNCHPORT_NODE_LOG=debug` for the detail).

#![allow(clippy::unwrap_used)]

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use punchport::CandidateMode;
use punchport_lab::{LabNode, PunchLab, Trial, natlab::Nat, require_lab};
use punchport_node::NodeEvent;

const PEERS: usize = 8;
/// Each peer's bound from start to direct: a stalled circuit took 10 s (the
/// dialer's circuit timeout) on top of the usual 1-2 s.
const NO_STALL: Duration = Duration::from_secs(8);

#[test]
fn eight_peers_behind_one_nat_spread_over_the_range_and_all_punch() {
    require_lab!();
    let (moves, ports) = eight_peers_punch(CandidateMode::Range);
    assert_eq!(
        ports.len(),
        PEERS,
        "the peers ended on shared ports: {ports:?}"
    );
    assert!(
        moves >= PEERS - 1,
        "only {moves} moves for {PEERS} peers on one port"
    );
}

/// In socket-aware mode the peers need not move: Linux remaps a colliding
/// socket to one port for every destination, and that is what the relay
/// saw and what DCUtR advertises.
#[test]
fn eight_peers_behind_one_nat_punch_in_socket_aware_mode() {
    require_lab!();
    eight_peers_punch(CandidateMode::SocketAware);
}

/// Eight peers behind router `a` dial a peer behind router `b`; all must end
/// directly connected, each with a direct flow that kept its final punch
/// port... or, where the NAT remapped it, with the flow it advertised.
/// Returns how often the peers moved and their final punch ports.
fn eight_peers_punch(candidates: CandidateMode) -> (usize, HashSet<u16>) {
    let lab = PunchLab::builder(Nat::PortRestricted, Nat::PortRestricted)
        .a_hosts(PEERS)
        .build()
        .unwrap();
    let range = lab.range();
    let mut relay_args = lab.relay_args();
    relay_args.max_circuits_per_peer = 32;
    relay_args.max_circuits = 64;
    let (relay, relay_addr) = lab.start_relay_with(relay_args).unwrap();
    let trial = Trial::port_aware()
        .timeout(Duration::from_secs(60))
        .candidates(candidates);
    let target = lab
        .start_peer(lab.lab().host("b0"), &relay_addr, &trial, None)
        .unwrap();
    let target_id = target
        .wait_for(Duration::from_secs(20), "ready", |e| match e {
            NodeEvent::Ready { peer_id } => Some(*peer_id),
            _ => None,
        })
        .unwrap();

    let mut peers: Vec<LabNode> = (0..PEERS)
        .map(|i| {
            let host = lab.lab().host(&format!("a{i}"));
            lab.start_peer(host, &relay_addr, &trial, Some(target_id))
                .unwrap()
        })
        .collect();

    let started = Instant::now();
    let mut moves = 0;
    let mut ports = HashSet::new();
    let mut first_ports = [None; PEERS];
    let mut times = [None; PEERS];
    // Follow all peers at once, so that each one's time to direct is its own.
    while times.iter().any(Option::is_none) {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "not all direct within 90 s: {times:?}"
        );
        for (i, peer) in peers.iter().enumerate() {
            while times[i].is_none()
                && let Some(event) = peer.next_event(Duration::from_millis(5))
            {
                match event {
                    NodeEvent::Listening {
                        address,
                        punch_socket: true,
                    } => {
                        let port = punchport::QuicAddr::parse(&address).unwrap().socket.port();
                        first_ports[i].get_or_insert(port);
                    }
                    NodeEvent::PunchPortMoved { .. } => moves += 1,
                    NodeEvent::Direct { local_port, .. } => {
                        let port = local_port.unwrap();
                        assert!(range.contains(port), "a{i}: {port}");
                        ports.insert(port);
                        times[i] = Some(started.elapsed());
                    }
                    _ => {}
                }
            }
        }
    }
    let times: Vec<Duration> = times.into_iter().map(Option::unwrap).collect();
    let slowest = times.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{candidates}: time to direct per peer (ms) {:?}",
        times.iter().map(Duration::as_millis).collect::<Vec<_>>()
    );
    if let Some(dir) = std::env::var_os("PUNCHPORT_STALL_DIR")
        && slowest > Duration::from_secs(5)
    {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, peer) in peers.iter().enumerate() {
            std::fs::write(dir.join(format!("a{i}.log")), peer.stderr()).unwrap();
        }
        std::fs::write(dir.join("b0.log"), target.stderr()).unwrap();
        std::fs::write(dir.join("relay.log"), relay.stderr()).unwrap();
        std::fs::write(
            dir.join("conntrack-a.txt"),
            format!("{:#?}", lab.lab().router("a").conntrack().unwrap()),
        )
        .unwrap();
    }
    assert!(
        slowest < NO_STALL,
        "a peer took {slowest:?} to direct (a stalled circuit?): {times:?}"
    );
    for (i, peer) in peers.iter_mut().enumerate() {
        assert_eq!(
            first_ports[i],
            Some(range.start()),
            "a{i} did not start on the first port"
        );
        assert_eq!(peer.wait_exit(Duration::from_secs(5)), Some(0), "a{i}");
    }
    // Each peer's final punch port carried a direct flow with the target;
    // in range mode the NAT kept that port.
    let target_wan = lab.public_ip(lab.lab().host("b0"));
    let flows = lab.lab().router("a").conntrack().unwrap();
    for port in &ports {
        assert!(
            flows.iter().any(|f| f.original.dst.ip() == target_wan
                && f.original.src.port() == *port
                && f.replied
                && (candidates != CandidateMode::Range || f.reply.dst.port() == *port)),
            "no direct flow from port {port}: {flows:#?}"
        );
    }
    eprintln!("{candidates}: {moves} moves, final punch ports {ports:?}");
    (moves, ports)
}
