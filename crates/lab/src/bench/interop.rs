//! The go-libp2p interop benchmark (docs/benchmarks-interop.md): punchport
//! and stock rust-libp2p against the go-libp2p node (`tests/interop/go`) in
//! both roles, through our relay and through go's, and go against go as the
//! control, on identical NAT-lab topologies, interleaved trial by trial.
//!
//! A cell fixes the NAT in front of the Rust peer ("ours", router A of the
//! cell), the NAT in front of the go peer ("theirs", B), the relay, the go
//! peer's listeners and the delay. Our peer always has the seed layout (UDP
//! 443 plus the punch range). A variant fixes who runs our side and whether
//! it reserves or dials (then it runs [swapped](Variant::swapped): the
//! reserving go peer behind B); the other side is always the go node. The
//! control runs the go node on our side too, with the go layout.

use std::{fmt::Write as _, time::Duration};

use natlab::Nat;
use punchport_node::TransportKind;

use super::{
    Cell, Report, Scenario, Summary, Variant, Vary,
    pairings::short,
    table::{self, Column},
};
use crate::{Implementation, Layout, RelayImpl};

/// Every pairing, relay and go layout, at 0 and 25 ms (`--interop`).
pub const INTEROP: Scenario = Scenario {
    name: "interop",
    flag: "--interop",
    stem: "benchmarks-interop",
    title: "Hole punching with go-libp2p: punchport, stock rust-libp2p and go",
    cells: full_cells,
    trials: None,
    // go's initiator takes up to 20 s to give up.
    timeout: Duration::from_secs(30),
    vary: Vary::BOTH,
    smoke: false,
    notes: || vec![versions_note()],
    document,
    plots: Scenario::no_plots,
};

/// One cell, punchport in both roles, two trials (`--interop --smoke`).
pub const SMOKE: Scenario = Scenario {
    name: "interop-smoke",
    flag: "--interop --smoke",
    stem: "benchmarks-interop-smoke",
    cells: || vec![smoke_cell()],
    trials: Some(2),
    smoke: true,
    ..INTEROP
};

/// The NAT pairings of the full run (ours, theirs): port-preserving on both
/// sides, port-rewriting EIM on ours, a firewall on theirs.
pub const PAIRINGS: [(Nat, Nat); 3] = [
    (Nat::PortRestricted, Nat::PortRestricted),
    (Nat::PortRewriting, Nat::PortRestricted),
    (Nat::PortRestricted, Nat::Firewall),
];

fn cell(ours: Nat, theirs: Nat, relay: RelayImpl, go_layout: Layout, delay: Duration) -> Cell {
    let pairing = format!("{} / {}", short(ours), short(theirs));
    Cell {
        relay,
        go_layout: Some(go_layout),
        ..Cell::new(pairing, ours, theirs, delay, Layout::With443, variants())
    }
}

/// The cells of a full run: every pairing, relay and go layout, first
/// without delay, then at 25 ms.
pub fn full_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for delay in [Duration::ZERO, Duration::from_millis(25)] {
        for (ours, theirs) in PAIRINGS {
            for relay in [RelayImpl::Rust, RelayImpl::Go] {
                for go_layout in [Layout::PunchOnly, Layout::With443] {
                    cells.push(cell(ours, theirs, relay, go_layout, delay));
                }
            }
        }
    }
    cells
}

/// The cell of the CI smoke and of `bench --interop --smoke`:
/// port-preserving NATs on both sides, our relay, the go peer with one
/// listener, no delay, punchport in both roles.
pub fn smoke_cell() -> Cell {
    let eim = Nat::PortRestricted;
    let mut cell = cell(eim, eim, RelayImpl::Rust, Layout::PunchOnly, Duration::ZERO);
    cell.variants
        .retain(|v| [v.reserving, v.dialing].contains(&ours(TransportKind::PortAware)));
    cell
}

fn ours(kind: TransportKind) -> Implementation {
    Implementation::Rust(kind)
}

/// `ours` against the go node, reserving or dialing: `go ← port-aware`
/// names the reserving side, then the dialing one; the one on our NAT is
/// marked with `*` when both are go.
pub fn variant(ours: Implementation, ours_reserves: bool) -> Variant {
    let name = match ours {
        Implementation::Go => "go*".to_owned(),
        other => other.name(),
    };
    if ours_reserves {
        Variant::new(format!("{name} ← go"), ours, Implementation::Go)
    } else {
        Variant {
            swapped: true,
            ..Variant::new(format!("go ← {name}"), Implementation::Go, ours)
        }
    }
}

/// punchport dialing and reserving, then stock, then go ↔ go with the go
/// peer on our NAT dialing and reserving.
pub fn variants() -> Vec<Variant> {
    [
        ours(TransportKind::PortAware),
        ours(TransportKind::Stock),
        Implementation::Go,
    ]
    .into_iter()
    .flat_map(|ours| [false, true].map(|reserves| variant(ours, reserves)))
    .collect()
}

