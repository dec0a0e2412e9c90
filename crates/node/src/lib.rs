//! Relay and peer nodes built on punchport.
//!
//! The `relay` and `peer` example binaries, the demo, the integration tests
//! and the NAT lab all run these same nodes. A node runs as a tokio task and
//! reports what happens as [`NodeEvent`]s, which the binaries print as JSON
//! lines.
//!
//! ```no_run
//! use punchport_node::{NodeEvent, PeerConfig, RelayConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut relay = RelayConfig::loopback(1).spawn()?;
//! let relay_addr = relay.wait_for_listen_addr().await?;
//! let mut a = PeerConfig::new(relay_addr.clone())?.spawn()?;
//! a.wait_for_ready().await?;
//! let mut b = PeerConfig::new(relay_addr)?.dial(a.peer_id()).spawn()?;
//! let direct = b.wait_for(|e| matches!(e, NodeEvent::Direct { .. }).then(|| e.clone())).await?;
//! println!("{direct:?}");
//! # Ok(()) }
//! ```

pub mod cli;
mod error;
mod event;
mod handle;
mod identity;
pub mod loopback;
mod metrics;
mod peer;
mod relay;
mod summary;

pub use error::{ConfigError, WaitError};
pub use event::NodeEvent;
pub use handle::Node;
pub use identity::{KeyFileError, keypair_from_seed, load_or_create_keypair, write_keypair};
pub use peer::{PeerConfig, TransportKind};
pub use relay::{RelayConfig, RelayLimits};
pub use summary::{BirthdayAttempt, DirectConnection, PeerSummary};

/// The identify protocol version the nodes announce.
pub const PROTOCOL_VERSION: &str = "/punchport/0.1.0";
