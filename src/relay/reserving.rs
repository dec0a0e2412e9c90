//! Each peer's connections that hold a reservation.

use std::collections::HashMap;

use libp2p_identity::PeerId;
use libp2p_swarm::ConnectionId;

/// Each peer's connections that hold a reservation, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Reserving {
    connections: HashMap<PeerId, Vec<ConnectionId>>,
}

impl Reserving {
    /// `peer` holds a reservation on `connection`. A new reservation (not a
    /// renewal) returns the peer's other reserving connections, which are
    /// no longer counted: they are to be closed.
    pub(crate) fn reserved(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        renewed: bool,
    ) -> Vec<ConnectionId> {
        let connections = self.connections.entry(peer).or_default();
        let older = if renewed {
            Vec::new()
        } else {
            connections.drain(..).filter(|c| *c != connection).collect()
        };
        if !connections.contains(&connection) {
            connections.push(connection);
        }
        older
    }

    /// `connection` of `peer` holds no reservation any more (it timed out,
    /// or the connection closed).
    pub(crate) fn unreserved(&mut self, peer: PeerId, connection: ConnectionId) {
        if let Some(connections) = self.connections.get_mut(&peer) {
            connections.retain(|c| *c != connection);
            if connections.is_empty() {
                self.connections.remove(&peer);
            }
        }
    }

    /// Peers holding a reservation.
    pub(crate) fn peers(&self) -> usize {
        self.connections.len()
    }

    /// `peer`'s reserving connections, oldest first.
    #[cfg(test)]
    pub(crate) fn of(&self, peer: &PeerId) -> &[ConnectionId] {
        self.connections.get(peer).map_or(&[], Vec::as_slice)
    }
}
