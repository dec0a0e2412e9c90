//! Interop smoke with go-libp2p v0.52.0 (the node in `tests/interop/go`,
//! built by the test with `go build`): punchport punches with go's
//! holepunch service in both roles, through our relay, behind two
//! port-preserving NATs. The full matrix is `bench --interop`
//! (docs/benchmarks-interop.md). Skips, saying why, without Go.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use punchport::PortRange;
use punchport_lab::{
    Implementation, PeerRole, QuicRole, RelayImpl, bench::interop, require_go, require_lab,
};
use punchport_node::NodeEvent;

/// Trials per role.
const TRIALS: usize = 3;

/// Trial `n`'s punch range, moved as in the benchmark.
fn range(n: usize) -> PortRange {
    let start = 40000 + n as u16;
    PortRange::new(start, start + 50).unwrap()
}

#[test]
fn punchport_and_go_punch_each_other_in_both_roles() {
    require_lab!();
    let started = Instant::now();
    require_go!();
    eprintln!("go node ready after {:?}", started.elapsed());
    let cell = interop::smoke_cell();
    let lab = cell.lab(false).build().unwrap();
    for trial in 0..TRIALS {
        for variant in &cell.variants {
            let spec = cell
                .trial(variant)
                .timeout(Duration::from_secs(30))
                .punch_range(range(trial))
                .ordinary_port(443 + trial as u16);
            let outcome = lab.run(&spec).unwrap();
            let name = &variant.name;
            eprintln!(
                "{name} #{trial}: direct={} in {:?} ms, winner {:?}, A {:?}, B {:?}, a {:?}, b {:?}",
                outcome.direct(),
                outcome.elapsed_ms(),
                outcome.winner(),
                outcome.a.punches,
                outcome.b.punches,
                outcome.a.mappings(outcome.b.public_ip.unwrap()),
                outcome.b.mappings(outcome.a.public_ip.unwrap()),
            );
            assert!(outcome.direct(), "{name} #{trial}: {outcome:#?}");
            assert!(outcome.a.peer.direct(), "{name} #{trial}: {outcome:#?}");
            assert_eq!(outcome.exit_code, Some(0), "{name} #{trial}: {outcome:#?}");
            assert!(
                outcome.direct_flows_on(range(trial)),
                "{name} #{trial}: conntrack does not show the direct flows on the punch ports: {outcome:#?}"
            );
            // The go side logged its attempts with go's roles: as the
            // initiator, QUIC server first; as the receiver, QUIC client.
            let (go, role, go_initiates) = if variant.dialing == Implementation::Go {
                (&outcome.b, PeerRole::Dialing, false)
            } else {
                (&outcome.a, PeerRole::Reserving, true)
            };
            assert_eq!(spec.peer(role).implementation, Implementation::Go);
            let first = go.punches.first().unwrap_or_else(|| {
                panic!("{name} #{trial}: the go node logged no holepunch attempt: {outcome:#?}")
            });
            assert_eq!(first.initiator, go_initiates, "{name} #{trial}");
            let expected = if go_initiates {
                QuicRole::Server
            } else {
                QuicRole::Client
            };
            assert_eq!(first.quic, expected, "{name} #{trial}: {outcome:#?}");
        }
    }
    eprintln!("interop smoke took {:?}", started.elapsed());
}

/// Our peer reserves on a go relay and a go peer dials it. A go relay sends
/// STOP on whichever connection to us has the most streams, the newest on a
/// tie, and rust's relay client denies STOP on a connection without its
/// reservation: while our probe of the relay's second address stayed open,
/// every circuit failed (0/20 in the interop benchmark). The probe now
/// closes once observed, and the node reserves after it.
#[test]
fn punchport_reserving_on_a_go_relay_is_punched_by_a_go_peer() {
    require_lab!();
    require_go!();
    let cell = punchport_lab::bench::Cell {
        relay: RelayImpl::Go,
        ..interop::smoke_cell()
    };
    let variant = interop::variant(
        Implementation::Rust(punchport_node::TransportKind::PortAware),
        true,
    );
    let lab = cell.lab(variant.swapped).build().unwrap();
    for trial in 0..2 {
        let spec = cell
            .trial(&variant)
            .timeout(Duration::from_secs(30))
            .punch_range(range(trial))
            .ordinary_port(443 + trial as u16);
        let outcome = lab.run(&spec).unwrap();
        assert!(outcome.direct(), "#{trial}: {outcome:#?}");
        assert!(outcome.a.peer.direct(), "#{trial}: {outcome:#?}");
        // Nor did a punch fail on the go side first.
        assert!(outcome.b.peer.failures.is_empty(), "#{trial}: {outcome:#?}");
        assert!(
            outcome.direct_flows_on(range(trial)),
            "#{trial}: conntrack does not show the direct flows on the punch ports: {outcome:#?}"
        );
    }
}

/// go-libp2p's own address policy keeps the lab's documentation ranges out
/// of its holepunch service, which then never handles `/libp2p/dcutr`
/// (tests/interop/go/FINDINGS.md, 2.): a go peer configured as stock
/// (`--holepunch-addrs stock`: plain `EnableHolePunching`) that dials our
/// reserving peer stays relayed, and our initiator's punch fails. This is
/// why the interop node brings its own address source.
#[test]
fn a_stock_go_node_does_not_punch_from_documentation_addresses() {
    require_lab!();
    let go = require_go!();
    let lab = interop::smoke_cell().lab(false).build().unwrap();
    let trial = punchport_lab::Trial::port_aware().timeout(Duration::from_secs(15));
    let (_relay, relay_addr) = lab.start_relay().unwrap();
    let reserving = lab
        .start_peer(lab.lab().host("a0"), &relay_addr, &trial, None)
        .unwrap();
    let target = reserving.wait_ready().unwrap();
    let mut args = trial.peer_args(PeerRole::Dialing, &relay_addr, lab.range());
    args.dial = Some(target);
    let host = lab.lab().host("b0");
    let dialing = punchport_lab::LabNode::spawn(
        host,
        "go b0 (stock)",
        go,
        ["peer".to_owned()]
            .into_iter()
            .chain(args.to_args())
            .chain(["--holepunch-addrs".to_owned(), "stock".to_owned()]),
    )
    .unwrap();
    dialing
        .wait_for(Duration::from_secs(10), "relayed line", |e| {
            matches!(e, NodeEvent::Relayed { .. }).then_some(())
        })
        .unwrap();
    let error = reserving
        .wait_for(Duration::from_secs(20), "punch_failed line", |e| match e {
            NodeEvent::Direct { .. } => panic!("a stock go node punched: {e:?}"),
            NodeEvent::PunchFailed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .unwrap();
    eprintln!("our initiator against a stock go node: {error}");
    assert!(
        !dialing.stderr().contains("holepunch: attempt"),
        "the stock go node made a holepunch attempt:\n{}",
        dialing.stderr()
    );
}
