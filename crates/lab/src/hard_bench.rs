//! The endpoint-dependent NAT benchmark: birthday punching against its
//! controls (punchport with plain punching only, and stock rust-libp2p) in
//! the seed layout, per NAT pairing and delay, with what each punch cost:
//! sockets and probes per side, conntrack entries per router, CPU time per
//! peer.

use std::{fmt::Write as _, time::Duration};

use natlab::{Input, Ipv6Kind, KubeNode, Nat, PUNCH_PORTS, RouterKind};
use punchport_node::TransportKind;
use serde::{Deserialize, Serialize};

use crate::{
    Error, Implementation, Layout, Outcome, PunchLab, Trial,
    plot::{self, Bar},
    stats,
};

/// One NAT pairing at one delay.
#[derive(Debug, Clone, Copy)]
pub struct Cell {
    /// The reserving peer's router.
    pub a: RouterKind,
    /// The dialing peer's router.
    pub b: RouterKind,
    /// One-way delay on each router's WAN link.
    pub delay: Duration,
    /// Whether a router accepts unsolicited packets (`None`: its kind's
    /// default), A and B.
    pub inputs: (Option<Input>, Option<Input>),
    /// The peers' listeners.
    pub layout: Layout,
    /// What runs in it.
    pub variants: &'static [Variant],
    /// IPv6 behind routers A and B (a dual-stack lab when either is set).
    pub ipv6: (Option<Ipv6Kind>, Option<Ipv6Kind>),
    /// Whether the hosts behind A and B have no IPv4.
    pub ipv6_only: (bool, bool),
}

/// Which document a run writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Endpoint-dependent NATs: `--hard-nat`, docs/benchmarks-hard-nat.md.
    #[default]
    HardNat,
    /// Routers that accept unsolicited packets: `--open-routers`,
    /// docs/benchmarks-open-routers.md.
    OpenRouters,
    /// IPv6 and dual-stack pods: `--ipv6`, docs/benchmarks-ipv6.md.
    Ipv6,
}

impl Scenario {
    /// Its cells.
    pub fn cells(self) -> Vec<Cell> {
        match self {
            Scenario::HardNat => cells(),
            Scenario::OpenRouters => open_cells(),
            Scenario::Ipv6 => ipv6_cells(),
        }
    }

    /// Its document's file name, without extension.
    pub fn stem(self) -> &'static str {
        match self {
            Scenario::HardNat => "benchmarks-hard-nat",
            Scenario::OpenRouters => "benchmarks-open-routers",
            Scenario::Ipv6 => "benchmarks-ipv6",
        }
    }
}

impl Cell {
    /// `a / b`, short.
    pub fn pairing(&self) -> String {
        let open = |input: Option<Input>| match input {
            Some(Input::Accept) => " (open)",
            _ => "",
        };
        let side = |kind: RouterKind, v6: Option<Ipv6Kind>, only: bool, input| match (v6, only) {
            (Some(v6), true) => format!("IPv6-only {}{}", short6(v6), open(input)),
            (Some(v6), false) => format!("{} + {}{}", short(kind), short6(v6), open(input)),
            (None, _) => format!("{}{}", short(kind), open(input)),
        };
        format!(
            "{} / {}",
            side(self.a, self.ipv6.0, self.ipv6_only.0, self.inputs.0),
            side(self.b, self.ipv6.1, self.ipv6_only.1, self.inputs.1)
        )
    }
}

fn short6(kind: Ipv6Kind) -> &'static str {
    match kind {
        Ipv6Kind::Firewall => "v6 firewall",
        Ipv6Kind::Masquerade => "NAT66",
        Ipv6Kind::MasqueradeFullyRandom => "NAT66 fully-random",
    }
}

fn short(kind: RouterKind) -> String {
    match kind {
        RouterKind::Kube(node) if node.punch_exemption.is_some() => {
            "k8s fully-random + exemption".to_owned()
        }
        RouterKind::Kube(node) if node.random_fully => "k8s fully-random".to_owned(),
        RouterKind::Kube(_) => "k8s masquerade".to_owned(),
        RouterKind::Nat(Nat::Symmetric) => "symmetric".to_owned(),
        RouterKind::Nat(Nat::PortRestricted) => "port-restricted".to_owned(),
        RouterKind::Nat(Nat::Firewall) => "firewall".to_owned(),
        RouterKind::Nat(Nat::FullCone) => "full cone".to_owned(),
        RouterKind::Nat(other) => other.to_string(),
    }
}

