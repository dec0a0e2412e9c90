//! A QUIC transport for rust-libp2p whose hole-punch dials always leave from
//! the punch socket: a socket bound to a port of a configured range.
//!
//! libp2p-quic 0.14 chooses the source socket of a dial by hashing the remote
//! address over all of its listeners. A node listening on 443 and on a punch
//! port therefore sends about half of its DCUtR dials from 443, while the
//! remote aims at the punch port, and the NAT mappings never meet. This
//! transport keeps one libp2p-quic transport per socket and routes every
//! hole-punch dial to the punch socket of the remote's IP family.
//!
//! ```
//! use std::pin::Pin;
//!
//! use futures::future::poll_fn;
//! use libp2p_core::{Transport as _, transport::{ListenerId, TransportEvent}};
//! use punchport_core::QuicAddr;
//! use punchport_quic::{Config, Transport};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keypair = libp2p_identity::Keypair::generate_ed25519();
//! let range = "40000-40050".parse()?;
//! let mut transport = Transport::new(Config::new(&keypair).with_range(range));
//!
//! // Port 0, or any port of the range, binds the punch socket on the first
//! // free port of the range. Any other port is an ordinary listener.
//! transport.listen_on(ListenerId::next(), "/ip4/127.0.0.1/udp/0/quic-v1".parse()?)?;
//!
//! let event = poll_fn(|cx| Pin::new(&mut transport).poll(cx)).await;
//! let TransportEvent::NewAddress { listen_addr, .. } = event else { panic!("{event:?}") };
//! assert!(range.contains(QuicAddr::parse(&listen_addr)?.socket.port()));
//! # Ok(()) }
//! ```
//!
//! With a swarm, replace `.with_quic()` by
//! `.with_other_transport(|key| punchport_quic::Transport::new(punchport_quic::Config::new(key)))?`
//! and listen on `/ip4/0.0.0.0/udp/0/quic-v1` for the punch socket.

mod config;
mod error;
mod transport;

pub use config::{Config, DEFAULT_OPENER_TTL, InitiatorRole, ParseInitiatorRoleError};
pub use error::{Error, PunchSocketTaken, RangeExhausted};
pub use punchport_core::{
    Family, NoPunchSocket, NoPunchSocketReason, PortRange, PunchSocket, PunchSockets,
};
pub use transport::Transport;
