//! What a peer knows while it runs, and how it reacts to swarm events.
//!
//! `relay_link` keeps the relay connection and the reservation (or the
//! dial through the relay); `punching` reports how punches went (from
//! punchport's behaviour, or for the stock control from `stock`) and
//! punches again when asked to persist.

mod punching;
mod relay_link;
mod stock;

use std::{
    collections::{HashMap, HashSet},
    time::Instant,
};

use libp2p::{
    PeerId, Swarm,
    core::transport::ListenerId,
    identify,
    metrics::Recorder,
    ping, relay,
    swarm::{ConnectionId, SwarmEvent},
};
use punchport::Observation;
use tokio::sync::mpsc;

use super::{
    PeerConfig,
    behaviour::{PeerBehaviour, PeerBehaviourEvent},
};
use crate::{
    NodeEvent,
    event::{send, with_peer_id},
    metrics::NodeMetrics,
};

/// Where the peer stands with its relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relay {
    /// Not connected; a dial is due at the next retry tick.
    Disconnected,
    /// Dialing or connected, waiting for identify so that our observed
    /// address reaches DCUtR before any circuit opens.
    AwaitingIdentify,
    /// Identified; reservation or circuit requested.
    Ready,
}

/// With `persist`: the first wait before punching again after a failure.
const FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_secs(2);
/// With `persist`: the longest wait.
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a reservation waits for a probe of the relay's other address.
const PROBE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

pub(super) struct State {
    config: PeerConfig,
    events: mpsc::UnboundedSender<NodeEvent>,
    relay: Relay,
    announced_ready: bool,
    circuit_listener: Option<ListenerId>,
    /// The pending dial to the target through the relay.
    circuit_dial: Option<ConnectionId>,
    /// Direct connections per peer.
    direct: HashMap<PeerId, HashSet<ConnectionId>>,
    /// Relayed connections and their peers, to tell what a ping went over
    /// and which connections to close to punch again.
    relayed_connections: HashMap<ConnectionId, PeerId>,
    /// The stock control's punches (port-aware peers have the behaviour's).
    stock: stock::StockPunches,
    /// The stock control's punch listeners (port-aware peers have the
    /// transport's table).
    stock_punch_listeners: HashSet<ListenerId>,
    /// With `persist`: when to dial the target through the relay again.
    repunch_at: Option<Instant>,
    /// With `persist`: the wait after the next failed punch.
    backoff: std::time::Duration,
    /// When to ask the relay for a reservation again.
    reserve_at: Option<Instant>,
    /// The wait after the next lost reservation.
    reserve_backoff: std::time::Duration,
    /// The relay identified us while a probe was under way: reserve once it
    /// is done, or at this instant at the latest.
    ready_after_probe: Option<Instant>,
    metrics: Option<NodeMetrics>,
}

impl State {
    pub(super) fn new(
        config: PeerConfig,
        events: mpsc::UnboundedSender<NodeEvent>,
        metrics: Option<NodeMetrics>,
        stock_punch_listeners: HashSet<ListenerId>,
    ) -> Self {
        Self {
            config,
            events,
            relay: Relay::Disconnected,
            announced_ready: false,
            circuit_listener: None,
            circuit_dial: None,
            direct: HashMap::new(),
            relayed_connections: HashMap::new(),
            stock: stock::StockPunches::default(),
            stock_punch_listeners,
            repunch_at: None,
            backoff: FIRST_BACKOFF,
            reserve_at: None,
            reserve_backoff: FIRST_BACKOFF,
            ready_after_probe: None,
            metrics,
        }
    }

