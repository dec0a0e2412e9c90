//! The [`NetworkBehaviour`] that wraps `libp2p_dcutr::Behaviour`.

use std::{
    collections::VecDeque,
    task::{Context, Poll},
};

use libp2p_core::{Endpoint, Multiaddr, transport::PortUse};
use libp2p_identity::PeerId;
use libp2p_swarm::{
    ConnectionDenied, ConnectionId, DialError, FromSwarm, NetworkBehaviour,
    NewExternalAddrCandidate, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    dial_opts::{DialOpts, PeerCondition},
};
use punchport_core::{AddrError, Family, QuicAddr};

use crate::{
    Config,
    attempts::{AttemptReport, Attempts},
    config::CandidateMode,
    filter::{Filter, Source, Stats, Verdict},
    mapping::{Action, Mapping, Observation},
    nat::{MappingKind, NatStatus},
};

/// How many candidates libp2p-dcutr keeps (its LRU's size).
const CANDIDATES: usize = 20;

/// A hole-punch dial refused because the remote advertised more address
/// candidates than libp2p-dcutr ever sends: a peer that does is not playing
/// by the protocol, and dialing its list would send packets wherever it says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the remote advertised {count} address candidates, more than the {max} that DCUtR ever sends: not dialing them"
)]
pub struct TooManyCandidates {
    /// How many it advertised.
    pub count: usize,
    /// The most DCUtR sends.
    pub max: usize,
}

/// What the [`Behaviour`] reports: DCUtR's own events, and the filter's
/// decisions.
#[derive(Debug)]
pub enum Event {
    /// An event of the wrapped `libp2p_dcutr::Behaviour`, unchanged.
    Dcutr(libp2p_dcutr::Event),
    /// The filter decided about an address candidate.
    Candidate(Verdict),
    /// Hole punching to a peer failed on the side that does not initiate
    /// DCUtR (the one that dialed through the relay). DCUtR reports failures
    /// only on the initiating side; this reports the other side once its
    /// dials for every attempt the initiator makes (3) have failed and no
    /// direct connection exists. The relayed connection stays.
    PunchFailed {
        /// The peer that could not be reached directly.
        remote_peer_id: PeerId,
        /// How many direct dials failed.
        attempts: u8,
        /// The last dial's error, in words.
        last_error: String,
    },
    /// An observation told whether the NAT keeps the punch port (see
    /// [`Behaviour::on_identify`]). When it does not, the punch socket
    /// may move to another port of the range (`moving_to`).
    Mapping(Observation),
    /// What the observations say about the NAT in front of the punch
    /// socket changed (see [`Behaviour::on_identify`]).
    Nat(NatStatus),
    /// One hole-punch attempt ended on this side: what was advertised and
    /// dialed, and how it went.
    Attempt(AttemptReport),
}

impl From<libp2p_dcutr::Event> for Event {
    fn from(event: libp2p_dcutr::Event) -> Self {
        Event::Dcutr(event)
    }
}

/// `libp2p_dcutr::Behaviour` behind a candidate filter.
///
/// DCUtR advertises every address candidate the swarm reports. This wrapper
/// decides first: candidates whose port is inside the punch range pass, those
/// outside become `observed IP + punch port` (see
/// [`Config::with_translation`]), and DCUtR is never left with no candidate
/// while a punch socket is bound. Everything else is forwarded to DCUtR as is.
///
/// It learns the punch port from the swarm's listen addresses: a listen
/// address whose port is inside the range is the punch socket.
pub struct Behaviour {
    inner: libp2p_dcutr::Behaviour,
    filter: Filter,
    /// DCUtR's direct dials and their outcomes.
    attempts: Attempts,
    /// Whether the NAT keeps the punch port; moving the punch socket.
    mapping: Mapping,
    events: VecDeque<Event>,
    /// Requests to the swarm (moving the punch socket).
    requests: VecDeque<ToSwarm<Event, THandlerInEvent<Self>>>,
    /// What DCUtR advertises: a mirror of its candidate list (an LRU of 20).
    sent: VecDeque<Multiaddr>,
}

