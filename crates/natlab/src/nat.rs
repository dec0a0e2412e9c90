//! NAT kinds and the nftables ruleset each router loads.
//!
//! | kind | mapping | filtering | rule |
//! | --- | --- | --- | --- |
//! | [`Nat::PortRestricted`] | endpoint-independent, port-preserving | address and port | `snat ip to <wan>` |
//! | [`Nat::PortRewriting`] | endpoint-independent, fixed other port | address and port | `snat` from a map |
//! | [`Nat::FullCone`] | endpoint-independent | none (after one packet out) | `snat` + learnt `dnat` |
//! | [`Nat::RestrictedCone`] | endpoint-independent | address | `snat` + learnt `dnat` |
//! | [`Nat::Symmetric`] | endpoint-dependent, random port | address and port | `snat ... fully-random` |
//! | [`Nat::Firewall`] | none (public hosts) | address and port | none |
//! | [`KubeNode::MASQUERADE`] | endpoint-independent, port-preserving | address and port | CNI `masquerade` |
//! | [`KubeNode::FULLY_RANDOM`] | endpoint-dependent, random port | address and port | CNI `masquerade fully-random` |
//! | [`KubeNode::exempt`] | endpoint-independent for the exempt UDP source ports, else as above | address and port | `masquerade` at `srcnat - 10` ahead of the CNI |
//!
//! In a dual-stack lab every router also loads table `ip6 natlab`: the same
//! filter chains (plus neighbour discovery) and, for a NAT66 [`Ipv6Kind`],
//! a `masquerade` rule; see [`Ipv6Kind`] for its table of kinds.
//!
//! The Kubernetes-node kinds ([`KubeNode`], in [`RouterKind::Kube`]) load the
//! CNI's own table as flannel's nftables backend writes it, and optionally
//! the operator's exemption table; see the [`kube`] module.
//! Every kind loads the same filter chains: from the WAN only replies get
//! through (plus learnt mappings for the cone kinds).
//!
//! Every kind also comes "open" ([`Input::Accept`], set with
//! [`LabBuilder::input`](crate::LabBuilder::input)): the router then accepts
//! unsolicited packets addressed to itself, as a plain Linux box does
//! (conntrack confirms an `[UNREPLIED]` entry for each, and the kernel answers
//! ICMP port unreachable). Only the `input` chain differs; what is forwarded
//! to the hosts is filtered the same way. By default ([`Input::Drop`], see
//! [`RouterKind::default_input`](crate::RouterKind::default_input)) such
//! packets are dropped before conntrack confirms them.
//!
//! [`RouterKind::Kube`]: crate::RouterKind::Kube

use std::fmt;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::kube::{self, KubeNode};

/// How a router treats traffic between its LAN and the internet.
///
/// Mapping is how the router picks the external `ip:port` for an inside
/// socket; filtering is which inbound packets it lets through to that
/// socket. By default all kinds drop unsolicited inbound packets addressed
/// to the router itself in the `input` chain, before conntrack confirms
/// them, so an early punch packet cannot create a conntrack entry that
/// collides with the inside host's own outbound flow later; with
/// [`Input::Accept`] they accept them instead (see [`Input`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Nat {
    /// Endpoint-independent mapping, address-and-port-dependent filtering,
    /// port-preserving: the common home router (`snat to <wan ip>`; Linux
    /// keeps the source port unless two inside sockets collide).
    PortRestricted,
    /// Endpoint-independent mapping without port preservation: a fixed,
    /// deterministic external port per inside `(ip, port)` (see
    /// [`rewritten_port`]) for inside ports 443 and 40000–40100; other ports
    /// fall back to plain port-preserving `snat`. Filtering as
    /// [`Nat::PortRestricted`].
    PortRewriting,
    /// Endpoint-independent mapping and filtering: once an inside socket has
    /// sent a UDP packet out, anyone may send to its external port.
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering: inbound UDP
    /// is accepted from any port of a remote IP the inside socket has sent to.
    RestrictedCone,
    /// Endpoint-dependent mapping: a random external port per destination
    /// (`snat ... fully-random`).
    Symmetric,
    /// No NAT: hosts get public addresses from a routed subnet, and the
    /// router is only a stateful firewall (replies accepted, everything else
    /// from the internet dropped).
    Firewall,
}

