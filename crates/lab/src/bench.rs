//! The benchmark application: what each benchmark runs in the harness, and
//! the documents in `docs/` written from what it measured.
//!
//! A benchmark of punch trials is a [`Scenario`]: data naming its cells
//! (NAT pairing, delay, listeners, relay, and the [`Variant`]s that run in
//! each), its defaults and its document. [`run`] runs any of them into one
//! [`Report`] of [`Record`]s (the same figures for all), [`merge`] joins the
//! reports of a run split over processes, and every report, the
//! [`Report`] of punch trials as well as those of [`scale`],
//! [`throughput`] and [`soak`], is a [`Document`]: [`read`] from its JSON,
//! and [written](fn@write) (JSON, Markdown, plots) or [`render`]ed
//! (Markdown and plots) by the same functions, with the tables of [`table`]
//! and the plots of [`plot`].
//!
//! The scenarios: [`pairings`] (docs/benchmarks.md, the seed layout with
//! varied ports, the initiator's roles), [`interop`] (go-libp2p),
//! [`hard_nat`] (endpoint-dependent NATs, routers that accept unsolicited
//! packets, IPv6).

mod files;
pub mod hard_nat;
pub mod interop;
pub mod pairings;
pub mod plot;
mod record;
pub mod scale;
pub mod soak;
pub mod table;
pub mod throughput;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use natlab::{Input, Ipv6Kind, RouterKind};
use punchport::{CandidateMode, InitiatorRole};
use punchport_node::{TransportKind, cli::PunchArgs};
use serde::{Deserialize, Deserializer, Serialize};

pub use files::{
    Document, Files, Plot, build_nodes, docs, exit, read, render, render_or_run, rendered,
    require_lab, write,
};
pub use record::{AttemptCost, CostFigures, Record, Summary, summaries};

use crate::{Error, Implementation, Layout, PunchLab, PunchLabBuilder, RelayImpl, Trial};

/// A run of punch trials that `json` holds, as the scenario it names, or
/// as `scenario` when it names none (JSON written before reports named
/// their scenario).
pub fn read_report(json: &Path, scenario: &'static Scenario) -> Result<Report, String> {
    let mut report: Report = read(json)?;
    if report.scenario.is_empty() {
        report.scenario = scenario.name.to_owned();
    }
    Ok(report)
}

/// A benchmark of punch trials, as data: its cells, each with the variants
/// that run in it, its defaults, and its document.
#[derive(Debug)]
pub struct Scenario {
    /// Its name, the report's `scenario` in the JSON.
    pub name: &'static str,
    /// The `bench` flags that select it, for the command its document names
    /// when an older JSON names none.
    pub flag: &'static str,
    /// Its document's file name without extension.
    pub stem: &'static str,
    /// Its document's title.
    pub title: &'static str,
    /// Its cells, in the order of its table.
    pub cells: fn() -> Vec<Cell>,
    /// Trials per variant and cell that it always runs (a smoke run), else
    /// those asked for.
    pub trials: Option<usize>,
    /// How long a dialing peer waits for a direct connection, unless asked
    /// otherwise.
    pub timeout: Duration,
    /// The ports that move from trial to trial, besides those asked for.
    pub vary: Vary,
    /// Whether it is a smoke run, written to the temporary directory.
    pub smoke: bool,
    /// Notes a run adds to its report (the versions it ran).
    pub notes: fn() -> Vec<String>,
    /// Its Markdown document.
    pub document: fn(&Report) -> String,
    /// Its plots.
    pub plots: fn(&Report) -> Vec<Plot>,
}

/// Every scenario.
pub const SCENARIOS: [&Scenario; 10] = [
    &pairings::FULL,
    &pairings::SEED,
    &pairings::VARIED_PORTS,
    &pairings::ROLES,
    &pairings::SMOKE,
    &interop::INTEROP,
    &interop::SMOKE,
    &hard_nat::HARD_NAT,
    &hard_nat::OPEN_ROUTERS,
    &hard_nat::IPV6,
];

impl Scenario {
    /// The scenario of this name.
    pub fn named(name: &str) -> Option<&'static Scenario> {
        SCENARIOS.into_iter().find(|s| s.name == name)
    }

    /// A scenario without plots.
    fn no_plots(_: &Report) -> Vec<Plot> {
        Vec::new()
    }
}

