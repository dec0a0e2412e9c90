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

use std::{
    net::UdpSocket,
    sync::atomic::{AtomicU16, Ordering},
    time::Duration,
};

use libp2p::Multiaddr;
use punchport::{PortRange, QuicAddr};

use crate::{
    ConfigError, Node, NodeEvent, PeerConfig, PeerSummary, RelayConfig, TransportKind, WaitError,
};

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
///
/// It comes from below Linux's ephemeral range (32768-60999 by default),
/// where no socket bound to port 0 lands, and no two calls of one process
/// return the same port: between this check and the peer's bind, no other
/// socket of the tests running beside it can take the port.
pub fn decoy_port(range: PortRange) -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 24000 + (std::process::id() % 40) as u16 * 200;
    loop {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % 200;
        if !range.contains(port) && UdpSocket::bind(("127.0.0.1", port)).is_ok() {
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

/// What one side of a pair saw.
#[derive(Debug, Clone, Default)]
pub struct Side {
    /// What it reported.
    pub peer: PeerSummary,
    /// Its ordinary listener's port (the stand-in for 443).
    pub decoy_port: u16,
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
        self.a.peer.direct() && self.b.peer.direct()
    }

    /// The remote port of every direct connection, as each side saw it.
    pub fn remote_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.a
            .peer
            .connections
            .iter()
            .chain(&self.b.peer.connections)
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
                .punchport(|c| c.with_range(range))
                .punch_ip([127, 0, 0, 1].into()),
        ))
    };
    let side = || Side {
        peer: PeerSummary::new(),
        decoy_port: decoy_port(range),
    };
    let (mut a_side, mut b_side) = (side(), side());
    let mut a = peer(a_side.decoy_port)?.spawn()?;
    a.wait_for(|e| {
        a_side.peer.record(e);
        matches!(e, NodeEvent::Ready { .. }).then_some(())
    })
    .await?;
    let mut b = peer(b_side.decoy_port)?.dial(a.peer_id()).spawn()?;
    b_side.peer.peer_id = Some(b.peer_id());
    tokio::join!(
        watch(&mut a, &mut a_side.peer),
        watch(&mut b, &mut b_side.peer)
    );
    Ok(Pair {
        a: a_side,
        b: b_side,
    })
}

/// Follows a peer until it has been direct for a moment, or failed, or
/// [`DIRECT_WITHIN`] passed.
async fn watch(node: &mut Node, side: &mut PeerSummary) {
    let mut deadline = tokio::time::Instant::now() + DIRECT_WITHIN;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, node.next_event()).await {
        side.record(&event);
        match event {
            NodeEvent::Direct { .. } => deadline = tokio::time::Instant::now() + SETTLE,
            NodeEvent::PunchFailed { .. } => break,
            _ => {}
        }
    }
}
