//! Direct connections and punches: reporting them, and punching again.

use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId, Swarm, core::ConnectedPoint, swarm::ConnectionId};
use punchport::QuicAddr;

use super::{FIRST_BACKOFF, MAX_BACKOFF, State};
use crate::{NodeEvent, event::send, peer::behaviour::PeerBehaviour};

impl State {
    /// A direct connection to `peer` opened: its `connection` line, and for
    /// the stock control the end of the punch.
    pub(super) fn on_connection(
        &mut self,
        swarm: &Swarm<PeerBehaviour>,
        peer: PeerId,
        id: ConnectionId,
        endpoint: &ConnectedPoint,
    ) {
        let local_addr = match (swarm.behaviour().punchport.as_ref(), endpoint) {
            (Some(dcutr), _) => dcutr.local_addr(id, endpoint),
            (None, ConnectedPoint::Listener { local_addr, .. }) => Some(local_addr.clone()),
            // libp2p-quic does not say which listener a stock dial left from.
            (None, ConnectedPoint::Dialer { .. }) => None,
        };
        let local_port = local_addr
            .as_ref()
            .and_then(|a| QuicAddr::parse(a).ok())
            .map(|q| q.socket.port());
        let remote_address = endpoint.get_remote_address().clone();
        send(
            &self.events,
            NodeEvent::Connection {
                peer,
                endpoint: if endpoint.is_dialer() {
                    "dialer"
                } else {
                    "listener"
                }
                .to_owned(),
                remote_address: remote_address.clone(),
                local_port,
            },
        );
        if swarm.behaviour().punchport.is_enabled() {
            return;
        }
        if let Some((elapsed, attempts)) = self.stock.direct(peer, Instant::now()) {
            self.on_punched(peer, elapsed, remote_address, local_port, attempts);
        }
    }

    /// A punch to `peer` succeeded: its `direct` line.
    pub(super) fn on_punched(
        &mut self,
        peer: PeerId,
        elapsed: Duration,
        remote_address: Multiaddr,
        local_port: Option<u16>,
        attempts: u32,
    ) {
        tracing::info!(%peer, ?elapsed, attempts, "hole punch succeeded");
        if Some(peer) == self.config.dial {
            self.backoff = FIRST_BACKOFF;
        }
        send(
            &self.events,
            NodeEvent::Direct {
                peer,
                elapsed_ms: elapsed.as_millis() as u64,
                remote_address,
                local_port,
                attempts,
            },
        );
    }

    /// A punch to `peer` failed: its `punch_failed` line, and with
    /// `persist` a new relayed connection after a backoff.
    pub(super) fn on_punch_failed(
        &mut self,
        swarm: &mut Swarm<PeerBehaviour>,
        peer: PeerId,
        error: String,
        attempts: u32,
    ) {
        tracing::warn!(%peer, %error, attempts, "hole punch failed");
        send(
            &self.events,
            NodeEvent::PunchFailed {
                peer,
                error,
                attempts,
            },
        );
        if !self.config.persist || Some(peer) != self.config.dial || self.direct.contains_key(&peer)
        {
            return;
        }
        tracing::info!(%peer, backoff = ?self.backoff, "punching again through a new relayed connection");
        self.close_relayed(swarm, peer);
        self.repunch_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// With `persist`: the last direct connection to the target closed.
    /// Punch again through a new relayed connection (DCUtR punches once per
    /// relayed connection).
    pub(super) fn on_direct_lost(&mut self, swarm: &mut Swarm<PeerBehaviour>, peer: PeerId) {
        if !self.config.persist || Some(peer) != self.config.dial {
            return;
        }
        tracing::info!(%peer, "lost the direct connection; punching again through the relay");
        self.close_relayed(swarm, peer);
        self.repunch_at = Some(Instant::now());
    }

    pub(super) fn close_relayed(&mut self, swarm: &mut Swarm<PeerBehaviour>, peer: PeerId) {
        let relayed: Vec<_> = self
            .relayed_connections
            .iter()
            .filter(|(_, p)| **p == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in relayed {
            swarm.close_connection(id);
        }
    }

    /// Whether a relayed connection to `peer` is open.
    pub(super) fn is_relayed_to(&self, peer: &PeerId) -> bool {
        self.relayed_connections.values().any(|p| p == peer)
    }

    /// An event of the stock control's plain DCUtR.
    pub(super) fn on_stock_dcutr(
        &mut self,
        swarm: &mut Swarm<PeerBehaviour>,
        event: libp2p::dcutr::Event,
    ) {
        match event.result {
            Ok(connection) => {
                tracing::info!(peer=%event.remote_peer_id, %connection, "DCUtR succeeded");
            }
            Err(error) => {
                if let Some(attempts) = self.stock.failed(event.remote_peer_id) {
                    self.on_punch_failed(swarm, event.remote_peer_id, error.to_string(), attempts);
                }
            }
        }
    }
}
