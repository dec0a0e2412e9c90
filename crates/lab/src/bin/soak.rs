//! Soak: a relay and a reserving peer that a fresh dialing peer punches to
//! every few seconds, for a long time; the long-lived processes sampled each
//! minute. Needs root and the release node binaries:
//!
//! ```sh
//! cargo build --release --examples -p punchport
//! cargo run --release -p punchport-lab --bin soak -- --minutes 60   # writes docs/soak.{md,json,svg}
//! ```

use std::{fmt::Write as _, path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;
use punchport_lab::soak::{self, Sample, SoakConfig, SoakRun};

#[derive(Debug, Parser)]
#[command(name = "soak", about)]
struct Args {
    /// How long to run.
    #[arg(long, default_value_t = 60)]
    minutes: u64,
    /// Seconds between the starts of two punches.
    #[arg(long, default_value_t = 5)]
    every_secs: u64,
    /// Seconds between two samples.
    #[arg(long, default_value_t = 60)]
    sample_secs: u64,
    /// Where to write `<out>.md`, `<out>.json` and `<out>.svg`.
    #[arg(long, default_value = "docs/soak")]
    out: PathBuf,
    /// Render the document from `<out>.json` instead of running.
    #[arg(long)]
    render: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let json = args.out.with_extension("json");
    let run: SoakRun = if args.render {
        match punchport_lab::report::read(&json) {
            Ok(run) => run,
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
        let config = SoakConfig {
            duration: Duration::from_secs(args.minutes * 60),
            every: Duration::from_secs(args.every_secs),
            sample: Duration::from_secs(args.sample_secs),
        };
        println!("{}", header());
        match soak::run(&config, |s| println!("{}", row(s))) {
            Ok(run) => {
                let text = serde_json::to_string_pretty(&run).expect("serializable");
                if let Err(e) = std::fs::write(&json, text) {
                    eprintln!("writing {}: {e}", json.display());
                    return ExitCode::FAILURE;
                }
                run
            }
            Err(e) => {
                eprintln!("soak: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let svg = args.out.with_extension("svg");
    let written = std::fs::write(&svg, plot(&run))
        .and_then(|()| std::fs::write(args.out.with_extension("md"), document(&run, &svg)));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("writing {}: {e}", args.out.display());
            ExitCode::FAILURE
        }
    }
}

fn header() -> String {
    "| minute | punches | direct | relay RSS MiB | relay fds | relay UDP | relay threads | relay circuits | peer RSS MiB | peer fds | peer UDP | peer threads | peer maps (punches, dials, connections, sources; total) | libp2p-dcutr entries (renewals) |\n\
     |---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        .to_owned()
}

fn row(s: &Sample) -> String {
    let mib = |k: u64| k as f64 / 1024.0;
    format!(
        "| {:.0} | {} | {} | {:.1} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {}, {}, {}, {}; {} | {} ({}) |",
        s.at_secs as f64 / 60.0,
        s.punches,
        s.direct,
        mib(s.relay.rss_kib),
        s.relay.fds,
        s.relay.udp_sockets,
        s.relay.threads,
        s.relay_load.circuits,
        mib(s.peer.rss_kib),
        s.peer.fds,
        s.peer.udp_sockets,
        s.peer.threads,
        s.maps.punches,
        s.maps.dials,
        s.maps.connections,
        s.maps.sources,
        s.maps.total(),
        s.maps.dcutr_entries,
        s.maps.dcutr_renewals,
    )
}

/// A panel of the plot: its title and its named lines.
type Panel<'a> = (&'a str, Vec<(&'a str, Vec<f64>)>);

const COLOURS: [&str; 4] = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759"];

/// Four panels of lines over the run's minutes: resident memory,
/// descriptors, threads, and the peer's map entries.
fn plot(run: &SoakRun) -> String {
    let minutes: Vec<f64> = run
        .samples
        .iter()
        .map(|s| s.at_secs as f64 / 60.0)
        .collect();
    let series = |f: &dyn Fn(&Sample) -> f64| run.samples.iter().map(f).collect::<Vec<f64>>();
    let panels: Vec<Panel> = vec![
        (
            "resident memory, MiB",
            vec![
                ("relay", series(&|s| s.relay.rss_kib as f64 / 1024.0)),
                ("peer", series(&|s| s.peer.rss_kib as f64 / 1024.0)),
            ],
        ),
        (
            "file descriptors (UDP sockets dashed)",
            vec![
                ("relay", series(&|s| s.relay.fds as f64)),
                ("peer", series(&|s| s.peer.fds as f64)),
                ("relay UDP", series(&|s| s.relay.udp_sockets as f64)),
                ("peer UDP", series(&|s| s.peer.udp_sockets as f64)),
            ],
        ),
        (
            "threads",
            vec![
                ("relay", series(&|s| s.relay.threads as f64)),
                ("peer", series(&|s| s.peer.threads as f64)),
            ],
        ),
        (
            "peer: map entries",
            vec![
                ("punchport's", series(&|s| s.maps.total() as f64)),
                ("libp2p-dcutr's", series(&|s| s.maps.dcutr_entries as f64)),
            ],
        ),
    ];
    let (width, panel_height, top) = (760.0, 150.0, 40.0);
    let height = top + panels.len() as f64 * (panel_height + 40.0);
    let x_max = minutes.last().copied().unwrap_or(1.0).max(1.0);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/><text x="{}" y="20" font-size="14" text-anchor="middle">Soak: {} punches over {:.0} minutes, sampled each minute</text>"#,
        width / 2.0,
        run.samples.last().map_or(0, |s| s.punches),
        x_max
    );
    for (p, (title, lines)) in panels.iter().enumerate() {
        let y0 = top + p as f64 * (panel_height + 40.0) + 20.0;
        let (left, right) = (60.0, width - 140.0);
        let y_max = lines
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .fold(1.0, f64::max)
            * 1.15;
        let x = |m: f64| left + (right - left) * m / x_max;
        let y = |v: f64| y0 + panel_height - panel_height * v / y_max;
        let _ = write!(
            out,
            r##"<text x="{left}" y="{}">{title}</text><line x1="{left}" x2="{right}" y1="{}" y2="{}" stroke="#999"/><line x1="{left}" x2="{left}" y1="{y0}" y2="{}" stroke="#999"/><text x="{}" y="{}" text-anchor="end">{:.0}</text><text x="{}" y="{}" text-anchor="end">0</text><text x="{right}" y="{}" text-anchor="end">{x_max:.0} min</text>"##,
            y0 - 6.0,
            y0 + panel_height,
            y0 + panel_height,
            y0 + panel_height,
            left - 4.0,
            y0 + 10.0,
            y_max,
            left - 4.0,
            y0 + panel_height,
            y0 + panel_height + 14.0,
        );
        for (i, (name, values)) in lines.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let dash = if name.ends_with("UDP") {
                r#" stroke-dasharray="4 3""#
            } else {
                ""
            };
            let points: Vec<String> = minutes
                .iter()
                .zip(values)
                .map(|(m, v)| format!("{:.1},{:.1}", x(*m), y(*v)))
                .collect();
            let _ = write!(
                out,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5"{dash} points="{}"/><text x="{}" y="{}" fill="{colour}">{name}</text>"#,
                points.join(" "),
                right + 8.0,
                y0 + 14.0 + 14.0 * i as f64
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

fn document(run: &SoakRun, svg: &std::path::Path) -> String {
    let mut doc = String::new();
    let minutes = run.config.duration.as_secs() / 60;
    let mut times = run.times_ms.clone();
    times.sort_unstable();
    let q = |p: f64| punchport_lab::stats::quantile(&times, p).unwrap_or(0);
    let _ = writeln!(
        doc,
        "# Soak\n\n\
         Written by the `soak` benchmark (`crates/lab/src/bin/soak.rs`, `punchport_lab::soak`; \
         `cargo build --release --examples -p punchport && cargo run --release -p punchport-lab --bin soak -- --minutes {minutes}`), \
         raw samples in [soak.json](soak.json). One relay and one reserving peer (`peer --listen \
         /ip4/0.0.0.0/udp/443/quic-v1 --maps-interval-secs {}`, behind a port-preserving NAT) run \
         for {minutes} minutes; every {} s a fresh dialing peer behind another port-preserving NAT \
         (`peer --dial`) reaches it through the relay, punches, and exits once direct (its QUIC \
         connections are not closed: the relay and the reserving peer drop them at the idle \
         timeout). The relay and the reserving peer are sampled each minute from `/proc/<pid>` \
         (descriptors, UDP sockets, threads, resident memory) and from the peer's `maps` line \
         (the entries of punchport's own maps, and libp2p-dcutr's: the dials since the wrapper \
         last replaced it, a bound on each of its two maps that libp2p-dcutr 0.15 never prunes; \
         the wrapper replaces it every 256 dials, `punches_go_on_across_renewals_and_dcutrs_maps_stay_bounded`). {} punches, {} direct; time to direct from the \
         dialing peer's start: median {} ms, p90 {} ms, max {} ms. Release build, 2 cores.\n",
        run.config.sample.as_secs(),
        run.config.every.as_secs(),
        run.samples.last().map_or(0, |s| s.punches),
        run.times_ms.len(),
        q(0.5),
        q(0.9),
        times.last().copied().unwrap_or(0),
    );
    doc.push_str(&header());
    doc.push('\n');
    for s in &run.samples {
        doc.push_str(&row(s));
        doc.push('\n');
    }
    let _ = writeln!(
        doc,
        "\n![soak]({})\n",
        svg.file_name().unwrap_or_default().to_string_lossy()
    );
    doc
}