impl Nat {
    /// Every kind, in declaration order: for tests that cover them all.
    ///
    /// ```
    /// assert!(natlab::Nat::ALL.contains(&natlab::Nat::Symmetric));
    /// ```
    pub const ALL: [Nat; 6] = [
        Nat::PortRestricted,
        Nat::PortRewriting,
        Nat::FullCone,
        Nat::RestrictedCone,
        Nat::Symmetric,
        Nat::Firewall,
    ];

    /// Whether hosts behind this router have private addresses.
    pub fn translates(self) -> bool {
        self != Nat::Firewall
    }
}

impl fmt::Display for Nat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Nat::PortRestricted => "port-restricted cone NAT",
            Nat::PortRewriting => "port-rewriting cone NAT",
            Nat::FullCone => "full cone NAT",
            Nat::RestrictedCone => "restricted cone NAT",
            Nat::Symmetric => "symmetric NAT",
            Nat::Firewall => "stateful firewall",
        };
        f.write_str(name)
    }
}

/// What a router does with unsolicited packets from the internet that are
/// addressed to the router itself (its WAN address, at a port no mapping
/// forwards to a host), in its `input` chain.
///
/// Every [`Nat`] and [`KubeNode`] comes in both variants; choose one with
/// [`LabBuilder::input`](crate::LabBuilder::input), and see the default of
/// each kind in [`RouterKind::default_input`](crate::RouterKind::default_input).
///
/// The difference matters for hole punching. An open router that receives a
/// peer's early punch packet `peer:p -> wan:40000` confirms a conntrack
/// entry for it (`[UNREPLIED]`) and answers ICMP port unreachable. When the
/// inside host then sends from port 40000 to `peer:p`, the source NAT's
/// natural reply tuple `peer:p -> wan:40000` is already taken by that entry,
/// so the kernel maps the host's flow to another port, and the punch misses
/// ("the conntrack clash"). A packet with a TTL just large enough to leave
/// the host's own router first opens the mapping and avoids it; see the
/// crate docs, "Hops and TTLs".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Input {
    /// Unsolicited WAN packets to the router die in its `input` chain before
    /// conntrack confirms them: no conntrack entry, no ICMP answer
    /// (`iifname "wan0" ct state established,related accept;
    /// iifname "wan0" drop`). The lab's default.
    #[default]
    Drop,
    /// Unsolicited WAN packets to the router are accepted, as a plain Linux
    /// box (or a Kubernetes node, whose `INPUT` policy is `ACCEPT`) does:
    /// conntrack confirms an `[UNREPLIED]` entry for each, and the kernel
    /// answers ICMP port unreachable (ICMPv6 for IPv6) when nothing listens.
    Accept,
}

impl Input {
    /// Whether unsolicited packets to the router are accepted.
    pub fn accepts(self) -> bool {
        self == Input::Accept
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Input::Drop => "drops unsolicited input",
            Input::Accept => "accepts unsolicited input",
        })
    }
}

