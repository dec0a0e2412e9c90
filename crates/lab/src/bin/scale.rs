//! Many pods behind one node: 50 pods behind one Kubernetes node's
//! masquerade and 50 behind another's, punching pairwise through one relay
//! at the same moment, in several variants (relay limits, candidate mode,
//! range size); the variants and the document are
//! `punchport_lab::bench::scale`'s. Needs root and the release node
//! binaries:
//!
//! ```sh
//! cargo build --release --examples -p punchport
//! cargo run --release -p punchport-lab --bin scale            # writes docs/benchmarks-scale.{md,json,svg}
//! cargo run --release -p punchport-lab --bin scale -- --pods 10 --out /tmp/scale
//! ```

use std::process::ExitCode;

use clap::Parser;
use punchport_lab::bench::{self, scale};

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
    #[command(flatten)]
    files: bench::Files,
    /// Also run the busy relay: `--busy-punches` punches a minute, in two
    /// waves, to 20 reserving pods.
    #[arg(long)]
    busy: bool,
    /// Punches per busy wave (started over 60 s).
    #[arg(long, default_value_t = 200)]
    busy_punches: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    bench::render_or_run("benchmarks-scale", &args.files, || {
        let configs: Vec<_> = (1..)
            .zip(scale::variants(args.pods, args.hard))
            .filter(|(number, _)| args.only.is_empty() || args.only.contains(number))
            .collect();
        let busy = args.busy.then(|| scale::busy_config(args.busy_punches));
        scale::run(&configs, busy.as_ref(), |line| eprintln!("{line}")).map_err(|e| e.to_string())
    })
}
