//! The go-libp2p interop benchmark: punchport and stock rust-libp2p against
//! the go-libp2p node (`tests/interop/go`) in both roles, through our relay
//! and through go's, and go against go as the control, on identical NAT-lab
//! topologies, interleaved trial by trial.
//!
//! A cell fixes the NAT in front of the Rust peer ("ours"), the NAT in
//! front of the go peer ("theirs"), the relay, the go peer's listeners and
//! the delay. Our peer always has the seed layout (UDP 443 plus the punch
//! range). A variant fixes who runs our side and whether it reserves or
//! dials; the other side is always the go node. The control runs the go node
//! on our side too, with the go layout.

use std::{fmt::Write as _, time::Duration};

use natlab::Nat;
use punchport_node::TransportKind;
use serde::{Deserialize, Serialize};

use crate::{
    Error, Implementation, Layout, Outcome, Punch, PunchLab, RelayImpl, Trial, Winner, bench::Vary,
    stats,
};

/// One topology of the interop benchmark; every variant runs in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// The router in front of our (Rust) peer.
    pub ours: Nat,
    /// The router in front of the go peer.
    pub theirs: Nat,
    /// Who runs the relay.
    pub relay: RelayImpl,
    /// The go peer's listeners.
    pub go_layout: Layout,
    /// One-way delay on each router's WAN link.
    pub delay: Duration,
}

impl Cell {
    /// `EIM port-restricted / firewall (no NAT)`: ours, then theirs.
    pub fn pairing(&self) -> String {
        format!("{} / {}", short(self.ours), short(self.theirs))
    }

    /// The lower bound of relayed-to-direct time, as in
    /// [`bench::Cell::lower_bound`](crate::bench::Cell::lower_bound): ten
    /// one-way delays.
    pub fn lower_bound(&self) -> Duration {
        self.delay * 10
    }
}

fn short(nat: Nat) -> &'static str {
    match nat {
        Nat::PortRestricted => "EIM port-restricted",
        Nat::PortRewriting => "EIM port-rewriting",
        Nat::FullCone => "full cone",
        Nat::RestrictedCone => "restricted cone",
        Nat::Symmetric => "symmetric",
        Nat::Firewall => "firewall (no NAT)",
    }
}

/// The NAT pairings of the full run (ours, theirs): port-preserving on both
/// sides, port-rewriting EIM on ours, a firewall on theirs.
pub const PAIRINGS: [(Nat, Nat); 3] = [
    (Nat::PortRestricted, Nat::PortRestricted),
    (Nat::PortRewriting, Nat::PortRestricted),
    (Nat::PortRestricted, Nat::Firewall),
];

/// The cells of a full run: every pairing, relay and go layout, first
/// without delay, then at 25 ms.
pub fn full_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for delay in [Duration::ZERO, Duration::from_millis(25)] {
        for (ours, theirs) in PAIRINGS {
            for relay in [RelayImpl::Rust, RelayImpl::Go] {
                for go_layout in [Layout::PunchOnly, Layout::With443] {
                    cells.push(Cell {
                        ours,
                        theirs,
                        relay,
                        go_layout,
                        delay,
                    });
                }
            }
        }
    }
    cells
}

/// The cell of the CI smoke and of `bench --interop --smoke`:
/// port-preserving NATs on both sides, our relay, the go peer with one
/// listener, no delay.
pub fn smoke_cell() -> Cell {
    Cell {
        ours: Nat::PortRestricted,
        theirs: Nat::PortRestricted,
        relay: RelayImpl::Rust,
        go_layout: Layout::PunchOnly,
        delay: Duration::ZERO,
    }
}

/// Who runs our side of a trial and whether it reserves or dials; the other
/// side is the go node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// Our side: punchport, stock, or the go node (the control).
    pub ours: Implementation,
    /// Whether our side reserves (DCUtR's initiator) rather than dials.
    pub ours_reserves: bool,
}

