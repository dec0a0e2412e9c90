//! The peer's event loop.

use std::{
    collections::{HashMap, HashSet},
    time::Instant,
};

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, Swarm,
    core::ConnectedPoint,
    core::transport::ListenerId,
    identify,
    multiaddr::Protocol,
    ping, relay,
    swarm::{
        ConnectionId, DialError, SwarmEvent,
        dial_opts::{DialOpts, PeerCondition},
    },
};
use punchport::{Family, QuicAddr, dcutr::Observation};
use tokio::sync::mpsc;

use super::{
    PeerConfig, TransportKind,
    behaviour::{PeerBehaviour, PeerBehaviourEvent},
};
use crate::{
    ConfigError, NodeEvent,
    event::{send, with_peer_id},
    metrics::NodeMetrics,
};
use libp2p::metrics::Recorder;

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

struct Relayed {
    at: Instant,
    dials: u32,
}

struct State {
    config: PeerConfig,
    events: mpsc::UnboundedSender<NodeEvent>,
    relay: Relay,
    announced_ready: bool,
    circuit_listener: Option<ListenerId>,
    /// The pending dial to the target through the relay.
    circuit_dial: Option<ConnectionId>,
    /// The relayed connection to each peer: when it was established, and
    /// how many direct dials followed.
    relayed: HashMap<PeerId, Relayed>,
    /// Direct connections per peer.
    direct: HashMap<PeerId, HashSet<ConnectionId>>,
    /// Peers whose first direct connection was reported since the relayed one.
    reported_direct: HashSet<PeerId>,
    /// Peers whose punch failure was reported over the current relayed connection.
    failed_reported: HashSet<PeerId>,
    /// Relayed connections and their peers, to tell what a ping went over.
    relayed_connections: HashMap<ConnectionId, PeerId>,
    /// With `persist`: when to dial the target through the relay again.
    repunch_at: Option<Instant>,
    /// With `persist`: the wait after the next failed punch.
    backoff: std::time::Duration,
    /// When to ask the relay for a reservation again.
    reserve_at: Option<Instant>,
    /// The wait after the next lost reservation.
    reserve_backoff: std::time::Duration,
    metrics: Option<NodeMetrics>,
}

pub(super) async fn run(
    mut swarm: Swarm<PeerBehaviour>,
    config: PeerConfig,
    events: mpsc::UnboundedSender<NodeEvent>,
) -> Result<(), ConfigError> {
    let mut waiting = listen(&mut swarm, &config)?;
    if let (Some(ip), Some(dcutr)) = (config.announce_ip, swarm.behaviour_mut().punchport.as_mut())
    {
        let addr = QuicAddr {
            socket: (ip, 0).into(),
            peer_id: None,
        };
        dcutr
            .add_announced_address(addr.to_multiaddr())
            .map_err(ConfigError::RelayAddr)?;
    }
    let metrics = match config.metrics_address {
        Some(addr) => {
            let metrics = NodeMetrics::new();
            let bound = crate::metrics::serve(addr, metrics.registry.clone())
                .await
                .map_err(|e| ConfigError::Listen {
                    addr: QuicAddr {
                        socket: addr,
                        peer_id: None,
                    }
                    .to_multiaddr(),
                    reason: format!("metrics endpoint: {e}"),
                })?;
            send(&events, NodeEvent::Metrics { address: bound });
            Some(metrics)
        }
        None => None,
    };
    let mut retry = tokio::time::interval(config.retry_interval);
    let mut state = State {
        config,
        events,
        relay: Relay::Disconnected,
        announced_ready: false,
        circuit_listener: None,
        circuit_dial: None,
        relayed: HashMap::new(),
        direct: HashMap::new(),
        reported_direct: HashSet::new(),
        failed_reported: HashSet::new(),
        relayed_connections: HashMap::new(),
        repunch_at: None,
        backoff: FIRST_BACKOFF,
        reserve_at: None,
        reserve_backoff: FIRST_BACKOFF,
        metrics,
    };
    loop {
        tokio::select! {
            event = swarm.select_next_some() => {
                if let SwarmEvent::NewListenAddr { listener_id, .. } = &event {
                    waiting.remove(listener_id);
                }
                state.on_event(&mut swarm, event);
            }
            _ = retry.tick(), if waiting.is_empty() => state.on_tick(&mut swarm),
        }
    }
}