/// The cells: hard against each easy kind, whichever side reserves, at 0
/// and 25 ms; the others at 0 ms.
pub fn cells() -> Vec<Cell> {
    let hard = RouterKind::Nat(Nat::Symmetric);
    let cell = |a, b, ms| Cell {
        a,
        b,
        delay: Duration::from_millis(ms),
        inputs: (None, None),
        layout: Layout::With443,
        variants: &[Variant::Birthday, Variant::Plain, Variant::Stock],
        ipv6: (None, None),
        ipv6_only: (false, false),
    };
    let mut cells = Vec::new();
    for ms in [0, 25] {
        for easy in [Nat::PortRestricted, Nat::Firewall] {
            cells.push(cell(hard, easy.into(), ms));
        }
        cells.push(cell(Nat::PortRestricted.into(), hard, ms));
    }
    cells.push(Cell {
        inputs: (None, Some(Input::Accept)),
        ..cell(hard, Nat::PortRestricted.into(), 0)
    });
    cells.push(cell(hard, Nat::FullCone.into(), 0));
    cells.push(cell(hard, hard, 0));
    cells.push(cell(
        KubeNode::FULLY_RANDOM.into(),
        Nat::PortRestricted.into(),
        0,
    ));
    cells.push(cell(
        KubeNode::FULLY_RANDOM.exempt(PUNCH_PORTS).into(),
        Nat::PortRestricted.into(),
        0,
    ));
    cells
}

/// The cells of routers that accept unsolicited packets: port-restricted
/// NATs (Linux SNAT) on both sides, one or both of them open, with the
/// variants each pairing asks about. Every peer listens on the punch port
/// only, so that stock's socket choice does not decide.
pub fn open_cells() -> Vec<Cell> {
    use Variant::*;
    let cell = |a: bool, b: bool, ms, variants| Cell {
        a: Nat::PortRestricted.into(),
        b: Nat::PortRestricted.into(),
        delay: Duration::from_millis(ms),
        inputs: (a.then_some(Input::Accept), b.then_some(Input::Accept)),
        layout: Layout::PunchOnly,
        variants,
        ipv6: (None, None),
        ipv6_only: (false, false),
    };
    vec![
        cell(
            true,
            true,
            0,
            &[
                Birthday,
                Stock,
                OursReservingStock,
                StockReservingOurs,
                OursReservingGo,
                GoReservingOurs,
            ],
        ),
        cell(true, true, 1, &[Birthday, Stock]),
        cell(true, true, 25, &[Birthday, Stock]),
        cell(true, false, 0, &[OursReservingStock, OursReservingGo]),
        cell(false, true, 0, &[StockReservingOurs, GoReservingOurs]),
        cell(true, false, 25, &[OursReservingStock, OursReservingGo]),
        cell(false, true, 25, &[StockReservingOurs, GoReservingOurs]),
    ]
}

/// The IPv6 and dual-stack cells: punchport as shipped, the seed layout in
/// every family a host has.
pub fn ipv6_cells() -> Vec<Cell> {
    use Ipv6Kind::{Firewall, Masquerade, MasqueradeFullyRandom};
    let cell = |a: Nat, a6, a_only, b: Nat, b6, b_only, ms| Cell {
        a: a.into(),
        b: b.into(),
        delay: Duration::from_millis(ms),
        inputs: (None, None),
        layout: Layout::With443,
        variants: &[Variant::Birthday],
        ipv6: (Some(a6), Some(b6)),
        ipv6_only: (a_only, b_only),
    };
    let pr = Nat::PortRestricted;
    let sym = Nat::Symmetric;
    vec![
        cell(pr, Firewall, true, pr, Firewall, true, 0),
        cell(pr, Masquerade, true, pr, Firewall, true, 0),
        cell(pr, MasqueradeFullyRandom, true, pr, Firewall, true, 0),
        cell(pr, MasqueradeFullyRandom, true, pr, Firewall, true, 25),
        cell(pr, Firewall, true, pr, Firewall, false, 0),
        cell(pr, Firewall, false, pr, Firewall, false, 0),
        cell(pr, Firewall, false, pr, Firewall, false, 25),
        cell(sym, Firewall, false, sym, Firewall, false, 0),
        cell(
            pr,
            MasqueradeFullyRandom,
            false,
            pr,
            MasqueradeFullyRandom,
            false,
            0,
        ),
    ]
}

/// What runs in a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// punchport as shipped (birthday punching on) on both sides.
    Birthday,
    /// punchport with birthday punching off: plain punching only.
    Plain,
    /// stock rust-libp2p on both sides.
    Stock,
    /// punchport reserving, stock rust-libp2p dialing.
    OursReservingStock,
    /// stock rust-libp2p reserving, punchport dialing.
    StockReservingOurs,
    /// punchport reserving, go-libp2p dialing.
    OursReservingGo,
    /// go-libp2p reserving, punchport dialing.
    GoReservingOurs,
}