impl Behaviour {
    /// DCUtR for `local_peer_id` behind a filter with the default [`Config`].
    pub fn new(local_peer_id: PeerId) -> Self {
        Self::with_config(local_peer_id, Config::default())
    }

    /// DCUtR for `local_peer_id` behind a filter with `config`.
    pub fn with_config(local_peer_id: PeerId, config: Config) -> Self {
        Self {
            inner: libp2p_dcutr::Behaviour::new(local_peer_id),
            mapping: Mapping::new(config.range, config.max_moves, config.candidates),
            filter: Filter::new(config),
            attempts: Attempts::default(),
            events: VecDeque::new(),
            requests: VecDeque::new(),
            sent: VecDeque::new(),
        }
    }

    /// Offers an address of ours that no remote has observed, for example the
    /// public IP from the node's configuration. It passes the same filter as
    /// observations: with port 0 or a port outside the range, DCUtR gets
    /// `its IP + punch port` once the punch socket listens.
    pub fn add_announced_address(&mut self, addr: Multiaddr) -> Result<(), AddrError> {
        QuicAddr::parse(&addr)?;
        let verdict = self.filter.candidate(Source::Announced, addr);
        self.apply(verdict);
        Ok(())
    }

    /// Tells the behaviour what a remote learnt about us through identify:
    /// call it with the `connection_id` and `info` of every
    /// `identify::Event::Received`.
    ///
    /// Optional for the candidate filter, needed for the rest:
    /// - the NAT classification ([`Event::Nat`]): the first observation of
    ///   the punch socket is checked against a second address of the same
    ///   observer (say the relay's second IP, from `info.listen_addrs`);
    /// - moving the punch socket when the NAT rewrote its port because
    ///   another node behind it holds the same port (pods behind one
    ///   Kubernetes node): the socket moves to another free port of the range
    ///   and the observer is dialed again from it, at most
    ///   [`Config::with_port_moves`] times. Moving closes every connection of
    ///   the old socket, including the relay connection and its reservation:
    ///   listen on the relay circuit again once the observer has identified
    ///   the new socket (the returned [`Observation`] is then no longer
    ///   [`unsettled`](Observation::unsettled));
    /// - [`CandidateMode::SocketAware`](crate::CandidateMode::SocketAware),
    ///   which hands DCUtR what observers saw of the punch socket.
    pub fn on_identify(
        &mut self,
        connection: ConnectionId,
        info: &libp2p_identify::Info,
    ) -> Observation {
        self.observed_address(connection, &info.observed_addr, &info.listen_addrs)
    }

    /// [`on_identify`](Self::on_identify) from its parts: what the remote on
    /// `connection` observed, and the remote's own listen addresses.
    pub fn observed_address(
        &mut self,
        connection: ConnectionId,
        observed: &Multiaddr,
        remote_listen_addrs: &[Multiaddr],
    ) -> Observation {
        let (observation, actions) =
            self.mapping
                .observed(connection, observed, remote_listen_addrs);
        let observed_ip = QuicAddr::parse(observed).ok().map(|q| q.socket.ip());
        let socket_aware = self.filter.config().candidates == CandidateMode::SocketAware;
        match observation {
            Observation::Unrelated => {}
            Observation::Preserved { port } => {
                tracing::debug!(port, %observed, "the NAT keeps the punch port");
                self.filter.port_kept();
            }
            Observation::Rewritten {
                local,
                observed: seen,
                moving_to,
                probing,
            } => {
                // While the socket is about to change, and always in
                // socket-aware mode, the punch port at that IP is not ours.
                if let Some(ip) = observed_ip
                    && (observation.unsettled() || socket_aware)
                {
                    self.filter.port_rewritten(ip, local);
                } else {
                    self.filter.port_kept();
                }
                match (moving_to, probing) {
                    (Some(to), _) => tracing::info!(
                        local,
                        observed = seen,
                        to,
                        "the NAT rewrote the punch port; moving the punch socket"
                    ),
                    (None, true) => tracing::info!(
                        local,
                        observed = seen,
                        "the NAT rewrote the punch port; asking a second observer before moving"
                    ),
                    (None, false) => tracing::warn!(
                        local,
                        observed = seen,
                        "the NAT rewrote the punch port and the punch socket does not move; in the range candidate mode punches aimed at it will fail"
                    ),
                }
            }
        }
        if socket_aware && observation != Observation::Unrelated && !observation.unsettled() {
            let verdict = self.filter.on_punch_socket(observed.clone());
            self.apply(verdict);
        }
        if observation != Observation::Unrelated {
            self.events.push_back(Event::Mapping(observation));
        }
        self.request(actions);
        observation
    }

