//! Describing a lab and building its namespaces, links, addresses and rules.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::forwarder::{End, Forwarder};
use crate::kube::RouterKind;
use crate::lab::{Lab, Teardown};
use crate::nat::{self, Input, Ipv6Kind, Nat};
use crate::netns::{self, NAME_PREFIX, ip_in};
use crate::node::{Host, Router};
use crate::plan::{self, GATEWAY, GATEWAY6, LAN6_PREFIX, Lan, Lan6, RELAY_IPS, RELAY_IPS6};
use crate::{Error, link};

/// Distinguishes labs built by the same process.
static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// The longest delay a link accepts.
const MAX_DELAY: Duration = Duration::from_secs(10);

/// Describes a lab; [`build`](Self::build) creates it. Get one from
/// [`Lab::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use natlab::{Lab, Nat};
///
/// let lab = Lab::builder()
///     .router("a", Nat::PortRestricted)
///     .hosts(2)
///     .router("b", Nat::Symmetric)
///     .public_host("p")
///     .wan_delay(Duration::from_millis(25))
///     .build()?;
/// # Ok::<(), natlab::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct LabBuilder {
    routers: Vec<RouterSpec>,
    public_hosts: Vec<String>,
    wan_delay: Duration,
    public_delay: Duration,
    wan_rate: Option<u64>,
    wan_loss_percent: f64,
    dual_stack: bool,
    problems: Vec<String>,
}

#[derive(Debug, Clone)]
struct RouterSpec {
    name: String,
    kind: RouterKind,
    hosts: usize,
    input: Option<Input>,
    ipv6: Option<Ipv6Kind>,
    ipv6_only: bool,
}

impl RouterSpec {
    fn input(&self) -> Input {
        self.input.unwrap_or_else(|| self.kind.default_input())
    }
}

impl LabBuilder {
    /// Adds a router called `name` of kind `kind` (a [`Nat`] or a
    /// [`KubeNode`](crate::KubeNode)), with one host behind it (change that
    /// with [`hosts`](Self::hosts)). Its hosts are called `<name>0`,
    /// `<name>1`, ...
    ///
    /// A [`KubeNode`](crate::KubeNode) is a Kubernetes node and its hosts
    /// are pods: its LAN is the node's pod subnet (`10.i.0.0/24`, inside the
    /// cluster CIDR [`plan::KUBE_CLUSTER_CIDR`]).
    pub fn router(mut self, name: impl Into<String>, kind: impl Into<RouterKind>) -> Self {
        self.routers.push(RouterSpec {
            name: name.into(),
            kind: kind.into(),
            hosts: 1,
            input: None,
            ipv6: None,
            ipv6_only: false,
        });
        self
    }

    /// Sets what the router added last does with unsolicited packets from
    /// the internet addressed to itself: [`Input::Accept`] makes it "open",
    /// like a plain Linux box or a Kubernetes node (conntrack entry and ICMP
    /// port unreachable); [`Input::Drop`] drops them before conntrack sees
    /// them through. Without this call the router uses its kind's
    /// [`default_input`](RouterKind::default_input) ([`Input::Drop`] for
    /// every kind today).
    ///
    /// ```no_run
    /// use natlab::{Input, KubeNode, Lab, Nat};
    ///
    /// let lab = Lab::builder()
    ///     .router("a", Nat::PortRestricted)
    ///     .input(Input::Accept)
    ///     .router("k", KubeNode::MASQUERADE)
    ///     .input(Input::Accept)
    ///     .build()?;
    /// assert!(lab.router("a").accepts_unsolicited());
    /// # Ok::<(), natlab::Error>(())
    /// ```
    pub fn input(mut self, input: Input) -> Self {
        match self.routers.last_mut() {
            Some(router) => router.input = Some(input),
            None => self
                .problems
                .push("`input` must follow a `router`".to_owned()),
        }
        self
    }

    /// Makes the lab dual-stack: the internet routes IPv6 too, and the
    /// relay, the public hosts and every router get IPv6 WAN addresses (see
    /// [`plan`]) next to their IPv4 ones. Hosts behind a router get IPv6
    /// only if it has an [`ipv6`](Self::ipv6) kind. Labs are IPv4-only
    /// unless this or [`ipv6`](Self::ipv6) is called: IPv6 is then disabled
    /// in every namespace.
    pub fn dual_stack(mut self) -> Self {
        self.dual_stack = true;
        self
    }

