//! Bookkeeping of DCUtR's direct dials: a report per attempt, and telling
//! the side that does not initiate when punching has failed (DCUtR reports
//! nothing there).

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use libp2p_core::{Endpoint, Multiaddr};
use libp2p_identity::PeerId;
use libp2p_swarm::ConnectionId;
use punchport_core::QuicAddr;

/// libp2p-dcutr's initiator gives up after this many attempts (its
/// `MAX_NUMBER_OF_UPGRADE_ATTEMPTS`); each attempt makes the other side dial
/// once.
pub(crate) const MAX_ATTEMPTS: u8 = 3;

/// Which side of DCUtR a peer is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// It accepted the relayed connection (it holds the reservation): it
    /// sends CONNECT and SYNC, retries, and dials with the listener role.
    Initiator,
    /// It dialed through the relay: it answers CONNECT and dials on SYNC.
    Responder,
}

impl Side {
    /// `initiator` or `responder`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Initiator => "initiator",
            Side::Responder => "responder",
        }
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// This side's dial connected.
    Direct {
        /// The address it connected to.
        address: Multiaddr,
    },
    /// This side's dial failed (the other side's may still have connected).
    Failed {
        /// The error in words.
        error: String,
    },
}

/// What happened in one hole-punch attempt, on this side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptReport {
    /// The peer punched to.
    pub remote_peer_id: PeerId,
    /// This side's part.
    pub side: Side,
    /// The attempt's number since the relayed connection, from 1.
    pub attempt: u8,
    /// The punch socket the dial left from, as a listen address.
    pub local_addr: Option<Multiaddr>,
    /// The candidates this side had advertised (DCUtR's list when the
    /// relayed connection opened).
    pub candidates_sent: Vec<Multiaddr>,
    /// The candidates the other side advertised (what DCUtR dialed).
    pub candidates_received: Vec<Multiaddr>,
    /// The addresses the dial went to.
    pub dialed: Vec<Multiaddr>,
    /// How long the dial took.
    pub duration: Duration,
    /// From the relayed connection to the end of this attempt.
    pub since_relayed: Option<Duration>,
    /// How it ended.
    pub outcome: AttemptOutcome,
}

#[derive(Debug, Clone)]
struct Dial {
    peer: Option<PeerId>,
    role: Option<Endpoint>,
    requested: Instant,
    received: Vec<Multiaddr>,
    attempt: u8,
}

#[derive(Debug, Clone)]
struct Relayed {
    at: Instant,
    attempts: u8,
    candidates_sent: Vec<Multiaddr>,
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
    relayed: HashMap<PeerId, Relayed>,
    direct: HashMap<PeerId, HashSet<ConnectionId>>,
    dialer_failures: HashMap<PeerId, u8>,
}

impl Attempts {
    /// DCUtR asked the swarm for this dial.
    pub(crate) fn requested(&mut self, id: ConnectionId, peer: Option<PeerId>) {
        self.dials.insert(
            id,
            Dial {
                peer,
                role: None,
                requested: Instant::now(),
                received: Vec::new(),
                attempt: 0,
            },
        );
    }

    /// Whether `id` is one of DCUtR's dials; records its role and the
    /// addresses it goes to (the other side's candidates).
    pub(crate) fn pending(
        &mut self,
        id: ConnectionId,
        role: Endpoint,
        addresses: &[Multiaddr],
    ) -> bool {
        let Some(dial) = self.dials.get_mut(&id) else {
            return false;
        };
        dial.role = Some(role);
        dial.received = addresses.to_vec();
        if let Some(relayed) = dial.peer.and_then(|p| self.relayed.get_mut(&p)) {
            relayed.attempts = relayed.attempts.saturating_add(1);
            dial.attempt = relayed.attempts;
        }
        true
    }

