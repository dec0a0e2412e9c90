//! Classifying the NAT in front of the punch socket from what observers saw.
//!
//! Each identify exchange on a connection from the punch socket tells which
//! public address the remote saw it at. Two observers at different addresses
//! that see the same public address mean endpoint-independent mapping (the
//! NAT gives the socket one mapping for every destination, so a punch can
//! work); different addresses mean endpoint-dependent mapping ("symmetric"),
//! which no choice of source port defeats. Whether the public port equals the
//! punch port tells whether the NAT preserves ports.

use std::{fmt, net::SocketAddr};

use libp2p_identity::PeerId;

use crate::net::Family;

/// How many observers are remembered per punch port.
const MAX_OBSERVERS: usize = 8;

/// How the NAT maps the punch socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MappingKind {
    /// One public address for every destination: punching can work.
    EndpointIndependent,
    /// A different public address per destination ("symmetric" NAT): no
    /// source port helps, the relay stays in use.
    EndpointDependent,
    /// Fewer than two observers have reported yet.
    Unknown,
}

impl MappingKind {
    /// `endpoint-independent`, `endpoint-dependent` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            MappingKind::EndpointIndependent => "endpoint-independent",
            MappingKind::EndpointDependent => "endpoint-dependent",
            MappingKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for MappingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the observations so far say about the NAT in front of the punch
/// socket of one IP family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct NatStatus {
    /// The punch socket's family.
    pub family: Family,
    /// How the NAT maps the punch socket.
    pub mapping: MappingKind,
    /// Whether every observer saw the punch port itself; `None` before any
    /// observation.
    pub port_preserved: Option<bool>,
    /// How many observers at distinct addresses reported.
    pub observers: usize,
}

impl NatStatus {
    const UNKNOWN: NatStatus = NatStatus {
        family: Family::Ipv4,
        mapping: MappingKind::Unknown,
        port_preserved: None,
        observers: 0,
    };

    /// Nothing observed yet about the punch socket of `family`.
    pub fn unknown(family: Family) -> Self {
        Self::UNKNOWN.with_family(family)
    }

    pub(crate) fn with_family(self, family: Family) -> Self {
        Self { family, ..self }
    }
}

/// One observation: which peer, at which of its addresses, saw the punch
/// socket where.
#[derive(Debug, Clone, Copy)]
struct Seen {
    peer: PeerId,
    observer: SocketAddr,
    observed: SocketAddr,
}

#[derive(Debug)]
pub(crate) struct Classifier {
    local_port: Option<u16>,
    /// In the order they came, one per observer address.
    seen: Vec<Seen>,
    status: NatStatus,
}

impl Default for Classifier {
    fn default() -> Self {
        Self {
            local_port: None,
            seen: Vec::new(),
            status: NatStatus::UNKNOWN,
        }
    }
}

impl Classifier {
    /// The status, for the punch socket of `family`.
    pub(crate) fn status(&self, family: Family) -> NatStatus {
        self.status.with_family(family)
    }

    /// The punch socket's public address: what most observers saw (the
    /// earliest of equals).
    pub(crate) fn public(&self) -> Option<SocketAddr> {
        consensus(&self.seen)
    }

    /// The mapping so far.
    pub(crate) fn mapping(&self) -> MappingKind {
        self.status.mapping
    }

    /// Whether some observer saw `local_port` itself.
    pub(crate) fn someone_saw(&self, local_port: u16) -> bool {
        self.local_port == Some(local_port)
            && self.seen.iter().any(|s| s.observed.port() == local_port)
    }

    /// `peer`, at its address `observer`, saw the punch socket (bound to
    /// `local_port`) at `observed`. Returns the new status if it changed.
    pub(crate) fn observe(
        &mut self,
        local_port: u16,
        peer: PeerId,
        observer: SocketAddr,
        observed: SocketAddr,
    ) -> Option<NatStatus> {
        if self.local_port != Some(local_port) {
            // The punch socket moved: earlier observations were of another socket.
            self.local_port = Some(local_port);
            self.seen.clear();
        }
        let full = self.seen.len() >= MAX_OBSERVERS;
        match self.seen.iter_mut().find(|s| s.observer == observer) {
            Some(seen) => {
                seen.peer = peer;
                seen.observed = observed;
            }
            None if full => return None,
            None => self.seen.push(Seen {
                peer,
                observer,
                observed,
            }),
        }
        let status = classify(local_port, &self.seen);
        (status != self.status).then(|| {
            self.status = status;
            status
        })
    }
}