    /// Gives the router added last an IPv6 LAN of kind `kind` (its hosts
    /// get IPv6 addresses as the [`plan`] says) and makes the lab
    /// dual-stack ([`dual_stack`](Self::dual_stack)). The router's
    /// [`input`](Self::input) applies to IPv6 as well.
    ///
    /// ```no_run
    /// use natlab::{Input, Ipv6Kind, Lab, Nat};
    ///
    /// let lab = Lab::builder()
    ///     .router("a", Nat::PortRestricted)
    ///     .ipv6(Ipv6Kind::Masquerade) // a0: 10.1.0.10 and fd00:10:1::10
    ///     .router("b", Nat::Symmetric)
    ///     .ipv6(Ipv6Kind::Firewall)
    ///     .ipv6_only() // b0: 2001:db8:1:2::10 only
    ///     .input(Input::Accept)
    ///     .build()?;
    /// # Ok::<(), natlab::Error>(())
    /// ```
    pub fn ipv6(mut self, kind: Ipv6Kind) -> Self {
        match self.routers.last_mut() {
            Some(router) => router.ipv6 = Some(kind),
            None => self
                .problems
                .push("`ipv6` must follow a `router`".to_owned()),
        }
        self
    }

    /// Leaves IPv4 off the LAN of the router added last: its hosts have
    /// only IPv6 addresses, and no IPv4 route at all (the router itself
    /// keeps its IPv4 WAN address). The router needs an
    /// [`ipv6`](Self::ipv6) kind.
    pub fn ipv6_only(mut self) -> Self {
        match self.routers.last_mut() {
            Some(router) => router.ipv6_only = true,
            None => self
                .problems
                .push("`ipv6_only` must follow a `router`".to_owned()),
        }
        self
    }

    /// Whether the lab will route IPv6.
    fn is_dual_stack(&self) -> bool {
        self.dual_stack || self.routers.iter().any(|router| router.ipv6.is_some())
    }

    /// Sets how many hosts sit behind the router added last (they share its
    /// WAN address when it translates).
    pub fn hosts(mut self, count: usize) -> Self {
        match self.routers.last_mut() {
            Some(router) => router.hosts = count,
            None => self
                .problems
                .push("`hosts` must follow a `router`".to_owned()),
        }
        self
    }

    /// Adds a host called `name` directly on the internet, with a public
    /// address (`203.0.113.12`, `.13`, ...) and no firewall.
    pub fn public_host(mut self, name: impl Into<String>) -> Self {
        self.public_hosts.push(name.into());
        self
    }

    /// Delays every packet on every router's WAN link (its link to the
    /// internet) by `delay`, in each direction. A path between hosts behind
    /// two routers crosses two such links, so its round trip takes
    /// `4 * delay`; a path from a host to the relay takes `2 * delay` (plus
    /// twice the [`public_delay`](Self::public_delay)).
    ///
    /// Delayed links are TUN devices with a userspace forwarder; links
    /// without delay are veth pairs.
    pub fn wan_delay(mut self, delay: Duration) -> Self {
        self.wan_delay = delay;
        self
    }

    /// Limits each router's WAN link to `bits_per_second` in each
    /// direction, with a drop-tail queue of 50 ms (such links go through the
    /// userspace forwarder even without delay).
    pub fn wan_rate(mut self, bits_per_second: u64) -> Self {
        self.wan_rate = Some(bits_per_second);
        self
    }

    /// Delays every packet on the links of the relay and the public hosts
    /// by `delay`, in each direction (none by default).
    pub fn public_delay(mut self, delay: Duration) -> Self {
        self.public_delay = delay;
        self
    }

    /// Drops `percent` of the packets on every WAN link, in each direction
    /// independently (with nftables in the internet namespace). A path
    /// between two nodes crosses two links.
    pub fn wan_loss_percent(mut self, percent: f64) -> Self {
        self.wan_loss_percent = percent;
        self
    }

