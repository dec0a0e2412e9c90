//! The `soak` benchmark (docs/soak.md): the document and plot of a
//! [`crate::soak`] run.

use std::fmt::Write as _;

use super::{
    Document, Plot,
    plot::{self, Line, Panel},
    table,
};
use crate::{
    soak::{Sample, SoakRun},
    stats,
};

/// The columns of the samples' table.
const HEADERS: [&str; 14] = [
    "minute",
    "punches",
    "direct",
    "relay RSS MiB",
    "relay fds",
    "relay UDP",
    "relay threads",
    "relay circuits",
    "peer RSS MiB",
    "peer fds",
    "peer UDP",
    "peer threads",
    "peer maps (punches, dials, connections, sources; total)",
    "libp2p-dcutr entries (renewals)",
];

/// The header of the samples' table, without a final newline.
pub fn header() -> String {
    table::header(&HEADERS)
}

/// The row of one sample, without a final newline.
pub fn row(sample: &Sample) -> String {
    table::row(&cells(sample))
}

fn cells(s: &Sample) -> Vec<String> {
    let mib = |k: u64| format!("{:.1}", k as f64 / 1024.0);
    vec![
        format!("{:.0}", s.at_secs as f64 / 60.0),
        s.punches.to_string(),
        s.direct.to_string(),
        mib(s.relay.rss_kib),
        s.relay.fds.to_string(),
        s.relay.udp_sockets.to_string(),
        s.relay.threads.to_string(),
        s.relay_load.circuits.to_string(),
        mib(s.peer.rss_kib),
        s.peer.fds.to_string(),
        s.peer.udp_sockets.to_string(),
        s.peer.threads.to_string(),
        format!(
            "{}, {}, {}, {}; {}",
            s.maps.punches,
            s.maps.dials,
            s.maps.connections,
            s.maps.sources,
            s.maps.total()
        ),
        format!("{} ({})", s.maps.dcutr_entries, s.maps.dcutr_renewals),
    ]
}

impl Document for SoakRun {
    fn markdown(&self, stem: &str) -> String {
        document(self, stem)
    }

    fn plots(&self) -> Vec<Plot> {
        vec![(".svg", plot_of(self))]
    }
}

/// Four panels of lines over the run's minutes: resident memory,
/// descriptors, threads, and the peer's map entries.
fn plot_of(run: &SoakRun) -> String {
    let minutes: Vec<f64> = run
        .samples
        .iter()
        .map(|s| s.at_secs as f64 / 60.0)
        .collect();
    let line = |name, dashed, value: &dyn Fn(&Sample) -> f64| Line {
        name,
        values: run.samples.iter().map(value).collect(),
        dashed,
    };
    let panels = [
        Panel {
            title: "resident memory, MiB",
            lines: vec![
                line("relay", false, &|s| s.relay.rss_kib as f64 / 1024.0),
                line("peer", false, &|s| s.peer.rss_kib as f64 / 1024.0),
            ],
        },
        Panel {
            title: "file descriptors (UDP sockets dashed)",
            lines: vec![
                line("relay", false, &|s| s.relay.fds as f64),
                line("peer", false, &|s| s.peer.fds as f64),
                line("relay UDP", true, &|s| s.relay.udp_sockets as f64),
                line("peer UDP", true, &|s| s.peer.udp_sockets as f64),
            ],
        },
        Panel {
            title: "threads",
            lines: vec![
                line("relay", false, &|s| s.relay.threads as f64),
                line("peer", false, &|s| s.peer.threads as f64),
            ],
        },
        Panel {
            title: "peer: map entries",
            lines: vec![
                line("punchport's", false, &|s| s.maps.total() as f64),
                line("libp2p-dcutr's", false, &|s| s.maps.dcutr_entries as f64),
            ],
        },
    ];
    let title = format!(
        "Soak: {} punches over {:.0} minutes, sampled each minute",
        run.samples.last().map_or(0, |s| s.punches),
        minutes.last().copied().unwrap_or(1.0).max(1.0)
    );
    plot::lines(&title, &minutes, " min", &panels)
}

fn document(run: &SoakRun, stem: &str) -> String {
    let mut doc = String::new();
    let minutes = run.config.duration.as_secs() / 60;
    let mut times = run.times_ms.clone();
    times.sort_unstable();
    let q = |p: f64| stats::quantile(&times, p).unwrap_or(0);
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
    doc.push_str(&table::table(&HEADERS, run.samples.iter().map(cells)));
    let _ = writeln!(doc, "\n![soak]({stem}.svg)\n");
    doc
}
