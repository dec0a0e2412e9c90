//! The port-aware QUIC transport: every hole-punch dial leaves from the
//! punch socket, a socket bound to a port of a configured range.
//!
//! libp2p-quic 0.14 chooses the source socket of a dial by hashing the remote
//! address over all of its listeners. A node listening on 443 and on a punch
//! port therefore sends about half of its DCUtR dials from 443, while the
//! remote aims at the punch port, and the NAT mappings never meet. This
//! transport keeps one libp2p-quic transport per socket and routes every
//! hole-punch dial to the punch socket of the remote's IP family.

mod config;
mod error;
mod transport;

pub(crate) use config::Config;
pub use config::{DEFAULT_OPENER_TTL, InitiatorRole, ParseInitiatorRoleError};
pub use error::{Error, PunchSocketTaken, RangeExhausted};
pub use transport::Transport;
