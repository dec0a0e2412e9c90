//! Routers that accept unsolicited packets addressed to themselves (a
//! Kubernetes node's INPUT policy is ACCEPT; so is a plain SNAT box): the
//! other side's first punch packet can reach such a router before this
//! side's own packet left it, and conntrack then remaps this side's flow to
//! another port. punchport sends short-TTL openers from the punch socket
//! inside DCUtR's exchange, so that its router maps the flow before
//! anything of the other side's punch can arrive. Each
//! row is a pairing; every trial must end direct, with conntrack showing
//! the direct flows on the punch ports on both routers. punchport runs in
//! the seed layout (443 and the punch range).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use punchport::PortRange;
use punchport_lab::{
    Implementation, Layout, PunchLab, Trial,
    natlab::{Input, Nat},
    require_go, require_lab,
};
use punchport_node::TransportKind;

const TRIALS: usize = 3;

/// Trial `n`'s punch range, moved a port each time.
fn range(n: usize) -> PortRange {
    let start = 40000 + n as u16;
    PortRange::new(start, start + 50).unwrap()
}

fn open(on: bool) -> Option<Input> {
    on.then_some(Input::Accept)
}

/// `reserving` behind router `a`, `dialing` behind `b`, each router open or
/// not, with `delay_ms` one-way on each WAN link.
fn punches(
    reserving: Implementation,
    dialing: Implementation,
    (a_open, b_open): (bool, bool),
    delay_ms: u64,
) {
    let lab = PunchLab::builder(Nat::PortRestricted, Nat::PortRestricted)
        .inputs(open(a_open), open(b_open))
        .wan_delay(Duration::from_millis(delay_ms))
        .build()
        .unwrap();
    for n in 0..TRIALS {
        // punchport in the seed layout (443 and the punch range); stock and
        // go on the punch port alone, so that their socket choice among
        // two listeners does not decide.
        let layout = |implementation| match implementation {
            OURS => Layout::With443,
            _ => Layout::PunchOnly,
        };
        let trial = Trial::port_aware()
            .reserving(reserving, layout(reserving))
            .dialing(dialing, layout(dialing))
            .punch_range(range(n))
            .timeout(Duration::from_secs(30));
        let outcome = lab.run(&trial).unwrap();
        eprintln!(
            "{} ← {}, open {a_open}/{b_open}, {delay_ms} ms, #{n}: direct={} in {:?} ms; a {:?}; b {:?}",
            reserving.name(),
            dialing.name(),
            outcome.direct(),
            outcome.elapsed_ms(),
            outcome.a.flow_texts(),
            outcome.b.flow_texts(),
        );
        assert!(outcome.direct(), "#{n}: {outcome:#?}");
        assert!(
            outcome.direct_flows_on(range(n)),
            "#{n}: the direct flows are not on the punch ports: {outcome:#?}"
        );
    }
}

const OURS: Implementation = Implementation::Rust(TransportKind::PortAware);
const STOCK: Implementation = Implementation::Rust(TransportKind::Stock);
const GO: Implementation = Implementation::Go;

macro_rules! row {
    ($name:ident: $reserving:expr, $dialing:expr, open $a:literal / $b:literal, $delay:literal ms) => {
        #[test]
        fn $name() {
            require_lab!();
            if $reserving == GO || $dialing == GO {
                require_go!();
            }
            punches($reserving, $dialing, ($a, $b), $delay);
        }
    };
}

// punchport on both sides, both routers open: each side's openers leave
// its router before the other side's first packet can arrive (they are
// sent inside DCUtR's exchange, before the message the other side's punch
// waits for).
row!(both_open_0_ms: OURS, OURS, open true / true, 0 ms);
row!(both_open_1_ms: OURS, OURS, open true / true, 1 ms);
row!(both_open_25_ms: OURS, OURS, open true / true, 25 ms);
// Against stock rust-libp2p and go-libp2p with our router open, in both
// roles: our openers leave before our CONNECT answer (dialing side) or
// before SYNC (reserving side), so the other side's first packet always
// finds our router's mapping, at 0 ms as at 25 ms.
row!(stock_dialing_our_router_open_0_ms: OURS, STOCK, open true / false, 0 ms);
row!(stock_reserving_our_router_open_0_ms: STOCK, OURS, open false / true, 0 ms);
row!(go_dialing_our_router_open_0_ms: OURS, GO, open true / false, 0 ms);
row!(go_reserving_our_router_open_0_ms: GO, OURS, open false / true, 0 ms);
// Both routers open against stock and go at 0 ms: ours is protected by
// the openers, theirs by our lead (we dial 15 ms after the moment their
// side's punch starts, so their first packet has left their router).
row!(stock_dialing_both_open_0_ms: OURS, STOCK, open true / true, 0 ms);
row!(stock_reserving_both_open_0_ms: STOCK, OURS, open true / true, 0 ms);
row!(go_dialing_both_open_0_ms: OURS, GO, open true / true, 0 ms);
row!(go_reserving_both_open_0_ms: GO, OURS, open true / true, 0 ms);
row!(stock_dialing_our_router_open_25_ms: OURS, STOCK, open true / false, 25 ms);
row!(stock_reserving_our_router_open_25_ms: STOCK, OURS, open false / true, 25 ms);
row!(go_dialing_our_router_open_25_ms: OURS, GO, open true / false, 25 ms);
row!(go_reserving_our_router_open_25_ms: GO, OURS, open false / true, 25 ms);
