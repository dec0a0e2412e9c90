//! Endpoint-dependent NATs (docs/benchmarks-hard-nat.md): birthday
//! punching against its controls (punchport with plain punching only, and
//! stock rust-libp2p) in the seed layout, per NAT pairing and delay, with
//! what each punch cost: sockets and probes per side, conntrack entries per
//! router, CPU time per peer. With the same table: routers that accept
//! unsolicited packets (docs/benchmarks-open-routers.md), and IPv6 and
//! dual-stack pods (docs/benchmarks-ipv6.md).

use std::time::Duration;

use natlab::{Input, Ipv6Kind, KubeNode, Nat, PUNCH_PORTS, RouterKind};
use punchport_node::{TransportKind, cli::PunchArgs};

use super::{
    Cell, CostFigures, Plot, Report, Scenario, Summary, Variant, Vary,
    plot::{self, Bar},
    table::{self, Column},
};
use crate::{Implementation, Layout};

/// Endpoint-dependent NATs against the others (`--hard-nat`).
pub const HARD_NAT: Scenario = Scenario {
    name: "hard-nat",
    flag: "--hard-nat",
    stem: "benchmarks-hard-nat",
    title: "Hole punching through endpoint-dependent NATs",
    cells,
    trials: None,
    // A missed birthday attempt is tried once more: two windows of ~16 s.
    timeout: Duration::from_secs(45),
    vary: Vary::NONE,
    smoke: false,
    notes: Vec::new,
    document,
    plots,
};

/// Routers that accept unsolicited packets (`--open-routers`).
pub const OPEN_ROUTERS: Scenario = Scenario {
    name: "open-routers",
    flag: "--open-routers",
    stem: "benchmarks-open-routers",
    title: "Hole punching through routers that accept unsolicited packets",
    cells: open_cells,
    document: open_document,
    ..HARD_NAT
};

/// IPv6 and dual-stack pods (`--ipv6`).
pub const IPV6: Scenario = Scenario {
    name: "ipv6",
    flag: "--ipv6",
    stem: "benchmarks-ipv6",
    title: "IPv6 and dual-stack pods",
    cells: ipv6_cells,
    document: ipv6_document,
    ..HARD_NAT
};

/// The variant the documents are about, and whose times the plot shows.
const BIRTHDAY: &str = "punchport (birthday on)";

fn ours() -> Implementation {
    Implementation::Rust(TransportKind::PortAware)
}

fn stock() -> Implementation {
    Implementation::Rust(TransportKind::Stock)
}

/// punchport as shipped (birthday punching on) on both sides.
fn birthday() -> Variant {
    Variant::new(BIRTHDAY, ours(), ours())
}

/// Stock rust-libp2p on both sides.
fn stock_both() -> Variant {
    Variant::new("stock", stock(), stock())
}

/// punchport as shipped against its controls: punchport with birthday
/// punching off, and stock.
fn with_controls() -> Vec<Variant> {
    vec![
        birthday(),
        Variant {
            punch: PunchArgs::default().with_birthday(false),
            control: true,
            ..Variant::new("punchport, plain only", ours(), ours())
        },
        Variant {
            control: true,
            ..stock_both()
        },
    ]
}

fn cell(a: impl Into<RouterKind>, b: impl Into<RouterKind>, ms: u64, layout: Layout) -> Cell {
    Cell::new(
        String::new(),
        a,
        b,
        Duration::from_millis(ms),
        layout,
        Vec::new(),
    )
}

/// `cell` with `variants`, named for its routers.
fn named(mut cell: Cell, variants: Vec<Variant>) -> Cell {
    cell.variants = variants;
    cell.pairing = pairing(&cell);
    cell
}

/// `a / b`, short.
fn pairing(cell: &Cell) -> String {
    let open = |input: Option<Input>| match input {
        Some(Input::Accept) => " (open)",
        _ => "",
    };
    let side = |kind: RouterKind, v6: Option<Ipv6Kind>, only: bool, input| match (v6, only) {
        (Some(v6), true) => format!("IPv6-only {}{}", short6(v6), open(input)),
        (Some(v6), false) => format!("{} + {}{}", short(kind), short6(v6), open(input)),
        (None, _) => format!("{}{}", short(kind), open(input)),
    };
    format!(
        "{} / {}",
        side(cell.a, cell.ipv6.0, cell.ipv6_only.0, cell.inputs.0),
        side(cell.b, cell.ipv6.1, cell.ipv6_only.1, cell.inputs.1)
    )
}

