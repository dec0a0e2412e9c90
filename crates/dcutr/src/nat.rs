//! Classifying the NAT in front of the punch socket from what observers saw.
//!
//! Each identify exchange on a connection from the punch socket tells which
//! public address the remote saw it at. Two observers at different addresses
//! that see the same public address mean endpoint-independent mapping (the
//! NAT gives the socket one mapping for every destination, so a punch can
//! work); different addresses mean endpoint-dependent mapping ("symmetric"),
//! which no choice of source port defeats. Whether the public port equals the
//! punch port tells whether the NAT preserves ports.

use std::{collections::BTreeMap, fmt, net::SocketAddr};

use punchport_core::Family;

/// How many observers are remembered per punch port.
const MAX_OBSERVERS: usize = 8;

/// How the NAT maps the punch socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

#[derive(Debug)]
pub(crate) struct Classifier {
    local_port: Option<u16>,
    /// Observer (the remote end of the connection) -> what it saw.
    seen: BTreeMap<SocketAddr, SocketAddr>,
    status: NatStatus,
}

impl Default for Classifier {
    fn default() -> Self {
        Self {
            local_port: None,
            seen: BTreeMap::new(),
            status: NatStatus::UNKNOWN,
        }
    }
}

impl Classifier {
    /// The status, for the punch socket of `family`.
    pub(crate) fn status(&self, family: Family) -> NatStatus {
        self.status.with_family(family)
    }

    /// What an observer saw of the punch socket (the first in order).
    pub(crate) fn public(&self) -> Option<SocketAddr> {
        self.seen.values().next().copied()
    }

    /// The mapping so far.
    pub(crate) fn mapping(&self) -> MappingKind {
        self.status.mapping
    }

    /// Whether some observer saw `local_port` itself.
    pub(crate) fn someone_saw(&self, local_port: u16) -> bool {
        self.local_port == Some(local_port) && self.seen.values().any(|p| p.port() == local_port)
    }

    /// `observer` saw the punch socket (bound to `local_port`) at `observed`.
    /// Returns the new status if it changed.
    pub(crate) fn observe(
        &mut self,
        local_port: u16,
        observer: SocketAddr,
        observed: SocketAddr,
    ) -> Option<NatStatus> {
        if self.local_port != Some(local_port) {
            // The punch socket moved: earlier observations were of another socket.
            self.local_port = Some(local_port);
            self.seen.clear();
        }
        if self.seen.len() >= MAX_OBSERVERS && !self.seen.contains_key(&observer) {
            return None;
        }
        self.seen.insert(observer, observed);
        let status = classify(local_port, &self.seen);
        (status != self.status).then(|| {
            self.status = status;
            status
        })
    }
}

fn classify(local_port: u16, seen: &BTreeMap<SocketAddr, SocketAddr>) -> NatStatus {
    let mut publics = seen.values();
    let Some(first) = publics.next() else {
        return NatStatus::UNKNOWN;
    };
    let mapping = if seen.len() < 2 {
        MappingKind::Unknown
    } else if publics.all(|p| p == first) {
        MappingKind::EndpointIndependent
    } else {
        MappingKind::EndpointDependent
    };
    NatStatus {
        mapping,
        port_preserved: Some(seen.values().all(|p| p.port() == local_port)),
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
        let mut classifier = Classifier::default();
        let status = classifier
            .observe(40000, sa(RELAY_1), sa("198.51.100.1:40000"))
            .unwrap();
        assert_eq!(status.mapping, MappingKind::Unknown);
        assert_eq!(status.port_preserved, Some(true));
    }

    #[test]
    fn two_observers_agreeing_mean_endpoint_independent() {
        let mut classifier = Classifier::default();
        classifier.observe(40000, sa(RELAY_1), sa("198.51.100.1:40000"));
        let status = classifier
            .observe(40000, sa(RELAY_2), sa("198.51.100.1:40000"))
            .unwrap();
        assert_eq!(status.mapping, MappingKind::EndpointIndependent);
        assert_eq!(status.port_preserved, Some(true));
        // A port-rewriting but endpoint-independent NAT.
        let mut classifier = Classifier::default();
        classifier.observe(40000, sa(RELAY_1), sa("198.51.100.1:20000"));
        let status = classifier
            .observe(40000, sa(RELAY_2), sa("198.51.100.1:20000"))
            .unwrap();
        assert_eq!(status.mapping, MappingKind::EndpointIndependent);
        assert_eq!(status.port_preserved, Some(false));
    }

    #[test]
    fn two_observers_disagreeing_mean_endpoint_dependent() {
        let mut classifier = Classifier::default();
        classifier.observe(40000, sa(RELAY_1), sa("198.51.100.1:31000"));
        let status = classifier
            .observe(40000, sa(RELAY_2), sa("198.51.100.1:52000"))
            .unwrap();
        assert_eq!(status.mapping, MappingKind::EndpointDependent);
        assert_eq!(status.port_preserved, Some(false));
    }

    #[test]
    fn a_collision_shows_as_one_kept_and_one_rewritten() {
        let mut classifier = Classifier::default();
        classifier.observe(40000, sa(RELAY_1), sa("198.51.100.1:31000"));
        let status = classifier
            .observe(40000, sa(RELAY_2), sa("198.51.100.1:40000"))
            .unwrap();
        assert_eq!(status.mapping, MappingKind::EndpointDependent);
        assert!(classifier.someone_saw(40000));
    }

    #[test]
    fn a_moved_socket_starts_over_and_unchanged_status_is_not_reported() {
        let mut classifier = Classifier::default();
        classifier.observe(40000, sa(RELAY_1), sa("198.51.100.1:31000"));
        classifier.observe(40000, sa(RELAY_2), sa("198.51.100.1:52000"));
        let status = classifier
            .observe(40017, sa(RELAY_1), sa("198.51.100.1:40017"))
            .unwrap();
        assert_eq!(status.observers, 1);
        assert_eq!(status.mapping, MappingKind::Unknown);
        assert_eq!(
            classifier.observe(40017, sa(RELAY_1), sa("198.51.100.1:40017")),
            None
        );
    }
}
