//! The hole-punch benchmark: stock and port-aware on identical topologies,
//! interleaved, per NAT pairing, layout and delay.

use std::{fmt::Write as _, time::Duration};

use natlab::Nat;
use punchport::{dcutr::CandidateMode, quic::InitiatorRole};
use punchport_node::TransportKind;
use serde::{Deserialize, Serialize};

use crate::{Error, Layout, Outcome, PunchLab, Trial, stats};

/// One topology of the benchmark; both transports run in it, interleaved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// Router of the reserving peer.
    pub a: Nat,
    /// Router of the dialing peer.
    pub b: Nat,
    /// The peers' listeners.
    pub layout: Layout,
    /// One-way delay on each router's WAN link.
    pub delay: Duration,
}

impl Cell {
    /// The pairing as text, e.g. `port-restricted / full cone`.
    pub fn pairing(&self) -> String {
        format!("{} / {}", short(self.a), short(self.b))
    }

    /// The lower bound of relayed-to-direct time: a relayed round trip for
    /// CONNECT, half of one for SYNC, and a direct round trip for the QUIC
    /// handshake. With the delay on both routers' links and none on the
    /// relay's, both round trips are four delays: ten delays in all.
    pub fn lower_bound(&self) -> Duration {
        self.delay * LOWER_BOUND_DELAYS
    }

    /// Whether a punch can work in this pairing at all: neither side maps
    /// endpoint-dependently.
    pub fn punchable(&self) -> bool {
        self.a != Nat::Symmetric && self.b != Nat::Symmetric
    }
}

/// One-way delays in the lower bound; see [`Cell::lower_bound`].
const LOWER_BOUND_DELAYS: u32 = 10;

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

/// The cells of a full run: the delayed cells first, then every pairing
/// without delay, each in both layouts.
pub fn full_cells() -> Vec<Cell> {
    let eim = Nat::PortRestricted;
    let layouts = [Layout::With443, Layout::PunchOnly];
    let mut cells: Vec<Cell> = layouts
        .iter()
        .map(|&layout| Cell {
            a: eim,
            b: eim,
            layout,
            delay: Duration::from_millis(25),
        })
        .collect();
    for layout in layouts {
        for (a, b) in [
            (eim, eim),
            (eim, Nat::FullCone),
            (eim, Nat::RestrictedCone),
            (eim, Nat::Firewall),
            (Nat::PortRewriting, eim),
            (Nat::Symmetric, eim),
        ] {
            cells.push(Cell {
                a,
                b,
                layout,
                delay: Duration::ZERO,
            });
        }
    }
    cells
}

/// The cells of the initiator-role comparison: the seed layout behind two
/// port-preserving NATs, without and with delay.
pub fn role_cells() -> Vec<Cell> {
    [Duration::ZERO, Duration::from_millis(25)]
        .into_iter()
        .map(|delay| Cell {
            a: Nat::PortRestricted,
            b: Nat::PortRestricted,
            layout: Layout::With443,
            delay,
        })
        .collect()
}

/// The seed layout (443 plus the punch range) in every pairing that is not
/// symmetric, without and with delay: the cells where the listener choice
/// matters.
pub fn seed_cells() -> Vec<Cell> {
    full_cells()
        .into_iter()
        .filter(|c| c.layout == Layout::With443 && c.punchable())
        .collect()
}

/// The cell of a smoke run.
pub fn smoke_cells() -> Vec<Cell> {
    vec![Cell {
        a: Nat::PortRestricted,
        b: Nat::PortRestricted,
        layout: Layout::With443,
        delay: Duration::ZERO,
    }]
}

/// What runs in each cell: a transport, how its initiator punches, and
/// which candidates it advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// The name in tables.
    pub name: String,
    /// punchport or stock.
    pub kind: TransportKind,
    /// How punchport's initiator punches.
    pub role: InitiatorRole,
    /// Which candidates punchport advertises.
    pub candidates: CandidateMode,
}