/// One-way delays in the lower bound; see [`Cell::lower_bound`].
const LOWER_BOUND_DELAYS: u32 = 10;

/// One topology of a benchmark, and the variants that run in it,
/// interleaved trial by trial.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The pairing, as the document names it.
    pub pairing: String,
    /// The reserving peer's router.
    pub a: RouterKind,
    /// The dialing peer's router.
    pub b: RouterKind,
    /// Whether router A and B accept unsolicited packets (`None`: the
    /// kind's default).
    pub inputs: (Option<Input>, Option<Input>),
    /// IPv6 behind routers A and B (a dual-stack lab when either is set).
    pub ipv6: (Option<Ipv6Kind>, Option<Ipv6Kind>),
    /// Whether the hosts behind A and B have no IPv4.
    pub ipv6_only: (bool, bool),
    /// One-way delay on each router's WAN link.
    pub delay: Duration,
    /// The Rust peers' listeners.
    pub layout: Layout,
    /// The go peers' listeners, if not [`layout`](Self::layout).
    pub go_layout: Option<Layout>,
    /// Who runs the relay.
    pub relay: RelayImpl,
    /// What runs in it.
    pub variants: Vec<Variant>,
}

/// The routers of a lab, as a [`Cell`] and a variant's orientation ask.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Routers {
    a: RouterKind,
    b: RouterKind,
    inputs: (Option<Input>, Option<Input>),
    ipv6: (Option<Ipv6Kind>, Option<Ipv6Kind>),
    ipv6_only: (bool, bool),
}

impl Cell {
    /// Routers `a` and `b` at `delay`, our relay, no IPv6, each router's
    /// default input.
    pub fn new(
        pairing: impl Into<String>,
        a: impl Into<RouterKind>,
        b: impl Into<RouterKind>,
        delay: Duration,
        layout: Layout,
        variants: Vec<Variant>,
    ) -> Self {
        Self {
            pairing: pairing.into(),
            a: a.into(),
            b: b.into(),
            inputs: (None, None),
            ipv6: (None, None),
            ipv6_only: (false, false),
            delay,
            layout,
            go_layout: None,
            relay: RelayImpl::Rust,
            variants,
        }
    }

    /// The lower bound of relayed-to-direct time: a relayed round trip for
    /// CONNECT, half of one for SYNC, and a direct round trip for the QUIC
    /// handshake. With the delay on both routers' links and none on the
    /// relay's, both round trips are four delays: ten delays in all.
    pub fn lower_bound(&self) -> Duration {
        self.delay * LOWER_BOUND_DELAYS
    }

    fn routers(&self, swapped: bool) -> Routers {
        fn flip<T>((a, b): (T, T), swapped: bool) -> (T, T) {
            if swapped { (b, a) } else { (a, b) }
        }
        let (a, b) = flip((self.a, self.b), swapped);
        Routers {
            a,
            b,
            inputs: flip(self.inputs, swapped),
            ipv6: flip(self.ipv6, swapped),
            ipv6_only: flip(self.ipv6_only, swapped),
        }
    }

    /// Its lab, with the routers swapped for a variant that runs
    /// [`swapped`](Variant::swapped).
    pub fn lab(&self, swapped: bool) -> PunchLabBuilder {
        let r = self.routers(swapped);
        PunchLab::builder(r.a, r.b)
            .wan_delay(self.delay)
            .inputs(r.inputs.0, r.inputs.1)
            .ipv6(r.ipv6.0, r.ipv6.1)
            .ipv6_only(r.ipv6_only.0, r.ipv6_only.1)
    }

    /// The trial of `variant` in it: a go peer with the go layout, a Rust
    /// peer with the cell's.
    pub fn trial(&self, variant: &Variant) -> Trial {
        let layout = |implementation| match implementation {
            Implementation::Go => self.go_layout.unwrap_or(self.layout),
            Implementation::Rust(_) => self.layout,
        };
        Trial::new(TransportKind::PortAware, self.layout)
            .reserving(variant.reserving, layout(variant.reserving))
            .dialing(variant.dialing, layout(variant.dialing))
            .relay(self.relay)
            .punch(variant.punch.clone())
    }

