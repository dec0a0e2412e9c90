//! Who sprays, where, and whether the limits allow it. Pure logic: the time
//! and the randomness come from the caller.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::IpAddr,
    time::{Duration, Instant},
};

use libp2p_identity::PeerId;
use rand::{RngExt as _, SeedableRng, rngs::StdRng};

use super::BirthdayConfig;
use crate::nat::MappingKind;

/// This side's part in a birthday punch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Its NAT maps endpoint-dependently: it opens many sockets towards the
    /// other side's punch address and waits for a probe to meet one.
    Hard,
    /// Its NAT (or firewall) maps endpoint-independently: it probes random
    /// ports of the hard side's public IP from its punch socket.
    Easy,
}

impl Role {
    /// `hard` or `easy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Hard => "hard",
            Role::Easy => "easy",
        }
    }
}

/// What the two sides' NAT classes call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Both map endpoint-independently (or a class is unknown): plain DCUtR.
    Plain,
    /// One is hard, one easy: a birthday punch, this side in `Role`.
    Birthday(Role),
    /// Both map endpoint-dependently: about 65 000 probes per side would
    /// give 64 %, so the connection stays relayed.
    BothHard,
}

/// The plan for this side's mapping `mine` and the other's `theirs`.
pub(crate) fn plan(mine: MappingKind, theirs: MappingKind) -> Plan {
    use MappingKind::{EndpointDependent as Dep, EndpointIndependent as Indep};
    match (mine, theirs) {
        (Dep, Indep) => Plan::Birthday(Role::Hard),
        (Indep, Dep) => Plan::Birthday(Role::Easy),
        (Dep, Dep) => Plan::BothHard,
        _ => Plan::Plain,
    }
}

/// Why the limits refused an attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// As many attempts as allowed are under way.
    #[error("{0} birthday attempts are under way already, the most allowed at once")]
    Busy(usize),
    /// The peer had its attempts in the last while.
    #[error("this peer had {0} birthday attempts in the last {1:?}, the most allowed")]
    PeerBudget(u8, Duration),
    /// The destination IP had its probes in the last while.
    #[error(
        "{ip} was sent {sent} birthday probes in the last {window:?}; {more} more would pass the limit of {limit}"
    )]
    IpBudget {
        /// The destination.
        ip: IpAddr,
        /// Probes already sent there.
        sent: u32,
        /// Probes asked for.
        more: u32,
        /// The limit.
        limit: u32,
        /// Over how long.
        window: Duration,
    },
    /// The IP the other side asked us to probe is not one it advertised in
    /// this punch's DCUtR exchange.
    #[error(
        "{0} is not among the addresses the peer advertised in this punch's DCUtR exchange: not probing it"
    )]
    Untied(IpAddr),
    /// The IP cannot be a peer's public address.
    #[error("{0} is no address to probe")]
    Unroutable(IpAddr),
}

/// The limits on what peers can make this node send, over time.
#[derive(Debug)]
pub(crate) struct Limits {
    config: BirthdayConfig,
    running: HashSet<PeerId>,
    per_peer: HashMap<PeerId, VecDeque<Instant>>,
    per_ip: HashMap<IpAddr, VecDeque<(Instant, u32)>>,
}

impl Limits {
    pub(crate) fn new(config: BirthdayConfig) -> Self {
        Self {
            config,
            running: HashSet::new(),
            per_peer: HashMap::new(),
            per_ip: HashMap::new(),
        }
    }

    fn forget_old(&mut self, now: Instant) {
        let memory = self.config.memory;
        let old = |at: &Instant| now.saturating_duration_since(*at) >= memory;
        self.per_peer.retain(|_, times| {
            while times.front().is_some_and(old) {
                times.pop_front();
            }
            !times.is_empty()
        });
        self.per_ip.retain(|_, sent| {
            while sent.front().is_some_and(|(at, _)| old(at)) {
                sent.pop_front();
            }
            !sent.is_empty()
        });
    }

