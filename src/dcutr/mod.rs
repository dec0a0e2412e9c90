//! DCUtR behind a candidate filter: DCUtR advertises only addresses on the
//! punch port range.
//!
//! identify reports our observed addresses as seen by each remote: the port
//! of 443, an ephemeral port, a port the NAT rewrote. libp2p-dcutr advertises
//! all of them to the peer it punches to, which then aims at ports our punch
//! never leaves from. [`Behaviour`] wraps DCUtR and hands it only candidates
//! inside the range (or translated onto the punch port). It must wrap DCUtR
//! rather than sit beside it: the swarm shows every event to every behaviour.
//!
//! The DCUtR it wraps is libp2p-dcutr 0.15's code, taken in as `holepunch`
//! so that each side's short-TTL openers leave inside the exchange, before
//! the message the other side's punch waits for (see its module docs).
//!
//! The behaviour shares one table of punch sockets with the port-aware
//! transport ([`PunchSockets`]), as libp2p-relay's client shares its state
//! between its transport and its behaviour.

mod attempts;
mod behaviour;
mod birthday;
mod candidates;
mod config;
mod event;
mod filter;
mod holepunch;
mod mapping;
mod nat;
mod renewal;

pub use attempts::{
    AttemptOutcome, AttemptReport, DialFailure, DirectReport, FailureReport, Method, PunchError,
    Side,
};
pub use behaviour::Behaviour;
pub use birthday::{
    AttemptError as BirthdayError, BirthdayConfig, BirthdayStats, BudgetError, Cost, MAX_PROBES,
    MAX_SOCKETS, Role,
};
pub use candidates::TooManyCandidates;
pub(crate) use config::Config;
pub use config::{CandidateMode, ParseCandidateModeError};
pub use event::{Event, Tracked};
pub use filter::{Decision, DropReason, Source, Verdict};
pub use holepunch::{Error as DcutrError, Event as DcutrEvent};
pub use mapping::Observation;
pub use nat::{MappingKind, NatStatus};
