//! Many pods behind one node, small: ten pods behind one Kubernetes node's
//! masquerade and ten behind another's, all punching pairwise through one
//! relay at the same moment (the `scale` benchmark runs 50 + 50).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use punchport_lab::{
    require_lab,
    scale::{self, ScaleConfig},
};

const PODS: usize = 10;

/// All ten punches end direct, the relay holds one reservation per
/// reserving pod and refuses nothing, and in the default (socket-aware)
/// mode no pod moves its punch socket: the node's masquerade maps each
/// colliding pod endpoint-independently to a port of its own, which is
/// what the relay observed and what DCUtR advertises.
#[test]
fn ten_pods_behind_each_node_all_punch_at_once() {
    require_lab!();
    let mut config = ScaleConfig::new(PODS);
    config.deadline = Duration::from_secs(60);
    let run = scale::run(&config).unwrap();
    let relay = run.relay.clone().unwrap();
    eprintln!(
        "{}: {}/{PODS} direct, time to direct {:?} ms, punch {:?} ms, moves {:?}, relay {relay:?}, relay CPU {:.2} s, peak {} KiB",
        config.name(),
        run.direct,
        run.time_to_direct_ms,
        run.punch_ms,
        run.moves,
        run.relay_cpu_secs,
        run.relay_peak_kib
    );
    assert_eq!(run.direct, PODS, "{:#?}", run.pods);
    assert_eq!(run.moves, (0, 0), "socket-aware pods moved");
    assert_eq!(relay.peak_reservations, PODS as u64);
    assert!(relay.peak_circuits >= 1 && relay.peak_circuits <= run.max_circuits as u64);
    assert_eq!(
        (relay.reservations_denied, relay.circuits_denied_limit),
        (0, 0),
        "{relay:?}"
    );
    assert_eq!(run.circuit_retries, 0, "{:?}", run.circuit_errors);
}
