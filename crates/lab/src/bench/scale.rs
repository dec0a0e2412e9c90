//! The `scale` benchmark (docs/benchmarks-scale.md): the runs of
//! [`crate::scale`] it makes (relay limits, candidate mode, range size,
//! delay; pods behind `masquerade fully-random`), the busy relay of
//! [`crate::busy`], and the document.

use std::{fmt::Write as _, time::Duration};

use punchport::{CandidateMode, PortRange};
use punchport_node::RelayLimits;
use serde::{Deserialize, Serialize};

use super::{Document, Plot, plot, table};
use crate::{
    Error,
    busy::{self, BusyConfig, BusyRun},
    scale::{self, Limits, ScaleConfig, ScaleRun},
};

/// What the benchmark writes to its JSON.
#[derive(Debug, Serialize, Deserialize)]
pub struct ScaleReport {
    /// One run per variant.
    pub runs: Vec<ScaleRun>,
    /// The busy relay, if it ran.
    pub busy: Option<BusyRun>,
}

/// The variants: `pods` + `pods` pods with the relay's default limits, then
/// sized limits with each candidate mode, a larger range, a delay, and (with
/// `hard`) the dialing pods behind `masquerade fully-random`.
pub fn variants(pods: usize, hard: bool) -> Vec<ScaleConfig> {
    let base = ScaleConfig::new(pods);
    let mut list = vec![
        // Circuits beyond the default 16 wait for the first ones to close:
        // the relayed connections idle out 60 s after their punch.
        ScaleConfig {
            limits: Limits::Defaults,
            deadline: Duration::from_secs(150),
            ..base.clone()
        },
        base.clone(),
        ScaleConfig {
            candidates: CandidateMode::Range,
            ..base.clone()
        },
        ScaleConfig {
            candidates: CandidateMode::Range,
            range: PortRange::new(40000, 40199).expect("a valid range"),
            ..base.clone()
        },
        ScaleConfig {
            wan_delay: Duration::from_millis(25),
            ..base.clone()
        },
    ];
    if hard {
        list.push(ScaleConfig {
            fully_random: true,
            deadline: Duration::from_secs(120),
            ..base
        });
    }
    list
}

/// The busy relay: `punches` a minute to 20 reserving pods from 40 hosts,
/// two waves.
pub fn busy_config(punches: usize) -> BusyConfig {
    BusyConfig {
        targets: 20,
        dialer_hosts: 40,
        punches,
        period: Duration::from_secs(60),
        waves: 2,
        limits: busy_limits(),
    }
}

/// Runs `configs` (numbered from 1 in the table, as given) and, if given,
/// the busy relay; `progress` is told what starts and what each measured.
pub fn run(
    configs: &[(usize, ScaleConfig)],
    busy: Option<&BusyConfig>,
    mut progress: impl FnMut(&str),
) -> Result<ScaleReport, Error> {
    let mut runs = Vec::new();
    for (number, config) in configs {
        progress(&format!("{number}. {} ...", config.name()));
        let run = scale::run(config)?;
        progress(&line(&run));
        runs.push(run);
    }
    let busy = match busy {
        Some(config) => {
            progress(&format!(
                "busy relay: {} punches a minute, two waves ...",
                config.punches
            ));
            let run = busy::run(config)?;
            for (i, wave) in run.waves.iter().enumerate() {
                progress(&format!("busy wave {}: {wave:?}", i + 1));
            }
            Some(run)
        }
        None => None,
    };
    Ok(ScaleReport { runs, busy })
}

impl Document for ScaleReport {
    fn markdown(&self, stem: &str) -> String {
        document(&self.runs, self.busy.as_ref(), stem)
    }

    fn plots(&self) -> Vec<Plot> {
        vec![(".svg", plot_of(&self.runs))]
    }
}

/// The busy relay's limits: libp2p's defaults but for the circuits (64,
/// 16 per peer: each reserving pod is dialed 10 times a minute, and a
/// circuit stays until the relay notices its dialing pod left, 10 s or
/// more) and the rate limits (off: all dialing pods share one IP).
pub fn busy_limits() -> RelayLimits {
    RelayLimits {
        max_circuits: 64,
        max_circuits_per_peer: 16,
        rate_limits: false,
        ..RelayLimits::default()
    }
}

fn spread(s: Option<(u64, u64, u64)>) -> String {
    s.map_or("-".into(), |(m, p, x)| format!("{m} / {p} / {x}"))
}

fn line(run: &ScaleRun) -> String {
    let relay = run.relay.clone().unwrap_or_default();
    format!(
        "{}: {}/{} direct; to direct {} ms; punch {} ms; moves {:?}; circuit retries {} {:?}; relay cpu {:.2} s, peak {} KiB, reservations {}/{}, circuits {}/{}, denied {} reservations, {} circuits (limit)",
        run.config.name(),
        run.direct,
        run.config.pods,
        spread(run.time_to_direct_ms),
        spread(run.punch_ms),
        run.moves,
        run.circuit_retries,
        run.circuit_errors,
        run.relay_cpu_secs,
        run.relay_peak_kib,
        relay.peak_reservations,
        run.max_reservations,
        relay.peak_circuits,
        run.max_circuits,
        relay.reservations_denied,
        relay.circuits_denied_limit,
    )
}

