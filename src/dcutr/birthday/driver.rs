//! Drives the attempts of every punch: the negotiation streams, the
//! timers, and the sockets of [`io`](super::io). It decides nothing itself:
//! the [`Negotiator`] and each [`Attempt`] do.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    task::{Context, Poll},
    time::Instant,
};

use crate::net::{DialPurpose, PunchSockets, QuicAddr};
use futures::{
    FutureExt as _, SinkExt as _, StreamExt as _, future::BoxFuture, stream::FuturesUnordered,
};
use libp2p_core::{Multiaddr, multiaddr::Protocol};
use libp2p_identity::PeerId;
use libp2p_swarm::{
    ConnectionId, Stream,
    dial_opts::{DialOpts, PeerCondition},
};

use super::{
    AttemptError, BirthdayConfig, BirthdayStats, Mine, Role, io,
    machine::{Attempt, Event as MachineEvent, Transmit},
    negotiate::{ATTEMPTS_PER_RELAYED, Decision, Negotiator, RETRY_AFTER, RETRY_WAIT, SETTLE_WAIT},
    protocol::{self, Link, Message},
};
use crate::dcutr::attempts::{AttemptOutcome, AttemptReport, Attempts, Punch, Side};

/// Something the behaviour carries out for a birthday attempt.
#[derive(Debug)]
pub(crate) enum Action {
    /// Dial (the hard side's winning socket).
    Dial(DialOpts),
    /// An attempt ended: its report.
    Ended(Box<AttemptReport>),
    /// The punch with `peer` has no birthday attempt under way or to come:
    /// a plain failure held for it may be reported.
    Over(PeerId),
}

/// A negotiation stream and what waits to be written to it.
struct LinkState {
    link: Link,
    outbox: VecDeque<Message>,
    /// The peer's hello came.
    heard: bool,
    /// This side has sent its hello (the responder sends it once the
    /// peer's came).
    said: bool,
}

/// The birthday part of the behaviour: drives the attempts of every punch.
pub(crate) struct Birthday {
    negotiator: Negotiator,
    sockets: PunchSockets,
    control: libp2p_stream::Control,
    incoming: Option<libp2p_stream::IncomingStreams>,
    opening: FuturesUnordered<BoxFuture<'static, (PeerId, std::io::Result<Stream>)>>,
    links: HashMap<PeerId, LinkState>,
    hard: HashMap<PeerId, io::HardSockets>,
    probes: HashMap<PeerId, io::Probes>,
    /// The winning sockets' dials.
    dials: HashMap<ConnectionId, (PeerId, u16)>,
    /// Negotiations to open, and to answer, once this side's class is
    /// known (or at the instant given).
    held_opens: Vec<(PeerId, Instant)>,
    held_answers: Vec<(PeerId, Stream, Instant)>,
    queued: VecDeque<Action>,
    timer: Option<(Instant, futures_timer::Delay)>,
}

impl Birthday {
    pub(crate) fn new(
        config: BirthdayConfig,
        sockets: PunchSockets,
        mut control: libp2p_stream::Control,
        seed: u64,
    ) -> Self {
        let incoming = control.accept(protocol::PROTOCOL).ok();
        Self {
            negotiator: Negotiator::new(config, seed),
            sockets,
            control,
            incoming,
            opening: FuturesUnordered::new(),
            links: HashMap::new(),
            hard: HashMap::new(),
            probes: HashMap::new(),
            dials: HashMap::new(),
            held_opens: Vec::new(),
            held_answers: Vec::new(),
            queued: VecDeque::new(),
            timer: None,
        }
    }

    /// A relayed connection to `peer` opened (its record is in
    /// `attempts`); the side that accepted it (DCUtR's initiator) opens the
    /// negotiation.
    pub(crate) fn relayed(&mut self, peer: PeerId, punch: &mut Punch, mine: &Mine, now: Instant) {
        if punch.side != Side::Initiator {
            return;
        }
        punch.birthday.negotiating = true;
        if mine.unsettled() {
            self.held_opens.push((peer, now + SETTLE_WAIT));
        } else {
            self.open(peer);
        }
    }

    fn open(&mut self, peer: PeerId) {
        let mut control = self.control.clone();
        self.opening.push(
            async move {
                let stream = control
                    .open_stream(peer, protocol::PROTOCOL)
                    .await
                    .map_err(std::io::Error::other);
                (peer, stream)
            }
            .boxed(),
        );
    }

