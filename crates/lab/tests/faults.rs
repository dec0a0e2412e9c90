//! Faults in the NAT lab: lossy and slow links, a relay that dies, NATs
//! that lose their mappings or time them out early, a peer that restarts.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use punchport_lab::{LabNode, Pair, PunchLab, Trial, natlab::Nat, require_lab};
use punchport_node::NodeEvent;

fn assert_no_panic(node: &LabNode) {
    let stderr = node.stderr();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// 5 % loss on every WAN link, each way, and 25 ms one-way delay: at least
/// 19 of 20 punches end directly connected.
#[test]
fn punches_through_loss_and_delay() {
    require_lab!();
    let lab = PunchLab::builder(Nat::PortRestricted, Nat::PortRestricted)
        .wan_delay(Duration::from_millis(25))
        .wan_loss_percent(5.0)
        .build()
        .unwrap();
    let mut direct = 0;
    let mut times = Vec::new();
    for _ in 0..20 {
        let outcome = lab
            .run(&Trial::port_aware().timeout(Duration::from_secs(30)))
            .unwrap();
        if let Some(ms) = outcome.elapsed_ms() {
            direct += 1;
            times.push(ms);
        }
    }
    times.sort_unstable();
    eprintln!("5% loss, 25 ms: {direct}/20 direct, times {times:?}");
    assert!(direct >= 19, "only {direct}/20 direct");
}

/// The relay dies after the relayed connection opens and before the punch
/// ends: both peers report the failure within a bound and keep running;
/// when the relay is back they reconnect on their own and punch.
#[test]
fn recovers_from_a_relay_that_dies_during_the_punch() {
    require_lab!();
    let lab = PunchLab::builder(Nat::PortRestricted, Nat::PortRestricted)
        .wan_delay(Duration::from_millis(25))
        .build()
        .unwrap();
    let Pair {
        mut relay,
        reserving,
        dialing,
        ..
    } = lab
        .start_pair(&Trial::port_aware(), &Trial::port_aware().persist())
        .unwrap();
    // Once both ends have the relayed connection (and the punch, about 300 ms
    // long at this delay, has just begun), the relay dies.
    for node in [&dialing, &reserving] {
        node.wait_for(Duration::from_secs(20), "relayed", |e| {
            matches!(e, NodeEvent::Relayed { .. }).then_some(())
        })
        .unwrap();
    }
    relay.kill();
    let killed = Instant::now();
    let bound = Duration::from_secs(20);
    for node in [&dialing, &reserving] {
        node.wait_for(bound, "punch_failed", |e| match e {
            NodeEvent::Direct { .. } => panic!("punched although the relay died first"),
            NodeEvent::PunchFailed { .. } => Some(()),
            _ => None,
        })
        .unwrap();
    }
    let failed_after = killed.elapsed();
    assert!(failed_after < bound);
    for node in [&dialing, &reserving] {
        assert_no_panic(node);
    }

    let (_relay, _) = lab.start_relay().unwrap();
    let restarted = Instant::now();
    dialing.wait_direct(Duration::from_secs(60)).unwrap();
    eprintln!(
        "relay killed: both sides failed within {failed_after:?}; direct {:?} after the relay came back",
        restarted.elapsed()
    );
}

/// Both NATs flush their conntrack tables under an established direct
/// connection: the direct connection works again within a bound (a ping
/// over it is answered), the inside hosts' next packets recreating the
/// mappings on the same ports.
#[test]
fn survives_nats_that_flush_their_mappings() {
    require_lab!();
    let lab = PunchLab::builder(Nat::PortRestricted, Nat::PortRestricted)
        .build()
        .unwrap();
    let trial = Trial::port_aware().ping_interval_secs(1);
    let pair = punched_with_persist(&lab, &trial);
    let dialing = &pair.dialing;
    for router in lab.lab().routers() {
        router.flush_conntrack().unwrap();
    }
    let flushed = Instant::now();
    let bound = Duration::from_secs(15);
    dialing
        .wait_for(bound, "a ping over the direct connection", |e| {
            matches!(e, NodeEvent::Ping { relayed: false, .. }).then_some(())
        })
        .unwrap();
    eprintln!(
        "conntrack flushed: direct ping answered {:?} later",
        flushed.elapsed()
    );
    assert_no_panic(dialing);
}

/// The NATs forget idle UDP mappings after 3 s, less than QUIC's 5 s
/// keep-alive: the punched connection must still answer pings after 30 s.
#[test]
fn keeps_the_punched_path_through_short_nat_timeouts() {
    require_lab!();
    let lab = PunchLab::builder(Nat::PortRestricted, Nat::PortRestricted)
        .build()
        .unwrap();
    for router in lab.lab().routers() {
        for key in [
            "nf_conntrack_udp_timeout",
            "nf_conntrack_udp_timeout_stream",
        ] {
            let status = router
                .command("sysctl")
                .args(["-q", "-w", &format!("net.netfilter.{key}=3")])
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
    let trial = Trial::port_aware().ping_interval_secs(10);
    let pair = punched_with_persist(&lab, &trial);
    let dialing = &pair.dialing;
    let start = Instant::now();
    let mut direct_pings = 0;
    let mut lost = false;
    while start.elapsed() < Duration::from_secs(32) {
        match dialing.next_event(Duration::from_millis(500)) {
            Some(NodeEvent::Ping { relayed: false, .. }) => direct_pings += 1,
            Some(NodeEvent::Disconnected { relayed: false, .. }) => lost = true,
            _ => {}
        }
    }
    eprintln!(
        "NAT timeout 3 s: {direct_pings} direct pings in 32 s, direct connection lost: {lost}"
    );
    assert!(!lost, "the direct connection was lost");
    assert!(
        direct_pings >= 2,
        "only {direct_pings} pings answered over the direct connection"
    );
}

/// A peer restarts with the same identity: the other side (dialing with
/// `--persist`) notices the lost connection and punches to it again.
#[test]
fn punches_again_to_a_peer_that_restarted() {
    require_lab!();
    let lab = PunchLab::builder(Nat::PortRestricted, Nat::PortRestricted)
        .build()
        .unwrap();
    let trial = Trial::port_aware().secret_key_seed(7);
    let Pair {
        relay: _relay,
        relay_addr,
        mut reserving,
        dialing,
        target: id,
        ..
    } = lab
        .start_pair(&trial, &Trial::port_aware().persist())
        .unwrap();
    dialing.wait_direct(Duration::from_secs(20)).unwrap();
    // DCUtR's second direct dial may still be retrying its handshake; a
    // peer restarted within that second completes it (same identity, same
    // port) and no new punch is needed. Let the punch settle first.
    std::thread::sleep(Duration::from_secs(2));
    reserving.kill();
    let restarted = lab
        .start_peer(lab.lab().host("a0"), &relay_addr, &trial, None)
        .unwrap();
    assert_eq!(restarted.wait_ready().unwrap(), id, "the same identity");
    let since = Instant::now();
    dialing.wait_direct(Duration::from_secs(60)).unwrap();
    eprintln!("peer restarted: direct again {:?} later", since.elapsed());
    assert_no_panic(&dialing);
}

/// Starts a pair running `trial` (the dialing side with `--persist`) and
/// waits until it punched. Keep the whole pair: dropping a node kills it.
fn punched_with_persist(lab: &PunchLab, trial: &Trial) -> Pair {
    let pair = lab.start_pair(trial, &trial.clone().persist()).unwrap();
    pair.dialing.wait_direct(Duration::from_secs(20)).unwrap();
    pair
}
