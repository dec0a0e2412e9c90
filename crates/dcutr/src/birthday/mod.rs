//! Birthday punching: hole punching when one side's NAT maps
//! endpoint-dependently ("hard", the Kubernetes default behind CNIs that
//! masquerade with random ports) and the other's endpoint-independently
//! ("easy").
//!
//! The two sides first agree over the relayed connection
//! ([`protocol`], `/punchport/birthday/1`); stock peers do not speak it and
//! are never part of it. Then:
//!
//! - the hard side opens its sockets, paced, each a libp2p-quic listener-role
//!   dial from a fresh socket of its own: libp2p-quic's hole puncher sends
//!   random packets to the easy side's punch address, so the NAT makes one
//!   random mapping per socket, and waits for the easy side's connection;
//! - once they are open it says `Go`, and the easy side sends QUIC
//!   handshakes from its punch socket to random ports of the hard side's
//!   public IP, paced, until one meets a mapping: that handshake passes both
//!   NATs and the connection is direct.
//!
//! The first direct connection ends the attempt: every other socket closes
//! and every other probe is cancelled; the winner stays as long as its
//! connection. What a peer can make this node send is bounded per attempt,
//! per peer and per destination IP over time ([`plan::Limits`]), and only an
//! IP that the peer advertised in this punch's DCUtR exchange is probed.

mod config;
pub(crate) mod plan;
pub(crate) mod protocol;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    task::{Context, Poll},
    time::Instant,
};

use futures::{FutureExt as _, StreamExt as _, future::BoxFuture, stream::FuturesUnordered};
use libp2p_core::{Multiaddr, multiaddr::Protocol};
use libp2p_identity::PeerId;
use libp2p_swarm::{
    ConnectionId, Stream,
    dial_opts::{DialOpts, PeerCondition},
};
use punchport_core::{AttemptId, DialPurpose, PunchSockets, QuicAddr};

pub use config::{BirthdayConfig, BudgetError, GRACE, MAX_PROBES, MAX_SOCKETS};
pub use plan::{Refusal, Role};

use crate::{
    attempts::{AttemptOutcome, AttemptReport, Side},
    nat::MappingKind,
};
use plan::{Limits, Plan, Ports};
use protocol::{Go, Hello};

/// What a birthday attempt did on this side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirthdayStats {
    /// This side's part.
    pub role: Role,
    /// Sockets opened (hard side).
    pub sockets: u16,
    /// Probes sent (easy side).
    pub probes: u16,
    /// The port that won: the hard side's public port the probe met, as the
    /// easy side dialed it, or the hard side's local socket.
    pub winner: Option<u16>,
}

/// This side's NAT as the behaviour knows it, for its [`Hello`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mine {
    pub(crate) mapping: MappingKind,
    pub(crate) public: Option<SocketAddr>,
    /// A probe that may classify the NAT is under way.
    pub(crate) probing: bool,
}

impl Mine {
    /// The class is unknown but a probe may tell it soon: the negotiation
    /// waits for it (at most [`SETTLE_WAIT`]), since an unknown class means
    /// plain punching only.
    fn unsettled(&self) -> bool {
        self.mapping == MappingKind::Unknown && self.probing
    }
}

/// How long a negotiation waits for this side's own probe to classify the
/// NAT (a probe takes one handshake and one identify exchange).
const SETTLE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Something the behaviour carries out for a birthday attempt.
#[derive(Debug)]
pub(crate) enum Action {
    /// Dial (a socket or a probe).
    Dial(DialOpts),
    /// An attempt started: hold a DCUtR failure until it ends.
    Started(PeerId),
    /// An attempt ended; `true` if another follows (a punch failure stays
    /// held until the last one ends).
    Ended(PeerId, Box<AttemptReport>, bool),
}

/// Attempts per relayed connection: a second one halves nothing of the
/// budget per attempt, and takes a miss of the first (1.7 % for 256 × 1024)
/// to 0.03 %.
const ATTEMPTS_PER_RELAYED: u8 = 2;
/// How long the initiating side waits after a missed attempt before the
/// next, so that the other side's has ended too.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

type Exchange = BoxFuture<'static, (PeerId, std::io::Result<(Stream, Hello)>)>;
type Waiting = BoxFuture<'static, (PeerId, std::io::Result<Go>)>;

