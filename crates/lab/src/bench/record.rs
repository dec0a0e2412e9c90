//! One trial's [`Record`] and the [`Summary`] of a variant's trials in a
//! cell: the same figures for every benchmark of punch trials; each
//! document shows the ones it is about.

use serde::{Deserialize, Serialize};

use super::{Cell, LOWER_BOUND_DELAYS, Variant, table};
use crate::{Outcome, Punch, Side, Winner, stats};

/// What one trial showed, as written to the raw JSON. A figure the JSON of
/// an older run lacks reads as its default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Record {
    /// The NAT pairing, as the document names it.
    pub pairing: String,
    /// The peers' listeners (the Rust peers').
    #[serde(skip_serializing_if = "String::is_empty")]
    pub layout: String,
    /// Who ran the relay.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub relay: String,
    /// The go peer's listeners, in the interop cells.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub go_layout: String,
    /// One-way WAN delay in milliseconds.
    pub delay_ms: u64,
    /// The variant's name (`transport` in the first benchmark's JSON).
    #[serde(alias = "transport")]
    pub variant: String,
    /// The trial's number within its cell and variant.
    pub trial: usize,
    /// Whether the dialing peer became direct.
    pub direct: bool,
    /// Its relayed-to-direct time.
    pub elapsed_ms: Option<u64>,
    /// The reserving peer's relayed-to-direct time.
    pub initiator_elapsed_ms: Option<u64>,
    /// DCUtR attempts the dialing peer reported (else the reserving one).
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
    /// ([`Side::flow_texts`]).
    pub reserving_flows: Vec<String>,
    /// The dialing peer's router's flows with the reserving peer.
    pub dialing_flows: Vec<String>,
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
    /// Whether the first birthday attempt connected (`None`: there was none).
    pub first_attempt_direct: Option<bool>,
    /// What the hard side's first birthday attempt cost, by its own count.
    pub hard_first: Option<AttemptCost>,
    /// The same for the easy side.
    pub easy_first: Option<AttemptCost>,
    /// What router A and router B saw their peer send to the other peer's
    /// public IP over the trial (conntrack accounting: datagrams, bytes).
    pub router_sent: ((u64, u64), (u64, u64)),
    /// The IP family of the dialing peer's first direct connection (`ip4`,
    /// `ip6`).
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

