//! Configuration of the port-aware transport.

use crate::net::PortRange;
use libp2p_identity::Keypair;

/// The default TTL of datagrams that must leave this node's NAT only: a NAT
/// one hop away.
pub const DEFAULT_OPENER_TTL: u8 = 2;

/// Configuration of the port-aware [`Transport`](crate::quic::Transport): libp2p-quic's
/// own [`libp2p_quic::Config`], the punch [`PortRange`], and how the DCUtR
/// initiator punches.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) quic: libp2p_quic::Config,
    pub(crate) range: PortRange,
    pub(crate) initiator: InitiatorRole,
    pub(crate) opener_ttl: u8,
}

impl Config {
    /// libp2p-quic's defaults for `keypair`, the default range `40000-40050`
    /// and the default [`InitiatorRole`].
    pub(crate) fn new(keypair: &Keypair) -> Self {
        Self::from_quic(libp2p_quic::Config::new(keypair))
    }

    /// Wraps an existing libp2p-quic configuration (timeouts, MTU, limits are
    /// used unchanged for every socket).
    pub(crate) fn from_quic(quic: libp2p_quic::Config) -> Self {
        Self {
            quic,
            range: PortRange::default(),
            initiator: InitiatorRole::default(),
            opener_ttl: DEFAULT_OPENER_TTL,
        }
    }

    /// Sets the punch range.
    pub(crate) fn with_range(mut self, range: PortRange) -> Self {
        self.range = range;
        self
    }

    /// Sets how the DCUtR initiator punches.
    pub(crate) fn with_initiator_role(mut self, role: InitiatorRole) -> Self {
        self.initiator = role;
        self
    }

    /// Sets the TTL (IPv6: hop limit) of the datagrams that must leave this
    /// node's NAT but not reach the other side's: the birthday punch's hard
    /// side sends nothing else. The default, 2, fits a NAT one hop away (a
    /// Kubernetes node in front of its pods, a home router): the datagram
    /// leaves the pod with 2, the node maps it and forwards it with 1, and
    /// the next router drops it. Behind a NAT `n` hops away (a cloud NAT
    /// gateway behind the node), use `n + 1`. Values outside 1-64 are
    /// clamped.
    pub(crate) fn with_opener_ttl(mut self, ttl: u8) -> Self {
        self.opener_ttl = ttl.clamp(1, 64);
        self
    }

    /// The inner libp2p-quic configuration, to change its timeouts and limits.
    pub(crate) fn quic_mut(&mut self) -> &mut libp2p_quic::Config {
        &mut self.quic
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("range", &self.range)
            .field("initiator", &self.initiator)
            .field("opener_ttl", &self.opener_ttl)
            .field("handshake_timeout", &self.quic.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl InitiatorRole {
    /// `client` or `server`, as the peer node's `--initiator-role` flag
    /// takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            InitiatorRole::Client => "client",
            InitiatorRole::Server => "server",
        }
    }
}

impl std::fmt::Display for InitiatorRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An initiator role that is neither `client` nor `server`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is no initiator role: use `client` or `server`")]
#[non_exhaustive]
pub struct ParseInitiatorRoleError(String);

impl std::str::FromStr for InitiatorRole {
    type Err = ParseInitiatorRoleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "client" => Ok(InitiatorRole::Client),
            "server" => Ok(InitiatorRole::Server),
            other => Err(ParseInitiatorRoleError(other.chars().take(40).collect())),
        }
    }
}

/// How the side that initiates DCUtR (the one holding the relay reservation,
/// which dials with the *listener* role) opens its hole.
///
/// Both ways leave from the punch socket; they differ in what is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InitiatorRole {
    /// A QUIC client connect from the punch socket, at the same time as the
    /// other side's connect (what rust-libp2p 0.57 does with one listener).
    /// Whichever Initial passes both NATs first completes a handshake.
    #[default]
    Client,
    /// The DCUtR spec's QUIC role: send random UDP packets from the punch
    /// socket to open the NAT mapping, and accept the other side's connection
    /// as the QUIC server.
    Server,
}