fn short6(kind: Ipv6Kind) -> &'static str {
    match kind {
        Ipv6Kind::Firewall => "v6 firewall",
        Ipv6Kind::Masquerade => "NAT66",
        Ipv6Kind::MasqueradeFullyRandom => "NAT66 fully-random",
    }
}

fn short(kind: RouterKind) -> String {
    match kind {
        RouterKind::Kube(node) if node.punch_exemption.is_some() => {
            "k8s fully-random + exemption".to_owned()
        }
        RouterKind::Kube(node) if node.random_fully => "k8s fully-random".to_owned(),
        RouterKind::Kube(_) => "k8s masquerade".to_owned(),
        RouterKind::Nat(Nat::Symmetric) => "symmetric".to_owned(),
        RouterKind::Nat(Nat::PortRestricted) => "port-restricted".to_owned(),
        RouterKind::Nat(Nat::Firewall) => "firewall".to_owned(),
        RouterKind::Nat(Nat::FullCone) => "full cone".to_owned(),
        RouterKind::Nat(other) => other.to_string(),
    }
}

/// The cells: hard against each easy kind, whichever side reserves, at 0
/// and 25 ms; hard against an open easy router at 0, 1 and 25 ms; the
/// others at 0 ms.
pub fn cells() -> Vec<Cell> {
    let hard = Nat::Symmetric;
    let seed = |a: RouterKind, b: RouterKind, ms| cell(a, b, ms, Layout::With443);
    let mut cells = Vec::new();
    for ms in [0, 25] {
        for easy in [Nat::PortRestricted, Nat::Firewall] {
            cells.push(seed(hard.into(), easy.into(), ms));
        }
        cells.push(seed(Nat::PortRestricted.into(), hard.into(), ms));
    }
    for ms in [0, 1, 25] {
        cells.push(Cell {
            inputs: (None, Some(Input::Accept)),
            ..seed(hard.into(), Nat::PortRestricted.into(), ms)
        });
    }
    cells.push(seed(hard.into(), Nat::FullCone.into(), 0));
    cells.push(seed(hard.into(), hard.into(), 0));
    cells.push(seed(
        KubeNode::FULLY_RANDOM.into(),
        Nat::PortRestricted.into(),
        0,
    ));
    cells.push(seed(
        KubeNode::FULLY_RANDOM.exempt(PUNCH_PORTS).into(),
        Nat::PortRestricted.into(),
        0,
    ));
    cells
        .into_iter()
        .map(|c| named(c, with_controls()))
        .collect()
}

/// The cells of routers that accept unsolicited packets: port-restricted
/// NATs (Linux SNAT) on both sides, one or both of them open, with the
/// variants each pairing asks about. Every peer listens on the punch port
/// only, so that stock's socket choice does not decide.
pub fn open_cells() -> Vec<Cell> {
    let ours_stock = || Variant::new("punchport ← stock", ours(), stock());
    let stock_ours = || Variant::new("stock ← punchport", stock(), ours());
    let ours_go = || Variant::new("punchport ← go", ours(), Implementation::Go);
    let go_ours = || Variant::new("go ← punchport", Implementation::Go, ours());
    let open = |a: bool, b: bool, ms, variants| {
        let pr = Nat::PortRestricted;
        let accept = |open: bool| open.then_some(Input::Accept);
        let cell = Cell {
            inputs: (accept(a), accept(b)),
            ..cell(pr, pr, ms, Layout::PunchOnly)
        };
        named(cell, variants)
    };
    vec![
        open(
            true,
            true,
            0,
            vec![
                birthday(),
                stock_both(),
                ours_stock(),
                stock_ours(),
                ours_go(),
                go_ours(),
            ],
        ),
        open(true, true, 1, vec![birthday(), stock_both()]),
        open(true, true, 25, vec![birthday(), stock_both()]),
        open(true, false, 0, vec![ours_stock(), ours_go()]),
        open(false, true, 0, vec![stock_ours(), go_ours()]),
        open(true, false, 25, vec![ours_stock(), ours_go()]),
        open(false, true, 25, vec![stock_ours(), go_ours()]),
    ]
}

