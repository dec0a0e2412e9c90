//! Relay plus two peers on loopback, each with a decoy listener outside the

#![allow(clippy::unwrap_used)]
//! punch range (the stand-in for 443) and a punch socket inside it. Real QUIC
//! sockets, a real relay, real identify and DCUtR.

use punchport::{InitiatorRole, PortRange};
use punchport_node::{TransportKind, loopback};

/// Runs per test: each run has new identities and new ports, so new
/// remote-address hashes for libp2p-quic's listener choice.
const RUNS: usize = 20;

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_aware_punches_leave_from_the_punch_port_every_time() {
    init_tracing();
    let range = PortRange::new(41000, 41099).unwrap();
    let (_relay, relay_addr) = loopback::relay().await.unwrap();
    for run in 0..RUNS {
        let pair = loopback::punch_pair(&relay_addr, TransportKind::PortAware, range)
            .await
            .unwrap();
        assert!(pair.direct(), "run {run}: no direct connection: {pair:?}");
        let ports: Vec<_> = pair.remote_ports().collect();
        assert!(
            !ports.is_empty() && ports.iter().all(|port| range.contains(*port)),
            "run {run}: a direct connection used a port outside {range}: {pair:?}"
        );
        for side in [&pair.a, &pair.b] {
            assert!(side.peer.failures.is_empty(), "run {run}: {side:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_server_role_punches_from_the_punch_port_too() {
    init_tracing();
    let range = PortRange::new(41100, 41199).unwrap();
    let (_relay, relay_addr) = loopback::relay().await.unwrap();
    for run in 0..5 {
        let pair = loopback::punch_pair_with(&relay_addr, range, |peer| {
            peer.punchport(|c| c.with_initiator_role(InitiatorRole::Server))
        })
        .await
        .unwrap();
        assert!(pair.direct(), "run {run}: no direct connection: {pair:?}");
        assert!(
            pair.remote_ports().all(|port| range.contains(port)),
            "run {run}: {pair:?}"
        );
        // The initiator only sends random packets and accepts: the one QUIC
        // connection is B's, which A's listener-role dial resolves to.
        assert_eq!(pair.a.peer.connections.len(), 1, "run {run}: {pair:?}");
        assert_eq!(pair.b.peer.connections.len(), 1, "run {run}: {pair:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_control_punches_from_the_decoy_port_at_least_once() {
    init_tracing();
    let range = PortRange::new(42000, 42099).unwrap();
    let (_relay, relay_addr) = loopback::relay().await.unwrap();
    let mut outside = Vec::new();
    for run in 0..RUNS {
        let pair = loopback::punch_pair(&relay_addr, TransportKind::Stock, range)
            .await
            .unwrap();
        let decoys = [pair.a.decoy_port, pair.b.decoy_port];
        outside.extend(
            pair.remote_ports()
                .filter(|port| !range.contains(*port))
                .inspect(|port| assert!(decoys.contains(port), "run {run}: {port} is no listener"))
                .map(|port| (run, port)),
        );
    }
    assert!(
        !outside.is_empty(),
        "stock libp2p-quic never left from the decoy port in {RUNS} runs: the suite cannot tell it apart"
    );
    eprintln!("stock direct connections on decoy ports (run, port): {outside:?}");
}
