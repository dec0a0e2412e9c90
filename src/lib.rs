//! QUIC hole punching for rust-libp2p nodes that listen on more than one UDP
//! port.
//!
//! Two drop-in parts for a libp2p 0.57 swarm:
//!
//! - [`quic::Transport`] replaces `with_quic()`. It binds a punch socket on a
//!   port of a [`PortRange`] and sends every hole-punch dial from it, never
//!   from another listener such as 443.
//! - [`dcutr::Behaviour`] replaces `libp2p::dcutr::Behaviour`. It wraps DCUtR
//!   and hands it only address candidates on the punch range.
//!
//! ```no_run
//! use libp2p::{SwarmBuilder, identify, noise, ping, relay, swarm::NetworkBehaviour, yamux};
//!
//! #[derive(NetworkBehaviour)]
//! struct Node {
//!     relay_client: relay::client::Behaviour,
//!     identify: identify::Behaviour,
//!     ping: ping::Behaviour,
//!     dcutr: punchport::dcutr::Behaviour,
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut swarm = SwarmBuilder::with_new_identity()
//!     .with_tokio()
//!     .with_other_transport(|key| punchport::quic::Transport::new(punchport::quic::Config::new(key)))?
//!     .with_relay_client(noise::Config::new, yamux::Config::default)?
//!     .with_behaviour(|key, relay_client| Node {
//!         relay_client,
//!         identify: identify::Behaviour::new(identify::Config::new("/app/1".into(), key.public())),
//!         ping: ping::Behaviour::default(),
//!         dcutr: punchport::dcutr::Behaviour::new(key.public().to_peer_id()),
//!     })?
//!     .build();
//!
//! swarm.listen_on("/ip4/0.0.0.0/udp/443/quic-v1".parse()?)?; // ordinary listener
//! swarm.listen_on("/ip4/0.0.0.0/udp/0/quic-v1".parse()?)?;   // punch socket on 40000-40050
//! # Ok(()) }
//! ```

pub use punchport_core::{
    AddrError, AddrErrorReason, Family, NoPunchSocket, NoPunchSocketReason, ParseRangeError,
    PortRange, QuicAddr,
};

/// The port-aware QUIC transport.
pub mod quic {
    pub use punchport_quic::*;
}

/// DCUtR behind the punch-range candidate filter.
pub mod dcutr {
    pub use punchport_dcutr::*;
}

/// Prometheus metrics for hole punching (feature `metrics`).
#[cfg(feature = "metrics")]
pub mod metrics {
    pub use punchport_metrics::*;
}
