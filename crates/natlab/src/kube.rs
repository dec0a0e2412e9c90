//! Kubernetes nodes: pods behind the masquerade rule a CNI installs, and the
//! punch-range SNAT exemption an operator installs ahead of it.
//!
//! A [`KubeNode`] router is a node whose pods sit on its bridge. Its
//! ruleset is what flannel's nftables backend writes (table
//! `ip flannel-ipv4`, chain `postrtg`, priority `srcnat`): pod egress to
//! anywhere outside the cluster CIDR ([`plan::KUBE_CLUSTER_CIDR`]) is
//! `masquerade fully-random` or plain `masquerade`. Calico Felix, kube-router,
//! ip-masq-agent and Antrea write the same rule in iptables form
//! (`-j MASQUERADE --random-fully`). Filtering is the lab's usual Linux
//! router: replies only, and unsolicited WAN input dropped before conntrack
//! confirms it, unless the router is built open ([`Input::Accept`], as a
//! real node whose `INPUT` policy is `ACCEPT`; the default is
//! [`KubeNode::DEFAULT_INPUT`]).
//!
//! With a [`punch_exemption`](KubeNode::punch_exemption) the router also
//! loads [`exemption_ruleset`]: table `ip punchport`, a NAT chain at
//! priority `srcnat - 10` that masquerades UDP from the exempt source ports
//! without random ports. The kernel runs the NAT chains of a hook in
//! priority order only for a connection's first packet and stops at the
//! first chain that binds a NAT mapping, so the CNI's chain never sees an
//! exempt flow; every other flow falls through to it. This is exactly the
//! table the DaemonSet in `docs/deploy/punch-snat-exemption.yaml` installs.
//!
//! [`plan::KUBE_CLUSTER_CIDR`]: crate::plan::KUBE_CLUSTER_CIDR

use std::fmt;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::{Input, Nat};

/// An inclusive range of UDP ports, written `first-last` (nftables syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// The first port of the range.
    pub first: u16,
    /// The last port of the range (inclusive).
    pub last: u16,
}

impl PortRange {
    /// The ports `first..=last`.
    pub const fn new(first: u16, last: u16) -> Self {
        Self { first, last }
    }

    /// Whether `port` is in the range.
    pub fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// The default punch range: UDP 40000–40050.
pub const PUNCH_PORTS: PortRange = PortRange::new(40000, 40050);

/// The name of the nftables table that holds the exemption.
pub const EXEMPTION_TABLE: &str = "punchport";

/// The comment on the exemption's rule.
pub const EXEMPTION_COMMENT: &str = "punchport SNAT exemption";

/// The name of the nftables table that holds the CNI's masquerade rule
/// (flannel's).
pub const CNI_TABLE: &str = "flannel-ipv4";

/// A Kubernetes node as a router: pods behind the CNI's masquerade rule.
///
/// ```no_run
/// use natlab::{KubeNode, Lab, PUNCH_PORTS};
///
/// let lab = Lab::builder()
///     .router("k", KubeNode::FULLY_RANDOM.exempt(PUNCH_PORTS))
///     .hosts(2) // pods "k0" and "k1"
///     .build()?;
/// # Ok::<(), natlab::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KubeNode {
    /// `masquerade fully-random` (flannel's nftables backend; Calico,
    /// kube-router, ip-masq-agent, Antrea, AWS VPC CNI's default): every new
    /// 5-tuple gets a fresh random port, so the mapping is
    /// endpoint-dependent. Without it, plain `masquerade`: the source port
    /// is kept while the tuple is unique (endpoint-independent).
    pub random_fully: bool,
    /// UDP source ports masqueraded ahead of the CNI's rule without random
    /// ports (see [`exemption_ruleset`]); `None` for a stock node.
    pub punch_exemption: Option<PortRange>,
}

impl KubeNode {
    /// A node whose CNI masquerades with plain `masquerade`.
    pub const MASQUERADE: Self = Self {
        random_fully: false,
        punch_exemption: None,
    };

    /// A node whose CNI masquerades with `masquerade fully-random`.
    pub const FULLY_RANDOM: Self = Self {
        random_fully: true,
        punch_exemption: None,
    };

    /// What a Kubernetes-node router does with unsolicited input unless the
    /// builder says otherwise ([`LabBuilder::input`]); see
    /// [`RouterKind::default_input`].
    ///
    /// [`Input::Accept`], as a real node's `INPUT` policy is `ACCEPT`.
    ///
    /// It was [`Input::Drop`] while punchport's openers raced the other
    /// side's first packet (a 15 ms lead at each punch dial): with every
    /// node open, `crates/lab/tests/scale.rs` (10 + 10 pods punching at once
    /// on two loaded cores) once ended 9 of 10 direct. The openers now leave
    /// inside DCUtR's exchange, before the message the other side's punch
    /// waits for, and no longer race.
    ///
    /// [`LabBuilder::input`]: crate::LabBuilder::input
    pub const DEFAULT_INPUT: Input = Input::Accept;

