//! What a trial runs: which transport, which listeners, how long to wait.

use std::{net::SocketAddr, time::Duration};

use punchport::{CandidateMode, InitiatorRole, PortRange};
use punchport_node::{
    TransportKind,
    cli::{PeerArgs, PunchArgs},
};

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
    /// The ordinary listen addresses of this layout, with the ordinary
    /// listener on `ordinary_port` (443 in the seed layout).
    pub(crate) fn listen(self, ordinary_port: u16) -> Vec<libp2p::Multiaddr> {
        match self {
            Layout::PunchOnly => Vec::new(),
            Layout::With443 => vec![
                punchport::QuicAddr {
                    socket: ([0, 0, 0, 0], ordinary_port).into(),
                    peer_id: None,
                }
                .to_multiaddr(),
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

/// Which program runs a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Implementation {
    /// Our `peer` binary, with this transport.
    Rust(TransportKind),
    /// The go-libp2p interop node (`tests/interop/go`, see [`crate::go`]).
    Go,
}

impl Implementation {
    /// A short name for tables: `port-aware`, `stock` or `go`.
    pub fn name(self) -> String {
        match self {
            Implementation::Rust(kind) => kind.to_string(),
            Implementation::Go => "go".to_owned(),
        }
    }
}

/// Which program runs the relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RelayImpl {
    /// Our `relay` binary.
    #[default]
    Rust,
    /// The go-libp2p interop node in relay mode.
    Go,
}

impl RelayImpl {
    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            RelayImpl::Rust => "rust relay",
            RelayImpl::Go => "go relay",
        }
    }
}

/// One of a trial's two peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// The peer on `a0` that holds the reservation (DCUtR's initiator).
    Reserving,
    /// The peer on `b0` that dials it through the relay.
    Dialing,
}

/// What runs as one peer of a trial, and with which listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerSetup {
    /// The program.
    pub implementation: Implementation,
    /// Its listeners.
    pub layout: Layout,
}

/// One punch attempt between the peers behind routers `a` and `b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trial {
    /// The reserving peer (on `a0`).
    pub reserving: PeerSetup,
    /// The dialing peer (on `b0`).
    pub dialing: PeerSetup,
    /// The relay.
    pub relay: RelayImpl,
    /// How long the dialing peer waits for a direct connection.
    pub timeout: Duration,
    /// punchport's settings, as the peer's command line carries them (the
    /// punch range among them is the trial's [`Trial::punch_range`] or the
    /// lab's).
    pub punch: PunchArgs,
    /// With `--dial`: keep a direct connection (`--persist`).
    pub persist: bool,
    /// Seconds between pings, if not the node's default.
    pub ping_interval_secs: Option<u64>,
    /// Where the peers serve their metrics (inside their own namespaces).
    pub metrics_address: Option<SocketAddr>,
    /// The identity seed, for a peer that restarts with the same identity.
    pub secret_key_seed: Option<u8>,
    /// The punch range, if not the lab's.
    pub range: Option<PortRange>,
    /// The port of the ordinary listener in [`Layout::With443`].
    pub ordinary_port: u16,
    /// Whether the relay listens on one address only (peers cannot then
    /// classify their NAT, only see whether it kept their port).
    pub relay_on_one_address: bool,
    /// The IP family whose flows the outcome reads from the routers
    /// (`None`: IPv4 where the host has it).
    pub family: Option<punchport::Family>,
}

impl Trial {
    /// A trial of two Rust peers with transport `kind` and listeners
    /// `layout` through our relay, with a 30 s timeout and the default
    /// initiator role.
    pub fn new(kind: TransportKind, layout: Layout) -> Self {
        let peer = PeerSetup {
            implementation: Implementation::Rust(kind),
            layout,
        };
        Self {
            reserving: peer,
            dialing: peer,
            relay: RelayImpl::Rust,
            timeout: Duration::from_secs(30),
            punch: PunchArgs::default(),
            persist: false,
            ping_interval_secs: None,
            metrics_address: None,
            secret_key_seed: None,
            range: None,
            ordinary_port: 443,
            relay_on_one_address: false,
            family: None,
        }
    }

