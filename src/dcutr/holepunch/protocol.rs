//! The DCUtR exchange on one stream: CONNECT, CONNECT, SYNC
//! (libp2p-dcutr 0.15's `protocol/{inbound,outbound}.rs`, with the openers).

use std::time::Duration;

use libp2p_core::{Multiaddr, multiaddr::Protocol};
use libp2p_swarm::StreamProtocol;

use super::proto;

pub(crate) mod inbound;
pub(crate) mod outbound;

/// DCUtR's protocol name.
pub(crate) const PROTOCOL_NAME: StreamProtocol = StreamProtocol::new("/libp2p/dcutr");

const MAX_MESSAGE_SIZE_BYTES: usize = 4096;

/// How much later than libp2p-dcutr each side dials: the responder `LEAD`
/// after SYNC (libp2p-dcutr: at once), the initiator half a round trip
/// plus `LEAD` after it (libp2p-dcutr: half a round trip). Both sides' own
/// routers are open towards each other by then (the openers), and the
/// other side, if it times its punch as libp2p-dcutr or go-libp2p does,
/// has sent its first packets already:
/// - an initiator that answers with random packets (go-libp2p's first two
///   attempts) starts them half a round trip after SYNC, about when SYNC
///   reaches the responder. A responder that dialed at once would have its
///   first Initial reach that NAT before those packets opened it; it is
///   dropped and sent again only at quinn's first probe timeout (about
///   1 s; docs/interop.md, 3.).
/// - a responder dials on SYNC. An initiator whose Initial reaches the
///   responder's router before the responder's own packet left it would,
///   if that router accepts unsolicited packets, take the tuple its flow
///   needs (the conntrack clash), and a stock responder sends no openers.
pub(crate) const LEAD: Duration = Duration::from_millis(15);

/// A message's addresses that parse, without relayed ones.
fn addresses(obs_addrs: Vec<Vec<u8>>) -> Vec<Multiaddr> {
    obs_addrs
        .into_iter()
        .filter_map(|a| match Multiaddr::try_from(a) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::debug!("Unable to parse multiaddr: {e}");
                None
            }
        })
        .filter(|a| {
            if a.iter().any(|p| p == Protocol::P2pCircuit) {
                tracing::debug!(address=%a, "Dropping relayed address");
                false
            } else {
                true
            }
        })
        .collect()
}

fn message(r#type: proto::Type, candidates: Vec<Multiaddr>) -> proto::HolePunch {
    proto::HolePunch {
        r#type: r#type as i32,
        obs_addrs: candidates.into_iter().map(|a| a.to_vec()).collect(),
    }
}
