//! Bookkeeping of hole punches: a report per attempt (each of DCUtR's
//! direct dials), and how each punch ended, on both sides: the first direct
//! connection after the relayed one, or a failure. DCUtR itself reports a
//! failure only on the side that initiates, and a success only for its own
//! dial; this reports both sides alike.
//!
//! Pure logic: every call takes the time it happens at.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use crate::{
    dcutr::{birthday::AttemptError as BirthdayError, candidates::TooManyCandidates},
    net::{NoPunchSocket, QuicAddr},
};
use libp2p_core::{Endpoint, Multiaddr};
use libp2p_identity::PeerId;
use libp2p_swarm::{ConnectionId, DialError};

/// libp2p-dcutr's initiator gives up after this many attempts (its
/// `MAX_NUMBER_OF_UPGRADE_ATTEMPTS`); each attempt makes the other side dial
/// once.
pub(crate) const MAX_ATTEMPTS: u8 = 3;

/// Which side of DCUtR a peer is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
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
#[non_exhaustive]
pub enum AttemptOutcome {
    /// This side's dial connected.
    Direct {
        /// The address it connected to.
        address: Multiaddr,
    },
    /// This side's dial failed (the other side's may still have connected).
    Failed {
        /// Why.
        error: DialFailure,
    },
}

/// Why an attempt failed: one of this side's direct dials, or a birthday
/// punch. punchport's own refusals are typed; the swarm's and libp2p-quic's
/// errors, which are neither `Clone` nor comparable, are kept as their
/// error chain in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialFailure {
    /// No punch socket could carry the punch; nothing left.
    #[error(transparent)]
    NoPunchSocket(#[from] NoPunchSocket),
    /// The remote advertised more candidates than DCUtR ever sends; nothing
    /// left.
    #[error(transparent)]
    TooManyCandidates(#[from] TooManyCandidates),
    /// No QUIC handshake came back in time (libp2p-quic's handshake
    /// timeout): the usual failure of a punch that did not get through.
    #[error("the QUIC handshake timed out")]
    HandshakeTimedOut,
    /// A birthday punch ended without a direct connection.
    #[error(transparent)]
    Birthday(#[from] BirthdayError),
    /// Any other error of the swarm or the transport, with its sources.
    #[error("{0}")]
    Other(String),
}

impl DialFailure {
    /// Reads the swarm's report of a failed dial.
    pub(crate) fn from_swarm(error: &DialError) -> Self {
        let found = match error {
            DialError::Denied { cause } => cause
                .downcast_ref::<TooManyCandidates>()
                .map(|e| Self::TooManyCandidates(e.clone()))
                .or_else(|| {
                    cause
                        .downcast_ref::<NoPunchSocket>()
                        .map(|e| Self::NoPunchSocket(e.clone()))
                }),
            DialError::Transport(errors) => errors.iter().find_map(|(_, error)| {
                let error: &(dyn std::error::Error + 'static) = error;
                if let Some(crate::quic::Error::NoPunchSocket(e)) = crate::quic::Error::find(error)
                {
                    return Some(Self::NoPunchSocket(e.clone()));
                }
                timed_out(error).then_some(Self::HandshakeTimedOut)
            }),
            _ => None,
        };
        found.unwrap_or_else(|| Self::Other(describe(error)))
    }
}

/// Whether libp2p-quic's handshake timeout ended the dial. The chain is
/// walked by type, also inside the `io::Error` that the swarm boxes
/// transport errors in; but the `Either` errors of the swarm's transport
/// stack (`OrTransport`) hide their inner error from `source()`, so where
/// the types end, libp2p-quic's own words for it decide.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    fn typed(error: &(dyn std::error::Error + 'static)) -> bool {
        if let Some(libp2p_quic::Error::HandshakeTimedOut) = error.downcast_ref() {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && typed(inner)
        {
            return true;
        }
        error.source().is_some_and(typed)
    }
    typed(error) || describe(error).contains(&libp2p_quic::Error::HandshakeTimedOut.to_string())
}

/// An error and its sources in one line, each said once.
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// How an attempt punched.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Method {
    /// One of DCUtR's direct dials.
    Plain,
    /// A birthday punch (one side's NAT maps endpoint-dependently).
    Birthday(crate::dcutr::BirthdayStats),
}

impl Method {
    /// `plain` or `birthday`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Plain => "plain",
            Method::Birthday(_) => "birthday",
        }
    }
}

