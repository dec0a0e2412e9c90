//! The Kubernetes case: eight peers in their own namespaces behind one
//! port-preserving NAT, all binding the first port of the range. The NAT
//! keeps that port for one of them and remaps the others; each of those
//! notices, moves its punch socket to another port of the range, and all
//! eight then punch to a peer behind another NAT.

#![allow(clippy::unwrap_used)]

use std::{collections::HashSet, time::Duration};

use punchport::dcutr::CandidateMode;
use punchport_lab::{LabNode, PunchLab, Trial, natlab::Nat, require_lab};
use punchport_node::NodeEvent;

const PEERS: usize = 8;

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
    let (_relay, relay_addr) = lab.start_relay_with(relay_args).unwrap();
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

    let mut moves = 0;
    let mut ports = HashSet::new();
    for (i, peer) in peers.iter_mut().enumerate() {
        let mut first_port = None;
        let direct_port = peer
            .wait_for(Duration::from_secs(90), "direct", |e| match e {
                NodeEvent::Listening {
                    address,
                    punch_socket: true,
                } => {
                    let port = punchport::QuicAddr::parse(address).unwrap().socket.port();
                    first_port.get_or_insert(port);
                    None
                }
                NodeEvent::PunchPortMoved { .. } => {
                    moves += 1;
                    None
                }
                NodeEvent::Direct { local_port, .. } => Some(local_port.unwrap()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            first_port,
            Some(range.start()),
            "a{i} did not start on the first port"
        );
        assert_eq!(peer.wait_exit(Duration::from_secs(5)), Some(0), "a{i}");
        assert!(range.contains(direct_port), "a{i}: {direct_port}");
        ports.insert(direct_port);
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