impl Variant {
    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Birthday => "punchport (birthday on)",
            Variant::Plain => "punchport, plain only",
            Variant::Stock => "stock",
            Variant::OursReservingStock => "punchport ← stock",
            Variant::StockReservingOurs => "stock ← punchport",
            Variant::OursReservingGo => "punchport ← go",
            Variant::GoReservingOurs => "go ← punchport",
        }
    }

    /// A control: run `--control-trials` times in the hard-NAT cells.
    fn control(self) -> bool {
        matches!(self, Variant::Plain | Variant::Stock)
    }

    fn trial(self, timeout: Duration, layout: Layout) -> Trial {
        let ours = Implementation::Rust(TransportKind::PortAware);
        let stock = Implementation::Rust(TransportKind::Stock);
        let (reserving, dialing) = match self {
            Variant::Birthday | Variant::Plain => (ours, ours),
            Variant::Stock => (stock, stock),
            Variant::OursReservingStock => (ours, stock),
            Variant::StockReservingOurs => (stock, ours),
            Variant::OursReservingGo => (ours, Implementation::Go),
            Variant::GoReservingOurs => (Implementation::Go, ours),
        };
        Trial::port_aware()
            .reserving(reserving, layout)
            .dialing(dialing, layout)
            .timeout(timeout)
            .birthday(self != Variant::Plain)
    }
}

/// One trial.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The pairing.
    pub pairing: String,
    /// One-way delay in milliseconds.
    pub delay_ms: u64,
    /// The variant's name.
    pub variant: String,
    /// The trial's number.
    pub trial: usize,
    /// Whether the dialing peer became direct.
    pub direct: bool,
    /// Relayed to direct at the dialing peer.
    pub elapsed_ms: Option<u64>,
    /// Whether a birthday attempt connected (else plain punching did, if
    /// anything).
    pub birthday_won: bool,
    /// Birthday attempts (the most of the two sides).
    pub birthday_attempts: usize,
    /// Sockets the hard side opened, over its attempts.
    pub sockets: u32,
    /// Probes the easy side sent, over its attempts.
    pub probes: u32,
    /// Conntrack entries on router A and router B at the end.
    pub conntrack: (usize, usize),
    /// CPU time of peer A and peer B, in milliseconds.
    pub cpu_ms: (Option<u64>, Option<u64>),
    /// Why it failed.
    pub failure: Option<String>,
    /// Whether the first birthday attempt connected (`None`: there was none).
    #[serde(default)]
    pub first_attempt_direct: Option<bool>,
    /// What the hard side's first birthday attempt cost, by its own count.
    #[serde(default)]
    pub hard_first: Option<AttemptCost>,
    /// The same for the easy side.
    #[serde(default)]
    pub easy_first: Option<AttemptCost>,
    /// What router A and router B saw their peer send to the other peer's
    /// public IP over the trial (conntrack accounting: datagrams, bytes).
    #[serde(default)]
    pub router_sent: ((u64, u64), (u64, u64)),
    /// The IP family of the dialing peer's first direct connection (`ip4`,
    /// `ip6`).
    #[serde(default)]
    pub family: Option<String>,
}

/// What one side's birthday attempt cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptCost {
    /// Datagrams it sent.
    pub datagrams: u32,
    /// Their bytes on the wire (IP and UDP headers included).
    pub bytes: u64,
    /// The process's CPU time from the relayed connection to the end of
    /// the attempt (negotiation, plain DCUtR's dials and the attempt), in
    /// microseconds.
    pub cpu_us: Option<u64>,
}

fn first_cost(side: &punchport_node::PeerSummary, role: &str) -> Option<AttemptCost> {
    let first = side.birthdays.first().filter(|b| b.role == role)?;
    Some(AttemptCost {
        datagrams: first.datagrams,
        bytes: first.bytes,
        cpu_us: first
            .cpu_us
            .zip(side.relayed_cpu_us)
            .map(|(end, start)| end.saturating_sub(start)),
    })
}

fn router_sent(side: &crate::Side) -> (u64, u64) {
    let Some(me) = side.public_ip else {
        return (0, 0);
    };
    side.flows
        .iter()
        .filter(|flow| flow.original.dst.ip() != me && flow.reply.dst.ip() == me)
        .filter_map(|flow| flow.original_counts)
        .fold((0, 0), |(p, b), c| (p + c.packets, b + c.bytes))
}