/// What happened in one hole-punch attempt, on this side.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptReport {
    /// The peer punched to.
    pub remote_peer_id: PeerId,
    /// This side's part.
    pub side: Side,
    /// The attempt's number since the relayed connection, from 1.
    pub attempt: u8,
    /// The punch socket the dial left from, as the transport recorded it.
    pub local_addr: Option<Multiaddr>,
    /// The candidates this side advertised in CONNECT (DCUtR's list when the
    /// relayed connection opened, each ending in `/p2p/<our id>`).
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
    /// How it punched.
    pub method: Method,
}

/// A punch succeeded: the first direct connection to a peer since the
/// relayed one, whichever side's dial made it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirectReport {
    /// The peer.
    pub remote_peer_id: PeerId,
    /// The direct connection.
    pub connection_id: ConnectionId,
    /// This side's part in DCUtR.
    pub side: Side,
    /// Whether this side dialed the connection ([`Endpoint::Dialer`]) or
    /// accepted the other side's ([`Endpoint::Listener`]).
    pub endpoint: Endpoint,
    /// This side's direct dials (DCUtR attempts) since the relayed connection.
    pub attempts: u8,
    /// From the relayed connection to the direct one.
    pub since_relayed: Duration,
    /// The local socket of the connection, when known: the punch socket a
    /// dial left from, or the socket that accepted.
    pub local_addr: Option<Multiaddr>,
    /// The remote socket.
    pub remote_addr: Multiaddr,
}

/// Why a punch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PunchError {
    /// Every direct dial the initiator's attempts asked for failed.
    #[error("{MAX_ATTEMPTS} direct dials failed")]
    Dials {
        /// The last dial's error.
        #[source]
        last: DialFailure,
    },
    /// DCUtR's protocol failed (the CONNECT/SYNC exchange, or DCUtR's own
    /// report that it gave up), in libp2p-dcutr's words: its error is not
    /// `Clone`.
    #[error("{0}")]
    Protocol(String),
    /// The relayed connection closed before a direct connection opened.
    #[error("the relayed connection closed before a direct connection opened")]
    RelayedClosed,
}

/// A punch failed: no direct connection came of a relayed one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailureReport {
    /// The peer.
    pub remote_peer_id: PeerId,
    /// This side's part in DCUtR.
    pub side: Side,
    /// This side's direct dials (DCUtR attempts) since the relayed connection.
    pub attempts: u8,
    /// From the relayed connection to the failure.
    pub since_relayed: Duration,
    /// Why.
    pub error: PunchError,
}

/// What ended a punch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    Direct(DirectReport),
    Failed(FailureReport),
}

#[derive(Debug, Clone)]
struct Dial {
    peer: Option<PeerId>,
    role: Option<Endpoint>,
    requested: Instant,
    received: Vec<Multiaddr>,
    attempt: u8,
}

/// One punch: a relayed connection and what came of it. The one record of
/// the punch's facts, its birthday part included.
#[derive(Debug)]
pub(crate) struct Punch {
    relayed: ConnectionId,
    pub(crate) at: Instant,
    pub(crate) side: Side,
    attempts: u8,
    dialer_failures: u8,
    candidates_sent: Vec<Multiaddr>,
    /// A direct connection opened, or the failure was reported.
    pub(crate) ended: bool,
    /// A failure that waits for the birthday part to be over.
    held_failure: Option<FailureReport>,
    pub(crate) birthday: crate::dcutr::birthday::Record,
}

#[derive(Debug, Default)]
pub(crate) struct Attempts {
    dials: HashMap<ConnectionId, Dial>,
    punches: HashMap<PeerId, Punch>,
}

