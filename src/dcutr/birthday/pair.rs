//! Two attempts against each other on a simulated network with virtual
//! time, in the way of quinn-proto's `Pair`: the hard side's NAT maps every
//! socket to a random port, the relayed stream and the direct path have
//! their delays, and everything that reaches the wire is counted.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    time::{Duration, Instant},
};

use rand::{RngExt as _, SeedableRng, rngs::StdRng};

use super::{
    limits::Cost,
    machine::{Attempt, AttemptError, Event, Setup, Transmit},
    plan::Role,
    protocol::{Message, Nonce},
};

/// How the hard side's NAT picks a port for a new mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PortPick {
    /// `1024 + random_u16 % 64512`, as Linux's `fully-random` does.
    Linux,
    /// Uniformly from 1024-65535.
    Uniform,
}

/// What one side put on the wire.
#[derive(Debug, Default)]
pub(super) struct Wire {
    pub(super) sent: Cost,
    pub(super) destinations: HashSet<SocketAddr>,
    /// The TTLs its datagrams carried (`None`: the default).
    pub(super) ttls: HashSet<Option<u8>>,
}

enum Delivery {
    /// Over the relayed stream, to the hard (true) or easy side.
    Message(bool, Message),
    /// A probe arriving at the hard side's NAT on this public port.
    Probe(u16, Vec<u8>),
    /// The direct QUIC connection is up on both sides.
    Connected,
}

pub(super) struct Pair {
    pub(super) now: Instant,
    pub(super) hard: Attempt,
    pub(super) easy: Attempt,
    pub(super) relay_delay: Duration,
    pub(super) direct_delay: Duration,
    pick: PortPick,
    rng: StdRng,
    /// The hard NAT's mappings: public port -> (socket index, local port).
    mappings: HashMap<u16, (u16, u16)>,
    in_flight: Vec<(Instant, Delivery)>,
    pub(super) hard_wire: Wire,
    pub(super) easy_wire: Wire,
    pub(super) hard_ended: Option<Result<(), AttemptError>>,
    pub(super) easy_ended: Option<Result<(), AttemptError>>,
    /// When the hard side asked to dial from its winning socket.
    pub(super) dialed: Option<(Instant, u16)>,
    /// The stream is cut: messages are lost.
    pub(super) stream_cut: bool,
}

pub(super) const EASY_PUBLIC: &str = "198.51.100.20:40000";
pub(super) const HARD_PUBLIC: &str = "203.0.113.30:31999";
const NONCE: Nonce = Nonce([5; 16]);

pub(super) fn setup(role: Role, seed: u64) -> Setup {
    Setup {
        role,
        target: match role {
            Role::Hard => EASY_PUBLIC.parse().unwrap(),
            Role::Easy => HARD_PUBLIC.parse().unwrap(),
        },
        nonce: NONCE,
        deferred: false,
        sockets: 256,
        probes: 1024,
        gap: Duration::from_millis(1),
        ttl: 2,
        budget: match role {
            Role::Hard => Cost {
                datagrams: 256,
                bytes: 256 * 60,
            },
            Role::Easy => Cost {
                datagrams: 1024,
                bytes: 1024 * 60,
            },
        },
        seed,
    }
}

impl Pair {
    pub(super) fn new(hard: Setup, easy: Setup, pick: PortPick, seed: u64) -> Self {
        let now = Instant::now();
        Self {
            now,
            hard: Attempt::new(hard, now),
            easy: Attempt::new(easy, now),
            relay_delay: Duration::from_millis(25),
            direct_delay: Duration::from_millis(25),
            pick,
            rng: StdRng::seed_from_u64(seed),
            mappings: HashMap::new(),
            in_flight: Vec::new(),
            hard_wire: Wire::default(),
            easy_wire: Wire::default(),
            hard_ended: None,
            easy_ended: None,
            dialed: None,
            stream_cut: false,
        }
    }

    /// The default pair: 256 × 1024, 25 ms each way.
    pub(super) fn default_with(pick: PortPick, seed: u64) -> Self {
        Self::new(
            setup(Role::Hard, seed),
            setup(Role::Easy, seed ^ 1),
            pick,
            seed,
        )
    }