/// The IPv6 and dual-stack cells: punchport as shipped, the seed layout in
/// every family a host has.
pub fn ipv6_cells() -> Vec<Cell> {
    use Ipv6Kind::{Firewall, Masquerade, MasqueradeFullyRandom};
    let dual = |a: Nat, a6, a_only, b: Nat, b6, b_only, ms| {
        let cell = Cell {
            ipv6: (Some(a6), Some(b6)),
            ipv6_only: (a_only, b_only),
            ..cell(a, b, ms, Layout::With443)
        };
        named(cell, vec![birthday()])
    };
    let pr = Nat::PortRestricted;
    let sym = Nat::Symmetric;
    vec![
        dual(pr, Firewall, true, pr, Firewall, true, 0),
        dual(pr, Masquerade, true, pr, Firewall, true, 0),
        dual(pr, MasqueradeFullyRandom, true, pr, Firewall, true, 0),
        dual(pr, MasqueradeFullyRandom, true, pr, Firewall, true, 25),
        dual(pr, Firewall, true, pr, Firewall, false, 0),
        dual(pr, Firewall, false, pr, Firewall, false, 0),
        dual(pr, Firewall, false, pr, Firewall, false, 25),
        dual(sym, Firewall, false, sym, Firewall, false, 0),
        dual(
            pr,
            MasqueradeFullyRandom,
            false,
            pr,
            MasqueradeFullyRandom,
            false,
            0,
        ),
    ]
}

/// The table's columns.
const COLUMNS: [Column<Summary>; 12] = [
    Column::new("pairing (A / B)", |s| s.pairing.clone()),
    Column::new("delay", Summary::delay),
    Column::new("variant", |s| s.variant.clone()),
    Column::new("direct", |s| format!("{}/{}", s.direct, s.trials)),
    Column::new("95% CI", Summary::interval),
    Column::new("by birthday", |s| s.by_birthday.to_string()),
    Column::new("median", Summary::median),
    Column::new("p90", Summary::p90),
    Column::new("sockets (hard)", |s| table::number(s.median_sockets)),
    Column::new("probes (easy)", |s| table::number(s.median_probes)),
    Column::new("conntrack A / B", |s| {
        format!(
            "{} / {}",
            table::number(s.median_conntrack.0),
            table::number(s.median_conntrack.1)
        )
    }),
    Column::new("CPU A / B", |s| {
        format!(
            "{} / {}",
            table::ms(s.median_cpu_ms.0),
            table::ms(s.median_cpu_ms.1)
        )
    }),
];

/// Milliseconds from microseconds, to a tenth.
fn cpu(us: Option<u64>) -> String {
    us.map_or("–".to_owned(), |us| {
        format!("{:.1} ms", us as f64 / 1000.0)
    })
}

/// A figure of one side's first attempts, or `–` where it made none.
fn cost(figures: Option<CostFigures>, figure: fn(CostFigures) -> String) -> String {
    figures.map_or("–".into(), figure)
}

fn datagrams(f: CostFigures) -> String {
    format!("{} / {}", f.median_datagrams, f.max_datagrams)
}

fn bytes(f: CostFigures) -> String {
    format!("{} / {}", f.median_bytes, f.max_bytes)
}

fn cpu_times(f: CostFigures) -> String {
    format!("{} / {}", cpu(f.median_cpu_us), cpu(f.p90_cpu_us))
}

/// The columns of what the first birthday attempts cost.
const COSTS: [Column<Summary>; 10] = [
    Column::new("pairing (A / B)", |s| s.pairing.clone()),
    Column::new("delay", Summary::delay),
    Column::new("1st attempt direct", |s| {
        format!("{}/{}", s.first_attempts.1, s.first_attempts.0)
    }),
    Column::new("hard: datagrams median / max", |s| {
        cost(s.hard_first, datagrams)
    }),
    Column::new("hard: bytes median / max", |s| cost(s.hard_first, bytes)),
    Column::new("hard: CPU median / p90", |s| cost(s.hard_first, cpu_times)),
    Column::new("easy: datagrams median / max", |s| {
        cost(s.easy_first, datagrams)
    }),
    Column::new("easy: bytes median / max", |s| cost(s.easy_first, bytes)),
    Column::new("easy: CPU median / p90", |s| cost(s.easy_first, cpu_times)),
    Column::new("routers' count, most: A / B", |s| {
        let ((ap, ab), (bp, bb)) = s.router_max;
        format!("{ap} dgr, {ab} B / {bp} dgr, {bb} B")
    }),
];

