//! Many pods behind one node: 50 pods behind one Kubernetes node's
//! masquerade and 50 behind another's, punching pairwise through one relay
//! at the same moment, in several variants (relay limits, candidate mode,
//! range size). Needs root and the release node binaries:
//!
//! ```sh
//! cargo build --release --examples -p punchport
//! cargo run --release -p punchport-lab --bin scale            # writes docs/benchmarks-scale.{md,json,svg}
//! cargo run --release -p punchport-lab --bin scale -- --pods 10 --out /tmp/scale
//! ```

use std::{fmt::Write as _, path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;
use punchport::{PortRange, dcutr::CandidateMode};
use punchport_lab::{
    busy::{self, BusyConfig, BusyRun},
    plot,
    scale::{self, Limits, ScaleConfig, ScaleRun},
};
use punchport_node::RelayLimits;

#[derive(Debug, Parser)]
#[command(name = "scale", about)]
struct Args {
    /// Pods behind each node.
    #[arg(long, default_value_t = 50)]
    pods: usize,
    /// Also run the pods behind `masquerade fully-random` (birthday
    /// punching).
    #[arg(long)]
    hard: bool,
    /// Only the variants with these numbers (1-based, in the table's order).
    #[arg(long, value_delimiter = ',')]
    only: Vec<usize>,
    /// Where to write `<out>.md`, `<out>.json` and `<out>.svg`.
    #[arg(long, default_value = "docs/benchmarks-scale")]
    out: PathBuf,
    /// Render the document from `<out>.json` instead of running.
    #[arg(long)]
    render: bool,
    /// Also run the busy relay: `--busy-punches` punches a minute, in two
    /// waves, to 20 reserving pods.
    #[arg(long)]
    busy: bool,
    /// Punches per busy wave (started over 60 s).
    #[arg(long, default_value_t = 200)]
    busy_punches: usize,
}

/// What the benchmark writes to `<out>.json`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Report {
    runs: Vec<ScaleRun>,
    busy: Option<BusyRun>,
}

fn variants(pods: usize, hard: bool) -> Vec<ScaleConfig> {
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

fn main() -> ExitCode {
    let args = Args::parse();
    let json = args.out.with_extension("json");
    let report: Report = if args.render {
        match punchport_lab::report::read(&json) {
            Ok(report) => report,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        if let Err(why) = natlab::available() {
            eprintln!("SKIPPED: {why}");
            return ExitCode::FAILURE;
        }
        let mut runs = Vec::new();
        for (i, config) in variants(args.pods, args.hard).into_iter().enumerate() {
            if !args.only.is_empty() && !args.only.contains(&(i + 1)) {
                continue;
            }
            eprintln!("{}. {} ...", i + 1, config.name());
            match scale::run(&config) {
                Ok(run) => {
                    println!("{}", line(&run));
                    runs.push(run);
                }
                Err(e) => {
                    eprintln!("{}: {e}", config.name());
                    return ExitCode::FAILURE;
                }
            }
        }
        let busy = if args.busy {
            let config = BusyConfig {
                targets: 20,
                dialer_hosts: 40,
                punches: args.busy_punches,
                period: Duration::from_secs(60),
                waves: 2,
                limits: busy_limits(),
            };
            eprintln!(
                "busy relay: {} punches a minute, two waves ...",
                config.punches
            );
            match busy::run(&config) {
                Ok(run) => {
                    for (i, wave) in run.waves.iter().enumerate() {
                        println!("busy wave {}: {wave:?}", i + 1);
                    }
                    Some(run)
                }
                Err(e) => {
                    eprintln!("busy relay: {e}");
                    return ExitCode::FAILURE;
                }
            }
        } else {
            None
        };
        let report = Report { runs, busy };
        let text = serde_json::to_string_pretty(&report).expect("serializable");
        if let Err(e) = std::fs::write(&json, text) {
            eprintln!("writing {}: {e}", json.display());
            return ExitCode::FAILURE;
        }
        report
    };
    let runs = &report.runs;
    let svg = args.out.with_extension("svg");
    let written = std::fs::write(&svg, plot_of(runs)).and_then(|()| {
        std::fs::write(
            args.out.with_extension("md"),
            document(runs, report.busy.as_ref(), &svg, &args.out),
        )
    });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("writing {}: {e}", args.out.display());
            ExitCode::FAILURE
        }
    }
}

