//! A running node: its peer id and its events.

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{NodeEvent, WaitError};

/// How long the `wait_for_*` helpers wait.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// A node running as a tokio task. Dropping it stops the node.
#[derive(Debug)]
pub struct Node {
    peer_id: PeerId,
    events: mpsc::UnboundedReceiver<NodeEvent>,
    task: JoinHandle<()>,
    wait: Duration,
}

impl Node {
    pub(crate) fn new(
        peer_id: PeerId,
        events: mpsc::UnboundedReceiver<NodeEvent>,
        task: JoinHandle<()>,
    ) -> Self {
        Self {
            peer_id,
            events,
            task,
            wait: DEFAULT_WAIT,
        }
    }

    /// The node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Sets how long the `wait_for*` helpers wait (30 s by default).
    pub fn set_wait(&mut self, wait: Duration) {
        self.wait = wait;
    }

    /// The next event, or `None` once the node has stopped.
    pub async fn next_event(&mut self) -> Option<NodeEvent> {
        self.events.recv().await
    }

    /// Waits until `matches` returns `Some` for an event, skipping the others.
    pub async fn wait_for<T>(
        &mut self,
        mut matches: impl FnMut(&NodeEvent) -> Option<T>,
    ) -> Result<T, WaitError> {
        let wait = self.wait;
        let search = async {
            while let Some(event) = self.events.recv().await {
                if let Some(found) = matches(&event) {
                    return Ok(found);
                }
            }
            Err(WaitError::Stopped(String::new()))
        };
        tokio::time::timeout(wait, search)
            .await
            .map_err(|_| WaitError::Timeout(wait))?
    }

    /// Waits for the node's first `listening` address.
    pub async fn wait_for_listen_addr(&mut self) -> Result<Multiaddr, WaitError> {
        self.wait_for(|e| match e {
            NodeEvent::Listening { address, .. } => Some(address.clone()),
            _ => None,
        })
        .await
    }

    /// Waits for `ready`.
    pub async fn wait_for_ready(&mut self) -> Result<(), WaitError> {
        self.wait_for(|e| matches!(e, NodeEvent::Ready { .. }).then_some(()))
            .await
    }

    /// Stops the node.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.task.abort();
    }
}