    /// Whether any trial in it runs the go node.
    pub fn uses_go(&self) -> bool {
        self.variants.iter().any(|v| self.trial(v).uses_go())
    }
}

/// What runs in a cell: who runs each side, and how punchport punches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// The name in tables.
    pub name: String,
    /// The reserving peer (DCUtR's initiator).
    pub reserving: Implementation,
    /// The dialing peer.
    pub dialing: Implementation,
    /// punchport's settings (the range is the trial's).
    pub punch: PunchArgs,
    /// A control, run [`Plan::control_trials`] times per cell.
    pub control: bool,
    /// Whether it runs with the cell's routers swapped: the reserving peer
    /// behind router B (interop's cells name our NAT first, whichever side
    /// our peer takes).
    pub swapped: bool,
}

impl Variant {
    /// `reserving` against `dialing`, punchport as shipped.
    pub fn new(
        name: impl Into<String>,
        reserving: Implementation,
        dialing: Implementation,
    ) -> Self {
        Self {
            name: name.into(),
            reserving,
            dialing,
            punch: PunchArgs::default(),
            control: false,
            swapped: false,
        }
    }

    /// `kind` on both sides, punchport advertising `candidates`.
    pub fn both(name: impl Into<String>, kind: TransportKind, candidates: CandidateMode) -> Self {
        let rust = Implementation::Rust(kind);
        let mut variant = Self::new(name, rust, rust);
        variant.punch.candidates = candidates;
        variant
    }

    /// Stock and port-aware with the default role and candidates: the
    /// comparison.
    pub fn stock_and_port_aware() -> Vec<Variant> {
        [TransportKind::Stock, TransportKind::PortAware]
            .into_iter()
            .map(|kind| Variant::both(kind.to_string(), kind, CandidateMode::SocketAware))
            .collect()
    }

    /// Stock, and port-aware with range and with socket-aware candidates.
    pub fn stock_and_candidate_modes() -> Vec<Variant> {
        let port_aware = |candidates: CandidateMode| {
            let name = format!("port-aware, {candidates}");
            Variant::both(name, TransportKind::PortAware, candidates)
        };
        vec![
            Variant::both("stock", TransportKind::Stock, CandidateMode::Range),
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
        .map(|(name, role)| {
            let mut variant = Variant::both(name, TransportKind::PortAware, CandidateMode::Range);
            variant.punch.initiator_role = role;
            variant
        })
        .collect()
    }
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

impl Vary {
    /// Nothing moves.
    pub const NONE: Vary = Vary {
        punch_port: false,
        ordinary_port: false,
    };
    /// Both move.
    pub const BOTH: Vary = Vary {
        punch_port: true,
        ordinary_port: true,
    };

    /// What moves in either.
    pub fn or(self, other: Vary) -> Vary {
        Vary {
            punch_port: self.punch_port || other.punch_port,
            ordinary_port: self.ordinary_port || other.ordinary_port,
        }
    }

    /// `trial` as trial number `n`.
    pub fn apply(self, mut trial: Trial, n: usize) -> Trial {
        let step = (n % 1000) as u16;
        if self.punch_port
            && let Ok(range) = punchport::PortRange::new(40000 + step, 40050 + step)
        {
            trial = trial.punch_range(range);
        }
        if self.ordinary_port {
            trial = trial.ordinary_port(443 + step);
        }
        trial
    }

    /// How a document says it, after "interleaved trial by trial".
    pub fn sentence(self) -> &'static str {
        match (self.punch_port, self.ordinary_port) {
            (false, false) => "; every trial used the punch range 40000-40050 and UDP 443",
            (true, false) => {
                "; trial n used the punch range starting at 40000 + n, the same for every variant"
            }
            (false, true) => {
                "; trial n's ordinary listener was on UDP 443 + n, the same for every variant"
            }
            (true, true) => {
                "; trial n used the punch range starting at 40000 + n and an ordinary listener \
                 on UDP 443 + n, the same for every variant"
            }
        }
    }
}

/// A run of a scenario: which of its cells, how many trials, how long each
/// may take, and what moves from trial to trial.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The scenario.
    pub scenario: &'static Scenario,
    /// The cells to run.
    pub cells: Vec<Cell>,
    /// Trials per variant and cell.
    pub trials: usize,
    /// Trials per control variant and cell.
    pub control_trials: usize,
    /// How long a dialing peer waits for a direct connection.
    pub timeout: Duration,
    /// What moves from trial to trial.
    pub vary: Vary,
    /// The command that made the run, for the document.
    pub command: String,
    /// The part of the scenario's cells it runs (numbered from 1), if not
    /// all.
    pub part: Option<(usize, usize)>,
}