    /// The same node with the SNAT exemption for UDP source `ports`
    /// installed ahead of the CNI's rule.
    pub const fn exempt(self, ports: PortRange) -> Self {
        Self {
            punch_exemption: Some(ports),
            ..self
        }
    }

    /// The classic kind this node behaves like for ports outside any
    /// exemption: [`Nat::PortRestricted`] for plain masquerade,
    /// [`Nat::Symmetric`] for `fully-random`. Exempt ports behave like
    /// [`Nat::PortRestricted`].
    pub fn nat(self) -> Nat {
        if self.random_fully {
            Nat::Symmetric
        } else {
            Nat::PortRestricted
        }
    }
}

impl fmt::Display for KubeNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("k8s masquerade")?;
        if self.random_fully {
            f.write_str(" fully-random")?;
        }
        if let Some(ports) = self.punch_exemption {
            write!(f, ", UDP {ports} exempt")?;
        }
        Ok(())
    }
}

/// What sits behind a router: a classic [`Nat`] kind or a [`KubeNode`].
///
/// [`LabBuilder::router`](crate::LabBuilder::router) takes either:
/// `.router("a", Nat::PortRestricted)` or
/// `.router("k", KubeNode::FULLY_RANDOM)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouterKind {
    /// A classic NAT or firewall.
    Nat(Nat),
    /// A Kubernetes node.
    Kube(KubeNode),
}

impl RouterKind {
    /// The classic kind the router behaves like (for a Kubernetes node see
    /// [`KubeNode::nat`]).
    pub fn nat(self) -> Nat {
        match self {
            RouterKind::Nat(nat) => nat,
            RouterKind::Kube(kube) => kube.nat(),
        }
    }

    /// The Kubernetes node, if the router is one.
    pub fn kube(self) -> Option<KubeNode> {
        match self {
            RouterKind::Kube(kube) => Some(kube),
            RouterKind::Nat(_) => None,
        }
    }

    /// Whether hosts behind the router have private addresses.
    pub fn translates(self) -> bool {
        self.nat().translates()
    }

    /// What a router of this kind does with unsolicited packets addressed
    /// to itself unless [`LabBuilder::input`](crate::LabBuilder::input)
    /// says otherwise: [`Input::Drop`] for every classic [`Nat`], and
    /// [`KubeNode::DEFAULT_INPUT`] ([`Input::Accept`]) for a Kubernetes
    /// node.
    pub fn default_input(self) -> Input {
        match self {
            RouterKind::Nat(_) => Input::Drop,
            RouterKind::Kube(_) => KubeNode::DEFAULT_INPUT,
        }
    }
}

impl From<Nat> for RouterKind {
    fn from(nat: Nat) -> Self {
        RouterKind::Nat(nat)
    }
}

impl From<KubeNode> for RouterKind {
    fn from(kube: KubeNode) -> Self {
        RouterKind::Kube(kube)
    }
}

impl fmt::Display for RouterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouterKind::Nat(nat) => nat.fmt(f),
            RouterKind::Kube(kube) => kube.fmt(f),
        }
    }
}

/// The CNI's masquerade table for a node whose pod subnet is `pod_subnet`
/// in the cluster CIDR `cluster`: the chain flannel's nftables backend
/// writes, rule for rule. The lab adds `counter` to the two masquerade
/// rules (no change in behaviour) so tests can see which chain NATed a flow.
pub(crate) fn cni_ruleset(
    random_fully: bool,
    pod_subnet: (Ipv4Addr, u8),
    cluster: (Ipv4Addr, u8),
) -> String {
    let pod = cidr(pod_subnet);
    let cluster = cidr(cluster);
    let masquerade = if random_fully {
        "masquerade fully-random"
    } else {
        "masquerade"
    };
    let mut rules = format!("table ip {CNI_TABLE} {{\n");
    let _ = write!(
        rules,
        "  chain postrtg {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
         meta mark 0x4000 return\n    \
         ip saddr {pod} ip daddr {cluster} return\n    \
         ip saddr {cluster} ip daddr {pod} return\n    \
         ip saddr != {pod} ip daddr {cluster} return\n    \
         ip saddr {cluster} ip daddr != 224.0.0.0/4 counter {masquerade}\n    \
         ip saddr != {cluster} ip daddr {cluster} counter {masquerade}\n  }}\n}}\n"
    );
    rules
}

