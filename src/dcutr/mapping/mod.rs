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
//! classification. Which sockets are the punch sockets comes in with each
//! call, as a [`Snapshot`] of the transport's table, and which one a
//! connection left from with the connection.
//!
//! Pure logic, a fold over the swarm's events: it answers with [`Action`]s
//! for the behaviour to carry out; the port a move goes to comes from a
//! generator seeded by the caller. The parts: `connections` (which
//! connection used a punch socket), `probe` (when a second observer is
//! asked, and which), `moves` (when the socket moves, and where), and the
//! classifier of `nat.rs`, driven here.

mod connections;
mod moves;
mod probe;

use std::{collections::HashMap, net::SocketAddr};

use libp2p_core::{Multiaddr, transport::ListenerId};
use libp2p_identity::PeerId;
use libp2p_swarm::{ConnectionId, ListenOpts};
use rand::{SeedableRng, rngs::StdRng};

use crate::{
    dcutr::{
        config::CandidateMode,
        nat::{Classifier, NatStatus},
    },
    net::{Family, Snapshot},
};
use connections::Connections;
use moves::{Moves, Policy};
use probe::{Next, PortState};

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

/// Moves and observations of the punch socket of one family.
#[derive(Debug, Default)]
struct SocketState {
    moves: Moves,
    classifier: Classifier,
    port: PortState,
    /// An observer was dialed from this family's punch socket to have it
    /// seen at all.
    reached: bool,
}

#[derive(Debug)]
pub(crate) struct Mapping {
    policy: Policy,
    connections: Connections,
    families: HashMap<Family, SocketState>,
}

impl Mapping {
    /// `seed` seeds the choice of the port a move goes to.
    pub(crate) fn new(max_moves: u8, mode: CandidateMode, seed: u64) -> Self {
        Self {
            policy: Policy {
                max: max_moves,
                mode,
                rng: StdRng::seed_from_u64(seed),
            },
            connections: Connections::default(),
            families: HashMap::new(),
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
            state.moves.listening(id);
        }
    }

    /// Listening on the new port failed (it is taken here): try another.
    pub(crate) fn listen_failed(&mut self, id: ListenerId, sockets: &Snapshot) -> Vec<Action> {
        let policy = &mut self.policy;
        self.families
            .iter_mut()
            .find_map(|(family, state)| state.moves.listen_failed(policy, *family, id, sockets))
            .unwrap_or_default()
    }

    /// A direct connection to `remote` opened; `local` is the punch socket
    /// it uses (the transport recorded which one a dial left from), if it
    /// uses one.
    pub(crate) fn established(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        remote: Multiaddr,
        local: Option<SocketAddr>,
    ) {
        self.connections.established(id, peer, remote, local);
    }

    pub(crate) fn closed(&mut self, id: ConnectionId) {
        self.connections.closed(id);
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
            || self.connections.reaching()
    }

    /// The dial asked for by [`Action::Reach`] is `id`.
    pub(crate) fn reach_started(&mut self, id: ConnectionId) {
        self.connections.reach_dialed(id);
    }

    /// After an observation on connection `id`: for each family whose punch
    /// socket no observer has seen, a dial to an address of that family
    /// among the observer's own (`listen_addrs`, from identify), once per
    /// family. Without it a dual-stack node whose relay connection is IPv4
    /// has no IPv6 observation, so neither an IPv6 candidate nor an IPv6
    /// class.
    pub(crate) fn reach(
        &mut self,
        id: ConnectionId,
        listen_addrs: &[Multiaddr],
        sockets: &Snapshot,
    ) -> Vec<Action> {
        let Some((peer, remote)) = self.connections.remote(id) else {
            return Vec::new();
        };
        let Ok(remote) = crate::net::QuicAddr::parse(remote).map(|q| q.socket) else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        for family in [Family::Ipv4, Family::Ipv6] {
            if sockets.get(family).is_none() || Family::of(remote.ip()) == family {
                continue;
            }
            let state = self.families.entry(family).or_default();
            if state.reached || state.classifier.public().is_some() {
                continue;
            }
            if let Some(addr) = probe::reach_target(family, remote, listen_addrs) {
                state.reached = true;
                actions.push(Action::Reach { family, peer, addr });
            }
        }
        actions
    }

