//! What peers can make this node send, over time: attempts at once,
//! attempts per peer, and datagrams and bytes per peer and per destination
//! IP. Pure logic: the time comes from the caller.
//!
//! An attempt is admitted with the most it may cost ([`Cost`]), reserved
//! against the peer's and the destination IP's budgets at once, so that
//! attempts running side by side cannot pass them together. When it ends,
//! the reservation is settled to what it really sent.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    time::{Duration, Instant},
};

use libp2p_identity::PeerId;

/// Datagrams and the bytes they take on the wire (IP and UDP headers
/// included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cost {
    /// Datagrams.
    pub datagrams: u32,
    /// Bytes on the wire.
    pub bytes: u64,
}

impl Cost {
    pub(crate) fn add(&mut self, bytes: usize) {
        self.datagrams += 1;
        self.bytes += bytes as u64;
    }

    fn plus(self, other: Cost) -> Cost {
        Cost {
            datagrams: self.datagrams + other.datagrams,
            bytes: self.bytes + other.bytes,
        }
    }

    fn fits(self, limit: Cost) -> bool {
        self.datagrams <= limit.datagrams && self.bytes <= limit.bytes
    }
}

impl std::fmt::Display for Cost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} datagrams ({} bytes)", self.datagrams, self.bytes)
    }
}

/// Why the limits refused an attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum Refusal {
    /// As many attempts as allowed are under way.
    #[error("{0} birthday attempts are under way already, the most allowed at once")]
    Busy(usize),
    /// The peer had its attempts in the last while.
    #[error("this peer had {0} birthday attempts in the last {1:?}, the most allowed")]
    PeerAttempts(u8, Duration),
    /// What this peer made us send in the last while, plus the attempt,
    /// would pass the peer's budget.
    #[error(
        "this peer made this node send {sent} in the last {window:?}; an attempt of up to {more} would pass the budget of {limit}"
    )]
    PeerBudget {
        /// Sent already.
        sent: Cost,
        /// Asked for.
        more: Cost,
        /// The budget.
        limit: Cost,
        /// Over how long.
        window: Duration,
    },
    /// What was sent towards the IP in the last while, plus the attempt,
    /// would pass the IP's budget.
    #[error(
        "{ip} was sent {sent} by birthday punches in the last {window:?}; an attempt of up to {more} would pass the budget of {limit}"
    )]
    IpBudget {
        /// The destination.
        ip: IpAddr,
        /// Sent already.
        sent: Cost,
        /// Asked for.
        more: Cost,
        /// The budget.
        limit: Cost,
        /// Over how long.
        window: Duration,
    },
}

/// The node-wide limits, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LimitsConfig {
    pub(crate) max_concurrent: usize,
    pub(crate) attempts_per_peer: u8,
    pub(crate) per_peer: Cost,
    pub(crate) per_ip: Cost,
    pub(crate) memory: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    at: Instant,
    attempt: u64,
    cost: Cost,
}

#[derive(Debug, Default)]
struct Ledger {
    entries: VecDeque<Entry>,
}

impl Ledger {
    fn total(&self) -> Cost {
        self.entries
            .iter()
            .fold(Cost::default(), |sum, e| sum.plus(e.cost))
    }

    fn forget_before(&mut self, cutoff: impl Fn(Instant) -> bool) {
        while self.entries.front().is_some_and(|e| cutoff(e.at)) {
            self.entries.pop_front();
        }
    }

    fn settle(&mut self, attempt: u64, cost: Cost) {
        for entry in self.entries.iter_mut().filter(|e| e.attempt == attempt) {
            entry.cost = cost;
        }
    }
}

/// The limits' memory.
#[derive(Debug)]
pub(crate) struct Limits {
    config: LimitsConfig,
    running: HashMap<u64, PeerId>,
    attempts: HashMap<PeerId, VecDeque<Instant>>,
    per_peer: HashMap<PeerId, Ledger>,
    per_ip: HashMap<IpAddr, Ledger>,
}

impl Limits {
    pub(crate) fn new(config: LimitsConfig) -> Self {
        Self {
            config,
            running: HashMap::new(),
            attempts: HashMap::new(),
            per_peer: HashMap::new(),
            per_ip: HashMap::new(),
        }
    }

    fn forget_old(&mut self, now: Instant) {
        let memory = self.config.memory;
        let old = |at: Instant| now.saturating_duration_since(at) >= memory;
        self.attempts.retain(|_, times| {
            while times.front().is_some_and(|t| old(*t)) {
                times.pop_front();
            }
            !times.is_empty()
        });
        self.per_peer.retain(|_, ledger| {
            ledger.forget_before(old);
            !ledger.entries.is_empty()
        });
        self.per_ip.retain(|_, ledger| {
            ledger.forget_before(old);
            !ledger.entries.is_empty()
        });
    }

