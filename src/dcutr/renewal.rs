//! A bound on libp2p-dcutr's own maps.
//!
//! libp2p-dcutr 0.15 (`src/behaviour.rs`) remembers every direct dial it
//! asks for in `direct_to_relayed_connections` (`:281`, `:314`) and never
//! removes an entry, and it counts listener-role dials per relayed
//! connection in `outgoing_direct_connection_attempts` (`:317`), removing an
//! entry only when such a dial succeeds (`:237`). A node that punches for
//! months grows both without bound.
//!
//! The copy in `holepunch` keeps both maps as libp2p-dcutr has them (it
//! stays line for line what stock nodes run), so the wrapper replaces the
//! whole behaviour: once `bound` dials have accumulated and none is under
//! way (nothing can look an entry up any more), a new DCUtR behaviour
//! takes over. Its only other state is told to it first:
//! - `direct_connections`, which it expects to hold every direct connection
//!   that closes (`:156-161` panics otherwise): each open one is handed to
//!   it as the swarm would have;
//! - the address candidates, replayed from the least to the most recent so
//!   that its LRU comes out the same.
//!
//! Handlers of relayed connections made by the old behaviour keep working:
//! their events name the relayed connection itself, and a new CONNECT or
//! dial is recorded by the new behaviour.

use std::collections::HashMap;

use libp2p_core::{ConnectedPoint, Multiaddr};
use libp2p_identity::PeerId;
use libp2p_swarm::{ConnectionId, FromSwarm, NetworkBehaviour, NewExternalAddrCandidate};

use crate::dcutr::holepunch::{self, Opener};

/// How many DCUtR dials may leave entries in libp2p-dcutr's maps before it
/// is replaced (each entry is a few dozen bytes).
pub(crate) const DEFAULT_BOUND: usize = 256;

#[derive(Debug)]
pub(crate) struct Renewal {
    bound: usize,
    /// DCUtR dials asked for since the current behaviour was made: an upper
    /// bound on the entries of each of its two maps.
    dials: usize,
    renewals: u64,
    /// The open direct connections.
    direct: HashMap<ConnectionId, (PeerId, ConnectedPoint)>,
}

impl Renewal {
    pub(crate) fn new(bound: usize) -> Self {
        Self {
            bound: bound.max(1),
            dials: 0,
            renewals: 0,
            direct: HashMap::new(),
        }
    }

    /// libp2p-dcutr asked for a dial.
    pub(crate) fn dialed(&mut self) {
        self.dials += 1;
    }

    pub(crate) fn established(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        endpoint: &ConnectedPoint,
    ) {
        if !endpoint.is_relayed() {
            self.direct.insert(id, (peer, endpoint.clone()));
        }
    }

    pub(crate) fn closed(&mut self, id: ConnectionId) {
        self.direct.remove(&id);
    }

    /// Whether to replace the behaviour now: enough dials accumulated and
    /// none of DCUtR's dials is under way.
    pub(crate) fn due(&self, dials_under_way: usize) -> bool {
        self.dials >= self.bound && dials_under_way == 0
    }

    /// A new behaviour for `local`, told of the open direct connections and
    /// of `candidates` (least recent first).
    pub(crate) fn renew(
        &mut self,
        local: PeerId,
        opener: Opener,
        candidates: &[Multiaddr],
    ) -> holepunch::Behaviour {
        let mut dcutr = holepunch::Behaviour::new(local, opener);
        for (id, (peer, endpoint)) in &self.direct {
            // The handlers are dummies: the swarm keeps the old ones.
            let _ = match endpoint {
                ConnectedPoint::Dialer {
                    address,
                    role_override,
                    port_use,
                } => dcutr
                    .handle_established_outbound_connection(
                        *id,
                        *peer,
                        address,
                        *role_override,
                        *port_use,
                    )
                    .map(drop),
                ConnectedPoint::Listener {
                    local_addr,
                    send_back_addr,
                } => dcutr
                    .handle_established_inbound_connection(*id, *peer, local_addr, send_back_addr)
                    .map(drop),
            };
        }
        for addr in candidates {
            dcutr.on_swarm_event(FromSwarm::NewExternalAddrCandidate(
                NewExternalAddrCandidate { addr },
            ));
        }
        self.dials = 0;
        self.renewals += 1;
        tracing::debug!(
            renewals = self.renewals,
            direct = self.direct.len(),
            "libp2p-dcutr replaced to bound its maps"
        );
        dcutr
    }

    /// Dials since the last renewal, and renewals so far.
    pub(crate) fn sizes(&self) -> (usize, u64) {
        (self.dials, self.renewals)
    }
}

#[cfg(test)]
mod tests {
    use libp2p_core::{Endpoint, transport::PortUse};
    use libp2p_swarm::ConnectionClosed;

    use super::*;

    fn closed<'a>(id: ConnectionId, peer: PeerId, endpoint: &'a ConnectedPoint) -> FromSwarm<'a> {
        FromSwarm::ConnectionClosed(ConnectionClosed {
            peer_id: peer,
            connection_id: id,
            endpoint,
            cause: None,
            remaining_established: 0,
        })
    }

    #[test]
    fn a_renewed_dcutr_knows_the_open_direct_connections() {
        let (me, peer) = (PeerId::random(), PeerId::random());
        let mut renewal = Renewal::new(2);
        let inbound = ConnectedPoint::Listener {
            local_addr: "/ip4/127.0.0.1/udp/40000/quic-v1".parse().unwrap(),
            send_back_addr: "/ip4/127.0.0.1/udp/40001/quic-v1".parse().unwrap(),
        };
        let outbound = ConnectedPoint::Dialer {
            address: "/ip4/127.0.0.1/udp/40002/quic-v1".parse().unwrap(),
            role_override: Endpoint::Dialer,
            port_use: PortUse::Reuse,
        };
        let (a, b) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
        );
        renewal.established(a, peer, &inbound);
        renewal.established(b, peer, &outbound);
        renewal.dialed();
        assert!(!renewal.due(0));
        renewal.dialed();
        assert!(!renewal.due(1), "a dial under way holds the renewal back");
        assert!(renewal.due(0));
        let sockets = crate::net::SocketTable::new(crate::PortRange::default(), 2).handle();
        let mut dcutr = renewal.renew(me, Opener::new(sockets), &[]);
        assert_eq!(renewal.sizes(), (0, 1));
        // libp2p-dcutr panics when a direct connection it does not know
        // closes: both are known.
        dcutr.on_swarm_event(closed(a, peer, &inbound));
        dcutr.on_swarm_event(closed(b, peer, &outbound));
    }
}
