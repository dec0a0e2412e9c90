//! The benchmarks of punch trials: stock rust-libp2p and punchport on
//! identical NAT-lab topologies, interleaved; the scenarios and documents
//! are `punchport_lab::bench`'s. Needs root (network namespaces).
//!
//! ```sh
//! cargo run --release -p punchport-lab --bin bench            # full run, writes docs/benchmarks.{md,json}
//! cargo run --release -p punchport-lab --bin bench -- --smoke # one cell, two trials
//! cargo run --release -p punchport-lab --bin bench -- --interop # against go-libp2p, writes docs/benchmarks-interop.{md,json}
//! cargo run --release -p punchport-lab --bin bench -- --hard-nat # endpoint-dependent NATs, writes docs/benchmarks-hard-nat.{md,json,svg}
//! cargo run --release -p punchport-lab --bin bench -- --render docs/benchmarks.json # the document again from its JSON
//! ```

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;
use punchport_lab::bench::{self, Plan, Scenario, Vary, hard_nat, interop, pairings};

#[derive(Debug, Parser)]
#[command(name = "bench", about)]
struct Args {
    /// Trials per variant and cell.
    #[arg(long, default_value_t = 30)]
    trials: usize,
    /// One cell and two trials each, written to the temporary directory.
    #[arg(long)]
    smoke: bool,
    /// Compare punchport's initiator roles (client, server) instead of stock
    /// and port-aware.
    #[arg(long)]
    initiator_roles: bool,
    /// Move the punch range by one port per trial (stock's listener choice
    /// depends on the remote address; see `bench::Vary`).
    #[arg(long)]
    vary_ports: bool,
    /// Move the ordinary listener (443) by one port per trial, for the same
    /// reason.
    #[arg(long)]
    vary_ordinary_port: bool,
    /// Only the seed layout (443 + punch range) in the punchable pairings.
    #[arg(long)]
    seed_only: bool,
    /// Only these cells of the run, numbered from 1 in the order of the
    /// table (`9-14`, or `3`): to split a run over processes, whose JSON
    /// `--merge` joins.
    #[arg(long, value_name = "FROM-TO", value_parser = parse_cells)]
    cells: Option<(usize, usize)>,
    /// Write one document from the JSON of runs made with `--cells`, in the
    /// order given, instead of running.
    #[arg(long, value_name = "JSON", num_args = 1..)]
    merge: Vec<PathBuf>,
    /// The go-libp2p interop cells instead (punchport, stock and go
    /// against the go node in both roles, both relays; needs Go): writes
    /// docs/benchmarks-interop.{md,json}. With --smoke: one cell, punchport
    /// in both roles, two trials.
    #[arg(long)]
    interop: bool,
    /// The endpoint-dependent NAT cells instead: punchport with birthday
    /// punching (--trials per cell) against punchport with plain punching
    /// and stock (--control-trials each); writes
    /// docs/benchmarks-hard-nat.{md,json} and its plots.
    #[arg(long)]
    hard_nat: bool,
    /// Trials of each control variant per cell (--hard-nat).
    #[arg(long, default_value_t = 5)]
    control_trials: usize,
    /// The cells of routers that accept unsolicited packets instead
    /// (punchport, stock and go in the pairings each asks about, --trials
    /// each; needs Go): writes docs/benchmarks-open-routers.{md,json} and
    /// its plots.
    #[arg(long)]
    open_routers: bool,
    /// The IPv6 and dual-stack cells instead (--trials each): writes
    /// docs/benchmarks-ipv6.{md,json} and its plots.
    #[arg(long)]
    ipv6: bool,
    /// Only the variants of these names (as in the table, e.g.
    /// `port-aware ← go`; repeatable).
    #[arg(long, value_name = "VARIANT")]
    only: Vec<String>,
    /// Seconds a dialing peer waits for a direct connection (default: the
    /// scenario's; 20, 30 with --interop, whose go initiator takes up to
    /// 20 s to give up, 45 with --hard-nat, --open-routers and --ipv6).
    #[arg(long)]
    timeout_secs: Option<u64>,
    /// The Markdown document (default: docs/<the scenario's name>.md).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Render the Markdown (and plots) of an earlier run's JSON, next to it,
    /// instead of running.
    #[arg(long, value_name = "JSON")]
    render: Option<PathBuf>,
}