/// The columns of the families the direct connections used.
const FAMILIES: [Column<Summary>; 4] = [
    Column::new("pairing (A / B)", |s| s.pairing.clone()),
    Column::new("delay", Summary::delay),
    Column::new("direct over IPv4", |s| s.families.0.to_string()),
    Column::new("direct over IPv6", |s| s.families.1.to_string()),
];

/// The tables: every cell and variant, then what the birthday variant's
/// first attempts cost.
pub fn markdown(report: &Report) -> String {
    let costs: Vec<&Summary> = report
        .summaries
        .iter()
        .filter(|s| s.variant == BIRTHDAY && s.first_attempts.0 > 0)
        .collect();
    let table = table::columns(&COLUMNS, &report.summaries);
    // Without a birthday attempt (routers that map endpoint-independently)
    // there is nothing to cost.
    if costs.is_empty() {
        return table;
    }
    format!(
        "{table}\n### What a birthday attempt costs (punchport, birthday on; first attempts)\n\n{}",
        table::columns(&COSTS, costs)
    )
}

/// The plots: success by cell and variant, and the birthday variant's
/// times to direct per cell.
pub fn plots(report: &Report) -> Vec<Plot> {
    let mut cells: Vec<(&str, u64)> = Vec::new();
    let mut variants: Vec<&str> = Vec::new();
    for s in &report.summaries {
        if !cells.contains(&(&s.pairing, s.delay_ms)) {
            cells.push((&s.pairing, s.delay_ms));
        }
        if !variants.contains(&s.variant.as_str()) {
            variants.push(&s.variant);
        }
    }
    let labels: Vec<String> = cells.iter().map(|(p, d)| format!("{p}, {d} ms")).collect();
    let series: Vec<(String, Vec<Option<Bar>>)> = variants
        .iter()
        .map(|&v| {
            let bars = cells
                .iter()
                .map(|&(p, d)| {
                    report
                        .summaries
                        .iter()
                        .find(|s| s.pairing == p && s.delay_ms == d && s.variant == v)
                        .map(|s| Bar {
                            value: 100.0 * s.direct as f64 / s.trials.max(1) as f64,
                            interval: Some((100.0 * s.wilson_95.0, 100.0 * s.wilson_95.1)),
                        })
                })
                .collect();
            (v.to_owned(), bars)
        })
        .collect();
    let success = plot::bars(
        "Direct connections, by pairing (bars: Wilson 95 %)",
        "%",
        100.0,
        &labels,
        &series,
    );
    let rows: Vec<(String, Vec<f64>)> = cells
        .iter()
        .zip(&labels)
        .map(|(&(p, d), label)| {
            let times = report
                .records
                .iter()
                .filter(|r| r.pairing == p && r.delay_ms == d && r.variant == BIRTHDAY)
                .filter_map(|r| r.elapsed_ms)
                .map(|ms| ms as f64 / 1000.0)
                .collect();
            (label.clone(), times)
        })
        .collect();
    let times = plot::strip(
        "Time from relayed to direct, punchport (birthday on), each trial",
        " s",
        plot::ceiling(&rows),
        &rows,
    );
    vec![("-success.svg", success), ("-times.svg", times)]
}

/// The endpoint-dependent NAT document.
fn document(report: &Report) -> String {
    format!(
        "# {}\n\n\
         Written by `{}`. Per cell {} trials of punchport as shipped (birthday punching on) \
         and {} of each control (punchport with plain punching only; stock rust-libp2p), \
         interleaved trial by trial on the same topology, the seed layout (443 + punch range) on \
         both peers, a relay with two addresses. The raw trials are in the JSON file next to this \
         one; the plots are written by the same run.\n\n{}\n\
         ![success by pairing](benchmarks-hard-nat-success.svg)\n\n\
         ![time to direct](benchmarks-hard-nat-times.svg)\n\n{READING}",
        report.heading(),
        report.written_by(),
        report.trials.0,
        report.trials.1,
        markdown(report)
    )
}

