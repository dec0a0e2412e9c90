//! The candidate filter: which of our observed addresses DCUtR may advertise.
//!
//! Pure logic without I/O: it is fed observations, reads the punch sockets
//! from the transport's table, and answers with a [`Verdict`] for each
//! candidate.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    net::IpAddr,
};

use crate::net::{Family, PunchSockets, QuicAddr, is_routable};
use libp2p_core::{Multiaddr, multiaddr::Protocol};

use crate::dcutr::{
    config::{CandidateMode, Config},
    mapping::Observation,
};

/// How many recent candidates are kept to be decided again when the punch
/// socket appears or moves (DCUtR itself keeps 20).
const RECENT: usize = 20;

/// Where a candidate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// Reported by the swarm as `NewExternalAddrCandidate` (usually identify).
    Observed,
    /// Added by the application with
    /// [`Behaviour::add_announced_address`](crate::dcutr::Behaviour::add_announced_address).
    Announced,
    /// What an observer saw on a connection from the punch socket, handed
    /// over by [`Behaviour::on_identify`](crate::dcutr::Behaviour::on_identify) in
    /// socket-aware mode.
    PunchSocket,
}

/// What the filter did with one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Its port is inside the range: handed to DCUtR unchanged.
    Kept,
    /// Its port is outside the range: DCUtR got `observed IP + punch port` instead.
    Translated(Multiaddr),
    /// Its port is outside the range and translation is off (or the punch
    /// socket is of another IP family), but DCUtR had no candidate at all:
    /// handed over unchanged rather than leaving DCUtR with nothing.
    Fallback,
    /// Not a QUIC address: the range says nothing about it, handed over unchanged.
    Bypassed,
    /// Socket-aware mode: an observer saw the punch socket at this address,
    /// handed over whatever its port.
    OnPunchSocket,
    /// Not handed to DCUtR.
    Dropped(DropReason),
}

/// Why a candidate was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The port is outside the range and translation is off.
    OutsideRange,
    /// The port is outside the range and no punch socket of its family is
    /// bound yet to translate it to; it is decided again once one is.
    NoPunchSocket,
    /// A relayed (`/p2p-circuit`) address, which DCUtR ignores anyway.
    Relayed,
    /// An unspecified, multicast or broadcast IP that nobody can dial.
    Unroutable,
    /// An observer saw that the NAT rewrote the punch port; addresses of
    /// that IP with the punch port (or translated onto it) are not ours.
    PortRewritten,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropReason::OutsideRange => "port outside the punch range",
            DropReason::NoPunchSocket => "port outside the punch range and no punch socket bound",
            DropReason::Relayed => "relayed address",
            DropReason::Unroutable => "unroutable IP",
            DropReason::PortRewritten => "the NAT rewrites the punch port",
        })
    }
}

/// A decision about one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verdict {
    /// Where the candidate came from.
    pub source: Source,
    /// The candidate as observed or announced.
    pub addr: Multiaddr,
    /// What was done with it.
    pub decision: Decision,
}

impl Verdict {
    /// The address handed to DCUtR, if any.
    pub fn candidate(&self) -> Option<&Multiaddr> {
        match &self.decision {
            Decision::Kept | Decision::Fallback | Decision::Bypassed | Decision::OnPunchSocket => {
                Some(&self.addr)
            }
            Decision::Translated(to) => Some(to),
            Decision::Dropped(_) => None,
        }
    }
}

/// Counts of the filter's decisions. A candidate is decided again (and
/// counted again) when the punch socket appears or moves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Candidates decided.
    pub seen: u64,
    /// Handed to DCUtR unchanged, their port being inside the range.
    pub kept: u64,
    /// Handed to DCUtR as `observed IP + punch port`.
    pub translated: u64,
    /// Handed to DCUtR unchanged so that it is not left with nothing.
    pub fallback: u64,
    /// Not QUIC, handed to DCUtR unchanged.
    pub bypassed: u64,
    /// Observed on the punch socket, handed over whatever its port
    /// (socket-aware mode).
    pub on_punch_socket: u64,
    /// Not handed to DCUtR.
    pub dropped: u64,
}

