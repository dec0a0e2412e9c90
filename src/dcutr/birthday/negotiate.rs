//! The negotiation's decisions, without I/O: each side's hello, the plan,
//! the limits, and the attempt it starts. The time and the randomness come
//! from the caller.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use libp2p_identity::PeerId;
use rand::{RngExt as _, SeedableRng, rngs::StdRng};

use super::{
    AttemptError, BirthdayConfig, Cost, Mine, Refusal, Role,
    config::{MAX_OPENER, MAX_PROBE},
    limits::Limits,
    machine::{Attempt, Setup},
    plan::{self, Plan},
    protocol::{Hello, Nonce, SocketHello},
};
use crate::net::Family;

/// How long a negotiation waits for this side's own probe to classify the
/// NAT (a probe takes one handshake and one identify exchange).
pub(super) const SETTLE_WAIT: Duration = Duration::from_secs(2);
/// Attempts per relayed connection: a second takes a miss of the first to
/// its square.
pub(crate) const ATTEMPTS_PER_RELAYED: u8 = 2;
/// How long the initiating side waits after a missed attempt before
/// negotiating again, so that the other side's part has ended too.
pub(super) const RETRY_AFTER: Duration = Duration::from_millis(300);
/// How long the responding side keeps a punch failure back after a missed
/// attempt, for the initiator's second negotiation.
pub(super) const RETRY_WAIT: Duration = Duration::from_secs(3);

/// The birthday part of one punch's record.
#[derive(Debug, Default)]
pub(crate) struct Record {
    /// Negotiations over this relayed connection so far.
    pub(super) negotiated: u8,
    /// The peer's DCUtR candidates, once DCUtR dials them: the addresses
    /// tied to the peer in this punch.
    pub(super) advertised: Vec<SocketAddr>,
    /// This side's plain punch failed at least once.
    pub(super) plain_failed: bool,
    /// The attempt under way, and its number for the limits.
    pub(super) attempt: Option<(u64, Attempt)>,
    /// This side's hello for the negotiation under way.
    pub(super) hello: Option<Hello>,
    /// A negotiation is open or held.
    pub(super) negotiating: bool,
    /// The initiator's next negotiation, or how long the responder waits
    /// for it.
    pub(super) retry_at: Option<Instant>,
    /// It was busy when last looked at (a plain failure may be held).
    pub(super) held: bool,
}

impl Record {
    /// Whether a birthday punch may still end this punch: a plain failure
    /// waits for it.
    pub(crate) fn busy(&self) -> bool {
        self.attempt.is_some() || self.negotiating || self.retry_at.is_some()
    }

    #[cfg(test)]
    pub(crate) fn set_negotiating(&mut self, on: bool) {
        self.negotiating = on;
    }
}

/// What the negotiation decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Plain DCUtR only (the classes, or one side is off).
    Plain,
    /// Both NATs are hard.
    BothHard,
    /// The peer named no public address.
    NoAddress,
    /// The limits refused.
    Refused(Refusal),
    /// An attempt started in `role`, in `family`.
    Started(Role, Family),
}

/// Decides negotiations and builds attempts: pure logic, the time and the
/// randomness come from the caller.
#[derive(Debug)]
pub(crate) struct Negotiator {
    config: BirthdayConfig,
    limits: Limits,
    rng: StdRng,
    next_attempt: u64,
}

impl Negotiator {
    pub(crate) fn new(config: BirthdayConfig, seed: u64) -> Self {
        Self {
            limits: Limits::new(config.limits()),
            config,
            rng: StdRng::seed_from_u64(seed),
            next_attempt: 0,
        }
    }

