//! Birthday punching leaves nothing behind, and does not starve a node's
//! other connections.
//!
//! The hard side runs in this process, inside its lab host's namespace, so
//! that its descriptors, UDP sockets, tasks and live heap can be counted;
//! the easy side is the `peer` binary behind a port-restricted NAT.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use punchport::BirthdayConfig;
use punchport_lab::{LabNode, PeerRole, PunchLab, Trial, natlab::Nat, require_lab};
use punchport_node::{NodeEvent, PeerConfig, cli::PeerArgs};

/// Counts what this test binary allocates and frees, so that a leak shows as
/// live heap bytes.
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// This process's descriptors and UDP sockets (in the calling thread's
/// namespace), its live heap and the runtime's tasks.
#[derive(Debug, Clone, Copy)]
struct Usage {
    process: punchport_lab::usage::Usage,
    heap_bytes: usize,
    tasks: usize,
}

fn usage() -> Usage {
    Usage {
        process: punchport_lab::usage::Usage::now(),
        heap_bytes: dhat::HeapStats::get().curr_bytes,
        tasks: tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
    }
}

/// The easy side's flags for one cycle: a small budget at a fast pace, so
/// that attempts miss, and each punch makes two.
fn easy_args(lab: &PunchLab, relay: &libp2p::Multiaddr, target: libp2p::PeerId) -> PeerArgs {
    let mut args = Trial::port_aware().peer_args(PeerRole::Dialing, relay, lab.range());
    args.dial = Some(target);
    args.timeout_secs = 20;
    args.punch.birthday_sockets = 4;
    args.punch.birthday_probes = 4;
    args.punch.birthday_pace = 1000;
    args
}

/// Waits until the hard side's maps say that every punch is over (the
/// relayed connections to killed peers close once the relay's connections to
/// them time out; DCUtR's last dials end with their handshake timeout), and
/// returns that `maps` line.
async fn quiet(node: &mut punchport_node::Node) -> NodeEvent {
    node.set_wait(Duration::from_secs(90));
    node.wait_for(|e| match e {
        NodeEvent::Maps {
            punches: 0,
            dials: 0,
            birthday_attempts: 0,
            birthday_dials: 0,
            birthday_peers: 0,
            ..
        } => Some(e.clone()),
        _ => None,
    })
    .await
    .expect("every punch over within 90 s")
}

/// 100 birthday attempts (50 punches, each missing twice) in one hard-side
/// process: once the dead punches' connections have timed out, descriptors,
/// UDP sockets and tasks are back where they were after 50 attempts, and the
/// live heap within 1 MiB of it; no fresh socket, attempt, dial or punch is
/// left in the behaviour's maps. (The limits remember each peer for 10
/// minutes, by design.)
#[test]
fn a_hundred_birthday_attempts_leave_nothing_behind() {
    require_lab!();
    const CYCLES: usize = 50;
    let _profiler = dhat::Profiler::builder().testing().build();
    let lab = PunchLab::builder(Nat::Symmetric, Nat::PortRestricted)
        .build()
        .unwrap();
    let (_relay, relay_addr) = lab.start_relay().unwrap();
    let host = lab.lab().host("a0");
    let (start, end, attempts, tracked) = host
        .run(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let birthday = BirthdayConfig::new()
                    .with_budget(4, 4)
                    .unwrap()
                    .with_pace(1000)
                    .unwrap();
                let mut hard = PeerConfig::new(relay_addr.clone())
                    .unwrap()
                    .listen(["/ip4/0.0.0.0/udp/443/quic-v1".parse().unwrap()])
                    .unwrap()
                    .punchport(|c| c.with_birthday(birthday))
                    .maps_interval(Duration::from_secs(1))
                    .spawn()
                    .unwrap();
                hard.wait_for_ready().await.unwrap();
                let target = hard.peer_id();
                let mut attempts = 0;
                let mut start = None;
                for cycle in 0..CYCLES {
                    let easy = LabNode::spawn(
                        lab.lab().host("b0"),
                        "b0",
                        &lab.binaries().peer,
                        easy_args(&lab, &relay_addr, target).to_args(),
                    )
                    .unwrap();
                    let mut this_cycle = 0;
                    // What the hard side said this cycle, for a failure to show.
                    let mut said = Vec::new();
                    while this_cycle < 2 {
                        let wait = Duration::from_secs(30);
                        match tokio::time::timeout(wait, hard.next_event()).await {
                            Ok(Some(NodeEvent::Attempt { ref method, .. }))
                                if method == "birthday" =>
                            {
                                this_cycle += 1;
                            }
                            Ok(Some(NodeEvent::Maps { .. } | NodeEvent::Ping { .. })) => {}
                            Ok(Some(event)) => said.push(event.to_json()),
                            Ok(None) | Err(_) => panic!(
                                "cycle {cycle}: {this_cycle} birthday attempts within {wait:?}\n\
                                 hard side said: {said:#?}\neasy side said: {:#?}\neasy stderr: {}",
                                std::iter::from_fn(|| easy.next_event(Duration::ZERO))
                                    .map(|e| e.to_json())
                                    .collect::<Vec<_>>(),
                                easy.stderr()
                            ),
                        }
                    }
                    attempts += this_cycle;
                    drop(easy);
                    if cycle == CYCLES / 2 - 1 {
                        quiet(&mut hard).await;
                        start = Some(usage());
                    }
                }
                let tracked = quiet(&mut hard).await;
                let end = usage();
                (start.unwrap(), end, attempts, tracked)
            })
        })
        .unwrap();
    println!("after 50 attempts: {start:?}; after {attempts}: {end:?}; {tracked:?}");
    assert_eq!(attempts, 2 * CYCLES);
    assert!(
        end.tasks <= start.tasks + 2,
        "tasks grew: {start:?} -> {end:?}"
    );
    assert!(
        end.process.fds <= start.process.fds + 4,
        "descriptors grew: {start:?} -> {end:?}"
    );
    assert!(
        end.process.udp_sockets <= start.process.udp_sockets,
        "UDP sockets grew: {start:?} -> {end:?}"
    );
    assert!(
        end.heap_bytes <= start.heap_bytes + 1024 * 1024,
        "live heap grew: {start:?} -> {end:?}"
    );
    let NodeEvent::Maps { fresh_sockets, .. } = tracked else {
        panic!("{tracked:?}")
    };
    assert_eq!(fresh_sockets, 0, "{tracked:?}");
}