impl Variant {
    /// Stock and port-aware with the default role and candidates: the
    /// comparison.
    pub fn stock_and_port_aware() -> Vec<Variant> {
        [TransportKind::Stock, TransportKind::PortAware]
            .into_iter()
            .map(|kind| Variant {
                name: kind.to_string(),
                kind,
                role: InitiatorRole::default(),
                candidates: CandidateMode::SocketAware,
            })
            .collect()
    }

    /// Stock, and port-aware with range and with socket-aware candidates.
    pub fn stock_and_candidate_modes() -> Vec<Variant> {
        let port_aware = |candidates: CandidateMode| Variant {
            name: format!("port-aware, {candidates}"),
            kind: TransportKind::PortAware,
            role: InitiatorRole::default(),
            candidates,
        };
        vec![
            Variant {
                name: "stock".to_owned(),
                kind: TransportKind::Stock,
                role: InitiatorRole::default(),
                candidates: CandidateMode::Range,
            },
            port_aware(CandidateMode::Range),
            port_aware(CandidateMode::SocketAware),
        ]
    }

    /// Port-aware with the client and with the server initiator role.
    pub fn initiator_roles() -> Vec<Variant> {
        [
            ("client role", InitiatorRole::Client),
            ("server role", InitiatorRole::Server),
        ]
        .into_iter()
        .map(|(name, role)| Variant {
            name: name.to_owned(),
            kind: TransportKind::PortAware,
            role,
            candidates: CandidateMode::Range,
        })
        .collect()
    }
}

/// One trial's record, as written to the raw JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The NAT pairing.
    pub pairing: String,
    /// The layout.
    pub layout: String,
    /// One-way WAN delay in milliseconds.
    pub delay_ms: u64,
    /// The variant's name (`stock`, `port-aware`, ...).
    pub transport: String,
    /// The trial's number within its cell and transport.
    pub trial: usize,
    /// Whether the dialing peer became direct.
    pub direct: bool,
    /// Its relayed-to-direct time.
    pub elapsed_ms: Option<u64>,
    /// The reserving peer's relayed-to-direct time.
    pub initiator_elapsed_ms: Option<u64>,
    /// DCUtR attempts the dialing peer made.
    pub attempts: Option<u32>,
    /// Why it failed.
    pub failure: Option<String>,
}

impl Record {
    fn new(cell: &Cell, variant: &Variant, trial: usize, outcome: &Outcome) -> Self {
        Self {
            pairing: cell.pairing(),
            layout: cell.layout.name().to_owned(),
            delay_ms: cell.delay.as_millis() as u64,
            transport: variant.name.clone(),
            trial,
            direct: outcome.direct(),
            elapsed_ms: outcome.elapsed_ms(),
            initiator_elapsed_ms: outcome.a.peer.elapsed_ms,
            attempts: outcome.b.peer.attempts.or(outcome.a.peer.attempts),
            failure: outcome.failure().map(str::to_owned),
        }
    }
}

/// Figures of one transport in one cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// The NAT pairing.
    pub pairing: String,
    /// The layout.
    pub layout: String,
    /// One-way WAN delay in milliseconds.
    pub delay_ms: u64,
    /// The variant's name.
    pub transport: String,
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
    /// The lower bound for the cell's delays.
    pub lower_bound_ms: u64,
    /// DCUtR attempts per success (all attempts of all trials / successes).
    pub attempts_per_success: Option<f64>,
}

fn summarise(cell: &Cell, variant: &Variant, records: &[Record]) -> Summary {
    let mine: Vec<_> = records
        .iter()
        .filter(|r| r.transport == variant.name)
        .collect();
    summary_of(
        cell.pairing(),
        cell.layout.name().to_owned(),
        cell.delay.as_millis() as u64,
        variant.name.clone(),
        &mine,
    )
}

