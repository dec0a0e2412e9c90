//! The punch sockets' facts: the punch [`PortRange`], the table of punch
//! sockets that the transport owns and the behaviour reads ([`SocketTable`],
//! [`PunchSockets`]), the datagrams sent from a punch socket past quinn
//! ([`wire`]), and reading a QUIC socket address out of a multiaddr.

mod addr;
mod family;
mod punch;
mod range;
mod sockets;
pub(crate) mod wire;

pub(crate) use addr::is_routable;
pub use addr::{AddrError, AddrErrorReason, QuicAddr};
pub use family::Family;
pub use punch::{NoPunchSocket, NoPunchSocketReason};
pub use range::{ParseRangeError, PortRange};
pub(crate) use sockets::{DialPurpose, Route, Snapshot, SocketTable};
pub use sockets::{PunchSocket, PunchSockets};