    /// Reads the routers' flows of `family` (in a dual-stack lab).
    pub fn inspect(mut self, family: punchport::Family) -> Self {
        self.family = Some(family);
        self
    }

    /// The relay listens on one address only.
    pub fn relay_on_one_address(mut self) -> Self {
        self.relay_on_one_address = true;
        self
    }

    /// punchport in the seed layout (443 plus the punch range).
    pub fn port_aware() -> Self {
        Self::new(TransportKind::PortAware, Layout::With443)
    }

    /// Runs the reserving peer with `implementation` and `layout`.
    pub fn reserving(mut self, implementation: Implementation, layout: Layout) -> Self {
        self.reserving = PeerSetup {
            implementation,
            layout,
        };
        self
    }

    /// Runs the dialing peer with `implementation` and `layout`.
    pub fn dialing(mut self, implementation: Implementation, layout: Layout) -> Self {
        self.dialing = PeerSetup {
            implementation,
            layout,
        };
        self
    }

    /// Runs the relay with `relay`.
    pub fn relay(mut self, relay: RelayImpl) -> Self {
        self.relay = relay;
        self
    }

    /// The setup of the peer in `role`.
    pub fn peer(&self, role: PeerRole) -> PeerSetup {
        match role {
            PeerRole::Reserving => self.reserving,
            PeerRole::Dialing => self.dialing,
        }
    }

    /// Whether any node of the trial is the go-libp2p node.
    pub fn uses_go(&self) -> bool {
        self.relay == RelayImpl::Go
            || self.reserving.implementation == Implementation::Go
            || self.dialing.implementation == Implementation::Go
    }

    /// Sets the dialing peer's timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets punchport's settings.
    pub fn punch(mut self, punch: PunchArgs) -> Self {
        self.punch = punch;
        self
    }

    /// Sets how punchport's initiator punches.
    pub fn initiator_role(mut self, role: InitiatorRole) -> Self {
        self.punch.initiator_role = role;
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

    /// Sets which observed addresses punchport's DCUtR may advertise.
    pub fn candidates(mut self, mode: CandidateMode) -> Self {
        self.punch.candidates = mode;
        self
    }

    /// Keeps the dialing peer running and punching (`--persist`).
    pub fn persist(mut self) -> Self {
        self.persist = true;
        self
    }

    /// Sets the seconds between pings.
    pub fn ping_interval_secs(mut self, secs: u64) -> Self {
        self.ping_interval_secs = Some(secs);
        self
    }

    /// Serves the peers' metrics at `addr` (inside their namespaces).
    pub fn metrics_address(mut self, addr: SocketAddr) -> Self {
        self.metrics_address = Some(addr);
        self
    }

    /// Switches birthday punching on or off for punchport's peers.
    pub fn birthday(mut self, on: bool) -> Self {
        self.punch = self.punch.with_birthday(on);
        self
    }

    /// Derives the peers' identity from `seed`.
    pub fn secret_key_seed(mut self, seed: u8) -> Self {
        self.secret_key_seed = Some(seed);
        self
    }

    /// The flags of the peer in `role` that uses `relay`, with the lab's
    /// punch range `range` unless the trial sets its own. The go node takes
    /// the same flags (and ignores the Rust-only ones).
    pub fn peer_args(
        &self,
        role: PeerRole,
        relay: &libp2p::Multiaddr,
        range: PortRange,
    ) -> PeerArgs {
        let setup = self.peer(role);
        let mut args = PeerArgs::new(relay);
        args.listen = setup.layout.listen(self.ordinary_port);
        args.punch = PunchArgs {
            punch_range: self.range.unwrap_or(range),
            ..self.punch.clone()
        };
        if let Implementation::Rust(kind) = setup.implementation {
            args.transport = kind;
        }
        args.persist = self.persist;
        args.metrics_address = self.metrics_address;
        args.secret_key_seed = self.secret_key_seed;
        if let Some(secs) = self.ping_interval_secs {
            args.ping_interval_secs = secs;
        }
        args.timeout_secs = self.timeout.as_secs().max(1);
        args
    }
}
