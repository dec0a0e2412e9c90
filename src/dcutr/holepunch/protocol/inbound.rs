//! The responder's side: CONNECT in, openers, CONNECT out, SYNC in, a
//! short wait.

use std::io;

use asynchronous_codec::Framed;
use futures::prelude::*;
use futures_timer::Delay;
use libp2p_core::Multiaddr;
use libp2p_swarm::Stream;
use thiserror::Error;

use super::{LEAD, MAX_MESSAGE_SIZE_BYTES, addresses, message};
use crate::dcutr::holepunch::{Opener, proto};

pub(crate) async fn handshake(
    stream: Stream,
    candidates: Vec<Multiaddr>,
    opener: Opener,
) -> Result<Vec<Multiaddr>, Error> {
    let mut stream = Framed::new(stream, prost_codec::Codec::new(MAX_MESSAGE_SIZE_BYTES));

    let proto::HolePunch { r#type, obs_addrs } = stream
        .next()
        .await
        .ok_or(io::Error::from(io::ErrorKind::UnexpectedEof))??;

    if obs_addrs.is_empty() {
        return Err(Error::Protocol(ProtocolViolation::NoAddresses));
    };

    let obs_addrs = addresses(obs_addrs);

    if r#type != proto::Type::Connect as i32 {
        return Err(Error::Protocol(ProtocolViolation::UnexpectedTypeSync));
    }

    // Our NAT maps the punch socket towards them before our CONNECT
    // leaves: the initiator punches after it.
    opener.open(&obs_addrs);

    stream
        .send(message(proto::Type::Connect, candidates))
        .await?;
    let proto::HolePunch { r#type, .. } = stream
        .next()
        .await
        .ok_or(io::Error::from(io::ErrorKind::UnexpectedEof))??;

    if r#type != proto::Type::Sync as i32 {
        return Err(Error::Protocol(ProtocolViolation::UnexpectedTypeConnect));
    }

    // The initiator's punch starts half a round trip after it sent SYNC,
    // about when SYNC arrives here (see `LEAD`).
    Delay::new(LEAD).await;

    Ok(obs_addrs)
}

#[derive(Debug, Error)]
// In the handler's events, which are public (see `Handler`).
#[allow(unreachable_pub)]
pub enum Error {
    #[error("IO error")]
    Io(#[from] io::Error),
    #[error("Protocol error")]
    Protocol(#[from] ProtocolViolation),
}

impl From<prost_codec::Error> for Error {
    fn from(e: prost_codec::Error) -> Self {
        Error::Protocol(ProtocolViolation::Codec(e))
    }
}

#[derive(Debug, Error)]
#[allow(unreachable_pub)]
pub enum ProtocolViolation {
    #[error(transparent)]
    Codec(#[from] prost_codec::Error),
    #[error("Expected at least one address in reservation.")]
    NoAddresses,
    #[error("Unexpected message type 'connect'")]
    UnexpectedTypeConnect,
    #[error("Unexpected message type 'sync'")]
    UnexpectedTypeSync,
}