fn plot_of(runs: &[ScaleRun]) -> String {
    let rows: Vec<(String, Vec<f64>)> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            let times = run
                .pods
                .iter()
                .filter(|p| p.name.starts_with('a'))
                .filter_map(|p| p.direct_ms)
                .map(|ms| ms as f64 / 1000.0)
                .collect();
            (format!("{}. {}", i + 1, short(&run.config)), times)
        })
        .collect();
    plot::strip(
        "Time from the dialing pods' start to direct, each pod a dot",
        " s",
        plot::ceiling(&rows),
        &rows,
    )
}

fn short(config: &ScaleConfig) -> String {
    let mut name = format!(
        "{}, {}p",
        match config.candidates {
            CandidateMode::Range => "range",
            _ => "socket-aware",
        },
        config.range.len()
    );
    if config.limits == Limits::Defaults {
        name.push_str(", default limits");
    }
    if !config.wan_delay.is_zero() {
        let _ = write!(name, ", {} ms", config.wan_delay.as_millis());
    }
    if config.fully_random {
        name.push_str(", fully-random");
    }
    name
}

fn document(runs: &[ScaleRun], busy: Option<&BusyRun>, stem: &str) -> String {
    let mut doc = String::new();
    let pods = runs.first().map_or(0, |r| r.config.pods);
    let _ = writeln!(
        doc,
        "# Many pods behind one node\n\n\
         Written by the `scale` benchmark (`crates/lab/src/bin/scale.rs`; \
         `cargo build --release --examples -p punchport && cargo run --release -p punchport-lab --bin scale -- --hard --busy`), \
         raw figures in [{json}]({json}). {pods} pods (hosts in their own network namespaces) sit behind \
         each of two Kubernetes nodes (natlab's `KubeNode::MASQUERADE`: flannel's masquerade rule, \
         port-preserving until two pods collide; the nodes accept unsolicited packets, as real ones do, \
         `KubeNode::DEFAULT_INPUT`); one relay (203.0.113.10 and .11, UDP 443) serves all. \
         The `b` pods start together and reserve; two seconds after the last is ready, every `a` pod \
         starts at the same moment and dials its `b` partner through the relay (`--persist`), and \
         DCUtR punches. All pods listen on 443 and bind the first free port of the range in their \
         own namespace: every pod of a node starts on the same port, 40000. Release build, 2 cores; \
         one run per variant.\n",
        json = format!("{stem}.json")
    );
    let rows = runs.iter().enumerate().map(|(i, run)| {
        let relay = run.relay.clone().unwrap_or_default();
        vec![
            (i + 1).to_string(),
            run.config.name(),
            format!("{}/{}", run.direct, run.config.pods),
            spread(run.time_to_direct_ms),
            spread(run.punch_ms),
            format!("{}, {}", run.moves.0, run.moves.1),
            if run.circuit_errors.is_empty() {
                run.circuit_retries.to_string()
            } else {
                format!(
                    "{} ({})",
                    run.circuit_retries,
                    run.circuit_errors.join("; ")
                )
            },
            format!("{:.2}", run.relay_cpu_secs),
            format!("{:.1}", run.relay_peak_kib as f64 / 1024.0),
            format!("{} / {}", relay.peak_reservations, run.max_reservations),
            format!("{} / {}", relay.peak_circuits, run.max_circuits),
            format!(
                "{}, {}",
                relay.reservations_denied,
                relay.circuits_denied_limit + relay.circuits_denied_other
            ),
        ]
    });
    doc.push_str(&table::table(
        &[
            "#",
            "variant",
            "direct",
            "to direct, ms (median / p90 / max)",
            "relayed to direct, ms",
            "moves (dialing, reserving)",
            "failed relayed dials (retried)",
            "relay CPU s",
            "relay peak RSS MiB",
            "reservations peak / limit",
            "circuits peak / limit",
            "refused (reservations, circuits)",
        ],
        rows,
    ));
    let _ = writeln!(doc, "\n![time to direct]({stem}.svg)\n");
    doc.push_str(HOW_TO_READ);
    for (i, run) in runs.iter().enumerate() {
        if run.config.fully_random {
            birthday_note(&mut doc, i + 1, run);
        }
    }
    if let Some(busy) = busy {
        busy_section(&mut doc, busy);
    }
    doc
}

/// One birthday attempt of a pod: sockets, probes, duration in ms, error.
type Birthday = (u16, u16, u64, Option<String>);

