//! Circuit requests (STOP) to a destination connection, one at a time.

use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use libp2p_swarm::ConnectionId;
use tokio::time::Instant;

/// The longest a circuit request to a destination waits for the answer to
/// the one before it (libp2p-relay gives a STOP exchange 60 s).
pub(crate) const STOP_WAIT: Duration = Duration::from_secs(5);

/// Circuit requests (STOP) per destination connection: at most one in
/// flight on each, the others held back in order.
#[derive(Debug)]
pub(crate) struct StopQueue<A> {
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
    pub(crate) fn request(
        &mut self,
        connection: ConnectionId,
        action: A,
        now: Instant,
    ) -> Option<A> {
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
    pub(crate) fn answered(&mut self, connection: ConnectionId, now: Instant) -> Option<A> {
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
    pub(crate) fn closed(&mut self, connection: ConnectionId) -> VecDeque<A> {
        self.connections
            .remove(&connection)
            .map(|(_, held)| held)
            .unwrap_or_default()
    }

    /// The next request of each connection whose request in flight has
    /// waited `wait` or longer.
    pub(crate) fn overdue(&mut self, wait: Duration, now: Instant) -> Vec<A> {
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
    pub(crate) fn deadline(&self, wait: Duration) -> Option<Instant> {
        self.connections
            .values()
            .filter(|(_, held)| !held.is_empty())
            .map(|(since, _)| *since + wait)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
