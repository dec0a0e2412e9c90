//! What a birthday punch may cost: its budget, its pace and its limits.

use std::time::Duration;

use super::limits::{Cost, LimitsConfig};

/// The most sockets the endpoint-dependent side opens in one attempt.
pub const MAX_SOCKETS: u16 = 256;
/// The most probes the endpoint-independent side sends in one attempt.
pub const MAX_PROBES: u16 = 1024;
/// How long the easy side waits after its last probe for a winner.
pub(crate) const GRACE: Duration = Duration::from_secs(1);
/// The most bytes a hard side's datagram carries (random, 16-32).
pub(crate) const MAX_OPENER: usize = 32;
/// The most bytes a probe carries: magic, nonce and up to 12 random bytes.
pub(crate) const MAX_PROBE: usize = 32;

/// How the [`Behaviour`](crate::dcutr::Behaviour) punches when one side's NAT maps
/// endpoint-dependently and the other's endpoint-independently.
///
/// The endpoint-dependent ("hard") side opens `sockets` plain UDP sockets,
/// each sending one short-TTL datagram to the other side's punch address,
/// so its NAT makes that many random mappings. The endpoint-independent
/// ("easy") side sends `probes` small datagrams from its punch socket to
/// ports of the hard side's public IP (the ports Linux favours first). With
/// N ≈ 64 500 ports one of them meets a mapping with probability
/// 1 − e^(−sockets·probes/N): 98 % for 256 × 1024 against a NAT that picks
/// uniformly, 99.97 % against Linux's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirthdayConfig {
    pub(crate) enabled: bool,
    pub(crate) sockets: u16,
    pub(crate) probes: u16,
    pub(crate) pace: u16,
    pub(crate) max_concurrent: usize,
    pub(crate) attempts_per_peer: u8,
    pub(crate) per_peer: Cost,
    pub(crate) per_ip: Cost,
    pub(crate) memory: Duration,
}

/// A birthday budget outside the limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetError {
    /// More sockets than [`MAX_SOCKETS`], or none.
    #[error(
        "{0} sockets per birthday attempt is outside 1-{MAX_SOCKETS}: more mappings strain the NAT (and cloud NAT gateways' per-VM port budgets) without raising the odds much"
    )]
    Sockets(u16),
    /// More probes than [`MAX_PROBES`], or none.
    #[error(
        "{0} probes per birthday attempt is outside 1-{MAX_PROBES}: with 256 sockets, 1024 probes already meet a mapping 98 % of the time"
    )]
    Probes(u16),
    /// A pace of no datagrams, or more than 5000 per second.
    #[error(
        "{0} datagrams per second is outside 1-5000: each one is a new flow in a NAT, and some NATs limit how fast flows are made"
    )]
    Pace(u16),
}

impl BirthdayConfig {
    /// On, 256 sockets, 1024 probes, 1000 datagrams per second per side, 4
    /// attempts at once, 4 attempts per peer, and per peer and per
    /// destination IP 2048 datagrams and 128 KiB in any 10 minutes.
    pub fn new() -> Self {
        let two_attempts = Cost {
            datagrams: 2 * u32::from(MAX_PROBES),
            bytes: 128 * 1024,
        };
        Self {
            enabled: true,
            sockets: MAX_SOCKETS,
            probes: MAX_PROBES,
            pace: 1000,
            max_concurrent: 4,
            attempts_per_peer: 4,
            per_peer: two_attempts,
            per_ip: two_attempts,
            memory: Duration::from_secs(600),
        }
    }

    /// Switches birthday punching on or off. Off, a node still answers the
    /// negotiation (and says it is off), so neither side sends anything.
    pub fn with_enabled(mut self, on: bool) -> Self {
        self.enabled = on;
        self
    }

    /// Sets the sockets the hard side opens and the probes the easy side
    /// sends per attempt.
    pub fn with_budget(mut self, sockets: u16, probes: u16) -> Result<Self, BudgetError> {
        if !(1..=MAX_SOCKETS).contains(&sockets) {
            return Err(BudgetError::Sockets(sockets));
        }
        if !(1..=MAX_PROBES).contains(&probes) {
            return Err(BudgetError::Probes(probes));
        }
        self.sockets = sockets;
        self.probes = probes;
        Ok(self)
    }

    /// Sets how many datagrams (each a new flow in a NAT) each side sends
    /// per second.
    pub fn with_pace(mut self, datagrams_per_second: u16) -> Result<Self, BudgetError> {
        if !(1..=5000).contains(&datagrams_per_second) {
            return Err(BudgetError::Pace(datagrams_per_second));
        }
        self.pace = datagrams_per_second;
        Ok(self)
    }

    /// Whether birthday punching is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Sockets per attempt on the hard side.
    pub fn sockets(&self) -> u16 {
        self.sockets
    }

    /// Probes per attempt on the easy side.
    pub fn probes(&self) -> u16 {
        self.probes
    }

    /// Datagrams per second per side.
    pub fn pace(&self) -> u16 {
        self.pace
    }

    /// How long the easy side probes and then waits: the probes at the
    /// pace, plus a second.
    pub fn window(&self) -> Duration {
        self.gap() * u32::from(self.probes) + GRACE
    }

    /// The time between two datagrams.
    pub(crate) fn gap(&self) -> Duration {
        Duration::from_secs(1) / u32::from(self.pace.max(1))
    }

    pub(crate) fn limits(&self) -> LimitsConfig {
        LimitsConfig {
            max_concurrent: self.max_concurrent,
            attempts_per_peer: self.attempts_per_peer,
            per_peer: self.per_peer,
            per_ip: self.per_ip,
            memory: self.memory,
        }
    }
}

impl Default for BirthdayConfig {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_outside_the_limits_are_refused_with_their_reason() {
        let config = BirthdayConfig::new();
        assert_eq!(config.sockets() * 4, config.probes());
        assert_eq!(config.gap(), Duration::from_millis(1));
        assert_eq!(config.window(), Duration::from_millis(2024));
        for (sockets, probes, error) in [
            (0, 10, BudgetError::Sockets(0)),
            (257, 10, BudgetError::Sockets(257)),
            (10, 0, BudgetError::Probes(0)),
            (10, 1025, BudgetError::Probes(1025)),
        ] {
            let refused = config.clone().with_budget(sockets, probes).unwrap_err();
            let value = match refused {
                BudgetError::Sockets(v) | BudgetError::Probes(v) | BudgetError::Pace(v) => v,
            };
            assert_eq!(refused, error);
            assert!(
                refused.to_string().starts_with(&format!("{value} ")),
                "{refused}"
            );
        }
        assert!(matches!(
            config.clone().with_pace(0),
            Err(BudgetError::Pace(0))
        ));
        assert!(matches!(
            config.clone().with_pace(5001),
            Err(BudgetError::Pace(5001))
        ));
        assert_eq!(config.with_budget(16, 64).unwrap().sockets(), 16);
    }
}