impl Record {
    fn new(cell: &Cell, variant: Variant, trial: usize, outcome: &Outcome) -> Self {
        let (a, b) = (&outcome.a.peer, &outcome.b.peer);
        let all = || a.birthdays.iter().chain(&b.birthdays);
        Self {
            pairing: cell.pairing(),
            delay_ms: cell.delay.as_millis() as u64,
            variant: variant.name().to_owned(),
            trial,
            direct: outcome.direct(),
            elapsed_ms: outcome.elapsed_ms(),
            birthday_won: all().any(|t| t.direct && t.winning_port.is_some()),
            birthday_attempts: a.birthdays.len().max(b.birthdays.len()),
            sockets: all().map(|t| u32::from(t.sockets)).sum(),
            probes: all().map(|t| u32::from(t.probes)).sum(),
            conntrack: (outcome.a.conntrack_entries, outcome.b.conntrack_entries),
            cpu_ms: (outcome.a.cpu_ms, outcome.b.cpu_ms),
            failure: outcome.failure().map(str::to_owned),
            first_attempt_direct: a
                .birthdays
                .first()
                .or(b.birthdays.first())
                .map(|first| first.direct),
            hard_first: first_cost(a, "hard").or(first_cost(b, "hard")),
            easy_first: first_cost(a, "easy").or(first_cost(b, "easy")),
            router_sent: (router_sent(&outcome.a), router_sent(&outcome.b)),
            family: b.connections.first().and_then(|c| c.family.clone()),
        }
    }
}

/// The figures of one variant in one cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// The pairing.
    pub pairing: String,
    /// One-way delay in milliseconds.
    pub delay_ms: u64,
    /// The variant's name.
    pub variant: String,
    /// Trials.
    pub trials: usize,
    /// Direct.
    pub direct: usize,
    /// Of those, through a birthday punch.
    pub by_birthday: usize,
    /// Wilson 95 % interval of the success rate.
    pub wilson_95: (f64, f64),
    /// Median and p90 time to direct.
    pub median_ms: Option<u64>,
    /// The same, 90th percentile.
    pub p90_ms: Option<u64>,
    /// Median sockets (hard side) and probes (easy side) per trial.
    pub median_sockets: Option<u64>,
    /// The same for probes.
    pub median_probes: Option<u64>,
    /// Median conntrack entries on router A and B.
    pub median_conntrack: (Option<u64>, Option<u64>),
    /// Median CPU time of peer A and B, in milliseconds.
    pub median_cpu_ms: (Option<u64>, Option<u64>),
    /// Trials with a birthday attempt, and of those, how many connected at
    /// the first.
    #[serde(default)]
    pub first_attempts: (usize, usize),
    /// Median and largest datagrams and bytes of the hard side's first
    /// attempt, by its own count.
    #[serde(default)]
    pub hard_first: Option<CostFigures>,
    /// The same for the easy side.
    #[serde(default)]
    pub easy_first: Option<CostFigures>,
    /// The largest datagrams and bytes a router saw its peer send to the
    /// other peer over a trial (A, B).
    #[serde(default)]
    pub router_max: ((u64, u64), (u64, u64)),
    /// Direct connections over IPv4 and over IPv6.
    #[serde(default)]
    pub families: (usize, usize),
}

/// Figures of one side's first attempts over a cell's trials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostFigures {
    /// Median datagrams.
    pub median_datagrams: u64,
    /// The most datagrams.
    pub max_datagrams: u64,
    /// Median bytes.
    pub median_bytes: u64,
    /// The most bytes.
    pub max_bytes: u64,
    /// Median CPU time, microseconds.
    pub median_cpu_us: Option<u64>,
    /// 90th percentile CPU time, microseconds.
    pub p90_cpu_us: Option<u64>,
}

fn cost_figures(costs: &[AttemptCost]) -> Option<CostFigures> {
    if costs.is_empty() {
        return None;
    }
    let datagrams: Vec<u64> = costs.iter().map(|c| u64::from(c.datagrams)).collect();
    let bytes: Vec<u64> = costs.iter().map(|c| c.bytes).collect();
    let cpu: Vec<u64> = costs.iter().filter_map(|c| c.cpu_us).collect();
    Some(CostFigures {
        median_datagrams: stats::quantile(&datagrams, 0.5)?,
        max_datagrams: datagrams.iter().copied().max()?,
        median_bytes: stats::quantile(&bytes, 0.5)?,
        max_bytes: bytes.iter().copied().max()?,
        median_cpu_us: stats::quantile(&cpu, 0.5),
        p90_cpu_us: stats::quantile(&cpu, 0.9),
    })
}

fn median(values: impl Iterator<Item = u64>) -> Option<u64> {
    stats::quantile(&values.collect::<Vec<_>>(), 0.5)
}

