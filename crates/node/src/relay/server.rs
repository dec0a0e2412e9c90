//! libp2p-relay's server behind a wrapper that keeps one reserving
//! connection per peer and counts what the relay holds.
//!
//! libp2p-relay 0.22 routes a circuit to *any* connection of the destination
//! that holds a reservation (the first one its `HashMap` yields). A peer that
//! restarts with the same identity reserves again on a new connection while
//! its dead connection still counts as reserving until the QUIC idle timeout
//! ends it, so a circuit to the restarted peer can go over the dead one and
//! time out. The wrapper closes the older reserving connections of a peer as
//! soon as the peer holds a *new* reservation (not a renewal) on another
//! connection. A libp2p relay client reserves on a new connection only when
//! it has none left to the relay (it always reserves on its first
//! connection), so a live peer is not cut off by it.
//!
//! It also sends a destination one circuit request (STOP) at a time. The
//! libp2p-relay 0.22 *client* hands at most one accepted inbound circuit to
//! its transport per poll of its connection handler and does not ask to be
//! polled again, so when two STOP requests reach a reserving peer within one
//! poll, the second waits until something else wakes that connection (in the
//! lab: until the dialer's 10 s timeout resets its stream). Sent one at a
//! time, each is handed over before the next arrives
//! (`eight_peers_behind_one_nat_spread_over_the_range_and_all_punch` in
//! `crates/lab/tests/shared_nat.rs`; `circuits_to_one_destination_go_one_at_a_time`
//! below). A request waits for the previous one's answer, or at most
//! [`STOP_WAIT`].
//!
//! To know which connection a reservation was accepted on, the wrapper polls
//! the inner behaviour right after it forwarded each handler event and each
//! swarm event: libp2p-relay queues the events of a handler event during
//! `on_connection_handler_event`, so whatever comes out then was caused by
//! that connection.

use std::{
    collections::{HashMap, VecDeque},
    pin::Pin,
    task::{Context, Poll, Waker},
    time::Duration,
};

use futures::FutureExt;
use tokio::time::{Instant, Sleep};

use libp2p::{
    Multiaddr, PeerId,
    core::{Endpoint, transport::PortUse},
    relay,
    swarm::{
        CloseConnection, ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm,
        NetworkBehaviour, NotifyHandler, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    },
};

/// What the relay holds now and has held at most, and what it refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RelayLoad {
    /// Peers holding a reservation.
    pub(crate) reservations: usize,
    /// Circuits open (accepted and not yet closed).
    pub(crate) circuits: usize,
    /// The most reservations held at once.
    pub(crate) peak_reservations: usize,
    /// The most circuits open at once.
    pub(crate) peak_circuits: usize,
    /// Reservations accepted (new and renewed).
    pub(crate) reservations_accepted: u64,
    /// Reservations refused, by the status the relay answered with.
    pub(crate) reservations_denied: u64,
    /// Circuits accepted.
    pub(crate) circuits_accepted: u64,
    /// Circuits refused with `RESOURCE_LIMIT_EXCEEDED`.
    pub(crate) circuits_denied_limit: u64,
    /// Circuits refused because the destination holds no reservation.
    pub(crate) circuits_denied_no_reservation: u64,
    /// Circuits refused for another reason (e.g. the destination did not
    /// answer).
    pub(crate) circuits_denied_other: u64,
    /// Older reserving connections closed because their peer reserved on a
    /// new one.
    pub(crate) stale_closed: u64,
}