    /// The probe asked for by [`Action::Probe`] for `family` is dialed as `id`.
    pub(crate) fn probe_started(&mut self, family: Family, id: ConnectionId) {
        self.connections.probe_dialed(id);
        self.families.entry(family).or_default().port.probe = Some(id);
    }

    /// A dial failed; if it was a probe, decide without its answer.
    pub(crate) fn dial_failed(&mut self, id: ConnectionId, sockets: &Snapshot) -> Vec<Action> {
        if !self.connections.dial_failed(id) {
            return Vec::new();
        }
        let Some((family, state)) = self
            .families
            .iter_mut()
            .find(|(_, state)| state.port.probe == Some(id))
        else {
            return Vec::new();
        };
        state.port.probe = None;
        match state.port.deferred.take() {
            Some(deferred) => {
                let redial = (deferred.peer, deferred.remote);
                state
                    .moves
                    .start_if_allowed(&mut self.policy, *family, redial, sockets)
                    .1
            }
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
        sockets: &Snapshot,
    ) -> (Observation, Vec<Action>) {
        let (observation, mut actions) = match self.connections.seen(id, observed, sockets) {
            Some(seen) => self.observe(id, seen, listen_addrs, sockets),
            None => (Observation::Unrelated, Vec::new()),
        };
        // A connection dialed to reach a family closes once observed, if an
        // older connection to the observer carries the rest.
        if let Some(peer) = self.connections.reached(id) {
            actions.push(Action::Close { peer, id });
        }
        (observation, actions)
    }

    /// What `seen`, an observation of a punch socket on connection `id`,
    /// says and asks for.
    fn observe(
        &mut self,
        id: ConnectionId,
        seen: connections::Seen,
        listen_addrs: &[Multiaddr],
        sockets: &Snapshot,
    ) -> (Observation, Vec<Action>) {
        let state = self.families.entry(seen.family).or_default();
        state.port.follow(seen.local);
        let mut actions = Vec::new();
        if let Some(status) =
            state
                .classifier
                .observe(seen.local, seen.peer, seen.observer, seen.observed)
        {
            actions.push(Action::Nat(status.with_family(seen.family)));
        }
        let next = if seen.probe {
            // The probe connection closes once its observation is in,
            // unless it is the only connection to the observer: then other
            // behaviours (a relay client's reservation or circuit) may
            // already use it, and it closes when idle.
            if state.port.answered(id) && self.connections.other_than_probe(seen.peer, id) {
                actions.push(Action::Close {
                    peer: seen.peer,
                    id,
                });
            }
            state.port.answer(&seen)
        } else {
            if seen.kept() {
                state.moves.settled();
            }
            let (next, probe) = state.port.first_opinion(
                &seen,
                state.classifier.mapping(),
                state.moves.moving(),
                self.policy.max > 0,
                listen_addrs,
            );
            if let Some(addr) = probe {
                actions.push(Action::Probe {
                    family: seen.family,
                    peer: seen.peer,
                    addr,
                });
            }
            next
        };
        let observation = match next {
            Next::Nothing => Observation::Unrelated,
            Next::Kept => Observation::Preserved { port: seen.local },
            Next::Wait { observed } => Observation::Rewritten {
                local: seen.local,
                observed,
                moving_to: None,
                probing: true,
            },
            Next::Decide {
                local,
                observed,
                redial,
            } => {
                let (moving_to, more) = state.moves.decide(
                    &mut self.policy,
                    &state.classifier,
                    seen.family,
                    local,
                    redial,
                    sockets,
                );
                actions.extend(more);
                Observation::Rewritten {
                    local,
                    observed,
                    moving_to,
                    probing: false,
                }
            }
        };
        (observation, actions)
    }
}

#[cfg(test)]
mod tests {
    use crate::net::{PortRange, QuicAddr, SocketTable};
    use libp2p_core::{Endpoint, transport::PortUse};

    use super::*;
    use crate::dcutr::nat::MappingKind;

    fn addr(text: &str) -> Multiaddr {
        text.parse().unwrap()
    }

