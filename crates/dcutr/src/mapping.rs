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
//! Pure logic: it answers with [`Action`]s for the behaviour to carry out.

use std::{
    collections::{HashMap, HashSet},
    hash::BuildHasher,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use libp2p_core::{ConnectedPoint, Multiaddr, transport::ListenerId};
use libp2p_identity::PeerId;
use libp2p_swarm::{ConnectionId, ListenOpts};
use punchport_core::{Family, PortRange, QuicAddr};

use crate::{
    config::CandidateMode,
    nat::{Classifier, MappingKind, NatStatus},
};

/// What an observation of one of our connections says about the punch
/// port's mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Dial `addr` of `peer` as a second observer, then report the dial's
    /// connection id with [`Mapping::probe_started`].
    Probe {
        peer: PeerId,
        addr: Multiaddr,
    },
    /// The NAT classification changed.
    Nat(NatStatus),
}

#[derive(Debug)]
struct PunchListener {
    id: ListenerId,
    port: u16,
    ips: HashSet<IpAddr>,
}

#[derive(Debug)]
struct Connection {
    peer: PeerId,
    remote: Multiaddr,
    /// The punch port the connection uses, if it uses the punch socket.
    local_port: Option<u16>,
    probe: bool,
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

#[derive(Debug)]
pub(crate) struct Mapping {
    range: PortRange,
    max_moves: u8,
    moves: u8,
    tried: HashSet<u16>,
    listener: Option<PunchListener>,
    connections: HashMap<ConnectionId, Connection>,
    moving: Option<Move>,
    classifier: Classifier,
    port: PortState,
    probes: HashSet<ConnectionId>,
    mode: CandidateMode,
    random: std::collections::hash_map::RandomState,
}

impl Mapping {
    pub(crate) fn new(range: PortRange, max_moves: u8, mode: CandidateMode) -> Self {
        Self {
            range,
            max_moves,
            moves: 0,
            tried: HashSet::new(),
            listener: None,
            connections: HashMap::new(),
            moving: None,
            classifier: Classifier::default(),
            port: PortState::default(),
            probes: HashSet::new(),
            mode,
            random: Default::default(),
        }
    }

    /// The punch port, as far as the listen addresses tell.
    pub(crate) fn punch_port(&self) -> Option<u16> {
        self.listener.as_ref().map(|l| l.port)
    }

    /// What the observations say about the NAT.
    pub(crate) fn nat(&self) -> NatStatus {
        self.classifier.status()
    }

    pub(crate) fn new_listen_addr(&mut self, id: ListenerId, addr: &Multiaddr) {
        let Ok(quic) = QuicAddr::parse(addr) else {
            return;
        };
        let port = quic.socket.port();
        if !self.range.contains(port) {
            return;
        }
        if self.moving.as_ref().is_some_and(|m| m.listener == id) {
            self.moving = None;
        }
        match &mut self.listener {
            Some(listener) if listener.id == id => {
                listener.ips.insert(quic.socket.ip());
            }
            _ => {
                self.listener = Some(PunchListener {
                    id,
                    port,
                    ips: HashSet::from([quic.socket.ip()]),
                });
            }
        }
    }

    pub(crate) fn listener_closed(&mut self, id: ListenerId) {
        if self.listener.as_ref().is_some_and(|l| l.id == id) {
            self.listener = None;
        }
    }

