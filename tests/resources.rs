//! Resource hygiene: file descriptors, UDP sockets and memory stay flat over
//! many punches in one process.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use punchport::{PortRange, QuicAddr};
use punchport_node::{NodeEvent, PeerConfig, loopback};
/// Counts what this test binary allocates and frees (dhat's heap profiler),
/// so that a leak shows as live heap bytes, whatever the system allocator
/// keeps from the system.
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Open file descriptors, UDP sockets among them, live heap bytes, and
/// resident memory in KiB of this process.
#[derive(Debug, Clone, Copy)]
struct Usage {
    fds: usize,
    udp_sockets: usize,
    heap_bytes: usize,
    rss_kib: u64,
}

fn usage() -> Usage {
    let process = punchport_lab::usage::Usage::now();
    Usage {
        fds: process.fds,
        udp_sockets: process.udp_sockets,
        heap_bytes: dhat::HeapStats::get().curr_bytes,
        rss_kib: process.rss_kib,
    }
}

/// 200 relay-to-direct punch cycles: one relay and one reserving peer live
/// throughout, a fresh dialing peer punches to it in each cycle and is then
/// dropped. Once the dropped peers' connections have timed out, descriptors,
/// UDP sockets and tasks are back where they were after 100 cycles, and the
/// live heap is within 1 MiB of it: what grows is rustls' session-ticket
/// caches, bounded at 256 entries each. (Resident memory is printed too; the
/// system allocator keeps some of what the many connections waiting for
/// their idle timeout needed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_punch_cycles_leave_nothing_behind() {
    const CYCLES: usize = 200;
    let _profiler = dhat::Profiler::builder().testing().build();
    let range = PortRange::new(43500, 43599).unwrap();
    let (_relay, relay_addr) = loopback::relay().await.unwrap();
    let peer = |decoy: u16| {
        let listen = QuicAddr {
            socket: ([127, 0, 0, 1], decoy).into(),
            peer_id: None,
        };
        PeerConfig::new(relay_addr.clone())
            .unwrap()
            .listen([listen.to_multiaddr()])
            .unwrap()
            .punchport(|c| c.with_range(range))
            .punch_ip([127, 0, 0, 1].into())
    };
    let mut reserving = peer(loopback::decoy_port(range)).spawn().unwrap();
    reserving.wait_for_ready().await.unwrap();
    let target = reserving.peer_id();
    // Drain the reserving peer's events so that its channel stays small.
    let drain = tokio::spawn(async move { while reserving.next_event().await.is_some() {} });

    let mut baseline = None;
    for cycle in 0..CYCLES {
        let mut dialing = peer(loopback::decoy_port(range))
            .dial(target)
            .spawn()
            .unwrap();
        dialing
            .wait_for(|e| matches!(e, NodeEvent::Direct { .. }).then_some(()))
            .await
            .unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
        drop(dialing);
        if cycle % 50 == 0 {
            let tasks = tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks();
            println!("cycle {cycle}: {:?}, {tasks} tasks alive", usage());
        }
        if cycle == CYCLES / 2 - 1 {
            tokio::time::sleep(Duration::from_secs(12)).await;
            let tasks = tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks();
            baseline = Some((usage(), tasks));
        }
    }
    // Let the dead dialers' connections time out (QUIC idle timeout 10 s).
    tokio::time::sleep(Duration::from_secs(12)).await;
    let (start, start_tasks) = baseline.unwrap();
    let end = usage();
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    println!(
        "after {} cycles: {start:?}, {start_tasks} tasks; after {CYCLES}: {end:?}, {tasks} tasks; resident {} -> {} KiB",
        CYCLES / 2,
        start.rss_kib,
        end.rss_kib
    );
    assert!(
        tasks <= start_tasks + 2,
        "tasks grew: {start_tasks} -> {tasks}"
    );
    assert!(
        end.fds <= start.fds + 8,
        "descriptors grew: {start:?} -> {end:?}"
    );
    assert!(
        end.udp_sockets <= start.udp_sockets + 2,
        "UDP sockets grew: {start:?} -> {end:?}"
    );
    assert!(
        end.heap_bytes <= start.heap_bytes + 1024 * 1024,
        "live heap grew: {start:?} -> {end:?}"
    );
    drain.abort();
}
