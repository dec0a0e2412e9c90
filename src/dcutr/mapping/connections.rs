//! Which of our connections used a punch socket, and which of them were
//! dialed as probes or to reach a family's punch socket.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
};

use libp2p_core::Multiaddr;
use libp2p_identity::PeerId;
use libp2p_swarm::ConnectionId;

use crate::net::{Family, QuicAddr, Snapshot};

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

/// An observation made on a connection of a punch socket.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) family: Family,
    /// The punch port the connection left from.
    pub(super) local: u16,
    pub(super) peer: PeerId,
    /// The observer's address, as we dialed or accepted it.
    pub(super) remote: Multiaddr,
    pub(super) observer: SocketAddr,
    /// Where the observer saw the punch socket.
    pub(super) observed: SocketAddr,
    /// The connection was dialed as a probe.
    pub(super) probe: bool,
}

impl Seen {
    /// Whether the NAT kept the punch port for this observer.
    pub(super) fn kept(&self) -> bool {
        self.observed.port() == self.local
    }
}

#[derive(Debug, Default)]
pub(super) struct Connections {
    open: HashMap<ConnectionId, Connection>,
    /// Dials of probes, until their connections open.
    probes: HashSet<ConnectionId>,
    /// Dials to reach a family's punch socket, until their connections open.
    reaching: HashSet<ConnectionId>,
}

impl Connections {
    /// A direct connection opened; `local` is the punch socket it uses, if
    /// it uses one.
    pub(super) fn established(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        remote: Multiaddr,
        local: Option<SocketAddr>,
    ) {
        let connection = Connection {
            peer,
            remote,
            local,
            probe: self.probes.remove(&id),
            reach: self.reaching.remove(&id),
        };
        self.open.insert(id, connection);
    }

    pub(super) fn closed(&mut self, id: ConnectionId) {
        self.open.remove(&id);
    }

    pub(super) fn len(&self) -> usize {
        self.open.len()
    }

    pub(super) fn probe_dialed(&mut self, id: ConnectionId) {
        self.probes.insert(id);
    }

    pub(super) fn reach_dialed(&mut self, id: ConnectionId) {
        self.reaching.insert(id);
    }

    /// The dial `id` failed; whether it was a probe's.
    pub(super) fn dial_failed(&mut self, id: ConnectionId) -> bool {
        self.reaching.remove(&id);
        self.probes.remove(&id)
    }

    /// Whether a dial or connection to reach a family is not yet observed.
    pub(super) fn reaching(&self) -> bool {
        !self.reaching.is_empty() || self.open.values().any(|c| c.reach)
    }

    /// The observer of connection `id` and its address.
    pub(super) fn remote(&self, id: ConnectionId) -> Option<(PeerId, &Multiaddr)> {
        self.open.get(&id).map(|c| (c.peer, &c.remote))
    }

    /// What `observed` on connection `id` says, if the connection uses the
    /// open punch socket of its family and both addresses are QUIC.
    pub(super) fn seen(
        &self,
        id: ConnectionId,
        observed: &Multiaddr,
        sockets: &Snapshot,
    ) -> Option<Seen> {
        let connection = self.open.get(&id)?;
        let observed = QuicAddr::parse(observed).ok()?.socket;
        let local = connection.local.filter(|l| sockets.is_punch(*l))?;
        let observer = QuicAddr::parse(&connection.remote).ok()?.socket;
        Some(Seen {
            family: Family::of(local.ip()),
            local: local.port(),
            peer: connection.peer,
            remote: connection.remote.clone(),
            observer,
            observed,
            probe: connection.probe,
        })
    }

    /// Connection `id` was dialed to reach a family and is now observed:
    /// it stops counting as such, and closes if another connection to the
    /// same peer (neither a probe nor a reach) carries the rest.
    pub(super) fn reached(&mut self, id: ConnectionId) -> Option<PeerId> {
        let connection = self.open.get_mut(&id).filter(|c| c.reach)?;
        connection.reach = false;
        let peer = connection.peer;
        self.open
            .iter()
            .any(|(other, c)| *other != id && c.peer == peer && !c.probe && !c.reach)
            .then_some(peer)
    }

    /// Whether a connection to `peer` other than `id`, and not a probe,
    /// is open: a probe's connection may close then.
    pub(super) fn other_than_probe(&self, peer: PeerId, id: ConnectionId) -> bool {
        self.open
            .iter()
            .any(|(other, c)| *other != id && c.peer == peer && !c.probe)
    }
}
