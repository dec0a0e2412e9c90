//! The [`NetworkBehaviour`] that wraps DCUtR (`holepunch`).

use std::{
    collections::VecDeque,
    task::{Context, Poll},
    time::Instant,
};

use crate::net::{AddrError, DialPurpose, Family, NoPunchSocket, PunchSockets, QuicAddr};
use libp2p_core::{ConnectedPoint, Endpoint, Multiaddr, transport::PortUse};
use libp2p_identity::PeerId;
use libp2p_swarm::{
    CloseConnection, ConnectionDenied, ConnectionId, DialError, FromSwarm, NetworkBehaviour,
    NewExternalAddrCandidate, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    derive_prelude::Either,
    dial_opts::{DialOpts, PeerCondition},
};

use crate::dcutr::{
    Config,
    attempts::{Attempts, DialFailure, Ended},
    birthday::{self, Birthday, Mine},
    candidates::{CANDIDATES, TooManyCandidates},
    event::{Event, Tracked},
    filter::{Filter, Source, Verdict},
    holepunch::{self, Opener},
    mapping::{Action, Mapping, Observation},
    nat::{MappingKind, NatStatus},
    renewal::Renewal,
};

/// DCUtR, and the streams of the birthday negotiation, under one
/// connection handler (the behaviour's `ConnectionHandler` names it).
#[doc(hidden)]
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p_swarm::derive_prelude")]
#[allow(missing_docs, unreachable_pub)]
pub struct Inner {
    dcutr: holepunch::Behaviour,
    stream: libp2p_stream::Behaviour,
}

/// DCUtR behind a candidate filter (libp2p-dcutr 0.15's behaviour, whose
/// exchange also sends the punch socket's short-TTL openers).
///
/// DCUtR advertises every address candidate the swarm reports. This wrapper
/// decides first: candidates whose port is inside the punch range pass, those
/// outside become `observed IP + punch port` (see
/// [`Config::with_translation`](crate::Config::with_translation)), and DCUtR is never left with no candidate
/// while a punch socket is bound. Everything else is forwarded to DCUtR as is.
///
/// It knows the punch sockets from the transport's table
/// ([`PunchSockets`]), which it shares with the port-aware transport: which
/// socket is the punch socket, on which port, and which socket each of its
/// dials left from are facts of the transport, read here.
pub struct Behaviour {
    inner: Inner,
    sockets: PunchSockets,
    /// Punching through endpoint-dependent NATs.
    birthday: Birthday,
    filter: Filter,
    /// DCUtR's direct dials and how each punch ended.
    attempts: Attempts,
    /// Whether the NAT keeps the punch port; moving the punch socket.
    mapping: Mapping,
    /// Replaces `inner.dcutr` now and then to bound its maps.
    renewal: Renewal,
    local_peer_id: PeerId,
    events: VecDeque<Event>,
    /// Requests to the swarm (moving the punch socket).
    requests: VecDeque<ToSwarm<Event, THandlerInEvent<Self>>>,
}

