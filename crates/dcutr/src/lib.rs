//! DCUtR behind a candidate filter: DCUtR advertises only addresses on the
//! punch port range.
//!
//! identify reports our observed addresses as seen by each remote: the port
//! of 443, an ephemeral port, a port the NAT rewrote. libp2p-dcutr advertises
//! all of them to the peer it punches to, which then aims at ports our punch
//! never leaves from. [`Behaviour`] wraps `libp2p_dcutr::Behaviour` and hands
//! it only candidates inside the range (or translated onto the punch port).
//! It must wrap DCUtR rather than sit beside it: the swarm shows every event to
//! every behaviour.
//!
//! The behaviour shares one table of punch sockets with the port-aware
//! transport ([`PunchSockets`]), as libp2p-relay's client shares its state
//! between its transport and its behaviour: which socket is the punch socket
//! and where each dial left from are the transport's facts, read here.
//!
//! ```
//! use libp2p::{identify, identity::Keypair, ping, relay, swarm::NetworkBehaviour};
//! use punchport_dcutr::{Behaviour, CandidateMode, Config, Decision, Event};
//!
//! #[derive(NetworkBehaviour)]
//! struct Node {
//!     relay_client: relay::client::Behaviour,
//!     identify: identify::Behaviour,
//!     ping: ping::Behaviour,
//!     dcutr: punchport_dcutr::Behaviour, // was: libp2p::dcutr::Behaviour
//! }
//!
//! let key = Keypair::generate_ed25519();
//! let peer_id = key.public().to_peer_id();
//! let (_relay_transport, relay_client) = relay::client::new(peer_id);
//! // The transport owns the punch range; the behaviour reads it from the table.
//! let transport = punchport_quic::Transport::new(
//!     punchport_quic::Config::new(&key).with_range("40000-40050".parse()?),
//! );
//! let config = Config::new().with_candidates(CandidateMode::SocketAware);
//! let mut node = Node {
//!     relay_client,
//!     identify: identify::Behaviour::new(identify::Config::new("/app/1".into(), key.public())),
//!     ping: ping::Behaviour::default(),
//!     dcutr: Behaviour::with_config(peer_id, transport.punch_sockets(), config),
//! };
//! // An address from configuration passes the same filter once the punch socket listens.
//! node.dcutr.add_announced_address("/ip4/203.0.113.7/udp/0/quic-v1".parse()?)?;
//! assert_eq!(node.dcutr.stats().seen, 1);
//! assert_eq!(node.dcutr.punch_sockets().range().to_string(), "40000-40050");
//! # let _ = |e: Event| matches!(e, Event::Candidate(v) if v.decision == Decision::Kept);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```

mod attempts;
mod behaviour;
mod birthday;
mod candidates;
mod config;
mod event;
mod filter;
mod mapping;
mod nat;
mod renewal;

pub use attempts::{
    AttemptOutcome, AttemptReport, DirectReport, FailureReport, Method, PunchError, Side,
};
pub use behaviour::Behaviour;
pub use birthday::{
    AttemptError as BirthdayError, BirthdayConfig, BirthdayStats, BudgetError, Cost, MAX_PROBES,
    MAX_SOCKETS, Refusal, Role,
};
pub use config::{CandidateMode, Config, ParseCandidateModeError};
pub use event::{Event, TooManyCandidates, Tracked};
pub use filter::{Decision, DropReason, Source, Stats, Verdict};
pub use mapping::Observation;
pub use nat::{MappingKind, NatStatus};
pub use punchport_core::{PortRange, PunchSocket, PunchSockets};