#[derive(Debug)]
struct Relayed {
    at: Instant,
    side: Side,
    /// A direct connection came since the relayed one: nothing to punch.
    direct: bool,
    /// Birthday attempts over it so far.
    attempts: u8,
    /// The IPs the peer advertised in this punch's DCUtR exchange.
    advertised: Vec<IpAddr>,
}

struct Attempt {
    id: AttemptId,
    role: Role,
    started: Instant,
    deadline: Instant,
    /// The hard side: the easy side's punch address. The easy side: the
    /// hard side's public IP, with port 0.
    target: SocketAddr,
    /// Flows opened so far.
    opened: u16,
    /// How many to open.
    budget: u16,
    next_at: Instant,
    /// The hard side's stream, to say `Go` on once the sockets are open.
    stream: Option<Stream>,
    /// The easy side starts once `Go` came and the IP is tied to the peer.
    going: bool,
    /// The easy side heard `Go`.
    go_heard: bool,
    dials: Vec<ConnectionId>,
    ports: Ports,
}

/// The birthday part of the behaviour.
pub(crate) struct Birthday {
    config: BirthdayConfig,
    sockets: PunchSockets,
    control: libp2p_stream::Control,
    incoming: Option<libp2p_stream::IncomingStreams>,
    exchanges: FuturesUnordered<Exchange>,
    waiting: FuturesUnordered<Waiting>,
    saying_go: FuturesUnordered<BoxFuture<'static, ()>>,
    relayed: HashMap<PeerId, Relayed>,
    attempts: HashMap<PeerId, Attempt>,
    dials: HashMap<ConnectionId, (PeerId, DialPurpose)>,
    limits: Limits,
    next_attempt: u64,
    seed: u64,
    timer: Option<futures_timer::Delay>,
    timer_at: Option<Instant>,
    /// This side's NAT when last asked, for a retry's hello.
    last_mine: Option<Mine>,
    /// Actions to hand out before anything else.
    queued: std::collections::VecDeque<Action>,
    /// Negotiations to open, and to answer, once this side's class is known
    /// (or at the instant given).
    held_opens: Vec<(PeerId, Instant)>,
    held_answers: Vec<(PeerId, Stream, Instant)>,
}

/// How long the easy side waits for DCUtR's exchange to say which IPs the
/// peer advertised.
const TIE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How a missed attempt's error begins.
const MISSED: &str = "no probe met a mapping";
/// How an attempt's error begins when the hard side's `Go` never came.
const NO_GO: &str = "the hard side did not say go";
/// The error of an attempt that a new negotiation replaced.
const SUPERSEDED: &str = "superseded by a new negotiation";

impl Birthday {
    pub(crate) fn new(
        config: BirthdayConfig,
        sockets: PunchSockets,
        mut control: libp2p_stream::Control,
        seed: u64,
    ) -> Self {
        let incoming = control.accept(protocol::PROTOCOL).ok();
        Self {
            limits: Limits::new(config.clone()),
            config,
            sockets,
            control,
            incoming,
            exchanges: FuturesUnordered::new(),
            waiting: FuturesUnordered::new(),
            saying_go: FuturesUnordered::new(),
            relayed: HashMap::new(),
            attempts: HashMap::new(),
            dials: HashMap::new(),
            next_attempt: 0,
            seed,
            timer: None,
            timer_at: None,
            last_mine: None,
            queued: std::collections::VecDeque::new(),
            held_opens: Vec::new(),
            held_answers: Vec::new(),
        }
    }

    fn hello(&self, mine: Mine) -> Hello {
        Hello {
            mapping: mine.mapping.as_str().to_owned(),
            public: mine.public,
            enabled: self.config.enabled,
        }
    }

    /// A relayed connection to `peer` opened; the side that accepted it
    /// (DCUtR's initiator) opens the negotiation.
    pub(crate) fn relayed(&mut self, peer: PeerId, side: Side, mine: Mine, now: Instant) {
        self.relayed.insert(
            peer,
            Relayed {
                at: now,
                side,
                direct: false,
                attempts: 0,
                advertised: Vec::new(),
            },
        );
        if side == Side::Initiator {
            if mine.unsettled() {
                self.held_opens.push((peer, now + SETTLE_WAIT));
            } else {
                self.open(peer, mine, None);
            }
        }
    }

    /// Answers `peer`'s negotiation on `stream` with this side's hello.
    fn answer(&mut self, peer: PeerId, mut stream: Stream, mine: Mine) {
        let hello = self.hello(mine);
        self.exchanges.push(
            async move {
                let result = async {
                    let theirs = protocol::receive::<Hello>(&mut stream).await?;
                    protocol::send(&mut stream, &hello).await?;
                    Ok((stream, theirs))
                }
                .await;
                (peer, result)
            }
            .boxed(),
        );
    }