fn summarise(records: &[&Record]) -> Option<Summary> {
    let first = records.first()?;
    let direct = records.iter().filter(|r| r.direct).count();
    let times: Vec<u64> = records.iter().filter_map(|r| r.elapsed_ms).collect();
    Some(Summary {
        pairing: first.pairing.clone(),
        delay_ms: first.delay_ms,
        variant: first.variant.clone(),
        trials: records.len(),
        direct,
        by_birthday: records.iter().filter(|r| r.birthday_won).count(),
        wilson_95: stats::wilson_95(direct, records.len()),
        median_ms: stats::quantile(&times, 0.5),
        p90_ms: stats::quantile(&times, 0.9),
        median_sockets: median(records.iter().map(|r| u64::from(r.sockets))),
        median_probes: median(records.iter().map(|r| u64::from(r.probes))),
        median_conntrack: (
            median(records.iter().map(|r| r.conntrack.0 as u64)),
            median(records.iter().map(|r| r.conntrack.1 as u64)),
        ),
        median_cpu_ms: (
            median(records.iter().filter_map(|r| r.cpu_ms.0)),
            median(records.iter().filter_map(|r| r.cpu_ms.1)),
        ),
        first_attempts: (
            records
                .iter()
                .filter(|r| r.first_attempt_direct.is_some())
                .count(),
            records
                .iter()
                .filter(|r| r.first_attempt_direct == Some(true))
                .count(),
        ),
        hard_first: cost_figures(
            &records
                .iter()
                .filter_map(|r| r.hard_first)
                .collect::<Vec<_>>(),
        ),
        easy_first: cost_figures(
            &records
                .iter()
                .filter_map(|r| r.easy_first)
                .collect::<Vec<_>>(),
        ),
        families: (
            records
                .iter()
                .filter(|r| r.direct && r.family.as_deref() == Some("ip4"))
                .count(),
            records
                .iter()
                .filter(|r| r.direct && r.family.as_deref() == Some("ip6"))
                .count(),
        ),
        router_max: (
            (
                records.iter().map(|r| r.router_sent.0.0).max().unwrap_or(0),
                records.iter().map(|r| r.router_sent.0.1).max().unwrap_or(0),
            ),
            (
                records.iter().map(|r| r.router_sent.1.0).max().unwrap_or(0),
                records.iter().map(|r| r.router_sent.1.1).max().unwrap_or(0),
            ),
        ),
    })
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Which benchmark.
    #[serde(default)]
    pub scenario: Scenario,
    /// The command that made it.
    pub command: String,
    /// Trials of the birthday variant per cell; of each control.
    pub trials: (usize, usize),
    /// Per cell and variant.
    pub summaries: Vec<Summary>,
    /// Every trial.
    pub records: Vec<Record>,
}

