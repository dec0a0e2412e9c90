//! The wrapper around libp2p-relay's server behaviour.

use std::{
    collections::VecDeque,
    pin::Pin,
    task::{Context, Poll, Waker},
};

use futures::FutureExt;
use libp2p_core::{Endpoint, Multiaddr, transport::PortUse};
use libp2p_identity::PeerId;
use libp2p_relay as relay;
use libp2p_swarm::{
    CloseConnection, ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour,
    NotifyHandler, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use tokio::time::{Instant, Sleep};

use super::{
    load::{Load, Tally},
    reserving::Reserving,
    stops::{STOP_WAIT, StopQueue},
};

/// What caused the inner behaviour's queued actions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    /// A handler event of this connection.
    Handler(PeerId, ConnectionId),
    /// A connection of this peer closed.
    Closed(PeerId),
    /// Anything else (other swarm events, a poll, a call).
    Other,
}

type Action = ToSwarm<relay::Event, THandlerInEvent<relay::Behaviour>>;

/// libp2p-relay's server behaviour that closes a restarted peer's older
/// reserving connections, sends a destination one circuit request at a
/// time, and counts what it holds (see the [module documentation](super)).
///
/// It implements [`NetworkBehaviour`] with libp2p-relay's events
/// ([`libp2p_relay::Event`]), so it takes `libp2p::relay::Behaviour`'s place
/// in a `#[derive(NetworkBehaviour)]` struct.
pub struct Behaviour {
    inner: relay::Behaviour,
    reserving: Reserving,
    /// Circuit requests per destination connection, one at a time.
    stops: StopQueue<Action>,
    /// Wakes `poll` when a held request has waited `STOP_WAIT`.
    stop_timer: Option<Pin<Box<Sleep>>>,
    queue: VecDeque<Action>,
    waker: Option<Waker>,
    tally: Tally,
}

impl Behaviour {
    /// A relay server of `local_peer_id` with libp2p-relay's `config`, as
    /// `libp2p::relay::Behaviour::new` makes it, behind the wrapper.
    pub fn new(local_peer_id: PeerId, config: relay::Config) -> Self {
        Self::from(relay::Behaviour::new(local_peer_id, config))
    }

    /// What the relay holds now and has held at most, and what it refused.
    pub fn load(&self) -> &Load {
        self.tally.load()
    }

    /// libp2p-relay's [`relay::Behaviour::set_status`]: `Some` fixes the
    /// relay's status, `None` lets it follow the external addresses.
    pub fn set_status(&mut self, status: Option<relay::Status>) {
        self.inner.set_status(status);
        self.drain(Source::Other);
    }

    /// Takes every action the inner behaviour queued, caused by `source`.
    ///
    /// libp2p-relay queues the actions of a handler event during
    /// `on_connection_handler_event`, so whatever comes out right after
    /// one was caused by that connection.
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
        self.tally.count(event, source);
        match event {
            relay::Event::ReservationReqAccepted {
                src_peer_id,
                renewed,
            } => match source {
                Source::Handler(peer, connection) if peer == *src_peer_id => {
                    self.reserved(peer, connection, *renewed)
                }
                _ => {
                    tracing::debug!(peer = %src_peer_id, ?source, "a reservation of unknown connection")
                }
            },
            relay::Event::ReservationTimedOut { src_peer_id } => {
                if let Source::Handler(peer, connection) = source
                    && peer == *src_peer_id
                {
                    self.reserving.unreserved(peer, connection);
                }
            }
            relay::Event::ReservationReqDenied {
                src_peer_id,
                status,
            } => {
                tracing::info!(peer = %src_peer_id, ?status, "refused a reservation");
            }
            relay::Event::CircuitReqDenied {
                src_peer_id,
                dst_peer_id,
                status,
            } => {
                tracing::info!(src = %src_peer_id, dst = %dst_peer_id, ?status, "refused a circuit");
            }
            _ => {}
        }
        self.tally.update(self.reserving.peers());
    }

    /// `peer` holds a reservation on `connection`: a new one closes its
    /// older reserving connections.
    fn reserved(&mut self, peer: PeerId, connection: ConnectionId, renewed: bool) {
        for old in self.reserving.reserved(peer, connection, renewed) {
            tracing::info!(
                %peer,
                old = %old,
                new = %connection,
                "closing the older reserving connection of a peer that reserved on a new one (it restarted or moved its socket)"
            );
            self.tally.stale_closed();
            self.queue.push_back(ToSwarm::CloseConnection {
                peer_id: peer,
                connection: CloseConnection::One(old),
            });
        }
    }
}

impl From<relay::Behaviour> for Behaviour {
    /// Wraps a relay server behaviour built elsewhere.
    fn from(inner: relay::Behaviour) -> Self {
        Self {
            inner,
            reserving: Reserving::default(),
            stops: StopQueue::default(),
            stop_timer: None,
            queue: VecDeque::new(),
            waker: None,
            tally: Tally::default(),
        }
    }
}

impl NetworkBehaviour for Behaviour {
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
                self.reserving.unreserved(*peer_id, *connection_id);
                // Held circuit requests to a closed connection go to the
                // swarm, which drops them, as libp2p-relay's own would be.
                self.queue.extend(self.stops.closed(*connection_id));
                Source::Closed(*peer_id)
            }
            _ => Source::Other,
        };
        self.inner.on_swarm_event(event);
        self.drain(source);
        self.tally.update(self.reserving.peers());
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
            if let Some(action) = self.queue.pop_front() {
                return Poll::Ready(action);
            }
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn behaviour() -> Behaviour {
        Behaviour::new(PeerId::random(), relay::Config::default())
    }

    fn closes(behaviour: &mut Behaviour) -> Vec<ConnectionId> {
        behaviour
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
        let mut behaviour = behaviour();
        let peer = PeerId::random();
        let (old, new) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
        );
        let accepted = |renewed| relay::Event::ReservationReqAccepted {
            src_peer_id: peer,
            renewed,
        };
        behaviour.on_inner_event(&accepted(false), Source::Handler(peer, old));
        assert!(closes(&mut behaviour).is_empty(), "the first reservation");
        behaviour.on_inner_event(&accepted(true), Source::Handler(peer, old));
        assert!(closes(&mut behaviour).is_empty(), "a renewal");
        assert_eq!(behaviour.load().reservations(), 1);
        behaviour.on_inner_event(&accepted(false), Source::Handler(peer, new));
        assert_eq!(closes(&mut behaviour), vec![old], "the restarted peer's");
        assert_eq!(behaviour.reserving.of(&peer), [new]);
        assert_eq!(behaviour.load().stale_closed(), 1);
        // Another peer's reservation touches nobody else.
        let other = PeerId::random();
        behaviour.on_inner_event(
            &relay::Event::ReservationReqAccepted {
                src_peer_id: other,
                renewed: false,
            },
            Source::Handler(other, ConnectionId::new_unchecked(3)),
        );
        assert!(closes(&mut behaviour).is_empty());
        assert_eq!(behaviour.load().reservations(), 2);
        assert_eq!(behaviour.load().peak_reservations(), 2);
    }
}
