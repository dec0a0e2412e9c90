//! The transport on real loopback sockets: binding, routing and its errors.

#![allow(clippy::unwrap_used)]

use std::{
    net::UdpSocket,
    pin::Pin,
    sync::atomic::{AtomicU16, Ordering},
    time::Duration,
};

use futures::future::poll_fn;
use libp2p_core::{
    Endpoint, Multiaddr, Transport as _,
    transport::{DialOpts, ListenerId, PortUse, TransportError, TransportEvent},
};
use libp2p_identity::Keypair;
use punchport::{Config, Error, NoPunchSocketReason, Transport};
use punchport::{PortRange, QuicAddr};

type Event = TransportEvent<libp2p_quic::Connecting, libp2p_quic::Error>;

async fn next_event<T>(transport: &mut T) -> TransportEvent<T::ListenerUpgrade, T::Error>
where
    T: libp2p_core::Transport + Unpin,
{
    tokio::time::timeout(
        Duration::from_secs(10),
        poll_fn(|cx| Pin::new(&mut *transport).poll(cx)),
    )
    .await
    .expect("transport event within 10 s")
}

async fn new_address(transport: &mut Transport) -> QuicAddr {
    match next_event(transport).await {
        Event::NewAddress { listen_addr, .. } => QuicAddr::parse(&listen_addr).unwrap(),
        other => panic!("expected NewAddress, got {other:?}"),
    }
}

/// `len` consecutive free loopback ports, held by the returned sockets.
///
/// The ports come from below Linux's ephemeral range (32768-60999 by
/// default, `net.ipv4.ip_local_port_range`), where no socket bound to port 0
/// lands, and each call of this process gets its own block: a port a test
/// drops to let the transport bind it cannot be taken in between by the
/// ephemeral sockets or the ranges of the tests running beside it.
fn hold_free_ports(len: u16) -> (PortRange, Vec<UdpSocket>) {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    // A block of 200 ports per process id, so that test binaries running at
    // once (other crates' tests) do not meet either.
    let base = 12000 + (std::process::id() % 80) as u16 * 200;
    loop {
        let start = base + NEXT.fetch_add(len, Ordering::Relaxed);
        let end = start + len - 1;
        assert!(
            end < ephemeral_low && end < base + 200,
            "no free block of {len} ports left below the ephemeral range"
        );
        let held: Vec<_> = (start..=end)
            .map_while(|port| UdpSocket::bind(("127.0.0.1", port)).ok())
            .collect();
        if held.len() == usize::from(len) {
            return (PortRange::new(start, end).unwrap(), held);
        }
    }
}

fn transport(range: PortRange) -> Transport {
    punchport::with_config(Config::new(&Keypair::generate_ed25519()).with_range(range)).0
}

fn quic(text: &str) -> Multiaddr {
    text.parse().unwrap()
}

#[tokio::test]
async fn port_zero_binds_the_first_free_port_of_the_range() {
    let (range, mut held) = hold_free_ports(3);
    drop(held.remove(2)); // only the last port is free
    let mut transport = transport(range);
    transport
        .listen_on(ListenerId::next(), quic("/ip4/127.0.0.1/udp/0/quic-v1"))
        .unwrap();
    let addr = new_address(&mut transport).await;
    assert_eq!(addr.socket.port(), range.end());
    assert_eq!(
        transport
            .punch_sockets()
            .all()
            .iter()
            .map(|s| s.bound)
            .collect::<Vec<_>>(),
        [addr.socket]
    );
}

#[tokio::test]
async fn an_exhausted_range_is_its_own_error_naming_the_range() {
    let (range, _held) = hold_free_ports(4);
    let mut transport = transport(range);
    let err = transport
        .listen_on(ListenerId::next(), quic("/ip4/127.0.0.1/udp/0/quic-v1"))
        .unwrap_err();
    let TransportError::Other(err) = err else {
        panic!("expected an error, got {err:?}")
    };
    let found = Error::find(&err).expect("a punchport error");
    assert!(matches!(found, Error::RangeExhausted(_)), "{found:?}");
    assert!(err.to_string().contains(&range.to_string()), "{err}");
    assert_eq!(transport.punch_sockets().all().len(), 0);
}

#[tokio::test]
async fn a_second_punch_socket_of_a_family_is_refused() {
    let (range, held) = hold_free_ports(2);
    drop(held);
    let mut transport = transport(range);
    transport
        .listen_on(ListenerId::next(), quic("/ip4/127.0.0.1/udp/0/quic-v1"))
        .unwrap();
    let err = transport
        .listen_on(ListenerId::next(), quic("/ip4/127.0.0.1/udp/0/quic-v1"))
        .unwrap_err();
    let TransportError::Other(err) = err else {
        panic!("{err:?}")
    };
    assert!(
        matches!(Error::find(&err), Some(Error::PunchSocketTaken(_))),
        "{err}"
    );
    assert!(err.to_string().contains("already bound"), "{err}");
}

