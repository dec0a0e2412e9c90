//! Whether the NAT keeps the punch port, and moving the punch socket when it
//! does not.
//!
//! Several nodes behind one NAT (pods of a Kubernetes node behind its
//! masquerade) all bind the first free port of the range, each in its own
//! network namespace. The NAT keeps that port for the first of them and
//! remaps the others' flows. A node that learns its punch port was rewritten
//! moves its punch socket to another port of the range and reconnects to the
//! observer, until an observation shows the port kept.
//!
//! Pure logic: it answers with [`Action`]s for the behaviour to carry out.

use std::{
    collections::{HashMap, HashSet},
    hash::BuildHasher,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use libp2p_core::{ConnectedPoint, Multiaddr, transport::ListenerId};
use libp2p_identity::PeerId;
use libp2p_swarm::{ConnectionId, ListenOpts};
use punchport_core::{PortRange, QuicAddr};

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
        /// (moves switched off or used up, or no other port left).
        moving_to: Option<u16>,
    },
}

/// Something the behaviour has to ask the swarm for.
#[derive(Debug)]
pub(crate) enum Action {
    RemoveListener(ListenerId),
    Listen(ListenOpts),
    Dial { peer: PeerId, addr: Multiaddr },
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
}

#[derive(Debug)]
struct Move {
    listener: ListenerId,
    bind: IpAddr,
    port: u16,
    redial: (PeerId, Multiaddr),
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
    random: std::collections::hash_map::RandomState,
}

impl Mapping {
    pub(crate) fn new(range: PortRange, max_moves: u8) -> Self {
        Self {
            range,
            max_moves,
            moves: 0,
            tried: HashSet::new(),
            listener: None,
            connections: HashMap::new(),
            moving: None,
            random: Default::default(),
        }
    }

