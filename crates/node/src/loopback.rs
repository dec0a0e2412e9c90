//! Scenarios on loopback in a few lines: a relay, and pairs of fresh peers
//! that meet through it and punch. The demo and the integration tests use it.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use punchport_node::{TransportKind, loopback};
//!
//! let (_relay, relay_addr) = loopback::relay().await?;
//! let pair = loopback::punch_pair(&relay_addr, TransportKind::PortAware, Default::default()).await?;
//! assert!(pair.direct());
//! # Ok(()) }
//! ```

use std::{net::UdpSocket, time::Duration};

use libp2p::{Multiaddr, PeerId};
use punchport::{PortRange, QuicAddr};

use crate::{ConfigError, Node, NodeEvent, PeerConfig, RelayConfig, TransportKind, WaitError};

/// How long a side may take to become direct.
const DIRECT_WITHIN: Duration = Duration::from_secs(10);
/// How long to keep watching after the first direct connection, so that the
/// other side's simultaneous connection shows too.
const SETTLE: Duration = Duration::from_millis(300);

/// A scenario could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A node did not start.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A node did not get ready.
    #[error(transparent)]
    Wait(#[from] WaitError),
}

/// A free loopback UDP port outside `range`: the stand-in for 443.
pub fn decoy_port(range: PortRange) -> u16 {
    loop {
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .unwrap_or(0);
        if port != 0 && !range.contains(port) {
            return port;
        }
    }
}

/// A relay on loopback and its address with `/p2p/`.
pub async fn relay() -> Result<(Node, Multiaddr), ScenarioError> {
    let mut relay = RelayConfig::loopback(0).spawn()?;
    let addr = relay.wait_for_listen_addr().await?;
    Ok((relay, addr))
}

/// A direct connection as one side reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectConnection {
    /// Whether this side dialed it.
    pub dialer: bool,
    /// The remote socket: the dialed address, or the source of an accepted
    /// connection.
    pub remote_port: u16,
    /// The local port, when known.
    pub local_port: Option<u16>,
}

/// What one side of a pair saw.
#[derive(Debug, Clone, Default)]
pub struct Side {
    /// The peer's id.
    pub peer_id: Option<PeerId>,
    /// Its ordinary listener's port (the stand-in for 443).
    pub decoy_port: u16,
    /// Its punch port, from its listen addresses.
    pub punch_port: Option<u16>,
    /// Milliseconds from relayed to the first direct connection.
    pub elapsed_ms: Option<u64>,
    /// Every direct connection it reported.
    pub connections: Vec<DirectConnection>,
    /// Punch failures it reported.
    pub failures: Vec<String>,
}

/// Two peers that met through the relay and punched: A held the
/// reservation, B dialed A through the relay.
#[derive(Debug, Clone, Default)]
pub struct Pair {
    /// The reserving side (DCUtR's initiator).
    pub a: Side,
    /// The dialing side.
    pub b: Side,
}

impl Pair {
    /// Whether both sides reported a direct connection.
    pub fn direct(&self) -> bool {
        self.a.elapsed_ms.is_some() && self.b.elapsed_ms.is_some()
    }

    /// The remote port of every direct connection, as each side saw it.
    pub fn remote_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.a
            .connections
            .iter()
            .chain(&self.b.connections)
            .map(|c| c.remote_port)
    }
}

/// Two fresh peers, each with a decoy listener outside `range` and a punch
/// socket inside it, all on 127.0.0.1: A reserves on the relay, B dials A
/// through it, and DCUtR upgrades the relayed connection.
pub async fn punch_pair(
    relay: &Multiaddr,
    kind: TransportKind,
    range: PortRange,
) -> Result<Pair, ScenarioError> {
    punch_pair_with(relay, range, |peer| peer.transport(kind)).await
}

/// [`punch_pair`] with both peers' configuration adjusted by `adjust`.
pub async fn punch_pair_with(
    relay: &Multiaddr,
    range: PortRange,
    adjust: impl Fn(PeerConfig) -> PeerConfig,
) -> Result<Pair, ScenarioError> {
    let peer = |decoy: u16| -> Result<PeerConfig, ConfigError> {
        let listen = QuicAddr {
            socket: ([127, 0, 0, 1], decoy).into(),
            peer_id: None,
        };
        Ok(adjust(
            PeerConfig::new(relay.clone())?
                .listen([listen.to_multiaddr()])?
                .punch_range(range)
                .punch_ip([127, 0, 0, 1].into()),
        ))
    };
    let mut a_side = Side {
        decoy_port: decoy_port(range),
        ..Side::default()
    };
    let mut b_side = Side {
        decoy_port: decoy_port(range),
        ..Side::default()
    };
    let mut a = peer(a_side.decoy_port)?.spawn()?;
    a_side.peer_id = Some(a.peer_id());
    a.wait_for(|e| observe(&mut a_side, range, e).then_some(()))
        .await?;
    let mut b = peer(b_side.decoy_port)?.dial(a.peer_id()).spawn()?;
    b_side.peer_id = Some(b.peer_id());
    tokio::join!(
        watch(&mut a, &mut a_side, range),
        watch(&mut b, &mut b_side, range)
    );
    Ok(Pair {
        a: a_side,
        b: b_side,
    })
}

/// Records `event` into `side`; true once the side is ready.
fn observe(side: &mut Side, range: PortRange, event: &NodeEvent) -> bool {
    let port = |addr: &Multiaddr| QuicAddr::parse(addr).ok().map(|q| q.socket.port());
    match event {
        NodeEvent::Listening { address } => {
            if let Some(p) = port(address).filter(|p| range.contains(*p)) {
                side.punch_port = Some(p);
            }
        }
        NodeEvent::Ready { .. } => return true,
        NodeEvent::Connection {
            endpoint,
            remote_address,
            local_port,
            ..
        } => {
            if let Some(remote_port) = port(remote_address) {
                side.connections.push(DirectConnection {
                    dialer: endpoint == "dialer",
                    remote_port,
                    local_port: *local_port,
                });
            }
        }
        NodeEvent::Direct { elapsed_ms, .. } => side.elapsed_ms = Some(*elapsed_ms),
        NodeEvent::PunchFailed { error, .. } => side.failures.push(error.clone()),
        _ => {}
    }
    false
}

/// Follows a peer until it has been direct for a moment, or failed, or
/// [`DIRECT_WITHIN`] passed.
async fn watch(node: &mut Node, side: &mut Side, range: PortRange) {
    let mut deadline = tokio::time::Instant::now() + DIRECT_WITHIN;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, node.next_event()).await {
        observe(side, range, &event);
        match event {
            NodeEvent::Direct { .. } => deadline = tokio::time::Instant::now() + SETTLE,
            NodeEvent::PunchFailed { .. } => break,
            _ => {}
        }
    }
}