impl Variant {
    /// punchport in both roles, then stock in both roles, then go ↔ go with
    /// the go peer on our NAT reserving and dialing.
    pub fn all() -> Vec<Variant> {
        [
            Implementation::Rust(TransportKind::PortAware),
            Implementation::Rust(TransportKind::Stock),
            Implementation::Go,
        ]
        .into_iter()
        .flat_map(|ours| {
            [false, true].map(|ours_reserves| Variant {
                ours,
                ours_reserves,
            })
        })
        .collect()
    }

    /// punchport in both roles: the CI smoke's variants.
    pub fn port_aware_both_roles() -> Vec<Variant> {
        Self::all()
            .into_iter()
            .filter(|v| v.ours == Implementation::Rust(TransportKind::PortAware))
            .collect()
    }

    /// `go ← punchport`: the reserving side, then the dialing one; the one
    /// on our NAT is marked with `*` when both are go.
    pub fn name(&self) -> String {
        let ours = match self.ours {
            Implementation::Go => "go*".to_owned(),
            other => other.name(),
        };
        if self.ours_reserves {
            format!("{ours} ← go")
        } else {
            format!("go ← {ours}")
        }
    }

    /// The trial of this variant in `cell`: reserving on router `a`,
    /// dialing on router `b` of [`Variant::routers`].
    pub fn trial(&self, cell: &Cell) -> Trial {
        let ours_layout = match self.ours {
            Implementation::Go => cell.go_layout,
            Implementation::Rust(_) => Layout::With443,
        };
        let kind = match self.ours {
            Implementation::Rust(kind) => kind,
            Implementation::Go => TransportKind::PortAware,
        };
        let ours = (self.ours, ours_layout);
        let theirs = (Implementation::Go, cell.go_layout);
        let (reserving, dialing) = if self.ours_reserves {
            (ours, theirs)
        } else {
            (theirs, ours)
        };
        Trial::new(kind, Layout::With443)
            .reserving(reserving.0, reserving.1)
            .dialing(dialing.0, dialing.1)
            .relay(cell.relay)
    }

    /// The routers (a, b) of this variant's lab in `cell`.
    pub fn routers(&self, cell: &Cell) -> (Nat, Nat) {
        if self.ours_reserves {
            (cell.ours, cell.theirs)
        } else {
            (cell.theirs, cell.ours)
        }
    }
}

/// One trial's record, as written to the raw JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Our NAT / their NAT.
    pub pairing: String,
    /// `rust relay` or `go relay`.
    pub relay: String,
    /// The go peer's listeners.
    pub go_layout: String,
    /// One-way WAN delay in milliseconds.
    pub delay_ms: u64,
    /// The variant's name.
    pub variant: String,
    /// The trial's number within its cell and variant.
    pub trial: usize,
    /// Whether the dialing peer became direct.
    pub direct: bool,
    /// Its relayed-to-direct time.
    pub elapsed_ms: Option<u64>,
    /// The reserving peer's relayed-to-direct time.
    pub initiator_elapsed_ms: Option<u64>,
    /// Attempts the dialing peer reported (else the reserving one).
    pub attempts: Option<u32>,
    /// Why it failed.
    pub failure: Option<String>,
    /// Whose dial opened the dialing peer's first direct connection.
    pub winner: Option<Winner>,
    /// Direct connections the reserving and the dialing peer reported.
    pub connections: (usize, usize),
    /// The reserving peer's punch attempts.
    pub reserving_punches: Vec<Punch>,
    /// The dialing peer's punch attempts.
    pub dialing_punches: Vec<Punch>,
    /// The dialing peer's exit code.
    pub exit_code: Option<i32>,
    /// The reserving peer's router's flows with the dialing peer
    /// ([`Side::flow_texts`](crate::Side::flow_texts)).
    #[serde(default)]
    pub reserving_flows: Vec<String>,
    /// The dialing peer's router's flows with the reserving peer.
    #[serde(default)]
    pub dialing_flows: Vec<String>,
}

