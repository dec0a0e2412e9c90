//! A NAT that maps endpoint-independently but does not keep ports: the
//! punch range filter advertises the punch port, which is not the mapped
//! one, and fails; socket-aware candidates advertise what the relay saw of
//! the punch socket, and punch.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use punchport::CandidateMode;
use punchport_lab::{PunchLab, Trial, natlab::Nat, require_lab};

fn trial(candidates: CandidateMode) -> Trial {
    Trial::port_aware()
        .timeout(Duration::from_secs(20))
        .candidates(candidates)
}

#[test]
fn socket_aware_candidates_punch_through_a_port_rewriting_nat_and_the_range_filter_does_not() {
    require_lab!();
    let lab = PunchLab::builder(Nat::PortRewriting, Nat::PortRestricted)
        .build()
        .unwrap();
    for attempt in 0..3 {
        let outcome = lab.run(&trial(CandidateMode::SocketAware)).unwrap();
        assert!(
            outcome.direct(),
            "socket-aware, trial {attempt}: {outcome:#?}"
        );
        // The router rewrote the punch port, and the direct flow used it.
        let b_wan = outcome.b.public_ip.unwrap();
        let mappings = outcome.a.mappings(b_wan);
        assert!(
            mappings.iter().any(|m| m.replied && m.inside != m.external),
            "{mappings:?}"
        );
    }
    let outcome = lab.run(&trial(CandidateMode::Range)).unwrap();
    assert!(
        !outcome.direct(),
        "the range filter punched a port-rewriting NAT: {outcome:#?}"
    );
    assert!(outcome.failure().is_some(), "{outcome:#?}");
}
