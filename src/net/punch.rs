//! The error of a hole-punch dial that has no punch socket to leave from.

use std::net::SocketAddr;

use libp2p_core::Multiaddr;

use crate::net::{Family, PortRange};

/// A hole-punch dial found no punch socket of the remote's IP family.
///
/// Punch dials never fall back to another listener: leaving from any port but
/// the advertised one is exactly the failure this crate exists to prevent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no punch socket can carry the hole-punch dial to {remote}: {reason}; listen on `{hint}` first (port 0 binds the first free port of the punch range {range})"
)]
#[non_exhaustive]
pub struct NoPunchSocket {
    /// The address the punch was aimed at.
    pub remote: Multiaddr,
    /// The punch range of the transport.
    pub range: PortRange,
    /// Why no punch socket fits.
    pub reason: NoPunchSocketReason,
    hint: &'static str,
}

impl NoPunchSocket {
    /// A punch aimed at `remote` that found no punch socket of `family`.
    pub fn new(
        remote: Multiaddr,
        family: Family,
        range: PortRange,
        reason: NoPunchSocketReason,
    ) -> Self {
        Self {
            remote,
            range,
            reason,
            hint: family.punch_listen_hint(),
        }
    }
}

/// Why a hole-punch dial found no punch socket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoPunchSocketReason {
    /// No punch socket of the remote's IP family is bound.
    #[error("no {0} punch socket is bound")]
    NotBound(Family),
    /// The punch socket is bound to an address that cannot reach a loopback
    /// remote (or has not learnt its interface addresses yet).
    #[error("the punch socket {0} has no loopback address to reach a loopback remote from")]
    NoLoopback(SocketAddr),
}
