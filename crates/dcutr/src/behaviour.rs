//! The [`NetworkBehaviour`] that wraps `libp2p_dcutr::Behaviour`.

use std::{
    collections::VecDeque,
    task::{Context, Poll},
};

use libp2p_core::{Endpoint, Multiaddr, transport::PortUse};
use libp2p_identity::PeerId;
use libp2p_swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, NewExternalAddrCandidate,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    dial_opts::{DialOpts, PeerCondition},
};
use punchport_core::{AddrError, Family, QuicAddr};

use crate::{
    Config,
    attempts::Attempts,
    filter::{Filter, Source, Stats, Verdict},
    mapping::{Action, Mapping, Observation},
};

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
    /// [`Behaviour::observed_address`]). When it does not, the punch socket
    /// moves to another port of the range (`moving_to`).
    Mapping(Observation),
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
            mapping: Mapping::new(config.range, config.max_moves),
            filter: Filter::new(config),
            attempts: Attempts::default(),
            events: VecDeque::new(),
            requests: VecDeque::new(),
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

    /// Tells the behaviour what a remote observed on one of our connections:
    /// identify's `Info::observed_addr` from `identify::Event::Received`.
    ///
    /// Optional, and not needed for the candidate filter: it lets the
    /// behaviour notice that the NAT rewrote the punch port, which happens
    /// when several nodes behind one NAT bound the same port (pods behind
    /// one Kubernetes node). The punch socket then moves to another free
    /// port of the range and the observer is dialed again from it, until an
    /// observation shows the port kept, at most [`Config::with_port_moves`]
    /// times. Moving closes every connection of the old socket, including
    /// the relay connection and its reservation: listen on the relay circuit
    /// again once the observer has identified the new socket.
    ///
    /// Call it from the handler of `identify::Event::Received { connection_id,
    /// info, .. }` with `&info.observed_addr`.
    pub fn observed_address(
        &mut self,
        connection: ConnectionId,
        observed: &Multiaddr,
    ) -> Observation {
        let (observation, actions) = self.mapping.observed(connection, observed);
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
            } => {
                if let Ok(quic) = QuicAddr::parse(observed) {
                    self.filter.port_rewritten(quic.socket.ip(), local);
                }
                match moving_to {
                    Some(to) => tracing::info!(
                        local,
                        observed = seen,
                        to,
                        "the NAT rewrote the punch port; moving the punch socket"
                    ),
                    None => tracing::warn!(
                        local,
                        observed = seen,
                        "the NAT rewrote the punch port and the punch socket will not move again; punches aimed at it will likely fail"
                    ),
                }
            }
        }
        if observation != Observation::Unrelated {
            self.events.push_back(Event::Mapping(observation));
        }
        self.request(actions);
        observation
    }

    fn request(&mut self, actions: Vec<Action>) {
        for action in actions {
            self.requests.push_back(match action {
                Action::RemoveListener(id) => ToSwarm::RemoveListener { id },
                Action::Listen(opts) => ToSwarm::ListenOn { opts },
                Action::Dial { peer, addr } => ToSwarm::Dial {
                    opts: DialOpts::peer_id(peer)
                        .addresses(vec![addr])
                        .condition(PeerCondition::Always)
                        .build(),
                },
            });
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

    fn apply(&mut self, verdict: Verdict) {
        match verdict.candidate() {
            Some(candidate) => {
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
        if self.attempts.pending(connection_id, effective_role)
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
                let error = failure.error.to_string();
                if let Some(gave_up) = self.attempts.failed(failure.connection_id, error) {
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
                self.attempts.established(
                    established.connection_id,
                    established.peer_id,
                    established.endpoint.is_relayed(),
                );
            }
            FromSwarm::ConnectionClosed(closed) => {
                self.mapping.closed(closed.connection_id);
                self.attempts.closed(closed.connection_id, closed.peer_id);
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