#[tokio::test]
async fn binds_an_ipv6_punch_socket_on_loopback() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: this host has no IPv6 loopback (::1)");
        return;
    }
    let mut transport = transport(PortRange::new(46100, 46199).unwrap());
    transport
        .listen_on(ListenerId::next(), quic("/ip6/::1/udp/0/quic-v1"))
        .unwrap();
    let addr = new_address(&mut transport).await;
    assert!(addr.socket.is_ipv6() && addr.socket.ip().is_loopback());
    assert!((46100..=46199).contains(&addr.socket.port()));
    // The IPv4 family is still free for its own punch socket.
    transport
        .listen_on(ListenerId::next(), quic("/ip4/127.0.0.1/udp/0/quic-v1"))
        .unwrap();
    assert_eq!(transport.punch_sockets().all().len(), 2);
}

#[tokio::test]
async fn a_punch_dial_without_a_punch_socket_fails_with_its_own_error() {
    let mut transport = transport(PortRange::DEFAULT);
    // An ordinary listener exists, but must never carry a punch.
    transport
        .listen_on(ListenerId::next(), quic("/ip4/127.0.0.1/udp/39001/quic-v1"))
        .ok();
    let peer = Keypair::generate_ed25519().public().to_peer_id();
    let remote = quic(&format!("/ip4/127.0.0.1/udp/40999/quic-v1/p2p/{peer}"));
    for port_use in [PortUse::Reuse, PortUse::New] {
        let opts = DialOpts {
            role: Endpoint::Listener,
            port_use,
        };
        let Err(TransportError::Other(err)) = transport.dial(remote.clone(), opts) else {
            panic!("a punch dial without punch socket must fail");
        };
        let Some(Error::NoPunchSocket(no)) = Error::find(&err) else {
            panic!("expected NoPunchSocket, got {err}")
        };
        assert_eq!(
            no.reason,
            NoPunchSocketReason::NotBound(punchport::Family::Ipv4)
        );
        assert!(
            err.to_string().contains("/ip4/0.0.0.0/udp/0/quic-v1"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn removing_the_punch_listener_is_reported_and_frees_the_family() {
    let (range, held) = hold_free_ports(2);
    drop(held);
    let mut transport = transport(range);
    let id = ListenerId::next();
    transport
        .listen_on(id, quic("/ip4/127.0.0.1/udp/0/quic-v1"))
        .unwrap();
    let first = new_address(&mut transport).await.socket;
    assert!(transport.remove_listener(id));
    assert!(!transport.remove_listener(id), "already removed");
    match next_event(&mut transport).await {
        Event::ListenerClosed {
            listener_id,
            reason: Ok(()),
        } => assert_eq!(listener_id, id),
        other => panic!("expected ListenerClosed, got {other:?}"),
    }
    assert_eq!(transport.punch_sockets().all().len(), 0);
    transport
        .listen_on(ListenerId::next(), quic("/ip4/127.0.0.1/udp/0/quic-v1"))
        .unwrap();
    assert!(range.contains(new_address(&mut transport).await.socket.port()));
    // The closed socket is released once quinn's endpoint driver has stopped.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while UdpSocket::bind(first).is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{first} still bound 5 s after the listener closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Dials a plain libp2p-quic server from `client` and returns the source
/// address the server saw.
async fn source_seen_by_server(
    client: &mut Transport,
    server: &mut libp2p_quic::tokio::Transport,
    server_addr: &Multiaddr,
    opts: DialOpts,
) -> QuicAddr {
    let dial = client.dial(server_addr.clone(), opts).unwrap();
    let dial = tokio::spawn(dial);
    loop {
        match next_event(server).await {
            TransportEvent::Incoming {
                upgrade,
                send_back_addr,
                ..
            } => {
                let (_, _connection) = upgrade.await.unwrap();
                dial.await.unwrap().unwrap();
                return QuicAddr::parse(&send_back_addr).unwrap();
            }
            _ => continue,
        }
    }
}

#[tokio::test]
async fn every_dial_reusing_a_port_leaves_from_the_punch_socket() {
    let (range, held) = hold_free_ports(2);
    drop(held);
    let mut client = transport(range);
    // Ordinary listeners that stock libp2p-quic would hash dials onto.
    for port in [39011, 39012, 39013] {
        client
            .listen_on(
                ListenerId::next(),
                quic(&format!("/ip4/127.0.0.1/udp/{port}/quic-v1")),
            )
            .ok();
    }
    client
        .listen_on(ListenerId::next(), quic("/ip4/127.0.0.1/udp/0/quic-v1"))
        .unwrap();
    let punch = loop {
        let addr = new_address(&mut client).await;
        if range.contains(addr.socket.port()) {
            break addr.socket;
        }
    };

    for role in [Endpoint::Dialer, Endpoint::Listener] {
        for _ in 0..5 {
            // A new server address each time: a new hash for stock libp2p-quic.
            let mut server = libp2p_quic::tokio::Transport::new(libp2p_quic::Config::new(
                &Keypair::generate_ed25519(),
            ));
            server
                .listen_on(ListenerId::next(), quic("/ip4/127.0.0.1/udp/0/quic-v1"))
                .unwrap();
            let TransportEvent::NewAddress { listen_addr, .. } = next_event(&mut server).await
            else {
                panic!("server address")
            };
            let opts = DialOpts {
                role,
                port_use: PortUse::Reuse,
            };
            let seen = source_seen_by_server(&mut client, &mut server, &listen_addr, opts).await;
            assert_eq!(seen.socket, punch, "{role:?} dial to {listen_addr}");
        }
    }
}

#[tokio::test]
async fn a_dial_asking_for_a_new_port_does_not_use_a_listener() {
    let (range, held) = hold_free_ports(1);
    drop(held);
    let mut client = transport(range);
    client
        .listen_on(ListenerId::next(), quic("/ip4/127.0.0.1/udp/0/quic-v1"))
        .unwrap();
    new_address(&mut client).await;
    let mut server =
        libp2p_quic::tokio::Transport::new(libp2p_quic::Config::new(&Keypair::generate_ed25519()));
    server
        .listen_on(ListenerId::next(), quic("/ip4/127.0.0.1/udp/0/quic-v1"))
        .unwrap();
    let TransportEvent::NewAddress { listen_addr, .. } = next_event(&mut server).await else {
        panic!("server address")
    };
    let opts = DialOpts {
        role: Endpoint::Dialer,
        port_use: PortUse::New,
    };
    let seen = source_seen_by_server(&mut client, &mut server, &listen_addr, opts).await;
    assert!(!range.contains(seen.socket.port()), "{seen}");
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Adding and removing the punch listener 100 times leaves no socket,
/// descriptor or listener behind.
#[tokio::test]
async fn listener_churn_leaves_nothing_behind() {
    let (range, held) = hold_free_ports(4);
    drop(held);
    let mut transport = transport(range);
    let before = open_fds();
    for round in 0..100 {
        let id = ListenerId::next();
        transport
            .listen_on(id, quic("/ip4/127.0.0.1/udp/0/quic-v1"))
            .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        let bound = new_address(&mut transport).await;
        assert!(range.contains(bound.socket.port()));
        assert!(transport.remove_listener(id));
        loop {
            if let Event::ListenerClosed { listener_id, .. } = next_event(&mut transport).await {
                assert_eq!(listener_id, id);
                break;
            }
        }
        // The socket is released as soon as quinn's endpoint driver stops.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while UdpSocket::bind(bound.socket).is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: {bound} still bound"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert_eq!(transport.punch_sockets().all().len(), 0);
    // quinn's endpoint drivers release their sockets once they stop.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while open_fds() > before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} descriptors open after churn, {before} before",
            open_fds()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for port in range.ports() {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while UdpSocket::bind(("127.0.0.1", port)).is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "port {port} still bound"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn dials_to_addresses_nobody_can_answer_from_are_refused_before_sending() {
    let (range, held) = hold_free_ports(1);
    drop(held);
    let mut transport = transport(range);
    transport
        .listen_on(ListenerId::next(), quic("/ip4/127.0.0.1/udp/0/quic-v1"))
        .unwrap();
    new_address(&mut transport).await;
    let peer = Keypair::generate_ed25519().public().to_peer_id();
    for target in [
        "/ip4/0.0.0.0/udp/4001/quic-v1",
        "/ip4/224.0.0.1/udp/4001/quic-v1",
        "/ip4/255.255.255.255/udp/4001/quic-v1",
        "/ip6/::/udp/4001/quic-v1",
        "/ip6/ff02::1/udp/4001/quic-v1",
        "/ip4/127.0.0.1/udp/0/quic-v1",
    ] {
        for role in [Endpoint::Dialer, Endpoint::Listener] {
            let addr = format!("{target}/p2p/{peer}");
            let result = transport.dial(
                quic(&addr),
                DialOpts {
                    role,
                    port_use: PortUse::Reuse,
                },
            );
            assert!(
                matches!(result, Err(TransportError::MultiaddrNotSupported(_))),
                "{addr} {role:?}"
            );
        }
    }
}
