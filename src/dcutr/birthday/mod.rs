//! Birthday punching: hole punching when one side's NAT maps
//! endpoint-dependently ("hard", the Kubernetes default behind CNIs that
//! masquerade with random ports) and the other's endpoint-independently
//! ("easy").
//!
//! The two sides first agree over the relayed connection
//! ([`protocol`], `/punchport/birthday/2`; docs/birthday-protocol.md);
//! stock peers do not speak it and are never part of it. Each attempt is a
//! [`machine::Attempt`], a state machine without I/O; this module drives
//! it: the negotiation streams, the timers, and the sockets of [`io`].
//!
//! The birthday facts of a punch (attempts, ties, the attempt under way)
//! live in the punch's one record ([`Record`], inside
//! `attempts::Punch`).

mod config;
mod driver;
mod generated;
mod io;
mod limits;
pub(crate) mod machine;
mod negotiate;
#[cfg(test)]
mod pair;
pub(crate) mod plan;
mod ports;
pub(crate) mod protocol;

use std::{net::SocketAddr, time::Duration};

use crate::net::Family;

pub use config::{BirthdayConfig, BudgetError, MAX_PROBES, MAX_SOCKETS};
pub use limits::Cost;
pub(crate) use limits::Refusal;
pub use machine::AttemptError;
pub use plan::Role;

pub(crate) use driver::{Action, Birthday};
pub(crate) use negotiate::Record;
pub(crate) use protocol::Class;

/// What a birthday attempt did on this side.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BirthdayStats {
    /// This side's part.
    pub role: Role,
    /// The IP family it punched in.
    pub family: Family,
    /// Sockets opened (hard side).
    pub sockets: u16,
    /// Probes sent (easy side).
    pub probes: u16,
    /// Everything it sent, in datagrams and bytes on the wire.
    pub sent: Cost,
    /// The port that won: on the hard side its local socket's, on the
    /// easy side the one the hard side named.
    pub winner: Option<u16>,
    /// From the start of its datagrams (the tie, and `Ready` on the easy
    /// side) to its end.
    pub window_used: Option<Duration>,
}

/// This side's punch sockets as the behaviour knows them, for its hello.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mine {
    pub(crate) sockets: Vec<MineSocket>,
    /// A probe that may classify a NAT is under way.
    pub(crate) probing: bool,
}

/// One punch socket of this side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MineSocket {
    pub(crate) family: Family,
    pub(crate) class: Class,
    /// Its public address, as observers agree on it.
    pub(crate) public: Option<SocketAddr>,
    /// Where it is bound.
    pub(crate) punch: SocketAddr,
}

impl Mine {
    /// A class is unknown but a probe may tell it soon: the negotiation
    /// waits for it (at most two seconds).
    fn unsettled(&self) -> bool {
        self.probing
            && self
                .sockets
                .iter()
                .any(|s| s.class.mapping == crate::dcutr::nat::MappingKind::Unknown)
    }

    /// The punch socket of `family`, as bound.
    fn punch(&self, family: Family) -> Option<SocketAddr> {
        self.sockets
            .iter()
            .find(|s| s.family == family)
            .map(|s| s.punch)
    }
}