    /// Opens and answers the negotiations that waited for this side's class.
    fn release_held(&mut self, mine: Mine, now: Instant) {
        let ready = |at: &Instant| !mine.unsettled() || now >= *at;
        let (opens, held): (Vec<_>, Vec<_>) =
            self.held_opens.drain(..).partition(|(_, at)| ready(at));
        self.held_opens = held;
        for (peer, _) in opens {
            if self.relayed.contains_key(&peer) {
                self.open(peer, mine, None);
            }
        }
        let (answers, held): (Vec<_>, Vec<_>) = self
            .held_answers
            .drain(..)
            .partition(|(_, _, at)| ready(at));
        self.held_answers = held;
        for (peer, stream, _) in answers {
            if self.relayed.contains_key(&peer) {
                self.answer(peer, stream, mine);
            }
        }
    }

    /// Opens the negotiation with `peer`, after `delay`.
    fn open(&mut self, peer: PeerId, mine: Mine, delay: Option<std::time::Duration>) {
        let hello = self.hello(mine);
        let mut control = self.control.clone();
        self.exchanges.push(
            async move {
                if let Some(delay) = delay {
                    futures_timer::Delay::new(delay).await;
                }
                let result = async {
                    let mut stream = control
                        .open_stream(peer, protocol::PROTOCOL)
                        .await
                        .map_err(std::io::Error::other)?;
                    protocol::send(&mut stream, &hello).await?;
                    let theirs = protocol::receive::<Hello>(&mut stream).await?;
                    Ok((stream, theirs))
                }
                .await;
                (peer, result)
            }
            .boxed(),
        );
    }

    /// DCUtR dials `addresses` of `peer`: what the peer advertised in this
    /// punch's exchange, the only IPs an easy side will probe.
    pub(crate) fn advertised(&mut self, peer: PeerId, addresses: &[Multiaddr]) {
        if let Some(relayed) = self.relayed.get_mut(&peer) {
            for addr in addresses {
                if let Ok(quic) = QuicAddr::parse(addr)
                    && !relayed.advertised.contains(&quic.socket.ip())
                {
                    relayed.advertised.push(quic.socket.ip());
                }
            }
        }
    }

    /// What the dial of `connection` is, if it is a birthday dial.
    pub(crate) fn purpose(&self, connection: ConnectionId) -> Option<DialPurpose> {
        self.dials.get(&connection).map(|(_, purpose)| *purpose)
    }

    /// A direct connection to `peer` opened: it ends the peer's attempt.
    pub(crate) fn established(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        remote: &Multiaddr,
        local: Option<&Multiaddr>,
        now: Instant,
    ) -> Option<Action> {
        if let Some(relayed) = self.relayed.get_mut(&peer) {
            relayed.direct = true;
        }
        let mine = self.dials.remove(&connection).is_some();
        let role = self.attempts.get(&peer).map(|a| a.role);
        let winner = match role {
            Some(Role::Easy) if mine => QuicAddr::parse(remote).ok().map(|q| q.socket.port()),
            // The hard side's socket: the one its own dial left from, or the
            // fresh socket that accepted the easy side's probe.
            Some(Role::Hard) => self
                .sockets
                .first_source(connection)
                .or_else(|| {
                    local
                        .and_then(|l| QuicAddr::parse(l).ok())
                        .map(|q| q.socket)
                })
                .map(|socket| socket.port()),
            _ => None,
        };
        let outcome = AttemptOutcome::Direct {
            address: remote.clone(),
        };
        self.end(peer, outcome, winner, now)
    }

    /// A birthday dial failed (or was cancelled).
    pub(crate) fn dial_failed(&mut self, connection: ConnectionId) {
        self.dials.remove(&connection);
    }

    /// The relayed connection to `peer` closed.
    pub(crate) fn relayed_closed(&mut self, peer: PeerId, now: Instant) -> Option<Action> {
        let ended = self.end(
            peer,
            AttemptOutcome::Failed {
                error: "the relayed connection closed".to_owned(),
            },
            None,
            now,
        );
        self.relayed.remove(&peer);
        ended
    }

