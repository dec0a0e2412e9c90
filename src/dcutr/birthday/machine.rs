//! One birthday attempt, without I/O: it takes the time and what happened
//! (`handle_*`) and says what to send and when to wake (`poll_*`), in the
//! way of quinn-proto. The driver in `mod.rs` and the socket I/O in `io.rs`
//! only carry it out.
//!
//! The hard side, once the peer's address is tied to it, opens its sockets
//! at the pace, each sending one short-TTL datagram to the easy side's
//! punch address (it leaves our NAT, which maps it, and dies before the
//! other side's router), then says [`Message::Ready`]. The easy side, once
//! the hard side's IP is tied and `Ready` came, sends its probes from its
//! punch socket at the pace; its window starts then. A probe that meets a
//! mapping reaches one of the hard side's sockets: the hard side says
//! [`Message::Won`] and dials the easy side over QUIC from that socket's
//! port. Nothing is ever sent towards an address the punch did not tie to
//! the peer, and never more than the attempt's budget.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    time::{Duration, Instant},
};

use rand::{RngExt as _, SeedableRng, rngs::StdRng};

use super::{
    config::{GRACE, MAX_OPENER, MAX_PROBE},
    limits::Cost,
    plan::Role,
    ports::ProbePorts,
    protocol::{self, Message, Nonce},
};

/// How long either side waits for the peer's address to be tied to it (the
/// peer's candidates arrive with DCUtR's dial, 1.5 relayed round trips
/// after the relayed connection).
pub(crate) const TIE_WAIT: Duration = Duration::from_secs(5);
/// How long the easy side waits for `Ready`; the hard side opens its
/// sockets in a quarter of a second at the default pace.
pub(crate) const READY_WAIT: Duration = Duration::from_secs(5);
/// How long a deferred attempt waits for this side's plain punch to fail
/// (libp2p-quic's handshake timeout is 5 s).
pub(crate) const PLAIN_WAIT: Duration = Duration::from_secs(20);
/// How long the hard side listens after `Ready`, beyond the easy side's
/// window: the easy side starts half a relayed round trip later.
pub(crate) const LISTEN_SLACK: Duration = Duration::from_secs(3);
/// How long a won attempt waits for its direct connection.
pub(crate) const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// Datagrams that are due together go out together, at most this often.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// What an attempt starts from.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub(crate) role: Role,
    /// Hard side: the easy side's public punch address. Easy side: the hard
    /// side's public address (only its IP is used).
    pub(crate) target: SocketAddr,
    /// The nonce the probes carry: the hard side's.
    pub(crate) nonce: Nonce,
    /// Hard side: start only once this side's plain punch failed. Easy
    /// side: `Ready` may come that much later.
    pub(crate) deferred: bool,
    pub(crate) sockets: u16,
    pub(crate) probes: u16,
    pub(crate) gap: Duration,
    /// The hard side's TTL: just enough to leave its own NAT.
    pub(crate) ttl: u8,
    /// The most this attempt sends.
    pub(crate) budget: Cost,
    pub(crate) seed: u64,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transmit {
    /// Hard side: open socket `index` with `ttl` and send `payload` to `to`
    /// from it.
    Open {
        index: u16,
        to: SocketAddr,
        ttl: u8,
        payload: Vec<u8>,
    },
    /// Easy side: send `payload` to `to` from the punch socket.
    Probe { to: SocketAddr, payload: Vec<u8> },
}

impl Transmit {
    fn wire_bytes(&self) -> usize {
        let (to, len) = match self {
            Transmit::Open { to, payload, .. } | Transmit::Probe { to, payload } => {
                (*to, payload.len())
            }
        };
        crate::net::wire::wire_bytes(to, len)
    }
}