impl Stats {
    fn count(&mut self, decision: &Decision) {
        self.seen += 1;
        match decision {
            Decision::Kept => self.kept += 1,
            Decision::Translated(_) => self.translated += 1,
            Decision::Fallback => self.fallback += 1,
            Decision::Bypassed => self.bypassed += 1,
            Decision::OnPunchSocket => self.on_punch_socket += 1,
            Decision::Dropped(_) => self.dropped += 1,
        }
    }
}

/// The filter's state: the recent candidates, and the punch ports it last
/// decided them with.
#[derive(Debug)]
pub(crate) struct Filter {
    config: Config,
    /// The transport's punch sockets.
    sockets: PunchSockets,
    /// Recent candidates, to decide again when the punch port changes.
    recent: VecDeque<(Source, Multiaddr)>,
    /// The punch port of each family when candidates were last decided.
    decided_with: HashMap<Family, Option<u16>>,
    /// The last punch port of each family, to tell a move.
    last_port: HashMap<Family, u16>,
    /// Whether DCUtR has been handed any candidate.
    offered_any: bool,
    /// The public IP at which an observer saw the punch port rewritten, and
    /// that punch port.
    rewritten: Option<(IpAddr, u16)>,
    stats: Stats,
}

impl Filter {
    pub(crate) fn new(config: Config, sockets: PunchSockets) -> Self {
        Self {
            config,
            sockets,
            recent: VecDeque::new(),
            decided_with: HashMap::new(),
            last_port: HashMap::new(),
            offered_any: false,
            rewritten: None,
            stats: Stats::default(),
        }
    }

    #[cfg(any(test, fuzzing))]
    pub(crate) fn stats(&self) -> Stats {
        self.stats
    }

    /// The port of the punch socket of `family`, if one is bound.
    pub(crate) fn punch_port(&self, family: Family) -> Option<u16> {
        self.sockets.port(family)
    }

    /// What an observation of the punch socket at `observed` means for the
    /// candidates; the one place of the withholding rule. While the socket
    /// is about to change, and always in socket-aware mode, a rewritten
    /// punch port at the observer's view of our IP is not ours: candidates
    /// with it are withheld. In socket-aware mode a settled observation is a
    /// candidate itself.
    pub(crate) fn observation(
        &mut self,
        observation: &Observation,
        observed: &Multiaddr,
    ) -> Option<Verdict> {
        let socket_aware = self.config.candidates == CandidateMode::SocketAware;
        match observation {
            Observation::Unrelated => return None,
            Observation::Preserved { .. } => self.port_kept(),
            Observation::Rewritten { local, .. } => {
                match QuicAddr::parse(observed).map(|q| q.socket.ip()) {
                    Ok(ip) if observation.unsettled() || socket_aware => {
                        self.port_rewritten(ip, *local)
                    }
                    _ => self.port_kept(),
                }
            }
        }
        (socket_aware && !observation.unsettled()).then(|| self.on_punch_socket(observed.clone()))
    }

    /// Socket-aware mode: an observer saw the punch socket at `addr`.
    fn on_punch_socket(&mut self, addr: Multiaddr) -> Verdict {
        let decision = match QuicAddr::parse(&addr) {
            Ok(quic) if is_routable(quic.socket.ip()) => Decision::OnPunchSocket,
            Ok(_) => Decision::Dropped(DropReason::Unroutable),
            Err(_) => Decision::Bypassed,
        };
        self.stats.count(&decision);
        if decision == Decision::OnPunchSocket {
            self.offered_any = true;
        }
        Verdict {
            source: Source::PunchSocket,
            addr,
            decision,
        }
    }

    /// An observer at `ip` saw punch port `port` rewritten: until the punch
    /// socket moves or the port is seen kept, candidates of that IP with the
    /// punch port are not ours.
    fn port_rewritten(&mut self, ip: IpAddr, port: u16) {
        self.rewritten = Some((ip, port));
    }

    /// An observer saw the punch port kept.
    fn port_kept(&mut self) {
        self.rewritten = None;
    }

