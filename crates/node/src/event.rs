//! What a node reports; the binaries print one JSON object per line.

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

/// An event of a relay or peer node. Serialized with an `"event"` field that
/// names the variant in snake case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
// A line to print, moved once: the attempt line's size costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum NodeEvent {
    /// The node listens on `address`.
    Listening {
        /// A listen address.
        address: Multiaddr,
        /// Whether it is the punch socket's (peers only).
        #[serde(default)]
        punch_socket: bool,
    },
    /// The node serves its Prometheus metrics at `http://<address>/metrics`.
    Metrics {
        /// The bound address.
        address: std::net::SocketAddr,
    },
    /// The relay serves; a peer holds its reservation (or, with a dial
    /// target, is about to dial).
    Ready {
        /// This node's peer id.
        peer_id: PeerId,
    },
    /// A relayed connection to `peer` is established.
    Relayed {
        /// The remote peer.
        peer: PeerId,
        /// This process's CPU time (user + system) so far, in microseconds.
        #[serde(default)]
        cpu_us: Option<u64>,
    },
    /// A direct (non-relayed) connection to `peer` is established. Reported
    /// for every direct connection; the first one also yields [`NodeEvent::Direct`].
    Connection {
        /// The remote peer.
        peer: PeerId,
        /// `"dialer"` if this side dialed it, `"listener"` if it accepted it.
        endpoint: String,
        /// The remote socket: the dialed address, or the source of an
        /// accepted connection.
        remote_address: Multiaddr,
        /// The local port, when known.
        local_port: Option<u16>,
    },
    /// The first direct connection to `peer` after the relayed one.
    Direct {
        /// The remote peer.
        peer: PeerId,
        /// Milliseconds from the relayed connection to the direct one.
        elapsed_ms: u64,
        /// The remote socket of the direct connection.
        remote_address: Multiaddr,
        /// The local port, when known.
        local_port: Option<u16>,
        /// Direct dials this side made to `peer` since the relayed
        /// connection (one per DCUtR attempt).
        attempts: u32,
    },
    /// Hole punching to `peer` failed; the relayed connection stays.
    PunchFailed {
        /// The remote peer.
        peer: PeerId,
        /// The error in words.
        error: String,
        /// Direct dials this side made to `peer` since the relayed connection.
        attempts: u32,
    },
    /// The relay refused or dropped this peer's reservation; the peer asks
    /// again later (after 2 s, doubling up to 30 s).
    ReservationFailed {
        /// The relay.
        relay: PeerId,
        /// Why, in words.
        error: String,
    },
    /// A connection to `peer` (not the relay) closed.
    Disconnected {
        /// The remote peer.
        peer: PeerId,
        /// Whether it was the relayed connection.
        relayed: bool,
        /// Why, if it closed with an error.
        cause: Option<String>,
    },
    /// A ping over a connection to `peer` was answered.
    Ping {
        /// The remote peer.
        peer: PeerId,
        /// Whether the connection is relayed.
        relayed: bool,
        /// The round trip in milliseconds.
        rtt_ms: u64,
    },
    /// What the observations say about the NAT in front of the punch socket.
    Nat {
        /// `endpoint-independent`, `endpoint-dependent` or `unknown`.
        mapping: String,
        /// Whether observers saw the punch port itself; `null` before any.
        port_preserved: Option<bool>,
    },
    /// One hole-punch attempt ended on this side.
    Attempt {
        /// The peer punched to.
        peer: PeerId,
        /// `initiator` (holds the reservation, dials with the listener role)
        /// or `responder`.
        role: String,
        /// The attempt's number since the relayed connection, from 1.
        attempt: u8,
        /// The punch socket the dial left from.
        local_address: Option<Multiaddr>,
        /// The candidates this side advertised.
        candidates_sent: Vec<Multiaddr>,
        /// The candidates the other side advertised.
        candidates_received: Vec<Multiaddr>,
        /// The addresses dialed.
        dialed: Vec<Multiaddr>,
        /// How long the dial took, in milliseconds.
        duration_ms: u64,
        /// From the relayed connection to the end of the attempt.
        since_relayed_ms: Option<u64>,
        /// `direct` or `failed`.
        outcome: String,
        /// The address that connected.
        remote_address: Option<Multiaddr>,
        /// Why the dial failed, in words.
        error: Option<String>,
        /// `plain` (one of DCUtR's dials) or `birthday`.
        #[serde(default = "plain")]
        method: String,
        /// Birthday: `hard` (opened sockets) or `easy` (sent probes).
        #[serde(default)]
        birthday_role: Option<String>,
        /// Birthday: sockets this side opened.
        #[serde(default)]
        sockets: u16,
        /// Birthday: probes this side sent.
        #[serde(default)]
        probes: u16,
        /// Birthday: the port that won.
        #[serde(default)]
        winning_port: Option<u16>,
        /// Birthday: the IP family it punched in, `ip4` or `ip6`.
        #[serde(default)]
        family: Option<String>,
        /// Birthday: datagrams this side sent.
        #[serde(default)]
        datagrams: u32,
        /// Birthday: the bytes they took on the wire (IP and UDP headers
        /// included).
        #[serde(default)]
        bytes: u64,
        /// Birthday: from the start of this side's datagrams to the end.
        #[serde(default)]
        window_ms: Option<u64>,
        /// This process's CPU time (user + system) so far, in microseconds.
        #[serde(default)]
        cpu_us: Option<u64>,
    },
    /// The NAT rewrote the punch port (another node behind it holds the
    /// same port), so the punch socket moved to another port of the range.
    PunchPortMoved {
        /// The punch port that was rewritten.
        from: u16,
        /// The port the remote saw instead.
        observed: u16,
        /// The new punch port.
        to: u16,
    },
    /// The sizes of punchport's own maps (with `--maps-interval-secs`).
    Maps {
        /// Punches followed (one per peer with a relayed connection).
        punches: usize,
        /// DCUtR dials under way.
        dials: usize,
        /// Connections whose observations are followed.
        connections: usize,
        /// Connections whose source socket the transport recorded.
        sources: usize,
        /// Fresh (birthday) sockets open.
        fresh_sockets: usize,
        /// Birthday attempts under way.
        birthday_attempts: usize,
        /// Birthday dials under way.
        birthday_dials: usize,
        /// Peers the birthday part follows.
        birthday_peers: usize,
        /// Peers and IPs the birthday limits remember.
        limited: (usize, usize),
        /// DCUtR dials since the wrapped libp2p-dcutr was made: a bound on
        /// the entries of each of its unpruned maps.
        #[serde(default)]
        dcutr_entries: usize,
        /// How often it was replaced to bound them.
        #[serde(default)]
        dcutr_renewals: u64,
    },
    /// The peer gave up waiting for a direct connection.
    Timeout,
}