impl Behaviour {
    /// DCUtR for `local_peer_id` behind a filter with `config`, knowing the
    /// punch sockets of the transport that `sockets` came from.
    pub(crate) fn with_config(
        local_peer_id: PeerId,
        sockets: PunchSockets,
        config: Config,
    ) -> Self {
        let stream = libp2p_stream::Behaviour::new();
        let renewal = Renewal::new(config.renew_after_dials);
        let birthday = Birthday::new(
            config.birthday.clone(),
            sockets.clone(),
            stream.new_control(),
            rand::random(),
        );
        Self {
            inner: Inner {
                dcutr: holepunch::Behaviour::new(local_peer_id, Opener::new(sockets.clone())),
                stream,
            },
            birthday,
            mapping: Mapping::new(config.max_moves, config.candidates, rand::random()),
            filter: Filter::new(config, sockets.clone()),
            sockets,
            attempts: Attempts::default(),
            renewal,
            local_peer_id,
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
    ///   [`Config::with_port_moves`](crate::Config::with_port_moves) times. Moving closes every connection of
    ///   the old socket, including the relay connection and its reservation:
    ///   listen on the relay circuit again once the observer has identified
    ///   the new socket (the returned [`Observation`] is then no longer
    ///   [`unsettled`](Observation::unsettled));
    /// - [`CandidateMode::SocketAware`](crate::dcutr::CandidateMode::SocketAware),
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
        let sockets = self.sockets.snapshot();
        let (observation, mut actions) =
            self.mapping
                .observed(connection, observed, remote_listen_addrs, &sockets);
        actions.extend(
            self.mapping
                .reach(connection, remote_listen_addrs, &sockets),
        );
        match observation {
            Observation::Unrelated => {}
            Observation::Preserved { port } => {
                tracing::debug!(port, %observed, "the NAT keeps the punch port");
            }
            Observation::Rewritten {
                local,
                observed: seen,
                moving_to,
                probing,
            } => match (moving_to, probing) {
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
            },
        }
        if let Some(verdict) = self.filter.observation(&observation, observed) {
            self.apply(verdict);
        }
        if observation != Observation::Unrelated {
            self.events.push_back(Event::Mapping(observation));
        }
        self.request(actions);
        observation
    }

    /// What the observations so far say about the NAT in front of the punch
    /// socket of `family`.
    pub fn nat(&self, family: Family) -> NatStatus {
        self.mapping.nat(family)
    }

    /// The transport's punch sockets, as this behaviour sees them.
    pub fn punch_sockets(&self) -> &PunchSockets {
        &self.sockets
    }

    /// The candidates DCUtR advertises in its next CONNECT, in its order,
    /// each ending in `/p2p/<our id>`.
    pub fn candidates(&self) -> Vec<Multiaddr> {
        self.inner.dcutr.candidates()
    }

    /// The local socket of connection `connection`, when it is known: the
    /// punch socket a dial left from (as the transport recorded it), or the
    /// socket that accepted the connection.
    pub fn local_addr(
        &self,
        connection: ConnectionId,
        endpoint: &ConnectedPoint,
    ) -> Option<Multiaddr> {
        match endpoint {
            ConnectedPoint::Listener { local_addr, .. } => Some(local_addr.clone()),
            ConnectedPoint::Dialer { address, .. } => {
                let remote = QuicAddr::parse(address).ok()?.socket;
                self.sockets
                    .source(connection, remote)
                    .map(socket_multiaddr)
            }
        }
    }

    /// The punch socket connection `id` uses, if it uses one: the one that
    /// accepted it, or the one the transport recorded its dial leaving from.
    fn punch_socket(
        &self,
        id: ConnectionId,
        endpoint: &ConnectedPoint,
    ) -> Option<std::net::SocketAddr> {
        match endpoint {
            ConnectedPoint::Listener { local_addr, .. } => QuicAddr::parse(local_addr)
                .ok()
                .map(|q| q.socket)
                .filter(|local| self.sockets.snapshot().is_punch(*local)),
            ConnectedPoint::Dialer { address, .. } => {
                let remote = QuicAddr::parse(address).ok()?.socket;
                self.sockets.source(id, remote)
            }
        }
    }

    /// How many entries the behaviour's own maps hold.
    pub fn tracked(&self) -> Tracked {
        let (punches, dials) = self.attempts.len();
        let [attempts, birthday_dials, peers, limited_peers, limited_ips] = self.birthday.sizes();
        Tracked {
            punches,
            dials,
            connections: self.mapping.connections(),
            sources: self.sockets.remembered(),
            fresh_sockets: self.sockets.fresh_sockets(),
            birthday_attempts: attempts,
            birthday_dials,
            birthday_peers: peers,
            limited: (limited_peers, limited_ips),
            dcutr_entries: self.renewal.sizes().0,
            dcutr_renewals: self.renewal.sizes().1,
        }
    }

    /// Whether a probe of a punch socket is under way: a second connection
    /// to an observer (the relay's other address, or its address of the
    /// family whose punch socket no observer has seen yet), dialed and not
    /// yet observed. It closes once observed. A node should wait for it to
    /// finish before it reserves on a relay or dials through one: no circuit
    /// request then meets the probe connection (a go relay may send STOP on
    /// it), and DCUtR's candidates, taken when the relayed connection opens,
    /// hold what the probe found (`a_dual_stack_node_reaches_an_observer_in_the_family_no_one_has_seen`).
    pub fn probing(&self) -> bool {
        self.mapping.probing()
    }

    /// Counts of the filter's decisions so far.
    #[cfg(fuzzing)]
    pub(crate) fn filter_stats(&self) -> super::filter::Stats {
        self.filter.stats()
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
                Action::Reach { family, peer, addr } => {
                    tracing::debug!(%family, %peer, %addr, "dialing an observer so that the punch socket of this family is seen");
                    let opts = DialOpts::peer_id(peer)
                        .addresses(vec![addr])
                        .condition(PeerCondition::Always)
                        .build();
                    self.mapping.reach_started(opts.connection_id());
                    ToSwarm::Dial { opts }
                }
                Action::Probe { family, peer, addr } => {
                    let opts = DialOpts::peer_id(peer)
                        .addresses(vec![addr])
                        .condition(PeerCondition::Always)
                        .build();
                    self.mapping.probe_started(family, opts.connection_id());
                    ToSwarm::Dial { opts }
                }
                Action::Close { peer, id } => ToSwarm::CloseConnection {
                    peer_id: peer,
                    connection: CloseConnection::One(id),
                },
                Action::Nat(status) => {
                    match status.mapping {
                        MappingKind::EndpointDependent => tracing::warn!(
                            family = %status.family,
                            "the NAT in front of the punch socket maps it to a different public port for every destination (endpoint-dependent, \"symmetric\" mapping). The likely cause is a masquerade rule with random ports (iptables --random-fully, nftables fully-random: most Kubernetes CNIs install one) or a cloud NAT gateway. Plain punching cannot pass it; a birthday punch can, against a peer whose NAT maps endpoint-independently; a peer behind another such NAT stays relayed. The fix is an SNAT rule without random ports for the punch range: see docs/troubleshooting.md, \"endpoint-dependent\""
                        ),
                        MappingKind::Unknown => tracing::info!(
                            family = %status.family,
                            port_preserved = ?status.port_preserved,
                            "NAT class unknown: only one observer address has seen the punch socket. A second address of the relay (another UDP port is enough: relay --listen twice) lets it tell endpoint-dependent mapping"
                        ),
                        MappingKind::EndpointIndependent => tracing::info!(
                            family = %status.family,
                            port_preserved = ?status.port_preserved,
                            "NAT classified: endpoint-independent mapping"
                        ),
                    }
                    self.events.push_back(Event::Nat(status));
                    continue;
                }
            };
            self.requests.push_back(request);
        }
    }

    /// For a DCUtR dial to `addresses`: the error if no QUIC address among
    /// them has a punch socket that reaches it.
    fn missing_punch_socket(&self, addresses: &[Multiaddr]) -> Option<NoPunchSocket> {
        let mut first = None;
        for addr in addresses {
            let Ok(quic) = QuicAddr::parse(addr) else {
                continue;
            };
            match self.sockets.for_remote(quic.socket.ip()) {
                Ok(_) => return None,
                Err(reason) => {
                    first.get_or_insert((addr, quic, reason));
                }
            }
        }
        let (addr, quic, reason) = first?;
        Some(NoPunchSocket::new(
            addr.clone(),
            Family::of(quic.socket.ip()),
            self.sockets.range(),
            reason,
        ))
    }

    fn sockets_changed(&mut self) {
        for verdict in self.filter.sockets_changed() {
            self.apply(verdict);
        }
    }

    fn apply(&mut self, verdict: Verdict) {
        match verdict.candidate() {
            Some(candidate) => {
                tracing::debug!(
                    source=?verdict.source, observed=%verdict.addr, %candidate,
                    decision=?verdict.decision, "address candidate handed to DCUtR"
                );
                self.inner
                    .dcutr
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

    fn ended(&mut self, ended: Ended) {
        match ended {
            Ended::Direct(report) => {
                tracing::debug!(peer=%report.remote_peer_id, connection=%report.connection_id, "hole punch succeeded");
                self.events.push_back(Event::Direct(report));
            }
            Ended::Failed(report) => {
                tracing::debug!(peer=%report.remote_peer_id, error=%report.error, "hole punch failed");
                self.events.push_back(Event::PunchFailed(report));
            }
        }
    }
}

fn socket_multiaddr(socket: std::net::SocketAddr) -> Multiaddr {
    QuicAddr {
        socket,
        peer_id: None,
    }
    .to_multiaddr()
}

impl Behaviour {
    /// This side's punch sockets and their NATs, as the birthday
    /// negotiation tells them.
    fn mine(&self) -> Mine {
        let sockets = [Family::Ipv4, Family::Ipv6]
            .into_iter()
            .filter_map(|family| {
                let socket = self.sockets.get(family)?;
                let status = self.mapping.nat(family);
                Some(birthday::MineSocket {
                    family,
                    class: birthday::Class {
                        mapping: status.mapping,
                        port_preserved: status.port_preserved,
                    },
                    public: self.mapping.public(family),
                    punch: socket.bound,
                })
            })
            .collect();
        Mine {
            sockets,
            probing: self.mapping.probing(),
        }
    }

    fn birthday_action(
        &mut self,
        action: birthday::Action,
    ) -> Option<ToSwarm<Event, THandlerInEvent<Self>>> {
        match action {
            birthday::Action::Dial(opts) => Some(ToSwarm::Dial { opts }),
            birthday::Action::Ended(report) => {
                self.events.push_back(Event::Attempt(*report));
                None
            }
            birthday::Action::Over(peer) => {
                if let Some(failed) = self.attempts.release(peer) {
                    self.ended(Ended::Failed(failed));
                }
                None
            }
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = THandler<Inner>;
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
        if let Some(purpose) = self.birthday.purpose(connection_id) {
            self.sockets.dialing(connection_id, purpose);
            return Ok(Vec::new());
        }
        let punch = self
            .attempts
            .pending(connection_id, effective_role, addresses);
        if punch && let Some(record) = maybe_peer.and_then(|peer| self.attempts.punch_mut(&peer)) {
            self.birthday.advertised(record, addresses, Instant::now());
        }
        if punch {
            if addresses.len() > CANDIDATES {
                let denied = TooManyCandidates {
                    count: addresses.len(),
                    max: CANDIDATES,
                };
                tracing::warn!(peer=?maybe_peer, "{denied}");
                return Err(ConnectionDenied::new(denied));
            }
            if let Some(missing) = self.missing_punch_socket(addresses) {
                tracing::warn!("{missing}");
                return Err(ConnectionDenied::new(missing));
            }
        }
        // The transport's dials for this connection come next: a hole punch
        // may leave from nothing but the punch socket.
        self.sockets.dialing(
            connection_id,
            if punch {
                DialPurpose::Punch
            } else {
                DialPurpose::Ordinary
            },
        );
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
        let now = Instant::now();
        match event {
            FromSwarm::NewExternalAddrCandidate(NewExternalAddrCandidate { addr }) => {
                let verdict = self.filter.candidate(Source::Observed, addr.clone());
                self.apply(verdict);
                return;
            }
            FromSwarm::NewListenAddr(listen) => {
                self.mapping.new_listen_addr(listen.listener_id);
                self.sockets_changed();
            }
            FromSwarm::ExpiredListenAddr(_) | FromSwarm::ListenerClosed(_) => {
                self.sockets_changed();
            }
            FromSwarm::ListenerError(failed) => {
                let actions = self
                    .mapping
                    .listen_failed(failed.listener_id, &self.sockets.snapshot());
                self.request(actions);
                self.sockets_changed();
            }
            FromSwarm::DialFailure(failure) => {
                let actions = self
                    .mapping
                    .dial_failed(failure.connection_id, &self.sockets.snapshot());
                self.request(actions);
                let error = DialFailure::from_swarm(failure.error);
                let dialed = match failure.error {
                    DialError::Transport(errors) => Some(
                        errors
                            .iter()
                            .map(|(addr, _)| addr.clone())
                            .collect::<Vec<_>>(),
                    ),
                    _ => None,
                };
                let local = self
                    .sockets
                    .first_source(failure.connection_id)
                    .map(socket_multiaddr);
                self.sockets.forget(failure.connection_id);
                self.birthday
                    .dial_failed(failure.connection_id, &mut self.attempts, &error);
                let (report, failed) =
                    self.attempts
                        .failed(failure.connection_id, error, dialed, local, now);
                if let Some(report) = report {
                    // One of this side's plain punch dials failed.
                    if let Some(punch) = self.attempts.punch_mut(&report.remote_peer_id) {
                        self.birthday.plain_failed(punch, now);
                    }
                    self.events.push_back(Event::Attempt(report));
                }
                if let Some(failed) = failed {
                    self.ended(Ended::Failed(failed));
                }
            }
            FromSwarm::ConnectionEstablished(established) => {
                let (id, peer, endpoint) = (
                    established.connection_id,
                    established.peer_id,
                    established.endpoint,
                );
                if !endpoint.is_relayed() {
                    let local = self.punch_socket(id, endpoint);
                    let remote = endpoint.get_remote_address().clone();
                    self.mapping.established(id, peer, remote, local);
                }
                self.renewal.established(id, peer, endpoint);
                if endpoint.is_relayed() {
                    self.attempts.relayed(
                        id,
                        peer,
                        endpoint.is_listener(),
                        self.inner.dcutr.candidates(),
                        now,
                    );
                    let mine = self.mine();
                    if let Some(punch) = self.attempts.punch_mut(&peer) {
                        self.birthday.relayed(peer, punch, &mine, now);
                    }
                } else {
                    let role = if endpoint.is_dialer() {
                        Endpoint::Dialer
                    } else {
                        Endpoint::Listener
                    };
                    let local = self.local_addr(id, endpoint);
                    let remote = endpoint.get_remote_address();
                    let (report, direct) =
                        self.attempts
                            .direct(id, peer, role, remote, local.clone(), now);
                    if let Some(report) = report {
                        self.events.push_back(Event::Attempt(report));
                    }
                    if let Some(direct) = direct {
                        self.ended(Ended::Direct(direct));
                    }
                    if let Some(punch) = self.attempts.punch_mut(&peer) {
                        self.birthday.direct(id, punch);
                    }
                }
            }
            FromSwarm::ConnectionClosed(closed) => {
                self.mapping.closed(closed.connection_id);
                self.renewal.closed(closed.connection_id);
                self.sockets.forget(closed.connection_id);
                if closed.endpoint.is_relayed()
                    && let Some(punch) = self.attempts.punch_mut(&closed.peer_id)
                {
                    self.birthday.relayed_closed(closed.peer_id, punch, now);
                }
                if let Some(ended) = self
                    .attempts
                    .closed(closed.connection_id, closed.peer_id, now)
                {
                    self.ended(ended);
                }
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
        let mine = self.mine();
        while let Poll::Ready(action) = self.birthday.poll(cx, &mut self.attempts, &mine) {
            if let Some(request) = self.birthday_action(action) {
                return Poll::Ready(request);
            }
            if let Some(event) = self.events.pop_front() {
                return Poll::Ready(ToSwarm::GenerateEvent(event));
            }
        }
        if let Poll::Ready(request) = self.inner.stream.poll(cx) {
            match request.map_in(Either::Right) {
                // libp2p-stream reports nothing of its own.
                ToSwarm::GenerateEvent(()) => cx.waker().wake_by_ref(),
                request => {
                    return Poll::Ready(request.map_out(|()| unreachable!("matched above")));
                }
            }
        }
        let Poll::Ready(event) = self.inner.dcutr.poll(cx) else {
            // Nothing queued in libp2p-dcutr: a moment to replace it.
            if self.renewal.due(self.attempts.len().1) {
                let candidates = self.inner.dcutr.candidates();
                self.inner.dcutr = self.renewal.renew(
                    self.local_peer_id,
                    Opener::new(self.sockets.clone()),
                    &candidates,
                );
            }
            return Poll::Pending;
        };
        let event = event.map_in(Either::Left);
        match &event {
            ToSwarm::Dial { opts } => {
                self.renewal.dialed();
                self.attempts
                    .requested(opts.connection_id(), opts.get_peer_id(), Instant::now());
            }
            ToSwarm::GenerateEvent(holepunch::Event {
                remote_peer_id,
                result: Err(error),
            }) => {
                if let Some(failed) =
                    self.attempts
                        .dcutr_failed(*remote_peer_id, error.to_string(), Instant::now())
                {
                    self.ended(Ended::Failed(failed));
                }
            }
            _ => {}
        }
        Poll::Ready(event.map_out(Event::Dcutr))
    }
}