    /// A connection was established; for one of DCUtR's dials, its report.
    pub(crate) fn established(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        relayed: bool,
        address: &Multiaddr,
        candidates_sent: &[Multiaddr],
        local_addr: Option<Multiaddr>,
    ) -> Option<AttemptReport> {
        self.dialer_failures.remove(&peer);
        if relayed {
            self.relayed.insert(
                peer,
                Relayed {
                    at: Instant::now(),
                    attempts: 0,
                    candidates_sent: candidates_sent.to_vec(),
                },
            );
            self.dials.remove(&id);
            return None;
        }
        self.direct.entry(peer).or_default().insert(id);
        let dial = self.dials.remove(&id)?;
        Some(self.report(
            peer,
            dial,
            vec![address.clone()],
            local_addr,
            AttemptOutcome::Direct {
                address: address.clone(),
            },
        ))
    }

    pub(crate) fn closed(&mut self, id: ConnectionId, peer: PeerId, relayed: bool) {
        if relayed {
            self.relayed.remove(&peer);
        }
        if let Some(ids) = self.direct.get_mut(&peer) {
            ids.remove(&id);
            if ids.is_empty() {
                self.direct.remove(&peer);
            }
        }
    }

    /// A dial failed. Returns its report if it was DCUtR's, and who gave up
    /// if this was the last attempt the initiator will make and there is
    /// still no direct connection.
    pub(crate) fn failed(
        &mut self,
        id: ConnectionId,
        error: String,
        dialed: Option<Vec<Multiaddr>>,
        local_addr: Option<Multiaddr>,
    ) -> (Option<AttemptReport>, Option<GaveUp>) {
        let Some(dial) = self.dials.remove(&id) else {
            return (None, None);
        };
        let Some(peer) = dial.peer else {
            return (None, None);
        };
        let role = dial.role;
        let dialed = dialed.unwrap_or_else(|| {
            dial.received
                .iter()
                .filter(|a| QuicAddr::parse(a).is_ok())
                .cloned()
                .collect()
        });
        let report = self.report(
            peer,
            dial,
            dialed,
            local_addr,
            AttemptOutcome::Failed {
                error: error.clone(),
            },
        );
        if role != Some(Endpoint::Dialer) || self.direct.contains_key(&peer) {
            return (Some(report), None);
        }
        let failures = self.dialer_failures.entry(peer).or_default();
        *failures += 1;
        if *failures < MAX_ATTEMPTS {
            return (Some(report), None);
        }
        let attempts = *failures;
        self.dialer_failures.remove(&peer);
        let gave_up = GaveUp {
            peer,
            attempts,
            last_error: error,
        };
        (Some(report), Some(gave_up))
    }