/// The exemption exactly as the DaemonSet installs it: table
/// `ip punchport`, a NAT chain in `postrouting` at priority `srcnat - 10`
/// (90, ahead of the CNI's `srcnat`), masquerading UDP from pods in
/// `pod_cidr` with a source port in `ports` to destinations outside
/// `pod_cidr`, without random ports.
///
/// Because this chain binds the connection's NAT mapping first, the CNI's
/// later NAT chain is not run for it. Anything the rule does not match
/// falls through to the CNI. Load it into a namespace with `nft -f -`.
///
/// The text is what `nft -s list table ip punchport` prints once it is
/// loaded (the DaemonSet compares the two to stay idempotent).
pub fn exemption_ruleset(pod_cidr: (Ipv4Addr, u8), ports: PortRange) -> String {
    let pod = cidr(pod_cidr);
    format!(
        "table ip {EXEMPTION_TABLE} {{\n\tchain postrouting {{\n\t\t\
         type nat hook postrouting priority srcnat - 10; policy accept;\n\t\t\
         ip saddr {pod} ip daddr != {pod} udp sport {ports} counter masquerade \
         comment \"{EXEMPTION_COMMENT}\"\n\t}}\n}}\n"
    )
}

fn cidr((network, prefix): (Ipv4Addr, u8)) -> String {
    format!("{network}/{prefix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_and_say_what_they_are() {
        assert_eq!(KubeNode::MASQUERADE.to_string(), "k8s masquerade");
        assert_eq!(
            KubeNode::FULLY_RANDOM.to_string(),
            "k8s masquerade fully-random"
        );
        assert_eq!(
            KubeNode::FULLY_RANDOM.exempt(PUNCH_PORTS).to_string(),
            "k8s masquerade fully-random, UDP 40000-40050 exempt"
        );
        assert_eq!(
            RouterKind::from(Nat::Symmetric).to_string(),
            Nat::Symmetric.to_string()
        );
    }

    #[test]
    fn classic_kinds_drop_unsolicited_input_and_kube_nodes_accept_it() {
        assert_eq!(
            RouterKind::from(Nat::PortRestricted).default_input(),
            Input::Drop
        );
        assert_eq!(RouterKind::from(Nat::Firewall).default_input(), Input::Drop);
        assert_eq!(
            RouterKind::from(KubeNode::FULLY_RANDOM.exempt(PUNCH_PORTS)).default_input(),
            Input::Accept
        );
    }

    #[test]
    fn kube_nodes_translate_like_their_classic_kind() {
        assert_eq!(KubeNode::MASQUERADE.nat(), Nat::PortRestricted);
        assert_eq!(KubeNode::FULLY_RANDOM.nat(), Nat::Symmetric);
        assert!(RouterKind::from(KubeNode::MASQUERADE).translates());
        assert_eq!(
            RouterKind::from(KubeNode::MASQUERADE).kube(),
            Some(KubeNode::MASQUERADE)
        );
        assert_eq!(RouterKind::from(Nat::FullCone).kube(), None);
        assert!(PUNCH_PORTS.contains(40050) && !PUNCH_PORTS.contains(40051));
    }

    #[test]
    fn cni_ruleset_masquerades_pod_egress() {
        let pod = (Ipv4Addr::new(10, 1, 0, 0), 24);
        let cluster = (Ipv4Addr::new(10, 0, 0, 0), 8);
        let random = cni_ruleset(true, pod, cluster);
        assert!(random.contains("priority srcnat;"), "{random}");
        assert!(
            random.contains(
                "ip saddr 10.0.0.0/8 ip daddr != 224.0.0.0/4 counter masquerade fully-random\n"
            ),
            "{random}"
        );
        let plain = cni_ruleset(false, pod, cluster);
        assert!(!plain.contains("random"), "{plain}");
        assert!(plain.contains("ip saddr 10.1.0.0/24 ip daddr 10.0.0.0/8 return"));
    }

    #[test]
    fn exemption_runs_ahead_of_the_cni_without_random_ports() {
        let rules = exemption_ruleset((Ipv4Addr::new(10, 244, 0, 0), 16), PUNCH_PORTS);
        assert!(rules.starts_with("table ip punchport {"), "{rules}");
        assert!(rules.contains("priority srcnat - 10;"), "{rules}");
        assert!(
            rules.contains(
                "ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 udp sport 40000-40050 \
                 counter masquerade comment"
            ),
            "{rules}"
        );
        assert!(!rules.contains("random"), "{rules}");
    }
}
