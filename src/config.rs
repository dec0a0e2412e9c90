//! One configuration for both halves.

use libp2p_identity::{Keypair, PeerId};

use crate::{
    Behaviour, BirthdayConfig, CandidateMode, InitiatorRole, PortRange, Transport, dcutr, quic,
};

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

    /// The punch range.
    pub fn range(&self) -> PortRange {
        self.quic.range
    }

    /// Sets how the DCUtR initiator punches.
    pub fn with_initiator_role(mut self, role: InitiatorRole) -> Self {
        self.quic = self.quic.with_initiator_role(role);
        self
    }

    /// Sets the TTL of the datagrams that must leave this node's NAT but not
    /// reach the other side's (2 by default: a NAT one hop away; see
    /// [`DEFAULT_OPENER_TTL`](crate::DEFAULT_OPENER_TTL)).
    pub fn with_opener_ttl(mut self, ttl: u8) -> Self {
        self.quic = self.quic.with_opener_ttl(ttl);
        self
    }

    /// Sets which observed addresses DCUtR may advertise.
    pub fn with_candidates(mut self, mode: CandidateMode) -> Self {
        self.dcutr = self.dcutr.with_candidates(mode);
        self
    }

    /// Whether observations outside the range become `observed IP + punch
    /// port` (on by default).
    pub fn with_translation(mut self, translate: bool) -> Self {
        self.dcutr = self.dcutr.with_translation(translate);
        self
    }

    /// How the behaviour punches when one side's NAT maps
    /// endpoint-dependently; see [`BirthdayConfig`].
    pub fn with_birthday(mut self, birthday: BirthdayConfig) -> Self {
        self.dcutr = self.dcutr.with_birthday(birthday);
        self
    }

    /// How often the punch socket may move.
    pub fn with_port_moves(mut self, max: u8) -> Self {
        self.dcutr = self.dcutr.with_port_moves(max);
        self
    }

    /// Replaces the wrapped DCUtR behaviour after every `dials` direct dials
    /// (256 by default), so that the entries libp2p-dcutr 0.15's code never
    /// prunes stay bounded on a long-running node.
    pub fn with_dcutr_renewal(mut self, dials: usize) -> Self {
        self.dcutr = self.dcutr.with_dcutr_renewal(dials);
        self
    }

    /// The inner libp2p-quic configuration, to change its timeouts and limits.
    pub fn quic_mut(&mut self) -> &mut libp2p_quic::Config {
        self.quic.quic_mut()
    }
}

/// The port-aware transport and the DCUtR wrapper for `keypair`'s node,
/// sharing one table of punch sockets, with the default [`Config`].
pub fn new(keypair: &Keypair) -> (Transport, Behaviour) {
    with_config(Config::new(keypair))
}

/// [`new`] with `config`.
pub fn with_config(config: Config) -> (Transport, Behaviour) {
    let transport = Transport::new(config.quic);
    let behaviour = Behaviour::with_config(config.peer_id, transport.punch_sockets(), config.dcutr);
    (transport, behaviour)
}
