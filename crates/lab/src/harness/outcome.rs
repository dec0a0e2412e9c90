//! What a trial showed.

use std::net::IpAddr;

use natlab::Flow;
use punchport::PortRange;
use punchport_node::{NodeEvent, PeerSummary};
use serde::{Deserialize, Serialize};

use crate::Trial;

/// The part a side takes in the QUIC handshake of a punch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuicRole {
    /// It dials: sends the QUIC Initial.
    Client,
    /// It sends random UDP packets to open its NAT and accepts the other
    /// side's Initial (the DCUtR spec's initiator, go-libp2p's `holePunch`).
    Server,
}

/// One hole-punch attempt as one side made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Punch {
    /// Whether the side was DCUtR's initiator (else the responder; go
    /// calls it the receiver).
    pub initiator: bool,
    /// Its QUIC role in the attempt.
    pub quic: QuicRole,
}

impl Punch {
    /// `initiator/server`, `responder/client`, ...
    pub fn name(self) -> &'static str {
        match (self.initiator, self.quic) {
            (true, QuicRole::Server) => "initiator/server",
            (true, QuicRole::Client) => "initiator/client",
            (false, QuicRole::Server) => "responder/server",
            (false, QuicRole::Client) => "responder/client",
        }
    }
}

/// What one peer of a trial reported, and its router's direct flows.
#[derive(Debug, Clone, Default)]
pub struct Side {
    /// What the peer reported.
    pub peer: PeerSummary,
    /// The address other peers see it at (router WAN, or its own IP behind a firewall).
    pub public_ip: Option<IpAddr>,
    /// Its router's conntrack flows with the other peer's public IP.
    pub flows: Vec<Flow>,
    /// Its hole-punch attempts: from the `attempt` lines of a port-aware
    /// Rust peer, the stderr of a go peer, or (stock Rust, which dials as a
    /// QUIC client in every attempt) its attempt count.
    pub punches: Vec<Punch>,
    /// The DCUtR roles of its `attempt` lines (`initiator`, `responder`),
    /// for [`punches`](Self::punches).
    pub attempt_roles: Vec<String>,
    /// The peer process's CPU time (user + system) when its punch ended,
    /// in milliseconds.
    pub cpu_ms: Option<u64>,
    /// How many conntrack entries its router held at the end of the trial
    /// (the tables are flushed before each).
    pub conntrack_entries: usize,
}

impl Side {
    /// Folds `event` in.
    pub fn record(&mut self, event: &NodeEvent) {
        self.peer.record(event);
        if let NodeEvent::Attempt { role, .. } = event {
            self.attempt_roles.push(role.clone());
        }
    }

    /// Its router's flows with the other peer, as text:
    /// `10.1.0.10:40000 → 198.51.100.2:443 as :40000, replied` for one the
    /// host sent first (with the external port it was mapped to), `from
    /// 198.51.100.2:443 → :40000, unreplied` for one the other side sent
    /// first.
    pub fn flow_texts(&self) -> Vec<String> {
        let Some(me) = self.public_ip else {
            return Vec::new();
        };
        self.flows
            .iter()
            .map(|flow| {
                let replied = if flow.replied { "replied" } else { "unreplied" };
                if flow.original.src.ip() == me || flow.reply.dst.ip() == me {
                    format!(
                        "{} → {} as :{}, {replied}",
                        flow.original.src,
                        flow.original.dst,
                        flow.reply.dst.port()
                    )
                } else {
                    format!(
                        "from {} → {}, {replied}",
                        flow.original.src, flow.original.dst
                    )
                }
            })
            .collect()
    }

    /// Whether the first direct connection this side reported was one it
    /// dialed (QUIC client), if it reported one.
    pub fn first_dialed(&self) -> Option<bool> {
        self.peer.connections.first().map(|c| c.dialer)
    }