    fn addrs(texts: &[&str]) -> Vec<Multiaddr> {
        texts.iter().map(|t| addr(t)).collect()
    }

    const RELAY: &str = "/ip4/203.0.113.10/udp/443/quic-v1";
    const RELAY_2: &str = "/ip4/203.0.113.11/udp/443/quic-v1";

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
            let sockets = self.table.handle();
            sockets.dialing(id, crate::net::DialPurpose::Ordinary);
            self.table.route(remote, Endpoint::Dialer, PortUse::Reuse);
            let local = sockets.source(id, remote);
            self.mapping.established(id, self.peer, addr(to), local);
        }

        /// The observer on connection `id` saw the punch socket at `seen`;
        /// its own addresses are `listen`.
        fn observe(
            &mut self,
            id: ConnectionId,
            seen: &str,
            listen: &[&str],
        ) -> (Observation, Vec<Action>) {
            let snapshot = self.table.handle().snapshot();
            self.mapping
                .observed(id, &addr(seen), &addrs(listen), &snapshot)
        }

        /// The relay saw the punch socket at `seen`.
        fn relay_saw(&mut self, seen: &str, listen: &[&str]) -> (Observation, Vec<Action>) {
            self.observe(self.relay, seen, listen)
        }

        fn reach(&mut self, id: ConnectionId, listen: &[&str]) -> Vec<Action> {
            let snapshot = self.table.handle().snapshot();
            self.mapping.reach(id, &addrs(listen), &snapshot)
        }

        fn dial_failed(&mut self, id: ConnectionId) -> Vec<Action> {
            let snapshot = self.table.handle().snapshot();
            self.mapping.dial_failed(id, &snapshot)
        }

