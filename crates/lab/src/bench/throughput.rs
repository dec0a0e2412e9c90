//! The `throughput` benchmark (docs/benchmarks-throughput.md): the link
//! settings it runs [`crate::throughput`] in, and the document.

use std::{fmt::Write as _, time::Duration};

use punchport_node::RelayLimits;
use serde::{Deserialize, Serialize};

use super::{Document, Plot, plot, table};
use crate::{
    Error,
    throughput::{self, PathKind, ThroughputConfig, ThroughputRun},
};

/// What the benchmark writes to its JSON: one run per link setting.
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ThroughputReport(pub Vec<ThroughputRun>);

/// The sizes and rounds of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Rounds per link setting (each pair transfers once per round).
    pub rounds: usize,
    /// MiB per direct transfer on an unshaped link.
    pub mib: usize,
    /// MiB per direct transfer on a rate-limited link.
    pub shaped_mib: usize,
    /// The rate-limited links' rate, Mbit/s.
    pub rate_mbit: u64,
}

/// The link settings: unshaped, rate-limited, and rate-limited at 25 ms.
pub fn settings(sizes: Sizes) -> Vec<ThroughputConfig> {
    let rate = sizes.rate_mbit * 1_000_000;
    let mib = |n: usize| n * 1024 * 1024;
    let config = |wan_delay: Duration, wan_rate: Option<u64>, size| ThroughputConfig {
        wan_delay,
        wan_rate,
        size,
        relayed_size: mib(1),
        rounds: sizes.rounds,
        relay_limits: RelayLimits {
            rate_limits: false,
            ..RelayLimits::default()
        },
    };
    vec![
        config(Duration::ZERO, None, mib(sizes.mib)),
        config(Duration::ZERO, Some(rate), mib(sizes.shaped_mib)),
        config(Duration::from_millis(25), Some(rate), mib(sizes.shaped_mib)),
    ]
}

/// Runs each of `configs`; `progress` is told what starts and what each
/// measured.
pub fn run(
    configs: &[ThroughputConfig],
    mut progress: impl FnMut(&str),
) -> Result<ThroughputReport, Error> {
    let mut runs = Vec::new();
    for config in configs {
        progress(&format!("{} ...", setting(config)));
        let run = throughput::run(config)?;
        progress(&summary(&run));
        runs.push(run);
    }
    Ok(ThroughputReport(runs))
}

impl Document for ThroughputReport {
    fn markdown(&self, stem: &str) -> String {
        document(&self.0, stem)
    }

    fn plots(&self) -> Vec<Plot> {
        vec![(".svg", plot_of(&self.0))]
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
                        let (median, low, high) = spread(run, *path)?;
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

/// The median rate of `path`'s complete transfers, and the lowest and the
/// highest, in Mbit/s.
fn spread(run: &ThroughputRun, path: PathKind) -> Option<(f64, f64, f64)> {
    let r = rates(run, path);
    Some((
        run.median_mbit_s(path)?,
        r.iter().copied().fold(f64::INFINITY, f64::min),
        r.iter().copied().fold(0.0, f64::max),
    ))
}

fn document(runs: &[ThroughputRun], stem: &str) -> String {
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
    let rows = runs.iter().map(|run| {
        let cell = |path| {
            spread(run, path).map_or("-".into(), |(m, low, high)| {
                format!("{m:.1}; {low:.1}-{high:.1}")
            })
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
        vec![
            setting(&run.config),
            cell(PathKind::Punchport),
            cell(PathKind::Stock),
            format!("{:.3}", run.ratio().unwrap_or(f64::NAN)),
            relayed,
        ]
    });
    doc.push_str(&table::table(
        &[
            "link",
            "punchport, Mbit/s (median; min-max)",
            "stock, Mbit/s (median; min-max)",
            "punchport / stock",
            "relayed, default limits",
        ],
        rows,
    ));
    let _ = writeln!(
        doc,
        "\n![throughput]({stem}.svg)\n\n\
         ## How to read it\n\n\
         - The goal is punchport at 0.98 of stock or better: punchport's transport hands each \
         connection to libp2p-quic and is not on the data path, so a difference is noise of the \
         run (the min-max spread of the rounds shows how much).\n\
         - The relayed pair sends 1 MiB over the relayed connection with the relay's default \
         limits (libp2p-relay's: 128 KiB in each direction and 2 minutes per circuit): the relay \
         resets the circuit after the byte limit; the duration limit is shown by \
         `circuits_end_at_the_relays_duration_limit` in `tests/relay_security.rs`.\n"
    );
    doc
}
