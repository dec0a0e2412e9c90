//! A smoke run of the benchmark: one cell, one trial of each transport, the
//! report rendered. The full run is `cargo run --release -p punchport-lab --bin bench`.

#![allow(clippy::unwrap_used)]

use punchport_lab::{
    bench::{self, Document, Plan, Vary, pairings},
    require_lab,
};

#[test]
fn the_benchmark_runs_and_reports() {
    require_lab!();
    let mut plan = Plan::new(&pairings::SMOKE, 1);
    plan.trials = 1;
    plan.vary = Vary::BOTH;
    let report = bench::run(&plan, |_| {}).unwrap();
    assert_eq!(report.records.len(), 2);
    assert_eq!(report.summaries.len(), 2);
    let port_aware = &report.summaries[1];
    assert_eq!(port_aware.variant, "port-aware");
    assert_eq!(port_aware.direct, 1, "{report:#?}");
    assert!(port_aware.median_ms.is_some());
    let doc = report.markdown("benchmarks-smoke");
    assert!(doc.contains("| port-aware |"), "{doc}");
    assert!(doc.contains("1/1 (100%)"), "{doc}");
    assert!(doc.contains("UDP 443 + n"), "{doc}");
    let path =
        std::env::temp_dir().join(format!("punchport-bench-smoke-{}.md", std::process::id()));
    std::fs::write(&path, doc).unwrap();
    std::fs::remove_file(&path).unwrap();
}