fn router_sent(side: &Side) -> (u64, u64) {
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
    /// The record of trial `trial` of `variant` in `cell`.
    pub fn new(cell: &Cell, variant: &Variant, trial: usize, outcome: &Outcome) -> Self {
        let (a, b) = (&outcome.a.peer, &outcome.b.peer);
        let all = || a.birthdays.iter().chain(&b.birthdays);
        Self {
            pairing: cell.pairing.clone(),
            layout: cell.layout.name().to_owned(),
            relay: cell.relay.name().to_owned(),
            go_layout: cell
                .go_layout
                .map(|l| l.name().to_owned())
                .unwrap_or_default(),
            delay_ms: cell.delay.as_millis() as u64,
            variant: variant.name.clone(),
            trial,
            direct: outcome.direct(),
            elapsed_ms: outcome.elapsed_ms(),
            initiator_elapsed_ms: a.elapsed_ms,
            attempts: b.attempts.or(a.attempts),
            failure: outcome.failure().map(str::to_owned),
            winner: outcome.winner(),
            connections: (a.connections.len(), b.connections.len()),
            reserving_punches: outcome.a.punches.clone(),
            dialing_punches: outcome.b.punches.clone(),
            exit_code: outcome.exit_code,
            reserving_flows: outcome.a.flow_texts(),
            dialing_flows: outcome.b.flow_texts(),
            birthday_won: all().any(|t| t.direct && t.winning_port.is_some()),
            birthday_attempts: a.birthdays.len().max(b.birthdays.len()),
            sockets: all().map(|t| u32::from(t.sockets)).sum(),
            probes: all().map(|t| u32::from(t.probes)).sum(),
            conntrack: (outcome.a.conntrack_entries, outcome.b.conntrack_entries),
            cpu_ms: (outcome.a.cpu_ms, outcome.b.cpu_ms),
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

    /// The cell and variant it belongs to.
    fn key(&self) -> (&str, &str, &str, &str, u64, &str) {
        (
            &self.pairing,
            &self.layout,
            &self.relay,
            &self.go_layout,
            self.delay_ms,
            &self.variant,
        )
    }

    /// One line for a run's progress.
    pub fn progress(&self) -> String {
        let outcome = match (self.elapsed_ms, &self.failure) {
            (Some(ms), _) => format!(
                "direct in {ms} ms{}, {} attempt(s), won by {}, punches A {:?}, B {:?}",
                if self.birthday_won {
                    " by birthday"
                } else {
                    ""
                },
                self.attempts.unwrap_or(0),
                match self.winner {
                    Some(Winner::Reserving) => "A",
                    Some(Winner::Dialing) => "B",
                    None => "?",
                },
                self.reserving_punches
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>(),
                self.dialing_punches
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>(),
            ),
            (None, failure) => format!("failed: {}", failure.as_deref().unwrap_or("?")),
        };
        let cell = [&self.pairing, &self.layout, &self.relay, &self.go_layout]
            .into_iter()
            .filter(|part| !part.is_empty())
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" | ");
        format!(
            "{cell} | {} ms | {} #{}: {outcome}",
            self.delay_ms, self.variant, self.trial
        )
    }
}

/// The figures of one variant's trials in one cell.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The NAT pairing.
    pub pairing: String,
    /// The layout.
    pub layout: String,
    /// The relay.
    pub relay: String,
    /// The go peer's listeners.
    pub go_layout: String,
    /// One-way WAN delay in milliseconds.
    pub delay_ms: u64,
    /// The variant's name.
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
    /// The lower bound for the cell's delay ([`Cell::lower_bound`]).
    pub lower_bound_ms: u64,
    /// DCUtR attempts per success (all attempts of all trials / successes).
    pub attempts_per_success: Option<f64>,
    /// Successes whose first direct connection the reserving peer dialed.
    pub won_by_reserving: usize,
    /// Successes whose first direct connection the dialing peer dialed.
    pub won_by_dialing: usize,
    /// The reserving peer's punch attempts by DCUtR side and QUIC role.
    pub reserving_roles: Vec<(String, usize)>,
    /// The dialing peer's.
    pub dialing_roles: Vec<(String, usize)>,
    /// Successes through a birthday punch.
    pub by_birthday: usize,
    /// Median sockets (hard side) per trial.
    pub median_sockets: Option<u64>,
    /// Median probes (easy side) per trial.
    pub median_probes: Option<u64>,
    /// Median conntrack entries on router A and B.
    pub median_conntrack: (Option<u64>, Option<u64>),
    /// Median CPU time of peer A and B, in milliseconds.
    pub median_cpu_ms: (Option<u64>, Option<u64>),
    /// Trials with a birthday attempt, and of those, how many connected at
    /// the first.
    pub first_attempts: (usize, usize),
    /// Median and largest datagrams and bytes of the hard side's first
    /// attempt, by its own count.
    pub hard_first: Option<CostFigures>,
    /// The same for the easy side.
    pub easy_first: Option<CostFigures>,
    /// The largest datagrams and bytes a router saw its peer send to the
    /// other peer over a trial (A, B).
    pub router_max: ((u64, u64), (u64, u64)),
    /// Direct connections over IPv4 and over IPv6.
    pub families: (usize, usize),
}

impl Summary {
    /// Its one-way delay, `25 ms`.
    pub fn delay(&self) -> String {
        format!("{} ms", self.delay_ms)
    }

    /// Its median time to direct, `305 ms` or `–`.
    pub fn median(&self) -> String {
        table::ms(self.median_ms)
    }