    /// Decides about a new candidate and remembers it.
    pub(crate) fn candidate(&mut self, source: Source, addr: Multiaddr) -> Verdict {
        self.recent.retain(|(s, a)| !(*s == source && *a == addr));
        self.recent.push_back((source, addr.clone()));
        while self.recent.len() > RECENT {
            self.recent.pop_front();
        }
        self.decide(source, addr)
    }

    /// The transport's punch sockets may have changed (a listener bound,
    /// reported an address, or closed): if the punch port of a family
    /// changed, the recent candidates of that family are decided again.
    pub(crate) fn sockets_changed(&mut self) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        for family in [Family::Ipv4, Family::Ipv6] {
            let now = self.punch_port(family);
            let before = self.decided_with.insert(family, now).flatten();
            verdicts.extend(self.decide_again_if_moved(family, before));
        }
        verdicts
    }

    fn decide_again_if_moved(&mut self, family: Family, before: Option<u16>) -> Vec<Verdict> {
        let after = self.punch_port(family);
        if after == before || after.is_none() {
            return Vec::new();
        }
        let Some(port) = after else {
            return Vec::new();
        };
        // Observations of the old punch port are stale now.
        if let Some(old) = self
            .last_port
            .insert(family, port)
            .filter(|old| *old != port)
        {
            self.recent.retain(|(_, addr)| {
                !QuicAddr::parse(addr)
                    .is_ok_and(|q| Family::of(q.socket.ip()) == family && q.socket.port() == old)
            });
            self.rewritten = None;
        }
        let recent: Vec<_> = self
            .recent
            .iter()
            .filter(|(_, addr)| {
                QuicAddr::parse(addr).is_ok_and(|q| Family::of(q.socket.ip()) == family)
            })
            .cloned()
            .collect();
        recent
            .into_iter()
            .map(|(source, addr)| self.decide(source, addr))
            .collect()
    }

    fn decide(&mut self, source: Source, addr: Multiaddr) -> Verdict {
        let decision = self.decision(&addr);
        self.stats.count(&decision);
        let verdict = Verdict {
            source,
            addr,
            decision,
        };
        if verdict.candidate().is_some() {
            self.offered_any = true;
        }
        verdict
    }

    fn decision(&self, addr: &Multiaddr) -> Decision {
        if addr.iter().any(|p| p == Protocol::P2pCircuit) {
            return Decision::Dropped(DropReason::Relayed);
        }
        let Ok(quic) = QuicAddr::parse(addr) else {
            return Decision::Bypassed;
        };
        let ip = quic.socket.ip();
        if !is_routable(ip) {
            return Decision::Dropped(DropReason::Unroutable);
        }
        let punch_port = self.punch_port(Family::of(ip));
        let range = self.sockets.range();
        if let Some((rewritten_ip, rewritten_port)) = self.rewritten
            && rewritten_ip == ip
            && (quic.socket.port() == rewritten_port || !range.contains(quic.socket.port()))
        {
            return Decision::Dropped(DropReason::PortRewritten);
        }
        if range.contains(quic.socket.port()) {
            return Decision::Kept;
        }
        let reason = match punch_port {
            Some(port) if self.config.translate => {
                let to = QuicAddr {
                    socket: (ip, port).into(),
                    peer_id: None,
                };
                return Decision::Translated(to.to_multiaddr());
            }
            Some(_) => DropReason::OutsideRange,
            None => DropReason::NoPunchSocket,
        };
        if !self.offered_any && !self.sockets.all().is_empty() {
            return Decision::Fallback;
        }
        Decision::Dropped(reason)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::ops::{Deref, DerefMut};

    use crate::net::{PortRange, SocketTable};
    use libp2p_core::transport::ListenerId;

    use super::*;

    fn addr(text: &str) -> Multiaddr {
        text.parse().unwrap()
    }

    /// A filter and the socket table it reads, as the transport fills it.
    pub(crate) struct Setup {
        filter: Filter,
        table: SocketTable,
    }

    impl Setup {
        /// Binds a punch socket at `socket` and lets the filter know.
        pub(crate) fn bind(&mut self, socket: &str) -> (ListenerId, Vec<Verdict>) {
            let id = ListenerId::next();
            self.table.bound(id, socket.parse().unwrap());
            (id, self.filter.sockets_changed())
        }

        pub(crate) fn close(&mut self, id: ListenerId) -> Vec<Verdict> {
            self.table.closed(id);
            self.filter.sockets_changed()
        }
    }

    impl Deref for Setup {
        type Target = Filter;
        fn deref(&self) -> &Filter {
            &self.filter
        }
    }

    impl DerefMut for Setup {
        fn deref_mut(&mut self) -> &mut Filter {
            &mut self.filter
        }
    }

    pub(crate) fn filter(translate: bool) -> Setup {
        let table = SocketTable::new(PortRange::new(40000, 40050).unwrap(), 2);
        let filter = Filter::new(Config::new().with_translation(translate), table.handle());
        Setup { filter, table }
    }

    fn with_punch_socket(translate: bool) -> Setup {
        let mut filter = filter(translate);
        assert!(filter.bind("10.0.0.2:40007").1.is_empty());
        filter
    }

    #[test]
    fn keeps_candidates_inside_the_range() {
        let mut filter = with_punch_socket(true);
        for text in [
            "/ip4/203.0.113.9/udp/40000/quic-v1",
            "/ip4/198.51.100.1/udp/40050/quic-v1",
            "/ip4/192.0.2.200/udp/40007/quic-v1",
            "/ip6/2001:db8::1/udp/40001/quic-v1",
        ] {
            let verdict = filter.candidate(Source::Observed, addr(text));
            assert_eq!(verdict.decision, Decision::Kept, "{text}");
            assert_eq!(verdict.candidate(), Some(&addr(text)));
        }
    }

    #[test]
    fn translates_ports_outside_the_range_to_the_punch_port() {
        let mut filter = with_punch_socket(true);
        for text in [
            "/ip4/203.0.113.9/udp/443/quic-v1",
            "/ip4/203.0.113.9/udp/51234/quic-v1",
            "/ip4/203.0.113.9/udp/39999/quic-v1",
            "/ip4/203.0.113.9/udp/40051/quic-v1",
        ] {
            let verdict = filter.candidate(Source::Observed, addr(text));
            let want = addr("/ip4/203.0.113.9/udp/40007/quic-v1");
            assert_eq!(
                verdict.decision,
                Decision::Translated(want.clone()),
                "{text}"
            );
            assert_eq!(verdict.candidate(), Some(&want));
        }
        assert_eq!(filter.stats().translated, 4);
    }

    #[test]
    fn drops_ports_outside_the_range_when_translation_is_off() {
        let mut filter = with_punch_socket(false);
        let kept = filter.candidate(Source::Observed, addr("/ip4/203.0.113.9/udp/40001/quic-v1"));
        assert_eq!(kept.decision, Decision::Kept);
        let dropped = filter.candidate(Source::Observed, addr("/ip4/203.0.113.9/udp/443/quic-v1"));
        assert_eq!(
            dropped.decision,
            Decision::Dropped(DropReason::OutsideRange)
        );
        assert_eq!(dropped.candidate(), None);
    }

    #[test]
    fn never_leaves_dcutr_without_a_candidate_when_a_punch_socket_is_bound() {
        let mut filter = with_punch_socket(false);
        let first = filter.candidate(Source::Observed, addr("/ip4/203.0.113.9/udp/443/quic-v1"));
        assert_eq!(first.decision, Decision::Fallback);
        assert!(first.candidate().is_some());
        let second = filter.candidate(Source::Observed, addr("/ip4/203.0.113.9/udp/444/quic-v1"));
        assert_eq!(second.decision, Decision::Dropped(DropReason::OutsideRange));

        // An observation of another family than the punch socket.
        let mut filter = with_punch_socket(true);
        let v6 = filter.candidate(Source::Observed, addr("/ip6/2001:db8::7/udp/443/quic-v1"));
        assert_eq!(v6.decision, Decision::Fallback);
    }

    #[test]
    fn waits_for_the_punch_socket_then_decides_again() {
        let mut filter = filter(true);
        let early = filter.candidate(Source::Observed, addr("/ip4/203.0.113.9/udp/443/quic-v1"));
        assert_eq!(early.decision, Decision::Dropped(DropReason::NoPunchSocket));
        let (id, again) = filter.bind("0.0.0.0:40003");
        assert_eq!(again.len(), 1);
        assert_eq!(
            again[0].decision,
            Decision::Translated(addr("/ip4/203.0.113.9/udp/40003/quic-v1"))
        );
        // A listen address of the same socket changes nothing.
        filter.table.address_added(id, "127.0.0.1".parse().unwrap());
        assert!(filter.sockets_changed().is_empty());
    }

    #[test]
    fn a_moved_punch_socket_yields_new_translations() {
        let mut filter = filter(true);
        let (old, _) = filter.bind("10.0.0.2:40007");
        filter.candidate(Source::Announced, addr("/ip4/203.0.113.9/udp/0/quic-v1"));
        assert!(filter.close(old).is_empty());
        let (_, again) = filter.bind("10.0.0.2:40008");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].source, Source::Announced);
        assert_eq!(
            again[0].candidate(),
            Some(&addr("/ip4/203.0.113.9/udp/40008/quic-v1"))
        );
    }

    #[test]
    fn drops_relayed_and_unroutable_and_bypasses_other_transports() {
        let mut filter = with_punch_socket(true);
        let relayed = format!(
            "/ip4/203.0.113.1/udp/443/quic-v1/p2p/{}/p2p-circuit",
            libp2p_identity::PeerId::random()
        );
        for (text, decision) in [
            (relayed.as_str(), Decision::Dropped(DropReason::Relayed)),
            (
                "/ip4/0.0.0.0/udp/40001/quic-v1",
                Decision::Dropped(DropReason::Unroutable),
            ),
            (
                "/ip4/224.0.0.1/udp/40001/quic-v1",
                Decision::Dropped(DropReason::Unroutable),
            ),
            (
                "/ip4/255.255.255.255/udp/40001/quic-v1",
                Decision::Dropped(DropReason::Unroutable),
            ),
            (
                "/ip6/::/udp/40001/quic-v1",
                Decision::Dropped(DropReason::Unroutable),
            ),
            ("/ip4/203.0.113.1/tcp/443", Decision::Bypassed),
        ] {
            assert_eq!(
                filter.candidate(Source::Observed, addr(text)).decision,
                decision,
                "{text}"
            );
        }
        let stats = filter.stats();
        assert_eq!((stats.seen, stats.dropped, stats.bypassed), (6, 5, 1));
    }

    #[test]
    fn documentation_and_private_addresses_are_not_rejected() {
        let mut filter = with_punch_socket(true);
        for text in [
            "/ip4/192.0.2.1/udp/40001/quic-v1",
            "/ip4/198.51.100.1/udp/40001/quic-v1",
            "/ip4/203.0.113.1/udp/40001/quic-v1",
            "/ip4/10.1.2.3/udp/40001/quic-v1",
            "/ip4/127.0.0.1/udp/40001/quic-v1",
        ] {
            assert_eq!(
                filter.candidate(Source::Observed, addr(text)).decision,
                Decision::Kept
            );
        }
    }

    #[test]
    fn a_rewritten_punch_port_is_not_advertised_until_the_socket_moves() {
        let mut filter = filter(true);
        let (old, _) = filter.bind("10.0.0.2:40007");
        // An observer saw the punch port rewritten, and the socket moves.
        let moving = Observation::Rewritten {
            local: 40007,
            observed: 51234,
            moving_to: Some(40011),
            probing: false,
        };
        let seen = addr("/ip4/203.0.113.9/udp/51234/quic-v1");
        assert_eq!(
            filter.observation(&moving, &seen),
            None,
            "unsettled: no candidate"
        );
        for text in [
            "/ip4/203.0.113.9/udp/40007/quic-v1",
            "/ip4/203.0.113.9/udp/443/quic-v1",
        ] {
            let verdict = filter.candidate(Source::Observed, addr(text));
            assert_eq!(
                verdict.decision,
                Decision::Dropped(DropReason::PortRewritten),
                "{text}"
            );
        }
        // Another observer's IP is unaffected.
        let other = filter.candidate(
            Source::Observed,
            addr("/ip4/198.51.100.3/udp/40007/quic-v1"),
        );
        assert_eq!(other.decision, Decision::Kept);
        // The socket moves: the old port's observations are stale and dropped
        // from memory; the outside-range one is translated to the new port.
        filter.close(old);
        let (_, again) = filter.bind("10.0.0.2:40011");
        let candidates: Vec<_> = again
            .iter()
            .filter_map(Verdict::candidate)
            .cloned()
            .collect();
        assert_eq!(candidates, [addr("/ip4/203.0.113.9/udp/40011/quic-v1")]);
    }

    #[test]
    fn a_settled_rewrite_is_a_candidate_and_a_kept_port_lifts_the_withholding() {
        let mut filter = with_punch_socket(true);
        let seen = addr("/ip4/203.0.113.9/udp/51234/quic-v1");
        let settled = Observation::Rewritten {
            local: 40007,
            observed: 51234,
            moving_to: None,
            probing: false,
        };
        // Socket-aware: what the observer saw is the candidate...
        let verdict = filter.observation(&settled, &seen).unwrap();
        assert_eq!(verdict.decision, Decision::OnPunchSocket);
        assert_eq!(verdict.candidate(), Some(&seen));
        // ...and the punch port at that IP is not ours.
        let punch_port = addr("/ip4/203.0.113.9/udp/40007/quic-v1");
        let verdict = filter.candidate(Source::Observed, punch_port.clone());
        assert_eq!(
            verdict.decision,
            Decision::Dropped(DropReason::PortRewritten)
        );
        // An observer that saw the port kept lifts it.
        filter.observation(&Observation::Preserved { port: 40007 }, &punch_port);
        let verdict = filter.candidate(Source::Observed, punch_port);
        assert_eq!(verdict.decision, Decision::Kept);
        // An observation of no punch socket says nothing.
        assert_eq!(filter.observation(&Observation::Unrelated, &seen), None);
    }

    #[test]
    fn remembers_a_bounded_number_of_candidates() {
        let mut filter = filter(true);
        for port in 1000..1100 {
            filter.candidate(
                Source::Observed,
                addr(&format!("/ip4/203.0.113.9/udp/{port}/quic-v1")),
            );
        }
        let (_, again) = filter.bind("10.0.0.2:40000");
        assert_eq!(again.len(), RECENT);
    }
}

