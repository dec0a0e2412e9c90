//! A few lines per scenario: a relay and pairs of peers on loopback.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::{net::UdpSocket, time::Duration};

use libp2p::Multiaddr;
use punchport::{PortRange, QuicAddr};
use punchport_node::{Node, NodeEvent, PeerConfig, RelayConfig, TransportKind};

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A free loopback UDP port outside `range`: the stand-in for 443.
pub fn decoy_port(range: PortRange) -> u16 {
    loop {
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("bind an ephemeral port")
            .port();
        if !range.contains(port) {
            return port;
        }
    }
}

/// A relay on loopback and its address with `/p2p/`.
pub async fn relay() -> (Node, Multiaddr) {
    let mut relay = RelayConfig::loopback(0).spawn().expect("relay starts");
    let addr = relay.wait_for_listen_addr().await.expect("relay listens");
    (relay, addr)
}

/// What one punch between two fresh peers showed.
#[derive(Debug, Default)]
pub struct Punch {
    /// Whether both sides reported a direct connection.
    pub direct: bool,
    /// The remote port of every direct connection, as each side saw it.
    pub remote_ports: Vec<u16>,
    /// Milliseconds from relayed to direct, as the dialing side saw it.
    pub elapsed_ms: Option<u64>,
    /// Punch failures reported by either side.
    pub failures: Vec<String>,
}

/// Two fresh peers, each with a decoy listener outside `range` and a punch
/// socket inside it: A reserves on the relay, B dials A through it, and DCUtR
/// upgrades the connection.
pub async fn punch(relay: &Multiaddr, kind: TransportKind, range: PortRange) -> Punch {
    let peer = |decoy: u16| {
        let listen: Multiaddr = format!("/ip4/127.0.0.1/udp/{decoy}/quic-v1")
            .parse()
            .unwrap();
        PeerConfig::new(relay.clone())
            .unwrap()
            .listen([listen])
            .unwrap()
            .punch_range(range)
            .punch_ip([127, 0, 0, 1].into())
            .transport(kind)
    };
    let mut a = peer(decoy_port(range)).spawn().expect("peer A starts");
    a.wait_for_ready().await.expect("A holds a reservation");
    let mut b = peer(decoy_port(range))
        .dial(a.peer_id())
        .spawn()
        .expect("peer B starts");
    let (a, b) = tokio::join!(watch(&mut a), watch(&mut b));
    Punch {
        direct: a.direct && b.direct,
        remote_ports: a.remote_ports.into_iter().chain(b.remote_ports).collect(),
        elapsed_ms: b.elapsed_ms,
        failures: a.failures.into_iter().chain(b.failures).collect(),
    }
}

/// Follows a peer's events until it has been direct for a moment (so that the
/// simultaneous second connection shows too), or fails, or 10 s pass.
async fn watch(node: &mut Node) -> Punch {
    let mut seen = Punch::default();
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, node.next_event()).await {
        match event {
            NodeEvent::Connection { remote_address, .. } => {
                let port = QuicAddr::parse(&remote_address)
                    .expect("a QUIC address")
                    .socket
                    .port();
                seen.remote_ports.push(port);
            }
            NodeEvent::Direct { elapsed_ms, .. } => {
                seen.direct = true;
                seen.elapsed_ms = Some(elapsed_ms);
                deadline = tokio::time::Instant::now() + Duration::from_millis(300);
            }
            NodeEvent::PunchFailed { error, .. } => {
                seen.failures.push(error);
                break;
            }
            _ => {}
        }
    }
    seen
}