    /// Creates the lab. On failure everything created so far is removed.
    ///
    /// Stale namespaces of labs whose process has died are removed first.
    pub fn build(self) -> Result<Lab, Error> {
        self.validate()?;
        netns::collect_garbage();
        let prefix = format!(
            "{NAME_PREFIX}{}-{}",
            std::process::id(),
            LAB_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        tracing::debug!(%prefix, "natlab: building lab");
        let dual_stack = self.is_dual_stack();
        let mut work = Construction {
            prefix: prefix.clone(),
            internet: format!("{prefix}-inet"),
            dual_stack,
            wan_delay: self.wan_delay,
            public_delay: self.public_delay,
            wan_rate: self.wan_rate,
            next_link: 0,
            teardown: Teardown::default(),
        };

        let internet = work.internet.clone();
        work.add_namespace(&internet, Role::Internet, dual_stack)?;

        let mut relay_ips: Vec<IpAddr> = RELAY_IPS.map(IpAddr::V4).to_vec();
        if dual_stack {
            relay_ips.extend(RELAY_IPS6.map(IpAddr::V6));
        }
        let relay = work.add_public_host("relay", &relay_ips)?;
        let mut public_hosts = Vec::with_capacity(self.public_hosts.len());
        for (index, name) in self.public_hosts.iter().enumerate() {
            let mut addresses = vec![IpAddr::V4(plan::public_host_ip(index))];
            if dual_stack {
                addresses.push(IpAddr::V6(plan::public_host_ip6(index)));
            }
            public_hosts.push(work.add_public_host(name, &addresses)?);
        }

        let mut routers = Vec::with_capacity(self.routers.len());
        let mut firewalls = 0;
        for (index, spec) in self.routers.iter().enumerate() {
            let v4 = if spec.kind.translates() {
                plan::nat_lan(index, spec.hosts)
            } else {
                firewalls += 1;
                plan::firewall_lan(firewalls - 1, spec.hosts)
            };
            let lan = LanPlan {
                v4,
                ipv4: !spec.ipv6_only,
                v6: spec
                    .ipv6
                    .map(|kind| (kind, plan::lan6(kind, index, spec.hosts))),
            };
            let wan6 = dual_stack.then(|| plan::router_wan_ip6(index));
            routers.push(work.add_router(spec, (plan::router_wan_ip(index), wan6), &lan)?);
        }

        if self.wan_loss_percent > 0.0 {
            netns::load_nft(&work.internet, &link::loss_ruleset(self.wan_loss_percent))?;
        }

        let Construction {
            prefix,
            internet,
            teardown,
            ..
        } = work;
        tracing::info!(%prefix, namespaces = teardown.namespaces.len(), "natlab: lab ready");
        Ok(Lab {
            prefix,
            internet,
            relay,
            public_hosts,
            routers,
            dual_stack,
            wan_delay: self.wan_delay,
            wan_loss_percent: self.wan_loss_percent,
            teardown,
        })
    }

    fn validate(&self) -> Result<(), Error> {
        let mut problems = self.problems.clone();
        let mut host_names = HashSet::from(["relay".to_owned()]);
        let mut router_names = HashSet::new();
        let mut check_host = |name: &str, problems: &mut Vec<String>| {
            if !valid_name(name) {
                problems.push(format!(
                    "host name {name:?} must be 1-32 ASCII letters, digits, '_' or '-'"
                ));
            }
            if !host_names.insert(name.to_owned()) {
                problems.push(format!("host name {name:?} is used twice"));
            }
        };
        if self.public_hosts.len() > plan::MAX_PUBLIC_HOSTS {
            problems.push(format!(
                "at most {} public hosts are supported",
                plan::MAX_PUBLIC_HOSTS
            ));
        }
        for name in &self.public_hosts {
            check_host(name, &mut problems);
        }
        if self.routers.len() > plan::MAX_ROUTERS {
            problems.push(format!(
                "at most {} routers are supported",
                plan::MAX_ROUTERS
            ));
        }
        let firewalls = self
            .routers
            .iter()
            .filter(|router| !router.kind.translates())
            .count();
        if firewalls > plan::MAX_FIREWALLS {
            problems.push(format!(
                "at most {} firewall routers are supported",
                plan::MAX_FIREWALLS
            ));
        }
        for router in &self.routers {
            if !valid_name(&router.name) {
                problems.push(format!(
                    "router name {:?} must be 1-32 ASCII letters, digits, '_' or '-'",
                    router.name
                ));
            }
            if !router_names.insert(router.name.clone()) {
                problems.push(format!("router name {:?} is used twice", router.name));
            }
            let limit = match router.kind {
                RouterKind::Nat(Nat::Firewall) => plan::MAX_FIREWALL_HOSTS,
                RouterKind::Nat(Nat::PortRewriting) => nat::MAX_REWRITING_HOSTS,
                _ => plan::MAX_NAT_HOSTS,
            };
            if router.hosts > limit {
                problems.push(format!(
                    "router {:?} ({}) supports at most {limit} hosts",
                    router.name, router.kind
                ));
            }
            if let Some(ports) = router.kind.kube().and_then(|kube| kube.punch_exemption)
                && (ports.first == 0 || ports.first > ports.last)
            {
                problems.push(format!(
                    "router {:?}: exempt port range {ports} must be ascending and start above 0",
                    router.name
                ));
            }
            if router.ipv6_only && router.ipv6.is_none() {
                problems.push(format!(
                    "router {:?} is `ipv6_only` but has no IPv6 kind (`ipv6`)",
                    router.name
                ));
            }
            for index in 0..router.hosts {
                check_host(&format!("{}{index}", router.name), &mut problems);
            }
        }
        if !(0.0..=100.0).contains(&self.wan_loss_percent) {
            problems.push(format!(
                "WAN loss must be between 0 and 100 percent, not {}",
                self.wan_loss_percent
            ));
        }
        if self.public_delay > MAX_DELAY {
            problems.push(format!(
                "public delay must be at most {MAX_DELAY:?}, not {:?}",
                self.public_delay
            ));
        }
        if self.wan_delay > MAX_DELAY {
            problems.push(format!(
                "WAN delay must be at most {MAX_DELAY:?}, not {:?}",
                self.wan_delay
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config(problems.join("; ")))
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// What a namespace is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The internet: forwards.
    Internet,
    /// A router: forwards, and counts packets and bytes per conntrack entry.
    Router,
    /// A host: neither.
    Host,
}

/// A lab under construction; its [`Teardown`] undoes everything if building
/// fails.
struct Construction {
    prefix: String,
    internet: String,
    dual_stack: bool,
    wan_delay: Duration,
    public_delay: Duration,
    wan_rate: Option<u64>,
    next_link: usize,
    teardown: Teardown,
}

/// A router's LAN as planned: IPv4 (planned for every router, but given to
/// the LAN only if `ipv4`) and IPv6 (if the router has an IPv6 kind).
struct LanPlan {
    v4: Lan,
    ipv4: bool,
    v6: Option<(Ipv6Kind, Lan6)>,
}

impl LanPlan {
    /// The IPv4 LAN, if the hosts get IPv4 addresses.
    fn v4(&self) -> Option<&Lan> {
        self.ipv4.then_some(&self.v4)
    }
}

impl Construction {
    fn namespace_for(&self, node: &str) -> String {
        format!("{}-{node}", self.prefix)
    }

    /// Creates a namespace with loopback up and reverse path filtering off,
    /// forwarding on for the internet and routers, and conntrack accounting
    /// on for routers. IPv6 is off unless `ipv6`; then it is on without
    /// duplicate address detection (the lab's addresses are unique).
    fn add_namespace(&mut self, namespace: &str, role: Role, ipv6: bool) -> Result<(), Error> {
        let forwarding = role != Role::Host;
        let accounting = role == Role::Router;
        netns::add(namespace)?;
        self.teardown.namespaces.push(namespace.to_owned());
        let mut settings = vec![
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
        ];
        if ipv6 {
            settings.extend([
                ("net.ipv6.conf.all.disable_ipv6", "0"),
                ("net.ipv6.conf.default.disable_ipv6", "0"),
                ("net.ipv6.conf.all.accept_dad", "0"),
                ("net.ipv6.conf.default.accept_dad", "0"),
                ("net.ipv6.conf.all.dad_transmits", "0"),
                ("net.ipv6.conf.default.dad_transmits", "0"),
            ]);
            if forwarding {
                settings.extend([
                    ("net.ipv6.conf.all.forwarding", "1"),
                    ("net.ipv6.conf.default.forwarding", "1"),
                ]);
            }
        } else {
            settings.extend([
                ("net.ipv6.conf.all.disable_ipv6", "1"),
                ("net.ipv6.conf.default.disable_ipv6", "1"),
            ]);
        }
        if forwarding {
            settings.push(("net.ipv4.ip_forward", "1"));
        }
        if accounting {
            settings.push(("net.netfilter.nf_conntrack_acct", "1"));
        }
        netns::set_sysctls(namespace, &settings)?;
        ip_in(namespace, &["link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Links `node` to the internet namespace: `wan0` on the node, `lK` in
    /// the internet, the node's `addresses` as host routes (/32, /128) on
    /// `wan0` and routed to it, `192.0.2.1` (and `2001:db8::1` if the node
    /// has an IPv6 address) as its gateway, and `routed` subnets sent via
    /// the node's first address of the same family.
    fn connect(
        &mut self,
        node: &str,
        addresses: &[IpAddr],
        routed: &[(IpAddr, u8)],
        delay: Duration,
        rate: Option<u64>,
    ) -> Result<(), Error> {
        let inet = self.internet.clone();
        let link = format!("l{}", self.next_link);
        self.next_link += 1;
        if delay.is_zero() && rate.is_none() {
            ip_in(
                node,
                &[
                    "link", "add", "wan0", "type", "veth", "peer", "name", &link, "netns", &inet,
                ],
            )?;
        } else {
            let forwarder = Forwarder::start(
                End {
                    namespace: node,
                    device: "wan0",
                },
                End {
                    namespace: &inet,
                    device: &link,
                },
                delay,
                rate,
            )?;
            self.teardown.forwarders.push(forwarder);
        }
        ip_in(node, &["link", "set", "wan0", "up"])?;
        ip_in(&inet, &["link", "set", &link, "up"])?;
        let mut gateways = vec![IpAddr::V4(GATEWAY)];
        if addresses.iter().any(IpAddr::is_ipv6) {
            gateways.push(IpAddr::V6(GATEWAY6));
        }
        for gateway in &gateways {
            add_address(&inet, *gateway, &link)?;
        }
        for address in addresses {
            add_address(node, *address, "wan0")?;
            ip_in(
                &inet,
                &[
                    family(*address),
                    "route",
                    "add",
                    &host_route(*address),
                    "dev",
                    &link,
                ],
            )?;
        }
        for gateway in &gateways {
            let family = family(*gateway);
            ip_in(
                node,
                &[family, "route", "add", &host_route(*gateway), "dev", "wan0"],
            )?;
            let via = gateway.to_string();
            ip_in(
                node,
                &[
                    family, "route", "add", "default", "via", &via, "dev", "wan0",
                ],
            )?;
        }
        for (network, prefix) in routed {
            let Some(via) = addresses
                .iter()
                .find(|address| address.is_ipv6() == network.is_ipv6())
            else {
                continue;
            };
            ip_in(
                &inet,
                &[
                    family(*network),
                    "route",
                    "add",
                    &format!("{network}/{prefix}"),
                    "via",
                    &via.to_string(),
                    "dev",
                    &link,
                    "onlink",
                ],
            )?;
        }
        Ok(())
    }

    fn add_public_host(&mut self, name: &str, addresses: &[IpAddr]) -> Result<Host, Error> {
        let namespace = self.namespace_for(&format!("h-{name}"));
        self.add_namespace(&namespace, Role::Host, self.dual_stack)?;
        self.connect(&namespace, addresses, &[], self.public_delay, None)?;
        Ok(Host::new(
            name.to_owned(),
            namespace,
            addresses.to_vec(),
            Arc::clone(&self.teardown.registry),
        ))
    }

    fn add_router(
        &mut self,
        spec: &RouterSpec,
        (wan4, wan6): (Ipv4Addr, Option<Ipv6Addr>),
        lan: &LanPlan,
    ) -> Result<Router, Error> {
        let namespace = self.namespace_for(&format!("rt-{}", spec.name));
        self.add_namespace(&namespace, Role::Router, self.dual_stack)?;
        let wan: Vec<IpAddr> = std::iter::once(IpAddr::V4(wan4))
            .chain(wan6.map(IpAddr::V6))
            .collect();
        let mut routed = Vec::new();
        if let Some(v4) = lan.v4().filter(|_| !spec.kind.translates()) {
            routed.push((IpAddr::V4(v4.network), v4.prefix));
        }
        if let Some((Ipv6Kind::Firewall, v6)) = &lan.v6 {
            routed.push((IpAddr::V6(v6.network), LAN6_PREFIX));
        }
        self.connect(&namespace, &wan, &routed, self.wan_delay, self.wan_rate)?;

        ip_in(&namespace, &["link", "add", "br0", "type", "bridge"])?;
        ip_in(&namespace, &["link", "set", "br0", "up"])?;
        let mut gateways: Vec<(IpAddr, u8)> = Vec::new();
        if let Some(v4) = lan.v4() {
            gateways.push((IpAddr::V4(v4.router), v4.prefix));
        }
        if let Some((_, v6)) = &lan.v6 {
            gateways.push((IpAddr::V6(v6.router), LAN6_PREFIX));
        }
        for (address, prefix) in &gateways {
            add_prefix(&namespace, *address, *prefix, "br0")?;
        }

        let count = spec.hosts;
        let mut hosts = Vec::with_capacity(count);
        for index in 0..count {
            let name = format!("{}{index}", spec.name);
            let host_namespace = self.namespace_for(&format!("h-{name}"));
            self.add_namespace(&host_namespace, Role::Host, lan.v6.is_some())?;
            let port = format!("h{index}");
            ip_in(
                &host_namespace,
                &[
                    "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns",
                    &namespace,
                ],
            )?;
            ip_in(&namespace, &["link", "set", &port, "master", "br0", "up"])?;
            ip_in(&host_namespace, &["link", "set", "eth0", "up"])?;
            let mut addresses = Vec::with_capacity(2);
            if let Some(v4) = lan.v4() {
                addresses.push(IpAddr::V4(v4.hosts[index]));
            }
            if let Some((_, v6)) = &lan.v6 {
                addresses.push(IpAddr::V6(v6.hosts[index]));
            }
            for (address, (gateway, prefix)) in addresses.iter().zip(&gateways) {
                add_prefix(&host_namespace, *address, *prefix, "eth0")?;
                let via = gateway.to_string();
                ip_in(
                    &host_namespace,
                    &[
                        family(*address),
                        "route",
                        "add",
                        "default",
                        "via",
                        &via,
                        "dev",
                        "eth0",
                    ],
                )?;
            }
            hosts.push(Host::new(
                name,
                host_namespace,
                addresses,
                Arc::clone(&self.teardown.registry),
            ));
        }

        let input = spec.input();
        // An IPv6-only LAN keeps its IPv4 rules: nothing on it uses them.
        let v4 = &lan.v4;
        let mut ruleset = match spec.kind {
            RouterKind::Nat(kind) => nat::router_ruleset(kind, wan4, &v4.hosts, input),
            RouterKind::Kube(kube) => nat::kube_ruleset(
                kube,
                (v4.network, v4.prefix),
                plan::KUBE_CLUSTER_CIDR,
                input,
            ),
        };
        if self.dual_stack {
            ruleset.push_str(&nat::ipv6_ruleset(spec.ipv6, input));
        }
        netns::load_nft(&namespace, &ruleset)?;
        let (lan_ip, lan_prefix) = gateways[0];
        Ok(Router {
            name: spec.name.clone(),
            namespace,
            kind: spec.kind,
            input,
            ipv6: spec.ipv6,
            wan_ip: wan4,
            wan_ip6: wan6,
            lan_ip,
            lan_prefix,
            lan_ip6: lan.v6.as_ref().map(|(_, v6)| v6.router),
            hosts,
            registry: Arc::clone(&self.teardown.registry),
        })
    }
}

/// `-4` or `-6` for `ip`, by the family of `address`.
fn family(address: IpAddr) -> &'static str {
    if address.is_ipv6() { "-6" } else { "-4" }
}

/// `address/32` or `address/128`.
fn host_route(address: IpAddr) -> String {
    let bits = if address.is_ipv6() { 128 } else { 32 };
    format!("{address}/{bits}")
}

/// Adds `address` as a host address (/32, /128) to `device`.
fn add_address(namespace: &str, address: IpAddr, device: &str) -> Result<(), Error> {
    let bits = if address.is_ipv6() { 128 } else { 32 };
    add_prefix(namespace, address, bits, device)
}

/// Adds `address/prefix` to `device`; IPv6 addresses without duplicate
/// address detection, so they are usable at once.
fn add_prefix(namespace: &str, address: IpAddr, prefix: u8, device: &str) -> Result<(), Error> {
    let cidr = format!("{address}/{prefix}");
    let mut args = vec![family(address), "addr", "add", &cidr, "dev", device];
    if address.is_ipv6() {
        args.push("nodad");
    }
    ip_in(namespace, &args).map(drop)
}
