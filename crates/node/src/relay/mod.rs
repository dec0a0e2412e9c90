//! The relay node: circuit relay v2 server, identify and ping.
//!
//! The server is libp2p-relay's behind [`punchport::relay::Behaviour`], which
//! keeps one reserving connection per peer (a peer that restarts is
//! reachable at once), sends a destination one circuit request at a time,
//! and counts what the relay holds; the node logs those counts as a
//! `relay load` line at most once a second, when they change.

use std::{collections::HashSet, time::Duration};

use futures::StreamExt;
use libp2p::{
    Multiaddr, SwarmBuilder, identify,
    identity::Keypair,
    ping, relay,
    swarm::{NetworkBehaviour, SwarmEvent},
};
use tokio::sync::mpsc;

use crate::{
    ConfigError, Node, NodeEvent, PROTOCOL_VERSION,
    event::{send, with_peer_id},
    keypair_from_seed,
    metrics::NodeMetrics,
};
use libp2p::metrics::Recorder;

/// Limits of the relay server.
///
/// The defaults are libp2p-relay's: 128 reservations (4 per peer) of one hour
/// each, 16 circuits (4 per peer) of at most 2 minutes and 128 KiB each, and
/// rate limits per peer and per IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayLimits {
    /// Reservations held at once.
    pub max_reservations: usize,
    /// Reservations one peer may hold at once.
    pub max_reservations_per_peer: usize,
    /// How long a reservation lasts before the peer has to renew it.
    pub reservation_duration: Duration,
    /// Circuits open at once.
    pub max_circuits: usize,
    /// Circuits one peer may have open at once.
    pub max_circuits_per_peer: usize,
    /// How long a circuit may stay open.
    pub max_circuit_duration: Duration,
    /// How many bytes a circuit may carry in each direction.
    pub max_circuit_bytes: u64,
    /// Whether reservations and circuits are rate-limited per peer and per IP
    /// (libp2p's defaults). Off for many peers behind one IP, as in tests.
    pub rate_limits: bool,
}

impl Default for RelayLimits {
    fn default() -> Self {
        let relay = relay::Config::default();
        Self {
            max_reservations: relay.max_reservations,
            max_reservations_per_peer: relay.max_reservations_per_peer,
            reservation_duration: relay.reservation_duration,
            max_circuits: relay.max_circuits,
            max_circuits_per_peer: relay.max_circuits_per_peer,
            max_circuit_duration: relay.max_circuit_duration,
            max_circuit_bytes: relay.max_circuit_bytes,
            rate_limits: true,
        }
    }
}

impl RelayLimits {
    /// Generous limits without rate limiting, for tests and labs where every
    /// peer comes from one IP.
    pub fn relaxed() -> Self {
        Self {
            max_reservations: 1024,
            max_reservations_per_peer: 16,
            max_circuits: 1024,
            max_circuits_per_peer: 64,
            max_circuit_duration: Duration::from_secs(600),
            max_circuit_bytes: 1 << 24,
            rate_limits: false,
            ..Self::default()
        }
    }

    fn to_config(&self) -> relay::Config {
        let defaults = relay::Config::default();
        let (reservation_rate_limiters, circuit_src_rate_limiters) = if self.rate_limits {
            (
                defaults.reservation_rate_limiters,
                defaults.circuit_src_rate_limiters,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        relay::Config {
            max_reservations: self.max_reservations,
            max_reservations_per_peer: self.max_reservations_per_peer,
            reservation_duration: self.reservation_duration,
            reservation_rate_limiters,
            max_circuits: self.max_circuits,
            max_circuits_per_peer: self.max_circuits_per_peer,
            max_circuit_duration: self.max_circuit_duration,
            max_circuit_bytes: self.max_circuit_bytes,
            circuit_src_rate_limiters,
        }
    }
}

/// Configuration of a relay node.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The relay's identity.
    pub keypair: Keypair,
    /// Where it listens, for example `/ip4/0.0.0.0/udp/443/quic-v1`.
    pub listen: Vec<Multiaddr>,
    /// The addresses it announces as reachable. Empty: its listen addresses.
    pub external: Vec<Multiaddr>,
    /// Limits of the relay server.
    pub limits: RelayLimits,
    /// Where to serve Prometheus metrics (`/metrics`), if anywhere.
    pub metrics_address: Option<std::net::SocketAddr>,
    /// The peers that may reserve; `None`: any peer.
    pub allow: Option<std::collections::HashSet<libp2p::PeerId>>,
}

impl RelayConfig {
    /// A relay with `keypair` listening on `listen`, default limits.
    pub fn new(keypair: Keypair, listen: Vec<Multiaddr>) -> Self {
        Self {
            keypair,
            listen,
            external: Vec::new(),
            limits: RelayLimits::default(),
            metrics_address: None,
            allow: None,
        }
    }

    /// A relay on `127.0.0.1` (port chosen by the system) with relaxed limits
    /// and the identity derived from `seed`: for tests and the demo.
    pub fn loopback(seed: u8) -> Self {
        let listen = "/ip4/127.0.0.1/udp/0/quic-v1"
            .parse()
            .expect("a valid multiaddr");
        Self {
            limits: RelayLimits::relaxed(),
            ..Self::new(keypair_from_seed(seed), vec![listen])
        }
    }

