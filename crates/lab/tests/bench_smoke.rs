//! A smoke run of the benchmark: one cell, one trial of each transport, the
//! report rendered. The full run is `cargo run --release -p punchport-lab --bin bench`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use punchport_lab::{
    bench::{self, Variant},
    require_lab,
};

#[test]
fn the_benchmark_runs_and_reports() {
    require_lab!();
    let cells = bench::smoke_cells();
    let variants = Variant::stock_and_port_aware();
    let report = bench::run(
        &cells,
        &variants,
        1,
        Duration::from_secs(20),
        bench::Vary {
            punch_port: true,
            ordinary_port: true,
        },
        |_| {},
    )
    .unwrap();
    assert_eq!(report.records.len(), 2);
    assert_eq!(report.summaries.len(), 2);
    let port_aware = &report.summaries[1];
    assert_eq!(port_aware.transport, "port-aware");
    assert_eq!(port_aware.direct, 1, "{report:#?}");
    assert!(port_aware.median_ms.is_some());
    let table = bench::markdown(&report);
    assert!(table.contains("| port-aware |"), "{table}");
    assert!(table.contains("1/1 (100%)"), "{table}");
    let doc = bench::document(&report, "Smoke", "cargo test", &table);
    assert!(doc.contains("UDP 443 + n"), "{doc}");
    let path =
        std::env::temp_dir().join(format!("punchport-bench-smoke-{}.md", std::process::id()));
    std::fs::write(&path, doc).unwrap();
    std::fs::remove_file(&path).unwrap();
}