    /// DCUtR dials `addresses` of `peer`: the peer's candidates in this
    /// punch, the only addresses an attempt sends to.
    pub(crate) fn advertised(&mut self, punch: &mut Punch, addresses: &[Multiaddr], now: Instant) {
        let record = &mut punch.birthday;
        for addr in addresses {
            if let Ok(quic) = QuicAddr::parse(addr)
                && !record.advertised.contains(&quic.socket)
            {
                record.advertised.push(quic.socket);
            }
        }
        if let Some((_, attempt)) = record.attempt.as_mut() {
            attempt.handle_tie(&record.advertised, now);
        }
    }

    /// One of this side's plain punch dials to the peer failed.
    pub(crate) fn plain_failed(&mut self, punch: &mut Punch, now: Instant) {
        punch.birthday.plain_failed = true;
        if let Some((_, attempt)) = punch.birthday.attempt.as_mut() {
            attempt.handle_plain_failed(now);
        }
    }

    /// What the dial of `connection` is, if it is a birthday dial.
    pub(crate) fn purpose(&self, connection: ConnectionId) -> Option<DialPurpose> {
        self.dials
            .get(&connection)
            .map(|(_, port)| DialPurpose::BirthdayWinner(*port))
    }

    /// A direct connection to the peer of `punch` opened: it ends the
    /// attempt.
    pub(crate) fn direct(&mut self, connection: ConnectionId, punch: &mut Punch) {
        self.dials.remove(&connection);
        punch.birthday.retry_at = None;
        if let Some((_, attempt)) = punch.birthday.attempt.as_mut() {
            attempt.handle_direct();
        }
    }

    /// A dial failed; if it was a winning socket's, its attempt ends.
    pub(crate) fn dial_failed(
        &mut self,
        connection: ConnectionId,
        attempts: &mut Attempts,
        error: &crate::dcutr::attempts::DialFailure,
    ) {
        let Some((peer, _)) = self.dials.remove(&connection) else {
            return;
        };
        if let Some((_, attempt)) = attempts
            .punch_mut(&peer)
            .and_then(|p| p.birthday.attempt.as_mut())
        {
            attempt.handle_dial_failed(error.clone());
        }
    }

    /// The relayed connection of `punch` closed; its record goes with it.
    pub(crate) fn relayed_closed(&mut self, peer: PeerId, punch: &mut Punch, now: Instant) {
        if let Some((_, attempt)) = punch.birthday.attempt.as_mut() {
            attempt.abort(AttemptError::RelayedClosed);
        }
        punch.birthday.retry_at = None;
        if let Some(action) = self.collect(peer, punch, now) {
            self.queued.push_back(action);
        }
        self.links.remove(&peer);
        self.hard.remove(&peer);
        self.probes.remove(&peer);
    }