impl Plan {
    /// Every cell of `scenario`, `trials` trials of every variant (or the
    /// scenario's own number), its timeout and what it moves.
    pub fn new(scenario: &'static Scenario, trials: usize) -> Self {
        let trials = scenario.trials.unwrap_or(trials);
        Self {
            scenario,
            cells: (scenario.cells)(),
            trials,
            control_trials: trials,
            timeout: scenario.timeout,
            vary: scenario.vary,
            command: String::new(),
            part: None,
        }
    }

    /// Runs cells `from` to `to` only (numbered from 1 in the order of the
    /// table): to split a run over processes, whose reports [`merge`]
    /// joins.
    pub fn part(&mut self, from: usize, to: usize) -> Result<(), String> {
        if from < 1 || from > to || to > self.cells.len() {
            return Err(format!(
                "--cells: this run has cells 1-{}, not {from}-{to}",
                self.cells.len()
            ));
        }
        self.cells = self.cells[from - 1..to].to_vec();
        self.part = Some((from, to));
        Ok(())
    }

    /// Runs only the variants of these names (all for none).
    pub fn only(&mut self, names: &[String]) -> Result<(), String> {
        if names.is_empty() {
            return Ok(());
        }
        let mut all: Vec<String> = Vec::new();
        for cell in &mut self.cells {
            for variant in &cell.variants {
                if !all.contains(&variant.name) {
                    all.push(variant.name.clone());
                }
            }
            cell.variants.retain(|v| names.contains(&v.name));
        }
        self.cells.retain(|c| !c.variants.is_empty());
        if self.cells.is_empty() {
            return Err(format!("--only: no such variant; the variants are {all:?}"));
        }
        Ok(())
    }

    /// Where its document goes: `docs/` (the temporary directory for a
    /// smoke run), named for the scenario and the part it runs.
    pub fn out(&self) -> PathBuf {
        let dir = if self.scenario.smoke {
            std::env::temp_dir()
        } else {
            docs()
        };
        let stem = self.scenario.stem;
        dir.join(match self.part {
            Some((from, to)) => format!("{stem}-cells-{from}-{to}.md"),
            None => format!("{stem}.md"),
        })
    }
}

/// Runs `plan`: each cell in its own lab (one per orientation its variants
/// ask for), `trials` trials of each variant (`control_trials` of each
/// control), interleaved trial by trial. `progress` is told about every
/// trial.
pub fn run(plan: &Plan, mut progress: impl FnMut(&Record)) -> Result<Report, Error> {
    if plan.cells.iter().any(Cell::uses_go) {
        crate::go::node()?;
    }
    let controls = plan
        .cells
        .iter()
        .flat_map(|c| &c.variants)
        .any(|v| v.control);
    let mut report = Report {
        scenario: plan.scenario.name.to_owned(),
        title: plan.scenario.title.to_owned(),
        command: plan.command.clone(),
        notes: (plan.scenario.notes)(),
        trials: (
            plan.trials,
            if controls {
                plan.control_trials
            } else {
                plan.trials
            },
        ),
        vary_ports: plan.vary.punch_port,
        vary_ordinary_port: plan.vary.ordinary_port,
        ..Report::default()
    };
    for cell in &plan.cells {
        let mut labs: Vec<(Routers, PunchLab)> = Vec::new();
        for variant in &cell.variants {
            let routers = cell.routers(variant.swapped);
            if !labs.iter().any(|(r, _)| *r == routers) {
                labs.push((routers, cell.lab(variant.swapped).build()?));
            }
        }
        for trial in 0..plan.trials.max(plan.control_trials) {
            for variant in &cell.variants {
                let wanted = if variant.control {
                    plan.control_trials
                } else {
                    plan.trials
                };
                if trial >= wanted {
                    continue;
                }
                let routers = cell.routers(variant.swapped);
                let Some((_, lab)) = labs.iter().find(|(r, _)| *r == routers) else {
                    unreachable!("a lab was built for every variant's routers");
                };
                let spec = plan
                    .vary
                    .apply(cell.trial(variant).timeout(plan.timeout), trial);
                let record = Record::new(cell, variant, trial, &lab.run(&spec)?);
                progress(&record);
                report.records.push(record);
            }
        }
    }
    report.summaries = summaries(&report.records);
    Ok(report)
}