    /// Admits `attempt` with `peer`, sending up to `most` towards `ip`, or
    /// says why not.
    pub(crate) fn admit(
        &mut self,
        attempt: u64,
        peer: PeerId,
        ip: IpAddr,
        most: Cost,
        now: Instant,
    ) -> Result<(), Refusal> {
        self.forget_old(now);
        let window = self.config.memory;
        if self.running.len() >= self.config.max_concurrent {
            return Err(Refusal::Busy(self.running.len()));
        }
        let tried = self.attempts.get(&peer).map_or(0, VecDeque::len);
        if tried >= usize::from(self.config.attempts_per_peer) {
            return Err(Refusal::PeerAttempts(self.config.attempts_per_peer, window));
        }
        let sent = self
            .per_peer
            .get(&peer)
            .map(Ledger::total)
            .unwrap_or_default();
        if !sent.plus(most).fits(self.config.per_peer) {
            return Err(Refusal::PeerBudget {
                sent,
                more: most,
                limit: self.config.per_peer,
                window,
            });
        }
        let sent = self.per_ip.get(&ip).map(Ledger::total).unwrap_or_default();
        if !sent.plus(most).fits(self.config.per_ip) {
            return Err(Refusal::IpBudget {
                ip,
                sent,
                more: most,
                limit: self.config.per_ip,
                window,
            });
        }
        let entry = Entry {
            at: now,
            attempt,
            cost: most,
        };
        self.per_peer
            .entry(peer)
            .or_default()
            .entries
            .push_back(entry);
        self.per_ip.entry(ip).or_default().entries.push_back(entry);
        self.attempts.entry(peer).or_default().push_back(now);
        self.running.insert(attempt, peer);
        Ok(())
    }

    /// `attempt` ended having sent `sent`: its reservation becomes that.
    pub(crate) fn settle(&mut self, attempt: u64, sent: Cost) {
        let Some(peer) = self.running.remove(&attempt) else {
            return;
        };
        if let Some(ledger) = self.per_peer.get_mut(&peer) {
            ledger.settle(attempt, sent);
        }
        for ledger in self.per_ip.values_mut() {
            ledger.settle(attempt, sent);
        }
    }

    /// How many attempts run, and how many peers and IPs are remembered.
    pub(crate) fn sizes(&self) -> (usize, usize, usize) {
        (self.running.len(), self.per_peer.len(), self.per_ip.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LimitsConfig {
        LimitsConfig {
            max_concurrent: 2,
            attempts_per_peer: 3,
            per_peer: Cost {
                datagrams: 3000,
                bytes: 200_000,
            },
            per_ip: Cost {
                datagrams: 2048,
                bytes: 131_072,
            },
            memory: Duration::from_secs(600),
        }
    }

    const ATTEMPT: Cost = Cost {
        datagrams: 1024,
        bytes: 61_440,
    };

    #[test]
    fn the_limits_bound_concurrency_attempts_per_peer_and_datagrams_and_bytes_per_peer_and_ip() {
        let t = Instant::now();
        let mut limits = Limits::new(config());
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let victim: IpAddr = "198.51.100.9".parse().unwrap();
        limits.admit(1, a, victim, ATTEMPT, t).unwrap();
        limits.admit(2, b, victim, ATTEMPT, t).unwrap();
        assert_eq!(
            limits.admit(3, c, "198.51.100.10".parse().unwrap(), ATTEMPT, t),
            Err(Refusal::Busy(2))
        );
        limits.settle(1, ATTEMPT);
        limits.settle(2, ATTEMPT);
        // A third attempt at the same IP, even from another peer, would pass
        // 2048 datagrams in 10 minutes.
        let refused = limits.admit(3, c, victim, ATTEMPT, t).unwrap_err();
        assert!(
            matches!(refused, Refusal::IpBudget { sent, .. } if sent.datagrams == 2048),
            "{refused}"
        );
        assert!(refused.to_string().contains("198.51.100.9"), "{refused}");
        // Bytes count too: one datagram more than the bytes allow.
        let mut limits = Limits::new(config());
        let fat = Cost {
            datagrams: 10,
            bytes: 131_073,
        };
        assert!(matches!(
            limits.admit(1, a, victim, fat, t),
            Err(Refusal::IpBudget { .. })
        ));
        // The peer's own budget, across IPs.
        let mut limits = Limits::new(config());
        for (n, ip) in ["198.51.100.1", "198.51.100.2"].iter().enumerate() {
            limits
                .admit(n as u64, a, ip.parse().unwrap(), ATTEMPT, t)
                .unwrap();
            limits.settle(n as u64, ATTEMPT);
        }
        assert!(matches!(
            limits.admit(9, a, "198.51.100.3".parse().unwrap(), ATTEMPT, t),
            Err(Refusal::PeerBudget { .. })
        ));
    }

    #[test]
    fn settling_returns_what_an_attempt_did_not_send_and_ten_minutes_forget_all() {
        let t = Instant::now();
        let mut limits = Limits::new(config());
        let a = PeerId::random();
        let ip: IpAddr = "198.51.100.9".parse().unwrap();
        // Attempts that stop after 100 probes leave room for more.
        let small = Cost {
            datagrams: 100,
            bytes: 6000,
        };
        for n in 0..3 {
            limits.admit(n, a, ip, ATTEMPT, t).unwrap();
            limits.settle(n, small);
        }
        // A fourth attempt of the peer is refused within 10 minutes.
        assert!(matches!(
            limits.admit(3, a, ip, ATTEMPT, t),
            Err(Refusal::PeerAttempts(3, _))
        ));
        let later = t + Duration::from_secs(600);
        limits.admit(4, a, ip, ATTEMPT, later).unwrap();
        assert_eq!(limits.sizes(), (1, 1, 1));
        limits.settle(4, small);
        assert_eq!(limits.sizes().0, 0);
    }
}
