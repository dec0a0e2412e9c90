//! A busy relay, small: dialing pods come, punch through the relay and
//! leave at a steady rate, in two waves; a relay at its limits refuses what
//! is beyond them with the documented reason (`scale --busy` runs 200
//! punches a minute).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use punchport_lab::{
    Binaries,
    busy::{self, BusyConfig},
    require_lab,
    scale::{Pod, relay_args, start_relay},
};
use punchport_node::{NodeEvent, RelayLimits, cli::PeerArgs};

/// Two waves of 20 punches, each started over 10 s, to 4 reserving pods:
/// every punch ends direct, the relay refuses nothing (the limits allow it
/// all), and once a wave's pods have left and their circuits closed, the
/// relay's resident memory is where the first wave left it (within 2 MiB):
/// what the first wave took was reused, not leaked.
#[test]
fn a_busy_relay_refuses_nothing_its_limits_allow_and_its_memory_returns() {
    require_lab!();
    let config = BusyConfig {
        targets: 4,
        dialer_hosts: 8,
        punches: 20,
        period: Duration::from_secs(10),
        waves: 2,
        limits: RelayLimits {
            max_circuits: 64,
            max_circuits_per_peer: 16,
            rate_limits: false,
            ..RelayLimits::default()
        },
    };
    let run = busy::run(&config).unwrap();
    for (i, wave) in run.waves.iter().enumerate() {
        eprintln!("wave {}: {wave:?}", i + 1);
    }
    eprintln!(
        "relay RSS empty {} KiB, with reservations {} KiB",
        run.rss_empty_kib, run.rss_reserved_kib
    );
    for wave in &run.waves {
        assert_eq!(wave.direct, config.punches, "{wave:?}");
        assert_eq!(wave.circuit_retries, 0, "{:?}", wave.circuit_errors);
        assert_eq!(wave.relay.circuits, 0, "circuits left: {wave:?}");
    }
    let last = &run.waves[1];
    assert_eq!(
        (
            last.relay.reservations_denied,
            last.relay.circuits_denied_limit,
            last.relay.circuits_denied_other
        ),
        (0, 0, 0),
        "{:?}",
        last.relay
    );
    assert_eq!(last.relay.circuits_accepted, 2 * config.punches as u64);
    assert!(last.relay.peak_circuits <= config.limits.max_circuits as u64);
    assert!(
        last.rss_after_kib <= run.waves[0].rss_after_kib + 2048,
        "the relay's memory grew from wave to wave: {:?}",
        run.waves
    );
}

/// A relay that allows 2 reservations and 1 circuit: a third reserving pod
/// is refused (the relay logs `refused a reservation` with
/// `status=ResourceLimitExceeded`; the pod's `reservation_failed` line says
/// only `Failed to get Reservation.`, libp2p-relay's client error without
/// its cause) and asks again after its backoff; a second circuit while the
/// first is open is refused, and the dialing pod logs `Remote reported
/// resource limit exceeded.` and retries.
#[test]
fn reservations_and_circuits_beyond_the_limits_are_refused_with_the_reason() {
    require_lab!();
    let binaries = Binaries::locate().unwrap();
    let lab = natlab::Lab::builder()
        .router("a", natlab::Nat::PortRestricted)
        .hosts(3)
        .router("b", natlab::Nat::PortRestricted)
        .hosts(2)
        .build()
        .unwrap();
    let limits = RelayLimits {
        max_reservations: 2,
        max_circuits: 1,
        rate_limits: false,
        ..RelayLimits::default()
    };
    let (relay, relay_addr) = start_relay(&lab, &binaries, &relay_args(&lab, &limits)).unwrap();
    let reserving = PeerArgs::new(&relay_addr);
    let mut targets: Vec<Pod> = (0..2)
        .map(|i| Pod::spawn(&binaries, lab.host(&format!("a{i}")), &reserving).unwrap())
        .collect();
    let ids: Vec<_> = targets
        .iter()
        .map(|p| p.node.wait_ready().unwrap())
        .collect();
    let third = Pod::spawn(&binaries, lab.host("a2"), &reserving).unwrap();
    let refusal = || {
        third
            .node
            .wait_for(Duration::from_secs(20), "reservation_failed", |e| match e {
                NodeEvent::ReservationFailed { error, .. } => Some(error.clone()),
                NodeEvent::Ready { .. } => panic!("a third reservation was accepted"),
                _ => None,
            })
            .unwrap()
    };
    let refused = refusal();
    let first_refusal = Instant::now();
    assert_eq!(refused, "Failed to get Reservation.");
    refusal();
    let again = first_refusal.elapsed();
    eprintln!("third reservation: {refused:?}, refused again {again:?} later");
    assert!(
        again >= Duration::from_millis(1500),
        "asked again after {again:?}"
    );
    assert!(
        relay
            .stderr()
            .lines()
            .any(|l| l.contains("refused a reservation") && l.contains("ResourceLimitExceeded")),
        "{}",
        relay.stderr()
    );

    let dialer = |host: &str, target| {
        let mut args = PeerArgs::new(&relay_addr);
        args.dial = Some(target);
        args.persist = true;
        args.timeout_secs = 60;
        Pod::spawn(&binaries, lab.host(host), &args).unwrap()
    };
    let first = dialer("b0", ids[0]);
    first.node.wait_direct(Duration::from_secs(20)).unwrap();
    // The first relayed connection stays (until it idles out, 60 s), and
    // with it the relay's one circuit.
    let mut second = dialer("b1", ids[1]);
    let since = Instant::now();
    while !second
        .node
        .stderr()
        .contains("Remote reported resource limit exceeded.")
    {
        assert!(
            since.elapsed() < Duration::from_secs(15),
            "no refused circuit: {}",
            second.node.stderr()
        );
        second.poll(Duration::from_millis(100));
        for pod in &mut targets {
            pod.poll(Duration::ZERO);
        }
    }
    assert!(
        second.record.relayed_ms.is_none(),
        "the second circuit opened"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let load = punchport_lab::relay_load::RelayLoad::last_in(&relay.stderr()).unwrap();
    eprintln!("relay: {load:?}");
    assert!(
        load.reservations_denied >= 1 && load.circuits_denied_limit >= 1,
        "{load:?}"
    );
    assert_eq!(
        (load.peak_reservations, load.peak_circuits),
        (2, 1),
        "{load:?}"
    );
    assert!(
        relay
            .stderr()
            .lines()
            .any(|l| l.contains("refused a circuit") && l.contains("ResourceLimitExceeded")),
        "the relay logs each refusal"
    );
}