/// The document of routers that accept unsolicited packets.
fn open_document(report: &Report) -> String {
    format!(
        "# {}\n\n\
         Written by `{}`. Per cell and variant {} trials, the variants interleaved trial by \
         trial on the same topology: two port-restricted NATs (Linux SNAT, port-preserving), \
         one or both of which accept unsolicited packets addressed to themselves and answer \
         them with ICMP port unreachable, as a Kubernetes node does (*(open)*); every peer \
         listens on one port of the punch range; a relay with two addresses. The raw trials \
         are in the JSON file next to this one; the plots are written by the same run.\n\n{}\n\
         ![success by pairing](benchmarks-open-routers-success.svg)\n\n\
         ![time to direct](benchmarks-open-routers-times.svg)\n\n{OPEN_READING}",
        report.heading(),
        report.written_by(),
        report.trials.0,
        markdown(report)
    )
}

/// The IPv6 and dual-stack document.
fn ipv6_document(report: &Report) -> String {
    format!(
        "# {}\n\n\
         Written by `{}`. Per cell {} trials of punchport as shipped, in a dual-stack lab: the \
         relay on two IPv4 and two IPv6 addresses, each peer in the seed layout (443 and a \
         punch socket) in every family its host has. *IPv6-only* hosts have no IPv4 at all; \
         the others are dual-stack. The raw trials are in the JSON file next to this one; the \
         plots are written by the same run.\n\n{}\n\
         ### Which family the direct connection used\n\n{}\n\
         ![success by pairing](benchmarks-ipv6-success.svg)\n\n\
         ![time to direct](benchmarks-ipv6-times.svg)\n\n{IPV6_READING}",
        report.heading(),
        report.written_by(),
        report.trials.0,
        markdown(report),
        table::columns(&FAMILIES, &report.summaries),
    )
}

const IPV6_READING: &str = "## How to read it

- **pairing**: each side's IPv4 router kind and IPv6 router kind. *v6 firewall* is a stateful firewall in front of global addresses (2001:db8::/32); *NAT66* is `masquerade` on an IPv6 ULA subnet, port-preserving; *NAT66 fully-random* is `masquerade fully-random`, endpoint-dependent; *symmetric* (IPv4) is `snat ... fully-random`.
- **direct**, **median**, **p90**: as in docs/benchmarks-hard-nat.md; *by birthday*: punches a birthday attempt connected (the NAT66 fully-random rows).
- **Which family**: the family of the dialing peer's first direct connection.
- The rows with one family blocked (symmetric IPv4 on both sides, or NAT66 fully-random on both sides) show the other family carrying the punch, with no `punch_failed`.
";

const OPEN_READING: &str = "## How to read it

- **pairing**: the router in front of the reserving peer (A, DCUtR's initiator) and the one in front of the dialing peer (B); *(open)* accepts unsolicited packets (INPUT accepted, as a Kubernetes node's), the other drops them.
- **variant**: who runs each side, reserving side first: *punchport (birthday on)* on both sides is punchport as shipped; *stock* is stock rust-libp2p 0.57 on both sides; *punchport ← stock* has punchport reserving and stock dialing, and so on; *go* is the go-libp2p v0.52.0 node of `tests/interop/go`.
- **direct**: trials in which the dialing peer had a direct connection within the timeout, with the Wilson 95 % interval.
- **median, p90**: relayed to first direct connection at the dialing peer, over the successes.
- The birthday, sockets and probes columns do not apply here (no NAT maps endpoint-dependently).
- Why an open router fails a punch, and what punchport's openers do about it: docs/troubleshooting.md, *Routers that accept unsolicited packets*.
";

const READING: &str = "## How to read it

