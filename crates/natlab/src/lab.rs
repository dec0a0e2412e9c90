//! The built lab and its teardown.

use std::sync::Arc;
use std::time::Duration;

use crate::builder::LabBuilder;
use crate::forwarder::Forwarder;
use crate::netns;
use crate::node::{Host, Router};
use crate::process::Registry;

/// A running NAT lab: an "internet" namespace, a relay, optional public
/// hosts, and routers with hosts behind them, each in its own network
/// namespace. Nothing is connected to the host's own namespace.
///
/// Dropping the lab (also while panicking) stops the delay forwarders, kills
/// every process started in it, and deletes every namespace it created.
#[derive(Debug)]
pub struct Lab {
    pub(crate) prefix: String,
    pub(crate) internet: String,
    pub(crate) relay: Host,
    pub(crate) public_hosts: Vec<Host>,
    pub(crate) routers: Vec<Router>,
    pub(crate) dual_stack: bool,
    pub(crate) wan_delay: Duration,
    pub(crate) wan_loss_percent: f64,
    pub(crate) teardown: Teardown,
}

impl Lab {
    /// Starts describing a lab.
    pub fn builder() -> LabBuilder {
        LabBuilder::default()
    }

    /// The public relay host, with addresses `203.0.113.10` (primary) and
    /// `203.0.113.11`, and in a dual-stack lab also `2001:db8:113::10` and
    /// `2001:db8:113::11`.
    pub fn relay(&self) -> &Host {
        &self.relay
    }

    /// The host called `name` (`"relay"`, a public host, or a host behind a
    /// router such as `"a0"`).
    ///
    /// # Panics
    ///
    /// If there is no such host; see [`get_host`](Self::get_host).
    pub fn host(&self, name: &str) -> &Host {
        self.get_host(name).unwrap_or_else(|| {
            let names: Vec<&str> = self.hosts().map(Host::name).collect();
            panic!("natlab: no host {name:?}; hosts are {names:?}")
        })
    }

    /// The host called `name`, if there is one.
    pub fn get_host(&self, name: &str) -> Option<&Host> {
        self.hosts().find(|host| host.name() == name)
    }

    /// Every host: the relay, public hosts, then the hosts behind each router.
    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        std::iter::once(&self.relay)
            .chain(&self.public_hosts)
            .chain(self.routers.iter().flat_map(Router::hosts))
    }

    /// The router called `name`.
    ///
    /// # Panics
    ///
    /// If there is no such router; see [`get_router`](Self::get_router).
    pub fn router(&self, name: &str) -> &Router {
        self.get_router(name).unwrap_or_else(|| {
            let names: Vec<&str> = self.routers.iter().map(Router::name).collect();
            panic!("natlab: no router {name:?}; routers are {names:?}")
        })
    }

    /// The router called `name`, if there is one.
    pub fn get_router(&self, name: &str) -> Option<&Router> {
        self.routers.iter().find(|router| router.name() == name)
    }

    /// Every router, in builder order.
    pub fn routers(&self) -> &[Router] {
        &self.routers
    }

    /// The router `host` sits behind, if any.
    pub fn router_of(&self, host: &Host) -> Option<&Router> {
        self.routers.iter().find(|router| {
            router
                .hosts()
                .iter()
                .any(|candidate| candidate.namespace() == host.namespace())
        })
    }

    /// The name of the "internet" namespace that routes between the nodes;
    /// it holds the gateway address `192.0.2.1` on every link.
    pub fn internet_namespace(&self) -> &str {
        &self.internet
    }

    /// The prefix shared by all of this lab's namespace names
    /// (`natlab-<pid>-<counter>`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The names of all namespaces the lab created.
    pub fn namespaces(&self) -> &[String] {
        &self.teardown.namespaces
    }

    /// Whether the lab routes IPv6 as well as IPv4 (see
    /// [`LabBuilder::dual_stack`]).
    pub fn dual_stack(&self) -> bool {
        self.dual_stack
    }

    /// The one-way delay of every WAN link.
    pub fn wan_delay(&self) -> Duration {
        self.wan_delay
    }

    /// The loss, in percent, of every WAN link in each direction.
    pub fn wan_loss_percent(&self) -> f64 {
        self.wan_loss_percent
    }
}

/// Everything a lab (or a half-built one) must undo, in order.
#[derive(Debug, Default)]
pub(crate) struct Teardown {
    pub(crate) namespaces: Vec<String>,
    pub(crate) forwarders: Vec<Forwarder>,
    pub(crate) registry: Arc<Registry>,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        for forwarder in &mut self.forwarders {
            forwarder.stop();
        }
        self.forwarders.clear();
        self.registry.kill_all();
        for namespace in self.namespaces.iter().rev() {
            netns::destroy(namespace);
        }
        if !self.namespaces.is_empty() {
            tracing::debug!(count = self.namespaces.len(), "natlab: lab torn down");
        }
    }
}
