//! The relay connection, the reservation, and the dial through the relay.

use std::time::Instant;

use libp2p::{
    PeerId, Swarm,
    multiaddr::Protocol,
    swarm::{
        DialError,
        dial_opts::{DialOpts, PeerCondition},
    },
};

use super::{Relay, State};
use crate::{NodeEvent, event::send, peer::behaviour::PeerBehaviour};

impl State {
    pub(in crate::peer) fn on_tick(&mut self, swarm: &mut Swarm<PeerBehaviour>) {
        if let Some(at) = self.ready_after_probe {
            let probing = swarm
                .behaviour()
                .punchport
                .as_ref()
                .is_some_and(|dcutr| dcutr.probing());
            // The probe failed (no identify comes) or took too long.
            if !probing || Instant::now() >= at {
                self.ready_after_probe = None;
                self.on_relay_identified(swarm);
            }
        }
        if self.reserve_at.is_some_and(|at| Instant::now() >= at) && self.relay == Relay::Ready {
            self.reserve_at = None;
            self.relay = Relay::AwaitingIdentify;
            self.on_relay_identified(swarm);
        }
        if let (Relay::Ready, Some(target)) = (self.relay, self.config.dial) {
            self.dial_target(swarm, target);
        }
        if self.relay == Relay::Disconnected {
            tracing::debug!(relay=%self.config.relay, "dialing the relay");
            let opts = DialOpts::peer_id(self.config.relay_peer)
                .addresses(vec![self.config.relay.clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            match swarm.dial(opts) {
                Ok(()) => self.relay = Relay::AwaitingIdentify,
                // Connected or dialing already (the punch socket moved and
                // redialed it): wait for identify as after our own dial.
                Err(DialError::DialPeerConditionFalse(_)) => self.relay = Relay::AwaitingIdentify,
                Err(error) => tracing::warn!(%error, "cannot dial the relay"),
            }
        }
    }

    /// Prints `ready`, once.
    pub(super) fn announce_ready(&mut self, swarm: &Swarm<PeerBehaviour>) {
        if !self.announced_ready {
            self.announced_ready = true;
            send(
                &self.events,
                NodeEvent::Ready {
                    peer_id: *swarm.local_peer_id(),
                },
            );
        }
    }

    /// Dials `target` through the relay unless a relayed connection or such
    /// a dial exists.
    pub(super) fn dial_target(&mut self, swarm: &mut Swarm<PeerBehaviour>, target: PeerId) {
        if self.is_relayed_to(&target)
            || self.circuit_dial.is_some()
            || self.repunch_at.is_some_and(|at| Instant::now() < at)
        {
            return;
        }
        self.repunch_at = None;
        let addr = self
            .config
            .relay
            .clone()
            .with(Protocol::P2pCircuit)
            .with(Protocol::P2p(target));
        let opts = DialOpts::peer_id(target).addresses(vec![addr]).build();
        let id = opts.connection_id();
        match swarm.dial(opts) {
            Ok(()) => self.circuit_dial = Some(id),
            Err(error) => tracing::warn!(%error, "cannot dial through the relay"),
        }
    }

    pub(super) fn on_relay_identified(&mut self, swarm: &mut Swarm<PeerBehaviour>) {
        self.ready_after_probe = None;
        if self.relay == Relay::Ready {
            return;
        }
        self.relay = Relay::Ready;
        let circuit = self.config.relay.clone().with(Protocol::P2pCircuit);
        match self.config.dial {
            None if self.circuit_listener.is_some() => {}
            None => {
                self.reserve_at = None;
                match swarm.listen_on(circuit) {
                    Ok(id) => self.circuit_listener = Some(id),
                    Err(error) => tracing::warn!(%error, "cannot listen on the relay circuit"),
                }
            }
            Some(target) => {
                self.announce_ready(swarm);
                self.dial_target(swarm, target);
            }
        }
    }
}