    /// Starts the relay as a tokio task.
    pub fn spawn(self) -> Result<Node, ConfigError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let peer_id = self.keypair.public().to_peer_id();
        let swarm = self.build()?;
        let task = tokio::spawn(async move {
            if let Err(error) =
                run(swarm, self.listen, self.external, self.metrics_address, tx).await
            {
                tracing::error!(%error, "relay stopped");
            }
        });
        Ok(Node::new(peer_id, rx, task))
    }

    /// Runs the relay until it fails, reporting to `events`.
    pub async fn run(self, events: mpsc::UnboundedSender<NodeEvent>) -> Result<(), ConfigError> {
        let swarm = self.build()?;
        run(
            swarm,
            self.listen,
            self.external,
            self.metrics_address,
            events,
        )
        .await
    }

    fn build(&self) -> Result<libp2p::Swarm<RelayBehaviour>, ConfigError> {
        let mut limits = self.limits.to_config();
        if let Some(allow) = self.allow.clone() {
            // Consulted first: a refused peer does not use up rate limits.
            limits.reservation_rate_limiters.insert(
                0,
                Box::new(move |peer: libp2p::PeerId, addr: &Multiaddr, _| {
                    let allowed = allow.contains(&peer);
                    if !allowed {
                        tracing::warn!(%peer, %addr, "refused a reservation: the peer is not on the allow-list (--allow-peer)");
                    }
                    allowed
                }),
            );
        }
        let swarm = SwarmBuilder::with_existing_identity(self.keypair.clone())
            .with_tokio()
            .with_quic()
            .with_behaviour(|key| RelayBehaviour {
                relay: punchport::relay::Behaviour::new(key.public().to_peer_id(), limits),
                identify: identify::Behaviour::new(identify::Config::new(
                    PROTOCOL_VERSION.into(),
                    key.public(),
                )),
                ping: ping::Behaviour::default(),
            })
            .map_err(|e| ConfigError::Swarm(e.to_string()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        Ok(swarm)
    }
}

/// How often the relay may log its `relay load` line.
const LOAD_INTERVAL: Duration = Duration::from_secs(1);

#[derive(NetworkBehaviour)]
struct RelayBehaviour {
    relay: punchport::relay::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

async fn run(
    mut swarm: libp2p::Swarm<RelayBehaviour>,
    listen: Vec<Multiaddr>,
    external: Vec<Multiaddr>,
    metrics_address: Option<std::net::SocketAddr>,
    events: mpsc::UnboundedSender<NodeEvent>,
) -> Result<(), ConfigError> {
    let peer_id = *swarm.local_peer_id();
    let metrics = match metrics_address {
        Some(addr) => {
            let metrics = NodeMetrics::new();
            let bound = crate::metrics::serve(addr, metrics.registry.clone())
                .await
                .map_err(|e| ConfigError::Listen {
                    addr: Multiaddr::empty(),
                    reason: format!("metrics endpoint {addr}: {e}"),
                })?;
            send(&events, NodeEvent::Metrics { address: bound });
            Some(metrics)
        }
        None => None,
    };
    if listen.len() < 2 {
        tracing::info!(
            "the relay listens on one address: a peer behind a NAT that maps endpoint-dependently sees its port rewritten but cannot tell that from a busy port-preserving NAT, so its birthday punch waits for a plain punch to fail first (about 5 s). A second UDP port (e.g. --listen /ip4/0.0.0.0/udp/4443/quic-v1) lets peers classify their NAT at once"
        );
    }
    let mut waiting = HashSet::new();
    for addr in listen {
        let id = swarm
            .listen_on(addr.clone())
            .map_err(|e| ConfigError::Listen {
                addr,
                reason: e.to_string(),
            })?;
        waiting.insert(id);
    }
    let announce_listen_addrs = external.is_empty();
    for addr in external {
        swarm.add_external_address(addr);
    }
    let mut load_tick = tokio::time::interval(LOAD_INTERVAL);
    let mut logged_load = punchport::relay::Load::default();
    loop {
        let event = tokio::select! {
            event = swarm.select_next_some() => event,
            _ = load_tick.tick() => {
                let load = swarm.behaviour().relay.load();
                if *load != logged_load {
                    logged_load = load.clone();
                    tracing::info!("relay load {load}");
                }
                continue;
            }
        };
        if let Some(metrics) = &metrics {
            metrics.libp2p.record(&event);
            match &event {
                SwarmEvent::Behaviour(RelayBehaviourEvent::Relay(e)) => metrics.libp2p.record(e),
                SwarmEvent::Behaviour(RelayBehaviourEvent::Identify(e)) => metrics.libp2p.record(e),
                SwarmEvent::Behaviour(RelayBehaviourEvent::Ping(e)) => metrics.libp2p.record(e),
                _ => {}
            }
        }
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                if announce_listen_addrs {
                    swarm.add_external_address(address.clone());
                }
                send(
                    &events,
                    NodeEvent::Listening {
                        address: with_peer_id(address, peer_id),
                        punch_socket: false,
                    },
                );
                if waiting.remove(&listener_id) && waiting.is_empty() {
                    send(&events, NodeEvent::Ready { peer_id });
                }
            }
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                tracing::warn!(?addresses, ?reason, "listener closed");
            }
            SwarmEvent::Behaviour(RelayBehaviourEvent::Relay(event)) => {
                tracing::info!(?event, "relay");
            }
            event => tracing::debug!(?event),
        }
    }
}