#[cfg(test)]
mod properties {
    use std::net::Ipv4Addr;

    use crate::net::{PortRange, SocketTable};
    use libp2p_core::{multiaddr::Protocol, transport::ListenerId};
    use proptest::prelude::*;

    use super::*;

    const RANGE: (u16, u16) = (40000, 40050);

    /// One component of a multiaddr, from a small alphabet that covers the
    /// shapes a remote could report.
    fn protocol() -> impl Strategy<Value = Protocol<'static>> {
        prop_oneof![
            any::<u32>().prop_map(|ip| Protocol::Ip4(Ipv4Addr::from(ip))),
            any::<u128>().prop_map(|ip| Protocol::Ip6(ip.into())),
            any::<u16>().prop_map(Protocol::Udp),
            any::<u16>().prop_map(Protocol::Tcp),
            Just(Protocol::QuicV1),
            Just(Protocol::Quic),
            Just(Protocol::P2pCircuit),
            "[a-z]{1,10}".prop_map(|name| Protocol::Dns4(name.into())),
        ]
    }

    /// Multiaddrs shaped like QUIC addresses, with any IP and port.
    fn quic_addr() -> impl Strategy<Value = Multiaddr> {
        (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| {
            Multiaddr::empty()
                .with(Protocol::Ip4(Ipv4Addr::from(ip)))
                .with(Protocol::Udp(port))
                .with(Protocol::QuicV1)
        })
    }

    fn any_addr() -> impl Strategy<Value = Multiaddr> {
        prop_oneof![
            quic_addr(),
            proptest::collection::vec(protocol(), 0..6)
                .prop_map(|ps| ps.into_iter().collect::<Multiaddr>()),
            // Raw bytes: mostly not a multiaddr, then the empty one.
            proptest::collection::vec(any::<u8>(), 0..40)
                .prop_map(|bytes| Multiaddr::try_from(bytes).unwrap_or_else(|_| Multiaddr::empty())),
        ]
    }

    fn filter(translate: bool) -> (Filter, SocketTable) {
        let range = PortRange::new(RANGE.0, RANGE.1).unwrap();
        let table = SocketTable::new(range, 2);
        let filter = Filter::new(Config::new().with_translation(translate), table.handle());
        (filter, table)
    }

    /// Punch sockets as the transport would bind them: any QUIC address
    /// whose port is inside the range, the first per family.
    fn bind(table: &SocketTable, addr: &Multiaddr) {
        let Ok(quic) = QuicAddr::parse(addr) else {
            return;
        };
        let family = Family::of(quic.socket.ip());
        if (RANGE.0..=RANGE.1).contains(&quic.socket.port()) && table.handle().get(family).is_none()
        {
            table.bound(ListenerId::next(), quic.socket);
        }
    }

    proptest! {
        /// Whatever the candidates and listen addresses, the filter never
        /// panics, and what it hands DCUtR is either unchanged, a routable
        /// QUIC address on the punch port, or not QUIC at all.
        #[test]
        fn hands_dcutr_only_what_the_rules_allow(
            translate in any::<bool>(),
            listen in proptest::collection::vec(any_addr(), 0..4),
            candidates in proptest::collection::vec(any_addr(), 0..40),
        ) {
            let (mut filter, table) = filter(translate);
            let mut verdicts = Vec::new();
            for addr in &listen {
                bind(&table, addr);
                verdicts.extend(filter.sockets_changed());
            }
            for addr in candidates {
                verdicts.push(filter.candidate(Source::Observed, addr));
            }
            prop_assert!(filter.recent.len() <= RECENT);
            let stats = filter.stats();
            prop_assert_eq!(stats.seen as usize, verdicts.len());
            prop_assert_eq!(
                stats.seen,
                stats.kept + stats.translated + stats.fallback + stats.bypassed + stats.dropped + stats.on_punch_socket
            );
            for verdict in verdicts {
                let quic = QuicAddr::parse(&verdict.addr);
                match &verdict.decision {
                    Decision::Kept => {
                        let quic = quic.unwrap();
                        prop_assert!((RANGE.0..=RANGE.1).contains(&quic.socket.port()));
                        prop_assert!(is_routable(quic.socket.ip()));
                    }
                    Decision::Translated(to) => {
                        prop_assert!(translate);
                        let to = QuicAddr::parse(to).unwrap();
                        prop_assert_eq!(to.socket.ip(), quic.unwrap().socket.ip());
                        prop_assert!((RANGE.0..=RANGE.1).contains(&to.socket.port()));
                    }
                    Decision::Fallback => prop_assert!(is_routable(quic.unwrap().socket.ip())),
                    Decision::Bypassed => prop_assert!(quic.is_err()),
                    Decision::OnPunchSocket => prop_assert!(false, "not in range mode"),
                    Decision::Dropped(_) => prop_assert!(verdict.candidate().is_none()),
                }
            }
        }

        /// With a punch socket bound, any routable QUIC observation gives
        /// DCUtR a candidate: the list is never left empty.
        #[test]
        fn never_leaves_dcutr_empty(translate in any::<bool>(), observed in quic_addr()) {
            let (mut filter, table) = filter(translate);
            table.bound(ListenerId::next(), "10.0.0.2:40007".parse().unwrap());
            filter.sockets_changed();
            let routable = QuicAddr::parse(&observed).is_ok_and(|q| is_routable(q.socket.ip()));
            let verdict = filter.candidate(Source::Observed, observed);
            prop_assert_eq!(verdict.candidate().is_some(), routable);
        }
    }
}