/// Why an attempt ended without a direct connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttemptError {
    /// Every probe went out and none met a mapping.
    #[error("no probe met a mapping")]
    Missed,
    /// The hard side did not open its sockets in time.
    #[error("the hard side did not say it was ready within {0:?}")]
    NoReady(Duration),
    /// The address to send to is not one the peer advertised in this
    /// punch's DCUtR exchange.
    #[error(
        "{0} is not among the addresses the peer advertised in this punch's DCUtR exchange: nothing is sent to it"
    )]
    Untied(SocketAddr),
    /// The peer's DCUtR candidates did not come in time to tie its address.
    #[error("the peer's DCUtR candidates did not come within {0:?}: nothing is sent")]
    NoTie(Duration),
    /// This side's plain punch neither failed nor succeeded in time (a
    /// deferred attempt).
    #[error("the plain punch did not fail within {0:?}")]
    PlainWait(Duration),
    /// The negotiation stream closed before the attempt was won.
    #[error("the negotiation stream closed")]
    StreamLost,
    /// The other side ended its part without a winner.
    #[error("the other side ended its part after {0} datagrams without a winner")]
    PeerDone(u32),
    /// The direct dial from the winning socket failed.
    #[error("the dial from the winning socket failed")]
    DialFailed(#[source] Box<crate::dcutr::attempts::DialFailure>),
    /// No direct connection came after a probe won.
    #[error("no direct connection within {0:?} of the winning probe")]
    NoConnection(Duration),
    /// A new negotiation replaced the attempt.
    #[error("superseded by a new negotiation")]
    Superseded,
    /// The relayed connection closed.
    #[error("the relayed connection closed")]
    RelayedClosed,
}

impl AttemptError {
    /// Whether the miss calls for the second attempt: the odds were
    /// against it, not the peer or the path.
    pub(crate) fn retries(&self) -> bool {
        matches!(
            self,
            AttemptError::Missed
                | AttemptError::PeerDone(_)
                | AttemptError::NoReady(_)
                | AttemptError::Superseded
        )
    }
}

/// What an attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stats {
    pub(crate) role: Role,
    /// Sockets opened (hard side).
    pub(crate) sockets: u16,
    /// Probes sent (easy side).
    pub(crate) probes: u16,
    /// Everything it sent.
    pub(crate) sent: Cost,
    /// Hard side: the local port of the socket a probe reached. Easy side:
    /// the one `Won` named.
    pub(crate) winner: Option<u16>,
    /// When its datagrams could start (the tie, and `Ready` on the easy
    /// side).
    pub(crate) started: Option<Instant>,
}

/// Something for the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Hard side: a probe reached socket `index` on local port `port`:
    /// close every socket and dial the easy side over QUIC from `port`.
    Dial { index: u16, port: u16 },
    /// The attempt is over.
    Ended(Result<(), AttemptError>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    /// Waiting for the tie; the deferred hard side also for its plain
    /// punch to fail, the easy side also for `Ready`.
    Waiting,
    /// Hard: opening sockets. Easy: probing.
    Sending,
    /// Hard: every socket open, listening for a probe. Easy: every probe
    /// sent, waiting for a winner.
    Listening,
    /// A probe won: waiting for the direct connection.
    Connecting,
    Ended,
}

/// One birthday attempt on this side.
#[derive(Debug)]
pub(crate) struct Attempt {
    setup: Setup,
    state: State,
    created: Instant,
    deadline: Instant,
    tied: bool,
    plain_failed: bool,
    ready: bool,
    /// When the next datagram is due, and when the sending began.
    next_send: Instant,
    sending_since: Option<Instant>,
    sent: u16,
    cost: Cost,
    winner: Option<u16>,
    outcome: Option<Result<(), AttemptError>>,
    ports: ProbePortsDebug,
    rng: StdRng,
    messages: VecDeque<Message>,
    events: VecDeque<Event>,
}

/// [`ProbePorts`] with a `Debug` that says nothing.
struct ProbePortsDebug(ProbePorts);

impl std::fmt::Debug for ProbePortsDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProbePorts")
    }
}

