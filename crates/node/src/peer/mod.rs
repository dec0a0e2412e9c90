//! The peer node: reaches a relay, then either holds a reservation and waits
//! to be punched to, or dials a peer through the relay and punches.

mod behaviour;
mod run;
mod state;
mod swarm;

use std::{fmt, net::IpAddr, str::FromStr, time::Duration};

use libp2p::{Multiaddr, PeerId, identity::Keypair, multiaddr::Protocol};
use punchport::QuicAddr;
use tokio::sync::mpsc;

use crate::{ConfigError, Node, NodeEvent};

/// Which transport and DCUtR a peer runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// punchport's transport and filtered DCUtR.
    #[default]
    PortAware,
    /// `with_quic()` and plain DCUtR, listening on the listen addresses plus
    /// the first free port of the range: the control.
    Stock,
}

impl FromStr for TransportKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "port-aware" => Ok(TransportKind::PortAware),
            "stock" => Ok(TransportKind::Stock),
            other => Err(format!(
                "unknown transport `{other}`: use `port-aware` (punchport) or `stock` (plain with_quic(), the control)"
            )),
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::PortAware => "port-aware",
            TransportKind::Stock => "stock",
        })
    }
}

/// Configuration of a peer node.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    pub(crate) keypair: Keypair,
    pub(crate) relay: Multiaddr,
    pub(crate) relay_peer: PeerId,
    pub(crate) listen: Vec<Multiaddr>,
    /// punchport's settings, the one source of them (port-aware only).
    pub(crate) punchport: punchport::Config,
    pub(crate) punch_ip: IpAddr,
    pub(crate) announce_ip: Option<IpAddr>,
    pub(crate) transport: TransportKind,
    pub(crate) dial: Option<PeerId>,
    pub(crate) retry_interval: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) metrics_address: Option<std::net::SocketAddr>,
    pub(crate) persist: bool,
    pub(crate) maps_interval: Option<Duration>,
}

impl PeerConfig {
    /// A port-aware peer with a new identity that uses the relay at `relay`
    /// (a QUIC address ending in `/p2p/<relay peer id>`), with the punch
    /// socket on `0.0.0.0` and the default range `40000-40050`.
    pub fn new(relay: Multiaddr) -> Result<Self, ConfigError> {
        Self::with_keypair(relay, Keypair::generate_ed25519())
    }

    /// [`new`](Self::new) with the identity `keypair`.
    pub fn with_keypair(relay: Multiaddr, keypair: Keypair) -> Result<Self, ConfigError> {
        let Some(Protocol::P2p(relay_peer)) = relay.iter().last() else {
            return Err(ConfigError::RelayWithoutPeerId(relay));
        };
        QuicAddr::parse(&relay)?;
        Ok(Self {
            punchport: punchport::Config::new(&keypair),
            keypair,
            relay,
            relay_peer,
            listen: Vec::new(),
            punch_ip: IpAddr::from([0, 0, 0, 0]),
            announce_ip: None,
            transport: TransportKind::default(),
            dial: None,
            retry_interval: Duration::from_secs(1),
            ping_interval: Duration::from_secs(15),
            metrics_address: None,
            persist: false,
            maps_interval: None,
        })
    }

    /// Adds ordinary listen addresses, such as `/ip4/0.0.0.0/udp/443/quic-v1`.
    pub fn listen(
        mut self,
        addrs: impl IntoIterator<Item = Multiaddr>,
    ) -> Result<Self, ConfigError> {
        for addr in addrs {
            QuicAddr::parse(&addr).map_err(ConfigError::ListenAddr)?;
            self.listen.push(addr);
        }
        Ok(self)
    }

    /// Changes punchport's settings: its range, initiator role, candidate
    /// mode, translation, birthday punching, opener TTL and moves
    /// ([`punchport::Config`]; the stock transport has none of them but
    /// the range its punch listener binds in).
    pub fn punchport(
        mut self,
        settings: impl FnOnce(punchport::Config) -> punchport::Config,
    ) -> Self {
        self.punchport = settings(self.punchport);
        self
    }

    /// Sets the IP the punch socket binds to (`0.0.0.0` by default).
    pub fn punch_ip(mut self, ip: IpAddr) -> Self {
        self.punch_ip = ip;
        self
    }

    /// Announces `ip` with the punch port as an address candidate.
    pub fn announce_ip(mut self, ip: IpAddr) -> Self {
        self.announce_ip = Some(ip);
        self
    }

    /// Chooses punchport or the stock control.
    pub fn transport(mut self, kind: TransportKind) -> Self {
        self.transport = kind;
        self
    }

    /// Sets how often every connection is pinged (15 s by default); each
    /// answer is reported as [`NodeEvent::Ping`].
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// Serves Prometheus metrics at `http://<addr>/metrics` (off by default).
    pub fn metrics_address(mut self, addr: std::net::SocketAddr) -> Self {
        self.metrics_address = Some(addr);
        self
    }

    /// With [`dial`](Self::dial): keep a direct connection to the peer. When
    /// a punch fails (after a backoff of 2 s, doubling up to 30 s) or the
    /// direct connection is lost, close the relayed connection and dial
    /// through the relay again, so that DCUtR punches anew.
    pub fn persist(mut self, persist: bool) -> Self {
        self.persist = persist;
        self
    }

    /// Reports the sizes of punchport's own maps ([`NodeEvent::Maps`]) every
    /// `interval` (port-aware only; off by default).
    pub fn maps_interval(mut self, interval: Duration) -> Self {
        self.maps_interval = Some(interval);
        self
    }

    /// Dials `peer` through the relay once ready, instead of reserving.
    pub fn dial(mut self, peer: PeerId) -> Self {
        self.dial = Some(peer);
        self
    }

    /// This peer's id.
    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }

    /// Starts the peer as a tokio task.
    pub fn spawn(self) -> Result<Node, ConfigError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let peer_id = self.peer_id();
        let swarm = swarm::build(&self)?;
        let task = tokio::spawn(async move {
            if let Err(error) = run::run(swarm, self, tx).await {
                tracing::error!(%error, "peer stopped");
            }
        });
        Ok(Node::new(peer_id, rx, task))
    }

    /// Runs the peer, reporting to `events`, until it fails.
    pub async fn run(self, events: mpsc::UnboundedSender<NodeEvent>) -> Result<(), ConfigError> {
        let swarm = swarm::build(&self)?;
        run::run(swarm, self, events).await
    }
}