    /// This side's hello for the next negotiation of `record`'s punch.
    /// `theirs` is the attempt number the peer's hello asked for, on the
    /// responding side.
    pub(crate) fn hello(&mut self, record: &mut Record, mine: &Mine, theirs: Option<u8>) -> Hello {
        let attempt = theirs.unwrap_or(record.negotiated + 1);
        let within = record.negotiated < ATTEMPTS_PER_RELAYED && attempt <= ATTEMPTS_PER_RELAYED;
        let hello = Hello {
            enabled: self.config.enabled && within,
            nonce: Nonce(self.rng.random()),
            attempt: attempt.clamp(1, ATTEMPTS_PER_RELAYED),
            sockets: mine
                .sockets
                .iter()
                .map(|s| SocketHello {
                    family: s.family,
                    class: s.class,
                    public: s.public,
                })
                .collect(),
        };
        record.hello = Some(hello.clone());
        hello
    }

    /// Both hellos are in: decide, and start the attempt if the plan calls
    /// for one.
    pub(crate) fn decide(
        &mut self,
        peer: PeerId,
        record: &mut Record,
        theirs: &Hello,
        ttl: u8,
        now: Instant,
    ) -> Decision {
        let Some(mine) = record.hello.take() else {
            return Decision::Plain;
        };
        record.negotiated = record.negotiated.saturating_add(1);
        if let Some((id, mut running)) = record.attempt.take() {
            running.abort(AttemptError::Superseded);
            self.limits.settle(id, running.stats().sent);
        }
        if !(mine.enabled && theirs.enabled) {
            return Decision::Plain;
        }
        // Per family both sides have a punch socket of; the first family
        // (IPv4, then IPv6) whose classes call for a birthday punch gets it.
        let mut both_hard = false;
        let mut chosen = None;
        for family in [Family::Ipv4, Family::Ipv6] {
            let (Some(ours), Some(peers)) = (mine.socket(family), theirs.socket(family)) else {
                continue;
            };
            match plan::plan(ours.class, peers.class) {
                Plan::Birthday { role, deferred } if chosen.is_none() => {
                    chosen = Some((family, role, deferred, peers.public));
                }
                Plan::BothHard => both_hard = true,
                _ => {}
            }
        }
        let Some((family, role, deferred, target)) = chosen else {
            return if both_hard {
                Decision::BothHard
            } else {
                Decision::Plain
            };
        };
        let Some(target) = target else {
            return Decision::NoAddress;
        };
        let (count, size) = match role {
            Role::Hard => (self.config.sockets, MAX_OPENER),
            Role::Easy => (self.config.probes, MAX_PROBE),
        };
        let budget = Cost {
            datagrams: u32::from(count),
            bytes: u64::from(count) * crate::net::wire::wire_bytes(target, size) as u64,
        };
        self.next_attempt += 1;
        let id = self.next_attempt;
        if let Err(refusal) = self.limits.admit(id, peer, target.ip(), budget, now) {
            return Decision::Refused(refusal);
        }
        let setup = Setup {
            role,
            target,
            // The probes carry the hard side's nonce.
            nonce: match role {
                Role::Hard => mine.nonce,
                Role::Easy => theirs.nonce,
            },
            deferred,
            sockets: self.config.sockets,
            probes: self.config.probes,
            gap: self.config.gap(),
            ttl,
            budget,
            seed: self.rng.random(),
        };
        let mut attempt = Attempt::new(setup, now);
        if !record.advertised.is_empty() {
            attempt.handle_tie(&record.advertised, now);
        }
        if record.plain_failed {
            attempt.handle_plain_failed(now);
        }
        record.attempt = Some((id, attempt));
        Decision::Started(role, family)
    }

    /// The attempt `id` ended having sent `sent`.
    pub(crate) fn settle(&mut self, id: u64, sent: Cost) {
        self.limits.settle(id, sent);
    }