impl Attempts {
    /// DCUtR asked the swarm for this dial.
    pub(crate) fn requested(&mut self, id: ConnectionId, peer: Option<PeerId>, now: Instant) {
        self.dials.insert(
            id,
            Dial {
                peer,
                role: None,
                requested: now,
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
        if let Some(punch) = dial.peer.and_then(|p| self.punches.get_mut(&p)) {
            punch.attempts = punch.attempts.saturating_add(1);
            dial.attempt = punch.attempts;
        }
        true
    }

    /// A relayed connection to `peer` opened: a punch begins. `listener`
    /// says whether this side accepted it (then it initiates DCUtR);
    /// `candidates_sent` is what DCUtR advertises over it.
    pub(crate) fn relayed(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        listener: bool,
        candidates_sent: Vec<Multiaddr>,
        now: Instant,
    ) {
        self.dials.remove(&id);
        self.punches.insert(
            peer,
            Punch {
                relayed: id,
                at: now,
                side: if listener {
                    Side::Initiator
                } else {
                    Side::Responder
                },
                attempts: 0,
                dialer_failures: 0,
                candidates_sent,
                ended: false,
                held_failure: None,
                birthday: Default::default(),
            },
        );
    }

    /// The punch with `peer`, if a relayed connection to it is open.
    pub(crate) fn punch_mut(&mut self, peer: &PeerId) -> Option<&mut Punch> {
        self.punches.get_mut(peer)
    }

    /// Every punch under way.
    pub(crate) fn punches_mut(&mut self) -> impl Iterator<Item = (&PeerId, &mut Punch)> {
        self.punches.iter_mut()
    }

    /// The birthday part of the punch with `peer` is over: a failure held
    /// for it, if any, is reported now.
    pub(crate) fn release(&mut self, peer: PeerId) -> Option<FailureReport> {
        let punch = self.punches.get_mut(&peer)?;
        if punch.birthday.busy() {
            return None;
        }
        let failure = punch.held_failure.take()?;
        punch.ended = true;
        Some(failure)
    }

    /// The first direct connection to `peer` since the relayed one ends
    /// the punch; `id`'s attempt report if it was one of DCUtR's dials.
    pub(crate) fn direct(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        endpoint: Endpoint,
        remote: &Multiaddr,
        local: Option<Multiaddr>,
        now: Instant,
    ) -> (Option<AttemptReport>, Option<DirectReport>) {
        let report = self.dials.remove(&id).map(|dial| {
            self.report(
                peer,
                dial,
                vec![remote.clone()],
                local.clone(),
                now,
                AttemptOutcome::Direct {
                    address: remote.clone(),
                },
            )
        });
        let direct = match self.punches.get_mut(&peer) {
            Some(punch) if !punch.ended => {
                punch.ended = true;
                punch.held_failure = None;
                Some(DirectReport {
                    remote_peer_id: peer,
                    connection_id: id,
                    side: punch.side,
                    endpoint,
                    attempts: punch.attempts,
                    since_relayed: now.saturating_duration_since(punch.at),
                    local_addr: local,
                    remote_addr: remote.clone(),
                })
            }
            _ => None,
        };
        (report, direct)
    }

    /// A connection closed. The relayed one ends its punch, as a failure if
    /// no direct connection came of it.
    pub(crate) fn closed(&mut self, id: ConnectionId, peer: PeerId, now: Instant) -> Option<Ended> {
        let punch = self.punches.get(&peer).filter(|p| p.relayed == id)?;
        let ended = (!punch.ended).then(|| {
            Ended::Failed(FailureReport {
                remote_peer_id: peer,
                side: punch.side,
                attempts: punch.attempts,
                since_relayed: now.saturating_duration_since(punch.at),
                error: PunchError::RelayedClosed,
            })
        });
        self.punches.remove(&peer);
        ended
    }

    /// DCUtR reported a failure to punch to `peer`.
    pub(crate) fn dcutr_failed(
        &mut self,
        peer: PeerId,
        error: String,
        now: Instant,
    ) -> Option<FailureReport> {
        self.fail(peer, PunchError::Protocol(error), now)
    }

    fn fail(&mut self, peer: PeerId, error: PunchError, now: Instant) -> Option<FailureReport> {
        let punch = self.punches.get_mut(&peer).filter(|p| !p.ended)?;
        let failure = FailureReport {
            remote_peer_id: peer,
            side: punch.side,
            attempts: punch.attempts,
            since_relayed: now.saturating_duration_since(punch.at),
            error,
        };
        if punch.birthday.busy() {
            punch.held_failure.get_or_insert(failure);
            return None;
        }
        punch.ended = true;
        Some(failure)
    }

    /// A dial failed. Returns its report if it was DCUtR's, and the punch's
    /// failure if this was the dialing side's dial for the initiator's last
    /// attempt and no direct connection came (DCUtR reports nothing there).
    pub(crate) fn failed(
        &mut self,
        id: ConnectionId,
        error: DialFailure,
        dialed: Option<Vec<Multiaddr>>,
        local: Option<Multiaddr>,
        now: Instant,
    ) -> (Option<AttemptReport>, Option<FailureReport>) {
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
            local,
            now,
            AttemptOutcome::Failed {
                error: error.clone(),
            },
        );
        if role != Some(Endpoint::Dialer) {
            return (Some(report), None);
        }
        let Some(punch) = self.punches.get_mut(&peer) else {
            return (Some(report), None);
        };
        punch.dialer_failures += 1;
        if punch.dialer_failures < MAX_ATTEMPTS {
            return (Some(report), None);
        }
        let failure = self.fail(peer, PunchError::Dials { last: error }, now);
        (Some(report), failure)
    }

    /// How many punches (one per peer with a relayed connection) and dials
    /// are remembered.
    pub(crate) fn len(&self) -> (usize, usize) {
        (self.punches.len(), self.dials.len())
    }

    fn report(
        &self,
        peer: PeerId,
        dial: Dial,
        dialed: Vec<Multiaddr>,
        local_addr: Option<Multiaddr>,
        now: Instant,
        outcome: AttemptOutcome,
    ) -> AttemptReport {
        let punch = self.punches.get(&peer);
        AttemptReport {
            remote_peer_id: peer,
            side: match dial.role {
                Some(Endpoint::Listener) => Side::Initiator,
                _ => Side::Responder,
            },
            attempt: dial.attempt.max(1),
            local_addr,
            candidates_sent: punch.map(|p| p.candidates_sent.clone()).unwrap_or_default(),
            candidates_received: dial.received,
            dialed,
            duration: now.saturating_duration_since(dial.requested),
            since_relayed: punch.map(|p| now.saturating_duration_since(p.at)),
            outcome,
            method: Method::Plain,
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

    /// A clock the tests move by hand.
    struct Clock(Instant);

    impl Clock {
        fn at(&self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }
    }

    fn clock() -> Clock {
        Clock(Instant::now())
    }

    fn relayed(attempts: &mut Attempts, peer: PeerId, side: Side, at: Instant) -> ConnectionId {
        let id = next_id();
        attempts.relayed(id, peer, side == Side::Initiator, Vec::new(), at);
        id
    }

    fn dial(
        attempts: &mut Attempts,
        peer: PeerId,
        role: Endpoint,
        to: &[Multiaddr],
        at: Instant,
    ) -> ConnectionId {
        let id = next_id();
        attempts.requested(id, Some(peer), at);
        assert!(attempts.pending(id, role, to));
        id
    }

    #[test]
    fn the_responder_fails_after_the_initiators_last_attempt() {
        let (t, mut attempts, peer) = (clock(), Attempts::default(), PeerId::random());
        relayed(&mut attempts, peer, Side::Responder, t.at(0));
        for round in 1..MAX_ATTEMPTS {
            let id = dial(&mut attempts, peer, Endpoint::Dialer, &[], t.at(0));
            let (report, failure) = attempts.failed(
                id,
                DialFailure::Other(format!("timeout {round}")),
                None,
                None,
                t.at(5000),
            );
            assert_eq!(report.unwrap().attempt, round);
            assert_eq!(failure, None);
        }
        let id = dial(&mut attempts, peer, Endpoint::Dialer, &[], t.at(10_000));
        let (_, failure) =
            attempts.failed(id, DialFailure::HandshakeTimedOut, None, None, t.at(15_000));
        let failure = failure.unwrap();
        assert_eq!(failure.remote_peer_id, peer);
        assert_eq!(
            (failure.side, failure.attempts),
            (Side::Responder, MAX_ATTEMPTS)
        );
        assert_eq!(failure.since_relayed, Duration::from_secs(15));
        assert_eq!(
            failure.error,
            PunchError::Dials {
                last: DialFailure::HandshakeTimedOut
            }
        );
        // Reported once.
        assert_eq!(attempts.dcutr_failed(peer, "x".into(), t.at(16_000)), None);
    }

    #[test]
    fn the_first_direct_connection_ends_the_punch_whoever_dialed_it() {
        let (t, mut attempts, peer) = (clock(), Attempts::default(), PeerId::random());
        relayed(&mut attempts, peer, Side::Initiator, t.at(0));
        let ours = dial(&mut attempts, peer, Endpoint::Listener, &[], t.at(100));
        // The other side's dial arrives first.
        let theirs = addr("/ip4/198.51.100.2/udp/40000/quic-v1");
        let (report, direct) = attempts.direct(
            next_id(),
            peer,
            Endpoint::Listener,
            &theirs,
            None,
            t.at(300),
        );
        assert_eq!(report, None, "not one of our dials");
        let direct = direct.unwrap();
        assert_eq!(direct.endpoint, Endpoint::Listener);
        assert_eq!((direct.side, direct.attempts), (Side::Initiator, 1));
        assert_eq!(direct.since_relayed, Duration::from_millis(300));
        // Our own dial still gets its report, but the punch ended already.
        let (report, direct) =
            attempts.direct(ours, peer, Endpoint::Dialer, &theirs, None, t.at(310));
        assert_eq!(report.unwrap().duration, Duration::from_millis(210));
        assert_eq!(direct, None);
        // Nor do later failures or the relayed connection closing fail it.
        assert_eq!(attempts.dcutr_failed(peer, "x".into(), t.at(400)), None);
    }

    #[test]
    fn a_relayed_connection_that_closes_first_fails_the_punch_once() {
        let (t, mut attempts, peer) = (clock(), Attempts::default(), PeerId::random());
        let relay = relayed(&mut attempts, peer, Side::Responder, t.at(0));
        dial(&mut attempts, peer, Endpoint::Dialer, &[], t.at(50));
        // Another connection closing says nothing.
        assert_eq!(attempts.closed(next_id(), peer, t.at(60)), None);
        let Some(Ended::Failed(failure)) = attempts.closed(relay, peer, t.at(2000)) else {
            panic!("no failure")
        };
        assert_eq!(failure.error, PunchError::RelayedClosed);
        assert_eq!(failure.attempts, 1);
        assert_eq!(attempts.len().0, 0);
        // After a direct connection it is no failure.
        let relay = relayed(&mut attempts, peer, Side::Responder, t.at(3000));
        let direct = addr("/ip4/198.51.100.2/udp/40000/quic-v1");
        attempts.direct(next_id(), peer, Endpoint::Dialer, &direct, None, t.at(3100));
        assert_eq!(attempts.closed(relay, peer, t.at(4000)), None);
    }

    #[test]
    fn a_birthday_attempt_holds_a_failure_until_it_ends() {
        let (t, mut attempts, peer) = (clock(), Attempts::default(), PeerId::random());
        relayed(&mut attempts, peer, Side::Initiator, t.at(0));
        attempts
            .punch_mut(&peer)
            .unwrap()
            .birthday
            .set_negotiating(true);
        assert_eq!(
            attempts.dcutr_failed(peer, "gave up".into(), t.at(15_000)),
            None
        );
        // The birthday punch connects: the punch succeeded after all.
        let direct = addr("/ip4/198.51.100.2/udp/31337/quic-v1");
        let (_, report) = attempts.direct(
            next_id(),
            peer,
            Endpoint::Dialer,
            &direct,
            None,
            t.at(16_000),
        );
        assert!(report.is_some());
        assert_eq!(attempts.release(peer), None);
        // Another punch whose birthday attempt fails too.
        relayed(&mut attempts, peer, Side::Initiator, t.at(20_000));
        attempts
            .punch_mut(&peer)
            .unwrap()
            .birthday
            .set_negotiating(true);
        assert_eq!(
            attempts.dcutr_failed(peer, "gave up".into(), t.at(35_000)),
            None
        );
        // Held while the birthday part is busy, reported once it is over.
        assert_eq!(attempts.release(peer), None);
        attempts
            .punch_mut(&peer)
            .unwrap()
            .birthday
            .set_negotiating(false);
        let failure = attempts.release(peer).unwrap();
        assert_eq!(failure.error, PunchError::Protocol("gave up".into()));
    }

    #[test]
    fn dcutr_failures_fail_the_punch_on_either_side() {
        for side in [Side::Initiator, Side::Responder] {
            let (t, mut attempts, peer) = (clock(), Attempts::default(), PeerId::random());
            relayed(&mut attempts, peer, side, t.at(0));
            let failure = attempts
                .dcutr_failed(peer, "Giving up after 3 dial attempts".into(), t.at(15_000))
                .unwrap();
            assert_eq!(failure.side, side);
            assert_eq!(failure.error.to_string(), "Giving up after 3 dial attempts");
        }
    }

    #[test]
    fn a_report_tells_the_attempt_the_candidates_and_the_outcome() {
        let (t, mut attempts, peer) = (clock(), Attempts::default(), PeerId::random());
        let sent = vec![addr("/ip4/198.51.100.1/udp/40000/quic-v1")];
        attempts.relayed(next_id(), peer, true, sent.clone(), t.at(0));
        let theirs = [
            addr("/ip4/198.51.100.2/udp/40001/quic-v1"),
            addr("/ip4/198.51.100.2/tcp/1"),
        ];
        let first = dial(&mut attempts, peer, Endpoint::Listener, &theirs, t.at(100));
        let (report, _) = attempts.failed(
            first,
            DialFailure::HandshakeTimedOut,
            None,
            None,
            t.at(5100),
        );
        let report = report.unwrap();
        assert_eq!((report.side, report.attempt), (Side::Initiator, 1));
        assert_eq!(report.candidates_sent, sent);
        assert_eq!(report.candidates_received, theirs);
        assert_eq!(
            report.dialed,
            theirs[..1],
            "only the QUIC candidate is dialed"
        );
        assert_eq!(report.duration, Duration::from_secs(5));
        assert_eq!(report.since_relayed, Some(Duration::from_millis(5100)));
        assert_eq!(
            report.outcome,
            AttemptOutcome::Failed {
                error: DialFailure::HandshakeTimedOut
            }
        );

        let second = dial(&mut attempts, peer, Endpoint::Listener, &theirs, t.at(5200));
        let (report, direct) =
            attempts.direct(second, peer, Endpoint::Dialer, &theirs[0], None, t.at(5300));
        assert_eq!(report.unwrap().attempt, 2);
        assert_eq!(direct.unwrap().attempts, 2);
    }

    #[test]
    fn dials_that_are_not_dcutrs_are_ignored() {
        let (t, mut attempts) = (clock(), Attempts::default());
        let id = next_id();
        assert!(!attempts.pending(id, Endpoint::Dialer, &[]));
        assert_eq!(
            attempts.failed(id, DialFailure::HandshakeTimedOut, None, None, t.at(0)),
            (None, None)
        );
    }
}
