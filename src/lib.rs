//! QUIC hole punching for rust-libp2p nodes that listen on more than one UDP
//! port.
//!
//! Two drop-in parts for a libp2p 0.57 swarm, made together by [`new`] so
//! that they share one table of punch sockets (as `relay::client::new`
//! hands out a transport and a behaviour that share one state):
//!
//! - [`Transport`] replaces `with_quic()`. It binds a punch socket on a
//!   port of a [`PortRange`] and sends every hole-punch dial from it, never
//!   from another listener such as 443.
//! - [`Behaviour`] replaces `libp2p::dcutr::Behaviour`. It runs DCUtR
//!   (libp2p-dcutr 0.15's code, which sends the punch socket's short-TTL
//!   openers inside the exchange), hands it only address candidates on the
//!   punch range, and reports how every punch went.
//!
//! ```no_run
//! use libp2p::{SwarmBuilder, identify, noise, ping, relay, swarm::NetworkBehaviour, yamux};
//!
//! #[derive(NetworkBehaviour)]
//! struct Node {
//!     relay_client: relay::client::Behaviour,
//!     identify: identify::Behaviour,
//!     ping: ping::Behaviour,
//!     dcutr: punchport::Behaviour,
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let keypair = libp2p::identity::Keypair::generate_ed25519();
//! let (punch_transport, punch_dcutr) = punchport::new(&keypair);
//! let mut swarm = SwarmBuilder::with_existing_identity(keypair)
//!     .with_tokio()
//!     .with_other_transport(|_| punch_transport)?
//!     .with_relay_client(noise::Config::new, yamux::Config::default)?
//!     .with_behaviour(|key, relay_client| Node {
//!         relay_client,
//!         identify: identify::Behaviour::new(identify::Config::new("/app/1".into(), key.public())),
//!         ping: ping::Behaviour::default(),
//!         dcutr: punch_dcutr,
//!     })?
//!     .build();
//!
//! swarm.listen_on("/ip4/0.0.0.0/udp/443/quic-v1".parse()?)?; // ordinary listener
//! swarm.listen_on("/ip4/0.0.0.0/udp/0/quic-v1".parse()?)?;   // punch socket on 40000-40050
//! # Ok(()) }
//! ```
//!
//! Another range, initiator role or candidate mode is set once, in
//! [`Config`]: `punchport::with_config(punchport::Config::new(&keypair).with_range("41000-41100".parse()?))`.
//!
//! A relay server that runs libp2p-relay takes [`relay::Behaviour`] in place
//! of `libp2p::relay::Behaviour`: it closes a restarted peer's older
//! reserving connection, so that circuits reach the new one, and sends a
//! destination one circuit request at a time, so that none stalls (both in
//! a stock relay swarm: `tests/relay.rs`).
//!
//! # What it exports
//!
//! - Making the pair: [`new`], [`with_config`] and [`Config`], with the
//!   settings' types [`PortRange`], [`InitiatorRole`], [`CandidateMode`],
//!   [`BirthdayConfig`].
//! - The pair: [`Transport`], whose errors ([`Error`]: [`NoPunchSocket`],
//!   [`RangeExhausted`], [`PunchSocketTaken`]) travel inside libp2p-quic's,
//!   and [`Behaviour`], whose [`Event`]s carry DCUtR's own events and
//!   punchport's reports: [`AttemptReport`] (with a [`DialFailure`] when it
//!   failed), [`DirectReport`], [`FailureReport`] (with a [`PunchError`]),
//!   the candidate filter's [`Verdict`]s, the mapping's [`Observation`]s and
//!   the NAT's [`NatStatus`].
//! - Reading the punch sockets: [`PunchSockets`], [`PunchSocket`],
//!   [`QuicAddr`], [`Family`].
//! - [`relay`] for relay servers, and `metrics` (feature `metrics`).
//!
//! Every struct and enum that may grow is `#[non_exhaustive]`.

mod config;
mod dcutr;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzz;
#[cfg(feature = "metrics")]
pub mod metrics;
mod net;
mod quic;
pub mod relay;

pub use config::{Config, new, with_config};
pub use dcutr::{
    AttemptOutcome, AttemptReport, Behaviour, BirthdayConfig, BirthdayError, BirthdayStats,
    BudgetError, CandidateMode, Cost, DcutrError, DcutrEvent, Decision, DialFailure, DirectReport,
    DropReason, Event, FailureReport, MAX_PROBES, MAX_SOCKETS, MappingKind, Method, NatStatus,
    Observation, ParseCandidateModeError, PunchError, Role, Side, Source, TooManyCandidates,
    Tracked, Verdict,
};
pub use net::{
    AddrError, AddrErrorReason, Family, NoPunchSocket, NoPunchSocketReason, ParseRangeError,
    PortRange, PunchSocket, PunchSockets, QuicAddr,
};
pub use quic::{
    DEFAULT_OPENER_TTL, Error, InitiatorRole, ParseInitiatorRoleError, PunchSocketTaken,
    RangeExhausted, Transport,
};