impl Attempt {
    pub(crate) fn new(setup: Setup, now: Instant) -> Self {
        let wait = match (setup.role, setup.deferred) {
            (Role::Hard, false) => TIE_WAIT,
            (Role::Hard, true) => PLAIN_WAIT,
            (Role::Easy, false) => READY_WAIT,
            (Role::Easy, true) => PLAIN_WAIT + READY_WAIT,
        };
        Self {
            ports: ProbePortsDebug(ProbePorts::new(setup.seed)),
            rng: StdRng::seed_from_u64(setup.seed.rotate_left(17)),
            setup,
            state: State::Waiting,
            created: now,
            deadline: now + wait,
            tied: false,
            plain_failed: false,
            ready: false,
            next_send: now,
            sending_since: None,
            sent: 0,
            cost: Cost::default(),
            winner: None,
            outcome: None,
            messages: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub(crate) fn is_ended(&self) -> bool {
        self.state == State::Ended
    }

    /// Where its datagrams go (the hard side's exact target; the easy
    /// side's IP).
    pub(crate) fn target(&self) -> SocketAddr {
        self.setup.target
    }

    /// When it was made.
    pub(crate) fn created(&self) -> Instant {
        self.created
    }

    /// How it ended; `Err(Superseded)` while it runs.
    pub(crate) fn outcome(&self) -> Result<(), AttemptError> {
        self.outcome
            .clone()
            .unwrap_or(Err(AttemptError::Superseded))
    }

    /// What it did so far.
    pub(crate) fn stats(&self) -> Stats {
        let (sockets, probes) = match self.setup.role {
            Role::Hard => (self.sent, 0),
            Role::Easy => (0, self.sent),
        };
        Stats {
            role: self.setup.role,
            sockets,
            probes,
            sent: self.cost,
            winner: self.winner,
            started: self.sending_since,
        }
    }

    /// The peer's DCUtR candidates arrived (the addresses DCUtR dials).
    /// The hard side's target must be one of them exactly; the easy side's
    /// IP must be the IP of one.
    pub(crate) fn handle_tie(&mut self, advertised: &[SocketAddr], now: Instant) {
        if self.state != State::Waiting || self.tied || advertised.is_empty() {
            return;
        }
        let target = self.setup.target;
        let tied = match self.setup.role {
            Role::Hard => advertised.contains(&target),
            Role::Easy => advertised.iter().any(|a| a.ip() == target.ip()),
        };
        if !tied {
            self.end(Err(AttemptError::Untied(target)));
            return;
        }
        self.tied = true;
        self.maybe_start(now);
    }

    /// This side's plain punch failed (a deferred hard side starts now).
    pub(crate) fn handle_plain_failed(&mut self, now: Instant) {
        self.plain_failed = true;
        self.maybe_start(now);
    }

    /// A message from the other side.
    pub(crate) fn handle_message(&mut self, message: Message, now: Instant) {
        match (self.setup.role, message) {
            (Role::Easy, Message::Ready { .. }) => {
                self.ready = true;
                self.maybe_start(now);
            }
            (Role::Easy, Message::Won { port }) if self.state < State::Connecting => {
                self.winner = Some(port);
                self.state = State::Connecting;
                self.deadline = now + CONNECT_WAIT;
            }
            (_, Message::Done { sent }) if self.state < State::Connecting => {
                self.end(Err(AttemptError::PeerDone(sent)));
            }
            _ => {}
        }
    }

    /// Hard side: `datagram` came from `from` to socket `index`, bound to
    /// local port `port`. Only a probe from the tied address, carrying our
    /// nonce, wins.
    pub(crate) fn handle_datagram(
        &mut self,
        index: u16,
        port: u16,
        from: SocketAddr,
        datagram: &[u8],
        now: Instant,
    ) {
        let listening = matches!(self.state, State::Sending | State::Listening);
        if self.setup.role != Role::Hard || !listening {
            return;
        }
        if from != self.setup.target || !protocol::is_probe(datagram, &self.setup.nonce) {
            return;
        }
        self.winner = Some(port);
        self.state = State::Connecting;
        self.deadline = now + CONNECT_WAIT;
        self.messages.push_back(Message::Won { port });
        self.events.push_back(Event::Dial { index, port });
    }

    /// A direct connection to the peer opened (this attempt's or any).
    pub(crate) fn handle_direct(&mut self) {
        self.end(Ok(()));
    }

    /// Hard side: the dial from the winning socket failed.
    pub(crate) fn handle_dial_failed(&mut self, error: crate::dcutr::attempts::DialFailure) {
        if self.state == State::Connecting {
            self.end(Err(AttemptError::DialFailed(Box::new(error))));
        }
    }

    /// The negotiation stream closed.
    pub(crate) fn handle_stream_closed(&mut self) {
        if self.state < State::Connecting {
            self.end(Err(AttemptError::StreamLost));
        }
    }

    /// The attempt is abandoned for `error`.
    pub(crate) fn abort(&mut self, error: AttemptError) {
        self.end(Err(error));
    }

    /// Time passed.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if now < self.deadline || self.state == State::Ended {
            return;
        }
        let waited = now.saturating_duration_since(self.created);
        match self.state {
            State::Waiting => {
                let error = if !self.tied {
                    AttemptError::NoTie(TIE_WAIT)
                } else if self.setup.role == Role::Easy {
                    AttemptError::NoReady(waited)
                } else {
                    AttemptError::PlainWait(PLAIN_WAIT)
                };
                self.end(Err(error));
            }
            // The window closed while sending (pacing slipped): what went
            // out had its chance.
            State::Sending | State::Listening => {
                self.messages.push_back(Message::Done {
                    sent: self.cost.datagrams,
                });
                self.end(Err(AttemptError::Missed));
            }
            State::Connecting => self.end(Err(AttemptError::NoConnection(CONNECT_WAIT))),
            State::Ended => {}
        }
    }

