//! Errors of node configuration and of waiting for node events.

use std::time::Duration;

use libp2p::Multiaddr;

/// A node configuration that cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The relay address has no `/p2p/<peer id>`.
    #[error(
        "relay address `{0}` has no `/p2p/<peer id>`: append the relay's peer id, as in `/ip4/198.51.100.1/udp/443/quic-v1/p2p/12D3KooW...` (the relay prints it in its `ready` line)"
    )]
    RelayWithoutPeerId(Multiaddr),
    /// The relay address is not a QUIC address.
    #[error("relay address: {0}")]
    RelayAddr(#[from] punchport::AddrError),
    /// A listen address is not a QUIC address.
    #[error("listen address: {0}")]
    ListenAddr(punchport::AddrError),
    /// An external address is not a QUIC address.
    #[error("external address: {0}")]
    ExternalAddr(punchport::AddrError),
    /// The key file is unusable.
    #[error(transparent)]
    KeyFile(#[from] crate::KeyFileError),
    /// The swarm could not be built.
    #[error("building the swarm failed: {0}")]
    Swarm(String),
    /// The birthday budget is outside the limits.
    #[error("birthday punching: {0}")]
    Birthday(#[from] punchport::BudgetError),
    /// Listening failed.
    #[error("cannot listen on `{addr}`: {reason}")]
    Listen {
        /// The listen address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
}

/// Waiting for a node event did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// Nothing matched in time.
    #[error("no matching event within {0:?}")]
    Timeout(Duration),
    /// The node stopped.
    #[error("the node stopped{0}")]
    Stopped(String),
}
