//! The relay's `relay load` log line: what it holds and refused.
//!
//! The relay (`src/relay/load.rs`) logs
//! `relay load reservations=.. circuits=.. ...` at most once a second when
//! the figures change; [`RelayLoad::last_in`] reads the last one from its
//! stderr.

use serde::{Deserialize, Serialize};

/// The figures of one `relay load` line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayLoad {
    /// Peers holding a reservation.
    pub reservations: u64,
    /// Circuits open.
    pub circuits: u64,
    /// The most reservations held at once.
    pub peak_reservations: u64,
    /// The most circuits open at once.
    pub peak_circuits: u64,
    /// Reservations accepted (new and renewed).
    pub reservations_accepted: u64,
    /// Reservations refused.
    pub reservations_denied: u64,
    /// Circuits accepted.
    pub circuits_accepted: u64,
    /// Circuits refused with `RESOURCE_LIMIT_EXCEEDED`.
    pub circuits_denied_limit: u64,
    /// Circuits refused because the destination held no reservation.
    pub circuits_denied_no_reservation: u64,
    /// Circuits refused for other reasons.
    pub circuits_denied_other: u64,
    /// Older reserving connections the relay closed (restarted peers).
    pub stale_closed: u64,
}

impl RelayLoad {
    /// The figures of a `relay load` line; `None` for any other line.
    pub fn parse(line: &str) -> Option<Self> {
        let (_, pairs) = line.split_once("relay load ")?;
        let mut load = Self::default();
        for pair in pairs.split_whitespace() {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let Ok(n) = value.parse::<u64>() else {
                continue;
            };
            let field = match key {
                "reservations" => &mut load.reservations,
                "circuits" => &mut load.circuits,
                "peak_reservations" => &mut load.peak_reservations,
                "peak_circuits" => &mut load.peak_circuits,
                "reservations_accepted" => &mut load.reservations_accepted,
                "reservations_denied" => &mut load.reservations_denied,
                "circuits_accepted" => &mut load.circuits_accepted,
                "circuits_denied_limit" => &mut load.circuits_denied_limit,
                "circuits_denied_no_reservation" => &mut load.circuits_denied_no_reservation,
                "circuits_denied_other" => &mut load.circuits_denied_other,
                "stale_closed" => &mut load.stale_closed,
                _ => continue,
            };
            *field = n;
        }
        Some(load)
    }

    /// The last `relay load` line in a relay's stderr.
    pub fn last_in(stderr: &str) -> Option<Self> {
        stderr.lines().rev().find_map(Self::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as the relay node logs them: `relay load ` and then
    /// `punchport::relay::Load`'s text, whose keys and their order
    /// `the_load_line_is_key_value_pairs` in `src/relay/load.rs` pins. The
    /// last line gives every field a value of its own.
    #[test]
    fn reads_the_relays_line() {
        let stderr = "2026-12-02T00:00:00Z  INFO punchport_node::relay: relay load reservations=1 circuits=0 peak_reservations=1 peak_circuits=0 reservations_accepted=1 reservations_denied=0 circuits_accepted=0 circuits_denied_limit=0 circuits_denied_no_reservation=0 circuits_denied_other=0 stale_closed=0\n\
            2026-12-02T00:00:01Z  INFO punchport_node::relay: relay event=Foo\n\
            2026-12-02T00:00:02Z  INFO punchport_node::relay: relay load reservations=1 circuits=2 peak_reservations=3 peak_circuits=4 reservations_accepted=5 reservations_denied=6 circuits_accepted=7 circuits_denied_limit=8 circuits_denied_no_reservation=9 circuits_denied_other=10 stale_closed=11\n";
        let load = RelayLoad::last_in(stderr).unwrap();
        assert_eq!(
            load,
            RelayLoad {
                reservations: 1,
                circuits: 2,
                peak_reservations: 3,
                peak_circuits: 4,
                reservations_accepted: 5,
                reservations_denied: 6,
                circuits_accepted: 7,
                circuits_denied_limit: 8,
                circuits_denied_no_reservation: 9,
                circuits_denied_other: 10,
                stale_closed: 11,
            }
        );
        assert_eq!(RelayLoad::last_in("no such line"), None);
    }
}