    /// Its 90th percentile, `309 ms` or `–`.
    pub fn p90(&self) -> String {
        table::ms(self.p90_ms)
    }

    /// Its lower bound, `250 ms`.
    pub fn lower_bound(&self) -> String {
        format!("{} ms", self.lower_bound_ms)
    }

    /// `direct/trials (percent%)`.
    pub fn share(&self) -> String {
        format!(
            "{}/{} ({:.0}%)",
            self.direct,
            self.trials,
            100.0 * self.direct as f64 / self.trials.max(1) as f64
        )
    }

    /// The Wilson interval in percent, `low–high%`.
    pub fn interval(&self) -> String {
        format!(
            "{:.0}–{:.0}%",
            100.0 * self.wilson_95.0,
            100.0 * self.wilson_95.1
        )
    }
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

fn cost_figures(costs: impl Iterator<Item = AttemptCost>) -> Option<CostFigures> {
    let costs: Vec<AttemptCost> = costs.collect();
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

fn summarise(group: &[&Record]) -> Summary {
    let first = group[0];
    let count = |keep: &dyn Fn(&Record) -> bool| group.iter().filter(|r| keep(r)).count();
    let most = |value: &dyn Fn(&Record) -> u64| group.iter().map(|r| value(r)).max().unwrap_or(0);
    let times: Vec<u64> = group.iter().filter_map(|r| r.elapsed_ms).collect();
    let direct = count(&|r| r.direct);
    let attempts: u32 = group.iter().filter_map(|r| r.attempts).sum();
    Summary {
        pairing: first.pairing.clone(),
        layout: first.layout.clone(),
        relay: first.relay.clone(),
        go_layout: first.go_layout.clone(),
        delay_ms: first.delay_ms,
        variant: first.variant.clone(),
        trials: group.len(),
        direct,
        wilson_95: stats::wilson_95(direct, group.len()),
        median_ms: stats::quantile(&times, 0.5),
        p90_ms: stats::quantile(&times, 0.9),
        lower_bound_ms: first.delay_ms * u64::from(LOWER_BOUND_DELAYS),
        attempts_per_success: (direct > 0).then(|| f64::from(attempts) / direct as f64),
        won_by_reserving: count(&|r| r.direct && r.winner == Some(Winner::Reserving)),
        won_by_dialing: count(&|r| r.direct && r.winner == Some(Winner::Dialing)),
        reserving_roles: role_counts(group.iter().flat_map(|r| &r.reserving_punches)),
        dialing_roles: role_counts(group.iter().flat_map(|r| &r.dialing_punches)),
        by_birthday: count(&|r| r.birthday_won),
        median_sockets: median(group.iter().map(|r| u64::from(r.sockets))),
        median_probes: median(group.iter().map(|r| u64::from(r.probes))),
        median_conntrack: (
            median(group.iter().map(|r| r.conntrack.0 as u64)),
            median(group.iter().map(|r| r.conntrack.1 as u64)),
        ),
        median_cpu_ms: (
            median(group.iter().filter_map(|r| r.cpu_ms.0)),
            median(group.iter().filter_map(|r| r.cpu_ms.1)),
        ),
        first_attempts: (
            count(&|r| r.first_attempt_direct.is_some()),
            count(&|r| r.first_attempt_direct == Some(true)),
        ),
        hard_first: cost_figures(group.iter().filter_map(|r| r.hard_first)),
        easy_first: cost_figures(group.iter().filter_map(|r| r.easy_first)),
        router_max: (
            (most(&|r| r.router_sent.0.0), most(&|r| r.router_sent.0.1)),
            (most(&|r| r.router_sent.1.0), most(&|r| r.router_sent.1.1)),
        ),
        families: (
            count(&|r| r.direct && r.family.as_deref() == Some("ip4")),
            count(&|r| r.direct && r.family.as_deref() == Some("ip6")),
        ),
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
    groups.iter().map(|group| summarise(group)).collect()
}
