//! What a trial runs: which transport, which listeners, how long to wait.

use std::time::Duration;

use punchport::{PortRange, quic::InitiatorRole};
use punchport_node::TransportKind;

/// The peers' listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Only the punch socket (one port of the range).
    PunchOnly,
    /// The seed layout that fails with stock rust-libp2p: an ordinary
    /// listener on UDP 443 plus the punch socket.
    With443,
}

impl Layout {
    /// The `--listen` flags of this layout, with the ordinary listener on
    /// `ordinary_port` (443 in the seed layout).
    pub(crate) fn listen_args(self, ordinary_port: u16) -> Vec<String> {
        match self {
            Layout::PunchOnly => Vec::new(),
            Layout::With443 => vec![
                "--listen".into(),
                format!("/ip4/0.0.0.0/udp/{ordinary_port}/quic-v1"),
            ],
        }
    }

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Layout::PunchOnly => "punch port only",
            Layout::With443 => "443 + punch range",
        }
    }
}

/// One punch attempt between the peers behind routers `a` and `b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trial {
    /// punchport or stock.
    pub kind: TransportKind,
    /// The peers' listeners.
    pub layout: Layout,
    /// How long the dialing peer waits for a direct connection.
    pub timeout: Duration,
    /// How punchport's initiator punches.
    pub initiator_role: InitiatorRole,
    /// More flags for both peers.
    pub peer_args: Vec<String>,
    /// The punch range, if not the lab's.
    pub range: Option<PortRange>,
    /// The port of the ordinary listener in [`Layout::With443`].
    pub ordinary_port: u16,
}

impl Trial {
    /// A trial with a 30 s timeout and the default initiator role.
    pub fn new(kind: TransportKind, layout: Layout) -> Self {
        Self {
            kind,
            layout,
            timeout: Duration::from_secs(30),
            initiator_role: InitiatorRole::default(),
            peer_args: Vec::new(),
            range: None,
            ordinary_port: 443,
        }
    }

    /// punchport in the seed layout (443 plus the punch range).
    pub fn port_aware() -> Self {
        Self::new(TransportKind::PortAware, Layout::With443)
    }

    /// Sets the dialing peer's timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how punchport's initiator punches.
    pub fn initiator_role(mut self, role: InitiatorRole) -> Self {
        self.initiator_role = role;
        self
    }

    /// Sets the punch range for this trial (the lab's otherwise). Stock
    /// libp2p-quic picks the socket of a dial by hashing the remote address,
    /// so a fixed lab gives it the same luck in every trial; moving the punch
    /// port from trial to trial gives it the varied addresses of real
    /// networks.
    pub fn punch_range(mut self, range: PortRange) -> Self {
        self.range = Some(range);
        self
    }

    /// Moves the ordinary listener of [`Layout::With443`] off 443. Like
    /// [`Trial::punch_range`], this varies the remote addresses stock
    /// libp2p-quic hashes: when a peer's relay connection leaves from the
    /// ordinary listener, its candidate carries this port.
    pub fn ordinary_port(mut self, port: u16) -> Self {
        self.ordinary_port = port;
        self
    }

    /// Adds flags for both peers.
    pub fn peer_args(mut self, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.peer_args.extend(args.into_iter().map(Into::into));
        self
    }
}