/// How a router of a dual-stack lab treats IPv6 between its LAN and the
/// internet; set it with [`LabBuilder::ipv6`](crate::LabBuilder::ipv6).
///
/// | kind | hosts' addresses | mapping | filtering | rule |
/// | --- | --- | --- | --- | --- |
/// | [`Ipv6Kind::Firewall`] | global, routed (`2001:db8:1:i::/64`) | none | address and port | none |
/// | [`Ipv6Kind::Masquerade`] | unique local (`fd00:10:i::/64`) | endpoint-independent, port-preserving | address and port | `masquerade` |
/// | [`Ipv6Kind::MasqueradeFullyRandom`] | unique local | endpoint-dependent, random port | address and port | `masquerade fully-random` |
///
/// The IPv6 rules live in table `ip6 natlab`, next to the IPv4 ones, and
/// are the same whatever the router's IPv4 kind (also for a
/// [`KubeNode`]: the lab does not model a CNI's IPv6 table). From the WAN
/// only replies are forwarded; unsolicited packets to the router itself are
/// dropped or accepted as its [`Input`] says (an open router answers ICMPv6
/// port unreachable). Neighbour solicitations and advertisements from the
/// WAN are always accepted: IPv6 needs them where IPv4 has ARP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ipv6Kind {
    /// No NAT: hosts get global addresses from a /64 the internet routes to
    /// the router, which is a stateful firewall (replies accepted,
    /// everything else from the internet dropped): the usual IPv6 home
    /// router.
    Firewall,
    /// NAT66 with plain `masquerade`: hosts on a unique local /64, the
    /// source port kept unless two flows collide, endpoint-independent
    /// mapping, address-and-port-dependent filtering (IPv6's
    /// [`Nat::PortRestricted`]).
    Masquerade,
    /// NAT66 with `masquerade fully-random`: a random external port per
    /// destination (IPv6's [`Nat::Symmetric`]).
    MasqueradeFullyRandom,
}

impl Ipv6Kind {
    /// Whether hosts behind this router have unique local addresses that
    /// the router translates.
    pub fn translates(self) -> bool {
        self != Ipv6Kind::Firewall
    }
}

impl fmt::Display for Ipv6Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ipv6Kind::Firewall => "IPv6 stateful firewall",
            Ipv6Kind::Masquerade => "NAT66 masquerade",
            Ipv6Kind::MasqueradeFullyRandom => "NAT66 masquerade fully-random",
        })
    }
}

/// First inside port of the range a [`Nat::PortRewriting`] router maps.
pub const REWRITTEN_PORTS_START: u16 = 40000;
/// Last inside port of the range a [`Nat::PortRewriting`] router maps.
pub const REWRITTEN_PORTS_END: u16 = 40100;
/// The largest number of hosts a [`Nat::PortRewriting`] router supports.
pub const MAX_REWRITING_HOSTS: usize = 45;

/// The external port a [`Nat::PortRewriting`] router gives to UDP port
/// `inside_port` of the host with index `host_index` behind it (`a0` has
/// index 0, `a1` index 1, ...), or `None` if that port is not rewritten.
///
/// Inside ports 40000–40100 map to `20000 + 1000 * host_index + (port - 40000)`
/// and port 443 maps to `20443 + 1000 * host_index`.
pub fn rewritten_port(host_index: usize, inside_port: u16) -> Option<u16> {
    if host_index >= MAX_REWRITING_HOSTS {
        return None;
    }
    let offset = match inside_port {
        443 => 443,
        REWRITTEN_PORTS_START..=REWRITTEN_PORTS_END => inside_port - REWRITTEN_PORTS_START,
        _ => return None,
    };
    let base = 20_000 + 1000 * u16::try_from(host_index).ok()?;
    base.checked_add(offset)
}