    fn end(
        &mut self,
        peer: PeerId,
        outcome: AttemptOutcome,
        winner: Option<u16>,
        now: Instant,
    ) -> Option<Action> {
        let attempt = self.attempts.remove(&peer)?;
        self.sockets.cancel(attempt.id);
        self.limits.done(&peer);
        let relayed = self.relayed.get(&peer);
        // A miss (not a connection, not a closed relay) is tried once more,
        // as both sides know: the initiating side negotiates again.
        let missed = matches!(&outcome, AttemptOutcome::Failed { error }
            if error.starts_with(MISSED) || error.starts_with(NO_GO) || error.starts_with(SUPERSEDED));
        let retry =
            missed && relayed.is_some_and(|r| !r.direct && r.attempts < ATTEMPTS_PER_RELAYED);
        let (sockets, probes) = match attempt.role {
            Role::Hard => (attempt.opened, 0),
            Role::Easy => (0, attempt.opened),
        };
        tracing::debug!(%peer, role = attempt.role.as_str(), sockets, probes, ?winner, ?outcome, "birthday attempt ended");
        let report = AttemptReport {
            remote_peer_id: peer,
            side: relayed.map_or(Side::Responder, |r| r.side),
            attempt: relayed.map_or(1, |r| r.attempts.max(1)),
            local_addr: None,
            candidates_sent: Vec::new(),
            candidates_received: Vec::new(),
            dialed: match attempt.role {
                Role::Hard => vec![socket_multiaddr(attempt.target, Some(peer))],
                Role::Easy => Vec::new(),
            },
            duration: now.saturating_duration_since(attempt.started),
            since_relayed: relayed.map(|r| now.saturating_duration_since(r.at)),
            outcome,
            method: crate::attempts::Method::Birthday(BirthdayStats {
                role: attempt.role,
                sockets,
                probes,
                winner,
            }),
        };
        if retry
            && self
                .relayed
                .get(&peer)
                .is_some_and(|r| r.side == Side::Initiator)
            && let Some(mine) = self.last_mine
        {
            self.open(peer, mine, Some(RETRY_AFTER));
        }
        Some(Action::Ended(peer, Box::new(report), retry))
    }

    fn start(&mut self, peer: PeerId, role: Role, target: SocketAddr, now: Instant) -> AttemptId {
        self.next_attempt += 1;
        let id = AttemptId(self.next_attempt);
        let budget = match role {
            Role::Hard => self.config.sockets,
            Role::Easy => self.config.probes,
        };
        self.attempts.insert(
            peer,
            Attempt {
                id,
                role,
                started: now,
                deadline: now + self.config.window(),
                target,
                opened: 0,
                budget,
                next_at: now,
                stream: None,
                going: role == Role::Hard,
                go_heard: false,
                dials: Vec::new(),
                ports: Ports::new(self.seed ^ id.0),
            },
        );
        id
    }

    /// Decides what the exchange with `peer` calls for.
    fn negotiated(
        &mut self,
        peer: PeerId,
        mine: Mine,
        stream: Stream,
        theirs: Hello,
        now: Instant,
    ) -> Option<Action> {
        // Plain punching may have won already.
        if self.relayed.get(&peer).is_none_or(|r| r.direct) {
            return None;
        }
        // The other side negotiated again while this side's attempt still
        // ran (their clocks differ by a round trip or so): the new attempt
        // replaces it.
        if self.attempts.contains_key(&peer) {
            let replaced = AttemptOutcome::Failed {
                error: SUPERSEDED.to_owned(),
            };
            if let Some(ended) = self.end(peer, replaced, None, now) {
                self.queued.push_back(ended);
            }
        }
        let their_mapping = match theirs.mapping.as_str() {
            "endpoint-independent" => MappingKind::EndpointIndependent,
            "endpoint-dependent" => MappingKind::EndpointDependent,
            _ => MappingKind::Unknown,
        };
        let plan = plan::plan(mine.mapping, their_mapping);
        if !(self.config.enabled && theirs.enabled) {
            tracing::debug!(%peer, ?plan, "birthday punching is off on one side");
            return None;
        }
        let role = match plan {
            Plan::Plain => return None,
            Plan::BothHard => {
                tracing::info!(%peer, "both NATs map endpoint-dependently: a birthday punch would need about 65 000 probes per side for a 64 % chance, so the connection stays relayed");
                return None;
            }
            Plan::Birthday(role) => role,
        };
        let Some(target) = theirs.public else {
            tracing::debug!(%peer, "the peer did not say its public address: no birthday punch");
            return None;
        };
        let ip = (role == Role::Easy).then(|| target.ip());
        if let Err(refusal) = self
            .limits
            .admit(peer, ip, u32::from(self.config.probes), now)
        {
            tracing::warn!(%peer, "no birthday punch: {refusal}");
            return None;
        }
        let target = match role {
            Role::Hard => target,
            Role::Easy => SocketAddr::new(target.ip(), 0),
        };
        self.start(peer, role, target, now);
        if let Some(relayed) = self.relayed.get_mut(&peer) {
            relayed.attempts += 1;
        }
        tracing::info!(%peer, role = role.as_str(), %target, "birthday punch starts");
        match role {
            Role::Hard => {
                if let Some(attempt) = self.attempts.get_mut(&peer) {
                    attempt.stream = Some(stream);
                }
            }
            Role::Easy => {
                let mut stream = stream;
                self.waiting.push(
                    async move { (peer, protocol::receive::<Go>(&mut stream).await) }.boxed(),
                );
            }
        }
        Some(Action::Started(peer))
    }