    /// What the observations so far say about the NAT in front of the punch
    /// socket.
    pub fn nat(&self) -> NatStatus {
        self.mapping.nat()
    }

    fn request(&mut self, actions: Vec<Action>) {
        for action in actions {
            let request = match action {
                Action::RemoveListener(id) => ToSwarm::RemoveListener { id },
                Action::Listen(opts) => ToSwarm::ListenOn { opts },
                Action::Dial { peer, addr } => ToSwarm::Dial {
                    opts: DialOpts::peer_id(peer)
                        .addresses(vec![addr])
                        .condition(PeerCondition::Always)
                        .build(),
                },
                Action::Probe { peer, addr } => {
                    let opts = DialOpts::peer_id(peer)
                        .addresses(vec![addr])
                        .condition(PeerCondition::Always)
                        .build();
                    self.mapping.probe_started(opts.connection_id());
                    ToSwarm::Dial { opts }
                }
                Action::Nat(status) => {
                    if status.mapping == MappingKind::EndpointDependent {
                        tracing::warn!(
                            "the NAT in front of the punch socket maps it to a different public port for every destination (endpoint-dependent, \"symmetric\" mapping): no source port can make a hole punch through it work, so connections to peers behind another NAT stay relayed"
                        );
                    } else {
                        tracing::info!(mapping = %status.mapping, port_preserved = ?status.port_preserved, "NAT classified");
                    }
                    self.events.push_back(Event::Nat(status));
                    continue;
                }
            };
            self.requests.push_back(request);
        }
    }

    /// Counts of the filter's decisions so far.
    pub fn stats(&self) -> Stats {
        self.filter.stats()
    }

    /// The filter's configuration.
    pub fn config(&self) -> &Config {
        self.filter.config()
    }

    /// The port of the punch socket of `family`, as learnt from the swarm's
    /// listen addresses.
    pub fn punch_port(&self, family: Family) -> Option<u16> {
        self.filter.punch_port(family)
    }

    /// The punch socket's listen address of the family of the first QUIC
    /// address in `addresses`.
    fn local_punch_addr(&self, addresses: &[Multiaddr]) -> Option<Multiaddr> {
        let family = addresses
            .iter()
            .find_map(|a| QuicAddr::parse(a).ok())
            .map(|q| Family::of(q.socket.ip()))?;
        self.filter.punch_addr(family)
    }

