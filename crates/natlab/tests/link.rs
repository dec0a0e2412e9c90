//! WAN link delay and loss.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{recv, send};
use natlab::require_lab;
use natlab::{Ipv6Kind, Lab, Nat};

/// Echoes every datagram back until `stop` is set.
fn echo(socket: &UdpSocket, stop: &AtomicBool) {
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("set read timeout");
    let mut buffer = [0_u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        if let Ok((length, from)) = socket.recv_from(&mut buffer) {
            let _ = socket.send_to(&buffer[..length], from);
        }
    }
}

/// The median round trip of `samples` UDP pings from `client` to `server`.
fn median_rtt(client: &UdpSocket, server: SocketAddr, samples: usize) -> Duration {
    let mut rtts = Vec::with_capacity(samples);
    for sequence in 0..samples {
        let payload = sequence.to_string();
        let start = Instant::now();
        send(client, payload.as_bytes(), server);
        loop {
            let (reply, _) = recv(client, Duration::from_secs(2)).expect("echo reply");
            if reply == payload.as_bytes() {
                break;
            }
        }
        rtts.push(start.elapsed());
    }
    rtts.sort();
    rtts[samples / 2]
}

#[test]
fn delayed_links_add_the_configured_one_way_delay() {
    require_lab!();
    let delay = Duration::from_millis(25);
    let lab = Lab::builder()
        .router("a", Nat::PortRestricted)
        .wan_delay(delay)
        .public_delay(delay)
        .build()
        .expect("build lab");
    let router = lab.router("a");

    // One link: the router to an echo in the internet namespace (the gateway).
    let gateway_echo = natlab::run_in_namespace(lab.internet_namespace(), || {
        UdpSocket::bind((natlab::plan::GATEWAY, 7000))
    })
    .expect("enter internet namespace")
    .expect("bind echo");
    // Two links: host a0 behind the router to an echo on the relay.
    let relay = lab.relay();
    let relay_echo = relay.bind_udp((relay.ip(), 7000)).expect("bind echo");
    let router_client = router
        .run(|| UdpSocket::bind((router.wan_ip(), 0)))
        .expect("enter router namespace")
        .expect("bind");
    let host_client = lab.host("a0").bind_udp(([0, 0, 0, 0], 0)).expect("bind");

    let stop = AtomicBool::new(false);
    let (one_link, two_links) = std::thread::scope(|scope| {
        scope.spawn(|| echo(&gateway_echo, &stop));
        scope.spawn(|| echo(&relay_echo, &stop));
        let one_link = median_rtt(
            &router_client,
            SocketAddr::from((natlab::plan::GATEWAY, 7000)),
            9,
        );
        let two_links = median_rtt(&host_client, SocketAddr::new(relay.ip(), 7000), 7);
        stop.store(true, Ordering::Relaxed);
        (one_link, two_links)
    });
    eprintln!(
        "one-way delay {delay:?} per link: RTT across one link {one_link:?}, \
         across two links (host behind NAT <-> relay) {two_links:?}"
    );
    assert!(
        one_link >= delay * 2 && one_link < delay * 2 + Duration::from_millis(20),
        "one link: {one_link:?}"
    );
    assert!(
        two_links >= delay * 4 && two_links < delay * 4 + Duration::from_millis(30),
        "two links: {two_links:?}"
    );
}