/// Everything a run of punch trials measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Which scenario ([`Scenario::name`]); empty in JSON written before
    /// reports named it, which is read as the scenario asked for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scenario: String,
    /// The document's title (empty: the scenario's).
    #[serde(default)]
    pub title: String,
    /// The command that made the run (empty: the scenario's flags).
    #[serde(default)]
    pub command: String,
    /// How the run was made, where the command does not say it all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Trials per variant and cell, and per control variant and cell (one
    /// number, `trials_per_cell`, in older JSON).
    #[serde(alias = "trials_per_cell", deserialize_with = "one_or_two")]
    pub trials: (usize, usize),
    /// Whether the punch port moved from trial to trial.
    #[serde(default)]
    pub vary_ports: bool,
    /// Whether the ordinary listener's port moved from trial to trial.
    #[serde(default)]
    pub vary_ordinary_port: bool,
    /// Per cell and variant, from the records.
    #[serde(skip_deserializing)]
    pub summaries: Vec<Summary>,
    /// Every trial.
    pub records: Vec<Record>,
}

/// `30` as `(30, 30)`, or `[20, 2]`.
fn one_or_two<'de, D: Deserializer<'de>>(deserializer: D) -> Result<(usize, usize), D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Trials {
        One(usize),
        Two(usize, usize),
    }
    Ok(match Trials::deserialize(deserializer)? {
        Trials::One(n) => (n, n),
        Trials::Two(n, controls) => (n, controls),
    })
}

impl Report {
    /// Its scenario: the one it names, else the first benchmark's.
    pub fn scenario(&self) -> &'static Scenario {
        Scenario::named(&self.scenario).unwrap_or(&pairings::FULL)
    }

    /// Its title, or its scenario's.
    pub fn heading(&self) -> &str {
        if self.title.is_empty() {
            self.scenario().title
        } else {
            &self.title
        }
    }

    /// The command that made it, or its scenario's flags.
    pub fn written_by(&self) -> String {
        if !self.command.is_empty() {
            return self.command.clone();
        }
        let flag = self.scenario().flag;
        format!(
            "cargo run --release -p punchport-lab --bin bench --{}{flag} --trials {}",
            if flag.is_empty() { "" } else { " " },
            self.trials.0
        )
    }

    /// What moved from trial to trial.
    pub fn vary(&self) -> Vary {
        Vary {
            punch_port: self.vary_ports,
            ordinary_port: self.vary_ordinary_port,
        }
    }
}

impl Document for Report {
    fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        let mut report: Report = serde_json::from_str(json)?;
        report.summaries = summaries(&report.records);
        Ok(report)
    }

    fn markdown(&self, _stem: &str) -> String {
        (self.scenario().document)(self)
    }

    fn plots(&self) -> Vec<Plot> {
        (self.scenario().plots)(self)
    }
}