/// The summaries of `records`, per cell and variant in first-seen order.
pub fn summaries(records: &[Record]) -> Vec<Summary> {
    let mut keys: Vec<(String, u64, String)> = Vec::new();
    for r in records {
        let key = (r.pairing.clone(), r.delay_ms, r.variant.clone());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.iter()
        .filter_map(|(pairing, delay, variant)| {
            let group: Vec<&Record> = records
                .iter()
                .filter(|r| &r.pairing == pairing && r.delay_ms == *delay && &r.variant == variant)
                .collect();
            summarise(&group)
        })
        .collect()
}

/// Runs each cell: `trials` trials of punchport with birthday punching and
/// `controls` of each control, interleaved trial by trial.
pub fn run(
    cells: &[Cell],
    trials: usize,
    controls: usize,
    timeout: Duration,
    mut progress: impl FnMut(&Record),
) -> Result<Report, Error> {
    let mut report = Report {
        trials: (trials, controls),
        ..Report::default()
    };
    for cell in cells {
        let lab = PunchLab::builder(cell.a, cell.b)
            .wan_delay(cell.delay)
            .inputs(cell.inputs.0, cell.inputs.1)
            .ipv6(cell.ipv6.0, cell.ipv6.1)
            .ipv6_only(cell.ipv6_only.0, cell.ipv6_only.1)
            .build()?;
        for trial in 0..trials.max(controls) {
            for &variant in cell.variants {
                let wanted = if variant.control() { controls } else { trials };
                if trial >= wanted {
                    continue;
                }
                let outcome = lab.run(&variant.trial(timeout, cell.layout))?;
                let record = Record::new(cell, variant, trial, &outcome);
                progress(&record);
                report.records.push(record);
            }
        }
    }
    report.summaries = summaries(&report.records);
    Ok(report)
}

/// The report as a Markdown table.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| pairing (A / B) | delay | variant | direct | 95% CI | by birthday | median | p90 | sockets (hard) | probes (easy) | conntrack A / B | CPU A / B |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    let ms = |v: Option<u64>| v.map_or("–".to_owned(), |v| format!("{v} ms"));
    let n = |v: Option<u64>| v.map_or("–".to_owned(), |v| v.to_string());
    for s in &report.summaries {
        let _ = writeln!(
            out,
            "| {} | {} ms | {} | {}/{} | {:.0}–{:.0}% | {} | {} | {} | {} | {} | {} / {} | {} / {} |",
            s.pairing,
            s.delay_ms,
            s.variant,
            s.direct,
            s.trials,
            100.0 * s.wilson_95.0,
            100.0 * s.wilson_95.1,
            s.by_birthday,
            ms(s.median_ms),
            ms(s.p90_ms),
            n(s.median_sockets),
            n(s.median_probes),
            n(s.median_conntrack.0),
            n(s.median_conntrack.1),
            ms(s.median_cpu_ms.0),
            ms(s.median_cpu_ms.1),
        );
    }
    let _ = writeln!(
        out,
        "\n### What a birthday attempt costs (punchport, birthday on; first attempts)\n\n\
         | pairing (A / B) | delay | 1st attempt direct | hard: datagrams median / max | hard: bytes median / max | hard: CPU median / p90 | easy: datagrams median / max | easy: bytes median / max | easy: CPU median / p90 | routers' count, most: A / B |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    let cpu = |v: Option<u64>| {
        v.map_or("–".to_owned(), |us| {
            format!("{:.1} ms", us as f64 / 1000.0)
        })
    };
    let figures = |f: &Option<CostFigures>| match f {
        Some(f) => (
            format!("{} / {}", f.median_datagrams, f.max_datagrams),
            format!("{} / {}", f.median_bytes, f.max_bytes),
            format!("{} / {}", cpu(f.median_cpu_us), cpu(f.p90_cpu_us)),
        ),
        None => ("–".into(), "–".into(), "–".into()),
    };
    for s in report
        .summaries
        .iter()
        .filter(|s| s.variant == Variant::Birthday.name() && s.first_attempts.0 > 0)
    {
        let (hd, hb, hc) = figures(&s.hard_first);
        let (ed, eb, ec) = figures(&s.easy_first);
        let ((ap, ab), (bp, bb)) = s.router_max;
        let _ = writeln!(
            out,
            "| {} | {} ms | {}/{} | {hd} | {hb} | {hc} | {ed} | {eb} | {ec} | {ap} dgr, {ab} B / {bp} dgr, {bb} B |",
            s.pairing, s.delay_ms, s.first_attempts.1, s.first_attempts.0,
        );
    }
    out
}

/// The plots: success by cell and variant, and the birthday variant's
/// times to direct per cell.
pub fn plots(report: &Report) -> (String, String) {
    let cells: Vec<(String, u64)> = {
        let mut cells = Vec::new();
        for s in &report.summaries {
            let key = (s.pairing.clone(), s.delay_ms);
            if !cells.contains(&key) {
                cells.push(key);
            }
        }
        cells
    };
    let labels: Vec<String> = cells.iter().map(|(p, d)| format!("{p}, {d} ms")).collect();
    let mut variants: Vec<String> = Vec::new();
    for s in &report.summaries {
        if !variants.contains(&s.variant) {
            variants.push(s.variant.clone());
        }
    }
    let series: Vec<(String, Vec<Option<Bar>>)> = variants
        .iter()
        .map(|v| {
            let bars = cells
                .iter()
                .map(|(p, d)| {
                    report
                        .summaries
                        .iter()
                        .find(|s| &s.pairing == p && s.delay_ms == *d && &s.variant == v)
                        .map(|s| Bar {
                            value: 100.0 * s.direct as f64 / s.trials.max(1) as f64,
                            interval: Some((100.0 * s.wilson_95.0, 100.0 * s.wilson_95.1)),
                        })
                })
                .collect();
            (v.clone(), bars)
        })
        .collect();
    let success = plot::bars(
        "Direct connections, by pairing (bars: Wilson 95 %)",
        "%",
        100.0,
        &labels,
        &series,
    );
    let rows: Vec<(String, Vec<f64>)> = cells
        .iter()
        .zip(&labels)
        .map(|((p, d), label)| {
            let times = report
                .records
                .iter()
                .filter(|r| {
                    &r.pairing == p && r.delay_ms == *d && r.variant == Variant::Birthday.name()
                })
                .filter_map(|r| r.elapsed_ms)
                .map(|ms| ms as f64 / 1000.0)
                .collect();
            (label.clone(), times)
        })
        .collect();
    let longest = rows
        .iter()
        .flat_map(|(_, t)| t.iter().copied())
        .fold(1.0_f64, f64::max);
    let times = plot::strip(
        "Time from relayed to direct, punchport (birthday on), each trial",
        " s",
        longest.ceil(),
        &rows,
    );
    (success, times)
}

