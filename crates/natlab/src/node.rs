//! Hosts and routers: the lab's nodes, each in its own network namespace.

use std::ffi::OsStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::Arc;

use crate::conntrack::{self, Flow};
use crate::netns::{self, run_in_namespace};
use crate::process::{Process, Registry};
use crate::{Error, Input, Ipv6Kind, Nat, RouterKind, UdpCounter};

/// A machine in the lab: the relay, a public host, or a host behind a router.
#[derive(Debug)]
pub struct Host {
    name: String,
    namespace: String,
    ips: Vec<IpAddr>,
    registry: Arc<Registry>,
}

impl Host {
    pub(crate) fn new(
        name: String,
        namespace: String,
        ips: Vec<IpAddr>,
        registry: Arc<Registry>,
    ) -> Self {
        Self {
            name,
            namespace,
            ips,
            registry,
        }
    }

    /// The host's name (`"relay"`, `"a0"`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of the host's network namespace, for `ip netns exec`.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The host's primary address: its first IPv4 address (the one its
    /// outgoing IPv4 packets carry by default), or its IPv6 address if it
    /// has no IPv4 (behind an [`ipv6_only`](crate::LabBuilder::ipv6_only)
    /// router).
    pub fn ip(&self) -> IpAddr {
        self.ips[0]
    }

    /// All of the host's addresses, primary first: IPv4 ones, then IPv6
    /// ones (the relay has two of each in a dual-stack lab).
    pub fn ips(&self) -> &[IpAddr] {
        &self.ips
    }

    /// The host's first IPv4 address, if it has IPv4.
    pub fn ip4(&self) -> Option<IpAddr> {
        self.ips.iter().copied().find(IpAddr::is_ipv4)
    }

    /// The host's first IPv6 address, if it has IPv6: global
    /// (`2001:db8:...`) on the public side and behind an
    /// [`Ipv6Kind::Firewall`], unique local (`fd00:10:...`) behind NAT66.
    pub fn ip6(&self) -> Option<IpAddr> {
        self.ips.iter().copied().find(IpAddr::is_ipv6)
    }

    /// A command that runs `program` inside the host's namespace
    /// (`ip netns exec NS program`); add arguments and run or
    /// [`spawn`](Self::spawn) it.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        netns::exec_command(&self.namespace, program)
    }

    /// Starts `command` (usually from [`command`](Self::command)) with its
    /// stdout piped to the returned [`Process`] and its stderr captured.
    pub fn spawn(&self, command: Command) -> Result<Process, Error> {
        Process::spawn(command, self.name.clone(), Arc::clone(&self.registry))
    }

    /// Runs `f` on a thread inside the host's namespace and returns its
    /// result; see [`run_in_namespace`](crate::run_in_namespace).
    pub fn run<T, F>(&self, f: F) -> Result<T, Error>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        run_in_namespace(&self.namespace, f)
    }

    /// Starts counting the UDP datagrams (IPv4 and IPv6) this host
    /// receives, with an nftables table of the counter's own in the host's
    /// namespace; see [`UdpCounter`] for exactly what is counted. Several
    /// counters may run at once; each counts from its own start.
    ///
    /// ```no_run
    /// # let lab = natlab::Lab::builder().build()?;
    /// let counter = lab.relay().udp_counter()?;
    /// // ... send datagrams to the relay ...
    /// let counts = counter.read()?;
    /// println!("{} datagrams, {} bytes", counts.packets, counts.bytes);
    /// # Ok::<(), natlab::Error>(())
    /// ```
    pub fn udp_counter(&self) -> Result<UdpCounter, Error> {
        UdpCounter::install(&self.namespace)
    }

    /// Binds a UDP socket inside the host's namespace. The socket stays in
    /// the namespace, so it can be used from any thread.
    pub fn bind_udp(&self, addr: impl Into<SocketAddr>) -> Result<UdpSocket, Error> {
        let addr = addr.into();
        self.run(|| UdpSocket::bind(addr))?
            .map_err(|error| Error::io(format!("binding UDP {addr} on host {}", self.name), error))
    }
}

/// A router between a LAN of hosts and the lab's internet.
///
/// The builder fills in the fields; everyone else reads them through the
/// methods.
#[derive(Debug)]
pub struct Router {
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) kind: RouterKind,
    pub(crate) input: Input,
    pub(crate) ipv6: Option<Ipv6Kind>,
    pub(crate) wan_ip: Ipv4Addr,
    pub(crate) wan_ip6: Option<Ipv6Addr>,
    /// The hosts' first gateway: IPv4, or IPv6 on an IPv6-only LAN.
    pub(crate) lan_ip: IpAddr,
    pub(crate) lan_prefix: u8,
    pub(crate) lan_ip6: Option<Ipv6Addr>,
    pub(crate) hosts: Vec<Host>,
    pub(crate) registry: Arc<Registry>,
}

impl Router {
    /// The router's name (`"a"`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of the router's network namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// How the router translates and filters, as a classic kind; for a
    /// Kubernetes node that is the kind it behaves like outside any
    /// exemption (see [`KubeNode::nat`](crate::KubeNode::nat)), and
    /// [`kind`](Self::kind) says exactly.
    pub fn nat(&self) -> Nat {
        self.kind.nat()
    }

