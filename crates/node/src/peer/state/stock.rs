//! The stock control's own account of its punches. Port-aware peers take
//! theirs from punchport's behaviour (`Event::Direct`, `Event::PunchFailed`);
//! plain DCUtR reports a failure only on the initiating side and does not
//! say which connection ended a punch, so the control keeps this minimum.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use libp2p::PeerId;

#[derive(Debug)]
struct Punch {
    at: Instant,
    dials: u32,
    ended: bool,
}

/// Punches of the stock control, one per relayed connection.
#[derive(Debug, Default)]
pub(super) struct StockPunches {
    punches: HashMap<PeerId, Punch>,
}

impl StockPunches {
    /// A relayed connection to `peer` opened: a punch begins.
    pub(super) fn relayed(&mut self, peer: PeerId, now: Instant) {
        self.punches.insert(
            peer,
            Punch {
                at: now,
                dials: 0,
                ended: false,
            },
        );
    }

    /// The swarm dials `peer`: after the relayed connection, every dial to
    /// it is one of DCUtR's.
    pub(super) fn dialing(&mut self, peer: PeerId) {
        if let Some(punch) = self.punches.get_mut(&peer) {
            punch.dials += 1;
        }
    }

    /// A direct connection to `peer` opened: the time since the relayed one
    /// and the dials so far, if it ends a punch.
    pub(super) fn direct(&mut self, peer: PeerId, now: Instant) -> Option<(Duration, u32)> {
        let punch = self.punches.get_mut(&peer).filter(|p| !p.ended)?;
        punch.ended = true;
        Some((now.saturating_duration_since(punch.at), punch.dials))
    }

    /// DCUtR gave up, or the relayed connection closed: the dials so far,
    /// if that ends a punch.
    pub(super) fn failed(&mut self, peer: PeerId) -> Option<u32> {
        let punch = self.punches.get_mut(&peer).filter(|p| !p.ended)?;
        punch.ended = true;
        Some(punch.dials)
    }

    /// The relayed connection to `peer` closed: the punch is over.
    pub(super) fn relayed_closed(&mut self, peer: PeerId) -> Option<u32> {
        let failed = self.failed(peer);
        self.punches.remove(&peer);
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_punch_ends_once() {
        let (mut punches, peer, t) = (StockPunches::default(), PeerId::random(), Instant::now());
        punches.relayed(peer, t);
        punches.dialing(peer);
        assert_eq!(
            punches.direct(peer, t + Duration::from_millis(5)),
            Some((Duration::from_millis(5), 1))
        );
        assert_eq!(punches.direct(peer, t), None);
        assert_eq!(
            punches.relayed_closed(peer),
            None,
            "direct first: no failure"
        );
        punches.relayed(peer, t);
        assert_eq!(punches.relayed_closed(peer), Some(0));
    }
}
