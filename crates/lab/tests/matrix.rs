//! The NAT matrix: each pairing of the router in front of the reserving peer
//! (A) and the one in front of the dialing peer (B) is one row. Both peers
//! listen on 443 and on the punch range (the seed layout).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use punchport_lab::{Pair, PunchLab, Trial, natlab::Nat, require_lab};
use punchport_node::NodeEvent;

use Nat::{Firewall, FullCone, PortRestricted as Eim, RestrictedCone, Symmetric};

/// Trials per punchable row.
const TRIALS: usize = 3;

/// Port-aware peers behind `a` and `b` end up directly connected in every
/// trial, with both routers' direct flows on the punch range.
fn direct(a: Nat, b: Nat) {
    let lab = PunchLab::builder(a, b).build().unwrap();
    for trial in 0..TRIALS {
        let outcome = lab.run(&Trial::port_aware()).unwrap();
        assert!(outcome.direct(), "{a} / {b}, trial {trial}: {outcome:#?}");
        assert!(
            outcome.direct_flows_on(lab.range()),
            "{a} / {b}, trial {trial}: direct flows off the punch range: {outcome:#?}"
        );
    }
}

/// Plain hole punching cannot work: both peers report `punch_failed` within
/// `bound`, the dialing one exits 1, and the relayed connection still
/// answers pings after the failure. Birthday punching is off here: against
/// an endpoint-dependent NAT it would get through (`hard_nat.rs`).
fn fails_fast_and_keeps_the_relay(a: Nat, b: Nat, bound: Duration) {
    let lab = PunchLab::builder(a, b).build().unwrap();
    let trial = Trial::port_aware().birthday(false).ping_interval_secs(1);
    let Pair {
        relay: _relay,
        reserving,
        mut dialing,
        ..
    } = lab.start_pair(&trial, &trial).unwrap();
    dialing
        .wait_for(Duration::from_secs(20), "relayed", |e| {
            matches!(e, NodeEvent::Relayed { .. }).then_some(())
        })
        .unwrap();
    let relayed_at = Instant::now();
    let error = dialing
        .wait_for(bound, "punch_failed", |e| match e {
            NodeEvent::Direct { .. } => panic!("{a} / {b} punched: {e:?}"),
            NodeEvent::PunchFailed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .unwrap();
    eprintln!(
        "{a} / {b}: punch_failed after {:?}: {error}",
        relayed_at.elapsed()
    );
    dialing
        .wait_for(Duration::from_secs(2), "relayed ping", |e| {
            matches!(e, NodeEvent::Ping { relayed: true, .. }).then_some(())
        })
        .unwrap();
    assert_eq!(dialing.wait_exit(Duration::from_secs(5)), Some(1));
    reserving
        .wait_for(Duration::from_secs(5), "punch_failed", |e| {
            matches!(e, NodeEvent::PunchFailed { .. }).then_some(())
        })
        .unwrap();
}

macro_rules! row {
    ($name:ident: $a:expr, $b:expr => direct) => {
        #[test]
        fn $name() {
            require_lab!();
            direct($a, $b);
        }
    };
    ($name:ident: $a:expr, $b:expr => fails within $secs:literal s) => {
        #[test]
        fn $name() {
            require_lab!();
            fails_fast_and_keeps_the_relay($a, $b, Duration::from_secs($secs));
        }
    };
}

row!(eim_and_full_cone: Eim, FullCone => direct);
row!(full_cone_and_eim: FullCone, Eim => direct);
row!(eim_and_restricted_cone: Eim, RestrictedCone => direct);
row!(restricted_cone_and_eim: RestrictedCone, Eim => direct);
row!(eim_and_firewall: Eim, Firewall => direct);
row!(firewall_and_eim: Firewall, Eim => direct);
row!(symmetric_and_eim: Symmetric, Eim => fails within 25 s);
row!(eim_and_symmetric: Eim, Symmetric => fails within 25 s);
