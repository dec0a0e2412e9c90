//! Hostile input in the NAT lab: a flood of random datagrams at the punch
//! port and 443, and a DCUtR peer that answers with junk addresses.

#![allow(clippy::unwrap_used)]

use std::{
    process::Command,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use libp2p::Multiaddr;
use punchport_lab::{LabNode, PunchLab, Trial, hostile, natlab::Nat, require_lab};
use punchport_node::NodeEvent;

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn assert_alive_without_panic(node: &mut LabNode) {
    assert_eq!(
        node.wait_exit(Duration::ZERO),
        None,
        "the node exited: {}",
        node.stderr()
    );
    assert!(!node.stderr().contains("panicked"), "{}", node.stderr());
}

/// Counts packets that enter the internet namespace for anything outside
/// the lab's address ranges.
struct OutsideCounter {
    namespace: String,
}

impl OutsideCounter {
    fn install(lab: &PunchLab) -> Self {
        let namespace = lab.lab().internet_namespace().to_owned();
        let rules = "table ip watch {\n chain pre {\n  type filter hook prerouting priority -300; policy accept;\n  ip daddr != { 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 10.0.0.0/8 } counter\n }\n}\n";
        let mut child = Command::new("ip")
            .args(["netns", "exec", &namespace, "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), rules.as_bytes()).unwrap();
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
        Self { namespace }
    }

    fn packets(&self) -> u64 {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.namespace,
                "nft",
                "list",
                "chain",
                "ip",
                "watch",
                "pre",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap()
    }
}

/// Random datagrams at the punch port and at 443 of the reserving peer, from
/// another host on its LAN, about 10 000 a second for at least 10 s: three
/// punches during it still end directly connected, and the peer's memory
/// stays bounded.
#[test]
fn punches_through_a_udp_flood_with_bounded_memory() {
    require_lab!();
    let lab = PunchLab::builder(Nat::PortRestricted, Nat::PortRestricted)
        .a_hosts(2)
        .build()
        .unwrap();
    let (_relay, relay_addr) = lab.start_relay().unwrap();
    let mut reserving = lab
        .start_reserving(&relay_addr, &Trial::port_aware())
        .unwrap();
    let id = reserving.wait_ready().unwrap();
    let before = rss_kib(reserving.pid());

    let target = lab.lab().host("a0").ip();
    let flooder = lab.lab().host("a1").bind_udp(([0, 0, 0, 0], 0)).unwrap();
    let stop = AtomicBool::new(false);
    let (sent, punches) = std::thread::scope(|scope| {
        let flood = scope.spawn(|| {
            let mut sent = 0u64;
            let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
            let start = Instant::now();
            let busy = |start: Instant| {
                start.elapsed() < Duration::from_secs(10)
                    || (!stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(120))
            };
            while busy(start) {
                for _ in 0..100 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let len = 1 + (seed % 1400) as usize;
                    let payload: Vec<u8> = (0..len).map(|i| (seed >> (i % 56)) as u8).collect();
                    let port = if seed.is_multiple_of(2) { 40000 } else { 443 };
                    if flooder.send_to(&payload, (target, port)).is_ok() {
                        sent += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            sent
        });
        std::thread::sleep(Duration::from_secs(2));
        let mut punches = Vec::new();
        for _ in 0..3 {
            let mut dialing = lab
                .start_peer(
                    lab.lab().host("b0"),
                    &relay_addr,
                    &Trial::port_aware(),
                    Some(id),
                )
                .unwrap();
            let direct = dialing.wait_for(Duration::from_secs(30), "direct", |e| match e {
                NodeEvent::Direct { elapsed_ms, .. } => Some(*elapsed_ms),
                _ => None,
            });
            punches.push(direct.unwrap());
            dialing.wait_exit(Duration::from_secs(5));
        }
        stop.store(true, Ordering::Relaxed);
        (flood.join().unwrap(), punches)
    });
    let after = rss_kib(reserving.pid());
    eprintln!(
        "flood: {sent} datagrams; punches direct in {punches:?} ms; RSS {before} KiB -> {after} KiB"
    );
    assert!(sent > 50_000, "the flood was too small: {sent}");
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    assert_alive_without_panic(&mut reserving);
}

/// Multiaddr bytes of the wrong kinds: not QUIC, relayed, unroutable, of a
/// family without a punch socket.
fn wrong_kinds() -> Vec<Vec<u8>> {
    [
        "/ip4/8.8.8.8/tcp/443",
        "/dns4/example.com/udp/443/quic-v1",
        "/ip4/203.0.113.10/udp/443/quic-v1/p2p-circuit",
        "/ip4/0.0.0.0/udp/40000/quic-v1",
        "/ip4/255.255.255.255/udp/40000/quic-v1",
        "/ip4/224.0.0.1/udp/40000/quic-v1",
        "/ip4/198.51.100.2/udp/0/quic-v1",
        "/ip6/fe80::1/udp/40000/quic-v1",
        "/ip4/8.8.8.8/udp/443/quic",
        "/memory/1234",
    ]
    .iter()
    .map(|a| a.parse::<Multiaddr>().unwrap().to_vec())
    .collect()
}

/// Bytes that are no multiaddr at all.
fn junk_bytes() -> Vec<Vec<u8>> {
    (0u8..64)
        .map(|i| {
            (0u8..40)
                .map(|j| i.wrapping_mul(31).wrapping_add(j.wrapping_mul(7)))
                .collect()
        })
        .collect()
}

/// A DCUtR peer answers the reserving peer's CONNECT with `addrs`; the
/// reserving peer ends the punch with a clean error, keeps running, and
/// sends nothing outside the lab.
fn survives_a_junk_connect(addrs: Vec<Vec<u8>>) {
    let lab = PunchLab::builder(Nat::PortRestricted, Nat::PortRestricted)
        .build()
        .unwrap();
    let outside = OutsideCounter::install(&lab);
    let (_relay, relay_addr) = lab.start_relay().unwrap();
    let mut victim = lab
        .start_reserving(&relay_addr, &Trial::port_aware())
        .unwrap();
    let id = victim.wait_ready().unwrap();
    let b0 = lab.lab().host("b0");
    let report = hostile::run_in(b0, relay_addr, id, addrs, None, Duration::from_secs(25)).unwrap();
    assert!(report.relayed && report.answered >= 1, "{report:?}");
    let error = victim
        .wait_for(Duration::from_secs(20), "punch_failed", |e| match e {
            NodeEvent::Direct { .. } => panic!("direct to a junk peer?"),
            NodeEvent::PunchFailed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .unwrap();
    eprintln!(
        "junk CONNECT answered {} times; the victim: {error}",
        report.answered
    );
    assert_alive_without_panic(&mut victim);
    assert_eq!(outside.packets(), 0, "packets left the lab");
}

#[test]
fn survives_a_connect_full_of_junk_bytes() {
    require_lab!();
    survives_a_junk_connect(hostile::fill(&junk_bytes()));
}

#[test]
fn survives_a_connect_full_of_addresses_of_the_wrong_kinds() {
    require_lab!();
    survives_a_junk_connect(hostile::fill(&wrong_kinds()));
}

#[test]
fn dials_nothing_of_a_short_list_of_the_wrong_kinds() {
    require_lab!();
    survives_a_junk_connect(wrong_kinds());
}
