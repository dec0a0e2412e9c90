//! The hole-punch benchmark: stock rust-libp2p and punchport on identical
//! topologies, interleaved, per NAT pairing, layout and delay
//! (docs/benchmarks.md); the seed layout alone, with ports that move from
//! trial to trial (docs/benchmarks-varied-ports.md); and punchport's two
//! initiator roles (docs/benchmarks-roles.md).

use std::time::Duration;

use natlab::Nat;

use super::{
    Cell, Report, Scenario, Summary, Variant, Vary,
    table::{self, Column},
};
use crate::Layout;

/// Every pairing in both layouts: docs/benchmarks.md.
pub const FULL: Scenario = Scenario {
    name: "benchmarks",
    flag: "",
    stem: "benchmarks",
    title: "Hole punching: stock rust-libp2p and punchport",
    cells: full_cells,
    trials: None,
    timeout: Duration::from_secs(20),
    vary: Vary::NONE,
    smoke: false,
    notes: Vec::new,
    document,
    plots: Scenario::no_plots,
};

/// The seed layout in the punchable pairings (`--seed-only`).
pub const SEED: Scenario = Scenario {
    name: "seed",
    flag: "--seed-only",
    stem: "benchmarks-seed",
    title: "Hole punching in the seed layout: stock rust-libp2p and punchport",
    cells: seed_cells,
    ..FULL
};

/// The same with ports that move from trial to trial (`--seed-only
/// --vary-ports --vary-ordinary-port`): docs/benchmarks-varied-ports.md.
pub const VARIED_PORTS: Scenario = Scenario {
    name: "varied-ports",
    flag: "--seed-only --vary-ports --vary-ordinary-port",
    stem: "benchmarks-varied-ports",
    ..SEED
};

/// punchport's initiator roles (`--initiator-roles`):
/// docs/benchmarks-roles.md.
pub const ROLES: Scenario = Scenario {
    name: "roles",
    flag: "--initiator-roles",
    stem: "benchmarks-roles",
    title: "How the DCUtR initiator punches: client or server role",
    cells: role_cells,
    ..FULL
};

/// One cell, two trials of stock and port-aware (`--smoke`).
pub const SMOKE: Scenario = Scenario {
    name: "smoke",
    flag: "--smoke",
    stem: "benchmarks-smoke",
    title: "Benchmark smoke run",
    cells: smoke_cells,
    trials: Some(2),
    smoke: true,
    ..FULL
};

/// A NAT's name in tables.
pub fn short(nat: Nat) -> &'static str {
    match nat {
        Nat::PortRestricted => "EIM port-restricted",
        Nat::PortRewriting => "EIM port-rewriting",
        Nat::FullCone => "full cone",
        Nat::RestrictedCone => "restricted cone",
        Nat::Symmetric => "symmetric",
        Nat::Firewall => "firewall (no NAT)",
    }
}

fn cell(a: Nat, b: Nat, layout: Layout, delay: Duration, variants: Vec<Variant>) -> Cell {
    let pairing = format!("{} / {}", short(a), short(b));
    Cell::new(pairing, a, b, delay, layout, variants)
}

/// The cells of a full run: the delayed cells first, then every pairing
/// without delay, each in both layouts.
pub fn full_cells() -> Vec<Cell> {
    let eim = Nat::PortRestricted;
    let variants = Variant::stock_and_candidate_modes;
    let layouts = [Layout::With443, Layout::PunchOnly];
    let mut cells: Vec<Cell> = layouts
        .iter()
        .map(|&layout| cell(eim, eim, layout, Duration::from_millis(25), variants()))
        .collect();
    for layout in layouts {
        for (a, b) in [
            (eim, eim),
            (eim, Nat::FullCone),
            (eim, Nat::RestrictedCone),
            (eim, Nat::Firewall),
            (Nat::PortRewriting, eim),
            (Nat::Symmetric, eim),
        ] {
            cells.push(cell(a, b, layout, Duration::ZERO, variants()));
        }
    }
    cells
}

/// The seed layout (443 plus the punch range) in every pairing that is not
/// symmetric, without and with delay: the cells where the listener choice
/// matters.
pub fn seed_cells() -> Vec<Cell> {
    let symmetric = natlab::RouterKind::from(Nat::Symmetric);
    full_cells()
        .into_iter()
        .filter(|c| c.layout == Layout::With443 && c.a != symmetric && c.b != symmetric)
        .collect()
}

/// The cells of the initiator-role comparison: the seed layout behind two
/// port-preserving NATs, without and with delay.
pub fn role_cells() -> Vec<Cell> {
    [Duration::ZERO, Duration::from_millis(25)]
        .into_iter()
        .map(|delay| {
            let eim = Nat::PortRestricted;
            cell(eim, eim, Layout::With443, delay, Variant::initiator_roles())
        })
        .collect()
}

/// The cell of a smoke run.
pub fn smoke_cells() -> Vec<Cell> {
    let eim = Nat::PortRestricted;
    vec![cell(
        eim,
        eim,
        Layout::With443,
        Duration::ZERO,
        Variant::stock_and_port_aware(),
    )]
}

