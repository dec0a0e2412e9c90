//! Relayed and direct connections: reporting them, and punching again.

use std::time::Instant;

use libp2p::{PeerId, Swarm, core::ConnectedPoint};
use punchport::{Family, QuicAddr};

use super::{FIRST_BACKOFF, MAX_BACKOFF, State};
use crate::{NodeEvent, event::send, peer::behaviour::PeerBehaviour};

impl State {
    pub(super) fn local_port(
        &self,
        swarm: &Swarm<PeerBehaviour>,
        endpoint: &ConnectedPoint,
    ) -> Option<u16> {
        match endpoint {
            ConnectedPoint::Listener { local_addr, .. } => {
                QuicAddr::parse(local_addr).ok().map(|q| q.socket.port())
            }
            // Port-aware dials leave from the punch socket; stock ones from a
            // listener that libp2p-quic does not name.
            ConnectedPoint::Dialer { address, .. } => {
                let family = Family::of(QuicAddr::parse(address).ok()?.socket.ip());
                swarm.behaviour().punchport.as_ref()?.punch_port(family)
            }
        }
    }

    pub(super) fn on_direct(
        &mut self,
        swarm: &Swarm<PeerBehaviour>,
        peer: PeerId,
        endpoint: &ConnectedPoint,
    ) {
        let local_port = self.local_port(swarm, endpoint);
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
        let Some(relayed) = self.relayed.get(&peer) else {
            return;
        };
        if self.reported_direct.insert(peer) {
            if Some(peer) == self.config.dial {
                self.backoff = FIRST_BACKOFF;
            }
            send(
                &self.events,
                NodeEvent::Direct {
                    peer,
                    elapsed_ms: relayed.at.elapsed().as_millis() as u64,
                    remote_address,
                    local_port,
                    attempts: relayed.dials,
                },
            );
        }
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

    /// With `persist`: the punch to the target failed. Punch again through
    /// a new relayed connection after a backoff.
    pub(super) fn on_punch_failed(&mut self, swarm: &mut Swarm<PeerBehaviour>, peer: PeerId) {
        if !self.config.persist || Some(peer) != self.config.dial || self.direct.contains_key(&peer)
        {
            return;
        }
        tracing::info!(%peer, backoff = ?self.backoff, "punching again through a new relayed connection");
        self.close_relayed(swarm, peer);
        self.repunch_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
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

    pub(super) fn dials_to(&self, peer: &PeerId) -> u32 {
        self.relayed.get(peer).map_or(0, |r| r.dials)
    }

    pub(super) fn on_dcutr(
        &mut self,
        swarm: &mut Swarm<PeerBehaviour>,
        event: libp2p::dcutr::Event,
    ) {
        match event.result {
            Ok(connection) => {
                tracing::info!(peer=%event.remote_peer_id, %connection, "hole punch succeeded");
            }
            Err(error) => {
                tracing::warn!(peer=%event.remote_peer_id, %error, "hole punch failed");
                self.failed_reported.insert(event.remote_peer_id);
                self.on_punch_failed(swarm, event.remote_peer_id);
                send(
                    &self.events,
                    NodeEvent::PunchFailed {
                        peer: event.remote_peer_id,
                        error: error.to_string(),
                        attempts: self.dials_to(&event.remote_peer_id),
                    },
                );
            }
        }
    }
}
