//! What a birthday punch may cost: its budget, its pace and its limits.

use std::time::Duration;

/// The most sockets the endpoint-dependent side opens in one attempt.
pub const MAX_SOCKETS: u16 = 256;
/// The most probes the endpoint-independent side sends in one attempt.
pub const MAX_PROBES: u16 = 1024;
/// How long an attempt waits after its last probe for a handshake to end.
pub const GRACE: Duration = Duration::from_secs(3);

/// How the [`Behaviour`](crate::Behaviour) punches when one side's NAT maps
/// endpoint-dependently and the other's endpoint-independently.
///
/// The endpoint-dependent ("hard") side opens `sockets` sockets, each
/// sending to the other side's punch address, so its NAT makes that many
/// random mappings. The endpoint-independent ("easy") side sends `probes`
/// QUIC handshakes from its punch socket to random ports of the hard side's
/// public IP. With N ≈ 64 500 ports one of them meets a mapping with
/// probability 1 − e^(−sockets·probes/N): 98 % for 256 × 1024.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirthdayConfig {
    pub(crate) enabled: bool,
    pub(crate) sockets: u16,
    pub(crate) probes: u16,
    pub(crate) flows_per_second: u16,
    pub(crate) window: Option<Duration>,
    pub(crate) max_concurrent: usize,
    pub(crate) attempts_per_peer: u8,
    pub(crate) probes_per_ip: u32,
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
    /// A pace of no new flows, or more than 1000 per second.
    #[error(
        "{0} new flows per second is outside 1-1000: NATs handle about one new binding per 20 ms (RFC 5245 B.1), and some rate-limit faster creation"
    )]
    Pace(u16),
}

impl BirthdayConfig {
    /// On, 256 sockets, 1024 probes, 100 new flows per second per side, a
    /// window of as long as the flows take plus 3 s, 2 attempts at once, 3
    /// attempts per peer and 2048 probes per destination IP in any 10
    /// minutes.
    pub fn new() -> Self {
        Self {
            enabled: true,
            sockets: MAX_SOCKETS,
            probes: MAX_PROBES,
            flows_per_second: 100,
            window: None,
            max_concurrent: 2,
            attempts_per_peer: 3,
            probes_per_ip: 2 * u32::from(MAX_PROBES),
            memory: Duration::from_secs(600),
        }
    }

    /// Switches birthday punching on or off. Off, a node still answers the
    /// negotiation (and says it is off), so neither side sprays.
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

    /// Sets how many new flows (sockets, probes) each side opens per second.
    pub fn with_pace(mut self, flows_per_second: u16) -> Result<Self, BudgetError> {
        if !(1..=1000).contains(&flows_per_second) {
            return Err(BudgetError::Pace(flows_per_second));
        }
        self.flows_per_second = flows_per_second;
        Ok(self)
    }

    /// Sets how long an attempt lasts before it gives up (by default as
    /// long as opening the sockets and sending the probes take at the pace,
    /// plus [`GRACE`]).
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = Some(window);
        self
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

    /// New flows per second per side.
    pub fn pace(&self) -> u16 {
        self.flows_per_second
    }

    /// How long an attempt lasts.
    pub fn window(&self) -> Duration {
        self.window.unwrap_or_else(|| {
            self.gap() * (u32::from(self.sockets) + u32::from(self.probes)) + GRACE
        })
    }

    /// The time between two new flows.
    pub(crate) fn gap(&self) -> Duration {
        Duration::from_secs(1) / u32::from(self.flows_per_second.max(1))
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
        assert_eq!(config.gap(), Duration::from_millis(10));
        assert_eq!(config.window(), Duration::from_millis(15_800));
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
        assert_eq!(config.with_budget(16, 64).unwrap().sockets(), 16);
    }
}