/// The nftables ruleset for a router of kind `nat` with WAN address `wan`
/// and the given hosts on its LAN (in host index order), treating
/// unsolicited input as `input` says.
pub(crate) fn router_ruleset(nat: Nat, wan: Ipv4Addr, hosts: &[Ipv4Addr], input: Input) -> String {
    let cone = matches!(nat, Nat::FullCone | Nat::RestrictedCone);
    let mut rules = String::from("table ip natlab {\n");

    if cone {
        rules.push_str(
            "  map cone {\n    type inet_service : ipv4_addr . inet_service\n    \
             flags dynamic, timeout\n    timeout 120s\n  }\n",
        );
    }
    if nat == Nat::RestrictedCone {
        rules.push_str(
            "  set allowed {\n    type inet_service . ipv4_addr\n    \
             flags dynamic, timeout\n    timeout 120s\n  }\n",
        );
    }
    if nat == Nat::PortRewriting {
        rules.push_str(
            "  map rewrite {\n    type ipv4_addr . inet_service : ipv4_addr . inet_service\n",
        );
        let elements: Vec<String> = hosts
            .iter()
            .enumerate()
            .flat_map(|(index, host)| {
                std::iter::once(443)
                    .chain(REWRITTEN_PORTS_START..=REWRITTEN_PORTS_END)
                    .filter_map(move |port| {
                        rewritten_port(index, port)
                            .map(|external| format!("{host} . {port} : {wan} . {external}"))
                    })
            })
            .collect();
        if !elements.is_empty() {
            let _ = writeln!(rules, "    elements = {{ {} }}", elements.join(", "));
        }
        rules.push_str("  }\n");
    }

    filter_chains(&mut rules, cone, input);

    match nat {
        Nat::FullCone => {
            let _ = writeln!(
                rules,
                "  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n    \
                 iifname \"wan0\" ip daddr {wan} meta l4proto udp dnat ip to udp dport map @cone\n  }}"
            );
        }
        Nat::RestrictedCone => {
            let _ = writeln!(
                rules,
                "  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n    \
                 iifname \"wan0\" ip daddr {wan} udp dport . ip saddr @allowed \
                 dnat ip to udp dport map @cone\n  }}"
            );
        }
        _ => {}
    }

    let snat = match nat {
        Nat::PortRestricted | Nat::FullCone | Nat::RestrictedCone => {
            format!("    oifname \"wan0\" snat ip to {wan}\n")
        }
        Nat::PortRewriting => format!(
            "    oifname \"wan0\" meta l4proto udp snat ip to ip saddr . udp sport map @rewrite\n    \
             oifname \"wan0\" snat ip to {wan}\n"
        ),
        Nat::Symmetric => format!("    oifname \"wan0\" snat ip to {wan} fully-random\n"),
        Nat::Firewall => String::new(),
    };
    if !snat.is_empty() {
        rules.push_str(
            "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
        );
        rules.push_str(&snat);
        rules.push_str("  }\n");
    }

    if cone {
        // Runs after source NAT, so the conntrack reply tuple already holds
        // the external port: learn "external port -> inside ip . port".
        rules.push_str(
            "  chain learn {\n    type filter hook postrouting priority srcnat + 10; policy accept;\n    \
             oifname \"wan0\" meta l4proto udp ct direction original \
             update @cone { ct reply proto-dst : ct original ip saddr . ct original proto-src }\n",
        );
        if nat == Nat::RestrictedCone {
            rules.push_str(
                "    oifname \"wan0\" meta l4proto udp ct direction original \
                 update @allowed { ct reply proto-dst . ip daddr }\n",
            );
        }
        rules.push_str("  }\n");
    }

    rules.push_str("}\n");
    rules
}

/// Appends the `input` and `forward` filter chains every kind shares: from
/// the WAN, only replies (and, for cone kinds, packets to a learnt mapping)
/// are forwarded; unsolicited packets to the router itself are dropped or
/// accepted as `input` says.
fn filter_chains(rules: &mut String, cone: bool, input: Input) {
    rules.push_str(&input_chain(input, ""));

    rules.push_str(
        "  chain forward {\n    type filter hook forward priority filter; policy accept;\n    \
         iifname \"wan0\" ct state established,related accept\n",
    );
    if cone {
        rules.push_str("    iifname \"wan0\" ct status dnat accept\n");
    }
    rules.push_str("    iifname \"wan0\" drop\n  }\n");
}

/// The `input` chain: with [`Input::Drop`], unsolicited packets to the
/// router itself die here, before conntrack confirms them; with
/// [`Input::Accept`] the chain lets everything in, as the policy of a plain
/// Linux box does. `extra` holds rules that go first (IPv6's neighbour
/// discovery).
pub(crate) fn input_chain(input: Input, extra: &str) -> String {
    let mut chain = format!(
        "  chain input {{\n    type filter hook input priority filter; policy accept;\n{extra}    \
         iifname \"wan0\" ct state established,related accept\n"
    );
    if input == Input::Drop {
        chain.push_str("    iifname \"wan0\" drop\n");
    }
    chain.push_str("  }\n");
    chain
}

