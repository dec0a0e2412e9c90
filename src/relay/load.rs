//! What the relay holds now and has held at most, and what it refused.

use std::{collections::HashMap, fmt};

use libp2p_identity::PeerId;
use libp2p_relay as relay;

use super::behaviour::Source;

/// What the relay holds now and has held at most, and what it refused
/// ([`Behaviour::load`](super::Behaviour::load)).
///
/// Displays as `key=value` pairs one space apart, the keys named as the
/// accessors, in their order (`the_load_line_is_key_value_pairs`); keys may
/// be added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Load {
    pub(crate) reservations: usize,
    pub(crate) circuits: usize,
    pub(crate) peak_reservations: usize,
    pub(crate) peak_circuits: usize,
    pub(crate) reservations_accepted: u64,
    pub(crate) reservations_denied: u64,
    pub(crate) circuits_accepted: u64,
    pub(crate) circuits_denied_limit: u64,
    pub(crate) circuits_denied_no_reservation: u64,
    pub(crate) circuits_denied_other: u64,
    pub(crate) stale_closed: u64,
}

impl Load {
    /// Peers holding a reservation.
    pub fn reservations(&self) -> usize {
        self.reservations
    }

    /// Circuits open (accepted and not yet closed).
    pub fn circuits(&self) -> usize {
        self.circuits
    }

    /// The most reservations held at once.
    pub fn peak_reservations(&self) -> usize {
        self.peak_reservations
    }

    /// The most circuits open at once.
    pub fn peak_circuits(&self) -> usize {
        self.peak_circuits
    }

    /// Reservations accepted (new and renewed).
    pub fn reservations_accepted(&self) -> u64 {
        self.reservations_accepted
    }

    /// Reservations refused, whatever the status the relay answered with.
    pub fn reservations_denied(&self) -> u64 {
        self.reservations_denied
    }

    /// Circuits accepted.
    pub fn circuits_accepted(&self) -> u64 {
        self.circuits_accepted
    }

    /// Circuits refused with `RESOURCE_LIMIT_EXCEEDED`.
    pub fn circuits_denied_limit(&self) -> u64 {
        self.circuits_denied_limit
    }

    /// Circuits refused because the destination holds no reservation.
    pub fn circuits_denied_no_reservation(&self) -> u64 {
        self.circuits_denied_no_reservation
    }

    /// Circuits refused for another reason (e.g. the destination did not
    /// answer).
    pub fn circuits_denied_other(&self) -> u64 {
        self.circuits_denied_other
    }

    /// Older reserving connections closed because their peer reserved on a
    /// new one.
    pub fn stale_closed(&self) -> u64 {
        self.stale_closed
    }
}

impl fmt::Display for Load {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "reservations={} circuits={} peak_reservations={} peak_circuits={} reservations_accepted={} reservations_denied={} circuits_accepted={} circuits_denied_limit={} circuits_denied_no_reservation={} circuits_denied_other={} stale_closed={}",
            self.reservations,
            self.circuits,
            self.peak_reservations,
            self.peak_circuits,
            self.reservations_accepted,
            self.reservations_denied,
            self.circuits_accepted,
            self.circuits_denied_limit,
            self.circuits_denied_no_reservation,
            self.circuits_denied_other,
            self.stale_closed,
        )
    }
}

/// Counts the inner behaviour's events into a [`Load`].
#[derive(Debug, Default)]
pub(crate) struct Tally {
    load: Load,
    /// Open circuits per (source, destination) peer.
    circuits: HashMap<(PeerId, PeerId), usize>,
    /// Circuits already counted closed because their destination's
    /// connection closed; the source's handler reports each once more.
    closed_early: HashMap<(PeerId, PeerId), usize>,
}

impl Tally {
    pub(crate) fn load(&self) -> &Load {
        &self.load
    }