    /// The punch port, as far as the listen addresses tell.
    pub(crate) fn punch_port(&self) -> Option<u16> {
        self.listener.as_ref().map(|l| l.port)
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
            },
        );
    }

    pub(crate) fn closed(&mut self, id: ConnectionId) {
        self.connections.remove(&id);
    }

    /// A remote observed `observed` on connection `id`.
    pub(crate) fn observed(
        &mut self,
        id: ConnectionId,
        observed: &Multiaddr,
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
        let observed_port = seen.socket.port();
        if observed_port == local {
            self.moves = 0;
            self.tried.clear();
            return (Observation::Preserved { port: local }, Vec::new());
        }
        let redial = (connection.peer, connection.remote.clone());
        let moving_to = if self.moving.is_some() {
            self.moving.as_ref().map(|m| m.port)
        } else if self.moves < self.max_moves {
            self.next_port()
        } else {
            None
        };
        let observation = Observation::Rewritten {
            local,
            observed: observed_port,
            moving_to,
        };
        let actions = match (moving_to, &self.listener, &self.moving) {
            (Some(port), Some(listener), None) => {
                let bind = bind_ip(&listener.ips);
                let old = listener.id;
                self.start_move(bind, port, redial, Some(old))
            }
            _ => Vec::new(),
        };
        (observation, actions)
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

    fn relay() -> (PeerId, Multiaddr) {
        (PeerId::random(), addr("/ip4/203.0.113.10/udp/443/quic-v1"))
    }

    fn setup(max_moves: u8) -> (Mapping, ListenerId, ConnectionId, PeerId) {
        let mut mapping = Mapping::new(PortRange::new(40000, 40009).unwrap(), max_moves);
        let listener = ListenerId::next();
        mapping.new_listen_addr(listener, &addr("/ip4/127.0.0.1/udp/40000/quic-v1"));
        mapping.new_listen_addr(listener, &addr("/ip4/10.1.0.10/udp/40000/quic-v1"));
        let (peer, relay_addr) = relay();
        let connection = ConnectionId::new_unchecked(1);
        mapping.established(
            connection,
            peer,
            &ConnectedPoint::Dialer {
                address: relay_addr,
                role_override: libp2p_core::Endpoint::Dialer,
                port_use: libp2p_core::transport::PortUse::Reuse,
            },
        );
        (mapping, listener, connection, peer)
    }

    #[test]
    fn a_kept_port_is_preserved() {
        let (mut mapping, _, connection, _) = setup(8);
        let (observation, actions) =
            mapping.observed(connection, &addr("/ip4/198.51.100.1/udp/40000/quic-v1"));
        assert_eq!(observation, Observation::Preserved { port: 40000 });
        assert!(actions.is_empty());
    }

    #[test]
    fn a_rewritten_port_moves_the_socket_and_redials_the_observer() {
        let (mut mapping, listener, connection, peer) = setup(8);
        let (observation, actions) =
            mapping.observed(connection, &addr("/ip4/198.51.100.1/udp/51234/quic-v1"));
        let Observation::Rewritten {
            local: 40000,
            observed: 51234,
            moving_to: Some(to),
        } = observation
        else {
            panic!("{observation:?}")
        };
        assert!((40001..=40009).contains(&to), "{to}");
        let [
            Action::RemoveListener(removed),
            Action::Listen(opts),
            Action::Dial { peer: dialed, .. },
        ] = &actions[..]
        else {
            panic!("{actions:?}")
        };
        assert_eq!(*removed, listener);
        assert_eq!(*dialed, peer);
        // Two interfaces: bind the unspecified address again.
        assert_eq!(
            opts.address(),
            &addr(&format!("/ip4/0.0.0.0/udp/{to}/quic-v1"))
        );
    }

    #[test]
    fn a_taken_port_is_skipped_and_moves_are_bounded() {
        let (mut mapping, _, connection, _) = setup(2);
        let (_, actions) = mapping.observed(connection, &addr("/ip4/198.51.100.1/udp/5/quic-v1"));
        let Some(Action::Listen(opts)) = actions.get(1) else {
            panic!("{actions:?}")
        };
        let retry = mapping.listen_failed(opts.listener_id());
        assert!(
            matches!(&retry[..], [Action::Listen(_), Action::Dial { .. }]),
            "{retry:?}"
        );
        // Both moves are used up: the next rewrite does not move.
        let Action::Listen(opts) = &retry[0] else {
            unreachable!()
        };
        let port = QuicAddr::parse(opts.address()).unwrap().socket.port();
        mapping.new_listen_addr(opts.listener_id(), opts.address());
        let again = ConnectionId::new_unchecked(2);
        mapping.established(
            again,
            PeerId::random(),
            &ConnectedPoint::Dialer {
                address: addr("/ip4/203.0.113.10/udp/443/quic-v1"),
                role_override: libp2p_core::Endpoint::Dialer,
                port_use: libp2p_core::transport::PortUse::Reuse,
            },
        );
        let (observation, actions) =
            mapping.observed(again, &addr("/ip4/198.51.100.1/udp/6/quic-v1"));
        assert_eq!(
            observation,
            Observation::Rewritten {
                local: port,
                observed: 6,
                moving_to: None
            }
        );
        assert!(actions.is_empty());
    }

    #[test]
    fn observations_of_other_sockets_say_nothing() {
        let (mut mapping, _, _, _) = setup(8);
        let inbound = ConnectionId::new_unchecked(7);
        mapping.established(
            inbound,
            PeerId::random(),
            &ConnectedPoint::Listener {
                local_addr: addr("/ip4/10.1.0.10/udp/443/quic-v1"),
                send_back_addr: addr("/ip4/198.51.100.9/udp/7000/quic-v1"),
            },
        );
        let (observation, actions) =
            mapping.observed(inbound, &addr("/ip4/198.51.100.1/udp/443/quic-v1"));
        assert_eq!(observation, Observation::Unrelated);
        assert!(actions.is_empty());
        let unknown = ConnectionId::new_unchecked(99);
        assert_eq!(
            mapping
                .observed(unknown, &addr("/ip4/1.2.3.4/udp/1/quic-v1"))
                .0,
            Observation::Unrelated
        );
    }
}