    /// Listening on the new port failed (it is taken here): try another.
    pub(crate) fn listen_failed(&mut self, id: ListenerId) -> Vec<Action> {
        let Some(failed) = self.moving.take_if(|m| m.listener == id) else {
            return Vec::new();
        };
        tracing::debug!(
            port = failed.port,
            "the punch port to move to is taken here"
        );
        match self.next_port() {
            Some(port) => self.start_move(failed.bind, port, failed.redial, None),
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
        let local_port = match endpoint {
            ConnectedPoint::Listener { local_addr, .. } => QuicAddr::parse(local_addr)
                .ok()
                .map(|q| q.socket.port())
                .filter(|port| self.range.contains(*port)),
            // Outbound connections leave from the punch socket.
            ConnectedPoint::Dialer { .. } => self.punch_port(),
        };
        self.connections.insert(
            id,
            Connection {
                peer,
                remote: endpoint.get_remote_address().clone(),
                local_port,
                probe: self.probes.remove(&id),
            },
        );
    }

    pub(crate) fn closed(&mut self, id: ConnectionId) {
        self.connections.remove(&id);
    }

    /// The probe asked for by [`Action::Probe`] is dialed as `id`.
    pub(crate) fn probe_started(&mut self, id: ConnectionId) {
        self.probes.insert(id);
        self.port.probe = Some(id);
    }

    /// A dial failed; if it was a probe, decide without its answer.
    pub(crate) fn dial_failed(&mut self, id: ConnectionId) -> Vec<Action> {
        if !self.probes.remove(&id) || self.port.probe != Some(id) {
            return Vec::new();
        }
        self.port.probe = None;
        match self.port.deferred.take() {
            Some((peer, remote, _, _)) => self.move_if_allowed((peer, remote)).1,
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
        let (Some(connection), Ok(seen)) = (self.connections.get(&id), QuicAddr::parse(observed))
        else {
            return (Observation::Unrelated, Vec::new());
        };
        let Some(local) = connection
            .local_port
            .filter(|p| Some(*p) == self.punch_port())
        else {
            return (Observation::Unrelated, Vec::new());
        };
        let (peer, remote, probe) = (connection.peer, connection.remote.clone(), connection.probe);
        let Ok(observer) = QuicAddr::parse(&remote).map(|q| q.socket) else {
            return (Observation::Unrelated, Vec::new());
        };
        if self.port.port != local {
            self.port = PortState {
                port: local,
                ..PortState::default()
            };
        }
        let mut actions = Vec::new();
        if let Some(status) = self.classifier.observe(local, observer, seen.socket) {
            actions.push(Action::Nat(status));
        }
        // The probe connection stays: it is an ordinary connection to the
        // observer by now, which other behaviours (a relay client's
        // reservation or circuit) may already use. It closes when idle.
        if probe && self.port.probe == Some(id) {
            self.port.probe = None;
        }
        let observed_port = seen.socket.port();
        let kept = observed_port == local;
        if kept && !probe {
            self.moves = 0;
            self.tried.clear();
        }

        // The answer to a probe: decide a move that waited for it.
        if probe {
            let Some((peer, remote, local, first_seen)) = self.port.deferred.take() else {
                let observation = if kept {
                    Observation::Preserved { port: local }
                } else {
                    Observation::Unrelated
                };
                return (observation, actions);
            };
            let (moving_to, more) = self.move_unless_every_port_is_rewritten((peer, remote), local);
            actions.extend(more);
            let observation = Observation::Rewritten {
                local,
                observed: first_seen,
                moving_to,
                probing: false,
            };
            return (observation, actions);
        }

        if !self.port.probed
            && self.moving.is_none()
            && let Some(addr) = probe_target(&remote, listen_addrs)
        {
            self.port.probed = true;
            actions.push(Action::Probe { peer, addr });
            if !kept && self.max_moves > 0 {
                self.port.deferred = Some((peer, remote, local, observed_port));
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
        if self.port.deferred.is_some() {
            // Still waiting for the probe.
            let observation = Observation::Rewritten {
                local,
                observed: observed_port,
                moving_to: None,
                probing: true,
            };
            return (observation, actions);
        }
        let (moving_to, more) = self.move_unless_every_port_is_rewritten((peer, remote), local);
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
        redial: (PeerId, Multiaddr),
        local: u16,
    ) -> (Option<u16>, Vec<Action>) {
        match self.mode {
            CandidateMode::SocketAware
                if !(self.classifier.status().mapping == MappingKind::EndpointDependent
                    && self.classifier.someone_saw(local)) =>
            {
                (None, Vec::new())
            }
            _ => self.move_if_allowed(redial),
        }
    }

    /// Starts a move if one is allowed and none is under way.
    fn move_if_allowed(&mut self, redial: (PeerId, Multiaddr)) -> (Option<u16>, Vec<Action>) {
        if let Some(moving) = &self.moving {
            return (Some(moving.port), Vec::new());
        }
        if self.moves >= self.max_moves {
            return (None, Vec::new());
        }
        let (Some(port), Some(listener)) = (self.next_port(), &self.listener) else {
            return (None, Vec::new());
        };
        let bind = bind_ip(&listener.ips);
        let old = listener.id;
        let actions = self.start_move(bind, port, redial, Some(old));
        (Some(port), actions)
    }

    fn start_move(
        &mut self,
        bind: IpAddr,
        port: u16,
        redial: (PeerId, Multiaddr),
        old: Option<ListenerId>,
    ) -> Vec<Action> {
        self.moves += 1;
        self.tried.insert(port);
        let addr = QuicAddr {
            socket: (bind, port).into(),
            peer_id: None,
        }
        .to_multiaddr();
        let opts = ListenOpts::new(addr);
        self.moving = Some(Move {
            listener: opts.listener_id(),
            bind,
            port,
            redial: redial.clone(),
        });
        let mut actions = Vec::new();
        if let Some(old) = old {
            if let Some(listener) = &self.listener {
                self.tried.insert(listener.port);
            }
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
    fn next_port(&self) -> Option<u16> {
        let free: Vec<u16> = self
            .range
            .ports()
            .filter(|p| !self.tried.contains(p) && Some(*p) != self.punch_port())
            .collect();
        if free.is_empty() {
            return None;
        }
        let pick = self.random.hash_one((self.moves, self.tried.len())) as usize % free.len();
        Some(free[pick])
    }
}

/// Another QUIC address of the observer, at another IP of the same family:
/// a second observer.
fn probe_target(remote: &Multiaddr, listen_addrs: &[Multiaddr]) -> Option<Multiaddr> {
    let remote = QuicAddr::parse(remote).ok()?.socket;
    listen_addrs
        .iter()
        .filter_map(|addr| QuicAddr::parse(addr).ok())
        .find(|candidate| {
            let ip = candidate.socket.ip();
            ip != remote.ip()
                && Family::of(ip) == Family::of(remote.ip())
                && !ip.is_unspecified()
                && !ip.is_loopback()
                && ip.is_loopback() == remote.ip().is_loopback()
        })
        .map(|q| {
            QuicAddr {
                socket: SocketAddr::new(q.socket.ip(), q.socket.port()),
                peer_id: None,
            }
            .to_multiaddr()
        })
}

/// The IP to bind a moved punch socket to: the unspecified address when the
/// socket listened on several interfaces, otherwise its one IP.
fn bind_ip(ips: &HashSet<IpAddr>) -> IpAddr {
    let mut iter = ips.iter();
    match (iter.next(), iter.next()) {
        (Some(ip), None) => *ip,
        (Some(IpAddr::V6(_)), _) => Ipv6Addr::UNSPECIFIED.into(),
        _ => Ipv4Addr::UNSPECIFIED.into(),
    }
}

#[cfg(test)]
mod tests {
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
        listener: ListenerId,
        relay: ConnectionId,
        peer: PeerId,
    }

    fn setup(max_moves: u8) -> Setup {
        setup_in(max_moves, CandidateMode::Range)
    }

    fn setup_in(max_moves: u8, mode: CandidateMode) -> Setup {
        let mut mapping = Mapping::new(PortRange::new(40000, 40009).unwrap(), max_moves, mode);
        let listener = ListenerId::next();
        mapping.new_listen_addr(listener, &addr("/ip4/127.0.0.1/udp/40000/quic-v1"));
        mapping.new_listen_addr(listener, &addr("/ip4/10.1.0.10/udp/40000/quic-v1"));
        let peer = PeerId::random();
        let relay = ConnectionId::new_unchecked(1);
        mapping.established(relay, peer, &dialer(RELAY));
        Setup {
            mapping,
            listener,
            relay,
            peer,
        }
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
        setup.mapping.probe_started(probe);
        setup
            .mapping
            .established(probe, setup.peer, &dialer(RELAY_2));
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
        assert!(matches!(answer[..], [Action::Nat(_)]), "{answer:?}");
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
        setup.mapping.new_listen_addr(
            opts.listener_id(),
            &addr(&format!("/ip4/10.1.0.10/udp/{to}/quic-v1")),
        );
        let again = ConnectionId::new_unchecked(3);
        setup.mapping.established(again, setup.peer, &dialer(RELAY));
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
    fn a_failed_probe_moves_without_its_answer() {
        let mut setup = setup(8);
        let (_, actions) = setup.mapping.observed(
            setup.relay,
            &addr("/ip4/198.51.100.1/udp/51234/quic-v1"),
            &[addr(RELAY_2)],
        );
        assert!(actions.iter().any(|a| matches!(a, Action::Probe { .. })));
        let probe = ConnectionId::new_unchecked(9);
        setup.mapping.probe_started(probe);
        let actions = setup.mapping.dial_failed(probe);
        assert!(
            actions.iter().any(|a| matches!(a, Action::Listen(_))),
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
}