/// The table's columns.
pub const COLUMNS: [Column<Summary>; 10] = [
    Column::new("pairing (A / B)", |s| s.pairing.clone()),
    Column::new("layout", |s| s.layout.clone()),
    Column::new("one-way delay", Summary::delay),
    Column::new("transport", |s| s.variant.clone()),
    Column::new("direct", Summary::share),
    Column::new("95% CI", Summary::interval),
    Column::new("median", Summary::median),
    Column::new("p90", Summary::p90),
    Column::new("lower bound", Summary::lower_bound),
    Column::new("attempts per success", |s| {
        s.attempts_per_success
            .map_or("–".to_owned(), |a| format!("{a:.2}"))
    }),
];

/// The Markdown document: a title, how the run was made, the table, and
/// how to read it (the same for every scenario of this module).
fn document(report: &Report) -> String {
    let notes: String = report
        .notes
        .iter()
        .map(|note| format!("- {note}\n"))
        .chain((!report.notes.is_empty()).then(|| "\n".to_owned()))
        .collect();
    format!(
        "# {}\n\n\
         Written by `{}`. {} trials per variant and cell, the variants interleaved trial by \
         trial on the same topology{}. The raw trials are in the JSON file next to this \
         one.\n\n{notes}{}\n{}",
        report.heading(),
        report.written_by(),
        report.trials.0,
        report.vary().sentence(),
        table::columns(&COLUMNS, &report.summaries),
        READING.replace(
            "{TRANSPORT}",
            if report.scenario().name == ROLES.name {
                ROLES_TRANSPORT
            } else {
                TRANSPORT
            }
        ),
    )
}

/// What the transport column means, in the roles document.
const ROLES_TRANSPORT: &str = "- **transport**: *client role* and *server role* are punchport \
  with the initiator role `InitiatorRole::Client` or `InitiatorRole::Server`: DCUtR's initiator \
  dials as a QUIC client, or sends random packets and accepts the other side's connection as the \
  server. Both run the same node binaries with the same swarm settings (including `V1Lazy` stream \
  negotiation; `swarm_config` in `crates/node/src/peer/swarm.rs`); each side's DCUtR sends its \
  short-TTL openers inside the exchange and dials 15 ms later than libp2p-dcutr would \
  (docs/architecture.md).
";

/// What the transport column means, in the other documents.
const TRANSPORT: &str =
    "- **transport**: *stock* is `with_quic()` and plain DCUtR; *port-aware, range* and \
  *port-aware, socket-aware* are punchport with its two candidate modes. All run the same node \
  binaries with the same swarm settings (including `V1Lazy` stream negotiation; `swarm_config` \
  in `crates/node/src/peer/swarm.rs`).
";

const READING: &str = "## How to read it

- **pairing**: the router in front of the reserving peer (A, DCUtR's initiator) and the one in \
  front of the dialing peer (B). *EIM port-restricted* is plain Linux SNAT: endpoint-independent \
  mapping that keeps the port, port-restricted filtering. *EIM port-rewriting* maps \
  endpoint-independently to ports of its own choosing. *Symmetric* is `snat ... fully-random`. \
  *Firewall* is a stateful firewall without NAT. `docs/architecture.md` has how the lab builds each.
- **layout**: *443 + punch range* is the deployment punchport is for: both peers listen on UDP \
  443 and on a port of 40000-40050. *punch port only* has one listener.
{TRANSPORT}- **direct**: trials in which the dialing peer had a direct connection within the timeout (20 s, \
  the `--timeout-secs` default; DCUtR's initiator makes at most three attempts), with the Wilson \
  95 % interval (`wilson_matches_known_values` in `crates/lab/src/stats.rs`).
- **median, p90**: time from the relayed connection to the first direct connection, at the \
  dialing peer, over the successful trials (nearest rank: `quantiles_by_nearest_rank`).
- **lower bound**: a relayed round trip (CONNECT), half of one (SYNC) and a direct round trip \
  (the QUIC handshake). With the delay on both routers' WAN links and none on the relay's, that \
  is ten one-way delays (`Cell::lower_bound`). Without delay it is the processing time only, \
  shown as 0 ms.
- **attempts per success**: the dialing peer's direct dials (one per DCUtR attempt) over all \
  trials, divided by the successes.

## More benchmarks

- [benchmarks-hard-nat.md](benchmarks-hard-nat.md): endpoint-dependent NATs (symmetric, \
  Kubernetes `masquerade fully-random`) against the others, with birthday punching \
  (`bench --hard-nat`).
- [benchmarks-scale.md](benchmarks-scale.md): 50 pods behind each of two Kubernetes nodes \
  punching pairwise through one relay at once, and a busy relay (`scale`); its plot:

  ![time to direct, 50 + 50 pods](benchmarks-scale.svg)

- [benchmarks-throughput.md](benchmarks-throughput.md): bulk transfer over the punched direct \
  connection, stock's, and the relayed one (`throughput`).
- [benchmarks-interop.md](benchmarks-interop.md) and [interop.md](interop.md): punching with \
  go-libp2p (`bench --interop`).
- [benchmarks-roles.md](benchmarks-roles.md) and \
  [benchmarks-varied-ports.md](benchmarks-varied-ports.md): the initiator's QUIC role, and \
  ordinary ports that vary per trial.
";