    /// The easy side heard `Go`: it probes once the IP is tied to the peer.
    fn go(&mut self, peer: PeerId, now: Instant) -> Option<Action> {
        let attempt = self.attempts.get_mut(&peer)?;
        attempt.go_heard = true;
        self.tie(peer, now)
    }

    /// Whether the easy side may probe yet: only an IP that the peer
    /// advertised in this punch's DCUtR exchange. Until DCUtR has dialed
    /// the peer's candidates (at most [`TIE_WAIT`] after the attempt
    /// started) it waits.
    fn tie(&mut self, peer: PeerId, now: Instant) -> Option<Action> {
        let advertised = self
            .relayed
            .get(&peer)
            .map(|r| r.advertised.clone())
            .unwrap_or_default();
        let attempt = self.attempts.get_mut(&peer)?;
        if !attempt.go_heard || attempt.going {
            return None;
        }
        let ip = attempt.target.ip();
        if advertised.contains(&ip) {
            attempt.going = true;
            attempt.next_at = now;
            return None;
        }
        if advertised.is_empty() && now < attempt.started + TIE_WAIT {
            return None;
        }
        let refusal = Refusal::Untied(ip);
        tracing::warn!(%peer, "no birthday probes: {refusal}");
        self.end(
            peer,
            AttemptOutcome::Failed {
                error: refusal.to_string(),
            },
            None,
            now,
        )
    }

