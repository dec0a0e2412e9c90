//! What the behaviour reports.

use crate::dcutr::{
    attempts::{AttemptReport, DirectReport, FailureReport},
    filter::Verdict,
    mapping::Observation,
    nat::NatStatus,
};

/// How many entries the behaviour's own maps hold (libp2p-dcutr's inside it
/// are not counted): they should stay bounded however long a node runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tracked {
    /// Punches followed (one per peer with a relayed connection).
    pub punches: usize,
    /// DCUtR dials under way.
    pub dials: usize,
    /// Connections whose observations are followed.
    pub connections: usize,
    /// Connections whose source socket the transport recorded.
    pub sources: usize,
    /// Birthday winners' sockets open (each closes with its connection).
    pub fresh_sockets: usize,
    /// Birthday attempts under way.
    pub birthday_attempts: usize,
    /// Birthday winners' dials under way.
    pub birthday_dials: usize,
    /// Birthday negotiation streams open.
    pub birthday_peers: usize,
    /// Peers and destination IPs the birthday limits remember.
    pub limited: (usize, usize),
    /// DCUtR dials since the wrapped DCUtR behaviour was made: an
    /// upper bound on the entries of each of its two unpruned maps
    /// ([`Config::with_dcutr_renewal`](crate::Config::with_dcutr_renewal)).
    pub dcutr_entries: usize,
    /// How often the wrapped behaviour was replaced to bound them.
    pub dcutr_renewals: u64,
}

/// What the [`Behaviour`](crate::dcutr::Behaviour) reports: DCUtR's own events, the filter's
/// decisions, and how each punch went.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// DCUtR's own report: a direct connection, or DCUtR gave up.
    Dcutr(crate::DcutrEvent),
    /// The filter decided about an address candidate.
    Candidate(Verdict),
    /// One hole-punch attempt ended on this side: what was advertised and
    /// dialed, and how this side's dial went.
    Attempt(AttemptReport),
    /// A punch succeeded: the first direct connection to the peer since the
    /// relayed one, whichever side's dial made it. Reported on both sides.
    Direct(DirectReport),
    /// A punch failed, on either side: DCUtR gave up or its exchange
    /// failed, the dialing side's dials for every attempt the initiator
    /// makes (3) failed, or the relayed connection closed before a direct
    /// one opened. The relayed connection stays, if it is still open.
    PunchFailed(FailureReport),
    /// An observation told whether the NAT keeps the punch port (see
    /// [`Behaviour::on_identify`](crate::Behaviour::on_identify)). When it does not, the punch socket
    /// may move to another port of the range (`moving_to`).
    Mapping(Observation),
    /// What the observations say about the NAT in front of a punch socket
    /// changed (see [`Behaviour::on_identify`](crate::Behaviour::on_identify)).
    Nat(NatStatus),
}

impl From<crate::DcutrEvent> for Event {
    fn from(event: crate::DcutrEvent) -> Self {
        Event::Dcutr(event)
    }
}