impl Record {
    fn new(cell: &Cell, variant: &Variant, trial: usize, outcome: &Outcome) -> Self {
        Self {
            pairing: cell.pairing(),
            relay: cell.relay.name().to_owned(),
            go_layout: cell.go_layout.name().to_owned(),
            delay_ms: cell.delay.as_millis() as u64,
            variant: variant.name(),
            trial,
            direct: outcome.direct(),
            elapsed_ms: outcome.elapsed_ms(),
            initiator_elapsed_ms: outcome.a.peer.elapsed_ms,
            attempts: outcome.b.peer.attempts.or(outcome.a.peer.attempts),
            failure: outcome.failure().map(str::to_owned),
            winner: outcome.winner(),
            connections: (
                outcome.a.peer.connections.len(),
                outcome.b.peer.connections.len(),
            ),
            reserving_punches: outcome.a.punches.clone(),
            dialing_punches: outcome.b.punches.clone(),
            exit_code: outcome.exit_code,
            reserving_flows: outcome.a.flow_texts(),
            dialing_flows: outcome.b.flow_texts(),
        }
    }

    fn key(&self) -> (&str, &str, &str, u64, &str) {
        (
            &self.pairing,
            &self.relay,
            &self.go_layout,
            self.delay_ms,
            &self.variant,
        )
    }
}

/// Figures of one variant in one cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Our NAT / their NAT.
    pub pairing: String,
    /// The relay.
    pub relay: String,
    /// The go peer's listeners.
    pub go_layout: String,
    /// One-way WAN delay in milliseconds.
    pub delay_ms: u64,
    /// The variant.
    pub variant: String,
    /// Trials run.
    pub trials: usize,
    /// Trials that became direct.
    pub direct: usize,
    /// Wilson 95 % interval of the success rate.
    pub wilson_95: (f64, f64),
    /// Median relayed-to-direct time of the successes.
    pub median_ms: Option<u64>,
    /// 90th percentile of the same.
    pub p90_ms: Option<u64>,
    /// The lower bound for the cell's delay.
    pub lower_bound_ms: u64,
    /// Successes whose first direct connection the reserving peer dialed.
    pub won_by_reserving: usize,
    /// Successes whose first direct connection the dialing peer dialed.
    pub won_by_dialing: usize,
    /// The reserving peer's punch attempts by DCUtR side and QUIC role.
    pub reserving_roles: Vec<(String, usize)>,
    /// The dialing peer's.
    pub dialing_roles: Vec<(String, usize)>,
}

fn role_counts<'a>(punches: impl Iterator<Item = &'a Punch>) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for punch in punches {
        match counts.iter_mut().find(|(name, _)| name == punch.name()) {
            Some((_, n)) => *n += 1,
            None => counts.push((punch.name().to_owned(), 1)),
        }
    }
    counts.sort();
    counts
}

fn summary_of(group: &[&Record]) -> Summary {
    let first = group[0];
    let times: Vec<u64> = group.iter().filter_map(|r| r.elapsed_ms).collect();
    let direct = group.iter().filter(|r| r.direct).count();
    let won = |w: Winner| {
        group
            .iter()
            .filter(|r| r.direct && r.winner == Some(w))
            .count()
    };
    Summary {
        pairing: first.pairing.clone(),
        relay: first.relay.clone(),
        go_layout: first.go_layout.clone(),
        delay_ms: first.delay_ms,
        variant: first.variant.clone(),
        trials: group.len(),
        direct,
        wilson_95: stats::wilson_95(direct, group.len()),
        median_ms: stats::quantile(&times, 0.5),
        p90_ms: stats::quantile(&times, 0.9),
        lower_bound_ms: first.delay_ms * 10,
        won_by_reserving: won(Winner::Reserving),
        won_by_dialing: won(Winner::Dialing),
        reserving_roles: role_counts(group.iter().flat_map(|r| &r.reserving_punches)),
        dialing_roles: role_counts(group.iter().flat_map(|r| &r.dialing_punches)),
    }
}

