//! Bulk transfer over punchport's punched direct connection against stock
//! libp2p-quic's and against the relayed connection, interleaved in one lab
//! per link setting. Needs root and the release relay binary:
//!
//! ```sh
//! cargo build --release --examples -p punchport
//! cargo run --release -p punchport-lab --bin throughput   # writes docs/benchmarks-throughput.{md,json,svg}
//! ```

use std::{fmt::Write as _, path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;
use punchport_lab::{
    plot,
    throughput::{self, PathKind, ThroughputConfig, ThroughputRun},
};
use punchport_node::RelayLimits;

#[derive(Debug, Parser)]
#[command(name = "throughput", about)]
struct Args {
    /// Rounds per link setting (each pair transfers once per round).
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// MiB per direct transfer on an unshaped link.
    #[arg(long, default_value_t = 64)]
    mib: usize,
    /// MiB per direct transfer on a rate-limited link.
    #[arg(long, default_value_t = 16)]
    shaped_mib: usize,
    /// The rate-limited links' rate, Mbit/s.
    #[arg(long, default_value_t = 50)]
    rate_mbit: u64,
    /// Where to write `<out>.md`, `<out>.json` and `<out>.svg`.
    #[arg(long, default_value = "docs/benchmarks-throughput")]
    out: PathBuf,
    /// Render the document from `<out>.json` instead of running.
    #[arg(long)]
    render: bool,
}

fn settings(args: &Args) -> Vec<ThroughputConfig> {
    let rate = args.rate_mbit * 1_000_000;
    let mib = |n: usize| n * 1024 * 1024;
    let config = |wan_delay: Duration, wan_rate: Option<u64>, size| ThroughputConfig {
        wan_delay,
        wan_rate,
        size,
        relayed_size: mib(1),
        rounds: args.rounds,
        relay_limits: RelayLimits {
            rate_limits: false,
            ..RelayLimits::default()
        },
    };
    vec![
        config(Duration::ZERO, None, mib(args.mib)),
        config(Duration::ZERO, Some(rate), mib(args.shaped_mib)),
        config(Duration::from_millis(25), Some(rate), mib(args.shaped_mib)),
    ]
}

fn main() -> ExitCode {
    let args = Args::parse();
    let json = args.out.with_extension("json");
    let runs: Vec<ThroughputRun> = if args.render {
        match punchport_lab::report::read(&json) {
            Ok(runs) => runs,
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
        for config in settings(&args) {
            eprintln!("{} ...", setting(&config));
            match throughput::run(&config) {
                Ok(run) => {
                    println!("{}", summary(&run));
                    runs.push(run);
                }
                Err(e) => {
                    eprintln!("{}: {e}", setting(&config));
                    return ExitCode::FAILURE;
                }
            }
        }
        let text = serde_json::to_string_pretty(&runs).expect("serializable");
        if let Err(e) = std::fs::write(&json, text) {
            eprintln!("writing {}: {e}", json.display());
            return ExitCode::FAILURE;
        }
        runs
    };
    let svg = args.out.with_extension("svg");
    let written = std::fs::write(&svg, plot_of(&runs))
        .and_then(|()| std::fs::write(args.out.with_extension("md"), document(&runs, &svg)));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("writing {}: {e}", args.out.display());
            ExitCode::FAILURE
        }
    }
}

fn setting(config: &ThroughputConfig) -> String {
    format!(
        "{} ms one-way, {}",
        config.wan_delay.as_millis(),
        config
            .wan_rate
            .map_or("unshaped (veth)".to_owned(), |r| format!(
                "{} Mbit/s",
                r / 1_000_000
            ))
    )
}

fn rates(run: &ThroughputRun, path: PathKind) -> Vec<f64> {
    run.transfers
        .iter()
        .filter(|t| t.path == path && !t.cut)
        .map(|t| t.mbit_s())
        .collect()
}

fn summary(run: &ThroughputRun) -> String {
    let relayed = run.transfers.iter().find(|t| t.path == PathKind::Relayed);
    format!(
        "{}: punchport {:?} Mbit/s, stock {:?} Mbit/s, ratio {:.3}; relayed: {}",
        setting(&run.config),
        rates(run, PathKind::Punchport)
            .iter()
            .map(|r| (r * 10.0).round() / 10.0)
            .collect::<Vec<_>>(),
        rates(run, PathKind::Stock)
            .iter()
            .map(|r| (r * 10.0).round() / 10.0)
            .collect::<Vec<_>>(),
        run.ratio().unwrap_or(f64::NAN),
        relayed.map_or("-".into(), |t| format!(
            "{} of {} bytes{} in {:.0} ms",
            t.bytes,
            run.config.relayed_size,
            if t.cut { ", cut off" } else { "" },
            t.ms
        ))
    )
}