/// The rule that lets IPv6 neighbour discovery in from the WAN ahead of
/// everything else in `input` (conntrack does not track it).
const NEIGHBOUR_DISCOVERY: &str =
    "    iifname \"wan0\" icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept\n";

/// The `ip6 natlab` table of a router in a dual-stack lab: the same filter
/// chains as for IPv4 plus neighbour discovery, and NAT66 if `kind` asks
/// for it (`None`: the router has an IPv6 WAN address but no IPv6 LAN).
pub(crate) fn ipv6_ruleset(kind: Option<Ipv6Kind>, input: Input) -> String {
    let mut rules = String::from("table ip6 natlab {\n");
    rules.push_str(&input_chain(input, NEIGHBOUR_DISCOVERY));
    rules.push_str(
        "  chain forward {\n    type filter hook forward priority filter; policy accept;\n    \
         iifname \"wan0\" ct state established,related accept\n    \
         iifname \"wan0\" drop\n  }\n",
    );
    let masquerade = match kind {
        Some(Ipv6Kind::Masquerade) => "masquerade",
        Some(Ipv6Kind::MasqueradeFullyRandom) => "masquerade fully-random",
        Some(Ipv6Kind::Firewall) | None => "",
    };
    if !masquerade.is_empty() {
        let _ = writeln!(
            rules,
            "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
             oifname \"wan0\" {masquerade}\n  }}"
        );
    }
    rules.push_str("}\n");
    rules
}