impl RelayLoad {
    /// The figures as `key=value` pairs, the form of the relay's `relay load`
    /// log line.
    pub(crate) fn to_line(&self) -> String {
        format!(
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

/// What caused the inner behaviour's queued actions.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// A handler event of this connection.
    Handler(PeerId, ConnectionId),
    /// A connection of this peer closed.
    Closed(PeerId),
    /// Anything else (other swarm events, or a poll).
    Other,
}

type Action = ToSwarm<relay::Event, THandlerInEvent<relay::Behaviour>>;

/// The longest a circuit request to a destination waits for the answer to
/// the one before it (libp2p-relay gives a STOP exchange 60 s).
pub(crate) const STOP_WAIT: Duration = Duration::from_secs(5);

/// Circuit requests (STOP) per destination connection: at most one in
/// flight on each, the others held back in order.
#[derive(Debug)]
struct StopQueue<A> {
    /// Per connection: when the one in flight was sent, and those held.
    connections: HashMap<ConnectionId, (Instant, VecDeque<A>)>,
}

impl<A> Default for StopQueue<A> {
    fn default() -> Self {
        Self {
            connections: HashMap::new(),
        }
    }
}

impl<A> StopQueue<A> {
    /// A request to `connection`: returned if it may go now, else held.
    fn request(&mut self, connection: ConnectionId, action: A, now: Instant) -> Option<A> {
        match self.connections.get_mut(&connection) {
            Some((_, held)) => {
                held.push_back(action);
                None
            }
            None => {
                self.connections.insert(connection, (now, VecDeque::new()));
                Some(action)
            }
        }
    }

    /// The request in flight on `connection` was answered: the next one to
    /// send, if any.
    fn answered(&mut self, connection: ConnectionId, now: Instant) -> Option<A> {
        let (since, held) = self.connections.get_mut(&connection)?;
        match held.pop_front() {
            Some(next) => {
                *since = now;
                Some(next)
            }
            None => {
                self.connections.remove(&connection);
                None
            }
        }
    }

    /// `connection` closed: everything held for it.
    fn closed(&mut self, connection: ConnectionId) -> VecDeque<A> {
        self.connections
            .remove(&connection)
            .map(|(_, held)| held)
            .unwrap_or_default()
    }

    /// The next request of each connection whose request in flight has
    /// waited `wait` or longer.
    fn overdue(&mut self, wait: Duration, now: Instant) -> Vec<A> {
        let overdue: Vec<ConnectionId> = self
            .connections
            .iter()
            .filter(|(_, (since, held))| !held.is_empty() && now >= *since + wait)
            .map(|(c, _)| *c)
            .collect();
        overdue
            .into_iter()
            .filter_map(|c| self.answered(c, now))
            .collect()
    }

    /// When the earliest held request becomes overdue.
    fn deadline(&self, wait: Duration) -> Option<Instant> {
        self.connections
            .values()
            .filter(|(_, held)| !held.is_empty())
            .map(|(since, _)| *since + wait)
            .min()
    }
}

/// libp2p-relay's server, keeping the newest reserving connection of each
/// peer (see the module documentation).
pub(crate) struct Server {
    inner: relay::Behaviour,
    /// Each peer's connections that hold a reservation, oldest first.
    reserving: HashMap<PeerId, Vec<ConnectionId>>,
    /// Open circuits per (source, destination) peer.
    circuits: HashMap<(PeerId, PeerId), usize>,
    /// Circuits already counted closed because their destination's
    /// connection closed; the source's handler reports each once more.
    closed_early: HashMap<(PeerId, PeerId), usize>,
    /// Circuit requests per destination connection, one at a time.
    stops: StopQueue<Action>,
    /// Wakes `poll` when a held request has waited [`STOP_WAIT`].
    stop_timer: Option<Pin<Box<Sleep>>>,
    queue: VecDeque<Action>,
    waker: Option<Waker>,
    load: RelayLoad,
}

impl Server {
    pub(crate) fn new(inner: relay::Behaviour) -> Self {
        Self {
            inner,
            reserving: HashMap::new(),
            circuits: HashMap::new(),
            closed_early: HashMap::new(),
            stops: StopQueue::default(),
            stop_timer: None,
            queue: VecDeque::new(),
            waker: None,
            load: RelayLoad::default(),
        }
    }

    /// What the relay holds and refused so far.
    pub(crate) fn load(&self) -> &RelayLoad {
        &self.load
    }

    /// Takes every action the inner behaviour queued, caused by `source`.
    fn drain(&mut self, source: Source) {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        while let Poll::Ready(action) = self.inner.poll(&mut cx) {
            self.take(action, source);
        }
        if !self.queue.is_empty()
            && let Some(waker) = self.waker.take()
        {
            waker.wake();
        }
    }

    fn take(&mut self, action: Action, source: Source) {
        if let ToSwarm::GenerateEvent(event) = &action {
            self.on_inner_event(event, source);
        }
        if let (
            ToSwarm::NotifyHandler {
                peer_id,
                handler: NotifyHandler::One(target),
                ..
            },
            Source::Handler(from_peer, from_connection),
        ) = (&action, source)
        {
            if *peer_id == from_peer && *target != from_connection {
                // libp2p-relay answers a circuit request (HOP CONNECT) on
                // the source's connection by sending STOP on the
                // destination's: the only action it addresses to another
                // connection under the source's peer id.
                let target = *target;
                match self.stops.request(target, action, Instant::now()) {
                    Some(action) => self.queue.push_back(action),
                    None => self.arm_stop_timer(),
                }
                return;
            } else if *peer_id != from_peer {
                // A destination's handler finished a STOP exchange (accept
                // or deny the source's circuit): send the next one.
                self.queue
                    .extend(self.stops.answered(from_connection, Instant::now()));
            }
        }
        self.queue.push_back(action);
    }

    fn arm_stop_timer(&mut self) {
        self.stop_timer = self
            .stops
            .deadline(STOP_WAIT)
            .map(|at| Box::pin(tokio::time::sleep_until(at)));
    }

    fn on_inner_event(&mut self, event: &relay::Event, source: Source) {
        match event {
            relay::Event::ReservationReqAccepted {
                src_peer_id,
                renewed,
            } => {
                self.load.reservations_accepted += 1;
                match source {
                    Source::Handler(peer, connection) if peer == *src_peer_id => {
                        self.reserved(peer, connection, *renewed)
                    }
                    _ => {
                        tracing::debug!(peer = %src_peer_id, ?source, "a reservation of unknown connection")
                    }
                }
            }
            relay::Event::ReservationTimedOut { src_peer_id } => {
                if let Source::Handler(peer, connection) = source
                    && peer == *src_peer_id
                {
                    self.unreserved(peer, connection);
                }
            }
            relay::Event::ReservationReqDenied {
                src_peer_id,
                status,
            } => {
                self.load.reservations_denied += 1;
                tracing::info!(peer = %src_peer_id, ?status, "refused a reservation");
            }
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
            relay::Event::CircuitReqDenied {
                src_peer_id,
                dst_peer_id,
                status,
            } => {
                match status {
                    relay::StatusCode::ResourceLimitExceeded => {
                        self.load.circuits_denied_limit += 1
                    }
                    relay::StatusCode::NoReservation => {
                        self.load.circuits_denied_no_reservation += 1
                    }
                    _ => self.load.circuits_denied_other += 1,
                }
                tracing::info!(src = %src_peer_id, dst = %dst_peer_id, ?status, "refused a circuit");
            }
            _ => {}
        }
        self.update_counts();
    }

    /// `peer` holds a reservation on `connection`: a new one closes its
    /// older reserving connections.
    fn reserved(&mut self, peer: PeerId, connection: ConnectionId, renewed: bool) {
        let connections = self.reserving.entry(peer).or_default();
        if !renewed {
            for old in connections.drain(..).filter(|c| *c != connection) {
                tracing::info!(
                    %peer,
                    old = %old,
                    new = %connection,
                    "closing the older reserving connection of a peer that reserved on a new one (it restarted or moved its socket)"
                );
                self.load.stale_closed += 1;
                self.queue.push_back(ToSwarm::CloseConnection {
                    peer_id: peer,
                    connection: CloseConnection::One(old),
                });
            }
        }
        if !connections.contains(&connection) {
            connections.push(connection);
        }
    }

    fn unreserved(&mut self, peer: PeerId, connection: ConnectionId) {
        if let Some(connections) = self.reserving.get_mut(&peer) {
            connections.retain(|c| *c != connection);
            if connections.is_empty() {
                self.reserving.remove(&peer);
            }
        }
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

    fn update_counts(&mut self) {
        self.load.reservations = self.reserving.len();
        self.load.circuits = self.circuits.values().sum();
        self.load.peak_reservations = self.load.peak_reservations.max(self.load.reservations);
        self.load.peak_circuits = self.load.peak_circuits.max(self.load.circuits);
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

impl NetworkBehaviour for Server {
    type ConnectionHandler = <relay::Behaviour as NetworkBehaviour>::ConnectionHandler;
    type ToSwarm = relay::Event;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner.handle_established_inbound_connection(
            connection_id,
            peer,
            local_addr,
            remote_addr,
        )
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.inner.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        let source = match &event {
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                connection_id,
                ..
            }) => {
                self.unreserved(*peer_id, *connection_id);
                // Held circuit requests to a closed connection go to the
                // swarm, which drops them, as libp2p-relay's own would be.
                self.queue.extend(self.stops.closed(*connection_id));
                Source::Closed(*peer_id)
            }
            _ => Source::Other,
        };
        self.inner.on_swarm_event(event);
        self.drain(source);
        self.update_counts();
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.inner
            .on_connection_handler_event(peer_id, connection_id, event);
        self.drain(Source::Handler(peer_id, connection_id));
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Action> {
        while let Some(timer) = &mut self.stop_timer {
            if timer.poll_unpin(cx).is_pending() {
                break;
            }
            let overdue = self.stops.overdue(STOP_WAIT, Instant::now());
            if !overdue.is_empty() {
                tracing::debug!(
                    count = overdue.len(),
                    "circuit requests waited too long for the one before them"
                );
            }
            self.queue.extend(overdue);
            self.arm_stop_timer();
        }
        if let Some(action) = self.queue.pop_front() {
            return Poll::Ready(action);
        }
        // Nothing should be left in the inner behaviour; poll it with the
        // real waker all the same, so that it can wake the swarm.
        if let Poll::Ready(action) = self.inner.poll(cx) {
            self.take(action, Source::Other);
            return Poll::Ready(self.queue.pop_front().expect("just queued"));
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> Server {
        Server::new(relay::Behaviour::new(
            PeerId::random(),
            relay::Config::default(),
        ))
    }

    fn closes(server: &mut Server) -> Vec<ConnectionId> {
        server
            .queue
            .drain(..)
            .filter_map(|a| match a {
                ToSwarm::CloseConnection {
                    connection: CloseConnection::One(id),
                    ..
                } => Some(id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_new_reservation_closes_the_older_reserving_connections_and_a_renewal_does_not() {
        let mut server = server();
        let peer = PeerId::random();
        let (old, new) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
        );
        let accepted = |renewed| relay::Event::ReservationReqAccepted {
            src_peer_id: peer,
            renewed,
        };
        server.on_inner_event(&accepted(false), Source::Handler(peer, old));
        assert!(closes(&mut server).is_empty(), "the first reservation");
        server.on_inner_event(&accepted(true), Source::Handler(peer, old));
        assert!(closes(&mut server).is_empty(), "a renewal");
        assert_eq!(server.load().reservations, 1);
        server.on_inner_event(&accepted(false), Source::Handler(peer, new));
        assert_eq!(closes(&mut server), vec![old], "the restarted peer's");
        assert_eq!(server.reserving[&peer], vec![new]);
        assert_eq!(server.load().stale_closed, 1);
        // Another peer's reservation touches nobody else.
        let other = PeerId::random();
        server.on_inner_event(
            &relay::Event::ReservationReqAccepted {
                src_peer_id: other,
                renewed: false,
            },
            Source::Handler(other, ConnectionId::new_unchecked(3)),
        );
        assert!(closes(&mut server).is_empty());
        assert_eq!(server.load().reservations, 2);
        assert_eq!(server.load().peak_reservations, 2);
    }

    #[test]
    fn circuits_to_one_destination_go_one_at_a_time() {
        let mut stops = StopQueue::default();
        let (b0, b1) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
        );
        let t = Instant::now();
        assert_eq!(stops.request(b0, 1, t), Some(1), "the first goes");
        assert_eq!(stops.request(b0, 2, t), None, "the second waits");
        assert_eq!(stops.request(b0, 3, t), None);
        assert_eq!(
            stops.request(b1, 10, t),
            Some(10),
            "another destination's goes"
        );
        assert_eq!(stops.deadline(STOP_WAIT), Some(t + STOP_WAIT));
        assert_eq!(stops.answered(b0, t), Some(2), "in order");
        assert!(stops.overdue(STOP_WAIT, t + STOP_WAIT / 2).is_empty());
        let late = t + STOP_WAIT;
        assert_eq!(
            stops.overdue(STOP_WAIT, late),
            vec![3],
            "an unanswered one stops blocking"
        );
        assert_eq!(stops.answered(b0, late), None);
        assert_eq!(stops.request(b0, 4, late), Some(4), "idle again");
        assert_eq!(stops.request(b0, 5, late), None);
        assert_eq!(stops.closed(b0), VecDeque::from([5]));
        assert_eq!(stops.answered(b1, late), None);
        assert_eq!(stops.deadline(STOP_WAIT), None);
    }

    #[test]
    fn a_circuit_the_destination_closed_first_counts_once() {
        let mut server = server();
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
        server.on_inner_event(&accepted, Source::Handler(src, src_conn));
        server.on_inner_event(&accepted, Source::Handler(src, src_conn));
        assert_eq!(server.load().circuits, 2);
        // The destination's connection closes: reported now, and again by
        // the source's handler.
        server.on_inner_event(&closed(), Source::Closed(dst));
        assert_eq!(server.load().circuits, 1);
        server.on_inner_event(&closed(), Source::Handler(src, src_conn));
        assert_eq!(
            server.load().circuits,
            1,
            "the second report of one circuit"
        );
        server.on_inner_event(&closed(), Source::Handler(src, src_conn));
        assert_eq!(server.load().circuits, 0);
        assert_eq!(server.load().peak_circuits, 2);
        assert_eq!(server.load().circuits_accepted, 2);
    }

    /// The lab reads this line (`punchport_lab::RelayLoad::parse`, tested
    /// on the same text).
    #[test]
    fn the_load_line_is_key_value_pairs() {
        let load = RelayLoad {
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
            load.to_line(),
            "reservations=3 circuits=2 peak_reservations=5 peak_circuits=7 reservations_accepted=9 reservations_denied=1 circuits_accepted=11 circuits_denied_limit=4 circuits_denied_no_reservation=2 circuits_denied_other=1 stale_closed=6"
        );
    }
}