fn roles_text(counts: &[(String, usize)]) -> String {
    if counts.is_empty() {
        return "–".to_owned();
    }
    counts
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table's columns.
const COLUMNS: [Column<Summary>; 13] = [
    Column::new("our NAT / go's NAT", |s| s.pairing.clone()),
    Column::new("relay", |s| s.relay.clone()),
    Column::new("go layout", |s| s.go_layout.clone()),
    Column::new("one-way delay", Summary::delay),
    Column::new("reserving ← dialing", |s| s.variant.clone()),
    Column::new("direct", Summary::share),
    Column::new("95% CI", Summary::interval),
    Column::new("median", Summary::median),
    Column::new("p90", Summary::p90),
    Column::new("lower bound", Summary::lower_bound),
    Column::new("won by A / B", |s| {
        format!("{} / {}", s.won_by_reserving, s.won_by_dialing)
    }),
    Column::new("A's punches", |s| roles_text(&s.reserving_roles)),
    Column::new("B's punches", |s| roles_text(&s.dialing_roles)),
];

/// The cells (pairing, relay, go layout, delay) in which go ↔ go punched in
/// every trial of both orientations, and whether every Rust variant did too
/// there: `(cell, variant, direct, trials)` for each Rust variant that did
/// not.
pub fn shortfalls(report: &Report) -> Vec<(String, String, usize, usize)> {
    let cell = |s: &Summary| {
        format!(
            "{}, {}, go {}, {} ms",
            s.pairing, s.relay, s.go_layout, s.delay_ms
        )
    };
    let mut out = Vec::new();
    for s in &report.summaries {
        if s.variant.contains("go*") || s.direct == s.trials {
            continue;
        }
        let control_perfect = report
            .summaries
            .iter()
            .filter(|c| c.variant.contains("go*") && cell(c) == cell(s))
            .all(|c| c.direct == c.trials && c.trials > 0);
        if control_perfect {
            out.push((cell(s), s.variant.clone(), s.direct, s.trials));
        }
    }
    out
}

/// The Markdown document: title, how the run was made, the table, the
/// shortfalls against the control, and how to read it.
fn document(report: &Report) -> String {
    let notes: String = report
        .notes
        .iter()
        .map(|note| format!("- {note}\n"))
        .collect();
    let short = shortfalls(report);
    let shortfalls = if short.is_empty() {
        "Every Rust variant punched in every trial of every cell in which go ↔ go did (both \
         orientations of the control).\n"
            .to_owned()
    } else {
        let mut text =
            "Rust variants below 100 % in cells where go ↔ go punched in every trial:\n\n"
                .to_owned();
        for (cell, variant, direct, trials) in short {
            let _ = writeln!(text, "- {cell}: {variant} {direct}/{trials}");
        }
        text
    };
    format!(
        "# {}\n\nWritten by `{}`. {} trials per variant and cell, the variants interleaved trial \
         by trial{}. The raw trials are in the JSON file next to this one.\n\n{notes}\n{}\n\
         ## Against the control\n\n{shortfalls}\n{INTEROP_READING}",
        report.heading(),
        report.written_by(),
        report.trials.0,
        INTEROP.vary.sentence(),
        table::columns(&COLUMNS, &report.summaries),
    )
}

const INTEROP_READING: &str = "## How to read it

- **our NAT / go's NAT**: the router in front of the Rust peer and the one in front of the go \
  peer. *EIM port-restricted* is plain Linux SNAT (endpoint-independent mapping that keeps the \
  port, port-restricted filtering); *EIM port-rewriting* maps endpoint-independently to ports of \
  its own; *firewall* is a stateful firewall without NAT. In the control (go ↔ go) the go peer \
  marked `go*` sits behind our NAT.
- **relay**: our `relay` binary or the go node's circuit relay v2 (`relay.New`).
- **go layout**: *punch port only* is one QUIC listener (a port of the punch range); *443 + punch \
  range* is a listener on UDP 443 (443 + n in trial n) and one on a port of the punch range. Our \
  peer always has the seed layout, 443 + punch range.
- **reserving ← dialing**: the peer that holds the reservation (A, DCUtR's initiator) and the one \
  that dials it through the relay (B). `port-aware` is punchport, `stock` is `with_quic()` and \
  libp2p-dcutr, `go` is go-libp2p v0.52.0's holepunch service.
- **direct**: trials in which the dialing peer reported a direct connection before its timeout, \
  with the Wilson 95 % interval. **median, p90**: relayed-to-direct time at the dialing peer over \
  the successes. **lower bound**: ten one-way delays (a relayed round trip for CONNECT, half of \
  one for SYNC, a direct round trip for the QUIC handshake).
- **won by A / B**: over the successes, whose QUIC Initial opened the dialing peer's first direct \
  connection (its first `connection` line: `dialer` is B's own). The go node reports the QUIC \
  side: a connection its holepunch \"server\" accepted is `listener`, although go-libp2p calls it \
  outbound.
- **A's, B's punches**: every hole-punch attempt each side made, by DCUtR side and QUIC role: \
  from the Rust peer's `attempt` lines (port-aware), from the attempt count (stock dials as a \
  QUIC client every time), from the go node's stderr (`holepunch: attempt ... side=... quic=...`). \
  go's initiator is the QUIC server (random UDP packets, then accept) on attempts 1 and 2 and the \
  client on attempt 3; its receiver is always the client.
";

/// The Go version the run built the node with, for the notes.
pub fn versions_note() -> String {
    let go = std::process::Command::new("go")
        .args(["env", "GOVERSION"])
        .env("GOTOOLCHAIN", "local")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "an unknown Go".to_owned());
    format!(
        "Versions: go-libp2p v0.52.0 with quic-go v0.64.1 (tests/interop/go/go.mod), built with \
         {go}; rust-libp2p 0.57.1 (libp2p-quic 0.14.0, libp2p-dcutr 0.15.0, libp2p-relay 0.22.0)."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Punch, QuicRole, Winner, bench::Record, bench::summaries};

    fn record(variant: &str, direct: bool, winner: Option<Winner>) -> Record {
        Record {
            pairing: "EIM port-restricted / EIM port-restricted".to_owned(),
            relay: "rust relay".to_owned(),
            go_layout: "punch port only".to_owned(),
            variant: variant.to_owned(),
            direct,
            elapsed_ms: direct.then_some(100),
            attempts: Some(1),
            failure: (!direct).then(|| "timeout".to_owned()),
            winner,
            reserving_punches: vec![Punch {
                initiator: true,
                quic: QuicRole::Server,
            }],
            dialing_punches: vec![Punch {
                initiator: false,
                quic: QuicRole::Client,
            }],
            ..Record::default()
        }
    }

    #[test]
    fn variants_put_the_go_node_opposite_ours() {
        let cell = cell(
            Nat::PortRewriting,
            Nat::Firewall,
            RelayImpl::Go,
            Layout::PunchOnly,
            Duration::ZERO,
        );
        let variants = &cell.variants;
        assert_eq!(variants.len(), 6);
        let dials = &variants[0];
        assert_eq!(dials.name, "go ← port-aware");
        assert!(dials.swapped);
        let trial = cell.trial(dials);
        assert_eq!(trial.reserving.implementation, Implementation::Go);
        assert_eq!(trial.reserving.layout, Layout::PunchOnly);
        assert_eq!(
            trial.dialing.implementation,
            Implementation::Rust(TransportKind::PortAware)
        );
        assert_eq!(trial.dialing.layout, Layout::With443);
        assert_eq!(trial.relay, RelayImpl::Go);
        let reserves = &variants[1];
        assert_eq!(reserves.name, "port-aware ← go");
        assert!(!reserves.swapped);
        let control = &variants[5];
        assert_eq!(control.name, "go* ← go");
        assert_eq!(cell.trial(control).reserving.layout, Layout::PunchOnly);
        let smoke: Vec<_> = smoke_cell().variants.into_iter().map(|v| v.name).collect();
        assert_eq!(smoke, ["go ← port-aware", "port-aware ← go"]);
    }

    #[test]
    fn summaries_count_winners_roles_and_shortfalls() {
        let records = vec![
            record("go ← port-aware", true, Some(Winner::Dialing)),
            record("go ← port-aware", false, None),
            record("go* ← go", true, Some(Winner::Reserving)),
            record("go* ← go", true, Some(Winner::Dialing)),
        ];
        let report = Report {
            scenario: INTEROP.name.to_owned(),
            trials: (2, 2),
            title: "t".to_owned(),
            command: "c".to_owned(),
            summaries: summaries(&records),
            records,
            ..Report::default()
        };
        assert_eq!(report.summaries.len(), 2);
        let ours = &report.summaries[0];
        assert_eq!((ours.direct, ours.trials), (1, 2));
        assert_eq!((ours.won_by_reserving, ours.won_by_dialing), (0, 1));
        assert_eq!(ours.reserving_roles, [("initiator/server".to_owned(), 2)]);
        assert_eq!(ours.dialing_roles, [("responder/client".to_owned(), 2)]);
        let short = shortfalls(&report);
        assert_eq!(short.len(), 1, "{short:?}");
        assert_eq!((short[0].2, short[0].3), (1, 2));
        let doc = document(&report);
        assert!(
            doc.contains("| 0 / 1 | initiator/server 2 | responder/client 2 |"),
            "{doc}"
        );
        assert!(doc.contains("go ← port-aware 1/2"), "{doc}");
        let merged = crate::bench::merge(vec![report.clone(), report]).unwrap();
        assert_eq!(merged.records.len(), 8);
        assert_eq!(merged.summaries[0].trials, 4);
    }
}
