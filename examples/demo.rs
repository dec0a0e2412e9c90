//! A relay and two peers on loopback: the relayed connection upgrades to a
//! direct one from the punch port. Then the same with stock libp2p-quic, for
//! comparison. Run it with `cargo run --example demo`.

use std::process::ExitCode;

use punchport::PortRange;
use punchport_node::{
    TransportKind,
    loopback::{self, Pair, Side},
};

/// Stock runs to compare with.
const STOCK_RUNS: usize = 10;

#[tokio::main]
async fn main() -> ExitCode {
    punchport_node::cli::init_tracing("warn");
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<bool, loopback::ScenarioError> {
    let range = PortRange::default();
    println!("punchport demo: one relay and two peers on 127.0.0.1, punch range {range}\n");
    let (_relay, relay_addr) = loopback::relay().await?;
    println!("relay    listens on {relay_addr}");

    let pair = loopback::punch_pair(&relay_addr, TransportKind::PortAware, range).await?;
    describe("peer A", &pair.a);
    describe("peer B", &pair.b);
    println!("\nA holds a reservation on the relay; B dialed A through it (a relayed connection).");
    let ok = report(&pair, range);

    println!(
        "\nThe same layout with stock libp2p-quic (`with_quic()`) and plain DCUtR, {STOCK_RUNS} runs:"
    );
    let mut from_ordinary = 0;
    for _ in 0..STOCK_RUNS {
        let stock = loopback::punch_pair(&relay_addr, TransportKind::Stock, range).await?;
        if stock.remote_ports().any(|port| !range.contains(port)) {
            from_ordinary += 1;
        }
    }
    println!(
        "  in {from_ordinary} of {STOCK_RUNS} runs a direct connection used an ordinary listener's port.\n  \
         Behind NATs such a punch fails: the other side aims at the punch port."
    );
    Ok(ok)
}

fn describe(name: &str, side: &Side) {
    let punch = side
        .peer
        .punch_port
        .map_or("none".to_owned(), |p| format!("udp/{p}"));
    println!(
        "{name}   ordinary listener on udp/{} (stands in for 443), punch socket on {punch}",
        side.decoy_port
    );
}

fn report(pair: &Pair, range: PortRange) -> bool {
    if !pair.direct() {
        println!(
            "The punch did NOT succeed: {:?} {:?}",
            pair.a.peer.failures, pair.b.peer.failures
        );
        return false;
    }
    let elapsed = pair.b.peer.elapsed_ms.unwrap_or_default();
    println!("DCUtR upgraded it to a direct connection {elapsed} ms after the relayed one:");
    for (name, side) in [("A", &pair.a), ("B", &pair.b)] {
        for conn in &side.peer.connections {
            let local = conn
                .local_port
                .map_or("?".to_owned(), |p| format!("udp/{p}"));
            let how = if conn.dialer { "dialed" } else { "accepted" };
            println!(
                "  {name} {how} a connection: local {local} <-> remote udp/{}",
                conn.remote_port
            );
        }
    }
    let all_in_range = pair.remote_ports().all(|port| range.contains(port));
    if all_in_range {
        println!(
            "Every direct connection ran between punch ports; none left from an ordinary listener."
        );
    } else {
        println!(
            "A direct connection left from a port outside {range}: this is a bug, please report it."
        );
    }
    all_in_range
}
