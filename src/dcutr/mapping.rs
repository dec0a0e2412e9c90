//! Whether the NAT keeps the punch port, what kind of NAT it is, and moving
//! the punch socket when another socket behind the same NAT holds its port.
//!
//! Several nodes behind one NAT (pods of a Kubernetes node behind its
//! masquerade) all bind the first free port of the range, each in its own
//! network namespace. The NAT keeps that port for the first of them and
//! remaps the others' flows. A node that learns its punch port was rewritten
//! moves its punch socket to another port of the range and reconnects to the
//! observer, until an observation shows the port kept.
//!
//! The first observation of a punch port is checked against a second
//! observer (another address of the same peer, say the relay's second IP)
//! when one is known: that classifies the NAT ([`NatStatus`]), and a NAT that
//! rewrites ports the same way for every destination (endpoint-independent
//! but not port-preserving) is not worth moving on.
//!
//! Each punch socket (one per IP family) has its own moves and its own
//! classification. Which socket is the punch socket, and which one a
//! connection left from, comes from the transport's table
//! ([`PunchSockets`]).
//!
//! Pure logic: it answers with [`Action`]s for the behaviour to carry out;
//! the port a move goes to comes from a generator seeded by the caller.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, SocketAddr},
};

use crate::net::{Family, PunchSockets, QuicAddr};
use libp2p_core::{ConnectedPoint, Multiaddr, transport::ListenerId};
use libp2p_identity::PeerId;
use libp2p_swarm::{ConnectionId, ListenOpts};
use rand::{RngExt as _, SeedableRng, rngs::StdRng};

use crate::dcutr::{
    config::CandidateMode,
    nat::{Classifier, MappingKind, NatStatus},
};

/// What an observation of one of our connections says about the punch
/// port's mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Observation {
    /// Not made on the punch socket, or not a QUIC address: it says nothing
    /// about the punch port.
    Unrelated,
    /// The NAT kept the punch port.
    Preserved {
        /// The punch port.
        port: u16,
    },
    /// The NAT rewrote the punch port.
    Rewritten {
        /// The punch port the connection left from.
        local: u16,
        /// The port the remote saw.
        observed: u16,
        /// The port the punch socket moves to, or `None` if it does not move
        /// (moves switched off or used up, the NAT rewrites every port the
        /// same way, or a second observer is asked first).
        moving_to: Option<u16>,
        /// Whether a second observer is being asked before deciding.
        probing: bool,
    },
}

impl Observation {
    /// Whether the punch socket is about to change (moving, or deciding
    /// whether to): connections of the current socket may close.
    pub fn unsettled(&self) -> bool {
        matches!(
            self,
            Observation::Rewritten {
                moving_to: Some(_),
                ..
            } | Observation::Rewritten { probing: true, .. }
        )
    }
}

/// Something the behaviour has to ask the swarm for.
#[derive(Debug)]
pub(crate) enum Action {
    RemoveListener(ListenerId),
    Listen(ListenOpts),
    Dial {
        peer: PeerId,
        addr: Multiaddr,
    },
    /// Dial `addr` of `peer` as a second observer of the punch socket of
    /// `family`, then report the dial's connection id with
    /// [`Mapping::probe_started`].
    Probe {
        family: Family,
        peer: PeerId,
        addr: Multiaddr,
    },
    /// Dial `addr` of `peer`, an observer, from the punch socket of
    /// `family`, which no observer has seen yet (a dual-stack node whose
    /// relay connection is of the other family); report the connection id
    /// with [`Mapping::reach_started`]. It closes once observed.
    Reach {
        family: Family,
        peer: PeerId,
        addr: Multiaddr,
    },
    /// Close the probe connection `id` to `peer`: its observation is in,
    /// and an older connection to the same peer carries everything else.
    /// A rust relay client reserves and dials on its first connection to a
    /// relay (libp2p-relay 0.22 `priv_client.rs`, `cs.first()`), but a go
    /// relay sends STOP on whichever connection has the most streams, the
    /// newest on a tie (go-libp2p v0.52.0 `p2p/net/swarm/swarm.go:595-646`),
    /// and the rust client denies STOP on a connection without its
    /// reservation (`priv_client/handler.rs:371-390`, `NoReservation`): a
    /// probe connection left open made every circuit through a go relay
    /// fail.
    Close {
        peer: PeerId,
        id: ConnectionId,
    },
    /// The NAT classification changed.
    Nat(NatStatus),
}

#[derive(Debug)]
struct Connection {
    peer: PeerId,
    remote: Multiaddr,
    /// The punch socket the connection uses, if it uses one.
    local: Option<SocketAddr>,
    probe: bool,
    /// It was dialed to reach a family's punch socket: it closes once
    /// observed.
    reach: bool,
}

#[derive(Debug)]
struct Move {
    listener: ListenerId,
    bind: IpAddr,
    port: u16,
    redial: (PeerId, Multiaddr),
}

/// What has been done about the current punch port.
#[derive(Debug, Default)]
struct PortState {
    port: u16,
    /// A probe was dialed for this port.
    probed: bool,
    /// The probe's connection id, while it is pending.
    probe: Option<ConnectionId>,
    /// A move waiting for the probe's answer: whom to redial.
    deferred: Option<(PeerId, Multiaddr, u16, u16)>,
}

