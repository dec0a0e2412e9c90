//! Pods that restart with the same identity (a StatefulSet with a persisted
//! key) are reachable through the relay at once.
//!
//! A killed peer's connections to the relay stay open at the relay until
//! QUIC's idle timeout ends them (10 s after the last packet, longer with
//! the probe timeouts). libp2p-relay routes a circuit over any reserving
//! connection of the destination, so without the relay's fix a circuit to
//! the restarted peer could take the dead connection and wait for it to
//! time out. The relay closes a peer's older reserving connections once the
//! peer reserves on a new one (`src/relay/`).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use punchport_lab::{LabNode, PunchLab, Trial, natlab::Nat, require_lab};
use punchport_node::NodeEvent;

/// Well under the idle timeout that bounded a circuit over a dead
/// connection (10 s and more).
const AT_ONCE: Duration = Duration::from_secs(3);

/// One restart of one pod, seen by a peer that dials it afterwards.
#[derive(Debug, Clone, Copy)]
struct Round {
    /// From the restarted pod's `ready` to the dialer's `relayed`.
    relayed: Duration,
    /// From the restarted pod's `ready` to the dialer's `direct`.
    direct: Duration,
}

/// Pods `a0`.. behind one port-preserving NAT each hold a reservation; one
/// after another (a rolling restart), each is killed and started again with
/// the same identity, and a new peer on `b0` dials it through the relay at
/// once. Returns each round's times.
fn rolling_restart(pods: usize) -> Vec<Round> {
    let lab = PunchLab::builder(Nat::PortRestricted, Nat::PortRestricted)
        .a_hosts(pods)
        .build()
        .unwrap();
    let (relay, relay_addr) = lab.start_relay().unwrap();
    let trial = |pod: usize| Trial::port_aware().secret_key_seed(10 + pod as u8);
    let host = |pod: usize| lab.lab().host(&format!("a{pod}"));
    let mut running: Vec<(LabNode, libp2p::PeerId)> = (0..pods)
        .map(|pod| {
            let node = lab
                .start_peer(host(pod), &relay_addr, &trial(pod), None)
                .unwrap();
            let id = node.wait_ready().unwrap();
            (node, id)
        })
        .collect();
    let mut rounds = Vec::new();
    for (pod, (node, id)) in running.iter_mut().enumerate() {
        node.kill();
        *node = lab
            .start_peer(host(pod), &relay_addr, &trial(pod), None)
            .unwrap();
        assert_eq!(node.wait_ready().unwrap(), *id, "a{pod}: the same identity");
        let ready = Instant::now();
        let dialer = lab
            .start_peer(
                lab.lab().host("b0"),
                &relay_addr,
                &Trial::port_aware().timeout(Duration::from_secs(30)),
                Some(*id),
            )
            .unwrap();
        let mut relayed = None;
        dialer
            .wait_for(Duration::from_secs(40), "direct", |e| match e {
                NodeEvent::Relayed { .. } => {
                    relayed.get_or_insert(ready.elapsed());
                    None
                }
                NodeEvent::Direct { .. } => Some(()),
                _ => None,
            })
            .unwrap();
        let round = Round {
            relayed: relayed.unwrap(),
            direct: ready.elapsed(),
        };
        eprintln!("a{pod} restarted: {round:?}");
        rounds.push(round);
    }
    let stale = relay
        .stderr()
        .lines()
        .filter(|l| l.contains("closing the older reserving connection"))
        .count();
    eprintln!("relay closed {stale} older reserving connections");
    rounds
}

fn summary(rounds: &[Round]) -> String {
    let ms = |d: Duration| d.as_millis();
    let mut relayed: Vec<_> = rounds.iter().map(|r| ms(r.relayed)).collect();
    let mut direct: Vec<_> = rounds.iter().map(|r| ms(r.direct)).collect();
    relayed.sort_unstable();
    direct.sort_unstable();
    format!("relayed after (ms, sorted) {relayed:?}; direct after {direct:?}")
}

/// A rolling restart of 10 pods: after each restart, a new peer reaches the
/// pod through the relay and punches to it within 3 s. Without the relay's
/// fix a circuit takes the dead connection in about half the rounds (the
/// order of a `HashMap` of two connections), and waits 10 s or more.
#[test]
fn a_rolling_restart_of_ten_pods_leaves_each_reachable_at_once() {
    require_lab!();
    let rounds = rolling_restart(10);
    eprintln!("rolling restart of 10 pods: {}", summary(&rounds));
    for (pod, round) in rounds.iter().enumerate() {
        assert!(
            round.relayed < AT_ONCE && round.direct < AT_ONCE,
            "a{pod}: {round:?}; all: {}",
            summary(&rounds)
        );
    }
}
