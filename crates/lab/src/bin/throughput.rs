//! Bulk transfer over punchport's punched direct connection against stock
//! libp2p-quic's and against the relayed connection, interleaved in one lab
//! per link setting; the settings and the document are
//! `punchport_lab::bench::throughput`'s. Needs root and the release relay
//! binary:
//!
//! ```sh
//! cargo build --release --examples -p punchport
//! cargo run --release -p punchport-lab --bin throughput   # writes docs/benchmarks-throughput.{md,json,svg}
//! ```

use std::process::ExitCode;

use clap::Parser;
use punchport_lab::bench::{
    self,
    throughput::{self, Sizes},
};

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
    #[command(flatten)]
    files: bench::Files,
}

fn main() -> ExitCode {
    let args = Args::parse();
    bench::render_or_run("benchmarks-throughput", &args.files, || {
        let settings = throughput::settings(Sizes {
            rounds: args.rounds,
            mib: args.mib,
            shaped_mib: args.shaped_mib,
            rate_mbit: args.rate_mbit,
        });
        throughput::run(&settings, |line| eprintln!("{line}")).map_err(|e| e.to_string())
    })
}