/// The busy relay's limits: libp2p's defaults but for the circuits (64,
/// 16 per peer: each reserving pod is dialed 10 times a minute, and a
/// circuit stays until the relay notices its dialing pod left, 10 s or
/// more) and the rate limits (off: all dialing pods share one IP).
fn busy_limits() -> RelayLimits {
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
    let max = rows
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(1.0, f64::max)
        .ceil();
    plot::strip(
        "Time from the dialing pods' start to direct, each pod a dot",
        " s",
        max,
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

fn document(
    runs: &[ScaleRun],
    busy: Option<&BusyRun>,
    svg: &std::path::Path,
    out: &std::path::Path,
) -> String {
    let mut doc = String::new();
    let pods = runs.first().map_or(0, |r| r.config.pods);
    let _ = writeln!(
        doc,
        "# Many pods behind one node\n\n\
         Written by the `scale` benchmark (`crates/lab/src/bin/scale.rs`; \
         `cargo build --release --examples -p punchport && cargo run --release -p punchport-lab --bin scale`), \
         raw figures in [{json}]({json}). {pods} pods (hosts in their own network namespaces) sit behind \
         each of two Kubernetes nodes (natlab's `KubeNode::MASQUERADE`: flannel's masquerade rule, \
         port-preserving until two pods collide); one relay (203.0.113.10 and .11, UDP 443) serves all. \
         The `b` pods start together and reserve; two seconds after the last is ready, every `a` pod \
         starts at the same moment and dials its `b` partner through the relay (`--persist`), and \
         DCUtR punches. All pods listen on 443 and bind the first free port of the range in their \
         own namespace: every pod of a node starts on the same port, 40000. Release build, 2 cores; \
         one run per variant.\n",
        json = out
            .with_extension("json")
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
    );
    let _ = writeln!(
        doc,
        "| # | variant | direct | to direct, ms (median / p90 / max) | relayed to direct, ms | moves (dialing, reserving) | failed relayed dials (retried) | relay CPU s | relay peak RSS MiB | reservations peak / limit | circuits peak / limit | refused (reservations, circuits) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (i, run) in runs.iter().enumerate() {
        let relay = run.relay.clone().unwrap_or_default();
        let _ = writeln!(
            doc,
            "| {} | {} | {}/{} | {} | {} | {}, {} | {}{} | {:.2} | {:.1} | {} / {} | {} / {} | {}, {} |",
            i + 1,
            run.config.name(),
            run.direct,
            run.config.pods,
            spread(run.time_to_direct_ms),
            spread(run.punch_ms),
            run.moves.0,
            run.moves.1,
            run.circuit_retries,
            if run.circuit_errors.is_empty() {
                String::new()
            } else {
                format!(" ({})", run.circuit_errors.join("; "))
            },
            run.relay_cpu_secs,
            run.relay_peak_kib as f64 / 1024.0,
            relay.peak_reservations,
            run.max_reservations,
            relay.peak_circuits,
            run.max_circuits,
            relay.reservations_denied,
            relay.circuits_denied_limit + relay.circuits_denied_other,
        );
    }
    let _ = writeln!(
        doc,
        "\n![time to direct]({})\n",
        svg.file_name().unwrap_or_default().to_string_lossy()
    );
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
        (values.len(), punchport_lab::stats::quantile(&values, 0.5))
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
         with no pod, {:.1} MiB with the reservations.\n\n\
         | wave | direct | to direct, ms (median / p90 / max) | relayed to direct, ms | dialing pods alive at once | circuits peak | refused (reservations, circuits) | relay CPU s | RSS before / peak / after, MiB | circuits gone after |\n\
         |---|---|---|---|---|---|---|---|---|---|",
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
    for (i, w) in busy.waves.iter().enumerate() {
        let mib = |k: u64| k as f64 / 1024.0;
        let _ = writeln!(
            doc,
            "| {} | {}/{} | {} | {} | {} | {} | {}, {} | {:.2} | {:.1} / {:.1} / {:.1} | {:.1} s |",
            i + 1,
            w.direct,
            w.punches,
            spread(w.time_to_direct_ms),
            spread(w.punch_ms),
            w.concurrent_dialers,
            w.relay.peak_circuits,
            w.relay.reservations_denied,
            w.relay.circuits_denied_limit + w.relay.circuits_denied_other,
            w.relay_cpu_secs,
            mib(w.rss_before_kib),
            mib(w.rss_peak_kib),
            mib(w.rss_after_kib),
            w.drain_ms as f64 / 1000.0,
        );
    }
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
The relay's counts are its `relay load` log line (`crates/node/src/relay/server.rs`).\n\
- *default limits* are libp2p-relay's (128 reservations, 16 circuits, 4 per peer, per-peer and per-IP \
rate limits); *sized* are `punchport_lab::scale::sized_limits`: reservations and circuits at least twice \
the pods of a node, rate limits off (every pod of a node shares the node's IP).\n";