fn summary_of(
    pairing: String,
    layout: String,
    delay_ms: u64,
    transport: String,
    mine: &[&Record],
) -> Summary {
    let times: Vec<u64> = mine.iter().filter_map(|r| r.elapsed_ms).collect();
    let direct = mine.iter().filter(|r| r.direct).count();
    let attempts: u32 = mine.iter().filter_map(|r| r.attempts).sum();
    Summary {
        pairing,
        layout,
        delay_ms,
        transport,
        trials: mine.len(),
        direct,
        wilson_95: stats::wilson_95(direct, mine.len()),
        median_ms: stats::quantile(&times, 0.5),
        p90_ms: stats::quantile(&times, 0.9),
        lower_bound_ms: delay_ms * u64::from(LOWER_BOUND_DELAYS),
        attempts_per_success: (direct > 0).then(|| f64::from(attempts) / direct as f64),
    }
}

/// The summaries of `records`: one per cell and transport, in the order
/// they first appear.
pub fn summaries(records: &[Record]) -> Vec<Summary> {
    let mut groups: Vec<(&Record, Vec<&Record>)> = Vec::new();
    for record in records {
        let same = |r: &Record| {
            (&r.pairing, &r.layout, r.delay_ms, &r.transport)
                == (
                    &record.pairing,
                    &record.layout,
                    record.delay_ms,
                    &record.transport,
                )
        };
        match groups.iter_mut().find(|(first, _)| same(first)) {
            Some((_, group)) => group.push(record),
            None => groups.push((record, vec![record])),
        }
    }
    groups
        .into_iter()
        .map(|(first, group)| {
            summary_of(
                first.pairing.clone(),
                first.layout.clone(),
                first.delay_ms,
                first.transport.clone(),
                &group,
            )
        })
        .collect()
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Trials per transport and cell.
    pub trials_per_cell: usize,
    /// Whether the punch port moved from trial to trial.
    #[serde(default)]
    pub vary_ports: bool,
    /// Whether the ordinary listener's port moved from trial to trial.
    #[serde(default)]
    pub vary_ordinary_port: bool,
    /// The table's title.
    #[serde(default)]
    pub title: String,
    /// The command that made the run.
    #[serde(default)]
    pub command: String,
    /// How the run was made, where the command does not say it all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Per cell and transport.
    pub summaries: Vec<Summary>,
    /// Every trial.
    pub records: Vec<Record>,
}

/// Which ports move from trial to trial.
///
/// Stock libp2p-quic picks the socket of a dial by hashing the remote
/// address, so in a lab with fixed addresses it has the same luck in every
/// trial. Moving ports gives it the varied remote addresses of real
/// networks: with `punch_port`, trial `n` of every variant uses the punch
/// range starting at 40000 + n; with `ordinary_port`, its ordinary listener
/// (443 in the seed layout) is on 443 + n.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vary {
    /// Move the punch range.
    pub punch_port: bool,
    /// Move the ordinary listener.
    pub ordinary_port: bool,
}