    /// What the router was built as: a classic [`Nat`] or a
    /// [`KubeNode`](crate::KubeNode).
    pub fn kind(&self) -> RouterKind {
        self.kind
    }

    /// What the router does with unsolicited packets from the internet
    /// addressed to itself (see [`Input`]).
    pub fn input(&self) -> Input {
        self.input
    }

    /// Whether the router is "open": it accepts unsolicited packets
    /// addressed to itself, confirming a conntrack entry for each and
    /// answering ICMP port unreachable ([`Input::Accept`]).
    pub fn accepts_unsolicited(&self) -> bool {
        self.input.accepts()
    }

    /// The router's IPv6 kind, if its hosts have IPv6 (see
    /// [`LabBuilder::ipv6`](crate::LabBuilder::ipv6)).
    pub fn ipv6(&self) -> Option<Ipv6Kind> {
        self.ipv6
    }

    /// Whether the router's hosts have no IPv4 (see
    /// [`LabBuilder::ipv6_only`](crate::LabBuilder::ipv6_only)).
    pub fn ipv6_only(&self) -> bool {
        self.lan_ip.is_ipv6()
    }

    /// The router's public IPv4 address; hosts behind a NAT share it.
    pub fn wan_ip(&self) -> IpAddr {
        IpAddr::V4(self.wan_ip)
    }

    /// The router's public IPv6 address in a dual-stack lab; hosts behind
    /// NAT66 share it.
    pub fn wan_ip6(&self) -> Option<IpAddr> {
        self.wan_ip6.map(IpAddr::V6)
    }

    /// The router's address on its LAN (the hosts' gateway): IPv4, or IPv6
    /// if the LAN is IPv6-only.
    pub fn lan_ip(&self) -> IpAddr {
        self.lan_ip
    }

    /// The prefix length of the router's LAN ([`lan_ip`](Self::lan_ip)'s).
    pub fn lan_prefix(&self) -> u8 {
        self.lan_prefix
    }

    /// The router's IPv6 address on its LAN (the hosts' IPv6 gateway), if
    /// it has an IPv6 kind; the LAN is a /64 ([`plan::LAN6_PREFIX`]).
    ///
    /// [`plan::LAN6_PREFIX`]: crate::plan::LAN6_PREFIX
    pub fn lan_ip6(&self) -> Option<IpAddr> {
        self.lan_ip6.map(IpAddr::V6)
    }

    /// The hosts behind the router, in index order (`a0`, `a1`, ...).
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// A command that runs `program` inside the router's namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        netns::exec_command(&self.namespace, program)
    }

    /// Starts `command` (for example a packet capture from
    /// [`command`](Self::command)) like [`Host::spawn`].
    pub fn spawn(&self, command: Command) -> Result<Process, Error> {
        Process::spawn(
            command,
            format!("router-{}", self.name),
            Arc::clone(&self.registry),
        )
    }

    /// Runs `f` on a thread inside the router's namespace and returns its
    /// result; see [`run_in_namespace`](crate::run_in_namespace).
    pub fn run<T, F>(&self, f: F) -> Result<T, Error>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        run_in_namespace(&self.namespace, f)
    }

    /// The router's UDP conntrack entries (`conntrack -L -p udp`, and in a
    /// dual-stack lab `conntrack -L -f ipv6 -p udp` after them), with
    /// packets and bytes per direction (the router has conntrack
    /// accounting on).
    pub fn conntrack(&self) -> Result<Vec<Flow>, Error> {
        conntrack::list(&self.namespace, self.wan_ip6.is_some())
    }

    /// The router's UDP conntrack entries whose original direction runs
    /// from `src` to `dst`: none if that flow never reached (or was
    /// dropped before) conntrack, one once it is tracked.
    ///
    /// ```no_run
    /// # let lab = natlab::Lab::builder().router("a", natlab::Nat::PortRestricted).build()?;
    /// let (router, relay) = (lab.router("a"), lab.relay());
    /// let inside = std::net::SocketAddr::new(lab.host("a0").ip(), 40000);
    /// let remote = std::net::SocketAddr::new(relay.ip(), 5000);
    /// for flow in router.flows(inside, remote)? {
    ///     println!("{inside} -> {remote} leaves as {}", flow.external());
    /// }
    /// # Ok::<(), natlab::Error>(())
    /// ```
    pub fn flows(&self, src: SocketAddr, dst: SocketAddr) -> Result<Vec<Flow>, Error> {
        let mut flows = self.conntrack()?;
        flows.retain(|flow| flow.original.src == src && flow.original.dst == dst);
        Ok(flows)
    }

    /// Empties the router's conntrack table (`conntrack -F`, for both
    /// families in a dual-stack lab), as if every mapping had timed out.
    pub fn flush_conntrack(&self) -> Result<(), Error> {
        conntrack::flush(&self.namespace, self.wan_ip6.is_some())
    }
}