/// The summaries of `records`: one per cell and variant, in the order they
/// first appear.
pub fn summaries(records: &[Record]) -> Vec<Summary> {
    let mut groups: Vec<Vec<&Record>> = Vec::new();
    for record in records {
        match groups.iter_mut().find(|g| g[0].key() == record.key()) {
            Some(group) => group.push(record),
            None => groups.push(vec![record]),
        }
    }
    groups.iter().map(|g| summary_of(g)).collect()
}

/// Everything an interop run measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Trials per variant and cell.
    pub trials_per_cell: usize,
    /// The table's title.
    pub title: String,
    /// The command that made the run.
    pub command: String,
    /// Versions and how the run was made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Per cell and variant.
    pub summaries: Vec<Summary>,
    /// Every trial.
    pub records: Vec<Record>,
}

/// Runs `trials` trials of each variant in each cell, interleaved (the
/// variants in turn, trial by trial), with the two orientations of a cell
/// (our peer reserving or dialing) in two labs of the same routers. Trial
/// `n` uses the punch range starting at 40000 + n and the ordinary listener
/// on 443 + n (see [`Vary`]). `progress` is told about every trial.
pub fn run(
    cells: &[Cell],
    variants: &[Variant],
    trials: usize,
    timeout: Duration,
    mut progress: impl FnMut(&Record),
) -> Result<Report, Error> {
    crate::go::node()?;
    let vary = Vary {
        punch_port: true,
        ordinary_port: true,
    };
    let mut report = Report {
        trials_per_cell: trials,
        ..Report::default()
    };
    for cell in cells {
        let mut labs: Vec<((Nat, Nat), PunchLab)> = Vec::new();
        for variant in variants {
            let routers = variant.routers(cell);
            if !labs.iter().any(|(r, _)| *r == routers) {
                let lab = PunchLab::builder(routers.0, routers.1)
                    .wan_delay(cell.delay)
                    .build()?;
                labs.push((routers, lab));
            }
        }
        let mut records = Vec::new();
        for trial in 0..trials {
            for variant in variants {
                let routers = variant.routers(cell);
                let Some((_, lab)) = labs.iter().find(|(r, _)| *r == routers) else {
                    unreachable!("a lab was built for every variant's routers");
                };
                let mut spec = variant.trial(cell).timeout(timeout);
                let step = (trial % 1000) as u16;
                if vary.punch_port
                    && let Ok(range) = punchport::PortRange::new(40000 + step, 40050 + step)
                {
                    spec = spec.punch_range(range);
                }
                if vary.ordinary_port {
                    spec = spec.ordinary_port(443 + step);
                }
                let outcome = lab.run(&spec)?;
                let record = Record::new(cell, variant, trial, &outcome);
                progress(&record);
                records.push(record);
            }
        }
        report.summaries.extend(summaries(&records));
        report.records.extend(records);
    }
    Ok(report)
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

/// The report as a Markdown table.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| our NAT / go's NAT | relay | go layout | one-way delay | reserving ← dialing | direct | 95% CI | median | p90 | lower bound | won by A / B | A's punches | B's punches |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let ms = |v: Option<u64>| v.map_or("–".to_owned(), |v| format!("{v} ms"));
    for s in &report.summaries {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} ms | {} | {}/{} ({:.0}%) | {:.0}–{:.0}% | {} | {} | {} ms | {} / {} | {} | {} |",
            s.pairing,
            s.relay,
            s.go_layout,
            s.delay_ms,
            s.variant,
            s.direct,
            s.trials,
            100.0 * s.direct as f64 / s.trials.max(1) as f64,
            100.0 * s.wilson_95.0,
            100.0 * s.wilson_95.1,
            ms(s.median_ms),
            ms(s.p90_ms),
            s.lower_bound_ms,
            s.won_by_reserving,
            s.won_by_dialing,
            roles_text(&s.reserving_roles),
            roles_text(&s.dialing_roles),
        );
    }
    out
}

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
pub fn document(report: &Report) -> String {
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
         by trial; trial n used the punch range starting at 40000 + n and an ordinary listener on \
         UDP 443 + n, the same for every variant. The raw trials are in the JSON file next to this \
         one.\n\n{notes}\n{}\n## Against the control\n\n{shortfalls}\n{INTEROP_READING}",
        report.title,
        report.command,
        report.trials_per_cell,
        markdown(report),
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

/// Reads a report written as JSON by an earlier run.
pub fn read_report(json: &str) -> Result<Report, serde_json::Error> {
    serde_json::from_str(json)
}

/// Joins reports of one run split over processes: their records in order,
/// summarised again, their commands joined. They must agree on trials per
/// cell.
pub fn merge(reports: Vec<Report>) -> Result<Report, String> {
    let mut reports = reports.into_iter();
    let mut joined = reports.next().ok_or("no report to merge")?;
    for report in reports {
        if report.trials_per_cell != joined.trials_per_cell {
            return Err(format!(
                "`{}` and `{}` differ in trials per cell",
                joined.command, report.command
            ));
        }
        joined.command = format!("{}` and `{}", joined.command, report.command);
        for note in report.notes {
            if !joined.notes.contains(&note) {
                joined.notes.push(note);
            }
        }
        joined.records.extend(report.records);
    }
    joined.summaries = summaries(&joined.records);
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QuicRole;

    fn record(variant: &str, direct: bool, winner: Option<Winner>) -> Record {
        Record {
            pairing: "EIM port-restricted / EIM port-restricted".to_owned(),
            relay: "rust relay".to_owned(),
            go_layout: "punch port only".to_owned(),
            delay_ms: 0,
            variant: variant.to_owned(),
            trial: 0,
            direct,
            elapsed_ms: direct.then_some(100),
            initiator_elapsed_ms: None,
            attempts: Some(1),
            failure: (!direct).then(|| "timeout".to_owned()),
            winner,
            connections: (1, 1),
            reserving_punches: vec![Punch {
                initiator: true,
                quic: QuicRole::Server,
            }],
            dialing_punches: vec![Punch {
                initiator: false,
                quic: QuicRole::Client,
            }],
            exit_code: Some(0),
            reserving_flows: Vec::new(),
            dialing_flows: Vec::new(),
        }
    }

    #[test]
    fn variants_put_the_go_node_opposite_ours() {
        let cell = Cell {
            ours: Nat::PortRewriting,
            theirs: Nat::Firewall,
            relay: RelayImpl::Go,
            go_layout: Layout::PunchOnly,
            delay: Duration::ZERO,
        };
        let variants = Variant::all();
        assert_eq!(variants.len(), 6);
        let dials = variants[0];
        assert_eq!(dials.name(), "go ← port-aware");
        assert_eq!(dials.routers(&cell), (Nat::Firewall, Nat::PortRewriting));
        let trial = dials.trial(&cell);
        assert_eq!(trial.reserving.implementation, Implementation::Go);
        assert_eq!(trial.reserving.layout, Layout::PunchOnly);
        assert_eq!(
            trial.dialing.implementation,
            Implementation::Rust(TransportKind::PortAware)
        );
        assert_eq!(trial.dialing.layout, Layout::With443);
        assert_eq!(trial.relay, RelayImpl::Go);
        let reserves = variants[1];
        assert_eq!(reserves.name(), "port-aware ← go");
        assert_eq!(reserves.routers(&cell), (Nat::PortRewriting, Nat::Firewall));
        let control = variants[5];
        assert_eq!(control.name(), "go* ← go");
        assert_eq!(control.trial(&cell).reserving.layout, Layout::PunchOnly);
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
            trials_per_cell: 2,
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
        let merged = merge(vec![report.clone(), report]).unwrap();
        assert_eq!(merged.records.len(), 8);
        assert_eq!(merged.summaries[0].trials, 4);
    }
}