    /// Both sides' DCUtR candidates arrive: each side's address is tied.
    pub(super) fn tie(&mut self) {
        let easy: SocketAddr = EASY_PUBLIC.parse().unwrap();
        let hard: SocketAddr = HARD_PUBLIC.parse().unwrap();
        self.hard.handle_tie(&[easy], self.now);
        self.easy.handle_tie(&[hard], self.now);
    }

    fn pick_port(&mut self) -> u16 {
        loop {
            let port = match self.pick {
                PortPick::Linux => 1024 + self.rng.random::<u16>() % 64512,
                PortPick::Uniform => self.rng.random_range(1024..=u16::MAX),
            };
            if !self.mappings.contains_key(&port) {
                return port;
            }
        }
    }

    /// Runs both sides until both ended or `limit` passed.
    pub(super) fn run(&mut self, limit: Duration) {
        let end = self.now + limit;
        while self.now < end && (self.hard_ended.is_none() || self.easy_ended.is_none()) {
            self.step();
            let next = [
                self.hard.poll_timeout(),
                self.easy.poll_timeout(),
                self.in_flight.iter().map(|(at, _)| *at).min(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(next) if next > self.now => self.now = next.min(end),
                Some(_) => {}
                None => break,
            }
        }
    }

    fn step(&mut self) {
        let now = self.now;
        // Deliver what is due.
        let (due, later): (Vec<_>, Vec<_>) =
            self.in_flight.drain(..).partition(|(at, _)| *at <= now);
        self.in_flight = later;
        for (_, delivery) in due {
            match delivery {
                Delivery::Message(_, _) if self.stream_cut => {}
                Delivery::Message(true, message) => self.hard.handle_message(message, now),
                Delivery::Message(false, message) => self.easy.handle_message(message, now),
                Delivery::Probe(port, datagram) => {
                    if let Some((index, local)) = self.mappings.get(&port).copied() {
                        let from = EASY_PUBLIC.parse().unwrap();
                        self.hard
                            .handle_datagram(index, local, from, &datagram, now);
                    }
                }
                Delivery::Connected => {
                    self.hard.handle_direct();
                    self.easy.handle_direct();
                }
            }
        }
        for hard in [true, false] {
            let attempt = if hard { &mut self.hard } else { &mut self.easy };
            attempt.handle_timeout(now);
            let mut transmits = Vec::new();
            while let Some(transmit) = attempt.poll_transmit(now) {
                transmits.push(transmit);
            }
            let mut messages = Vec::new();
            while let Some(message) = attempt.poll_message() {
                messages.push(message);
            }
            let mut events = Vec::new();
            while let Some(event) = attempt.poll_event() {
                events.push(event);
            }
            for transmit in transmits {
                self.put_on_wire(transmit);
            }
            for message in messages {
                self.in_flight
                    .push((now + self.relay_delay, Delivery::Message(!hard, message)));
            }
            for event in events {
                match event {
                    Event::Dial { port, .. } => {
                        self.dialed = Some((now, port));
                        // A QUIC handshake: one round trip on the direct path.
                        self.in_flight
                            .push((now + 2 * self.direct_delay, Delivery::Connected));
                    }
                    Event::Ended(outcome) if hard => self.hard_ended = Some(outcome),
                    Event::Ended(outcome) => self.easy_ended = Some(outcome),
                }
            }
        }
    }

    fn put_on_wire(&mut self, transmit: Transmit) {
        match transmit {
            Transmit::Open {
                index,
                to,
                ttl,
                payload,
            } => {
                self.hard_wire
                    .sent
                    .add(crate::net::wire::wire_bytes(to, payload.len()));
                self.hard_wire.destinations.insert(to);
                self.hard_wire.ttls.insert(Some(ttl));
                // The NAT maps the socket; the datagram dies a hop later.
                let port = self.pick_port();
                self.mappings.insert(port, (index, 50_000 + index));
            }
            Transmit::Probe { to, payload } => {
                self.easy_wire
                    .sent
                    .add(crate::net::wire::wire_bytes(to, payload.len()));
                self.easy_wire.destinations.insert(to);
                self.easy_wire.ttls.insert(None);
                if to.ip() == HARD_PUBLIC.parse::<SocketAddr>().unwrap().ip() {
                    self.in_flight.push((
                        self.now + self.direct_delay,
                        Delivery::Probe(to.port(), payload),
                    ));
                }
            }
        }
    }
}