    /// The next thing to do, if any is due.
    pub(crate) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        attempts: &mut Attempts,
        mine: &Mine,
    ) -> Poll<Action> {
        let now = Instant::now();
        if let Some(action) = self.queued.pop_front() {
            return Poll::Ready(action);
        }
        self.accept(cx, attempts, mine, now);
        self.release_held(attempts, mine, now);
        while let Poll::Ready(Some((peer, result))) = self.opening.poll_next_unpin(cx) {
            match result {
                Ok(stream) => {
                    let Some(punch) = attempts.punch_mut(&peer) else {
                        continue;
                    };
                    let hello = self.negotiator.hello(&mut punch.birthday, mine, None);
                    let mut state = LinkState {
                        link: protocol::link(stream),
                        outbox: VecDeque::new(),
                        heard: false,
                        said: true,
                    };
                    state.outbox.push_back(Message::Hello(hello));
                    self.links.insert(peer, state);
                }
                Err(error) => {
                    tracing::debug!(%peer, %error, "no birthday negotiation (a stock peer, or the relayed connection closed)");
                    if let Some(punch) = attempts.punch_mut(&peer) {
                        punch.birthday.negotiating = false;
                        if let Some(action) = self.collect(peer, punch, now) {
                            self.queued.push_back(action);
                        }
                    }
                }
            }
        }
        self.read_links(cx, attempts, mine, now);
        self.drive(cx, attempts, now);
        self.write_links(cx);
        if let Some(action) = self.queued.pop_front() {
            return Poll::Ready(action);
        }
        self.arm_timer(cx, attempts);
        Poll::Pending
    }

    /// Takes the peers' negotiation streams.
    fn accept(&mut self, cx: &mut Context<'_>, attempts: &mut Attempts, mine: &Mine, now: Instant) {
        while let Some(incoming) = self.incoming.as_mut()
            && let Poll::Ready(next) = incoming.poll_next_unpin(cx)
        {
            let Some((peer, stream)) = next else {
                self.incoming = None;
                break;
            };
            let Some(punch) = attempts.punch_mut(&peer) else {
                continue;
            };
            punch.birthday.negotiating = true;
            if mine.unsettled() {
                self.held_answers.push((peer, stream, now + SETTLE_WAIT));
            } else {
                self.answer(peer, stream);
            }
        }
    }

    fn answer(&mut self, peer: PeerId, stream: Stream) {
        self.links.insert(
            peer,
            LinkState {
                link: protocol::link(stream),
                outbox: VecDeque::new(),
                heard: false,
                said: false,
            },
        );
    }

    /// Opens and answers the negotiations that waited for this side's
    /// class.
    fn release_held(&mut self, attempts: &mut Attempts, mine: &Mine, now: Instant) {
        let ready = |at: &Instant| !mine.unsettled() || now >= *at;
        let (opens, held): (Vec<_>, Vec<_>) =
            self.held_opens.drain(..).partition(|(_, at)| ready(at));
        self.held_opens = held;
        for (peer, _) in opens {
            if attempts.punch_mut(&peer).is_some() {
                self.open(peer);
            }
        }
        let (answers, held): (Vec<_>, Vec<_>) = self
            .held_answers
            .drain(..)
            .partition(|(_, _, at)| ready(at));
        self.held_answers = held;
        for (peer, stream, _) in answers {
            if attempts.punch_mut(&peer).is_some() {
                self.answer(peer, stream);
            }
        }
        // The initiator's second negotiation.
        for (peer, punch) in attempts.punches_mut() {
            let record = &mut punch.birthday;
            let due = record.retry_at.is_some_and(|at| now >= at);
            if !due {
                continue;
            }
            record.retry_at = None;
            if punch.side == Side::Initiator && !punch.ended {
                record.negotiating = true;
                self.links.remove(peer);
                let peer = *peer;
                self.open(peer);
            }
        }
    }

    /// Reads what the peers sent.
    fn read_links(
        &mut self,
        cx: &mut Context<'_>,
        attempts: &mut Attempts,
        mine: &Mine,
        now: Instant,
    ) {
        let ttl = self.sockets.opener_ttl();
        let mut closed = Vec::new();
        for (peer, state) in self.links.iter_mut() {
            loop {
                let message = match state.link.poll_next_unpin(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Some(Ok(message))) => Message::try_from(message)
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
                    Poll::Ready(Some(Err(error))) => Err(std::io::Error::other(error)),
                    Poll::Ready(None) => Err(std::io::ErrorKind::UnexpectedEof.into()),
                };
                let Some(punch) = attempts.punch_mut(peer) else {
                    closed.push(*peer);
                    break;
                };
                let message = match message {
                    Ok(message) => message,
                    Err(error) => {
                        tracing::debug!(%peer, %error, "the birthday negotiation stream ended");
                        closed.push(*peer);
                        break;
                    }
                };
                match message {
                    Message::Hello(theirs) if !state.heard => {
                        state.heard = true;
                        if !state.said {
                            let hello = self.negotiator.hello(
                                &mut punch.birthday,
                                mine,
                                Some(theirs.attempt),
                            );
                            state.outbox.push_back(Message::Hello(hello));
                            state.said = true;
                        }
                        punch.birthday.negotiating = false;
                        let decision =
                            self.negotiator
                                .decide(*peer, &mut punch.birthday, &theirs, ttl, now);
                        log_decision(*peer, &decision);
                        if let Decision::Started(role, family) = decision {
                            self.hard.remove(peer);
                            self.probes.remove(peer);
                            match (role, mine.punch(family)) {
                                (Role::Hard, Some(punch)) => {
                                    self.hard.insert(*peer, io::HardSockets::new(punch.ip()));
                                }
                                (Role::Easy, Some(punch)) => {
                                    self.probes
                                        .insert(*peer, io::Probes::new(self.sockets.sender(punch)));
                                }
                                _ => {}
                            }
                        }
                    }
                    Message::Hello(_) => {
                        tracing::debug!(%peer, "a second birthday hello on one stream");
                        closed.push(*peer);
                        break;
                    }
                    other => {
                        if let Some((_, attempt)) = punch.birthday.attempt.as_mut() {
                            attempt.handle_message(other, now);
                        }
                    }
                }
            }
        }
        for peer in closed {
            self.links.remove(&peer);
            if let Some(punch) = attempts.punch_mut(&peer) {
                punch.birthday.negotiating = false;
                if let Some((_, attempt)) = punch.birthday.attempt.as_mut() {
                    attempt.handle_stream_closed();
                }
            }
        }
    }

    /// Runs every attempt: its timers, its datagrams, its messages and
    /// its events.
    fn drive(&mut self, cx: &mut Context<'_>, attempts: &mut Attempts, now: Instant) {
        let mut done = Vec::new();
        for (peer, punch) in attempts.punches_mut() {
            let record = &mut punch.birthday;
            if let Some((_, attempt)) = record.attempt.as_mut() {
                self.run(cx, *peer, attempt, now);
                if attempt.is_ended() {
                    done.push(*peer);
                }
            }
        }
        for peer in done {
            if let Some(punch) = attempts.punch_mut(&peer)
                && let Some(action) = self.collect(peer, punch, now)
            {
                self.queued.push_back(action);
            }
        }
        // A punch whose birthday part is over: a plain failure held for it
        // can be reported.
        for (peer, punch) in attempts.punches_mut() {
            let record = &mut punch.birthday;
            if record.busy() {
                record.held = true;
            } else if record.held {
                record.held = false;
                self.queued.push_back(Action::Over(*peer));
            }
        }
    }

    /// Runs one attempt: the probes that came, its timers, its datagrams,
    /// its messages and its events.
    fn run(&mut self, cx: &mut Context<'_>, peer: PeerId, attempt: &mut Attempt, now: Instant) {
        let mut datagrams = |hard: Option<&mut io::HardSockets>, attempt: &mut Attempt| {
            if let Some(hard) = hard {
                while let Poll::Ready((index, port, from, datagram)) = hard.poll_datagram(cx) {
                    attempt.handle_datagram(index, port, from, &datagram, now);
                }
            }
        };
        datagrams(self.hard.get_mut(&peer), attempt);
        attempt.handle_timeout(now);
        while let Some(transmit) = attempt.poll_transmit(now) {
            match transmit {
                Transmit::Open {
                    index,
                    to,
                    ttl,
                    payload,
                } => {
                    if let Some(hard) = self.hard.get_mut(&peer) {
                        hard.open(index, ttl, to, &payload);
                    }
                }
                Transmit::Probe { to, payload } => {
                    if let Some(probes) = self.probes.get_mut(&peer) {
                        probes.send(to, &payload);
                    }
                }
            }
        }
        // A probe that came while the sockets were still opening.
        datagrams(self.hard.get_mut(&peer), attempt);
        while let Some(message) = attempt.poll_message() {
            if let Some(state) = self.links.get_mut(&peer) {
                state.outbox.push_back(message);
            }
        }
        while let Some(event) = attempt.poll_event() {
            match event {
                MachineEvent::Dial { port, .. } => {
                    // Every socket closes; the transport binds the winner's
                    // port again, for QUIC.
                    self.hard.remove(&peer);
                    let opts = DialOpts::peer_id(peer)
                        .addresses(vec![socket_multiaddr(attempt.target())])
                        .condition(PeerCondition::Always)
                        .build();
                    self.dials.insert(opts.connection_id(), (peer, port));
                    self.queued.push_back(Action::Dial(opts));
                }
                MachineEvent::Ended(_) => {}
            }
        }
    }

    /// Ends `punch`'s attempt if it is over: its report, and the second
    /// attempt if the miss calls for one.
    fn collect(&mut self, peer: PeerId, punch: &mut Punch, now: Instant) -> Option<Action> {
        let ended = punch
            .birthday
            .attempt
            .as_ref()
            .is_some_and(|(_, a)| a.is_ended());
        if !ended {
            return None;
        }
        let (id, attempt) = punch.birthday.attempt.take()?;
        let stats = attempt.stats();
        self.negotiator.settle(id, stats.sent);
        self.hard.remove(&peer);
        if let Some(probes) = self.probes.remove(&peer)
            && probes.failed.0 > 0
        {
            tracing::warn!(%peer, failed = probes.failed.0, error = ?probes.failed.1, "birthday probes that did not leave");
        }
        let outcome = attempt.outcome();
        let retrying = match &outcome {
            Err(error) => {
                error.retries() && !punch.ended && punch.birthday.negotiated < ATTEMPTS_PER_RELAYED
            }
            Ok(()) => false,
        };
        if retrying {
            punch.birthday.retry_at = Some(match punch.side {
                Side::Initiator => now + RETRY_AFTER,
                Side::Responder => now + RETRY_WAIT,
            });
        }
        tracing::debug!(%peer, role = stats.role.as_str(), sockets = stats.sockets, probes = stats.probes, sent = %stats.sent, winner = ?stats.winner, ?outcome, retrying, "birthday attempt ended");
        let report = AttemptReport {
            remote_peer_id: peer,
            side: punch.side,
            attempt: punch.birthday.negotiated.max(1),
            local_addr: None,
            candidates_sent: Vec::new(),
            candidates_received: Vec::new(),
            dialed: match stats.role {
                Role::Hard => vec![socket_multiaddr(attempt.target()).with(Protocol::P2p(peer))],
                Role::Easy => Vec::new(),
            },
            duration: now.saturating_duration_since(attempt.created()),
            since_relayed: Some(now.saturating_duration_since(punch.at)),
            outcome: match outcome {
                Ok(()) => AttemptOutcome::Direct {
                    address: socket_multiaddr(attempt.target()),
                },
                Err(error) => AttemptOutcome::Failed {
                    error: error.into(),
                },
            },
            method: crate::dcutr::attempts::Method::Birthday(BirthdayStats {
                role: stats.role,
                family: crate::net::Family::of(attempt.target().ip()),
                sockets: stats.sockets,
                probes: stats.probes,
                sent: stats.sent,
                winner: stats.winner,
                window_used: stats.started.map(|s| now.saturating_duration_since(s)),
            }),
        };
        Some(Action::Ended(Box::new(report)))
    }

    /// Writes what waits for each peer.
    fn write_links(&mut self, cx: &mut Context<'_>) {
        let mut broken = Vec::new();
        for (peer, state) in self.links.iter_mut() {
            while !state.outbox.is_empty() {
                match state.link.poll_ready_unpin(cx) {
                    Poll::Ready(Ok(())) => {
                        if let Some(message) = state.outbox.pop_front()
                            && state.link.start_send_unpin(message.into()).is_err()
                        {
                            broken.push(*peer);
                            break;
                        }
                    }
                    Poll::Ready(Err(_)) => {
                        broken.push(*peer);
                        break;
                    }
                    Poll::Pending => break,
                }
            }
            if let Poll::Ready(Err(_)) = state.link.poll_flush_unpin(cx) {
                broken.push(*peer);
            }
        }
        for peer in broken {
            self.links.remove(&peer);
        }
    }

    fn arm_timer(&mut self, cx: &mut Context<'_>, attempts: &mut Attempts) {
        let next = attempts
            .punches_mut()
            .flat_map(|(_, punch)| {
                let record = &punch.birthday;
                let attempt = record.attempt.as_ref().and_then(|(_, a)| a.poll_timeout());
                attempt.into_iter().chain(record.retry_at)
            })
            .chain(self.held_opens.iter().map(|(_, at)| *at))
            .chain(self.held_answers.iter().map(|(_, _, at)| *at))
            .min();
        let Some(next) = next else {
            self.timer = None;
            return;
        };
        if self.timer.as_ref().is_none_or(|(at, _)| *at != next) {
            let wait = next.saturating_duration_since(Instant::now());
            self.timer = Some((next, futures_timer::Delay::new(wait)));
        }
        if let Some((_, timer)) = self.timer.as_mut()
            && timer.poll_unpin(cx).is_ready()
        {
            self.timer = None;
            cx.waker().wake_by_ref();
        }
    }

    /// How many attempts run, winning dials are open, negotiation streams
    /// are open, and peers and IPs the limits remember.
    pub(crate) fn sizes(&self) -> [usize; 5] {
        let (running, peers, ips) = self.negotiator.sizes();
        [running, self.dials.len(), self.links.len(), peers, ips]
    }
}

fn log_decision(peer: PeerId, decision: &Decision) {
    match decision {
        Decision::Plain => tracing::debug!(%peer, "no birthday punch: plain punching"),
        Decision::BothHard => {
            tracing::info!(%peer, "both NATs map endpoint-dependently: a birthday punch would need about 65 000 probes per side for a 64 % chance, so the connection stays relayed")
        }
        Decision::NoAddress => {
            tracing::debug!(%peer, "the peer did not say its public address: no birthday punch")
        }
        Decision::Refused(refusal) => tracing::warn!(%peer, "no birthday punch: {refusal}"),
        Decision::Started(role, family) => {
            tracing::info!(%peer, role = role.as_str(), %family, "birthday punch starts")
        }
    }
}

fn socket_multiaddr(socket: SocketAddr) -> Multiaddr {
    QuicAddr {
        socket,
        peer_id: None,
    }
    .to_multiaddr()
}