        fn listen_failed(&mut self, id: ListenerId) -> Vec<Action> {
            let snapshot = self.table.handle().snapshot();
            self.mapping.listen_failed(id, &snapshot)
        }
    }

    fn setup(max_moves: u8) -> Setup {
        setup_in(max_moves, CandidateMode::Range)
    }

    fn setup_in(max_moves: u8, mode: CandidateMode) -> Setup {
        let table = SocketTable::new(PortRange::new(40000, 40009).unwrap(), 2);
        let mapping = Mapping::new(max_moves, mode, 7);
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
        setup.observe(probe, seen, &[])
    }

    fn nat(actions: &[Action]) -> Option<NatStatus> {
        actions.iter().rev().find_map(|a| match a {
            Action::Nat(status) => Some(*status),
            _ => None,
        })
    }

    /// Whether `actions` ask for a probe.
    fn asks_probe(actions: &[Action]) -> bool {
        actions.iter().any(|a| matches!(a, Action::Probe { .. }))
    }

    /// The connections `actions` close.
    fn closes(actions: &[Action]) -> Vec<ConnectionId> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Close { id, .. } => Some(*id),
                _ => None,
            })
            .collect()
    }

    /// The listener a move removes.
    fn removed(actions: &[Action]) -> Option<ListenerId> {
        actions.iter().find_map(|a| match a {
            Action::RemoveListener(id) => Some(*id),
            _ => None,
        })
    }

    /// The listen a move asks for.
    fn listen(actions: &[Action]) -> &ListenOpts {
        actions
            .iter()
            .find_map(|a| match a {
                Action::Listen(opts) => Some(opts),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no listen in {actions:?}"))
    }

    #[test]
    fn a_kept_port_is_preserved_and_a_probe_classifies_the_nat() {
        let mut setup = setup(8);
        let (observation, actions) =
            setup.relay_saw("/ip4/198.51.100.1/udp/40000/quic-v1", &[RELAY, RELAY_2]);
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
        let (observation, actions) =
            setup.relay_saw("/ip4/198.51.100.1/udp/51234/quic-v1", &[RELAY_2]);
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
        let removed = removed(&actions);
        assert_eq!(removed, Some(setup.listener));
        // Two interfaces: bind the unspecified address again.
        assert_eq!(
            listen(&actions).address(),
            &addr(&format!("/ip4/0.0.0.0/udp/{to}/quic-v1"))
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
            let (_, actions) = setup.relay_saw("/ip4/198.51.100.1/udp/20000/quic-v1", &[RELAY_2]);
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
        let (_, actions) = setup.relay_saw("/ip4/198.51.100.1/udp/51234/quic-v1", &[RELAY_2]);
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
        let (_, actions) = setup.relay_saw("/ip4/198.51.100.1/udp/31000/quic-v1", &[RELAY_2]);
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
        let opts = listen(&actions);
        // The swarm carries out the move: the transport closes the old
        // socket and binds the new one.
        setup.table.closed(setup.listener);
        setup
            .table
            .bound(opts.listener_id(), format!("0.0.0.0:{to}").parse().unwrap());
        setup.mapping.new_listen_addr(opts.listener_id());
        let again = ConnectionId::new_unchecked(3);
        setup.dial(again, RELAY);
        let (observation, _) = setup.observe(again, "/ip4/198.51.100.1/udp/33000/quic-v1", &[]);
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
        let (observation, actions) = setup.relay_saw("/ip4/198.51.100.1/udp/5/quic-v1", &[]);
        assert!(matches!(
            observation,
            Observation::Rewritten {
                moving_to: Some(_),
                probing: false,
                ..
            }
        ));
        let opts = listen(&actions);
        let retry = setup.listen_failed(opts.listener_id());
        assert!(
            matches!(&retry[..], [Action::Listen(_), Action::Dial { .. }]),
            "{retry:?}"
        );
    }

    #[test]
    fn a_probe_that_is_the_only_connection_to_its_observer_stays_open() {
        let mut setup = setup(8);
        let (_, actions) =
            setup.relay_saw("/ip4/198.51.100.1/udp/40000/quic-v1", &[RELAY, RELAY_2]);
        // The relay connection closed before the probe's answer came: the
        // probe is the one connection a relay client can use now.
        setup.mapping.closed(setup.relay);
        let (_, answer) = answer_probe(&mut setup, &actions, "/ip4/198.51.100.1/udp/40000/quic-v1");
        assert!(!setup.mapping.probing());
        assert_eq!(closes(&answer), [], "{answer:?}");
    }

    #[test]
    fn a_failed_probe_moves_without_its_answer() {
        let mut setup = setup(8);
        let (_, actions) = setup.relay_saw("/ip4/198.51.100.1/udp/51234/quic-v1", &[RELAY_2]);
        assert!(asks_probe(&actions));
        let probe = ConnectionId::new_unchecked(9);
        setup.mapping.probe_started(Family::Ipv4, probe);
        let actions = setup.dial_failed(probe);
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
            let snapshot = table.handle().snapshot();
            let mut policy = Policy {
                max: 8,
                mode: CandidateMode::Range,
                rng: StdRng::seed_from_u64(seed),
            };
            (0..4)
                .map(|_| {
                    Moves::default()
                        .next_port(&mut policy, Family::Ipv4, &snapshot)
                        .unwrap()
                })
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
        let (_, actions) = setup.relay_saw("/ip4/198.51.100.1/udp/5/quic-v1", &[]);
        let removed = removed(&actions);
        assert_eq!(removed, Some(setup.listener), "{actions:?}");
        let opts = listen(&actions);
        assert!(opts.address().to_string().starts_with("/ip4/0.0.0.0/"));
        // A connection from the IPv6 socket is observed on its own terms.
        let v6_relay = ConnectionId::new_unchecked(4);
        setup.dial(v6_relay, "/ip6/2001:db8::10/udp/443/quic-v1");
        let (observation, _) = setup.observe(v6_relay, "/ip6/2001:db8::77/udp/40005/quic-v1", &[]);
        assert_eq!(observation, Observation::Preserved { port: 40005 });
        assert_eq!(setup.mapping.nat(Family::Ipv6).observers, 1);
        assert_eq!(setup.mapping.nat(Family::Ipv6).family, Family::Ipv6);
    }

    #[test]
    fn another_port_of_the_same_observer_is_a_second_opinion() {
        let mut setup = setup(8);
        let relay_port_2 = "/ip4/203.0.113.10/udp/4443/quic-v1";
        let (_, actions) = setup.relay_saw(
            "/ip4/198.51.100.1/udp/31000/quic-v1",
            &[RELAY, relay_port_2],
        );
        let Some(Action::Probe { addr: to, .. }) =
            actions.iter().find(|a| matches!(a, Action::Probe { .. }))
        else {
            panic!("no probe in {actions:?}")
        };
        assert_eq!(to, &addr(relay_port_2));
        // Another IP is preferred when there is one.
        assert_eq!(
            probe::probe_target(&addr(RELAY), &[addr(relay_port_2), addr(RELAY_2)]),
            Some(addr(RELAY_2))
        );
        let probe = ConnectionId::new_unchecked(5);
        setup.mapping.probe_started(Family::Ipv4, probe);
        setup.dial(probe, relay_port_2);
        let (_, answer) = setup.observe(probe, "/ip4/198.51.100.1/udp/52000/quic-v1", &[]);
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
        let (_, actions) = setup.relay_saw(public, &[RELAY]);
        assert!(!asks_probe(&actions));
        // A punched peer is the second observer and classifies the NAT; its
        // other listener (the 443 beside its punch port) gets no probe.
        let direct = ConnectionId::new_unchecked(3);
        let peer_punch = "/ip4/198.51.100.2/udp/40001/quic-v1";
        setup.dial(direct, peer_punch);
        let (observation, actions) = setup.observe(
            direct,
            public,
            &[peer_punch, "/ip4/198.51.100.2/udp/443/quic-v1"],
        );
        assert_eq!(observation, Observation::Preserved { port: 40000 });
        assert_eq!(
            nat(&actions).unwrap().mapping,
            MappingKind::EndpointIndependent
        );
        assert!(!asks_probe(&actions), "{actions:?}");
    }

    #[test]
    fn observations_of_other_sockets_say_nothing() {
        let mut setup = setup(8);
        let inbound = ConnectionId::new_unchecked(7);
        // Accepted on the ordinary listener (443), not the punch socket.
        setup.mapping.established(
            inbound,
            PeerId::random(),
            addr("/ip4/198.51.100.9/udp/7000/quic-v1"),
            Some("10.1.0.10:443".parse().unwrap()),
        );
        let (observation, actions) =
            setup.observe(inbound, "/ip4/198.51.100.1/udp/443/quic-v1", &[]);
        assert_eq!(observation, Observation::Unrelated);
        assert!(actions.is_empty());
        let unknown = ConnectionId::new_unchecked(99);
        let (observation, _) = setup.observe(unknown, "/ip4/1.2.3.4/udp/1/quic-v1", &[]);
        assert_eq!(observation, Observation::Unrelated);
    }

    #[test]
    fn a_dual_stack_node_reaches_an_observer_in_the_family_no_one_has_seen() {
        let mut setup = setup_in(8, CandidateMode::SocketAware);
        let v6 = ListenerId::next();
        setup.table.bound(v6, "[::]:40003".parse().unwrap());
        let listen = [
            RELAY,
            "/ip6/fe80::1/udp/443/quic-v1",
            "/ip6/2001:db8:113::10/udp/443/quic-v1",
        ];
        setup.relay_saw("/ip4/198.51.100.1/udp/40000/quic-v1", &listen);
        let actions = setup.reach(setup.relay, &listen);
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
        assert!(setup.reach(setup.relay, &listen).is_empty());
        // Its connection is observed like any other, then closes (the
        // IPv4 relay connection carries the rest).
        let reach = ConnectionId::new_unchecked(9);
        setup.mapping.reach_started(reach);
        // Until it is observed, the node's candidates may lack the family:
        // it counts as a probe under way.
        assert!(setup.mapping.probing());
        setup.dial(reach, "/ip6/2001:db8:113::10/udp/443/quic-v1");
        assert!(setup.mapping.probing());
        let (observation, actions) =
            setup.observe(reach, "/ip6/2001:db8:1::10/udp/40003/quic-v1", &listen);
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
        v4_only.relay_saw("/ip4/198.51.100.1/udp/40000/quic-v1", &listen);
        assert!(v4_only.reach(v4_only.relay, &listen).is_empty());
    }
}