    /// Whether the peer said in one of its `nat` lines that its NAT maps
    /// `mapping` (`endpoint-independent`, `endpoint-dependent`), and, if
    /// `port_preserved` is given, that it preserves the port or not.
    pub fn said_nat(&self, mapping: &str, port_preserved: Option<bool>) -> bool {
        self.peer.nat.iter().any(|(m, p)| {
            m == mapping && port_preserved.is_none_or(|preserved| *p == Some(preserved))
        })
    }
}

/// A flow as seen from the inside: the host's port and the port the
/// router mapped it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// The inside host's port.
    pub inside: u16,
    /// The external port (the same as `inside` behind a firewall).
    pub external: u16,
    /// Whether traffic passed both ways.
    pub replied: bool,
}

impl Side {
    /// The direct flows with the peer at `other` as inside/external port pairs.
    pub fn mappings(&self, other: IpAddr) -> Vec<Mapping> {
        self.flows
            .iter()
            .filter_map(|flow| {
                if flow.original.dst.ip() == other {
                    Some((
                        flow.original.src.port(),
                        flow.reply.dst.port(),
                        flow.replied,
                    ))
                } else if flow.original.src.ip() == other {
                    Some((
                        flow.reply.src.port(),
                        flow.original.dst.port(),
                        flow.replied,
                    ))
                } else {
                    None
                }
            })
            .map(|(inside, external, replied)| Mapping {
                inside,
                external,
                replied,
            })
            .collect()
    }
}

/// The result of one trial.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What ran.
    pub trial: Trial,
    /// The reserving peer (DCUtR's initiator), behind router `a`.
    pub a: Side,
    /// The dialing peer, behind router `b`.
    pub b: Side,
    /// The dialing peer's exit code.
    pub exit_code: Option<i32>,
}

/// Whose QUIC dial opened the dialing peer's first direct connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Winner {
    /// The reserving peer's (A's) dial.
    Reserving,
    /// The dialing peer's (B's) dial.
    Dialing,
}

impl Outcome {
    /// Whose dial opened the dialing peer's first direct connection, from
    /// its first `connection` line (`dialer`: its own).
    pub fn winner(&self) -> Option<Winner> {
        self.b.first_dialed().map(|dialed| {
            if dialed {
                Winner::Dialing
            } else {
                Winner::Reserving
            }
        })
    }

    /// Whether the dialing peer reported a direct connection.
    pub fn direct(&self) -> bool {
        self.b.peer.direct()
    }

    /// Whether the trial ended relayed through a birthday punch's double
    /// miss, and nothing else: both sides ran both attempts to their end and
    /// neither connected. A birthday attempt is a draw that meets with about
    /// 98 % (docs/benchmarks-hard-nat.md), so a test of a birthday pairing
    /// must accept this outcome in a trial and still ask for direct ones.
    pub fn birthday_missed_twice(&self) -> bool {
        !self.direct()
            && [&self.a.peer, &self.b.peer]
                .iter()
                .all(|side| side.birthdays.len() == 2 && side.birthdays.iter().all(|b| !b.direct))
    }

    /// Milliseconds from relayed to direct at the dialing peer.
    pub fn elapsed_ms(&self) -> Option<u64> {
        self.b.peer.elapsed_ms
    }

    /// The first failure either peer reported, the dialing one's first.
    pub fn failure(&self) -> Option<&str> {
        self.b.peer.failure().or(self.a.peer.failure())
    }

    /// Whether both routers hold a direct flow with traffic both ways whose
    /// inside and external ports are inside `range`, and no such flow from a
    /// port outside it.
    pub fn direct_flows_on(&self, range: PortRange) -> bool {
        [(&self.a, &self.b), (&self.b, &self.a)]
            .iter()
            .all(|(side, other)| {
                let Some(other) = other.public_ip else {
                    return false;
                };
                let mappings: Vec<_> = side
                    .mappings(other)
                    .into_iter()
                    .filter(|m| m.replied)
                    .collect();
                !mappings.is_empty()
                    && mappings
                        .iter()
                        .all(|m| range.contains(m.inside) && range.contains(m.external))
            })
    }
}