impl Args {
    /// The scenario the flags select.
    fn scenario(&self) -> &'static Scenario {
        if self.interop {
            if self.smoke {
                &interop::SMOKE
            } else {
                &interop::INTEROP
            }
        } else if self.open_routers {
            &hard_nat::OPEN_ROUTERS
        } else if self.ipv6 {
            &hard_nat::IPV6
        } else if self.hard_nat {
            &hard_nat::HARD_NAT
        } else if self.smoke {
            &pairings::SMOKE
        } else if self.initiator_roles {
            &pairings::ROLES
        } else if self.seed_only && (self.vary_ports || self.vary_ordinary_port) {
            &pairings::VARIED_PORTS
        } else if self.seed_only {
            &pairings::SEED
        } else {
            &pairings::FULL
        }
    }
}

fn main() -> ExitCode {
    punchport_node::cli::init_tracing("warn");
    let args = Args::parse();
    let scenario = args.scenario();
    bench::exit(if let Some(json) = &args.render {
        bench::read_report(json, scenario)
            .and_then(|report| bench::render(&report, &json.with_extension("md")))
    } else if !args.merge.is_empty() {
        merge(&args, scenario)
    } else {
        run(&args, scenario)
    })
}

/// Joins the reports of `--merge` into one document.
fn merge(args: &Args, scenario: &'static Scenario) -> Result<(), String> {
    let reports = args
        .merge
        .iter()
        .map(|json| bench::read_report(json, scenario))
        .collect::<Result<Vec<_>, _>>()?;
    let report = bench::merge(reports)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| bench::docs().join(format!("{}.md", report.scenario().stem)));
    bench::write(&report, &out)?;
    eprintln!("wrote {} with its JSON", out.display());
    Ok(())
}

/// Runs the scenario as the flags ask and writes its document.
fn run(args: &Args, scenario: &'static Scenario) -> Result<(), String> {
    let mut plan = Plan::new(scenario, args.trials);
    if let Some((from, to)) = args.cells {
        plan.part(from, to)?;
    }
    plan.only(&args.only)?;
    plan.control_trials = args.control_trials;
    if let Some(secs) = args.timeout_secs {
        plan.timeout = Duration::from_secs(secs);
    }
    plan.vary = plan.vary.or(Vary {
        punch_port: args.vary_ports,
        ordinary_port: args.vary_ordinary_port,
    });
    plan.command = std::env::args().skip(1).fold(
        "cargo run --release -p punchport-lab --bin bench --".to_owned(),
        |c, a| c + " " + &a,
    );
    bench::require_lab()?;
    bench::build_nodes()?;
    let report = bench::run(&plan, |record| eprintln!("{}", record.progress()))
        .map_err(|e| format!("the benchmark could not run: {e}"))?;
    let out = args.out.clone().unwrap_or_else(|| plan.out());
    bench::write(&report, &out)?;
    eprintln!("wrote {} with its JSON", out.display());
    Ok(())
}

/// `FROM-TO` or `N`, numbered from 1.
fn parse_cells(text: &str) -> Result<(usize, usize), String> {
    let (from, to) = text.split_once('-').unwrap_or((text, text));
    let number = |t: &str| {
        t.trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("`{t}` is not a cell number (1, 2, ...); write e.g. 9-14"))
    };
    let (from, to) = (number(from)?, number(to)?);
    if from > to {
        return Err(format!("{from}-{to} is reversed; write {to}-{from}"));
    }
    Ok((from, to))
}