    /// How many attempts run, and how many peers and IPs the limits
    /// remember.
    pub(crate) fn sizes(&self) -> (usize, usize, usize) {
        self.limits.sizes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcutr::{
        birthday::{MineSocket, protocol::Class},
        nat::MappingKind,
    };

    fn mine(mapping: MappingKind, kept: bool, public: &str) -> Mine {
        Mine {
            sockets: vec![socket(mapping, kept, public)],
            probing: false,
        }
    }

    fn socket(mapping: MappingKind, kept: bool, public: &str) -> MineSocket {
        let public: SocketAddr = public.parse().unwrap();
        MineSocket {
            family: Family::of(public.ip()),
            class: Class {
                mapping,
                port_preserved: Some(kept),
            },
            public: Some(public),
            punch: SocketAddr::new(
                if public.is_ipv4() {
                    "0.0.0.0".parse().unwrap()
                } else {
                    "::".parse().unwrap()
                },
                40000,
            ),
        }
    }

    fn hard() -> Mine {
        mine(MappingKind::EndpointDependent, false, "203.0.113.30:31999")
    }

    fn easy() -> Mine {
        mine(
            MappingKind::EndpointIndependent,
            true,
            "198.51.100.20:40000",
        )
    }

    /// One negotiation between `a` (the initiator) and `b`.
    fn negotiate(
        a: (&mut Negotiator, &mut Record, &Mine),
        b: (&mut Negotiator, &mut Record, &Mine),
        now: Instant,
    ) -> (Decision, Decision) {
        let (na, ra, ma) = a;
        let (nb, rb, mb) = b;
        let first = na.hello(ra, ma, None);
        let second = nb.hello(rb, mb, Some(first.attempt));
        let (peer_a, peer_b) = (PeerId::random(), PeerId::random());
        (
            na.decide(peer_b, ra, &second, 2, now),
            nb.decide(peer_a, rb, &first, 2, now),
        )
    }

    #[test]
    fn both_sides_agree_on_the_roles_and_a_relayed_connection_gets_two_attempts() {
        let t = Instant::now();
        let (mut na, mut nb) = (
            Negotiator::new(BirthdayConfig::new(), 1),
            Negotiator::new(BirthdayConfig::new(), 2),
        );
        let (mut ra, mut rb) = (Record::default(), Record::default());
        for _ in 0..ATTEMPTS_PER_RELAYED {
            let decided = negotiate((&mut na, &mut ra, &hard()), (&mut nb, &mut rb, &easy()), t);
            assert_eq!(
                decided,
                (
                    Decision::Started(Role::Hard, Family::Ipv4),
                    Decision::Started(Role::Easy, Family::Ipv4)
                )
            );
            // Each attempt ends, having sent nothing.
            let (ida, _) = ra.attempt.take().unwrap();
            let (idb, _) = rb.attempt.take().unwrap();
            na.settle(ida, Cost::default());
            nb.settle(idb, Cost::default());
        }
        // A third negotiation over the same relayed connection is refused
        // by both: the initiator says it is off, and so does a responder
        // that is asked for a third.
        let decided = negotiate((&mut na, &mut ra, &hard()), (&mut nb, &mut rb, &easy()), t);
        assert_eq!(decided, (Decision::Plain, Decision::Plain));
        let mut fresh = Record::default();
        let mut pushy = Negotiator::new(BirthdayConfig::new(), 3);
        let mut asks_third = pushy.hello(&mut fresh, &hard(), None);
        asks_third.attempt = 3;
        let answer = nb.hello(&mut Record::default(), &easy(), Some(asks_third.attempt));
        assert!(!answer.enabled);
    }

    #[test]
    fn a_lying_peer_gets_at_most_the_budget_on_the_address_it_named() {
        let t = Instant::now();
        let mut honest = Negotiator::new(BirthdayConfig::new(), 4);
        // Liars that claim to be hard and name one victim, one after another.
        let mut started = 0;
        let mut refused = Vec::new();
        for n in 0..10u8 {
            let mut record = Record::default();
            let theirs = Hello {
                enabled: true,
                nonce: Nonce([n; 16]),
                attempt: 1,
                sockets: vec![SocketHello {
                    family: Family::Ipv4,
                    class: Class {
                        mapping: MappingKind::EndpointDependent,
                        port_preserved: Some(false),
                    },
                    public: Some("192.0.2.66:31000".parse().unwrap()),
                }],
            };
            honest.hello(&mut record, &easy(), Some(1));
            match honest.decide(PeerId::random(), &mut record, &theirs, 2, t) {
                Decision::Started(Role::Easy, Family::Ipv4) => {
                    started += 1;
                    // Every probe is sent.
                    let (id, _) = record.attempt.take().unwrap();
                    honest.settle(
                        id,
                        Cost {
                            datagrams: 1024,
                            bytes: 1024 * 60,
                        },
                    );
                }
                Decision::Refused(refusal) => refused.push(refusal),
                other => panic!("{other:?}"),
            }
        }
        // Two attempts' worth per destination IP in 10 minutes.
        assert_eq!(started, 2);
        assert!(
            refused.iter().all(
                |r| matches!(r, Refusal::IpBudget { ip, .. } if ip.to_string() == "192.0.2.66")
            ),
            "{refused:?}"
        );
    }

    #[test]
    fn classes_that_call_for_no_birthday_punch_start_nothing() {
        let t = Instant::now();
        let mut na = Negotiator::new(BirthdayConfig::new(), 5);
        let mut nb = Negotiator::new(BirthdayConfig::new(), 6);
        let both_hard = negotiate(
            (&mut na, &mut Record::default(), &hard()),
            (&mut nb, &mut Record::default(), &hard()),
            t,
        );
        assert_eq!(both_hard, (Decision::BothHard, Decision::BothHard));
        let both_easy = negotiate(
            (&mut na, &mut Record::default(), &easy()),
            (&mut nb, &mut Record::default(), &easy()),
            t,
        );
        assert_eq!(both_easy, (Decision::Plain, Decision::Plain));
        // One side switched off.
        let mut off = Negotiator::new(BirthdayConfig::new().with_enabled(false), 7);
        let decided = negotiate(
            (&mut na, &mut Record::default(), &hard()),
            (&mut off, &mut Record::default(), &easy()),
            t,
        );
        assert_eq!(decided, (Decision::Plain, Decision::Plain));
        // No public address to aim at.
        let mut nowhere = easy();
        nowhere.sockets[0].public = None;
        let decided = negotiate(
            (&mut na, &mut Record::default(), &hard()),
            (&mut nb, &mut Record::default(), &nowhere),
            t,
        );
        assert_eq!(decided.0, Decision::NoAddress);
    }

    #[test]
    fn each_family_is_planned_on_its_own_and_the_first_that_calls_for_it_is_punched() {
        let t = Instant::now();
        let (mut na, mut nb) = (
            Negotiator::new(BirthdayConfig::new(), 8),
            Negotiator::new(BirthdayConfig::new(), 9),
        );
        // IPv4 hard on both sides (stays relayed), IPv6 hard against a
        // firewall: the birthday punch runs over IPv6.
        let a = Mine {
            sockets: vec![
                socket(MappingKind::EndpointDependent, false, "203.0.113.30:31999"),
                socket(
                    MappingKind::EndpointDependent,
                    false,
                    "[2001:db8:1::10]:50123",
                ),
            ],
            probing: false,
        };
        let b = Mine {
            sockets: vec![
                socket(MappingKind::EndpointDependent, false, "198.51.100.20:41234"),
                socket(
                    MappingKind::EndpointIndependent,
                    true,
                    "[2001:db8:2::10]:40000",
                ),
            ],
            probing: false,
        };
        let decided = negotiate(
            (&mut na, &mut Record::default(), &a),
            (&mut nb, &mut Record::default(), &b),
            t,
        );
        assert_eq!(
            decided,
            (
                Decision::Started(Role::Hard, Family::Ipv6),
                Decision::Started(Role::Easy, Family::Ipv6)
            )
        );
        // An IPv6-only side against a dual-stack one: the shared family.
        let v6_only = Mine {
            sockets: vec![socket(
                MappingKind::EndpointDependent,
                false,
                "[2001:db8:1::10]:50123",
            )],
            probing: false,
        };
        let mut ra = Record::default();
        let decided = negotiate(
            (&mut na, &mut ra, &v6_only),
            (&mut nb, &mut Record::default(), &b),
            t,
        );
        assert_eq!(decided.0, Decision::Started(Role::Hard, Family::Ipv6));
        let (_, attempt) = ra.attempt.take().unwrap();
        assert!(attempt.target().is_ipv6());
    }
}