fn plot_of(runs: &[ThroughputRun]) -> String {
    let categories: Vec<String> = runs.iter().map(|r| setting(&r.config)).collect();
    let series: Vec<(String, Vec<Option<plot::Bar>>)> = [PathKind::Punchport, PathKind::Stock]
        .iter()
        .map(|path| {
            (
                path.name().to_owned(),
                runs.iter()
                    .map(|run| {
                        let r = rates(run, *path);
                        let median = run.median_mbit_s(*path)?;
                        let low = r.iter().copied().fold(f64::INFINITY, f64::min);
                        let high = r.iter().copied().fold(0.0, f64::max);
                        Some(plot::Bar {
                            value: median,
                            interval: Some((low, high)),
                        })
                    })
                    .collect(),
            )
        })
        .collect();
    let y_max = runs
        .iter()
        .flat_map(|r| r.transfers.iter().map(|t| t.mbit_s()))
        .fold(1.0, f64::max)
        * 1.1;
    plot::bars(
        "Bulk transfer over the direct connection: median (bar) and range of the rounds",
        " Mbit/s",
        y_max,
        &categories,
        &series,
    )
}

fn document(runs: &[ThroughputRun], svg: &std::path::Path) -> String {
    let mut doc = String::new();
    let rounds = runs.first().map_or(0, |r| r.config.rounds);
    let _ = writeln!(
        doc,
        "# Throughput: the punched direct connection against stock's and the relayed one\n\n\
         Written by the `throughput` benchmark (`crates/lab/src/bin/throughput.rs`, \
         `punchport_lab::throughput`; `cargo build --release --examples -p punchport && \
         cargo run --release -p punchport-lab --bin throughput`), raw transfers in \
         [benchmarks-throughput.json](benchmarks-throughput.json). Two peers behind two \
         port-preserving NATs (natlab `Nat::PortRestricted`), one in host `a0`'s namespace and \
         one in `b0`'s, run as in-process swarms (release build) that meet through the `relay` \
         binary; three pairs share those two hosts and links: *punchport* (`punchport::new`), \
         *stock* (`with_quic()` and libp2p-dcutr, one listener) and *relayed* (stock without \
         DCUtR). Once a pair is direct, its relayed connection is closed and a libp2p-stream \
         stream carries the transfer over the direct connection: the sender writes, the receiver \
         counts; the rate is bytes over the time from the sender's first write to the receiver's \
         last byte. In each of {rounds} rounds punchport and stock transfer once each, one after \
         the other, on the same links. The rate-limited links are natlab's `wan_rate` (each \
         router's WAN link, each direction, drop-tail queue of 50 ms; \
         `rate_limited_links_pass_about_the_configured_rate` in `crates/natlab/tests/link.rs`). \
         Sender and receiver share the machine's 2 cores, so the unshaped row is bound by CPU.\n"
    );
    let _ = writeln!(
        doc,
        "| link | punchport, Mbit/s (median; min-max) | stock, Mbit/s (median; min-max) | punchport / stock | relayed, default limits |\n\
         |---|---|---|---|---|"
    );
    for run in runs {
        let cell = |path| {
            let r = rates(run, path);
            match run.median_mbit_s(path) {
                Some(m) => format!(
                    "{m:.1}; {:.1}-{:.1}",
                    r.iter().copied().fold(f64::INFINITY, f64::min),
                    r.iter().copied().fold(0.0, f64::max)
                ),
                None => "-".into(),
            }
        };
        let relayed = run
            .transfers
            .iter()
            .find(|t| t.path == PathKind::Relayed)
            .map_or("-".into(), |t| {
                format!(
                    "{} of {} KiB arrived{} ({:.0} ms; limit {} KiB, {} s per circuit)",
                    t.bytes / 1024,
                    run.config.relayed_size / 1024,
                    if t.cut {
                        ", then the relay cut the circuit"
                    } else {
                        ""
                    },
                    t.ms,
                    run.max_circuit_bytes / 1024,
                    run.max_circuit_duration_secs
                )
            });
        let _ = writeln!(
            doc,
            "| {} | {} | {} | {:.3} | {} |",
            setting(&run.config),
            cell(PathKind::Punchport),
            cell(PathKind::Stock),
            run.ratio().unwrap_or(f64::NAN),
            relayed
        );
    }
    let _ = writeln!(
        doc,
        "\n![throughput]({})\n\n\
         ## How to read it\n\n\
         - The goal is punchport at 0.98 of stock or better: punchport's transport hands each \
         connection to libp2p-quic and is not on the data path, so a difference is noise of the \
         run (the min-max spread of the rounds shows how much).\n\
         - The relayed pair sends 1 MiB over the relayed connection with the relay's default \
         limits (libp2p-relay's: 128 KiB in each direction and 2 minutes per circuit): the relay \
         resets the circuit after the byte limit; the duration limit is shown by \
         `circuits_end_at_the_relays_duration_limit` in `tests/relay_security.rs`.\n",
        svg.file_name().unwrap_or_default().to_string_lossy()
    );
    doc
}