/// Opens the listeners: the ordinary ones and the punch socket. Returns the
/// listener ids still to report an address.
fn listen(
    swarm: &mut Swarm<PeerBehaviour>,
    config: &PeerConfig,
) -> Result<HashSet<ListenerId>, ConfigError> {
    let mut ids = HashSet::new();
    let open = |swarm: &mut Swarm<PeerBehaviour>, addr: Multiaddr| {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| ConfigError::Listen {
                addr,
                reason: e.to_string(),
            })
    };
    let range = config.punch_range;
    let is_punch = |addr: &Multiaddr| {
        QuicAddr::parse(addr).is_ok_and(|q| q.socket.port() == 0 || range.contains(q.socket.port()))
    };
    for addr in &config.listen {
        ids.insert(open(swarm, addr.clone())?);
    }
    if config.listen.iter().any(is_punch) {
        return Ok(ids);
    }
    let punch_addr = |port| {
        QuicAddr {
            socket: (config.punch_ip, port).into(),
            peer_id: None,
        }
        .to_multiaddr()
    };
    match config.transport {
        // Port 0 binds the first free port of the range.
        TransportKind::PortAware => {
            ids.insert(open(swarm, punch_addr(0))?);
        }
        // libp2p-quic binds exactly what it is given: try the ports in turn.
        TransportKind::Stock => {
            let mut last = None;
            for port in range.ports() {
                match open(swarm, punch_addr(port)) {
                    Ok(id) => {
                        ids.insert(id);
                        last = None;
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            if let Some(e) = last {
                return Err(e);
            }
        }
    }
    Ok(ids)
}

impl State {
    fn on_tick(&mut self, swarm: &mut Swarm<PeerBehaviour>) {
        if self.reserve_at.is_some_and(|at| Instant::now() >= at) && self.relay == Relay::Ready {
            self.reserve_at = None;
            self.relay = Relay::AwaitingIdentify;
            self.on_relay_identified(swarm);
        }
        if let (Relay::Ready, Some(target)) = (self.relay, self.config.dial) {
            self.dial_target(swarm, target);
        }
        if self.relay == Relay::Disconnected {
            tracing::debug!(relay=%self.config.relay, "dialing the relay");
            let opts = DialOpts::peer_id(self.config.relay_peer)
                .addresses(vec![self.config.relay.clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            match swarm.dial(opts) {
                Ok(()) => self.relay = Relay::AwaitingIdentify,
                // Connected or dialing already (the punch socket moved and
                // redialed it): wait for identify as after our own dial.
                Err(DialError::DialPeerConditionFalse(_)) => self.relay = Relay::AwaitingIdentify,
                Err(error) => tracing::warn!(%error, "cannot dial the relay"),
            }
        }
    }

    /// Prints `ready`, once.
    fn announce_ready(&mut self, swarm: &Swarm<PeerBehaviour>) {
        if !self.announced_ready {
            self.announced_ready = true;
            send(
                &self.events,
                NodeEvent::Ready {
                    peer_id: *swarm.local_peer_id(),
                },
            );
        }
    }

    /// Dials `target` through the relay unless a relayed connection or such
    /// a dial exists.
    fn dial_target(&mut self, swarm: &mut Swarm<PeerBehaviour>, target: PeerId) {
        if self.relayed.contains_key(&target)
            || self.circuit_dial.is_some()
            || self.repunch_at.is_some_and(|at| Instant::now() < at)
        {
            return;
        }
        self.repunch_at = None;
        let addr = self
            .config
            .relay
            .clone()
            .with(Protocol::P2pCircuit)
            .with(Protocol::P2p(target));
        let opts = DialOpts::peer_id(target).addresses(vec![addr]).build();
        let id = opts.connection_id();
        match swarm.dial(opts) {
            Ok(()) => self.circuit_dial = Some(id),
            Err(error) => tracing::warn!(%error, "cannot dial through the relay"),
        }
    }

    fn on_relay_identified(&mut self, swarm: &mut Swarm<PeerBehaviour>) {
        if self.relay == Relay::Ready {
            return;
        }
        self.relay = Relay::Ready;
        let circuit = self.config.relay.clone().with(Protocol::P2pCircuit);
        match self.config.dial {
            None if self.circuit_listener.is_some() => {}
            None => {
                self.reserve_at = None;
                match swarm.listen_on(circuit) {
                    Ok(id) => self.circuit_listener = Some(id),
                    Err(error) => tracing::warn!(%error, "cannot listen on the relay circuit"),
                }
            }
            Some(target) => {
                self.announce_ready(swarm);
                self.dial_target(swarm, target);
            }
        }
    }

    fn local_port(&self, swarm: &Swarm<PeerBehaviour>, endpoint: &ConnectedPoint) -> Option<u16> {
        match endpoint {
            ConnectedPoint::Listener { local_addr, .. } => {
                QuicAddr::parse(local_addr).ok().map(|q| q.socket.port())
            }
            // Port-aware dials leave from the punch socket; stock ones from a
            // listener that libp2p-quic does not name.
            ConnectedPoint::Dialer { address, .. } => {
                let family = Family::of(QuicAddr::parse(address).ok()?.socket.ip());
                swarm.behaviour().punchport.as_ref()?.punch_port(family)
            }
        }
    }

    fn on_event(
        &mut self,
        swarm: &mut Swarm<PeerBehaviour>,
        event: SwarmEvent<PeerBehaviourEvent>,
    ) {
        if let Some(metrics) = &self.metrics {
            metrics.libp2p.record(&event);
        }
        let relay_peer = self.config.relay_peer;
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                send(
                    &self.events,
                    NodeEvent::Listening {
                        address: with_peer_id(address, *swarm.local_peer_id()),
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
                self.reported_direct.remove(&peer_id);
                self.failed_reported.remove(&peer_id);
                self.relayed.insert(
                    peer_id,
                    Relayed {
                        at: Instant::now(),
                        dials: 0,
                    },
                );
                send(&self.events, NodeEvent::Relayed { peer: peer_id });
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
                self.on_direct(swarm, peer_id, &endpoint);
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
                    self.relayed.remove(&peer_id);
                    // Closed before the punch ended: that punch failed.
                    if !self.reported_direct.contains(&peer_id)
                        && !self.failed_reported.remove(&peer_id)
                    {
                        tracing::warn!(peer=%peer_id, "the relayed connection closed before a direct connection opened");
                        send(
                            &self.events,
                            NodeEvent::PunchFailed {
                                peer: peer_id,
                                error: "the relayed connection closed before a direct connection opened".to_owned(),
                                attempts: 0,
                            },
                        );
                        self.on_punch_failed(swarm, peer_id);
                    }
                } else if let Some(ids) = self.direct.get_mut(&peer_id) {
                    ids.remove(&connection_id);
                    if ids.is_empty() {
                        self.direct.remove(&peer_id);
                        self.reported_direct.remove(&peer_id);
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
            } => {
                // After the relayed connection, every dial to the peer is a
                // DCUtR attempt.
                if let Some(relayed) = self.relayed.get_mut(&peer) {
                    relayed.dials += 1;
                }
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(swarm, event),
            event => tracing::trace!(?event),
        }
    }

    fn on_direct(&mut self, swarm: &Swarm<PeerBehaviour>, peer: PeerId, endpoint: &ConnectedPoint) {
        let local_port = self.local_port(swarm, endpoint);
        let remote_address = endpoint.get_remote_address().clone();
        send(
            &self.events,
            NodeEvent::Connection {
                peer,
                endpoint: if endpoint.is_dialer() {
                    "dialer"
                } else {
                    "listener"
                }
                .to_owned(),
                remote_address: remote_address.clone(),
                local_port,
            },
        );
        let Some(relayed) = self.relayed.get(&peer) else {
            return;
        };
        if self.reported_direct.insert(peer) {
            if Some(peer) == self.config.dial {
                self.backoff = FIRST_BACKOFF;
            }
            send(
                &self.events,
                NodeEvent::Direct {
                    peer,
                    elapsed_ms: relayed.at.elapsed().as_millis() as u64,
                    remote_address,
                    local_port,
                    attempts: relayed.dials,
                },
            );
        }
    }

    /// With `persist`: the last direct connection to the target closed.
    /// Punch again through a new relayed connection (DCUtR punches once per
    /// relayed connection).
    fn on_direct_lost(&mut self, swarm: &mut Swarm<PeerBehaviour>, peer: PeerId) {
        if !self.config.persist || Some(peer) != self.config.dial {
            return;
        }
        tracing::info!(%peer, "lost the direct connection; punching again through the relay");
        self.close_relayed(swarm, peer);
        self.repunch_at = Some(Instant::now());
    }

    /// With `persist`: the punch to the target failed. Punch again through
    /// a new relayed connection after a backoff.
    fn on_punch_failed(&mut self, swarm: &mut Swarm<PeerBehaviour>, peer: PeerId) {
        if !self.config.persist || Some(peer) != self.config.dial || self.direct.contains_key(&peer)
        {
            return;
        }
        tracing::info!(%peer, backoff = ?self.backoff, "punching again through a new relayed connection");
        self.close_relayed(swarm, peer);
        self.repunch_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    fn close_relayed(&mut self, swarm: &mut Swarm<PeerBehaviour>, peer: PeerId) {
        let relayed: Vec<_> = self
            .relayed_connections
            .iter()
            .filter(|(_, p)| **p == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in relayed {
            swarm.close_connection(id);
        }
    }

    fn dials_to(&self, peer: &PeerId) -> u32 {
        self.relayed.get(peer).map_or(0, |r| r.dials)
    }

    fn on_behaviour_event(&mut self, swarm: &mut Swarm<PeerBehaviour>, event: PeerBehaviourEvent) {
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
                match observation {
                    // The punch socket moves (or may) and the relay is dialed
                    // again from it: reserve once that is settled.
                    Some(observation) if observation.unsettled() => {}
                    _ => self.on_relay_identified(swarm),
                }
            }
            PeerBehaviourEvent::Punchport(punchport::dcutr::Event::Nat(status)) => send(
                &self.events,
                NodeEvent::Nat {
                    mapping: status.mapping.as_str().to_owned(),
                    port_preserved: status.port_preserved,
                },
            ),
            PeerBehaviourEvent::Punchport(punchport::dcutr::Event::Attempt(report)) => {
                send(&self.events, NodeEvent::attempt(&report))
            }
            PeerBehaviourEvent::Punchport(punchport::dcutr::Event::Mapping(
                Observation::Rewritten {
                    local,
                    observed,
                    moving_to: Some(to),
                    ..
                },
            )) => send(
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
            PeerBehaviourEvent::Punchport(punchport::dcutr::Event::Dcutr(event))
            | PeerBehaviourEvent::Dcutr(event) => self.on_dcutr(swarm, event),
            PeerBehaviourEvent::Punchport(punchport::dcutr::Event::Candidate(verdict)) => {
                tracing::debug!(?verdict, "candidate");
            }
            PeerBehaviourEvent::Punchport(punchport::dcutr::Event::PunchFailed {
                remote_peer_id,
                attempts,
                last_error,
            }) => {
                tracing::warn!(peer=%remote_peer_id, %last_error, "hole punch failed");
                self.failed_reported.insert(remote_peer_id);
                self.on_punch_failed(swarm, remote_peer_id);
                send(
                    &self.events,
                    NodeEvent::PunchFailed {
                        peer: remote_peer_id,
                        error: format!("{attempts} direct dials failed; the last: {last_error}"),
                        attempts: self.dials_to(&remote_peer_id),
                    },
                );
            }
            event => tracing::trace!(?event),
        }
    }

    fn on_dcutr(&mut self, swarm: &mut Swarm<PeerBehaviour>, event: libp2p::dcutr::Event) {
        match event.result {
            Ok(connection) => {
                tracing::info!(peer=%event.remote_peer_id, %connection, "hole punch succeeded");
            }
            Err(error) => {
                tracing::warn!(peer=%event.remote_peer_id, %error, "hole punch failed");
                self.failed_reported.insert(event.remote_peer_id);
                self.on_punch_failed(swarm, event.remote_peer_id);
                send(
                    &self.events,
                    NodeEvent::PunchFailed {
                        peer: event.remote_peer_id,
                        error: error.to_string(),
                        attempts: self.dials_to(&event.remote_peer_id),
                    },
                );
            }
        }
    }
}
