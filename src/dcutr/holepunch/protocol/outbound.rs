//! The initiator's side: CONNECT out, CONNECT in, openers, SYNC out, the
//! stream closed, half a round trip's wait and the lead.

use std::{io, time::Instant};

use asynchronous_codec::Framed;
use futures::prelude::*;
use futures_timer::Delay;
use libp2p_core::Multiaddr;
use libp2p_swarm::Stream;
use thiserror::Error;

use super::{LEAD, MAX_MESSAGE_SIZE_BYTES, addresses, message};
use crate::dcutr::holepunch::{Opener, PROTOCOL_NAME, proto};

pub(crate) async fn handshake(
    stream: Stream,
    candidates: Vec<Multiaddr>,
    opener: Opener,
) -> Result<Vec<Multiaddr>, Error> {
    let mut stream = Framed::new(stream, prost_codec::Codec::new(MAX_MESSAGE_SIZE_BYTES));

    stream
        .send(message(proto::Type::Connect, candidates))
        .await?;

    let sent_time = Instant::now();

    let proto::HolePunch { r#type, obs_addrs } = stream
        .next()
        .await
        .ok_or(io::Error::from(io::ErrorKind::UnexpectedEof))??;

    let rtt = sent_time.elapsed();

    if r#type != proto::Type::Connect as i32 {
        return Err(Error::Protocol(ProtocolViolation::UnexpectedTypeSync));
    }

    if obs_addrs.is_empty() {
        return Err(Error::Protocol(ProtocolViolation::NoAddresses));
    }

    let obs_addrs = addresses(obs_addrs);

    // Our NAT maps the punch socket towards them before SYNC leaves: the
    // responder dials on SYNC.
    opener.open(&obs_addrs);

    stream.send(message(proto::Type::Sync, vec![])).await?;
    // Closed, not dropped: yamux resets a stream dropped open, and go-yamux
    // hands a reader the reset before the SYNC it has buffered, so a go
    // responder that has not read SYNC yet would not dial (libp2p-dcutr
    // drops it; docs/interop.md, 2.). SYNC is out either way.
    if let Err(error) = stream.close().await {
        tracing::debug!(%error, "the DCUtR stream did not close after SYNC");
    }

    Delay::new(rtt / 2 + LEAD).await;

    Ok(obs_addrs)
}

#[derive(Debug, Error)]
// In the handler's events, which are public (see `Handler`).
#[allow(unreachable_pub)]
pub enum Error {
    #[error("IO error")]
    Io(#[from] io::Error),
    #[error("Remote does not support the `{PROTOCOL_NAME}` protocol")]
    Unsupported,
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
    #[error("Unexpected message type 'sync'")]
    UnexpectedTypeSync,
}