/// The Markdown document.
pub fn document(report: &Report) -> String {
    if report.scenario == Scenario::Ipv6 {
        let mut families = String::from(
            "| pairing (A / B) | delay | direct over IPv4 | direct over IPv6 |\n|---|---|---|---|\n",
        );
        for s in &report.summaries {
            let _ = writeln!(
                families,
                "| {} | {} ms | {} | {} |",
                s.pairing, s.delay_ms, s.families.0, s.families.1
            );
        }
        return format!(
            "# IPv6 and dual-stack pods\n\n\
             Written by `{}`. Per cell {} trials of punchport as shipped, in a dual-stack lab: the \
             relay on two IPv4 and two IPv6 addresses, each peer in the seed layout (443 and a \
             punch socket) in every family its host has. *IPv6-only* hosts have no IPv4 at all; \
             the others are dual-stack. The raw trials are in the JSON file next to this one; the \
             plots are written by the same run.\n\n{}\n\
             ### Which family the direct connection used\n\n{families}\n\
             ![success by pairing](benchmarks-ipv6-success.svg)\n\n\
             ![time to direct](benchmarks-ipv6-times.svg)\n\n{IPV6_READING}",
            report.command,
            report.trials.0,
            markdown(report)
        );
    }
    if report.scenario == Scenario::OpenRouters {
        return format!(
            "# Hole punching through routers that accept unsolicited packets\n\n\
             Written by `{}`. Per cell and variant {} trials, the variants interleaved trial by \
             trial on the same topology: two port-restricted NATs (Linux SNAT, port-preserving), \
             one or both of which accept unsolicited packets addressed to themselves and answer \
             them with ICMP port unreachable, as a Kubernetes node does (*(open)*); every peer \
             listens on one port of the punch range; a relay with two addresses. The raw trials \
             are in the JSON file next to this one; the plots are written by the same run.\n\n{}\n\
             ![success by pairing](benchmarks-open-routers-success.svg)\n\n\
             ![time to direct](benchmarks-open-routers-times.svg)\n\n{OPEN_READING}",
            report.command,
            report.trials.0,
            markdown(report)
        );
    }
    format!(
        "# Hole punching through endpoint-dependent NATs\n\n\
         Written by `{}`. Per cell {} trials of punchport as shipped (birthday punching on) \
         and {} of each control (punchport with plain punching only; stock rust-libp2p), \
         interleaved trial by trial on the same topology, the seed layout (443 + punch range) on \
         both peers, a relay with two addresses. The raw trials are in the JSON file next to this \
         one; the plots are written by the same run.\n\n{}\n\
         ![success by pairing](benchmarks-hard-nat-success.svg)\n\n\
         ![time to direct](benchmarks-hard-nat-times.svg)\n\n{READING}",
        report.command,
        report.trials.0,
        report.trials.1,
        markdown(report)
    )
}

const IPV6_READING: &str = "## How to read it

- **pairing**: each side's IPv4 router kind and IPv6 router kind. *v6 firewall* is a stateful firewall in front of global addresses (2001:db8::/32); *NAT66* is `masquerade` on an IPv6 ULA subnet, port-preserving; *NAT66 fully-random* is `masquerade fully-random`, endpoint-dependent; *symmetric* (IPv4) is `snat ... fully-random`.
- **direct**, **median**, **p90**: as in docs/benchmarks-hard-nat.md; *by birthday*: punches a birthday attempt connected (the NAT66 fully-random rows).
- **Which family**: the family of the dialing peer's first direct connection.
- The rows with one family blocked (symmetric IPv4 on both sides, or NAT66 fully-random on both sides) show the other family carrying the punch, with no `punch_failed`.
";

const OPEN_READING: &str = "## How to read it

- **pairing**: the router in front of the reserving peer (A, DCUtR's initiator) and the one in front of the dialing peer (B); *(open)* accepts unsolicited packets (INPUT accepted, as a Kubernetes node's), the other drops them.
- **variant**: who runs each side, reserving side first: *punchport (birthday on)* on both sides is punchport as shipped; *stock* is stock rust-libp2p 0.57 on both sides; *punchport ← stock* has punchport reserving and stock dialing, and so on; *go* is the go-libp2p v0.52.0 node of `tests/interop/go`.
- **direct**: trials in which the dialing peer had a direct connection within the timeout, with the Wilson 95 % interval.
- **median, p90**: relayed to first direct connection at the dialing peer, over the successes.
- The birthday, sockets, probes and cost columns do not apply here (no NAT maps endpoint-dependently).
- Why an open router fails a punch, and what punchport's openers do about it: docs/troubleshooting.md, *Routers that accept unsolicited packets*.
";