/// Runs `trials` trials of each variant in each cell, interleaved (stock,
/// port-aware, stock, ...), each cell in its own lab, moving the ports that
/// `vary` names. `progress` is told about every trial.
pub fn run(
    cells: &[Cell],
    variants: &[Variant],
    trials: usize,
    timeout: Duration,
    vary: Vary,
    mut progress: impl FnMut(&Record),
) -> Result<Report, Error> {
    let mut report = Report {
        trials_per_cell: trials,
        vary_ports: vary.punch_port,
        vary_ordinary_port: vary.ordinary_port,
        ..Report::default()
    };
    for cell in cells {
        let lab = PunchLab::builder(cell.a, cell.b)
            .wan_delay(cell.delay)
            .build()?;
        let mut records = Vec::new();
        for trial in 0..trials {
            for variant in variants {
                let mut spec = Trial::new(variant.kind, cell.layout)
                    .timeout(timeout)
                    .initiator_role(variant.role)
                    .candidates(variant.candidates);
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
        for variant in variants {
            report.summaries.push(summarise(cell, variant, &records));
        }
        report.records.extend(records);
    }
    Ok(report)
}

/// The report as a Markdown table.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| pairing (A / B) | layout | one-way delay | transport | direct | 95% CI | median | p90 | lower bound | attempts per success |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    let ms = |v: Option<u64>| v.map_or("–".to_owned(), |v| format!("{v} ms"));
    for s in &report.summaries {
        let _ = writeln!(
            out,
            "| {} | {} | {} ms | {} | {}/{} ({:.0}%) | {:.0}–{:.0}% | {} | {} | {} ms | {} |",
            s.pairing,
            s.layout,
            s.delay_ms,
            s.transport,
            s.direct,
            s.trials,
            100.0 * s.direct as f64 / s.trials.max(1) as f64,
            100.0 * s.wilson_95.0,
            100.0 * s.wilson_95.1,
            ms(s.median_ms),
            ms(s.p90_ms),
            s.lower_bound_ms,
            s.attempts_per_success
                .map_or("–".to_owned(), |a| format!("{a:.2}")),
        );
    }
    out
}

/// The Markdown document: a title, how the run was made, the table, and how
/// to read it.
pub fn document(report: &Report, title: &str, command: &str, table: &str) -> String {
    format!(
        "# {title}\n\n\
         Written by `{command}`. {} trials per variant and cell, the variants interleaved \
         trial by trial on the same topology{}. The raw trials are in the JSON file next to \
         this one.\n\n{}{table}\n{READING}",
        report.trials_per_cell,
        match (report.vary_ports, report.vary_ordinary_port) {
            (false, false) => "; every trial used the punch range 40000-40050 and UDP 443",
            (true, false) =>
                "; trial n used the punch range starting at 40000 + n, the same for every variant",
            (false, true) =>
                "; trial n's ordinary listener was on UDP 443 + n, the same for every variant",
            (true, true) =>
                "; trial n used the punch range starting at 40000 + n and an ordinary listener \
                 on UDP 443 + n, the same for every variant",
        },
        report
            .notes
            .iter()
            .map(|note| format!("- {note}\n"))
            .chain((!report.notes.is_empty()).then(|| "\n".to_owned()))
            .collect::<String>(),
    )
}

const READING: &str = "## How to read it

- **pairing**: the router in front of the reserving peer (A, DCUtR's initiator) and the one in \
  front of the dialing peer (B). *EIM port-restricted* is plain Linux SNAT: endpoint-independent \
  mapping that keeps the port, port-restricted filtering. *EIM port-rewriting* maps \
  endpoint-independently to ports of its own choosing. *Symmetric* is `snat ... fully-random`. \
  *Firewall* is a stateful firewall without NAT. `docs/architecture.md` has how the lab builds each.
- **layout**: *443 + punch range* is the deployment punchport is for: both peers listen on UDP \
  443 and on a port of 40000-40050. *punch port only* has one listener.
- **transport**: *stock* is `with_quic()` and plain DCUtR; *port-aware, range* and \
  *port-aware, socket-aware* are punchport with its two candidate modes. All run the same node \
  binaries with the same swarm settings (including `V1Lazy` stream negotiation; `swarm_config` \
  in `crates/node/src/peer/swarm.rs`).
- **direct**: trials in which the dialing peer had a direct connection within the timeout (20 s, \
  the `--timeout-secs` default; DCUtR's initiator makes at most three attempts), with the Wilson \
  95 % interval (`wilson_matches_known_values` in `crates/lab/src/stats.rs`).
- **median, p90**: time from the relayed connection to the first direct connection, at the \
  dialing peer, over the successful trials (nearest rank: `quantiles_by_nearest_rank`).
- **lower bound**: a relayed round trip (CONNECT), half of one (SYNC) and a direct round trip \
  (the QUIC handshake). With the delay on both routers' WAN links and none on the relay's, that \
  is ten one-way delays (`Cell::lower_bound`). Without delay it is the processing time only, \
  shown as 0 ms.
- **attempts per success**: the dialing peer's direct dials (one per DCUtR attempt) over all \
  trials, divided by the successes.

## More benchmarks

- [benchmarks-hard-nat.md](benchmarks-hard-nat.md): endpoint-dependent NATs (symmetric, \
  Kubernetes `masquerade fully-random`) against the others, with birthday punching \
  (`bench --hard-nat`).
- [benchmarks-scale.md](benchmarks-scale.md): 50 pods behind each of two Kubernetes nodes \
  punching pairwise through one relay at once, and a busy relay (`scale`); its plot:

  ![time to direct, 50 + 50 pods](benchmarks-scale.svg)

- [benchmarks-throughput.md](benchmarks-throughput.md): bulk transfer over the punched direct \
  connection, stock's, and the relayed one (`throughput`).
- [benchmarks-interop.md](benchmarks-interop.md) and [interop.md](interop.md): punching with \
  go-libp2p (`bench --interop`).
- [benchmarks-roles.md](benchmarks-roles.md) and \
  [benchmarks-varied-ports.md](benchmarks-varied-ports.md): the initiator's QUIC role, and \
  ordinary ports that vary per trial.
";

/// Joins reports of one run split over processes (`--cells`): their
/// records in order, summarised again, their commands joined. They must
/// agree on trials per cell and on what moved from trial to trial.
pub fn merge(reports: Vec<Report>) -> Result<Report, String> {
    let mut reports = reports.into_iter();
    let mut joined = reports.next().ok_or("no report to merge")?;
    for report in reports {
        if (
            report.trials_per_cell,
            report.vary_ports,
            report.vary_ordinary_port,
        ) != (
            joined.trials_per_cell,
            joined.vary_ports,
            joined.vary_ordinary_port,
        ) {
            return Err(format!(
                "`{}` and `{}` differ in trials per cell or in the ports they moved",
                joined.command, report.command
            ));
        }
        joined.command = format!("{}` and `{}", joined.command, report.command);
        joined.notes.extend(report.notes);
        joined.records.extend(report.records);
    }
    joined.summaries = summaries(&joined.records);
    Ok(joined)
}

/// Reads a report written as JSON by an earlier run.
pub fn read_report(json: &str) -> Result<Report, serde_json::Error> {
    serde_json::from_str(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(transport: &str, trial: usize, elapsed_ms: Option<u64>) -> Record {
        Record {
            pairing: "EIM port-restricted / full cone".to_owned(),
            layout: "443 + punch range".to_owned(),
            delay_ms: 25,
            transport: transport.to_owned(),
            trial,
            direct: elapsed_ms.is_some(),
            elapsed_ms,
            initiator_elapsed_ms: None,
            attempts: Some(1),
            failure: elapsed_ms.is_none().then(|| "timeout".to_owned()),
        }
    }

    fn report(command: &str, records: Vec<Record>) -> Report {
        Report {
            trials_per_cell: 2,
            command: command.to_owned(),
            summaries: summaries(&records),
            records,
            ..Report::default()
        }
    }

    #[test]
    fn merged_reports_are_summarised_per_cell_and_transport() {
        let mut first = report(
            "--cells 1",
            vec![record("stock", 0, None), record("port-aware", 0, Some(300))],
        );
        first.notes.push("cell 1 ran first".to_owned());
        let second = report(
            "--cells 2",
            vec![
                record("stock", 1, Some(310)),
                record("port-aware", 1, Some(320)),
            ],
        );
        let merged = merge(vec![first, second]).unwrap();
        assert_eq!(merged.records.len(), 4);
        let names: Vec<_> = merged
            .summaries
            .iter()
            .map(|s| s.transport.as_str())
            .collect();
        assert_eq!(names, ["stock", "port-aware"]);
        let stock = &merged.summaries[0];
        assert_eq!((stock.trials, stock.direct), (2, 1));
        assert_eq!(stock.attempts_per_success, Some(2.0));
        assert_eq!(merged.summaries[1].median_ms, Some(300));
        assert_eq!(merged.summaries[1].lower_bound_ms, 250);
        assert!(merged.command.contains("--cells 1` and `--cells 2"));
        let doc = document(&merged, "t", &merged.command, &markdown(&merged));
        assert!(doc.contains("\n- cell 1 ran first\n\n| pairing"), "{doc}");
    }

    #[test]
    fn reports_of_different_runs_do_not_merge() {
        let mut other = report("--trials 5", Vec::new());
        other.trials_per_cell = 5;
        let error = merge(vec![report("--trials 2", Vec::new()), other]).unwrap_err();
        assert!(error.contains("differ"), "{error}");
        assert!(merge(Vec::new()).is_err());
    }
}