    pub(super) fn on_event(
        &mut self,
        swarm: &mut Swarm<PeerBehaviour>,
        event: SwarmEvent<PeerBehaviourEvent>,
    ) {
        if let Some(metrics) = &self.metrics {
            metrics.libp2p.record(&event);
        }
        let relay_peer = self.config.relay_peer;
        match event {
            SwarmEvent::NewListenAddr {
                address,
                listener_id,
            } => {
                let punch_socket = match swarm.behaviour().punchport.as_ref() {
                    Some(dcutr) => dcutr
                        .punch_sockets()
                        .all()
                        .iter()
                        .any(|s| s.listener == listener_id),
                    None => self.stock_punch_listeners.contains(&listener_id),
                };
                send(
                    &self.events,
                    NodeEvent::Listening {
                        address: with_peer_id(address, *swarm.local_peer_id()),
                        punch_socket,
                    },
                );
            }
            SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == relay_peer => {
                tracing::info!(relay=%peer_id, "connected to the relay");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                ..
            } if endpoint.is_relayed() => {
                if self.circuit_dial == Some(connection_id) {
                    self.circuit_dial = None;
                }
                self.relayed_connections.insert(connection_id, peer_id);
                self.stock.relayed(peer_id, Instant::now());
                send(
                    &self.events,
                    NodeEvent::Relayed {
                        peer: peer_id,
                        cpu_us: crate::event::cpu_us(),
                    },
                );
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                ..
            } => {
                self.direct
                    .entry(peer_id)
                    .or_default()
                    .insert(connection_id);
                self.on_connection(swarm, peer_id, connection_id, &endpoint);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } if peer_id == relay_peer => {
                tracing::warn!(relay=%peer_id, "lost the relay; reconnecting");
                self.relay = Relay::Disconnected;
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                endpoint,
                connection_id,
                cause,
                ..
            } => {
                let relayed = self.relayed_connections.remove(&connection_id).is_some();
                send(
                    &self.events,
                    NodeEvent::Disconnected {
                        peer: peer_id,
                        relayed: endpoint.is_relayed(),
                        cause: cause.map(|c| c.to_string()),
                    },
                );
                if relayed {
                    // Port-aware peers hear of a punch that this ends from
                    // the behaviour.
                    if !swarm.behaviour().punchport.is_enabled()
                        && let Some(attempts) = self.stock.relayed_closed(peer_id)
                    {
                        self.on_punch_failed(
                            swarm,
                            peer_id,
                            "the relayed connection closed before a direct connection opened"
                                .to_owned(),
                            attempts,
                        );
                    }
                } else if let Some(ids) = self.direct.get_mut(&peer_id) {
                    ids.remove(&connection_id);
                    if ids.is_empty() {
                        self.direct.remove(&peer_id);
                        self.on_direct_lost(swarm, peer_id);
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } if peer == relay_peer && !swarm.is_connected(&relay_peer) => {
                tracing::warn!(%error, "cannot reach the relay; retrying");
                self.relay = Relay::Disconnected;
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } if self.circuit_dial == Some(connection_id) => {
                tracing::warn!(%error, "dialing through the relay failed; retrying");
                self.circuit_dial = None;
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } if Some(listener_id) == self.circuit_listener => {
                self.circuit_listener = None;
                let error = match reason {
                    Ok(()) => "the relay closed the reservation".to_owned(),
                    Err(e) => e.to_string(),
                };
                tracing::warn!(%error, backoff = ?self.reserve_backoff, "lost the reservation; reserving again later");
                send(
                    &self.events,
                    NodeEvent::ReservationFailed {
                        relay: relay_peer,
                        error,
                    },
                );
                // Reserve again on a later tick, waiting longer each time, so
                // that a relay that refuses is not asked in a tight loop.
                self.reserve_at = Some(Instant::now() + self.reserve_backoff);
                self.reserve_backoff = (self.reserve_backoff * 2).min(MAX_BACKOFF);
            }
            SwarmEvent::Dialing {
                peer_id: Some(peer),
                ..
            } => self.stock.dialing(peer),
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(swarm, event),
            event => tracing::trace!(?event),
        }
    }

    pub(super) fn on_behaviour_event(
        &mut self,
        swarm: &mut Swarm<PeerBehaviour>,
        event: PeerBehaviourEvent,
    ) {
        if let Some(metrics) = &self.metrics {
            match &event {
                PeerBehaviourEvent::Identify(e) => metrics.libp2p.record(e),
                PeerBehaviourEvent::Ping(e) => metrics.libp2p.record(e),
                PeerBehaviourEvent::Dcutr(e) => metrics.libp2p.record(e),
                PeerBehaviourEvent::Punchport(e) => metrics.punchport.record(e),
                PeerBehaviourEvent::RelayClient(_) => {}
            }
        }
        match event {
            PeerBehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                connection_id,
                info,
            }) => {
                let observation = swarm
                    .behaviour_mut()
                    .punchport
                    .as_mut()
                    .map(|dcutr| dcutr.on_identify(connection_id, &info));
                if peer_id != self.config.relay_peer {
                    return;
                }
                tracing::info!(observed=%info.observed_addr, "the relay observes us");
                let probing = swarm
                    .behaviour()
                    .punchport
                    .as_ref()
                    .is_some_and(|dcutr| dcutr.probing());
                match observation {
                    // The punch socket moves (or may) and the relay is dialed
                    // again from it: reserve once that is settled.
                    Some(observation) if observation.unsettled() => {}
                    // A probe connection to the relay's other address (or
                    // to its address of the other family) is open: reserve,
                    // or dial through the relay, once it is observed and
                    // closed (its identify comes back here). So no circuit
                    // request meets it (a go relay may send STOP on it, and
                    // the relay client denies STOP without a reservation),
                    // and DCUtR's candidates, taken when the relayed
                    // connection opens, hold every family's.
                    _ if probing => {
                        self.ready_after_probe
                            .get_or_insert(Instant::now() + PROBE_WAIT);
                    }
                    _ => self.on_relay_identified(swarm),
                }
            }
            PeerBehaviourEvent::Punchport(punchport::Event::Nat(status)) => send(
                &self.events,
                NodeEvent::Nat {
                    mapping: status.mapping.as_str().to_owned(),
                    port_preserved: status.port_preserved,
                },
            ),
            PeerBehaviourEvent::Punchport(punchport::Event::Attempt(report)) => {
                send(&self.events, NodeEvent::attempt(&report))
            }
            PeerBehaviourEvent::Punchport(punchport::Event::Mapping(Observation::Rewritten {
                local,
                observed,
                moving_to: Some(to),
                ..
            })) => send(
                &self.events,
                NodeEvent::PunchPortMoved {
                    from: local,
                    observed,
                    to,
                },
            ),
            PeerBehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Ok(rtt),
            }) if peer != self.config.relay_peer => send(
                &self.events,
                NodeEvent::Ping {
                    peer,
                    relayed: self.relayed_connections.contains_key(&connection),
                    rtt_ms: rtt.as_millis() as u64,
                },
            ),
            PeerBehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                ..
            }) => {
                self.reserve_backoff = FIRST_BACKOFF;
                self.announce_ready(swarm);
            }
            PeerBehaviourEvent::Punchport(punchport::Event::Dcutr(event)) => {
                tracing::debug!(?event, "DCUtR");
            }
            PeerBehaviourEvent::Dcutr(event) => self.on_stock_dcutr(swarm, event),
            PeerBehaviourEvent::Punchport(punchport::Event::Candidate(verdict)) => {
                tracing::debug!(?verdict, "candidate");
            }
            PeerBehaviourEvent::Punchport(punchport::Event::Direct(report)) => {
                let local_port = report
                    .local_addr
                    .as_ref()
                    .and_then(|a| punchport::QuicAddr::parse(a).ok())
                    .map(|q| q.socket.port());
                self.on_punched(
                    report.remote_peer_id,
                    report.since_relayed,
                    report.remote_addr,
                    local_port,
                    report.attempts.into(),
                );
            }
            PeerBehaviourEvent::Punchport(punchport::Event::PunchFailed(report)) => {
                self.on_punch_failed(
                    swarm,
                    report.remote_peer_id,
                    crate::event::chain(&report.error),
                    report.attempts.into(),
                );
            }
            event => tracing::trace!(?event),
        }
    }
}
