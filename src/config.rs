//! One configuration for both halves.

use libp2p_identity::{Keypair, PeerId};

use crate::{PortRange, dcutr, quic};

/// The configuration of both halves that [`new`](crate::new) builds: each
/// setting is made once and lands in the one half that owns it.
#[derive(Debug, Clone)]
pub struct Config {
    peer_id: PeerId,
    quic: quic::Config,
    dcutr: dcutr::Config,
}

impl Config {
    /// libp2p-quic's defaults for `keypair`, the range `40000-40050`, the
    /// client initiator role, socket-aware candidates with translation, and
    /// 8 punch-socket moves.
    pub fn new(keypair: &Keypair) -> Self {
        Self {
            peer_id: keypair.public().to_peer_id(),
            quic: quic::Config::new(keypair),
            dcutr: dcutr::Config::new(),
        }
    }

    /// Sets the punch range (the transport binds the punch socket in it; the
    /// behaviour reads it from the transport).
    pub fn with_range(mut self, range: PortRange) -> Self {
        self.quic = self.quic.with_range(range);
        self
    }

    /// Sets how the DCUtR initiator punches.
    pub fn with_initiator_role(mut self, role: quic::InitiatorRole) -> Self {
        self.quic = self.quic.with_initiator_role(role);
        self
    }

    /// Sets the TTL of the datagrams that must leave this node's NAT but not
    /// reach the other side's (2 by default: a NAT one hop away; see
    /// [`quic::Config::with_opener_ttl`]).
    pub fn with_opener_ttl(mut self, ttl: u8) -> Self {
        self.quic = self.quic.with_opener_ttl(ttl);
        self
    }

    /// Sets which observed addresses DCUtR may advertise.
    pub fn with_candidates(mut self, mode: dcutr::CandidateMode) -> Self {
        self.dcutr = self.dcutr.with_candidates(mode);
        self
    }

    /// Whether observations outside the range become `observed IP + punch
    /// port` (on by default); see [`dcutr::Config::with_translation`].
    pub fn with_translation(mut self, translate: bool) -> Self {
        self.dcutr = self.dcutr.with_translation(translate);
        self
    }

    /// How the behaviour punches when one side's NAT maps
    /// endpoint-dependently; see [`dcutr::BirthdayConfig`].
    pub fn with_birthday(mut self, birthday: dcutr::BirthdayConfig) -> Self {
        self.dcutr = self.dcutr.with_birthday(birthday);
        self
    }

    /// How often the punch socket may move; see
    /// [`dcutr::Config::with_port_moves`].
    pub fn with_port_moves(mut self, max: u8) -> Self {
        self.dcutr = self.dcutr.with_port_moves(max);
        self
    }

    /// The inner libp2p-quic configuration, to change its timeouts and limits.
    pub fn quic_mut(&mut self) -> &mut libp2p_quic::Config {
        self.quic.quic_mut()
    }

    /// The transport's half.
    pub fn transport(&self) -> &quic::Config {
        &self.quic
    }

    /// The behaviour's half.
    pub fn behaviour(&self) -> &dcutr::Config {
        &self.dcutr
    }
}

/// The port-aware transport and the DCUtR wrapper for `keypair`'s node,
/// sharing one table of punch sockets, with the default [`Config`].
pub fn new(keypair: &Keypair) -> (quic::Transport, dcutr::Behaviour) {
    with_config(Config::new(keypair))
}

/// [`new`] with `config`.
pub fn with_config(config: Config) -> (quic::Transport, dcutr::Behaviour) {
    let transport = quic::Transport::new(config.quic);
    let behaviour =
        dcutr::Behaviour::with_config(config.peer_id, transport.punch_sockets(), config.dcutr);
    (transport, behaviour)
}
