//! The relay's allow-list and circuit limits, with the binaries on loopback.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::Binary;

fn peer_id(seed: u8) -> String {
    punchport_node::keypair_from_seed(seed)
        .public()
        .to_peer_id()
        .to_string()
}

fn relay(extra: &[&str]) -> (Binary, String) {
    let mut args = vec![
        "--listen",
        "/ip4/127.0.0.1/udp/0/quic-v1",
        "--secret-key-seed",
        "1",
        "--no-rate-limits",
    ];
    args.extend_from_slice(extra);
    let relay = Binary::start("relay", &args);
    let addr = relay
        .wait_for("listening", Duration::from_secs(20))
        .unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned();
    relay.wait_for("ready", Duration::from_secs(20)).unwrap();
    (relay, addr)
}

#[test]
fn the_allow_list_refuses_other_peers_reservations_with_a_clear_log_line() {
    let allowed = peer_id(2);
    let (relay, relay_addr) = relay(&["--allow-peer", &allowed]);
    let range = ["--punch-range", "43600-43699"];
    let ok = Binary::start(
        "peer",
        &[
            &["--relay", &relay_addr, "--secret-key-seed", "2"],
            &range[..],
        ]
        .concat(),
    );
    assert_eq!(
        ok.wait_for("ready", Duration::from_secs(20)).unwrap()["peer_id"],
        allowed.as_str()
    );

    let refused_id = peer_id(3);
    let refused = Binary::start(
        "peer",
        &[
            &["--relay", &relay_addr, "--secret-key-seed", "3"],
            &range[..],
        ]
        .concat(),
    );
    let failed = refused
        .wait_for("reservation_failed", Duration::from_secs(20))
        .unwrap();
    assert!(failed["error"].is_string(), "{failed}");
    // It does not hammer the relay: the next attempt waits.
    assert!(
        refused
            .wait_for("reservation_failed", Duration::from_millis(1500))
            .is_none()
    );
    let log = relay.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("refused a reservation") && l.contains(&refused_id)),
        "{log}"
    );
    assert!(!log.contains(&format!(
        "refused a reservation: the peer is not on the allow-list (--allow-peer) peer={allowed}"
    )));
}

#[test]
fn circuits_end_at_the_relays_duration_limit() {
    let (_relay, relay_addr) = relay(&["--max-circuit-duration-secs", "2"]);
    let range = ["--punch-range", "43700-43799"];
    let a = Binary::start(
        "peer",
        &[
            &["--relay", &relay_addr, "--secret-key-seed", "4"],
            &range[..],
        ]
        .concat(),
    );
    a.wait_for("ready", Duration::from_secs(20)).unwrap();
    let b = Binary::start(
        "peer",
        &[
            &["--relay", &relay_addr, "--dial", &peer_id(4), "--persist"],
            &range[..],
        ]
        .concat(),
    );
    b.wait_for("relayed", Duration::from_secs(20)).unwrap();
    let opened = Instant::now();
    let closed = b
        .wait_for("disconnected", Duration::from_secs(10))
        .expect("the relayed connection closes");
    assert_eq!(closed["relayed"], true, "{closed}");
    let lifetime = opened.elapsed();
    assert!(
        lifetime < Duration::from_secs(5),
        "the circuit lived {lifetime:?}"
    );
}