    /// Admits an attempt with `peer` that sends `probes` probes to `ip`
    /// (none on the hard side), or says why not.
    pub(crate) fn admit(
        &mut self,
        peer: PeerId,
        ip: Option<IpAddr>,
        probes: u32,
        now: Instant,
    ) -> Result<(), Refusal> {
        self.forget_old(now);
        let memory = self.config.memory;
        if self.running.len() >= self.config.max_concurrent {
            return Err(Refusal::Busy(self.running.len()));
        }
        let tried = self.per_peer.get(&peer).map_or(0, VecDeque::len);
        if tried >= usize::from(self.config.attempts_per_peer) {
            return Err(Refusal::PeerBudget(self.config.attempts_per_peer, memory));
        }
        if let Some(ip) = ip {
            let sent: u32 = self
                .per_ip
                .get(&ip)
                .map_or(0, |s| s.iter().map(|(_, n)| n).sum());
            if sent + probes > self.config.probes_per_ip {
                return Err(Refusal::IpBudget {
                    ip,
                    sent,
                    more: probes,
                    limit: self.config.probes_per_ip,
                    window: memory,
                });
            }
            self.per_ip.entry(ip).or_default().push_back((now, probes));
        }
        self.per_peer.entry(peer).or_default().push_back(now);
        self.running.insert(peer);
        Ok(())
    }

    /// An attempt with `peer` ended.
    pub(crate) fn done(&mut self, peer: &PeerId) {
        self.running.remove(peer);
    }

    /// How many peers and IPs are remembered.
    pub(crate) fn remembered(&self) -> (usize, usize) {
        (self.per_peer.len(), self.per_ip.len())
    }
}

/// The ports an easy side probes: distinct, random, 1024-65535 (where
/// Linux's random port mapping puts the hard side's sockets).
pub(crate) struct Ports {
    rng: StdRng,
    used: HashSet<u16>,
}

impl Ports {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            used: HashSet::new(),
        }
    }

    pub(crate) fn next(&mut self) -> u16 {
        loop {
            let port = self.rng.random_range(1024..=u16::MAX);
            if self.used.insert(port) {
                return port;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classes_decide_the_roles() {
        use MappingKind::*;
        assert_eq!(
            plan(EndpointDependent, EndpointIndependent),
            Plan::Birthday(Role::Hard)
        );
        assert_eq!(
            plan(EndpointIndependent, EndpointDependent),
            Plan::Birthday(Role::Easy)
        );
        assert_eq!(plan(EndpointDependent, EndpointDependent), Plan::BothHard);
        for (a, b) in [
            (EndpointIndependent, EndpointIndependent),
            (Unknown, EndpointDependent),
            (EndpointDependent, Unknown),
            (Unknown, Unknown),
        ] {
            assert_eq!(plan(a, b), Plan::Plain, "{a:?} {b:?}");
        }
    }

    #[test]
    fn the_limits_bound_attempts_per_peer_probes_per_ip_and_concurrency() {
        let t = Instant::now();
        let mut limits = Limits::new(BirthdayConfig::new());
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let victim: IpAddr = "198.51.100.9".parse().unwrap();
        limits.admit(a, Some(victim), 1024, t).unwrap();
        limits.admit(b, Some(victim), 1024, t).unwrap();
        assert_eq!(limits.admit(c, None, 0, t), Err(Refusal::Busy(2)));
        limits.done(&a);
        limits.done(&b);
        // A third attempt at the same IP, even from another peer, would
        // pass 2048 probes in 10 minutes.
        let refused = limits.admit(c, Some(victim), 1024, t).unwrap_err();
        assert!(
            matches!(refused, Refusal::IpBudget { sent: 2048, .. }),
            "{refused}"
        );
        // One peer gets 3 attempts in 10 minutes.
        for _ in 0..2 {
            limits.admit(a, None, 0, t).unwrap();
            limits.done(&a);
        }
        assert!(matches!(
            limits.admit(a, None, 0, t),
            Err(Refusal::PeerBudget(3, _))
        ));
        // Ten minutes later all is forgotten.
        let later = t + Duration::from_secs(600);
        limits.admit(a, Some(victim), 1024, later).unwrap();
        limits.done(&a);
        assert_eq!(limits.remembered(), (1, 1));
    }

    #[test]
    fn probe_ports_are_distinct_above_1023_and_follow_the_seed() {
        let mut ports = Ports::new(7);
        let picked: Vec<u16> = (0..5000).map(|_| ports.next()).collect();
        assert!(picked.iter().all(|p| *p >= 1024));
        assert_eq!(picked.iter().collect::<HashSet<_>>().len(), picked.len());
        let mut again = Ports::new(7);
        assert_eq!(
            (0..10).map(|_| again.next()).collect::<Vec<_>>(),
            picked[..10]
        );
    }
}
