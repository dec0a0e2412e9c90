//! Bulk transfer, small: punchport's punched direct connection, stock
//! libp2p-quic's and the relayed one, interleaved in one lab (the
//! `throughput` benchmark runs larger transfers on shaped links).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use punchport_lab::{
    require_lab,
    throughput::{self, PathKind, ThroughputConfig},
};
use punchport_node::RelayLimits;

const SIZE: usize = 4 * 1024 * 1024;

/// Every direct transfer arrives whole and the relayed transfer is cut by
/// the relay at its default 128 KiB per circuit. The rates are printed, not
/// asserted: the `throughput` benchmark measures the ratio.
#[test]
fn the_direct_paths_carry_bulk_and_the_relayed_one_is_cut_at_its_limit() {
    require_lab!();
    let config = ThroughputConfig {
        wan_delay: Duration::ZERO,
        wan_rate: None,
        size: SIZE,
        relayed_size: 1024 * 1024,
        rounds: 3,
        relay_limits: RelayLimits {
            rate_limits: false,
            ..RelayLimits::default()
        },
    };
    let run = throughput::run(&config).unwrap();
    for t in &run.transfers {
        eprintln!("{t:?}: {:.1} Mbit/s", t.mbit_s());
    }
    let direct: Vec<_> = run
        .transfers
        .iter()
        .filter(|t| t.path != PathKind::Relayed)
        .collect();
    assert_eq!(direct.len(), 2 * config.rounds);
    assert!(
        direct.iter().all(|t| !t.cut && t.bytes == SIZE as u64),
        "{direct:?}"
    );
    eprintln!("punchport / stock: {:?}", run.ratio());
    let relayed = run
        .transfers
        .iter()
        .find(|t| t.path == PathKind::Relayed)
        .unwrap();
    assert!(relayed.cut, "{relayed:?}");
    assert!(
        relayed.bytes > 64 * 1024 && relayed.bytes <= run.max_circuit_bytes,
        "{relayed:?}"
    );
}