/// What most observations say, the earliest of equals first.
fn consensus(seen: &[Seen]) -> Option<SocketAddr> {
    let count = |addr: SocketAddr| seen.iter().filter(|s| s.observed == addr).count();
    let mut best: Option<(SocketAddr, usize)> = None;
    for s in seen {
        let n = count(s.observed);
        if best.is_none_or(|(_, m)| n > m) {
            best = Some((s.observed, n));
        }
    }
    best.map(|(addr, _)| addr)
}

/// The class the observations support, such that no single false
/// observation decides it:
///
/// - endpoint-dependent when one peer saw the socket at different public
///   addresses from two of its own addresses (the probe to the relay's
///   second address shows exactly that), or when three or more observers
///   all disagree;
/// - endpoint-independent when two observers agree and no peer contradicts
///   itself;
/// - unknown otherwise (two observers of different peers that disagree:
///   one of them may lie).
fn classify(local_port: u16, seen: &[Seen]) -> NatStatus {
    let Some(public) = consensus(seen) else {
        return NatStatus::UNKNOWN;
    };
    let contradicts_itself = seen.iter().any(|a| {
        seen.iter()
            .any(|b| a.peer == b.peer && a.observer != b.observer && a.observed != b.observed)
    });
    let agreeing = seen.iter().filter(|s| s.observed == public).count();
    let mapping = if contradicts_itself || (seen.len() >= 3 && agreeing == 1) {
        MappingKind::EndpointDependent
    } else if agreeing >= 2 {
        MappingKind::EndpointIndependent
    } else {
        MappingKind::Unknown
    };
    let port_preserved = match mapping {
        MappingKind::EndpointDependent => seen.iter().all(|s| s.observed.port() == local_port),
        _ => public.port() == local_port,
    };
    NatStatus {
        mapping,
        port_preserved: Some(port_preserved),
        observers: seen.len(),
        ..NatStatus::UNKNOWN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    const RELAY_1: &str = "203.0.113.10:443";
    const RELAY_2: &str = "203.0.113.11:443";

    #[test]
    fn one_observer_knows_the_port_but_not_the_mapping() {
        let relay = PeerId::random();
        let mut classifier = Classifier::default();
        let status = classifier
            .observe(40000, relay, sa(RELAY_1), sa("198.51.100.1:40000"))
            .unwrap();
        assert_eq!(status.mapping, MappingKind::Unknown);
        assert_eq!(status.port_preserved, Some(true));
    }

    #[test]
    fn two_observers_agreeing_mean_endpoint_independent() {
        let relay = PeerId::random();
        let mut classifier = Classifier::default();
        classifier.observe(40000, relay, sa(RELAY_1), sa("198.51.100.1:40000"));
        let status = classifier
            .observe(40000, relay, sa(RELAY_2), sa("198.51.100.1:40000"))
            .unwrap();
        assert_eq!(status.mapping, MappingKind::EndpointIndependent);
        assert_eq!(status.port_preserved, Some(true));
        // A port-rewriting but endpoint-independent NAT.
        let mut classifier = Classifier::default();
        classifier.observe(40000, relay, sa(RELAY_1), sa("198.51.100.1:20000"));
        let status = classifier
            .observe(40000, relay, sa(RELAY_2), sa("198.51.100.1:20000"))
            .unwrap();
        assert_eq!(status.mapping, MappingKind::EndpointIndependent);
        assert_eq!(status.port_preserved, Some(false));
    }

    #[test]
    fn two_observers_disagreeing_mean_endpoint_dependent() {
        let relay = PeerId::random();
        let mut classifier = Classifier::default();
        classifier.observe(40000, relay, sa(RELAY_1), sa("198.51.100.1:31000"));
        let status = classifier
            .observe(40000, relay, sa(RELAY_2), sa("198.51.100.1:52000"))
            .unwrap();
        assert_eq!(status.mapping, MappingKind::EndpointDependent);
        assert_eq!(status.port_preserved, Some(false));
    }

    #[test]
    fn a_collision_shows_as_one_kept_and_one_rewritten() {
        let relay = PeerId::random();
        let mut classifier = Classifier::default();
        classifier.observe(40000, relay, sa(RELAY_1), sa("198.51.100.1:31000"));
        let status = classifier
            .observe(40000, relay, sa(RELAY_2), sa("198.51.100.1:40000"))
            .unwrap();
        assert_eq!(status.mapping, MappingKind::EndpointDependent);
        assert!(classifier.someone_saw(40000));
    }

    #[test]
    fn a_moved_socket_starts_over_and_unchanged_status_is_not_reported() {
        let relay = PeerId::random();
        let mut classifier = Classifier::default();
        classifier.observe(40000, relay, sa(RELAY_1), sa("198.51.100.1:31000"));
        classifier.observe(40000, relay, sa(RELAY_2), sa("198.51.100.1:52000"));
        let status = classifier
            .observe(40017, relay, sa(RELAY_1), sa("198.51.100.1:40017"))
            .unwrap();
        assert_eq!(status.observers, 1);
        assert_eq!(status.mapping, MappingKind::Unknown);
        assert_eq!(
            classifier.observe(40017, relay, sa(RELAY_1), sa("198.51.100.1:40017")),
            None
        );
    }

    #[test]
    fn a_single_false_observation_does_not_flip_the_class() {
        let (relay, liar, other) = (PeerId::random(), PeerId::random(), PeerId::random());
        // The relay's two addresses agree: endpoint-independent, kept port.
        let mut classifier = Classifier::default();
        classifier.observe(40000, relay, sa(RELAY_1), sa("198.51.100.1:40000"));
        classifier.observe(40000, relay, sa(RELAY_2), sa("198.51.100.1:40000"));
        // A peer says it saw another port: the class stands.
        classifier.observe(40000, liar, sa("192.0.2.7:4001"), sa("198.51.100.1:31337"));
        let status = classifier.status(Family::Ipv4);
        assert_eq!(status.mapping, MappingKind::EndpointIndependent);
        assert_eq!(status.port_preserved, Some(true));
        assert_eq!(classifier.public(), Some(sa("198.51.100.1:40000")));
        // Before the relay's second opinion, one peer against the relay
        // is no evidence either way.
        let mut classifier = Classifier::default();
        classifier.observe(40000, relay, sa(RELAY_1), sa("198.51.100.1:40000"));
        let status = classifier
            .observe(40000, liar, sa("192.0.2.7:4001"), sa("198.51.100.1:31337"))
            .unwrap();
        assert_eq!(status.mapping, MappingKind::Unknown);
        assert_eq!(classifier.public(), Some(sa("198.51.100.1:40000")));
        // Honest endpoint-dependent mapping stays so against a liar who
        // claims the relay's first address.
        let mut classifier = Classifier::default();
        classifier.observe(40000, relay, sa(RELAY_1), sa("198.51.100.1:31000"));
        classifier.observe(40000, relay, sa(RELAY_2), sa("198.51.100.1:52000"));
        classifier.observe(40000, liar, sa("192.0.2.7:4001"), sa("198.51.100.1:31000"));
        assert_eq!(classifier.mapping(), MappingKind::EndpointDependent);
        // Three peers that all disagree: endpoint-dependent.
        let mut classifier = Classifier::default();
        classifier.observe(40000, relay, sa(RELAY_1), sa("198.51.100.1:31000"));
        classifier.observe(40000, liar, sa("192.0.2.7:4001"), sa("198.51.100.1:41000"));
        let status = classifier
            .observe(40000, other, sa("192.0.2.8:4001"), sa("198.51.100.1:51000"))
            .unwrap();
        assert_eq!(status.mapping, MappingKind::EndpointDependent);
    }
}