    /// The next thing to do, if any is due.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>, mine: Mine) -> Poll<Action> {
        let now = Instant::now();
        self.last_mine = Some(mine);
        if let Some(action) = self.queued.pop_front() {
            return Poll::Ready(action);
        }
        while let Some(incoming) = self.incoming.as_mut()
            && let Poll::Ready(next) = incoming.poll_next_unpin(cx)
        {
            let Some((peer, stream)) = next else {
                self.incoming = None;
                break;
            };
            if !self.relayed.contains_key(&peer) {
                continue;
            }
            if mine.unsettled() {
                self.held_answers.push((peer, stream, now + SETTLE_WAIT));
            } else {
                self.answer(peer, stream, mine);
            }
        }
        self.release_held(mine, now);
        while let Poll::Ready(Some((peer, result))) = self.exchanges.poll_next_unpin(cx) {
            match result {
                Ok((stream, theirs)) => {
                    let started = self.negotiated(peer, mine, stream, theirs, now);
                    if let Some(action) = started {
                        self.queued.push_back(action);
                    }
                    if let Some(action) = self.queued.pop_front() {
                        return Poll::Ready(action);
                    }
                }
                Err(error) => {
                    tracing::debug!(%peer, %error, "no birthday negotiation (a stock peer, or the relayed connection closed)");
                }
            }
        }
        while let Poll::Ready(Some((peer, result))) = self.waiting.poll_next_unpin(cx) {
            match result {
                Ok(_) => {
                    if let Some(action) = self.go(peer, now) {
                        return Poll::Ready(action);
                    }
                }
                Err(error) => {
                    tracing::debug!(%peer, %error, "the hard side did not say go");
                    let failed = AttemptOutcome::Failed {
                        error: format!("{NO_GO}: {error}"),
                    };
                    if let Some(action) = self.end(peer, failed, None, now) {
                        return Poll::Ready(action);
                    }
                }
            }
        }
        while let Poll::Ready(Some(())) = self.saying_go.poll_next_unpin(cx) {}
        if let Some(action) = self.due(now) {
            return Poll::Ready(action);
        }
        self.arm_timer(cx);
        Poll::Pending
    }

    /// A dial or an end that is due at `now`.
    fn due(&mut self, now: Instant) -> Option<Action> {
        let waiting: Vec<PeerId> = self
            .attempts
            .iter()
            .filter(|(_, a)| a.go_heard && !a.going)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in waiting {
            if let Some(action) = self.tie(peer, now) {
                return Some(action);
            }
        }
        let expired = self
            .attempts
            .iter()
            .find(|(_, a)| now >= a.deadline)
            .map(|(peer, _)| *peer);
        if let Some(peer) = expired {
            let failed = AttemptOutcome::Failed {
                error: format!("no probe met a mapping within {:?}", self.config.window()),
            };
            return self.end(peer, failed, None, now);
        }
        let window = self.config.window();
        let gap = self.config.gap();
        let sockets = self.config.sockets;
        let (peer, attempt) = self
            .attempts
            .iter_mut()
            .find(|(_, a)| a.going && a.opened < a.budget && now >= a.next_at)?;
        let peer = *peer;
        attempt.opened += 1;
        attempt.next_at = now.max(attempt.next_at) + gap;
        let (addr, purpose, opts) = match attempt.role {
            Role::Hard => {
                let addr = socket_multiaddr(attempt.target, None);
                let opts = DialOpts::peer_id(peer)
                    .addresses(vec![addr])
                    .condition(PeerCondition::Always)
                    .override_role()
                    .build();
                (
                    attempt.target,
                    DialPurpose::BirthdaySocket(attempt.id, window),
                    opts,
                )
            }
            Role::Easy => {
                let target = SocketAddr::new(attempt.target.ip(), attempt.ports.next());
                let opts = DialOpts::peer_id(peer)
                    .addresses(vec![socket_multiaddr(target, None)])
                    .condition(PeerCondition::Always)
                    .build();
                (target, DialPurpose::BirthdayProbe(attempt.id), opts)
            }
        };
        tracing::trace!(%peer, %addr, n = attempt.opened, "birthday flow");
        attempt.dials.push(opts.connection_id());
        self.dials.insert(opts.connection_id(), (peer, purpose));
        // The hard side's sockets are all open: say go.
        if attempt.role == Role::Hard
            && attempt.opened == attempt.budget
            && let Some(mut stream) = attempt.stream.take()
        {
            self.saying_go.push(
                async move {
                    if let Err(error) = protocol::send(&mut stream, &Go { sockets }).await {
                        tracing::debug!(%error, "could not say go");
                    }
                }
                .boxed(),
            );
        }
        Some(Action::Dial(opts))
    }

    fn arm_timer(&mut self, cx: &mut Context<'_>) {
        let held = self
            .held_opens
            .iter()
            .map(|(_, at)| *at)
            .chain(self.held_answers.iter().map(|(_, _, at)| *at));
        let next = self
            .attempts
            .values()
            .map(|a| {
                if a.going && a.opened < a.budget {
                    a.next_at.min(a.deadline)
                } else if a.go_heard && !a.going {
                    (a.started + TIE_WAIT).min(a.deadline)
                } else {
                    a.deadline
                }
            })
            .chain(held)
            .min();
        let Some(next) = next else {
            self.timer = None;
            self.timer_at = None;
            return;
        };
        if self.timer_at != Some(next) {
            let wait = next.saturating_duration_since(Instant::now());
            self.timer = Some(futures_timer::Delay::new(wait));
            self.timer_at = Some(next);
        }
        if let Some(timer) = self.timer.as_mut()
            && timer.poll_unpin(cx).is_ready()
        {
            self.timer = None;
            self.timer_at = None;
            cx.waker().wake_by_ref();
        }
    }

    /// How many attempts, dials, peers with a relayed connection, and
    /// peers and IPs the limits remember, this holds.
    pub(crate) fn sizes(&self) -> [usize; 5] {
        let (peers, ips) = self.limits.remembered();
        [
            self.attempts.len(),
            self.dials.len(),
            self.relayed.len(),
            peers,
            ips,
        ]
    }
}

fn socket_multiaddr(socket: SocketAddr, peer: Option<PeerId>) -> Multiaddr {
    let addr = QuicAddr {
        socket,
        peer_id: None,
    }
    .to_multiaddr();
    match peer {
        Some(peer) => addr.with(Protocol::P2p(peer)),
        None => addr,
    }
}