    /// Counts `event`, caused by `source`.
    pub(crate) fn count(&mut self, event: &relay::Event, source: Source) {
        match event {
            relay::Event::ReservationReqAccepted { .. } => self.load.reservations_accepted += 1,
            relay::Event::ReservationReqDenied { .. } => self.load.reservations_denied += 1,
            relay::Event::CircuitReqAccepted {
                src_peer_id,
                dst_peer_id,
            } => {
                self.load.circuits_accepted += 1;
                *self
                    .circuits
                    .entry((*src_peer_id, *dst_peer_id))
                    .or_default() += 1;
            }
            relay::Event::CircuitClosed {
                src_peer_id,
                dst_peer_id,
                ..
            } => self.circuit_closed(*src_peer_id, *dst_peer_id, source),
            relay::Event::CircuitReqDenied { status, .. } => match status {
                relay::StatusCode::ResourceLimitExceeded => self.load.circuits_denied_limit += 1,
                relay::StatusCode::NoReservation => self.load.circuits_denied_no_reservation += 1,
                _ => self.load.circuits_denied_other += 1,
            },
            _ => {}
        }
    }

    /// An older reserving connection was closed.
    pub(crate) fn stale_closed(&mut self) {
        self.load.stale_closed += 1;
    }

    /// `reservations` peers hold a reservation now: updates the figures
    /// held now and the peaks.
    pub(crate) fn update(&mut self, reservations: usize) {
        let load = &mut self.load;
        load.reservations = reservations;
        load.circuits = self.circuits.values().sum();
        load.peak_reservations = load.peak_reservations.max(load.reservations);
        load.peak_circuits = load.peak_circuits.max(load.circuits);
    }

    fn circuit_closed(&mut self, src: PeerId, dst: PeerId, source: Source) {
        let key = (src, dst);
        match source {
            // The source's handler reports a circuit that the destination's
            // closed connection already ended.
            Source::Handler(..) if self.closed_early.get(&key).is_some_and(|n| *n > 0) => {
                decrement(&mut self.closed_early, key);
                return;
            }
            // The destination's connection closed first: libp2p-relay
            // reports the circuit now and again when the source's handler
            // sees its stream end.
            Source::Closed(peer) if peer == dst => {
                *self.closed_early.entry(key).or_default() += 1;
            }
            _ => {}
        }
        decrement(&mut self.circuits, key);
    }
}

fn decrement(map: &mut HashMap<(PeerId, PeerId), usize>, key: (PeerId, PeerId)) {
    if let Some(n) = map.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use libp2p_swarm::ConnectionId;

    use super::*;

    #[test]
    fn a_circuit_the_destination_closed_first_counts_once() {
        let mut tally = Tally::default();
        let (src, dst) = (PeerId::random(), PeerId::random());
        let src_conn = ConnectionId::new_unchecked(1);
        let accepted = relay::Event::CircuitReqAccepted {
            src_peer_id: src,
            dst_peer_id: dst,
        };
        let closed = || relay::Event::CircuitClosed {
            src_peer_id: src,
            dst_peer_id: dst,
            error: None,
        };
        let mut count = |event: &relay::Event, source| {
            tally.count(event, source);
            tally.update(0);
            tally.load().clone()
        };
        count(&accepted, Source::Handler(src, src_conn));
        assert_eq!(count(&accepted, Source::Handler(src, src_conn)).circuits, 2);
        // The destination's connection closes: reported now, and again by
        // the source's handler.
        assert_eq!(count(&closed(), Source::Closed(dst)).circuits, 1);
        assert_eq!(
            count(&closed(), Source::Handler(src, src_conn)).circuits,
            1,
            "the second report of one circuit"
        );
        let load = count(&closed(), Source::Handler(src, src_conn));
        assert_eq!(load.circuits, 0);
        assert_eq!(load.peak_circuits, 2);
        assert_eq!(load.circuits_accepted, 2);
    }

    /// The relay node logs this text as its `relay load` line, which the lab
    /// reads (`punchport_lab::relay_load::RelayLoad::parse`, tested on a
    /// line of the same format with every field its own value).
    #[test]
    fn the_load_line_is_key_value_pairs() {
        let load = Load {
            reservations: 3,
            circuits: 2,
            peak_reservations: 5,
            peak_circuits: 7,
            reservations_accepted: 9,
            reservations_denied: 1,
            circuits_accepted: 11,
            circuits_denied_limit: 4,
            circuits_denied_no_reservation: 2,
            circuits_denied_other: 1,
            stale_closed: 6,
        };
        assert_eq!(
            load.to_string(),
            "reservations=3 circuits=2 peak_reservations=5 peak_circuits=7 reservations_accepted=9 reservations_denied=1 circuits_accepted=11 circuits_denied_limit=4 circuits_denied_no_reservation=2 circuits_denied_other=1 stale_closed=6"
        );
    }
}
