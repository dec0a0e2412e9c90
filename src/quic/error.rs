//! The errors this transport adds to libp2p-quic's.
//!
//! The transport keeps libp2p-quic's error type so that it drops into any
//! swarm; its own errors travel inside [`libp2p_quic::Error::Io`] and can be
//! recovered with [`Error::find`].

use std::{error::Error as StdError, io, net::SocketAddr};

use crate::net::PortRange;
use libp2p_core::{Multiaddr, transport::TransportError};

use crate::net::{Family, NoPunchSocket};

/// An error of the port-aware transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A hole-punch dial was made but no punch socket can carry it.
    #[error(transparent)]
    NoPunchSocket(#[from] NoPunchSocket),
    /// Every port of the range is taken.
    #[error(transparent)]
    RangeExhausted(#[from] RangeExhausted),
    /// A punch socket of the same IP family is already bound.
    #[error(transparent)]
    PunchSocketTaken(#[from] PunchSocketTaken),
}

impl Error {
    /// Finds a punchport error in an error chain: a [`libp2p_quic::Error`], an
    /// [`io::Error`] (as the swarm boxes transport errors), a
    /// [`TransportError`], or anything whose `source()` leads to one.
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Error> {
        let mut current = Some(err);
        while let Some(err) = current {
            if let Some(found) = err.downcast_ref::<Error>() {
                return Some(found);
            }
            if let Some(io) = err.downcast_ref::<io::Error>()
                && let Some(found) = io.get_ref().and_then(|inner| Error::find(inner))
            {
                return Some(found);
            }
            if let Some(libp2p_quic::Error::Io(io)) = err.downcast_ref::<libp2p_quic::Error>()
                && let Some(found) = Error::find(io)
            {
                return Some(found);
            }
            if let Some(TransportError::Other(inner)) =
                err.downcast_ref::<TransportError<libp2p_quic::Error>>()
                && let Some(found) = Error::find(inner)
            {
                return Some(found);
            }
            current = err.source();
        }
        None
    }

    fn kind(&self) -> io::ErrorKind {
        match self {
            Error::NoPunchSocket(_) => io::ErrorKind::NotConnected,
            Error::RangeExhausted(_) | Error::PunchSocketTaken(_) => io::ErrorKind::AddrInUse,
        }
    }
}

impl From<Error> for libp2p_quic::Error {
    fn from(err: Error) -> Self {
        libp2p_quic::Error::Io(io::Error::new(err.kind(), err))
    }
}

impl From<Error> for TransportError<libp2p_quic::Error> {
    fn from(err: Error) -> Self {
        TransportError::Other(err.into())
    }
}

/// Every port of the punch range was in use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "every port of the punch range {range} on {ip} is in use: stop what holds them, widen the range (for example {wider}), or give each node on this host its own range"
)]
#[non_exhaustive]
pub struct RangeExhausted {
    /// The range that was searched.
    pub range: PortRange,
    /// The IP the punch socket was to be bound on.
    pub ip: std::net::IpAddr,
    wider: String,
}

impl RangeExhausted {
    pub(crate) fn new(range: PortRange, ip: std::net::IpAddr) -> Self {
        let wider_end = range
            .end()
            .saturating_add(range.len() as u16)
            .max(range.end());
        let wider = PortRange::new_privileged(range.start(), wider_end)
            .map(|r| r.to_string())
            .unwrap_or_else(|_| range.to_string());
        Self { range, ip, wider }
    }
}

/// A punch socket of this IP family is already bound; there is one per family.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot listen on {requested} as a punch socket: the {family} punch socket is already bound at {existing}; a node has one punch socket per IP family, so listen on a port outside {range} for an ordinary listener, or remove the existing punch listener first"
)]
#[non_exhaustive]
pub struct PunchSocketTaken {
    /// The listen address that was asked for.
    pub requested: Multiaddr,
    /// The IP family.
    pub family: Family,
    /// The socket already bound.
    pub existing: SocketAddr,
    /// The punch range of the transport.
    pub range: PortRange,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_its_error_through_the_wrapping_the_swarm_adds() {
        let err = Error::from(RangeExhausted::new(
            PortRange::DEFAULT,
            "127.0.0.1".parse().unwrap(),
        ));
        let quic = libp2p_quic::Error::from(err);
        let transport = TransportError::Other(quic);
        let boxed = io::Error::other(transport);
        let found = Error::find(&boxed).expect("error to be found");
        assert!(matches!(found, Error::RangeExhausted(_)));
        assert!(found.to_string().contains("40000-40050"), "{found}");
        assert!(found.to_string().contains("40000-40101"), "{found}");
    }
}
