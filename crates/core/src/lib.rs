//! Types shared by the punchport crates: the punch [`PortRange`], the table
//! of punch sockets that the transport owns and everything else reads
//! ([`SocketTable`], [`PunchSockets`]), and helpers that read a QUIC socket
//! address out of a [`Multiaddr`](libp2p_core::Multiaddr).
//!
//! ```
//! use punchport_core::PortRange;
//!
//! let range: PortRange = "40000-40050".parse()?;
//! assert!(range.contains(40010));
//! assert_eq!(range.to_string(), "40000-40050");
//! assert_eq!(PortRange::default(), range);
//! # Ok::<_, punchport_core::ParseRangeError>(())
//! ```

mod addr;
mod family;
mod punch;
mod range;
mod sockets;
pub mod wire;

pub use addr::{AddrError, AddrErrorReason, QuicAddr, is_quic_addr, is_routable};
pub use family::Family;
pub use punch::{NoPunchSocket, NoPunchSocketReason};
pub use range::{ParseRangeError, PortRange};
pub use sockets::{DialPurpose, PunchSocket, PunchSockets, Route, SocketTable};
