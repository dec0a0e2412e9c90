//! The openers of one DCUtR exchange.

use std::collections::HashSet;

use libp2p_core::Multiaddr;

use crate::{
    dcutr::candidates::CANDIDATES,
    net::{PunchSockets, QuicAddr, is_routable},
};

/// Sends the punch socket's openers towards a remote's candidates, read
/// from its DCUtR message on this exchange (the only addresses the punch
/// ties to the peer).
#[derive(Debug, Clone)]
pub(crate) struct Opener {
    sockets: PunchSockets,
}

impl Opener {
    pub(crate) fn new(sockets: PunchSockets) -> Self {
        Self { sockets }
    }

    /// Opens towards each of `candidates` that the punch would dial: QUIC
    /// addresses that anyone could send to, each once. A list longer than
    /// DCUtR ever sends gets nothing, as its dial gets nothing
    /// ([`TooManyCandidates`](crate::TooManyCandidates)). Returns how many
    /// datagrams left.
    pub(crate) fn open(&self, candidates: &[Multiaddr]) -> usize {
        if candidates.len() > CANDIDATES {
            tracing::debug!(
                count = candidates.len(),
                "no openers: more candidates than DCUtR sends"
            );
            return 0;
        }
        let mut seen = HashSet::new();
        candidates
            .iter()
            .filter_map(|a| QuicAddr::parse(a).ok())
            .map(|a| a.socket)
            .filter(|to| is_routable(to.ip()) && to.port() != 0 && seen.insert(*to))
            .map(|to| self.sockets.send_openers(to))
            .sum()
    }
}