impl NodeEvent {
    /// The `attempt` line for `report`.
    pub fn attempt(report: &punchport::AttemptReport) -> Self {
        use punchport::AttemptOutcome;
        use punchport::Method;
        let (outcome, remote_address, error) = match &report.outcome {
            AttemptOutcome::Direct { address } => ("direct", Some(address.clone()), None),
            AttemptOutcome::Failed { error } => ("failed", None, Some(chain(error))),
            _ => ("other", None, None),
        };
        let family = match &report.method {
            Method::Birthday(stats) => Some(
                match stats.family {
                    punchport::Family::Ipv4 => "ip4",
                    punchport::Family::Ipv6 => "ip6",
                }
                .to_owned(),
            ),
            _ => None,
        };
        let (birthday_role, sockets, probes, winning_port, sent, window) = match &report.method {
            Method::Birthday(stats) => (
                Some(stats.role.as_str().to_owned()),
                stats.sockets,
                stats.probes,
                stats.winner,
                stats.sent,
                stats.window_used,
            ),
            _ => (None, 0, 0, None, Default::default(), None),
        };
        NodeEvent::Attempt {
            peer: report.remote_peer_id,
            role: report.side.as_str().to_owned(),
            attempt: report.attempt,
            local_address: report.local_addr.clone(),
            candidates_sent: report.candidates_sent.clone(),
            candidates_received: report.candidates_received.clone(),
            dialed: report.dialed.clone(),
            duration_ms: report.duration.as_millis() as u64,
            since_relayed_ms: report.since_relayed.map(|d| d.as_millis() as u64),
            outcome: outcome.to_owned(),
            remote_address,
            error,
            method: report.method.as_str().to_owned(),
            birthday_role,
            sockets,
            probes,
            winning_port,
            family,
            datagrams: sent.datagrams,
            bytes: sent.bytes,
            window_ms: window.map(|w| w.as_millis() as u64),
            cpu_us: cpu_us(),
        }
    }

    /// The `maps` line for `tracked`.
    pub fn maps(tracked: &punchport::Tracked) -> Self {
        NodeEvent::Maps {
            punches: tracked.punches,
            dials: tracked.dials,
            connections: tracked.connections,
            sources: tracked.sources,
            fresh_sockets: tracked.fresh_sockets,
            birthday_attempts: tracked.birthday_attempts,
            birthday_dials: tracked.birthday_dials,
            birthday_peers: tracked.birthday_peers,
            limited: tracked.limited,
            dcutr_entries: tracked.dcutr_entries,
            dcutr_renewals: tracked.dcutr_renewals,
        }
    }

    /// The event as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("node events serialize")
    }
}

fn plain() -> String {
    "plain".to_owned()
}

/// Reports `event`. A closed receiver means nobody listens any more; the
/// node keeps running.
/// This process's CPU time (user + system) so far, in microseconds, from
/// `getrusage` (which the kernel keeps from the scheduler's own account, not
/// from ticks); `None` where it cannot be read.
/// An error and its sources in one line: `error: source: source ...`.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub(crate) fn cpu_us() -> Option<u64> {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).ok()?;
    let micros = |t: nix::sys::time::TimeVal| -> Option<u64> {
        Some(u64::try_from(t.tv_sec()).ok()? * 1_000_000 + u64::try_from(t.tv_usec()).ok()?)
    };
    Some(micros(usage.user_time())? + micros(usage.system_time())?)
}

pub(crate) fn send(events: &tokio::sync::mpsc::UnboundedSender<NodeEvent>, event: NodeEvent) {
    let _ = events.send(event);
}

/// `addr` ending in `/p2p/<peer>` (appended unless it ends in a `/p2p/` already).
pub(crate) fn with_peer_id(addr: Multiaddr, peer: PeerId) -> Multiaddr {
    match addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(_)) => addr,
        _ => addr.with(libp2p::multiaddr::Protocol::P2p(peer)),
    }
}