/// Moves and observations of the punch socket of one family.
#[derive(Debug, Default)]
struct SocketState {
    moves: u8,
    tried: HashSet<u16>,
    moving: Option<Move>,
    classifier: Classifier,
    port: PortState,
    /// An observer was dialed from this family's punch socket to have it
    /// seen at all.
    reached: bool,
}

#[derive(Debug)]
pub(crate) struct Mapping {
    sockets: PunchSockets,
    max_moves: u8,
    mode: CandidateMode,
    connections: HashMap<ConnectionId, Connection>,
    probes: HashSet<ConnectionId>,
    reaching: HashSet<ConnectionId>,
    families: HashMap<Family, SocketState>,
    rng: StdRng,
}

impl Mapping {
    /// `seed` seeds the choice of the port a move goes to.
    pub(crate) fn new(
        sockets: PunchSockets,
        max_moves: u8,
        mode: CandidateMode,
        seed: u64,
    ) -> Self {
        Self {
            sockets,
            max_moves,
            mode,
            connections: HashMap::new(),
            probes: HashSet::new(),
            reaching: HashSet::new(),
            families: HashMap::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// What the observations say about the NAT in front of the punch socket
    /// of `family`.
    pub(crate) fn nat(&self, family: Family) -> NatStatus {
        self.families
            .get(&family)
            .map_or(NatStatus::unknown(family), |state| {
                state.classifier.status(family)
            })
    }

    /// The punch socket's public address of `family`, as the first
    /// observer saw it.
    pub(crate) fn public(&self, family: Family) -> Option<SocketAddr> {
        self.families.get(&family)?.classifier.public()
    }

    /// A listener reported an address: a move to it is done.
    pub(crate) fn new_listen_addr(&mut self, id: ListenerId) {
        for state in self.families.values_mut() {
            if state.moving.as_ref().is_some_and(|m| m.listener == id) {
                state.moving = None;
            }
        }
    }

    /// Listening on the new port failed (it is taken here): try another.
    pub(crate) fn listen_failed(&mut self, id: ListenerId) -> Vec<Action> {
        let Some((family, failed)) = self.families.iter_mut().find_map(|(family, state)| {
            state
                .moving
                .take_if(|m| m.listener == id)
                .map(|failed| (*family, failed))
        }) else {
            return Vec::new();
        };
        tracing::debug!(
            port = failed.port,
            "the punch port to move to is taken here"
        );
        match self.next_port(family) {
            Some(port) => self.start_move(family, failed.bind, port, failed.redial, None),
            None => Vec::new(),
        }
    }

    pub(crate) fn established(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        endpoint: &ConnectedPoint,
    ) {
        if endpoint.is_relayed() {
            return;
        }
        let local = match endpoint {
            ConnectedPoint::Listener { local_addr, .. } => QuicAddr::parse(local_addr)
                .ok()
                .map(|q| q.socket)
                .filter(|local| self.sockets.is_punch(*local)),
            // The transport recorded which punch socket the dial left from.
            ConnectedPoint::Dialer { address, .. } => QuicAddr::parse(address)
                .ok()
                .and_then(|remote| self.sockets.source(id, remote.socket)),
        };
        self.connections.insert(
            id,
            Connection {
                peer,
                remote: endpoint.get_remote_address().clone(),
                local,
                probe: self.probes.remove(&id),
                reach: self.reaching.remove(&id),
            },
        );
    }

    pub(crate) fn closed(&mut self, id: ConnectionId) {
        self.connections.remove(&id);
    }

    /// How many connections it follows.
    pub(crate) fn connections(&self) -> usize {
        self.connections.len()
    }

    /// Whether a probe is under way: dialed, its observation not yet in.
    pub(crate) fn probing(&self) -> bool {
        self.families
            .values()
            .any(|state| state.port.probe.is_some())
            || !self.reaching.is_empty()
            || self.connections.values().any(|c| c.reach)
    }

    /// The dial asked for by [`Action::Reach`] is `id`.
    pub(crate) fn reach_started(&mut self, id: ConnectionId) {
        self.reaching.insert(id);
    }

    /// After an observation on connection `id`: for each family whose punch
    /// socket no observer has seen, a dial to an address of that family
    /// among the observer's own (`listen_addrs`, from identify), once per
    /// family. Without it a dual-stack node whose relay connection is IPv4
    /// has no IPv6 observation, so neither an IPv6 candidate nor an IPv6
    /// class.
    pub(crate) fn reach(&mut self, id: ConnectionId, listen_addrs: &[Multiaddr]) -> Vec<Action> {
        let Some(connection) = self.connections.get(&id) else {
            return Vec::new();
        };
        let peer = connection.peer;
        let Ok(remote) = QuicAddr::parse(&connection.remote) else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        for family in [Family::Ipv4, Family::Ipv6] {
            if self.sockets.get(family).is_none() || Family::of(remote.socket.ip()) == family {
                continue;
            }
            let state = self.families.entry(family).or_default();
            if state.reached || state.classifier.public().is_some() {
                continue;
            }
            let target = listen_addrs
                .iter()
                .filter_map(|a| QuicAddr::parse(a).ok())
                .find(|q| {
                    let ip = q.socket.ip();
                    Family::of(ip) == family
                        && q.socket.port() != 0
                        && !ip.is_unspecified()
                        && ip.is_loopback() == remote.socket.ip().is_loopback()
                        && !is_link_local(ip)
                });
            if let Some(target) = target {
                state.reached = true;
                actions.push(Action::Reach {
                    family,
                    peer,
                    addr: QuicAddr {
                        socket: target.socket,
                        peer_id: None,
                    }
                    .to_multiaddr(),
                });
            }
        }
        actions
    }

    /// The probe asked for by [`Action::Probe`] for `family` is dialed as `id`.
    pub(crate) fn probe_started(&mut self, family: Family, id: ConnectionId) {
        self.probes.insert(id);
        self.families.entry(family).or_default().port.probe = Some(id);
    }

    /// A dial failed; if it was a probe, decide without its answer.
    pub(crate) fn dial_failed(&mut self, id: ConnectionId) -> Vec<Action> {
        self.reaching.remove(&id);
        if !self.probes.remove(&id) {
            return Vec::new();
        }
        let Some((family, state)) = self
            .families
            .iter_mut()
            .find(|(_, state)| state.port.probe == Some(id))
        else {
            return Vec::new();
        };
        let family = *family;
        state.port.probe = None;
        match state.port.deferred.take() {
            Some((peer, remote, _, _)) => self.move_if_allowed(family, (peer, remote)).1,
            None => Vec::new(),
        }
    }

    /// A remote observed `observed` on connection `id`; `listen_addrs` are
    /// the remote's own addresses (from identify), candidates for a probe.
    pub(crate) fn observed(
        &mut self,
        id: ConnectionId,
        observed: &Multiaddr,
        listen_addrs: &[Multiaddr],
    ) -> (Observation, Vec<Action>) {
        let (observation, mut actions) = self.observe(id, observed, listen_addrs);
        // A connection dialed to reach a family closes once observed, if an
        // older connection to the observer carries the rest.
        if let Some(connection) = self.connections.get_mut(&id)
            && connection.reach
        {
            connection.reach = false;
            let peer = connection.peer;
            let older = self
                .connections
                .iter()
                .any(|(other, c)| *other != id && c.peer == peer && !c.probe && !c.reach);
            if older {
                actions.push(Action::Close { peer, id });
            }
        }
        (observation, actions)
    }

    fn observe(
        &mut self,
        id: ConnectionId,
        observed: &Multiaddr,
        listen_addrs: &[Multiaddr],
    ) -> (Observation, Vec<Action>) {
        let (Some(connection), Ok(seen)) = (self.connections.get(&id), QuicAddr::parse(observed))
        else {
            return (Observation::Unrelated, Vec::new());
        };
        let Some(local) = connection
            .local
            .filter(|local| self.sockets.is_punch(*local))
        else {
            return (Observation::Unrelated, Vec::new());
        };
        let family = Family::of(local.ip());
        let local = local.port();
        let (peer, remote, probe) = (connection.peer, connection.remote.clone(), connection.probe);
        let Ok(observer) = QuicAddr::parse(&remote).map(|q| q.socket) else {
            return (Observation::Unrelated, Vec::new());
        };
        let max_moves = self.max_moves;
        let state = self.families.entry(family).or_default();
        if state.port.port != local {
            state.port = PortState {
                port: local,
                ..PortState::default()
            };
        }
        let mut actions = Vec::new();
        if let Some(status) = state.classifier.observe(local, peer, observer, seen.socket) {
            actions.push(Action::Nat(status.with_family(family)));
        }
        // The probe connection closes once its observation is in, unless it
        // is the only connection to the observer: then other behaviours (a
        // relay client's reservation or circuit) may already use it, and it
        // closes when idle.
        if probe && state.port.probe == Some(id) {
            state.port.probe = None;
            let older = self
                .connections
                .iter()
                .any(|(other, c)| *other != id && c.peer == peer && !c.probe);
            if older {
                actions.push(Action::Close { peer, id });
            }
        }
        let observed_port = seen.socket.port();
        let kept = observed_port == local;
        if kept && !probe {
            state.moves = 0;
            state.tried.clear();
        }

        // The answer to a probe: decide a move that waited for it.
        if probe {
            let Some((peer, remote, local, first_seen)) = state.port.deferred.take() else {
                let observation = if kept {
                    Observation::Preserved { port: local }
                } else {
                    Observation::Unrelated
                };
                return (observation, actions);
            };
            let (moving_to, more) =
                self.move_unless_every_port_is_rewritten(family, (peer, remote), local);
            actions.extend(more);
            let observation = Observation::Rewritten {
                local,
                observed: first_seen,
                moving_to,
                probing: false,
            };
            return (observation, actions);
        }

        // A probe asks a second opinion. It is not needed when the port was
        // kept and two observers have already classified the NAT: then it
        // would only open one more connection, here to a peer's other
        // listener (its 443), which nobody asked for.
        let settled = kept && state.classifier.mapping() != MappingKind::Unknown;
        if !state.port.probed
            && !settled
            && state.moving.is_none()
            && let Some(addr) = probe_target(&remote, listen_addrs)
        {
            state.port.probed = true;
            actions.push(Action::Probe { family, peer, addr });
            if !kept && max_moves > 0 {
                state.port.deferred = Some((peer, remote, local, observed_port));
                let observation = Observation::Rewritten {
                    local,
                    observed: observed_port,
                    moving_to: None,
                    probing: true,
                };
                return (observation, actions);
            }
        }
        if kept {
            return (Observation::Preserved { port: local }, actions);
        }
        if state.port.deferred.is_some() {
            // Still waiting for the probe.
            let observation = Observation::Rewritten {
                local,
                observed: observed_port,
                moving_to: None,
                probing: true,
            };
            return (observation, actions);
        }
        let (moving_to, more) =
            self.move_unless_every_port_is_rewritten(family, (peer, remote), local);
        actions.extend(more);
        let observation = Observation::Rewritten {
            local,
            observed: observed_port,
            moving_to,
            probing: false,
        };
        (observation, actions)
    }

    /// Whether to move the punch socket, now that its port was seen
    /// rewritten (and a second observer asked, if one was known).
    ///
    /// In range mode the candidate is the punch port, so the socket moves
    /// until a port is kept (at most `max_moves` times). In socket-aware mode
    /// the candidate is what the observers saw, which is right whenever the
    /// NAT maps endpoint-independently, even when it rewrote the port
    /// (Linux also remaps a socket that collides with another one to a
    /// single port for every destination); the socket moves only when one
    /// observer saw the port kept and another saw it rewritten.
    fn move_unless_every_port_is_rewritten(
        &mut self,
        family: Family,
        redial: (PeerId, Multiaddr),
        local: u16,
    ) -> (Option<u16>, Vec<Action>) {
        let state = self.families.entry(family).or_default();
        match self.mode {
            CandidateMode::SocketAware
                if !(state.classifier.mapping() == MappingKind::EndpointDependent
                    && state.classifier.someone_saw(local)) =>
            {
                (None, Vec::new())
            }
            _ => self.move_if_allowed(family, redial),
        }
    }

    /// Starts a move if one is allowed and none is under way.
    fn move_if_allowed(
        &mut self,
        family: Family,
        redial: (PeerId, Multiaddr),
    ) -> (Option<u16>, Vec<Action>) {
        let state = self.families.entry(family).or_default();
        if let Some(moving) = &state.moving {
            return (Some(moving.port), Vec::new());
        }
        if state.moves >= self.max_moves {
            return (None, Vec::new());
        }
        let (Some(port), Some(socket)) = (self.next_port(family), self.sockets.get(family)) else {
            return (None, Vec::new());
        };
        // Bind the new socket where the old one was bound.
        let bind = socket.bound.ip();
        let old = (socket.listener, socket.port());
        let actions = self.start_move(family, bind, port, redial, Some(old));
        (Some(port), actions)
    }

    fn start_move(
        &mut self,
        family: Family,
        bind: IpAddr,
        port: u16,
        redial: (PeerId, Multiaddr),
        old: Option<(ListenerId, u16)>,
    ) -> Vec<Action> {
        let state = self.families.entry(family).or_default();
        state.moves += 1;
        state.tried.insert(port);
        let addr = QuicAddr {
            socket: (bind, port).into(),
            peer_id: None,
        }
        .to_multiaddr();
        let opts = ListenOpts::new(addr);
        state.moving = Some(Move {
            listener: opts.listener_id(),
            bind,
            port,
            redial: redial.clone(),
        });
        let mut actions = Vec::new();
        if let Some((old, old_port)) = old {
            state.tried.insert(old_port);
            actions.push(Action::RemoveListener(old));
        }
        actions.push(Action::Listen(opts));
        actions.push(Action::Dial {
            peer: redial.0,
            addr: redial.1,
        });
        actions
    }

    /// A port of the range not tried yet, chosen at random so that nodes
    /// behind one NAT spread out instead of colliding again.
    fn next_port(&mut self, family: Family) -> Option<u16> {
        let current = self.sockets.port(family);
        let state = self.families.entry(family).or_default();
        let free: Vec<u16> = self
            .sockets
            .range()
            .ports()
            .filter(|p| !state.tried.contains(p) && Some(*p) != current)
            .collect();
        if free.is_empty() {
            return None;
        }
        Some(free[self.rng.random_range(0..free.len())])
    }
}

/// Another QUIC address of the observer, of the same family: a second
/// observer. Another IP is best; another port of the same IP also tells,
/// because NATs that map endpoint-dependently (Linux `random-fully`, cloud
/// NAT gateways) change the mapping when only the destination port changes.
/// An IPv6 link-local address (fe80::/10): not reachable off the link.
fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

fn probe_target(remote: &Multiaddr, listen_addrs: &[Multiaddr]) -> Option<Multiaddr> {
    let remote = QuicAddr::parse(remote).ok()?.socket;
    let usable = |candidate: &QuicAddr| {
        let ip = candidate.socket.ip();
        candidate.socket != remote
            && candidate.socket.port() != 0
            && Family::of(ip) == Family::of(remote.ip())
            && !ip.is_unspecified()
            && ip.is_loopback() == remote.ip().is_loopback()
    };
    let candidates: Vec<QuicAddr> = listen_addrs
        .iter()
        .filter_map(|addr| QuicAddr::parse(addr).ok())
        .filter(usable)
        .collect();
    candidates
        .iter()
        .find(|c| c.socket.ip() != remote.ip())
        .or(candidates.first())
        .map(|q| {
            QuicAddr {
                socket: SocketAddr::new(q.socket.ip(), q.socket.port()),
                peer_id: None,
            }
            .to_multiaddr()
        })
}

#[cfg(test)]
mod tests {
    use crate::net::{PortRange, SocketTable};
    use libp2p_core::{Endpoint, transport::PortUse};

    use super::*;

    fn addr(text: &str) -> Multiaddr {
        text.parse().unwrap()
    }

    const RELAY: &str = "/ip4/203.0.113.10/udp/443/quic-v1";
    const RELAY_2: &str = "/ip4/203.0.113.11/udp/443/quic-v1";

    fn dialer(to: &str) -> ConnectedPoint {
        ConnectedPoint::Dialer {
            address: addr(to),
            role_override: libp2p_core::Endpoint::Dialer,
            port_use: libp2p_core::transport::PortUse::Reuse,
        }
    }

    struct Setup {
        mapping: Mapping,
        table: SocketTable,
        listener: ListenerId,
        relay: ConnectionId,
        peer: PeerId,
    }

    impl Setup {
        /// A dial of connection `id` to `to` through the transport's table,
        /// then its connection.
        fn dial(&mut self, id: ConnectionId, to: &str) {
            let remote = QuicAddr::parse(&addr(to)).unwrap().socket;
            self.table
                .handle()
                .dialing(id, crate::net::DialPurpose::Ordinary);
            self.table.route(remote, Endpoint::Dialer, PortUse::Reuse);
            self.mapping.established(id, self.peer, &dialer(to));
        }
    }

    fn setup(max_moves: u8) -> Setup {
        setup_in(max_moves, CandidateMode::Range)
    }

    fn setup_in(max_moves: u8, mode: CandidateMode) -> Setup {
        let table = SocketTable::new(PortRange::new(40000, 40009).unwrap(), 2);
        let mapping = Mapping::new(table.handle(), max_moves, mode, 7);
        let listener = ListenerId::next();
        table.bound(listener, "0.0.0.0:40000".parse().unwrap());
        table.address_added(listener, "127.0.0.1".parse().unwrap());
        table.address_added(listener, "10.1.0.10".parse().unwrap());
        let relay = ConnectionId::new_unchecked(1);
        let mut setup = Setup {
            mapping,
            table,
            listener,
            relay,
            peer: PeerId::random(),
        };
        setup.dial(relay, RELAY);
        setup
    }

    /// Runs the probe that `actions` asks for and feeds it what the second
    /// observer saw.
    fn answer_probe(
        setup: &mut Setup,
        actions: &[Action],
        seen: &str,
    ) -> (Observation, Vec<Action>) {
        let Some(Action::Probe { addr: to, .. }) =
            actions.iter().find(|a| matches!(a, Action::Probe { .. }))
        else {
            panic!("no probe in {actions:?}")
        };
        assert_eq!(to, &addr(RELAY_2));
        let probe = ConnectionId::new_unchecked(2);
        setup.mapping.probe_started(Family::Ipv4, probe);
        setup.dial(probe, RELAY_2);
        setup.mapping.observed(probe, &addr(seen), &[])
    }

    fn nat(actions: &[Action]) -> Option<NatStatus> {
        actions.iter().rev().find_map(|a| match a {
            Action::Nat(status) => Some(*status),
            _ => None,
        })
    }

    #[test]
    fn a_kept_port_is_preserved_and_a_probe_classifies_the_nat() {
        let mut setup = setup(8);
        let (observation, actions) = setup.mapping.observed(
            setup.relay,
            &addr("/ip4/198.51.100.1/udp/40000/quic-v1"),
            &[addr(RELAY), addr(RELAY_2)],
        );
        assert_eq!(observation, Observation::Preserved { port: 40000 });
        let (_, answer) = answer_probe(&mut setup, &actions, "/ip4/198.51.100.1/udp/40000/quic-v1");
        // The probe connection closes: the relay connection carries the rest.
        let probe = ConnectionId::new_unchecked(2);
        assert!(
            matches!(answer[..], [Action::Nat(_), Action::Close { id, .. }] if id == probe),
            "{answer:?}"
        );
        let status = nat(&answer).unwrap();
        assert_eq!(status.mapping, MappingKind::EndpointIndependent);
        assert_eq!(status.port_preserved, Some(true));
    }

    #[test]
    fn a_collision_moves_the_socket_once_the_probe_saw_the_port_kept() {
        let mut setup = setup(8);
        let (observation, actions) = setup.mapping.observed(
            setup.relay,
            &addr("/ip4/198.51.100.1/udp/51234/quic-v1"),
            &[addr(RELAY_2)],
        );
        assert!(observation.unsettled(), "{observation:?}");
        assert!(matches!(
            observation,
            Observation::Rewritten {
                probing: true,
                moving_to: None,
                ..
            }
        ));
        let (observation, actions) =
            answer_probe(&mut setup, &actions, "/ip4/198.51.100.1/udp/40000/quic-v1");
        let Observation::Rewritten {
            moving_to: Some(to),
            ..
        } = observation
        else {
            panic!("{observation:?}")
        };
        assert!((40001..=40009).contains(&to));
        let removed = actions.iter().find_map(|a| match a {
            Action::RemoveListener(id) => Some(*id),
            _ => None,
        });
        assert_eq!(removed, Some(setup.listener));
        let listen = actions.iter().find_map(|a| match a {
            Action::Listen(opts) => Some(opts.address().clone()),
            _ => None,
        });
        // Two interfaces: bind the unspecified address again.
        assert_eq!(
            listen,
            Some(addr(&format!("/ip4/0.0.0.0/udp/{to}/quic-v1")))
        );
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Action::Dial { peer, .. } if *peer == setup.peer))
        );
    }

    #[test]
    fn a_port_rewriting_nat_moves_in_range_mode_and_not_in_socket_aware_mode() {
        for (mode, moves) in [
            (CandidateMode::Range, true),
            (CandidateMode::SocketAware, false),
        ] {
            let mut setup = setup_in(8, mode);
            let (_, actions) = setup.mapping.observed(
                setup.relay,
                &addr("/ip4/198.51.100.1/udp/20000/quic-v1"),
                &[addr(RELAY_2)],
            );
            let (observation, actions) =
                answer_probe(&mut setup, &actions, "/ip4/198.51.100.1/udp/20000/quic-v1");
            let status = nat(&actions).unwrap();
            assert_eq!(status.mapping, MappingKind::EndpointIndependent);
            assert_eq!(status.port_preserved, Some(false));
            let Observation::Rewritten {
                moving_to,
                probing: false,
                ..
            } = observation
            else {
                panic!("{observation:?}")
            };
            assert_eq!(moving_to.is_some(), moves, "{mode:?}");
            assert_eq!(
                actions.iter().any(|a| matches!(a, Action::Listen(_))),
                moves,
                "{mode:?}"
            );
        }
    }

    #[test]
    fn socket_aware_mode_moves_when_one_observer_saw_the_port_kept() {
        let mut setup = setup_in(8, CandidateMode::SocketAware);
        let (_, actions) = setup.mapping.observed(
            setup.relay,
            &addr("/ip4/198.51.100.1/udp/51234/quic-v1"),
            &[addr(RELAY_2)],
        );
        let (observation, _) =
            answer_probe(&mut setup, &actions, "/ip4/198.51.100.1/udp/40000/quic-v1");
        assert!(
            matches!(
                observation,
                Observation::Rewritten {
                    moving_to: Some(_),
                    ..
                }
            ),
            "{observation:?}"
        );
    }

    #[test]
    fn a_symmetric_nat_is_classified_and_moves_stay_bounded() {
        let mut setup = setup(1);
        let (_, actions) = setup.mapping.observed(
            setup.relay,
            &addr("/ip4/198.51.100.1/udp/31000/quic-v1"),
            &[addr(RELAY_2)],
        );
        let (observation, actions) =
            answer_probe(&mut setup, &actions, "/ip4/198.51.100.1/udp/52000/quic-v1");
        assert_eq!(
            nat(&actions).unwrap().mapping,
            MappingKind::EndpointDependent
        );
        let Observation::Rewritten {
            moving_to: Some(to),
            ..
        } = observation
        else {
            panic!("{observation:?}")
        };
        // The one allowed move is used: after it, a rewrite no longer moves.
        let opts = actions.iter().find_map(|a| match a {
            Action::Listen(opts) => Some(opts),
            _ => None,
        });
        let opts = opts.unwrap();
        // The swarm carries out the move: the transport closes the old
        // socket and binds the new one.
        setup.table.closed(setup.listener);
        setup
            .table
            .bound(opts.listener_id(), format!("0.0.0.0:{to}").parse().unwrap());
        setup.mapping.new_listen_addr(opts.listener_id());
        let again = ConnectionId::new_unchecked(3);
        setup.dial(again, RELAY);
        let (observation, _) =
            setup
                .mapping
                .observed(again, &addr("/ip4/198.51.100.1/udp/33000/quic-v1"), &[]);
        assert_eq!(
            observation,
            Observation::Rewritten {
                local: to,
                observed: 33000,
                moving_to: None,
                probing: false
            }
        );
    }

    #[test]
    fn without_a_second_observer_a_rewrite_moves_at_once_and_a_taken_port_is_skipped() {
        let mut setup = setup(8);
        let (observation, actions) =
            setup
                .mapping
                .observed(setup.relay, &addr("/ip4/198.51.100.1/udp/5/quic-v1"), &[]);
        assert!(matches!(
            observation,
            Observation::Rewritten {
                moving_to: Some(_),
                probing: false,
                ..
            }
        ));
        let Some(Action::Listen(opts)) = actions.iter().find(|a| matches!(a, Action::Listen(_)))
        else {
            panic!("{actions:?}")
        };
        let retry = setup.mapping.listen_failed(opts.listener_id());
        assert!(
            matches!(&retry[..], [Action::Listen(_), Action::Dial { .. }]),
            "{retry:?}"
        );
    }

    #[test]
    fn a_probe_that_is_the_only_connection_to_its_observer_stays_open() {
        let mut setup = setup(8);
        let (_, actions) = setup.mapping.observed(
            setup.relay,
            &addr("/ip4/198.51.100.1/udp/40000/quic-v1"),
            &[addr(RELAY), addr(RELAY_2)],
        );
        // The relay connection closed before the probe's answer came: the
        // probe is the one connection a relay client can use now.
        setup.mapping.closed(setup.relay);
        let (_, answer) = answer_probe(&mut setup, &actions, "/ip4/198.51.100.1/udp/40000/quic-v1");
        assert!(!setup.mapping.probing());
        assert!(
            answer.iter().all(|a| !matches!(a, Action::Close { .. })),
            "{answer:?}"
        );
    }

    #[test]
    fn a_failed_probe_moves_without_its_answer() {
        let mut setup = setup(8);
        let (_, actions) = setup.mapping.observed(
            setup.relay,
            &addr("/ip4/198.51.100.1/udp/51234/quic-v1"),
            &[addr(RELAY_2)],
        );
        assert!(actions.iter().any(|a| matches!(a, Action::Probe { .. })));
        let probe = ConnectionId::new_unchecked(9);
        setup.mapping.probe_started(Family::Ipv4, probe);
        let actions = setup.mapping.dial_failed(probe);
        assert!(
            actions.iter().any(|a| matches!(a, Action::Listen(_))),
            "{actions:?}"
        );
    }

    #[test]
    fn the_port_a_move_goes_to_follows_the_seed() {
        let pick = |seed| {
            let table = SocketTable::new(PortRange::new(40000, 40049).unwrap(), 2);
            table.bound(ListenerId::next(), "10.1.0.10:40000".parse().unwrap());
            let mut mapping = Mapping::new(table.handle(), 8, CandidateMode::Range, seed);
            (0..4)
                .map(|_| mapping.next_port(Family::Ipv4).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(pick(1), pick(1));
        assert_ne!(pick(1), pick(2));
    }

    #[test]
    fn each_family_moves_its_own_socket() {
        let mut setup = setup(8);
        let v6 = ListenerId::next();
        setup.table.bound(v6, "[::]:40005".parse().unwrap());
        // A rewrite seen on the IPv4 socket (no second observer: move now).
        let (_, actions) =
            setup
                .mapping
                .observed(setup.relay, &addr("/ip4/198.51.100.1/udp/5/quic-v1"), &[]);
        let removed = actions.iter().find_map(|a| match a {
            Action::RemoveListener(id) => Some(*id),
            _ => None,
        });
        assert_eq!(removed, Some(setup.listener), "{actions:?}");
        let Some(Action::Listen(opts)) = actions.iter().find(|a| matches!(a, Action::Listen(_)))
        else {
            panic!("{actions:?}")
        };
        assert!(opts.address().to_string().starts_with("/ip4/0.0.0.0/"));
        // A connection from the IPv6 socket is observed on its own terms.
        let v6_relay = ConnectionId::new_unchecked(4);
        setup.dial(v6_relay, "/ip6/2001:db8::10/udp/443/quic-v1");
        let (observation, _) =
            setup
                .mapping
                .observed(v6_relay, &addr("/ip6/2001:db8::77/udp/40005/quic-v1"), &[]);
        assert_eq!(observation, Observation::Preserved { port: 40005 });
        assert_eq!(setup.mapping.nat(Family::Ipv6).observers, 1);
        assert_eq!(setup.mapping.nat(Family::Ipv6).family, Family::Ipv6);
    }

    #[test]
    fn another_port_of_the_same_observer_is_a_second_opinion() {
        let mut setup = setup(8);
        let relay_port_2 = "/ip4/203.0.113.10/udp/4443/quic-v1";
        let (_, actions) = setup.mapping.observed(
            setup.relay,
            &addr("/ip4/198.51.100.1/udp/31000/quic-v1"),
            &[addr(RELAY), addr(relay_port_2)],
        );
        let Some(Action::Probe { addr: to, .. }) =
            actions.iter().find(|a| matches!(a, Action::Probe { .. }))
        else {
            panic!("no probe in {actions:?}")
        };
        assert_eq!(to, &addr(relay_port_2));
        // Another IP is preferred when there is one.
        assert_eq!(
            probe_target(&addr(RELAY), &[addr(relay_port_2), addr(RELAY_2)]),
            Some(addr(RELAY_2))
        );
        let probe = ConnectionId::new_unchecked(5);
        setup.mapping.probe_started(Family::Ipv4, probe);
        setup.dial(probe, relay_port_2);
        let (_, answer) =
            setup
                .mapping
                .observed(probe, &addr("/ip4/198.51.100.1/udp/52000/quic-v1"), &[]);
        assert_eq!(
            nat(&answer).unwrap().mapping,
            MappingKind::EndpointDependent
        );
    }

    #[test]
    fn once_two_observers_agree_a_kept_port_sends_no_probe() {
        // The seed's relay has one address: its observation alone says
        // "unknown" and there is nothing to probe.
        let mut setup = setup(8);
        let public = "/ip4/198.51.100.1/udp/40000/quic-v1";
        let (_, actions) = setup
            .mapping
            .observed(setup.relay, &addr(public), &[addr(RELAY)]);
        assert!(actions.iter().all(|a| !matches!(a, Action::Probe { .. })));
        // A punched peer is the second observer and classifies the NAT; its
        // other listener (the 443 beside its punch port) gets no probe.
        let direct = ConnectionId::new_unchecked(3);
        let peer_punch = "/ip4/198.51.100.2/udp/40001/quic-v1";
        setup.dial(direct, peer_punch);
        let (observation, actions) = setup.mapping.observed(
            direct,
            &addr(public),
            &[addr(peer_punch), addr("/ip4/198.51.100.2/udp/443/quic-v1")],
        );
        assert_eq!(observation, Observation::Preserved { port: 40000 });
        assert_eq!(
            nat(&actions).unwrap().mapping,
            MappingKind::EndpointIndependent
        );
        assert!(
            actions.iter().all(|a| !matches!(a, Action::Probe { .. })),
            "{actions:?}"
        );
    }

    #[test]
    fn observations_of_other_sockets_say_nothing() {
        let mut setup = setup(8);
        let inbound = ConnectionId::new_unchecked(7);
        setup.mapping.established(
            inbound,
            PeerId::random(),
            &ConnectedPoint::Listener {
                local_addr: addr("/ip4/10.1.0.10/udp/443/quic-v1"),
                send_back_addr: addr("/ip4/198.51.100.9/udp/7000/quic-v1"),
            },
        );
        let (observation, actions) =
            setup
                .mapping
                .observed(inbound, &addr("/ip4/198.51.100.1/udp/443/quic-v1"), &[]);
        assert_eq!(observation, Observation::Unrelated);
        assert!(actions.is_empty());
        let unknown = ConnectionId::new_unchecked(99);
        let (observation, _) =
            setup
                .mapping
                .observed(unknown, &addr("/ip4/1.2.3.4/udp/1/quic-v1"), &[]);
        assert_eq!(observation, Observation::Unrelated);
    }

    #[test]
    fn a_dual_stack_node_reaches_an_observer_in_the_family_no_one_has_seen() {
        let mut setup = setup_in(8, CandidateMode::SocketAware);
        let v6 = ListenerId::next();
        setup.table.bound(v6, "[::]:40003".parse().unwrap());
        let listen = [
            addr(RELAY),
            addr("/ip6/fe80::1/udp/443/quic-v1"),
            addr("/ip6/2001:db8:113::10/udp/443/quic-v1"),
        ];
        setup.mapping.observed(
            setup.relay,
            &addr("/ip4/198.51.100.1/udp/40000/quic-v1"),
            &listen,
        );
        let actions = setup.mapping.reach(setup.relay, &listen);
        let [
            Action::Reach {
                family, addr: to, ..
            },
        ] = &actions[..]
        else {
            panic!("{actions:?}")
        };
        assert_eq!(*family, Family::Ipv6);
        assert_eq!(to, &addr("/ip6/2001:db8:113::10/udp/443/quic-v1"));
        assert!(!setup.mapping.probing());
        // Once per family.
        assert!(setup.mapping.reach(setup.relay, &listen).is_empty());
        // Its connection is observed like any other, then closes (the
        // IPv4 relay connection carries the rest).
        let reach = ConnectionId::new_unchecked(9);
        setup.mapping.reach_started(reach);
        // Until it is observed, the node's candidates may lack the family:
        // it counts as a probe under way.
        assert!(setup.mapping.probing());
        setup.dial(reach, "/ip6/2001:db8:113::10/udp/443/quic-v1");
        assert!(setup.mapping.probing());
        let (observation, actions) = setup.mapping.observed(
            reach,
            &addr("/ip6/2001:db8:1::10/udp/40003/quic-v1"),
            &listen,
        );
        assert_eq!(observation, Observation::Preserved { port: 40003 });
        assert!(!setup.mapping.probing());
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Action::Close { id, .. } if *id == reach)),
            "{actions:?}"
        );
        assert_eq!(
            setup.mapping.public(Family::Ipv6),
            Some("[2001:db8:1::10]:40003".parse().unwrap())
        );
        // Without an IPv6 punch socket nothing is dialed.
        let mut v4_only = setup_in(8, CandidateMode::SocketAware);
        v4_only.mapping.observed(
            v4_only.relay,
            &addr("/ip4/198.51.100.1/udp/40000/quic-v1"),
            &listen,
        );
        assert!(v4_only.mapping.reach(v4_only.relay, &listen).is_empty());
    }
}