- **pairing**: the router in front of the reserving peer (A, DCUtR's initiator) and the one in front of the dialing peer (B). *symmetric* is `snat ... fully-random`, an endpoint-dependent (\"hard\") NAT; *(open)*: that router accepts unsolicited packets addressed to itself (as a Kubernetes node does) instead of dropping them; *k8s fully-random* is a Kubernetes node whose CNI masquerades pod egress with `masquerade fully-random` (flannel's and Calico's rule) and which accepts unsolicited packets as real nodes do, *+ exemption* adds the SNAT rule without random ports for the punch range ahead of it (docs/deploy/punch-snat-exemption.md). The others map endpoint-independently (or, the firewall, do not translate).
- **direct**: trials in which the dialing peer had a direct connection within the timeout, with the Wilson 95 % interval; **by birthday**: of those, how many a birthday attempt connected (the rest plain punching did).
- **median, p90**: relayed to first direct connection at the dialing peer, over the successes.
- **sockets (hard)**: sockets the endpoint-dependent side opened in the trial, over its attempts (at most 256 each, two attempts at most); **probes (easy)**: probes the other side sent (at most 1024 each). Medians over the trials.
- **conntrack A / B**: entries in each router's conntrack table at the end of the trial (tables are flushed before each): what the punch cost the NATs. Medians.
- **CPU A / B**: user + system CPU time of each peer process over the trial (start, reservation, punch), in milliseconds (from /proc, 100 ticks per second). Medians.
- **What a birthday attempt costs**: over the trials of the birthday variant that made a birthday attempt. *1st attempt direct*: how many connected at their first attempt. *datagrams*, *bytes*: what each side's first attempt sent, by its own count (the node's `attempt` line; bytes include IP and UDP headers). *CPU*: the peer process's CPU time (`getrusage`) from its relayed connection to the end of its first attempt: the negotiation, plain DCUtR's dials and the attempt. *routers' count*: the most datagrams and bytes router A and router B saw their peer send to the other peer's public IP in one trial (conntrack accounting: the birthday attempts, plain DCUtR's dials and the direct connection's first half second).
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{AttemptCost, Document, Record, summaries};
    use punchport_node::cli::OnOff;

    fn record(variant: &str, direct: bool, ms: u64) -> Record {
        let birthday = variant == BIRTHDAY;
        Record {
            pairing: "symmetric / port-restricted".into(),
            variant: variant.into(),
            direct,
            elapsed_ms: direct.then_some(ms),
            birthday_won: direct && birthday,
            birthday_attempts: 1,
            sockets: 256,
            probes: 300,
            conntrack: (260, 310),
            cpu_ms: (Some(120), Some(340)),
            failure: (!direct).then(|| "timeout".into()),
            first_attempt_direct: birthday.then_some(direct),
            hard_first: birthday.then_some(AttemptCost {
                datagrams: 256,
                bytes: 13_000,
                cpu_us: Some(9000),
            }),
            router_sent: ((280, 31_000), (120, 17_000)),
            family: direct.then(|| "ip4".to_owned()),
            ..Record::default()
        }
    }

    #[test]
    fn summaries_tables_and_plots_show_each_variant() {
        let records = vec![
            record(BIRTHDAY, true, 4000),
            record(BIRTHDAY, true, 6000),
            record("punchport, plain only", false, 0),
            record("stock", false, 0),
        ];
        let report = Report {
            scenario: HARD_NAT.name.into(),
            command: "bench --hard-nat".into(),
            trials: (2, 1),
            summaries: summaries(&records),
            records,
            ..Report::default()
        };
        assert_eq!(report.summaries.len(), 3);
        let birthday = &report.summaries[0];
        assert_eq!((birthday.direct, birthday.by_birthday), (2, 2));
        assert_eq!(birthday.median_ms, Some(4000));
        let table = markdown(&report);
        assert!(
            table
                .contains("| symmetric / port-restricted | 0 ms | punchport (birthday on) | 2/2 |"),
            "{table}"
        );
        let plots = report.plots();
        assert!(plots[0].1.contains("<svg") && plots[1].1.matches("<circle").count() == 2);
        assert!(
            report
                .markdown("x")
                .contains("benchmarks-hard-nat-success.svg")
        );
        assert!(
            table.contains("| symmetric / port-restricted | 0 ms | 2/2 | 256 / 256 | 13000 / 13000 | 9.0 ms / 9.0 ms |"),
            "{table}"
        );
        let again = Report::from_json(&serde_json::to_string(&report).unwrap()).unwrap();
        assert_eq!(again.summaries.len(), 3);
    }

    #[test]
    fn cells_name_their_routers_and_mark_the_controls() {
        let cells = cells();
        assert_eq!(cells[0].pairing, "symmetric / port-restricted");
        assert!(
            cells
                .iter()
                .any(|c| c.pairing == "symmetric / port-restricted (open)")
        );
        let controls: Vec<_> = cells[0].variants.iter().map(|v| v.control).collect();
        assert_eq!(controls, [false, true, true]);
        assert_eq!(cells[0].variants[1].punch.birthday, OnOff::Off);
        let ipv6 = ipv6_cells();
        assert_eq!(
            ipv6[0].pairing,
            "IPv6-only v6 firewall / IPv6-only v6 firewall"
        );
        assert!(
            open_cells()
                .iter()
                .all(|c| c.variants.iter().all(|v| !v.control))
        );
    }
}