    fn apply(&mut self, verdict: Verdict) {
        match verdict.candidate() {
            Some(candidate) => {
                self.sent.retain(|a| a != candidate);
                self.sent.push_back(candidate.clone());
                while self.sent.len() > CANDIDATES {
                    self.sent.pop_front();
                }
                tracing::debug!(
                    source=?verdict.source, observed=%verdict.addr, %candidate,
                    decision=?verdict.decision, "address candidate handed to DCUtR"
                );
                self.inner
                    .on_swarm_event(FromSwarm::NewExternalAddrCandidate(
                        NewExternalAddrCandidate { addr: candidate },
                    ));
            }
            None => tracing::debug!(
                source=?verdict.source, observed=%verdict.addr,
                decision=?verdict.decision, "address candidate withheld from DCUtR"
            ),
        }
        self.events.push_back(Event::Candidate(verdict));
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = THandler<libp2p_dcutr::Behaviour>;
    type ToSwarm = Event;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner.handle_established_inbound_connection(
            connection_id,
            peer,
            local_addr,
            remote_addr,
        )
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        if self
            .attempts
            .pending(connection_id, effective_role, addresses)
            && let Some(missing) = self.filter.missing_punch_socket(addresses)
        {
            tracing::warn!("{missing}");
            return Err(ConnectionDenied::new(missing));
        }
        self.inner.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::NewExternalAddrCandidate(NewExternalAddrCandidate { addr }) => {
                let verdict = self.filter.candidate(Source::Observed, addr.clone());
                self.apply(verdict);
                return;
            }
            FromSwarm::NewListenAddr(listen) => {
                self.mapping
                    .new_listen_addr(listen.listener_id, listen.addr);
                for verdict in self.filter.new_listen_addr(listen.addr) {
                    self.apply(verdict);
                }
            }
            FromSwarm::ListenerClosed(closed) => {
                self.mapping.listener_closed(closed.listener_id);
            }
            FromSwarm::ListenerError(failed) => {
                let actions = self.mapping.listen_failed(failed.listener_id);
                self.request(actions);
            }
            FromSwarm::ExpiredListenAddr(expired) => {
                for verdict in self.filter.expired_listen_addr(expired.addr) {
                    self.apply(verdict);
                }
            }
            FromSwarm::DialFailure(failure) => {
                let actions = self.mapping.dial_failed(failure.connection_id);
                self.request(actions);
                let error = failure.error.to_string();
                let dialed = match failure.error {
                    DialError::Transport(errors) => Some(
                        errors
                            .iter()
                            .map(|(addr, _)| addr.clone())
                            .collect::<Vec<_>>(),
                    ),
                    _ => None,
                };
                let local = dialed.as_deref().and_then(|d| self.local_punch_addr(d));
                let (report, gave_up) =
                    self.attempts
                        .failed(failure.connection_id, error, dialed, local);
                if let Some(report) = report {
                    self.events.push_back(Event::Attempt(report));
                }
                if let Some(gave_up) = gave_up {
                    tracing::debug!(peer=%gave_up.peer, error=%gave_up.last_error, "hole punch failed on the dialing side");
                    self.events.push_back(Event::PunchFailed {
                        remote_peer_id: gave_up.peer,
                        attempts: gave_up.attempts,
                        last_error: gave_up.last_error,
                    });
                }
            }
            FromSwarm::ConnectionEstablished(established) => {
                self.mapping.established(
                    established.connection_id,
                    established.peer_id,
                    established.endpoint,
                );
                let address = established.endpoint.get_remote_address();
                let local = self.local_punch_addr(std::slice::from_ref(address));
                let sent: Vec<_> = self.sent.iter().cloned().collect();
                if let Some(report) = self.attempts.established(
                    established.connection_id,
                    established.peer_id,
                    established.endpoint.is_relayed(),
                    address,
                    &sent,
                    local,
                ) {
                    self.events.push_back(Event::Attempt(report));
                }
            }
            FromSwarm::ConnectionClosed(closed) => {
                self.mapping.closed(closed.connection_id);
                self.attempts.closed(
                    closed.connection_id,
                    closed.peer_id,
                    closed.endpoint.is_relayed(),
                );
            }
            _ => {}
        }
        self.inner.on_swarm_event(event);
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.inner
            .on_connection_handler_event(peer_id, connection_id, event);
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some(request) = self.requests.pop_front() {
            return Poll::Ready(request);
        }
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(ToSwarm::GenerateEvent(event));
        }
        let event = std::task::ready!(self.inner.poll(cx));
        if let ToSwarm::Dial { opts } = &event {
            self.attempts
                .requested(opts.connection_id(), opts.get_peer_id());
        }
        Poll::Ready(event.map_out(Event::Dcutr))
    }
}
