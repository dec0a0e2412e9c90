//! Soak: a relay and a reserving peer that a fresh dialing peer punches to
//! every few seconds, for a long time; the long-lived processes sampled each
//! minute (`punchport_lab::soak`; the document is
//! `punchport_lab::bench::soak`'s). Needs root and the release node
//! binaries:
//!
//! ```sh
//! cargo build --release --examples -p punchport
//! cargo run --release -p punchport-lab --bin soak -- --minutes 60   # writes docs/soak.{md,json,svg}
//! ```

use std::{process::ExitCode, time::Duration};

use clap::Parser;
use punchport_lab::{
    bench::{self, soak},
    soak::SoakConfig,
};

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
    #[command(flatten)]
    files: bench::Files,
}

fn main() -> ExitCode {
    let args = Args::parse();
    bench::render_or_run("soak", &args.files, || {
        let config = SoakConfig {
            duration: Duration::from_secs(args.minutes * 60),
            every: Duration::from_secs(args.every_secs),
            sample: Duration::from_secs(args.sample_secs),
        };
        println!("{}", soak::header());
        punchport_lab::soak::run(&config, |sample| println!("{}", soak::row(sample)))
            .map_err(|e| format!("soak: {e}"))
    })
}