    fn report(
        &self,
        peer: PeerId,
        dial: Dial,
        dialed: Vec<Multiaddr>,
        local_addr: Option<Multiaddr>,
        outcome: AttemptOutcome,
    ) -> AttemptReport {
        let relayed = self.relayed.get(&peer);
        AttemptReport {
            remote_peer_id: peer,
            side: match dial.role {
                Some(Endpoint::Listener) => Side::Initiator,
                _ => Side::Responder,
            },
            attempt: dial.attempt.max(1),
            local_addr,
            candidates_sent: relayed
                .map(|r| r.candidates_sent.clone())
                .unwrap_or_default(),
            candidates_received: dial.received,
            dialed,
            duration: dial.requested.elapsed(),
            since_relayed: relayed.map(|r| r.at.elapsed()),
            outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Multiaddr {
        text.parse().unwrap()
    }

    fn next_id() -> ConnectionId {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(1_000_000);
        ConnectionId::new_unchecked(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    fn relayed(attempts: &mut Attempts, peer: PeerId, sent: &[Multiaddr]) {
        let relay = addr("/ip4/203.0.113.10/udp/443/quic-v1/p2p-circuit");
        attempts.established(next_id(), peer, true, &relay, sent, None);
    }

    fn dial(
        attempts: &mut Attempts,
        peer: PeerId,
        role: Endpoint,
        to: &[Multiaddr],
    ) -> ConnectionId {
        let id = next_id();
        attempts.requested(id, Some(peer));
        assert!(attempts.pending(id, role, to));
        id
    }

    #[test]
    fn the_dialer_gives_up_after_the_initiators_last_attempt() {
        let mut attempts = Attempts::default();
        let peer = PeerId::random();
        relayed(&mut attempts, peer, &[]);
        for round in 1..MAX_ATTEMPTS {
            let id = dial(&mut attempts, peer, Endpoint::Dialer, &[]);
            let (report, gave_up) = attempts.failed(id, format!("timeout {round}"), None, None);
            assert_eq!(report.unwrap().attempt, round);
            assert_eq!(gave_up, None);
        }
        let id = dial(&mut attempts, peer, Endpoint::Dialer, &[]);
        let (_, gave_up) = attempts.failed(id, "timeout 3".into(), None, None);
        let gave_up = gave_up.unwrap();
        assert_eq!(gave_up.peer, peer);
        assert_eq!(gave_up.attempts, MAX_ATTEMPTS);
        assert_eq!(gave_up.last_error, "timeout 3");
    }

    #[test]
    fn a_direct_connection_or_the_initiator_role_means_no_give_up() {
        let mut attempts = Attempts::default();
        let peer = PeerId::random();
        for _ in 0..MAX_ATTEMPTS {
            let id = dial(&mut attempts, peer, Endpoint::Listener, &[]);
            let (_, gave_up) = attempts.failed(id, "x".into(), None, None);
            assert_eq!(gave_up, None, "the initiator has DCUtR's own event");
        }
        let direct = addr("/ip4/198.51.100.2/udp/40000/quic-v1");
        attempts.established(next_id(), peer, false, &direct, &[], None);
        for _ in 0..MAX_ATTEMPTS {
            let id = dial(&mut attempts, peer, Endpoint::Dialer, &[]);
            let (_, gave_up) = attempts.failed(id, "x".into(), None, None);
            assert_eq!(gave_up, None, "the other side's dial got through");
        }
    }

    #[test]
    fn a_report_tells_the_attempt_the_candidates_and_the_outcome() {
        let mut attempts = Attempts::default();
        let peer = PeerId::random();
        let sent = [addr("/ip4/198.51.100.1/udp/40000/quic-v1")];
        relayed(&mut attempts, peer, &sent);
        let theirs = [
            addr("/ip4/198.51.100.2/udp/40001/quic-v1"),
            addr("/ip4/198.51.100.2/tcp/1"),
        ];
        let first = dial(&mut attempts, peer, Endpoint::Listener, &theirs);
        let (report, _) = attempts.failed(first, "timed out".into(), None, None);
        let report = report.unwrap();
        assert_eq!((report.side, report.attempt), (Side::Initiator, 1));
        assert_eq!(report.candidates_sent, sent);
        assert_eq!(report.candidates_received, theirs);
        assert_eq!(
            report.dialed,
            theirs[..1],
            "only the QUIC candidate is dialed"
        );
        assert_eq!(
            report.outcome,
            AttemptOutcome::Failed {
                error: "timed out".into()
            }
        );
        assert!(report.since_relayed.is_some());

        let second = dial(&mut attempts, peer, Endpoint::Listener, &theirs);
        let report = attempts
            .established(second, peer, false, &theirs[0], &[], None)
            .unwrap();
        assert_eq!(report.attempt, 2);
        assert_eq!(
            report.outcome,
            AttemptOutcome::Direct {
                address: theirs[0].clone()
            }
        );
    }

    #[test]
    fn dials_that_are_not_dcutrs_are_ignored() {
        let mut attempts = Attempts::default();
        let id = next_id();
        assert!(!attempts.pending(id, Endpoint::Dialer, &[]));
        assert_eq!(attempts.failed(id, "x".into(), None, None), (None, None));
    }
}
