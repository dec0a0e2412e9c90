//! The hole-punch benchmark: stock rust-libp2p and punchport on identical
//! NAT-lab topologies, interleaved. Needs root (network namespaces).
//!
//! ```sh
//! cargo run --release -p punchport-lab --bin bench            # full run, writes docs/benchmarks.{md,json}
//! cargo run --release -p punchport-lab --bin bench -- --smoke # one cell, two trials
//! cargo run --release -p punchport-lab --bin bench -- --interop # against go-libp2p, writes docs/benchmarks-interop.{md,json}
//! cargo run --release -p punchport-lab --bin bench -- --hard-nat # endpoint-dependent NATs, writes docs/benchmarks-hard-nat.{md,json,svg}
//! ```

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;
use punchport_lab::{
    bench::{self, Variant},
    hard_bench, interop,
};

#[derive(Debug, Parser)]
#[command(name = "bench", about)]
struct Args {
    /// Trials per transport and cell.
    #[arg(long, default_value_t = 30)]
    trials: usize,
    /// One cell and two trials each, written to the target directory.
    #[arg(long)]
    smoke: bool,
    /// Compare punchport's initiator roles (client, server) instead of stock
    /// and port-aware.
    #[arg(long)]
    initiator_roles: bool,
    /// Move the punch range by one port per trial (stock's listener choice
    /// depends on the remote address; see `bench::run`).
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
    /// With --hard-nat: trials of each control per cell.
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
    /// With --interop: only the variants of these names (as in the table,
    /// e.g. `port-aware ← go`; repeatable).
    #[arg(long, value_name = "VARIANT")]
    only: Vec<String>,
    /// Seconds a dialing peer waits for a direct connection (default 20, or
    /// 30 with --interop: go's initiator takes up to 20 s to give up).
    #[arg(long)]
    timeout_secs: Option<u64>,
    /// The Markdown table (default docs/benchmarks.md, or
    /// docs/benchmarks-roles.md with --initiator-roles).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Render the Markdown of an earlier run's JSON instead of running.
    #[arg(long, value_name = "JSON")]
    render: Option<PathBuf>,
}

