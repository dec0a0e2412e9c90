//! Relay plus two peers on loopback, each with a decoy listener outside the
//! punch range (the stand-in for 443) and a punch socket inside it. Real QUIC
//! sockets, a real relay, real identify and DCUtR.

mod support;

use punchport::PortRange;
use punchport_node::TransportKind;
use support::{punch, relay};

/// Runs per test: each run has new identities and new ports, so new
/// remote-address hashes for libp2p-quic's listener choice.
const RUNS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_aware_punches_leave_from_the_punch_port_every_time() {
    support::init_tracing();
    let range = PortRange::new(41000, 41099).unwrap();
    let (_relay, relay_addr) = relay().await;
    for run in 0..RUNS {
        let punch = punch(&relay_addr, TransportKind::PortAware, range).await;
        eprintln!("run {run}: {punch:?}");
        assert!(punch.direct, "run {run}: no direct connection: {punch:?}");
        assert!(
            !punch.remote_ports.is_empty()
                && punch.remote_ports.iter().all(|port| range.contains(*port)),
            "run {run}: a direct connection used a port outside {range}: {punch:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_control_punches_from_the_decoy_port_at_least_once() {
    support::init_tracing();
    let range = PortRange::new(42000, 42099).unwrap();
    let (_relay, relay_addr) = relay().await;
    let mut outside = Vec::new();
    for run in 0..RUNS {
        let punch = punch(&relay_addr, TransportKind::Stock, range).await;
        outside.extend(
            punch
                .remote_ports
                .iter()
                .filter(|port| !range.contains(**port))
                .map(|port| (run, *port)),
        );
    }
    assert!(
        !outside.is_empty(),
        "stock libp2p-quic never left from the decoy port in {RUNS} runs: the suite cannot tell it apart"
    );
    eprintln!("stock direct connections on decoy ports (run, port): {outside:?}");
}
