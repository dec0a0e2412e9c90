//! Bookkeeping of DCUtR's direct dials, so that the side that does not
//! initiate learns when punching has failed (DCUtR reports nothing there).

use std::collections::{HashMap, HashSet};

use libp2p_core::Endpoint;
use libp2p_identity::PeerId;
use libp2p_swarm::ConnectionId;

/// libp2p-dcutr's initiator gives up after this many attempts (its
/// `MAX_NUMBER_OF_UPGRADE_ATTEMPTS`); each attempt makes the other side dial
/// once.
pub(crate) const MAX_ATTEMPTS: u8 = 3;

#[derive(Debug, Clone, Copy)]
struct Dial {
    peer: Option<PeerId>,
    role: Option<Endpoint>,
}

/// The non-initiating side's dials failed [`MAX_ATTEMPTS`] times and no
/// direct connection exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GaveUp {
    pub(crate) peer: PeerId,
    pub(crate) attempts: u8,
    pub(crate) last_error: String,
}

#[derive(Debug, Default)]
pub(crate) struct Attempts {
    dials: HashMap<ConnectionId, Dial>,
    direct: HashMap<PeerId, HashSet<ConnectionId>>,
    dialer_failures: HashMap<PeerId, u8>,
}

impl Attempts {
    /// DCUtR asked the swarm for this dial.
    pub(crate) fn requested(&mut self, id: ConnectionId, peer: Option<PeerId>) {
        self.dials.insert(id, Dial { peer, role: None });
    }

    /// Whether `id` is one of DCUtR's dials; records its role.
    pub(crate) fn pending(&mut self, id: ConnectionId, role: Endpoint) -> bool {
        match self.dials.get_mut(&id) {
            Some(dial) => {
                dial.role = Some(role);
                true
            }
            None => false,
        }
    }

    pub(crate) fn established(&mut self, id: ConnectionId, peer: PeerId, relayed: bool) {
        self.dials.remove(&id);
        if relayed {
            // A new relayed connection starts a new round of attempts.
            self.dialer_failures.remove(&peer);
        } else {
            self.direct.entry(peer).or_default().insert(id);
            self.dialer_failures.remove(&peer);
        }
    }

    pub(crate) fn closed(&mut self, id: ConnectionId, peer: PeerId) {
        if let Some(ids) = self.direct.get_mut(&peer) {
            ids.remove(&id);
            if ids.is_empty() {
                self.direct.remove(&peer);
            }
        }
    }

    /// A dial failed. Returns who gave up if this was the last attempt the
    /// initiator will make and there is still no direct connection.
    pub(crate) fn failed(&mut self, id: ConnectionId, error: String) -> Option<GaveUp> {
        let dial = self.dials.remove(&id)?;
        let peer = dial.peer?;
        if dial.role != Some(Endpoint::Dialer) || self.direct.contains_key(&peer) {
            return None;
        }
        let failures = self.dialer_failures.entry(peer).or_default();
        *failures += 1;
        if *failures < MAX_ATTEMPTS {
            return None;
        }
        let attempts = *failures;
        self.dialer_failures.remove(&peer);
        Some(GaveUp {
            peer,
            attempts,
            last_error: error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dial(attempts: &mut Attempts, peer: PeerId, role: Endpoint) -> ConnectionId {
        let id = ConnectionId::new_unchecked(rand_id());
        attempts.requested(id, Some(peer));
        assert!(attempts.pending(id, role));
        id
    }

    fn rand_id() -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(1_000_000);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    #[test]
    fn the_dialer_gives_up_after_the_initiators_last_attempt() {
        let mut attempts = Attempts::default();
        let peer = PeerId::random();
        for round in 1..MAX_ATTEMPTS {
            let id = dial(&mut attempts, peer, Endpoint::Dialer);
            assert_eq!(attempts.failed(id, format!("timeout {round}")), None);
        }
        let id = dial(&mut attempts, peer, Endpoint::Dialer);
        let gave_up = attempts.failed(id, "timeout 3".into()).unwrap();
        assert_eq!(gave_up.peer, peer);
        assert_eq!(gave_up.attempts, MAX_ATTEMPTS);
        assert_eq!(gave_up.last_error, "timeout 3");
    }

    #[test]
    fn a_direct_connection_or_the_initiator_role_means_no_give_up() {
        let mut attempts = Attempts::default();
        let peer = PeerId::random();
        for _ in 0..MAX_ATTEMPTS {
            let id = dial(&mut attempts, peer, Endpoint::Listener);
            assert_eq!(
                attempts.failed(id, "x".into()),
                None,
                "the initiator has DCUtR's own event"
            );
        }
        attempts.established(ConnectionId::new_unchecked(rand_id()), peer, false);
        for _ in 0..MAX_ATTEMPTS {
            let id = dial(&mut attempts, peer, Endpoint::Dialer);
            assert_eq!(
                attempts.failed(id, "x".into()),
                None,
                "the other side's dial got through"
            );
        }
    }

    #[test]
    fn dials_that_are_not_dcutrs_are_ignored() {
        let mut attempts = Attempts::default();
        let id = ConnectionId::new_unchecked(rand_id());
        assert!(!attempts.pending(id, Endpoint::Dialer));
        assert_eq!(attempts.failed(id, "x".into()), None);
    }
}
