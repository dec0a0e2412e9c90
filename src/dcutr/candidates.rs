//! The candidates DCUtR advertises, kept exactly as libp2p-dcutr keeps them.
//! The DCUtR behaviour (`holepunch`) holds the one list; the wrapper reads
//! it from there for attempt reports and [`Behaviour::candidates`](crate::Behaviour::candidates).
//!
//! libp2p-dcutr 0.15 (`behaviour.rs`, `Candidates`) keeps an LRU cache of
//! 20 addresses: relayed ones are ignored, `/p2p/<own id>` is appended, a
//! repeated address moves to the most recent end, the least recent one is
//! evicted, and CONNECT lists them from the least to the most recent.

use std::collections::VecDeque;

use libp2p_core::{Multiaddr, multiaddr::Protocol};
use libp2p_identity::PeerId;

/// How many candidates libp2p-dcutr keeps (its LRU's size), and so the most
/// its CONNECT ever carries.
pub(crate) const CANDIDATES: usize = 20;

/// A hole-punch dial refused because the remote advertised more address
/// candidates than libp2p-dcutr ever sends: a peer that does is not playing
/// by the protocol, and dialing its list would send packets wherever it says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the remote advertised {count} address candidates, more than the {max} that DCUtR ever sends: not dialing them"
)]
#[non_exhaustive]
pub struct TooManyCandidates {
    /// How many it advertised.
    pub count: usize,
    /// The most DCUtR sends.
    pub max: usize,
}

#[derive(Debug)]
pub(crate) struct Candidates {
    me: PeerId,
    /// Least recent first.
    list: VecDeque<Multiaddr>,
}

impl Candidates {
    pub(crate) fn new(me: PeerId) -> Self {
        Self {
            me,
            list: VecDeque::new(),
        }
    }

    pub(crate) fn add(&mut self, mut addr: Multiaddr) {
        if addr.iter().any(|p| p == Protocol::P2pCircuit) {
            return;
        }
        if addr.iter().last() != Some(Protocol::P2p(self.me)) {
            addr.push(Protocol::P2p(self.me));
        }
        self.list.retain(|a| *a != addr);
        self.list.push_back(addr);
        while self.list.len() > CANDIDATES {
            self.list.pop_front();
        }
    }

    pub(crate) fn to_vec(&self) -> Vec<Multiaddr> {
        self.list.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_libp2p_dcutrs_order_and_size() {
        let me = PeerId::random();
        let mut candidates = Candidates::new(me);
        let addr = |port: u16| -> Multiaddr {
            format!("/ip4/198.51.100.1/udp/{port}/quic-v1")
                .parse()
                .unwrap()
        };
        for port in 1..=25 {
            candidates.add(addr(port));
        }
        candidates.add(addr(10));
        candidates.add(
            format!("/ip4/203.0.113.1/udp/443/quic-v1/p2p/{me}/p2p-circuit")
                .parse()
                .unwrap(),
        );
        let list = candidates.to_vec();
        assert_eq!(list.len(), CANDIDATES);
        assert_eq!(list[0], addr(6).with(Protocol::P2p(me)));
        assert_eq!(list[CANDIDATES - 1], addr(10).with(Protocol::P2p(me)));
    }
}
