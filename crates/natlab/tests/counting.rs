//! Counting what reaches the wire: conntrack accounting on the routers
//! (packets and bytes per direction of each flow) and UDP counters on
//! hosts. Byte counts are whole IP packets: IP header + UDP header +
//! payload.

mod common;

use std::thread::sleep;
use std::time::Duration;

use common::{ANY, addr, recv_expect, send};
use natlab::require_lab;
use natlab::{Counts, Host, Lab, Nat};

/// An IPv4 header without options plus a UDP header.
const IPV4_UDP_HEADERS: u64 = 20 + 8;

fn counts(packets: u64, payload: u64, headers: u64) -> Counts {
    Counts {
        packets,
        bytes: packets * (payload + headers),
    }
}

/// The names of the nftables tables in `host`'s namespace.
fn tables(host: &Host) -> String {
    let mut command = host.command("nft");
    command.args(["list", "tables"]);
    let output = command.output().expect("nft list tables");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn routers_count_packets_and_bytes_per_direction_of_each_flow() {
    require_lab!();
    let lab = Lab::builder()
        .router("a", Nat::PortRestricted)
        .build()
        .expect("build lab");
    let (relay, router) = (lab.relay(), lab.router("a"));
    let remote = addr(relay.ip(), 5000);
    let server = relay.bind_udp(remote).expect("bind");
    let inside = lab.host("a0").bind_udp((ANY, 40000)).expect("bind");
    for _ in 0..5 {
        send(&inside, &[7; 100], remote);
        recv_expect(&server, "outbound datagram");
    }
    let external = addr(router.wan_ip(), 40000);
    for _ in 0..2 {
        send(&server, &[9; 50], external);
        recv_expect(&inside, "reply");
    }

    let flows = router.conntrack().expect("conntrack");
    let flow = flows
        .iter()
        .find(|flow| flow.original.dst == remote)
        .unwrap_or_else(|| panic!("no flow to {remote} in {flows:#?}"));
    assert_eq!(flow.original_counts, Some(counts(5, 100, IPV4_UDP_HEADERS)));
    assert_eq!(flow.reply_counts, Some(counts(2, 50, IPV4_UDP_HEADERS)));
}

#[test]
fn a_udp_counter_counts_every_datagram_with_its_ip_and_udp_headers() {
    require_lab!();
    let lab = Lab::builder()
        .router("a", Nat::PortRestricted)
        .public_host("p")
        .build()
        .expect("build lab");
    let (relay, router) = (lab.relay(), lab.router("a"));
    let counter = relay.udp_counter().expect("counter");
    assert_eq!(counter.read().expect("read"), Counts::default());
    assert!(tables(relay).contains(counter.table()));

    let listening = addr(relay.ip(), 5000);
    let server = relay.bind_udp(listening).expect("bind");
    let from_a = lab.host("a0").bind_udp((ANY, 40000)).expect("bind");
    let from_p = lab.host("p").bind_udp((ANY, 40000)).expect("bind");
    for _ in 0..7 {
        send(&from_a, &[1; 200], listening);
        recv_expect(&server, "datagram to a bound port");
    }
    // Datagrams to a port nobody listens on reach the host all the same.
    for _ in 0..3 {
        send(&from_p, &[2; 10], addr(relay.ips()[1], 5999));
    }
    sleep(Duration::from_millis(100));

    let total = counter.read().expect("read");
    let expected_a = counts(7, 200, IPV4_UDP_HEADERS);
    let expected_p = counts(3, 10, IPV4_UDP_HEADERS);
    assert_eq!(
        total,
        Counts {
            packets: 10,
            bytes: expected_a.bytes + expected_p.bytes
        }
    );
    let sources = counter.by_source().expect("by source");
    assert_eq!(sources.len(), 2, "{sources:?}");
    assert_eq!(sources[&router.wan_ip()], expected_a, "{sources:?}");
    assert_eq!(sources[&lab.host("p").ip()], expected_p, "{sources:?}");

    // A second counter counts from its own start; dropping one removes
    // only its table.
    let later = relay.udp_counter().expect("second counter");
    send(&from_a, &[3; 1], listening);
    recv_expect(&server, "one more");
    assert_eq!(later.read().expect("read"), counts(1, 1, IPV4_UDP_HEADERS));
    assert_eq!(counter.read().expect("read").packets, 11);
    let table = counter.table().to_owned();
    drop(counter);
    let left = tables(relay);
    assert!(!left.contains(&format!("{table}\n")), "{left}");
    assert!(left.contains(later.table()), "{left}");
}

#[test]
fn a_counter_that_outlives_its_lab_drops_quietly() {
    require_lab!();
    let lab = Lab::builder().build().expect("build lab");
    let counter = lab.relay().udp_counter().expect("counter");
    drop(lab);
    assert!(counter.read().is_err(), "the namespace is gone");
    drop(counter);
}
