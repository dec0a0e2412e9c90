//! The DCUtR exchange on one stream: CONNECT, CONNECT, SYNC
//! (libp2p-dcutr 0.15's `protocol/{inbound,outbound}.rs`, with the openers).

use libp2p_core::{Multiaddr, multiaddr::Protocol};
use libp2p_swarm::StreamProtocol;

use super::proto;

pub(crate) mod inbound;
pub(crate) mod outbound;

/// DCUtR's protocol name.
pub(crate) const PROTOCOL_NAME: StreamProtocol = StreamProtocol::new("/libp2p/dcutr");

const MAX_MESSAGE_SIZE_BYTES: usize = 4096;

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
