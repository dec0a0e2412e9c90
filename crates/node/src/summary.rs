//! What one peer reported, folded from its [`NodeEvent`]s: the loopback
//! scenarios fold the events of in-process nodes into it, the NAT lab those
//! of the binaries' JSON lines.

use libp2p::{Multiaddr, PeerId};
use punchport::QuicAddr;

use crate::NodeEvent;

/// A direct connection as one side reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectConnection {
    /// Whether this side dialed it.
    pub dialer: bool,
    /// The remote port: the dialed one, or the source of an accepted
    /// connection.
    pub remote_port: u16,
    /// The local port, when known.
    pub local_port: Option<u16>,
    /// The IP family, `ip4` or `ip6`.
    pub family: Option<String>,
}

/// A birthday attempt as one side reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirthdayAttempt {
    /// `hard` or `easy`.
    pub role: String,
    /// Whether this side's part connected.
    pub direct: bool,
    /// Sockets opened.
    pub sockets: u16,
    /// Probes sent.
    pub probes: u16,
    /// The port that won.
    pub winning_port: Option<u16>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The IP family, `ip4` or `ip6`.
    pub family: Option<String>,
    /// Datagrams this side sent.
    pub datagrams: u32,
    /// The bytes they took on the wire.
    pub bytes: u64,
    /// From the start of its datagrams to its end, in milliseconds.
    pub window_ms: Option<u64>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The process's CPU time when it ended, in microseconds.
    pub cpu_us: Option<u64>,
}

/// What one peer reported.
#[derive(Debug, Clone, Default)]
pub struct PeerSummary {
    /// The peer's id, from its `ready` line.
    pub peer_id: Option<PeerId>,
    /// Its punch port, from its listen addresses.
    pub punch_port: Option<u16>,
    /// Milliseconds from relayed to the first direct connection.
    pub elapsed_ms: Option<u64>,
    /// Its DCUtR attempts until direct or failed.
    pub attempts: Option<u32>,
    /// Every direct connection it reported.
    pub connections: Vec<DirectConnection>,
    /// Its `punch_failed` errors, and `timeout`.
    pub failures: Vec<String>,
    /// Its birthday attempts.
    pub birthdays: Vec<BirthdayAttempt>,
    /// Its `nat` lines: mapping, port preserved.
    pub nat: Vec<(String, Option<bool>)>,
    /// The process's CPU time when its first relayed connection opened, in
    /// microseconds.
    pub relayed_cpu_us: Option<u64>,
}

impl PeerSummary {
    /// Nothing reported yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds `event` in.
    pub fn record(&mut self, event: &NodeEvent) {
        let port = |addr: &Multiaddr| QuicAddr::parse(addr).ok().map(|q| q.socket.port());
        match event {
            NodeEvent::Listening {
                address,
                punch_socket: true,
            } => self.punch_port = port(address),
            NodeEvent::Ready { peer_id } => self.peer_id = Some(*peer_id),
            NodeEvent::Connection {
                endpoint,
                remote_address,
                local_port,
                ..
            } => {
                if let Some(remote_port) = port(remote_address) {
                    self.connections.push(DirectConnection {
                        dialer: endpoint == "dialer",
                        remote_port,
                        local_port: *local_port,
                        family: punchport::QuicAddr::parse(remote_address)
                            .ok()
                            .map(|q| if q.socket.is_ipv4() { "ip4" } else { "ip6" }.to_owned()),
                    });
                }
            }
            NodeEvent::Direct {
                elapsed_ms,
                attempts,
                ..
            } => {
                self.elapsed_ms.get_or_insert(*elapsed_ms);
                self.attempts.get_or_insert(*attempts);
            }
            NodeEvent::PunchFailed {
                error, attempts, ..
            } => {
                self.failures.push(error.clone());
                self.attempts.get_or_insert(*attempts);
            }
            NodeEvent::Timeout => self.failures.push("timeout".to_owned()),
            NodeEvent::Attempt {
                method,
                birthday_role: Some(role),
                outcome,
                sockets,
                probes,
                winning_port,
                duration_ms,
                family,
                datagrams,
                bytes,
                window_ms,
                error,
                cpu_us,
                ..
            } if method == "birthday" => self.birthdays.push(BirthdayAttempt {
                role: role.clone(),
                direct: outcome == "direct",
                sockets: *sockets,
                probes: *probes,
                winning_port: *winning_port,
                duration_ms: *duration_ms,
                family: family.clone(),
                datagrams: *datagrams,
                bytes: *bytes,
                window_ms: *window_ms,
                error: error.clone(),
                cpu_us: *cpu_us,
            }),
            NodeEvent::Nat {
                mapping,
                port_preserved,
            } => self.nat.push((mapping.clone(), *port_preserved)),
            NodeEvent::Relayed { cpu_us, .. } => {
                self.relayed_cpu_us = self.relayed_cpu_us.or(*cpu_us);
            }
            _ => {}
        }
    }

    /// Whether it reported a direct connection.
    pub fn direct(&self) -> bool {
        self.elapsed_ms.is_some()
    }

    /// Its first failure, if any.
    pub fn failure(&self) -> Option<&str> {
        self.failures.first().map(String::as_str)
    }
}