/// What the birthday attempts of a fully-random run did, from the pods'
/// `attempt` lines.
fn birthday_note(doc: &mut String, row: usize, run: &ScaleRun) {
    let side = |prefix: char, pick: fn(&Birthday) -> u16| {
        let mut values: Vec<u64> = run
            .pods
            .iter()
            .filter(|p| p.name.starts_with(prefix))
            .flat_map(|p| p.birthdays.iter().map(pick))
            .map(u64::from)
            .collect();
        values.sort_unstable();
        (values.len(), crate::stats::quantile(&values, 0.5))
    };
    let (hard_attempts, sockets) = side('a', |b| b.0);
    let (easy_attempts, probes) = side('b', |b| b.1);
    let mut errors: Vec<(String, usize)> = Vec::new();
    for b in run.pods.iter().flat_map(|p| &p.birthdays) {
        if let Some(error) = &b.3 {
            match errors.iter_mut().find(|(e, _)| e == error) {
                Some((_, n)) => *n += 1,
                None => errors.push((error.clone(), 1)),
            }
        }
    }
    errors.sort_by_key(|e| std::cmp::Reverse(e.1));
    let errors: Vec<String> = errors
        .iter()
        .take(3)
        .map(|(e, n)| format!("{n}× \"{e}\""))
        .collect();
    let _ = writeln!(
        doc,
        "- Row {row} (birthday punching, {} dialing pods behind `masquerade fully-random`): the \
         dialing (hard) pods made {hard_attempts} birthday attempts and opened a median of {} \
         sockets per attempt (the budget is 256); the reserving (easy) pods made {easy_attempts} \
         and sent a median of {} probes per attempt (up to 1024). Failed attempts: {}.",
        run.config.pods,
        sockets.map_or("-".into(), |v| v.to_string()),
        probes.map_or("-".into(), |v| v.to_string()),
        if errors.is_empty() {
            "none".to_owned()
        } else {
            errors.join(", ")
        },
    );
}

fn busy_section(doc: &mut String, busy: &BusyRun) {
    let c = &busy.config;
    let _ = writeln!(
        doc,
        "\n## A busy relay\n\n\
         `scale --busy`: {} pods behind one node hold reservations; dialing pods behind another node \
         start at a steady rate, {} over {} s per wave, each on one of {} hosts, dial one reserving pod \
         through the relay, punch, and exit once direct. Two waves, one after the other. Relay limits: \
         {} reservations, {} circuits ({} per peer), rate limits off. The relay's resident memory: {:.1} MiB \
         with no pod, {:.1} MiB with the reservations.\n",
        c.targets,
        c.punches,
        c.period.as_secs(),
        c.dialer_hosts,
        busy.max_reservations,
        busy.max_circuits,
        busy.max_circuits_per_peer,
        busy.rss_empty_kib as f64 / 1024.0,
        busy.rss_reserved_kib as f64 / 1024.0,
    );
    let mib = |k: u64| k as f64 / 1024.0;
    let rows = busy.waves.iter().enumerate().map(|(i, w)| {
        vec![
            (i + 1).to_string(),
            format!("{}/{}", w.direct, w.punches),
            spread(w.time_to_direct_ms),
            spread(w.punch_ms),
            w.concurrent_dialers.to_string(),
            w.relay.peak_circuits.to_string(),
            format!(
                "{}, {}",
                w.relay.reservations_denied,
                w.relay.circuits_denied_limit + w.relay.circuits_denied_other
            ),
            format!("{:.2}", w.relay_cpu_secs),
            format!(
                "{:.1} / {:.1} / {:.1}",
                mib(w.rss_before_kib),
                mib(w.rss_peak_kib),
                mib(w.rss_after_kib)
            ),
            format!("{:.1} s", w.drain_ms as f64 / 1000.0),
        ]
    });
    doc.push_str(&table::table(
        &[
            "wave",
            "direct",
            "to direct, ms (median / p90 / max)",
            "relayed to direct, ms",
            "dialing pods alive at once",
            "circuits peak",
            "refused (reservations, circuits)",
            "relay CPU s",
            "RSS before / peak / after, MiB",
            "circuits gone after",
        ],
        rows,
    ));
    doc.push_str(
        "\n*circuits gone after*: from the wave's end until the relay's `relay load` line showed no \
         circuit. A dialing pod that exits does not close its QUIC connections, so the relay keeps its \
         circuit until the connection's idle timeout (10 s) and more; the circuits peak counts them.\n",
    );
}

const HOW_TO_READ: &str = "## How to read it\n\n\
- *to direct* runs from the moment the dialing pods were started (process start, relay connection, \
identify, circuit, DCUtR) to their `direct` line; *relayed to direct* is DCUtR's own part, as the pod \
reports it. *moves* counts `punch_port_moved` lines. *failed relayed dials* are dials through the relay \
that failed (each retried a second later), with the reasons the pods logged. Relay CPU is user plus \
system time from the dialing pods' start to the end of the run (`/proc/<pid>/stat`); peak RSS is VmHWM. \
The relay's counts are its `relay load` log line (`src/relay/load.rs`).\n\
- *default limits* are libp2p-relay's (128 reservations, 16 circuits, 4 per peer, per-peer and per-IP \
rate limits); *sized* are `punchport_lab::scale::sized_limits`: reservations and circuits at least twice \
the pods of a node, rate limits off (every pod of a node shares the node's IP).\n";
