//! The seed layout (443 plus the punch range on both peers) behind two
//! port-preserving NATs with port-restricted filtering: the deployment that
//! fails with stock rust-libp2p.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use punchport::PortRange;
use punchport_lab::{Layout, PunchLab, Trial, natlab::Nat, require_lab};
use punchport_node::TransportKind;

/// Port-aware trials; each must end directly connected.
const TRIALS: usize = 10;
/// Stock trials at most; the first failure ends them.
const STOCK_TRIALS: usize = 10;

/// The punch range of trial `n`: moved by a few ports each time. Stock
/// libp2p-quic picks the socket of a dial by hashing the remote address; in a
/// lab with fixed addresses it would have the same luck in every trial.
fn range(n: usize) -> PortRange {
    let start = 40000 + 7 * n as u16;
    PortRange::new(start, start + 50).unwrap()
}

/// The ordinary listener of trial `n` (443 + n), moved for the same reason:
/// with 443 fixed, stock can be lucky in all trials (the benchmark saw 30/30).
fn ordinary_port(n: usize) -> u16 {
    443 + n as u16
}

#[test]
fn port_aware_punches_every_time_and_stock_fails() {
    require_lab!();
    let lab = PunchLab::builder(Nat::PortRestricted, Nat::PortRestricted)
        .build()
        .unwrap();
    for trial in 0..TRIALS {
        let outcome = lab
            .run(
                &Trial::port_aware()
                    .punch_range(range(trial))
                    .ordinary_port(ordinary_port(trial)),
            )
            .unwrap();
        eprintln!(
            "port-aware trial {trial}: direct={} in {:?} ms; a {:?}, b {:?}",
            outcome.direct(),
            outcome.elapsed_ms(),
            outcome.a.mappings(outcome.b.public_ip.unwrap()),
            outcome.b.mappings(outcome.a.public_ip.unwrap())
        );
        assert!(outcome.direct(), "trial {trial}: {outcome:#?}");
        assert_eq!(outcome.exit_code, Some(0), "trial {trial}: {outcome:#?}");
        assert!(
            outcome.direct_flows_on(range(trial)),
            "trial {trial}: conntrack does not show the direct flow on the punch ports: {outcome:#?}"
        );
    }

    let failed = (0..STOCK_TRIALS).find(|trial| {
        let stock = Trial::new(TransportKind::Stock, Layout::With443)
            .timeout(Duration::from_secs(20))
            .punch_range(range(*trial))
            .ordinary_port(ordinary_port(*trial));
        let outcome = lab.run(&stock).unwrap();
        eprintln!(
            "stock trial {trial}: direct={} failure={:?}",
            outcome.direct(),
            outcome.failure()
        );
        !outcome.direct()
    });
    assert!(
        failed.is_some(),
        "stock punched in all {STOCK_TRIALS} trials: the lab cannot tell it apart"
    );
}