#[test]
fn delayed_links_carry_ipv6_with_the_same_delay() {
    require_lab!();
    let delay = Duration::from_millis(20);
    let lab = Lab::builder()
        .router("a", Nat::PortRestricted)
        .ipv6(Ipv6Kind::Masquerade)
        .wan_delay(delay)
        .build()
        .expect("build lab");
    let relay = lab.relay();
    let relay_ip6 = relay.ip6().expect("relay has IPv6");
    let echo_v6 = relay.bind_udp((relay_ip6, 7000)).expect("bind echo");
    let echo_v4 = relay.bind_udp((relay.ip(), 7000)).expect("bind echo");
    let host = lab.host("a0");
    let client_v6 = host
        .bind_udp((host.ip6().expect("host has IPv6"), 0))
        .expect("bind");
    let client_v4 = host.bind_udp(([0, 0, 0, 0], 0)).expect("bind");

    let stop = AtomicBool::new(false);
    let (v6, v4) = std::thread::scope(|scope| {
        scope.spawn(|| echo(&echo_v6, &stop));
        scope.spawn(|| echo(&echo_v4, &stop));
        let v6 = median_rtt(&client_v6, SocketAddr::new(relay_ip6, 7000), 7);
        let v4 = median_rtt(&client_v4, SocketAddr::new(relay.ip(), 7000), 7);
        stop.store(true, Ordering::Relaxed);
        (v6, v4)
    });
    eprintln!("one-way WAN delay {delay:?}: RTT host <-> relay over IPv6 {v6:?}, IPv4 {v4:?}");
    // One delayed link (the router's) on the path, crossed twice.
    for (family, rtt) in [("IPv6", v6), ("IPv4", v4)] {
        assert!(
            rtt >= delay * 2 && rtt < delay * 2 + Duration::from_millis(20),
            "{family}: {rtt:?}"
        );
    }
}

#[test]
fn lossy_links_drop_roughly_the_configured_share() {
    require_lab!();
    let lab = Lab::builder()
        .public_host("p")
        .wan_loss_percent(20.0)
        .build()
        .expect("build lab");
    let relay = lab.relay();
    let target = lab.host("p");
    let sender = relay.bind_udp((relay.ip(), 0)).expect("bind");
    let receiver = target.bind_udp((target.ip(), 9000)).expect("bind");
    let destination = SocketAddr::new(target.ip(), 9000);

    const PACKETS: usize = 500;
    let received = std::thread::scope(|scope| {
        let counter = scope.spawn(|| {
            let mut count = 0;
            while recv(&receiver, Duration::from_millis(500)).is_some() {
                count += 1;
            }
            count
        });
        for sequence in 0..PACKETS {
            send(&sender, &sequence.to_le_bytes(), destination);
            if sequence % 50 == 49 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        counter.join().expect("counter thread")
    });
    // The path crosses two links, each dropping 20%: 64% should arrive.
    let share = received as f64 / PACKETS as f64;
    eprintln!(
        "20% loss per link, two links: {received}/{PACKETS} arrived ({share:.2}, expected 0.64)"
    );
    assert!((0.54..=0.74).contains(&share), "delivered share {share}");
}

/// A router's WAN link limited to 10 Mbit/s: a host behind it sending as
/// fast as it can for 2 s delivers at most 10 Mbit/s to the relay (and at
/// least 6: a loaded core may slow the sender, not the link) (the rest
/// overflows the link's 50 ms queue and is dropped), and the same burst
/// over an unshaped link arrives far faster.
#[test]
fn rate_limited_links_pass_about_the_configured_rate() {
    require_lab!();
    const RATE: u64 = 10_000_000;
    let lab = Lab::builder()
        .router("a", Nat::PortRestricted)
        .wan_rate(RATE)
        .build()
        .expect("build lab");
    let relay = lab.relay();
    let receiver = relay.bind_udp((relay.ip(), 9001)).expect("bind");
    let sender = lab.host("a0").bind_udp(([0, 0, 0, 0], 0)).expect("bind");
    let destination = SocketAddr::new(relay.ip(), 9001);
    let payload = [0xA5_u8; 1200];
    let (bytes, elapsed) = std::thread::scope(|scope| {
        let counter = scope.spawn(|| {
            let mut bytes = 0usize;
            let mut first = None;
            let mut last = Instant::now();
            while let Some((packet, _)) = recv(&receiver, Duration::from_millis(500)) {
                first.get_or_insert_with(Instant::now);
                last = Instant::now();
                bytes += packet.len();
            }
            (bytes, first.map_or(Duration::ZERO, |f| last - f))
        });
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            let _ = sender.send_to(&payload, destination);
        }
        counter.join().expect("counter thread")
    });
    let mbit = bytes as f64 * 8.0 / elapsed.as_secs_f64() / 1e6;
    eprintln!("10 Mbit/s link: {bytes} bytes in {elapsed:?}: {mbit:.2} Mbit/s (UDP payload)");
    // IP and UDP headers (28 bytes a packet) count against the rate too.
    assert!((6.0..=10.5).contains(&mbit), "{mbit:.2} Mbit/s");
}
