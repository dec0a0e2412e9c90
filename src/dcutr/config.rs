//! Configuration of the candidate filter and the punch-socket moves.

use std::{fmt, str::FromStr};

/// How the [`Behaviour`](crate::dcutr::Behaviour) filters address candidates.
///
/// The punch range is not here: it belongs to the transport, which binds
/// the punch socket, and the behaviour reads it from the
/// [`PunchSockets`](crate::net::PunchSockets) it shares with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) birthday: crate::dcutr::BirthdayConfig,
    pub(crate) translate: bool,
    pub(crate) max_moves: u8,
    pub(crate) candidates: CandidateMode,
    pub(crate) renew_after_dials: usize,
}

/// Which observed addresses DCUtR may advertise.
///
/// Both modes behave alike behind NATs that keep ports. Behind a NAT that
/// maps endpoint-independently but picks its own ports, only socket-aware
/// candidates punch (30 of 30 trials in the lab, against 0 of 30 for the
/// range; `docs/benchmarks.md`), so it is the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CandidateMode {
    /// Only addresses whose port is inside the punch range (others are
    /// translated onto the punch port). Right for NATs that keep ports;
    /// strict: never advertises a port outside the range.
    Range,
    /// Also what observers saw on connections from the punch socket,
    /// whatever its port: the NAT's own mapping of the punch socket. Right
    /// for NATs that keep ports and for those that map endpoint-independently
    /// but pick their own ports. Needs
    /// [`Behaviour::on_identify`](crate::dcutr::Behaviour::on_identify); without
    /// it, it is the range mode.
    #[default]
    SocketAware,
}

impl CandidateMode {
    /// `range` or `socket-aware`, as the peer node's `--candidates` flag
    /// takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateMode::Range => "range",
            CandidateMode::SocketAware => "socket-aware",
        }
    }
}

impl fmt::Display for CandidateMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A candidate mode that is neither `range` nor `socket-aware`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is no candidate mode: use `range` or `socket-aware`")]
#[non_exhaustive]
pub struct ParseCandidateModeError(String);

impl FromStr for CandidateMode {
    type Err = ParseCandidateModeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "range" => Ok(CandidateMode::Range),
            "socket-aware" => Ok(CandidateMode::SocketAware),
            other => Err(ParseCandidateModeError(other.chars().take(40).collect())),
        }
    }
}

impl Config {
    /// Translation on, 8 moves, socket-aware candidates.
    pub(crate) fn new() -> Self {
        Self {
            birthday: crate::dcutr::BirthdayConfig::new(),
            translate: true,
            max_moves: 8,
            candidates: CandidateMode::default(),
            renew_after_dials: crate::dcutr::renewal::DEFAULT_BOUND,
        }
    }

    /// Whether an observation outside the range is offered to DCUtR as
    /// `observed IP + punch port` (on by default).
    ///
    /// That candidate is right behind NATs that keep the source port (plain
    /// Linux SNAT and masquerade, most home routers) and wrong behind NATs
    /// that rewrite it. Switched off, such observations are dropped, except
    /// that DCUtR is never left with no candidate at all.
    pub(crate) fn with_translation(mut self, translate: bool) -> Self {
        self.translate = translate;
        self
    }

    /// How often the punch socket may move to another port of the range
    /// when an observation shows that the NAT rewrote the punch port (8 by
    /// default; 0 never moves). See
    /// [`Behaviour::observed_address`](crate::dcutr::Behaviour::observed_address).
    pub(crate) fn with_port_moves(mut self, max: u8) -> Self {
        self.max_moves = max;
        self
    }

    /// Sets how the behaviour punches when one side's NAT maps
    /// endpoint-dependently ([`BirthdayConfig`](crate::dcutr::BirthdayConfig)).
    pub(crate) fn with_birthday(mut self, birthday: crate::dcutr::BirthdayConfig) -> Self {
        self.birthday = birthday;
        self
    }

    /// Sets which observed addresses DCUtR may advertise.
    pub(crate) fn with_candidates(mut self, mode: CandidateMode) -> Self {
        self.candidates = mode;
        self
    }

    /// After how many of DCUtR's dials the wrapped DCUtR behaviour is
    /// replaced by a new one (256 by default; at least 1). libp2p-dcutr
    /// 0.15's code keeps an entry per dial and never removes it; the replacement,
    /// made only while none of its dials is under way, bounds that
    /// (`src/dcutr/renewal.rs`,
    /// `punches_go_on_across_renewals_and_dcutrs_maps_stay_bounded`).
    pub(crate) fn with_dcutr_renewal(mut self, dials: usize) -> Self {
        self.renew_after_dials = dials.max(1);
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_translation_8_moves_and_socket_aware_candidates() {
        let config = Config::new();
        assert!(config.translate);
        assert_eq!(config.max_moves, 8);
        assert_eq!(config.candidates, CandidateMode::SocketAware);
        assert!(config.birthday.enabled());
        for mode in [CandidateMode::Range, CandidateMode::SocketAware] {
            assert_eq!(mode.to_string().parse::<CandidateMode>(), Ok(mode));
        }
        let error = "both".parse::<CandidateMode>().unwrap_err();
        assert!(error.to_string().contains("`both`"), "{error}");
    }
}