const READING: &str = "## How to read it

- **pairing**: the router in front of the reserving peer (A, DCUtR's initiator) and the one in front of the dialing peer (B). *symmetric* is `snat ... fully-random`, an endpoint-dependent (\"hard\") NAT; *(open)*: that router accepts unsolicited packets addressed to itself (as a Kubernetes node does) instead of dropping them; *k8s fully-random* is a Kubernetes node whose CNI masquerades pod egress with `masquerade fully-random` (flannel's and Calico's rule), *+ exemption* adds the SNAT rule without random ports for the punch range ahead of it (docs/deploy/punch-snat-exemption.md). The others map endpoint-independently (or, the firewall, do not translate).
- **direct**: trials in which the dialing peer had a direct connection within the timeout, with the Wilson 95 % interval; **by birthday**: of those, how many a birthday attempt connected (the rest plain punching did).
- **median, p90**: relayed to first direct connection at the dialing peer, over the successes.
- **sockets (hard)**: sockets the endpoint-dependent side opened in the trial, over its attempts (at most 256 each, two attempts at most); **probes (easy)**: probes the other side sent (at most 1024 each). Medians over the trials.
- **conntrack A / B**: entries in each router's conntrack table at the end of the trial (tables are flushed before each): what the punch cost the NATs. Medians.
- **CPU A / B**: user + system CPU time of each peer process over the trial (start, reservation, punch), in milliseconds (from /proc, 100 ticks per second). Medians.
- **What a birthday attempt costs**: over the trials of the birthday variant that made a birthday attempt. *1st attempt direct*: how many connected at their first attempt. *datagrams*, *bytes*: what each side's first attempt sent, by its own count (the node's `attempt` line; bytes include IP and UDP headers). *CPU*: the peer process's CPU time (`getrusage`) from its relayed connection to the end of its first attempt: the negotiation, plain DCUtR's dials and the attempt. *routers' count*: the most datagrams and bytes router A and router B saw their peer send to the other peer's public IP in one trial (conntrack accounting: the birthday attempts, plain DCUtR's dials and the direct connection's first half second).
";

/// Reads an earlier run's JSON.
pub fn read_report(json: &str) -> Result<Report, serde_json::Error> {
    let mut report: Report = serde_json::from_str(json)?;
    report.summaries = summaries(&report.records);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(variant: Variant, direct: bool, ms: u64) -> Record {
        Record {
            pairing: "symmetric / port-restricted".into(),
            delay_ms: 0,
            variant: variant.name().into(),
            trial: 0,
            direct,
            elapsed_ms: direct.then_some(ms),
            birthday_won: direct && variant == Variant::Birthday,
            birthday_attempts: 1,
            sockets: 256,
            probes: 300,
            conntrack: (260, 310),
            cpu_ms: (Some(120), Some(340)),
            failure: (!direct).then(|| "timeout".into()),
            first_attempt_direct: (variant == Variant::Birthday).then_some(direct),
            hard_first: (variant == Variant::Birthday).then_some(AttemptCost {
                datagrams: 256,
                bytes: 13_000,
                cpu_us: Some(9000),
            }),
            easy_first: None,
            router_sent: ((280, 31_000), (120, 17_000)),
            family: direct.then(|| "ip4".to_owned()),
        }
    }

    #[test]
    fn summaries_tables_and_plots_show_each_variant() {
        let records = vec![
            record(Variant::Birthday, true, 4000),
            record(Variant::Birthday, true, 6000),
            record(Variant::Plain, false, 0),
            record(Variant::Stock, false, 0),
        ];
        let report = Report {
            scenario: Scenario::HardNat,
            command: "bench --hard-nat".into(),
            trials: (2, 1),
            summaries: summaries(&records),
            records,
        };
        assert_eq!(report.summaries.len(), 3);
        let birthday = &report.summaries[0];
        assert_eq!((birthday.direct, birthday.by_birthday), (2, 2));
        assert_eq!(birthday.median_ms, Some(4000));
        let table = markdown(&report);
        assert!(
            table
                .contains("| symmetric / port-restricted | 0 ms | punchport (birthday on) | 2/2 |"),
            "{table}"
        );
        let (success, times) = plots(&report);
        assert!(success.contains("<svg") && times.matches("<circle").count() == 2);
        assert!(document(&report).contains("benchmarks-hard-nat-success.svg"));
        assert!(
            table.contains("| symmetric / port-restricted | 0 ms | 2/2 | 256 / 256 | 13000 / 13000 | 9.0 ms / 9.0 ms |"),
            "{table}"
        );
        let again = read_report(&serde_json::to_string(&report).unwrap()).unwrap();
        assert_eq!(again.summaries.len(), 3);
    }
}
