//! Move policy: when the punch socket of a family moves to another port of
//! the range, and to which.

use std::{collections::HashSet, net::IpAddr};

use libp2p_core::{Multiaddr, transport::ListenerId};
use libp2p_identity::PeerId;
use libp2p_swarm::ListenOpts;
use rand::{RngExt as _, rngs::StdRng};

use super::Action;
use crate::{
    dcutr::{config::CandidateMode, nat::Classifier, nat::MappingKind},
    net::{Family, QuicAddr, Snapshot},
};

#[derive(Debug)]
struct Move {
    listener: ListenerId,
    bind: IpAddr,
    port: u16,
    redial: (PeerId, Multiaddr),
}

/// The moves of one family's punch socket.
#[derive(Debug, Default)]
pub(super) struct Moves {
    made: u8,
    tried: HashSet<u16>,
    moving: Option<Move>,
}

/// What the moves of every family share: the limit, the candidate mode and
/// the seeded choice of ports.
#[derive(Debug)]
pub(super) struct Policy {
    pub(super) max: u8,
    pub(super) mode: CandidateMode,
    pub(super) rng: StdRng,
}

impl Moves {
    /// A move is under way.
    pub(super) fn moving(&self) -> bool {
        self.moving.is_some()
    }

    /// An observer saw the port kept: moves count from zero again.
    pub(super) fn settled(&mut self) {
        self.made = 0;
        self.tried.clear();
    }

    /// A listener reported an address: a move to it is done.
    pub(super) fn listening(&mut self, id: ListenerId) {
        self.moving.take_if(|m| m.listener == id);
    }

    /// Whether to move the punch socket, now that its port `local` was
    /// seen rewritten (and a second observer asked, if one was known).
    ///
    /// In range mode the candidate is the punch port, so the socket moves
    /// until a port is kept (at most `max` times). In socket-aware mode the
    /// candidate is what the observers saw, which is right whenever the NAT
    /// maps endpoint-independently, even when it rewrote the port (Linux
    /// also remaps a socket that collides with another one to a single port
    /// for every destination); the socket moves only when one observer saw
    /// the port kept and another saw it rewritten.
    pub(super) fn decide(
        &mut self,
        policy: &mut Policy,
        classifier: &Classifier,
        family: Family,
        local: u16,
        redial: (PeerId, Multiaddr),
        sockets: &Snapshot,
    ) -> (Option<u16>, Vec<Action>) {
        let worth_it = match policy.mode {
            CandidateMode::SocketAware => {
                classifier.mapping() == MappingKind::EndpointDependent
                    && classifier.someone_saw(local)
            }
            _ => true,
        };
        if !worth_it {
            return (None, Vec::new());
        }
        self.start_if_allowed(policy, family, redial, sockets)
    }

    /// Starts a move if one is allowed and none is under way.
    pub(super) fn start_if_allowed(
        &mut self,
        policy: &mut Policy,
        family: Family,
        redial: (PeerId, Multiaddr),
        sockets: &Snapshot,
    ) -> (Option<u16>, Vec<Action>) {
        if let Some(moving) = &self.moving {
            return (Some(moving.port), Vec::new());
        }
        if self.made >= policy.max {
            return (None, Vec::new());
        }
        let (Some(port), Some(socket)) =
            (self.next_port(policy, family, sockets), sockets.get(family))
        else {
            return (None, Vec::new());
        };
        // Bind the new socket where the old one was bound.
        let bind = socket.bound.ip();
        let old = (socket.listener, socket.port());
        let actions = self.start(bind, port, redial, Some(old));
        (Some(port), actions)
    }

    /// Listening on the port moved to failed (it is taken here): another.
    pub(super) fn listen_failed(
        &mut self,
        policy: &mut Policy,
        family: Family,
        id: ListenerId,
        sockets: &Snapshot,
    ) -> Option<Vec<Action>> {
        let failed = self.moving.take_if(|m| m.listener == id)?;
        tracing::debug!(
            port = failed.port,
            "the punch port to move to is taken here"
        );
        let port = self.next_port(policy, family, sockets)?;
        Some(self.start(failed.bind, port, failed.redial, None))
    }

    fn start(
        &mut self,
        bind: IpAddr,
        port: u16,
        redial: (PeerId, Multiaddr),
        old: Option<(ListenerId, u16)>,
    ) -> Vec<Action> {
        self.made += 1;
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
        if let Some((old, old_port)) = old {
            self.tried.insert(old_port);
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
    pub(super) fn next_port(
        &self,
        policy: &mut Policy,
        family: Family,
        sockets: &Snapshot,
    ) -> Option<u16> {
        let current = sockets.port(family);
        let free: Vec<u16> = sockets
            .range()
            .ports()
            .filter(|p| !self.tried.contains(p) && Some(*p) != current)
            .collect();
        if free.is_empty() {
            return None;
        }
        Some(free[policy.rng.random_range(0..free.len())])
    }
}