fn main() -> ExitCode {
    punchport_node::cli::init_tracing("warn");
    let mut args = Args::parse();
    if args.interop {
        return interop_main(args);
    }
    if args.hard_nat || args.open_routers || args.ipv6 {
        return hard_nat_main(args);
    }
    if let Some(json) = &args.render {
        return render(json, args.initiator_roles);
    }
    if !args.merge.is_empty() {
        return merge(&args.merge, args.out.as_deref());
    }
    let (cells, name, title) = match (args.smoke, args.initiator_roles) {
        (true, _) => {
            args.trials = 2;
            (
                bench::smoke_cells(),
                "benchmarks-smoke",
                "Benchmark smoke run",
            )
        }
        (false, true) => (
            bench::role_cells(),
            "benchmarks-roles",
            "How the DCUtR initiator punches: client or server role",
        ),
        (false, false) if args.seed_only => (
            bench::seed_cells(),
            if args.vary_ports || args.vary_ordinary_port {
                "benchmarks-varied-ports"
            } else {
                "benchmarks-seed"
            },
            "Hole punching in the seed layout: stock rust-libp2p and punchport",
        ),
        (false, false) => (
            bench::full_cells(),
            "benchmarks",
            "Hole punching: stock rust-libp2p and punchport",
        ),
    };
    let cells = match args.cells {
        Some((from, to)) if to <= cells.len() => cells[from - 1..to].to_vec(),
        Some((_, to)) => {
            eprintln!("--cells: this run has {} cells, not {to}", cells.len());
            return ExitCode::from(2);
        }
        None => cells,
    };
    if let Err(why) = punchport_lab::natlab::available() {
        eprintln!("the benchmark needs the NAT lab: {why}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = build_nodes() {
        eprintln!("building the node binaries failed: {e}");
        return ExitCode::FAILURE;
    }
    let command = std::env::args().skip(1).fold(
        "cargo run --release -p punchport-lab --bin bench --".to_owned(),
        |c, a| c + " " + &a,
    );
    let variants = match (args.smoke, args.initiator_roles) {
        (_, true) => Variant::initiator_roles(),
        (true, false) => Variant::stock_and_port_aware(),
        (false, false) => Variant::stock_and_candidate_modes(),
    };
    let out = args.out.unwrap_or_else(|| {
        let dir = if args.smoke {
            std::env::temp_dir()
        } else {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
        };
        match args.cells {
            Some((from, to)) => dir.join(format!("{name}-cells-{from}-{to}.md")),
            None => dir.join(format!("{name}.md")),
        }
    });
    let timeout = Duration::from_secs(args.timeout_secs.unwrap_or(20));
    let report = bench::run(
        &cells,
        &variants,
        args.trials,
        timeout,
        bench::Vary {
            punch_port: args.vary_ports,
            ordinary_port: args.vary_ordinary_port,
        },
        |r| {
            eprintln!(
                "{} | {} | {} ms | {} #{}: {}",
                r.pairing,
                r.layout,
                r.delay_ms,
                r.transport,
                r.trial,
                match (r.elapsed_ms, &r.failure) {
                    (Some(ms), _) =>
                        format!("direct in {ms} ms, {} attempt(s)", r.attempts.unwrap_or(0)),
                    (None, failure) => format!("failed: {}", failure.as_deref().unwrap_or("?")),
                }
            );
        },
    );
    let mut report = match report {
        Ok(report) => report,
        Err(e) => {
            eprintln!("the benchmark could not run: {e}");
            return ExitCode::FAILURE;
        }
    };
    report.title = title.to_owned();
    report.command = command.clone();
    let table = bench::markdown(&report);
    println!("{table}");
    let json = out.with_extension("json");
    let written =
        std::fs::write(&out, bench::document(&report, title, &command, &table)).and_then(|()| {
            std::fs::write(
                &json,
                serde_json::to_string_pretty(&report).unwrap_or_default(),
            )
        });
    match written {
        Ok(()) => {
            eprintln!("wrote {} and {}", out.display(), json.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}

/// `--interop`: run, `--render` or `--merge` the interop cells.
fn interop_main(args: Args) -> ExitCode {
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    if let Some(json) = &args.render {
        let Some(report) = read_interop(json) else {
            return ExitCode::FAILURE;
        };
        return write_interop(&report, &json.with_extension("md"));
    }
    if !args.merge.is_empty() {
        let mut reports = Vec::new();
        for json in &args.merge {
            match read_interop(json) {
                Some(report) => reports.push(report),
                None => return ExitCode::FAILURE,
            }
        }
        let report = match interop::merge(reports) {
            Ok(report) => report,
            Err(e) => {
                eprintln!("cannot merge: {e}");
                return ExitCode::FAILURE;
            }
        };
        let out = args
            .out
            .unwrap_or_else(|| docs.join("benchmarks-interop.md"));
        return write_interop(&report, &out);
    }
    let (cells, variants, trials, name) = if args.smoke {
        (
            vec![interop::smoke_cell()],
            interop::Variant::port_aware_both_roles(),
            2,
            "benchmarks-interop-smoke",
        )
    } else {
        (
            interop::full_cells(),
            interop::Variant::all(),
            args.trials,
            "benchmarks-interop",
        )
    };
    let cells = match args.cells {
        Some((from, to)) if to <= cells.len() => cells[from - 1..to].to_vec(),
        Some((_, to)) => {
            eprintln!("--cells: this run has {} cells, not {to}", cells.len());
            return ExitCode::from(2);
        }
        None => cells,
    };
    let variants: Vec<_> = variants
        .into_iter()
        .filter(|v| args.only.is_empty() || args.only.contains(&v.name()))
        .collect();
    if variants.is_empty() {
        let names: Vec<_> = interop::Variant::all().iter().map(|v| v.name()).collect();
        eprintln!("--only: no such variant; the variants are {names:?}");
        return ExitCode::from(2);
    }
    if let Err(why) = punchport_lab::natlab::available() {
        eprintln!("the benchmark needs the NAT lab: {why}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = build_nodes() {
        eprintln!("building the node binaries failed: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(why) = punchport_lab::go::node() {
        eprintln!("the interop benchmark needs the go-libp2p node: {why}");
        return ExitCode::FAILURE;
    }
    let command = std::env::args().skip(1).fold(
        "cargo run --release -p punchport-lab --bin bench --".to_owned(),
        |c, a| c + " " + &a,
    );
    let out = args.out.unwrap_or_else(|| {
        let dir = if args.smoke {
            std::env::temp_dir()
        } else {
            docs.clone()
        };
        match args.cells {
            Some((from, to)) => dir.join(format!("{name}-cells-{from}-{to}.md")),
            None => dir.join(format!("{name}.md")),
        }
    });
    let timeout = Duration::from_secs(args.timeout_secs.unwrap_or(30));
    let report = interop::run(&cells, &variants, trials, timeout, |r| {
        eprintln!(
            "{} | {} | go {} | {} ms | {} #{}: {}",
            r.pairing,
            r.relay,
            r.go_layout,
            r.delay_ms,
            r.variant,
            r.trial,
            match (r.elapsed_ms, &r.failure) {
                (Some(ms), _) => format!(
                    "direct in {ms} ms, won by {:?}, A {:?}, B {:?}",
                    r.winner,
                    r.reserving_punches
                        .iter()
                        .map(|p| p.name())
                        .collect::<Vec<_>>(),
                    r.dialing_punches
                        .iter()
                        .map(|p| p.name())
                        .collect::<Vec<_>>()
                ),
                (None, failure) => format!("failed: {}", failure.as_deref().unwrap_or("?")),
            }
        );
    });
    let mut report = match report {
        Ok(report) => report,
        Err(e) => {
            eprintln!("the benchmark could not run: {e}");
            return ExitCode::FAILURE;
        }
    };
    report.title = "Hole punching with go-libp2p: punchport, stock rust-libp2p and go".to_owned();
    report.command = command;
    report.notes.push(interop::versions_note());
    println!("{}", interop::markdown(&report));
    write_interop(&report, &out)
}

/// `--hard-nat` or `--open-routers`: run (or `--render`, or `--merge`) the
/// endpoint-dependent NAT cells, or the cells of routers that accept
/// unsolicited packets.
fn hard_nat_main(args: Args) -> ExitCode {
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let scenario = if args.open_routers {
        hard_bench::Scenario::OpenRouters
    } else if args.ipv6 {
        hard_bench::Scenario::Ipv6
    } else {
        hard_bench::Scenario::HardNat
    };
    let read = |json: &std::path::Path| {
        std::fs::read_to_string(json)
            .map_err(|e| e.to_string())
            .and_then(|text| hard_bench::read_report(&text).map_err(|e| e.to_string()))
            .map_err(|e| eprintln!("cannot read {}: {e}", json.display()))
            .ok()
    };
    if let Some(json) = &args.render {
        let Some(report) = read(json) else {
            return ExitCode::FAILURE;
        };
        return write_hard_nat(&report, &json.with_extension("md"));
    }
    if !args.merge.is_empty() {
        let mut merged = hard_bench::Report {
            scenario,
            ..hard_bench::Report::default()
        };
        for json in &args.merge {
            let Some(report) = read(json) else {
                return ExitCode::FAILURE;
            };
            if !merged.command.is_empty() {
                merged.command.push_str("` and `");
            }
            merged.command.push_str(&report.command);
            merged.trials = report.trials;
            merged.records.extend(report.records);
        }
        merged.summaries = hard_bench::summaries(&merged.records);
        let out = args
            .out
            .unwrap_or_else(|| docs.join(format!("{}.md", scenario.stem())));
        return write_hard_nat(&merged, &out);
    }
    let cells = scenario.cells();
    let cells = match args.cells {
        Some((from, to)) if to <= cells.len() => cells[from - 1..to].to_vec(),
        Some((_, to)) => {
            eprintln!("--cells: this run has {} cells, not {to}", cells.len());
            return ExitCode::from(2);
        }
        None => cells,
    };
    if let Err(why) = punchport_lab::natlab::available() {
        eprintln!("the benchmark needs the NAT lab: {why}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = build_nodes() {
        eprintln!("building the node binaries failed: {e}");
        return ExitCode::FAILURE;
    }
    let command = std::env::args().skip(1).fold(
        "cargo run --release -p punchport-lab --bin bench --".to_owned(),
        |c, a| c + " " + &a,
    );
    // A missed birthday attempt is tried once more: two windows of ~16 s.
    let timeout = Duration::from_secs(args.timeout_secs.unwrap_or(45));
    // Every variant of the open-router cells is a row of its own.
    let controls = match scenario {
        hard_bench::Scenario::HardNat => args.control_trials,
        hard_bench::Scenario::OpenRouters | hard_bench::Scenario::Ipv6 => args.trials,
    };
    let report = hard_bench::run(&cells, args.trials, controls, timeout, |r| {
        eprintln!(
            "{} | {} ms | {} #{}: {}",
            r.pairing,
            r.delay_ms,
            r.variant,
            r.trial,
            match (r.elapsed_ms, &r.failure) {
                (Some(ms), _) => format!(
                    "direct in {ms} ms{}, {} sockets, {} probes, conntrack {:?}, cpu {:?}",
                    if r.birthday_won { " by birthday" } else { "" },
                    r.sockets,
                    r.probes,
                    r.conntrack,
                    r.cpu_ms
                ),
                (None, failure) => format!("failed: {}", failure.as_deref().unwrap_or("?")),
            }
        );
    });
    let mut report = match report {
        Ok(report) => report,
        Err(e) => {
            eprintln!("the benchmark could not run: {e}");
            return ExitCode::FAILURE;
        }
    };
    report.command = command;
    report.scenario = scenario;
    println!("{}", hard_bench::markdown(&report));
    let out = args.out.unwrap_or_else(|| match args.cells {
        Some((from, to)) => docs.join(format!("{}-cells-{from}-{to}.md", scenario.stem())),
        None => docs.join(format!("{}.md", scenario.stem())),
    });
    write_hard_nat(&report, &out)
}

/// Writes the endpoint-dependent NAT document to `out`, its JSON and its
/// two plots next to it.
fn write_hard_nat(report: &hard_bench::Report, out: &std::path::Path) -> ExitCode {
    let stem = out.with_extension("");
    let (success, times) = hard_bench::plots(report);
    let written = std::fs::write(out, hard_bench::document(report))
        .and_then(|()| {
            std::fs::write(
                out.with_extension("json"),
                serde_json::to_string_pretty(report).unwrap_or_default(),
            )
        })
        .and_then(|()| std::fs::write(format!("{}-success.svg", stem.display()), success))
        .and_then(|()| std::fs::write(format!("{}-times.svg", stem.display()), times));
    match written {
        Ok(()) => {
            eprintln!("wrote {} with its JSON and plots", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}

fn read_interop(json: &std::path::Path) -> Option<interop::Report> {
    std::fs::read_to_string(json)
        .map_err(|e| e.to_string())
        .and_then(|text| interop::read_report(&text).map_err(|e| e.to_string()))
        .map_err(|e| eprintln!("cannot read {}: {e}", json.display()))
        .ok()
}

/// Writes the interop document to `out` and its JSON next to it.
fn write_interop(report: &interop::Report, out: &std::path::Path) -> ExitCode {
    let json = out.with_extension("json");
    let written = std::fs::write(out, interop::document(report)).and_then(|()| {
        std::fs::write(
            &json,
            serde_json::to_string_pretty(report).unwrap_or_default(),
        )
    });
    match written {
        Ok(()) => {
            eprintln!("wrote {} and {}", out.display(), json.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
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

/// Joins the reports in `jsons` into one document at `out` (default: the
/// first JSON's name, with `.md`) with its JSON next to it.
fn merge(jsons: &[PathBuf], out: Option<&std::path::Path>) -> ExitCode {
    let mut reports = Vec::new();
    for json in jsons {
        match read(json) {
            Some(report) => reports.push(report),
            None => return ExitCode::FAILURE,
        }
    }
    let report = match bench::merge(reports) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("cannot merge: {e}");
            return ExitCode::FAILURE;
        }
    };
    let out = out.map_or_else(|| jsons[0].with_extension("md"), |o| o.to_path_buf());
    let table = bench::markdown(&report);
    let document = bench::document(&report, &report.title, &report.command, &table);
    let written = std::fs::write(&out, document).and_then(|()| {
        std::fs::write(
            out.with_extension("json"),
            serde_json::to_string_pretty(&report).unwrap_or_default(),
        )
    });
    match written {
        Ok(()) => {
            eprintln!("wrote {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}

/// Writes the Markdown next to `json` (same name, `.md`) from its report.
fn render(json: &std::path::Path, roles: bool) -> ExitCode {
    let Some(report) = read(json) else {
        return ExitCode::FAILURE;
    };
    let (title, command) = if !report.title.is_empty() {
        (report.title.as_str(), report.command.clone())
    } else if roles {
        (
            "How the DCUtR initiator punches: client or server role",
            format!(
                "cargo run --release -p punchport-lab --bin bench -- --initiator-roles --trials {}",
                report.trials_per_cell
            ),
        )
    } else {
        (
            "Hole punching: stock rust-libp2p and punchport",
            format!(
                "cargo run --release -p punchport-lab --bin bench -- --trials {}",
                report.trials_per_cell
            ),
        )
    };
    let table = bench::markdown(&report);
    let out = json.with_extension("md");
    match std::fs::write(&out, bench::document(&report, title, &command, &table)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot write {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}

/// The report of an earlier run's JSON, or `None` after saying why not.
fn read(json: &std::path::Path) -> Option<bench::Report> {
    let report = std::fs::read_to_string(json)
        .map_err(|e| e.to_string())
        .and_then(|text| bench::read_report(&text).map_err(|e| e.to_string()));
    report
        .map_err(|e| eprintln!("cannot read {}: {e}", json.display()))
        .ok()
}

/// Builds the `relay` and `peer` examples with the profile of this binary.
fn build_nodes() -> std::io::Result<()> {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return Ok(()); // not run by cargo: use what is there
    };
    let mut command = std::process::Command::new(cargo);
    command.args(["build", "--examples", "-p", "punchport"]);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let status = command.status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "cargo build exited with {status}"
        )))
    }
}