/// Joins reports of one run split over processes (`--cells`): their
/// records in order, summarised again, their commands joined, each note
/// once. They must agree on trials and on what moved from trial to trial.
pub fn merge(reports: Vec<Report>) -> Result<Report, String> {
    let mut reports = reports.into_iter();
    let mut joined = reports.next().ok_or("no report to merge")?;
    for report in reports {
        if (report.trials, report.vary()) != (joined.trials, joined.vary()) {
            return Err(format!(
                "`{}` and `{}` differ in trials per cell or in the ports they moved",
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

    fn record(variant: &str, trial: usize, elapsed_ms: Option<u64>) -> Record {
        Record {
            pairing: "EIM port-restricted / full cone".to_owned(),
            layout: "443 + punch range".to_owned(),
            delay_ms: 25,
            variant: variant.to_owned(),
            trial,
            direct: elapsed_ms.is_some(),
            elapsed_ms,
            attempts: Some(1),
            failure: elapsed_ms.is_none().then(|| "timeout".to_owned()),
            ..Record::default()
        }
    }

    fn report(command: &str, records: Vec<Record>) -> Report {
        Report {
            trials: (2, 2),
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
            .map(|s| s.variant.as_str())
            .collect();
        assert_eq!(names, ["stock", "port-aware"]);
        let stock = &merged.summaries[0];
        assert_eq!((stock.trials, stock.direct), (2, 1));
        assert_eq!(stock.attempts_per_success, Some(2.0));
        assert_eq!(merged.summaries[1].median_ms, Some(300));
        assert_eq!(merged.summaries[1].lower_bound_ms, 250);
        assert!(merged.command.contains("--cells 1` and `--cells 2"));
        let doc = merged.markdown("benchmarks");
        assert!(doc.contains("\n- cell 1 ran first\n\n| pairing"), "{doc}");
    }

    #[test]
    fn reports_of_different_runs_do_not_merge() {
        let mut other = report("--trials 5", Vec::new());
        other.trials = (5, 5);
        let error = merge(vec![report("--trials 2", Vec::new()), other]).unwrap_err();
        assert!(error.contains("differ"), "{error}");
        assert!(merge(Vec::new()).is_err());
    }

    #[test]
    fn older_reports_read_with_their_field_names() {
        let main = r#"{"trials_per_cell": 30, "summaries": [], "records": [{"pairing": "p",
            "layout": "l", "delay_ms": 0, "transport": "stock", "trial": 0, "direct": true,
            "elapsed_ms": 3, "initiator_elapsed_ms": null, "attempts": 1, "failure": null}]}"#;
        let report = Report::from_json(main).unwrap();
        assert_eq!(report.trials, (30, 30));
        assert_eq!(report.summaries[0].variant, "stock");
        assert_eq!(
            report.written_by(),
            "cargo run --release -p punchport-lab --bin bench -- --trials 30"
        );
        let hard = r#"{"command": "c", "trials": [20, 2], "summaries": [], "records": []}"#;
        assert_eq!(Report::from_json(hard).unwrap().trials, (20, 2));
    }

    /// Checks that the document `stem` in docs/, read with `read` from its
    /// JSON and rendered, is the file there byte for byte, plots included;
    /// returns whether the JSON is there.
    fn renders_as_committed<D: Document>(
        stem: &str,
        read: impl Fn(&Path) -> Result<D, String>,
    ) -> bool {
        let json = docs().join(format!("{stem}.json"));
        if !json.exists() {
            return false;
        }
        let document = read(&json).unwrap();
        for (path, text) in rendered(&document, &json.with_extension("md")) {
            let committed = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let line = committed
                .lines()
                .zip(text.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(committed.lines().count().min(text.lines().count()));
            assert!(
                committed == text,
                "{} does not render from {stem}.json again: the first difference is on line {}",
                path.display(),
                line + 1
            );
        }
        true
    }

    /// Every benchmark document renders from its JSON as committed (the
    /// documents of routers that accept unsolicited packets and of IPv6 once
    /// they are there).
    #[test]
    fn every_committed_document_renders_from_its_json() {
        let punch_trials = [
            ("benchmarks", &pairings::FULL),
            ("benchmarks-varied-ports", &pairings::VARIED_PORTS),
            ("benchmarks-roles", &pairings::ROLES),
            ("benchmarks-interop", &interop::INTEROP),
            ("benchmarks-hard-nat", &hard_nat::HARD_NAT),
            ("benchmarks-open-routers", &hard_nat::OPEN_ROUTERS),
            ("benchmarks-ipv6", &hard_nat::IPV6),
        ];
        let mut found = 0;
        for (stem, scenario) in punch_trials {
            found += usize::from(renders_as_committed(stem, |json| {
                read_report(json, scenario)
            }));
        }
        found += usize::from(renders_as_committed(
            "benchmarks-scale",
            read::<scale::ScaleReport>,
        ));
        found += usize::from(renders_as_committed(
            "benchmarks-throughput",
            read::<throughput::ThroughputReport>,
        ));
        found += usize::from(renders_as_committed("soak", read::<crate::soak::SoakRun>));
        assert!(found >= 8, "only {found} documents found in docs/");
    }
}