/// The nftables ruleset for a Kubernetes node whose pods use `pod_subnet`:
/// the lab's filter chains (table `ip natlab`, as for every kind), the
/// CNI's masquerade table, and the exemption table if there is one.
pub(crate) fn kube_ruleset(
    kube: KubeNode,
    pod_subnet: (Ipv4Addr, u8),
    cluster: (Ipv4Addr, u8),
    input: Input,
) -> String {
    let mut rules = String::from("table ip natlab {\n");
    filter_chains(&mut rules, false, input);
    rules.push_str("}\n");
    rules.push_str(&kube::cni_ruleset(kube.random_fully, pod_subnet, cluster));
    if let Some(ports) = kube.punch_exemption {
        rules.push_str(&kube::exemption_ruleset(cluster, ports));
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewritten_ports_are_deterministic_and_distinct_per_host() {
        assert_eq!(rewritten_port(0, 40000), Some(20000));
        assert_eq!(rewritten_port(0, 40100), Some(20100));
        assert_eq!(rewritten_port(0, 443), Some(20443));
        assert_eq!(rewritten_port(2, 40005), Some(22005));
        assert_eq!(rewritten_port(2, 443), Some(22443));
        assert_eq!(rewritten_port(0, 5000), None);
        assert_eq!(rewritten_port(MAX_REWRITING_HOSTS - 1, 443), Some(64443));
        assert_eq!(rewritten_port(MAX_REWRITING_HOSTS, 443), None);
    }

    /// The text of chain `name` in `rules`.
    fn chain<'a>(rules: &'a str, name: &str) -> &'a str {
        let start = rules
            .find(&format!("chain {name} {{"))
            .unwrap_or_else(|| panic!("no chain {name} in {rules}"));
        let end = rules[start..]
            .find("  }\n")
            .map_or(rules.len(), |end| start + end);
        &rules[start..end]
    }

    #[test]
    fn every_kind_drops_unsolicited_input() {
        let wan = Ipv4Addr::new(198, 51, 100, 1);
        for nat in Nat::ALL {
            let rules = router_ruleset(nat, wan, &[Ipv4Addr::new(10, 1, 0, 10)], Input::Drop);
            let input = chain(&rules, "input");
            assert!(input.contains("iifname \"wan0\" drop"), "{nat}: {rules}");
            assert_eq!(rules.contains("snat"), nat.translates(), "{nat}: {rules}");
        }
    }

    #[test]
    fn open_kinds_accept_unsolicited_input_and_still_filter_what_they_forward() {
        let wan = Ipv4Addr::new(198, 51, 100, 1);
        let hosts = [Ipv4Addr::new(10, 1, 0, 10)];
        let drop_line = "    iifname \"wan0\" drop\n  }\n  chain forward";
        for nat in Nat::ALL {
            let open = router_ruleset(nat, wan, &hosts, Input::Accept);
            assert!(!chain(&open, "input").contains("drop"), "{nat}: {open}");
            assert!(
                chain(&open, "forward").contains("iifname \"wan0\" drop"),
                "{nat}: {open}"
            );
            // Nothing but the input chain's drop differs.
            let closed = router_ruleset(nat, wan, &hosts, Input::Drop);
            assert!(closed.contains(drop_line), "{nat}: {closed}");
            assert_eq!(closed.replace(drop_line, "  }\n  chain forward"), open);
        }
        let pod = (Ipv4Addr::new(10, 1, 0, 0), 24);
        let cluster = (Ipv4Addr::new(10, 0, 0, 0), 8);
        let kube = kube_ruleset(KubeNode::FULLY_RANDOM, pod, cluster, Input::Accept);
        assert!(!chain(&kube, "input").contains("drop"), "{kube}");
        assert!(Input::Accept.accepts() && !Input::Drop.accepts());
        assert_eq!(Input::default(), Input::Drop);
    }

    #[test]
    fn ipv6_rulesets_filter_like_ipv4_and_masquerade_only_for_nat66() {
        for kind in [
            None,
            Some(Ipv6Kind::Firewall),
            Some(Ipv6Kind::Masquerade),
            Some(Ipv6Kind::MasqueradeFullyRandom),
        ] {
            let closed = ipv6_ruleset(kind, Input::Drop);
            assert!(closed.starts_with("table ip6 natlab {"), "{closed}");
            let input = chain(&closed, "input");
            assert!(input.contains("iifname \"wan0\" drop"), "{closed}");
            assert!(input.find("nd-neighbor-solicit") < input.find("drop"));
            assert!(chain(&closed, "forward").contains("iifname \"wan0\" drop"));
            let translates = kind.is_some_and(Ipv6Kind::translates);
            assert_eq!(closed.contains("masquerade"), translates, "{closed}");
            let open = ipv6_ruleset(kind, Input::Accept);
            assert!(!chain(&open, "input").contains("drop"), "{open}");
        }
        let random = ipv6_ruleset(Some(Ipv6Kind::MasqueradeFullyRandom), Input::Drop);
        assert!(random.contains("oifname \"wan0\" masquerade fully-random\n"));
        assert_eq!(Ipv6Kind::Masquerade.to_string(), "NAT66 masquerade");
    }

    #[test]
    fn kube_nodes_drop_unsolicited_input_and_exempt_only_when_asked() {
        let pod = (Ipv4Addr::new(10, 1, 0, 0), 24);
        let cluster = (Ipv4Addr::new(10, 0, 0, 0), 8);
        for kube in [KubeNode::MASQUERADE, KubeNode::FULLY_RANDOM] {
            let rules = kube_ruleset(kube, pod, cluster, Input::Drop);
            let input = chain(&rules, "input");
            assert!(input.contains("iifname \"wan0\" drop"), "{kube}: {rules}");
            assert!(rules.contains("table ip flannel-ipv4"), "{kube}: {rules}");
            assert!(!rules.contains("table ip punchport"), "{kube}: {rules}");
            let exempt = kube_ruleset(kube.exempt(kube::PUNCH_PORTS), pod, cluster, Input::Drop);
            assert!(exempt.ends_with(&kube::exemption_ruleset(cluster, kube::PUNCH_PORTS)));
        }
    }
}