    /// The next datagram to send now, if any is due.
    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if self.state != State::Sending || now < self.next_send {
            return None;
        }
        let total = match self.setup.role {
            Role::Hard => self.setup.sockets,
            Role::Easy => self.setup.probes,
        };
        let transmit = (self.sent < total).then(|| self.make_transmit());
        match transmit {
            Some(transmit)
                if self.cost.bytes + transmit.wire_bytes() as u64 <= self.setup.budget.bytes
                    && self.cost.datagrams < self.setup.budget.datagrams =>
            {
                self.cost.add(transmit.wire_bytes());
                self.sent += 1;
                self.next_send += self.setup.gap;
                if self.sent == total {
                    self.all_sent(now);
                }
                Some(transmit)
            }
            // Every datagram is out, or the budget would be passed.
            _ => {
                self.all_sent(now);
                None
            }
        }
    }

    /// The next message for the other side.
    pub(crate) fn poll_message(&mut self) -> Option<Message> {
        self.messages.pop_front()
    }

    /// The next thing for the driver to do.
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) or
    /// [`poll_transmit`](Self::poll_transmit) next. Datagrams due within a
    /// [`TICK`] of each other are sent together.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Ended => None,
            State::Sending => {
                let since = self.sending_since.unwrap_or(self.created);
                let due = self.next_send.saturating_duration_since(since);
                let ticks = due.as_nanos().div_ceil(TICK.as_nanos());
                let at = since + TICK * u32::try_from(ticks).unwrap_or(u32::MAX);
                Some(at.min(self.deadline))
            }
            _ => Some(self.deadline),
        }
    }

    fn make_transmit(&mut self) -> Transmit {
        match self.setup.role {
            Role::Hard => {
                let len = self.rng.random_range(16..=MAX_OPENER);
                let payload: Vec<u8> = (0..len).map(|_| self.rng.random()).collect();
                Transmit::Open {
                    index: self.sent,
                    to: self.setup.target,
                    ttl: self.setup.ttl,
                    payload,
                }
            }
            Role::Easy => {
                let padding = self.rng.random_range(0..=MAX_PROBE - 20);
                let padding: Vec<u8> = (0..padding).map(|_| self.rng.random()).collect();
                let to = SocketAddr::new(self.setup.target.ip(), self.ports.0.next());
                Transmit::Probe {
                    to,
                    payload: protocol::probe(&self.setup.nonce, &padding),
                }
            }
        }
    }

    fn maybe_start(&mut self, now: Instant) {
        if self.state != State::Waiting || !self.tied {
            return;
        }
        let go = match self.setup.role {
            Role::Hard => !self.setup.deferred || self.plain_failed,
            Role::Easy => self.ready,
        };
        if !go {
            return;
        }
        self.state = State::Sending;
        self.sending_since = Some(now);
        self.next_send = now;
        let sending = self.setup.gap
            * u32::from(match self.setup.role {
                Role::Hard => self.setup.sockets,
                Role::Easy => self.setup.probes,
            });
        // The hard side listens for the easy side's whole window; the easy
        // side's window starts now.
        self.deadline = now + sending + GRACE + LISTEN_SLACK;
        if self.setup.role == Role::Easy {
            self.deadline = now + sending + GRACE;
        }
    }

    fn all_sent(&mut self, now: Instant) {
        if self.state != State::Sending {
            return;
        }
        self.state = State::Listening;
        match self.setup.role {
            Role::Hard => {
                self.messages
                    .push_back(Message::Ready { sockets: self.sent });
                let window = self.setup.gap * u32::from(self.setup.probes) + GRACE;
                self.deadline = now + window + LISTEN_SLACK;
            }
            Role::Easy => {
                self.deadline = self.deadline.min(now + GRACE);
            }
        }
    }

    fn end(&mut self, outcome: Result<(), AttemptError>) {
        if self.state == State::Ended {
            return;
        }
        self.state = State::Ended;
        self.outcome = Some(outcome.clone());
        self.events.push_back(Event::Ended(outcome));
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::dcutr::birthday::pair::{EASY_PUBLIC, HARD_PUBLIC, Pair, PortPick, setup};

    fn easy_public() -> SocketAddr {
        EASY_PUBLIC.parse().unwrap()
    }

    #[test]
    fn a_hard_and_an_easy_side_end_direct_and_stay_in_budget() {
        let mut pair = Pair::default_with(PortPick::Linux, 1);
        pair.tie();
        pair.run(Duration::from_secs(30));
        assert_eq!(pair.hard_ended, Some(Ok(())));
        assert_eq!(pair.easy_ended, Some(Ok(())));
        // The hard side: one datagram per socket, all to the tied address,
        // all with the short TTL.
        assert_eq!(pair.hard_wire.sent.datagrams, 256);
        assert!(pair.hard_wire.sent.bytes <= 256 * 60);
        assert_eq!(pair.hard_wire.destinations, [easy_public()].into());
        assert_eq!(pair.hard_wire.ttls, [Some(2)].into());
        // The easy side stopped once it heard `Won`: far fewer than 1024.
        assert!(pair.easy_wire.sent.datagrams < 1024);
        let hard_ip = HARD_PUBLIC.parse::<SocketAddr>().unwrap().ip();
        assert!(
            pair.easy_wire
                .destinations
                .iter()
                .all(|d| d.ip() == hard_ip)
        );
        let stats = pair.hard.stats();
        assert_eq!(stats.winner, pair.dialed.map(|(_, port)| port));
        assert_eq!(pair.easy.stats().winner, stats.winner);
    }

    /// 300 attempts each, one seed each: the odds the docs state.
    #[test]
    fn probing_linuxs_favoured_ports_first_wins_almost_always_and_early() {
        let run = |pick: PortPick| {
            let mut won = 0;
            let mut probes = Vec::new();
            for seed in 0..300 {
                let mut pair = Pair::default_with(pick, seed);
                pair.relay_delay = Duration::ZERO;
                pair.direct_delay = Duration::ZERO;
                pair.tie();
                pair.run(Duration::from_secs(30));
                if pair.hard_ended == Some(Ok(())) {
                    won += 1;
                    probes.push(pair.easy.stats().probes);
                }
            }
            probes.sort_unstable();
            (won, probes[probes.len() / 2])
        };
        // Linux's random port mapping: 1 − (1 − 2048/65536)^256 ≈ 99.97 %.
        let (won, median) = run(PortPick::Linux);
        assert!(won >= 299, "{won}/300 against Linux");
        assert!(median < 200, "median {median} probes against Linux");
        // A uniform NAT: 1 − e^(−256·1024/64512) ≈ 98.3 %.
        let (won, median) = run(PortPick::Uniform);
        assert!(won >= 288, "{won}/300 against a uniform NAT");
        assert!(median < 300, "median {median} probes against a uniform NAT");
    }

    #[test]
    fn nothing_leaves_before_the_tie_and_nothing_towards_an_untied_address() {
        // No tie: nothing is sent, and the attempt gives up.
        let mut pair = Pair::default_with(PortPick::Linux, 2);
        pair.run(Duration::from_secs(30));
        assert_eq!(pair.hard_wire.sent, Cost::default());
        assert_eq!(pair.easy_wire.sent, Cost::default());
        assert_eq!(pair.hard_ended, Some(Err(AttemptError::NoTie(TIE_WAIT))));
        // The peer's candidates name other addresses: refused at once.
        let mut pair = Pair::default_with(PortPick::Linux, 3);
        let other: SocketAddr = "198.51.100.20:40001".parse().unwrap();
        pair.hard.handle_tie(&[other], pair.now);
        pair.easy
            .handle_tie(&["192.0.2.9:4000".parse().unwrap()], pair.now);
        pair.run(Duration::from_secs(30));
        assert_eq!(
            pair.hard_ended,
            Some(Err(AttemptError::Untied(easy_public())))
        );
        assert!(matches!(
            pair.easy_ended,
            Some(Err(AttemptError::Untied(_)))
        ));
        assert_eq!(
            pair.hard_wire.sent.datagrams + pair.easy_wire.sent.datagrams,
            0
        );
        // The hard side needs the exact address; the easy side the IP.
        let mut pair = Pair::default_with(PortPick::Linux, 4);
        let hard_ip_other_port: SocketAddr = "203.0.113.30:1".parse().unwrap();
        pair.easy.handle_tie(&[hard_ip_other_port], pair.now);
        let easy_other_port: SocketAddr = "198.51.100.20:1".parse().unwrap();
        pair.hard.handle_tie(&[easy_other_port], pair.now);
        pair.run(Duration::from_millis(10));
        assert_eq!(
            pair.hard_ended,
            Some(Err(AttemptError::Untied(easy_public())))
        );
        assert_eq!(pair.easy_ended, None);
    }

    #[test]
    fn every_attempt_budget_caps_what_reaches_the_wire() {
        // Datagrams: a budget of 100 on the hard side, 300 on the easy side.
        let mut hard = setup(Role::Hard, 5);
        hard.budget.datagrams = 100;
        let mut easy = setup(Role::Easy, 6);
        easy.budget.datagrams = 300;
        // A NAT that never maps where the probes look: every probe misses.
        let mut pair = Pair::new(hard, easy, PortPick::Uniform, 5);
        pair.tie();
        pair.easy
            .handle_message(Message::Ready { sockets: 256 }, pair.now);
        pair.run(Duration::from_secs(30));
        assert_eq!(pair.hard_wire.sent.datagrams, 100);
        assert!(pair.easy_wire.sent.datagrams <= 300);
        // Bytes: at most 10 datagrams' worth of the largest.
        let mut hard = setup(Role::Hard, 7);
        hard.budget.bytes = 10 * 60;
        let mut easy = setup(Role::Easy, 8);
        easy.budget.bytes = 10 * 60;
        let mut pair = Pair::new(hard, easy, PortPick::Uniform, 7);
        pair.tie();
        pair.run(Duration::from_secs(30));
        assert!(
            pair.hard_wire.sent.bytes <= 600,
            "{:?}",
            pair.hard_wire.sent
        );
        assert!(
            pair.easy_wire.sent.bytes <= 600,
            "{:?}",
            pair.easy_wire.sent
        );
        assert!(pair.hard_wire.sent.datagrams >= 10);
    }

    #[test]
    fn the_easy_window_starts_when_ready_comes_not_at_negotiation() {
        // The hard side's `Ready` comes 4 s late (a slow relay): the easy
        // side still sends every probe, its window runs from `Ready`.
        let mut hard = setup(Role::Hard, 9);
        hard.sockets = 1; // one mapping: the probes almost surely miss
        hard.budget.datagrams = 1;
        let mut pair = Pair::new(hard, setup(Role::Easy, 10), PortPick::Uniform, 9);
        pair.relay_delay = Duration::from_secs(4);
        pair.tie();
        pair.run(Duration::from_secs(60));
        assert_eq!(pair.easy.stats().probes, 1024);
        let started = pair.easy.stats().started.unwrap();
        assert!(started >= pair.hard.created() + Duration::from_secs(4));
        assert_eq!(pair.easy_ended, Some(Err(AttemptError::Missed)));
        // The hard side ended too (its own deadline came before the easy
        // side's `Done`, 4 s away): a miss that calls for the second attempt.
        assert!(pair.hard_ended.clone().unwrap().unwrap_err().retries());
        // Without `Ready` the easy side sends nothing and gives up.
        let mut pair = Pair::default_with(PortPick::Linux, 11);
        pair.stream_cut = true;
        pair.tie();
        pair.run(Duration::from_secs(60));
        assert_eq!(pair.easy_wire.sent.datagrams, 0);
        assert!(matches!(
            pair.easy_ended,
            Some(Err(AttemptError::NoReady(_)))
        ));
    }

    #[test]
    fn a_direct_connection_ends_the_attempt_and_nothing_more_is_sent() {
        let mut pair = Pair::default_with(PortPick::Linux, 12);
        pair.tie();
        pair.run(Duration::from_millis(50));
        let sent = pair.hard_wire.sent;
        assert!(sent.datagrams > 0 && sent.datagrams < 256, "{sent}");
        // Plain punching won meanwhile.
        pair.hard.handle_direct();
        pair.easy.handle_direct();
        pair.run(Duration::from_secs(30));
        assert_eq!(pair.hard_wire.sent, sent);
        assert_eq!(pair.easy_wire.sent.datagrams, 0);
        assert_eq!(pair.hard_ended, Some(Ok(())));
        assert_eq!(pair.easy_ended, Some(Ok(())));
    }

    #[test]
    fn a_lying_peer_cannot_make_a_datagram_win_or_move_the_target() {
        let mut pair = Pair::default_with(PortPick::Linux, 13);
        pair.tie();
        pair.run(Duration::from_millis(400));
        let now = pair.now;
        let probe = crate::dcutr::birthday::protocol::probe(&Nonce([5; 16]), &[]);
        // The right nonce from another address, and junk from the right one.
        let stranger: SocketAddr = "192.0.2.66:40000".parse().unwrap();
        pair.hard.handle_datagram(0, 50_000, stranger, &probe, now);
        pair.hard
            .handle_datagram(0, 50_000, easy_public(), b"PPB2 not the nonce..", now);
        let wrong = crate::dcutr::birthday::protocol::probe(&Nonce([6; 16]), &[]);
        pair.hard
            .handle_datagram(0, 50_000, easy_public(), &wrong, now);
        assert_eq!(pair.hard.stats().winner, None);
        assert!(pair.hard.poll_event().is_none());
        // A `Won` for the hard side, or a second `Ready`, changes nothing.
        pair.hard.handle_message(Message::Won { port: 1 }, now);
        pair.hard.handle_message(Message::Ready { sockets: 9 }, now);
        assert_eq!(pair.hard.stats().winner, None);
        // A late tie naming another address does not move the target.
        pair.hard
            .handle_tie(&["192.0.2.66:40000".parse().unwrap()], now);
        pair.run(Duration::from_secs(30));
        assert_eq!(pair.hard_wire.destinations, [easy_public()].into());
    }

    #[test]
    fn losing_the_relayed_stream_ends_an_attempt_but_not_a_won_one() {
        let mut pair = Pair::default_with(PortPick::Linux, 14);
        pair.tie();
        pair.run(Duration::from_millis(100));
        pair.hard.handle_stream_closed();
        pair.easy.handle_stream_closed();
        let sent = (pair.hard_wire.sent, pair.easy_wire.sent);
        pair.run(Duration::from_secs(30));
        assert_eq!(pair.hard_ended, Some(Err(AttemptError::StreamLost)));
        assert_eq!(pair.easy_ended, Some(Err(AttemptError::StreamLost)));
        assert!(!pair.hard_ended.clone().unwrap().unwrap_err().retries());
        assert_eq!((pair.hard_wire.sent, pair.easy_wire.sent), sent);
        // Once a probe won, the dial goes on without the stream.
        let mut pair = Pair::default_with(PortPick::Linux, 15);
        pair.direct_delay = Duration::from_millis(200);
        pair.tie();
        while pair.dialed.is_none() {
            pair.run(Duration::from_millis(10));
        }
        pair.hard.handle_stream_closed();
        pair.run(Duration::from_secs(30));
        assert_eq!(pair.hard_ended, Some(Ok(())));
    }

    #[test]
    fn a_deferred_hard_side_waits_for_its_plain_punch_to_fail() {
        let mut hard = setup(Role::Hard, 16);
        hard.deferred = true;
        let mut easy = setup(Role::Easy, 17);
        easy.deferred = true;
        let mut pair = Pair::new(hard, easy, PortPick::Linux, 16);
        pair.tie();
        pair.run(Duration::from_secs(4));
        assert_eq!(pair.hard_wire.sent.datagrams, 0);
        assert_eq!(pair.easy_ended, None, "the easy side waits as long");
        pair.hard.handle_plain_failed(pair.now);
        pair.run(Duration::from_secs(30));
        assert_eq!(pair.hard_ended, Some(Ok(())));
        // A plain punch that never fails: the deferred attempt gives up
        // without sending.
        let mut hard = setup(Role::Hard, 18);
        hard.deferred = true;
        let mut pair = Pair::new(hard, setup(Role::Easy, 19), PortPick::Linux, 18);
        pair.tie();
        pair.run(Duration::from_secs(60));
        assert_eq!(pair.hard_wire.sent.datagrams, 0);
        assert_eq!(
            pair.hard_ended,
            Some(Err(AttemptError::PlainWait(PLAIN_WAIT)))
        );
    }

    #[test]
    fn a_won_attempt_without_a_connection_fails_after_the_connect_wait() {
        let mut pair = Pair::default_with(PortPick::Linux, 20);
        pair.tie();
        while pair.dialed.is_none() {
            pair.run(Duration::from_millis(10));
        }
        // The dial from the winning socket fails.
        pair.hard
            .handle_dial_failed(crate::dcutr::attempts::DialFailure::HandshakeTimedOut);
        assert!(matches!(
            pair.hard.poll_event(),
            Some(Event::Ended(Err(AttemptError::DialFailed(_))))
        ));
    }
}
