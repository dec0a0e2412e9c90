//! The lab's address plan. Public addresses come from the documentation
//! ranges only (RFC 5737).
//!
//! | what | addresses |
//! | --- | --- |
//! | internet gateway, on every internet-side link | `192.0.2.1/32` |
//! | relay | `203.0.113.10` and `203.0.113.11` |
//! | public hosts | `203.0.113.12`, `.13`, ... (up to `.30`) |
//! | router WANs | `198.51.100.1`, `.2`, ... in builder order |
//! | LAN of NAT router number `i` (1-based) | `10.i.0.0/24`: router `.1`, hosts `.10`, `.11`, ... |
//! | Kubernetes cluster CIDR (a [`KubeNode`](crate::KubeNode)'s LAN is its pod subnet in it) | `10.0.0.0/8` |
//! | LAN of firewall router number `f` (0-based) | `203.0.113.(32 + 32 f)/27`: router `+1`, hosts `+2`, `+3`, ... |
//!
//! A dual-stack lab ([`LabBuilder::dual_stack`], or any router with an
//! [`Ipv6Kind`]) adds IPv6 from the documentation prefix `2001:db8::/32`
//! (RFC 3849) and unique local addresses (RFC 4193). Numbers that mirror an
//! IPv4 octet are written with the same digits (router 12's WAN is
//! `198.51.100.12` and `2001:db8:100::12`), so they read alike but are hex:
//!
//! | what | addresses |
//! | --- | --- |
//! | internet gateway, on every internet-side link | `2001:db8::1/128` |
//! | relay | `2001:db8:113::10` and `2001:db8:113::11` |
//! | public hosts | `2001:db8:113::12`, `::13`, ... (up to `::30`) |
//! | router WANs | `2001:db8:100::1`, `::2`, ... in builder order |
//! | LAN of router number `i` (1-based) with [`Ipv6Kind::Firewall`] (global, routed to the router's WAN address) | `2001:db8:1:i::/64`: router `::1`, hosts `::10`, `::11`, ... |
//! | LAN of router number `i` with a NAT66 kind ([`Ipv6Kind::Masquerade`], [`Ipv6Kind::MasqueradeFullyRandom`]) | `fd00:10:i::/64` (in [`NAT66_ULA`]): router `::1`, hosts `::10`, `::11`, ... |
//!
//! A router with an IPv6 kind and [`ipv6_only`] has no IPv4 on its LAN: its
//! hosts have only the IPv6 address above.
//!
//! [`LabBuilder::dual_stack`]: crate::LabBuilder::dual_stack
//! [`ipv6_only`]: crate::LabBuilder::ipv6_only
//! [`Ipv6Kind`]: crate::Ipv6Kind
//! [`Ipv6Kind::Firewall`]: crate::Ipv6Kind::Firewall
//! [`Ipv6Kind::Masquerade`]: crate::Ipv6Kind::Masquerade
//! [`Ipv6Kind::MasqueradeFullyRandom`]: crate::Ipv6Kind::MasqueradeFullyRandom

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::Ipv6Kind;

/// The address every node uses as its default gateway.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// The cluster CIDR of every [`KubeNode`](crate::KubeNode) router: each
/// node's pod subnet is its LAN, `10.i.0.0/24`, so all Kubernetes nodes of
/// a lab are one cluster. The CNI's and the exemption's rules match it.
pub const KUBE_CLUSTER_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 0, 0, 0), 8);

/// The relay's two addresses.
pub const RELAY_IPS: [Ipv4Addr; 2] = [
    Ipv4Addr::new(203, 0, 113, 10),
    Ipv4Addr::new(203, 0, 113, 11),
];

/// The largest number of public hosts.
pub(crate) const MAX_PUBLIC_HOSTS: usize = 19;
/// The largest number of routers.
pub(crate) const MAX_ROUTERS: usize = 200;
/// The largest number of firewall routers (`/27` subnets in `203.0.113.32–255`).
pub(crate) const MAX_FIREWALLS: usize = 7;
/// The largest number of hosts behind a NAT router.
pub(crate) const MAX_NAT_HOSTS: usize = 200;
/// The largest number of hosts behind a firewall router.
pub(crate) const MAX_FIREWALL_HOSTS: usize = 29;

/// The IPv6 address every node of a dual-stack lab uses as its default
/// gateway.
pub const GATEWAY6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

/// The relay's two IPv6 addresses in a dual-stack lab.
pub const RELAY_IPS6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0x113, 0, 0, 0, 0, 0x10),
    Ipv6Addr::new(0x2001, 0xdb8, 0x113, 0, 0, 0, 0, 0x11),
];

/// The unique local prefix that holds every NAT66 LAN (`fd00:10:i::/64`).
pub const NAT66_ULA: (Ipv6Addr, u8) = (Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 0), 32);

/// Address of public host number `index` (0-based).
pub(crate) fn public_host_ip(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, octet(12 + index))
}

/// WAN address of router number `index` (0-based, builder order).
pub(crate) fn router_wan_ip(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, octet(1 + index))
}

/// IPv6 address of public host number `index` (0-based).
pub(crate) fn public_host_ip6(index: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0x113, 0, 0, 0, 0, same_digits(12 + index))
}

/// IPv6 WAN address of router number `index` (0-based, builder order).
pub(crate) fn router_wan_ip6(index: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, same_digits(1 + index))
}

/// A router's IPv6 LAN: its /64, its own address and its hosts'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lan6 {
    pub(crate) network: Ipv6Addr,
    pub(crate) router: Ipv6Addr,
    pub(crate) hosts: Vec<Ipv6Addr>,
}

/// The prefix length of every IPv6 LAN.
pub const LAN6_PREFIX: u8 = 64;

/// The IPv6 LAN of router number `index` (0-based) of IPv6 kind `kind`:
/// global and routed for a firewall, unique local for NAT66.
pub(crate) fn lan6(kind: Ipv6Kind, index: usize, hosts: usize) -> Lan6 {
    let i = same_digits(1 + index);
    let network = if kind.translates() {
        [0xfd00, 0x10, i, 0]
    } else {
        [0x2001, 0xdb8, 1, i]
    };
    let [a, b, c, d] = network;
    Lan6 {
        network: Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0),
        router: Ipv6Addr::new(a, b, c, d, 0, 0, 0, 1),
        hosts: (0..hosts)
            .map(|j| Ipv6Addr::new(a, b, c, d, 0, 0, 0, same_digits(10 + j)))
            .collect(),
    }
}

/// The 16-bit group written with the decimal digits of `value` (12 becomes
/// `0x12`), so IPv6 addresses mirror the IPv4 octets they stand beside. The
/// builder's limits keep every value below 10000.
fn same_digits(value: usize) -> u16 {
    u16::from_str_radix(&value.to_string(), 16).unwrap_or(u16::MAX)
}

/// A router's LAN: its subnet, prefix length, its own address and its hosts'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lan {
    pub(crate) network: Ipv4Addr,
    pub(crate) prefix: u8,
    pub(crate) router: Ipv4Addr,
    pub(crate) hosts: Vec<Ipv4Addr>,
}

/// The private LAN of NAT router number `index` (0-based).
pub(crate) fn nat_lan(index: usize, hosts: usize) -> Lan {
    let i = octet(1 + index);
    Lan {
        network: Ipv4Addr::new(10, i, 0, 0),
        prefix: 24,
        router: Ipv4Addr::new(10, i, 0, 1),
        hosts: (0..hosts)
            .map(|j| Ipv4Addr::new(10, i, 0, octet(10 + j)))
            .collect(),
    }
}

/// The public LAN of firewall router number `index` (0-based, counting
/// firewall routers only).
pub(crate) fn firewall_lan(index: usize, hosts: usize) -> Lan {
    let base = 32 + 32 * index;
    Lan {
        network: Ipv4Addr::new(203, 0, 113, octet(base)),
        prefix: 27,
        router: Ipv4Addr::new(203, 0, 113, octet(base + 1)),
        hosts: (0..hosts)
            .map(|j| Ipv4Addr::new(203, 0, 113, octet(base + 2 + j)))
            .collect(),
    }
}

/// Clamps to a byte; the builder's limits keep every value in range.
fn octet(value: usize) -> u8 {
    u8::try_from(value).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firewall_lans_avoid_the_relay_and_public_hosts() {
        let last_public = public_host_ip(MAX_PUBLIC_HOSTS - 1);
        assert_eq!(last_public, Ipv4Addr::new(203, 0, 113, 30));
        let first = firewall_lan(0, MAX_FIREWALL_HOSTS);
        assert_eq!(first.network, Ipv4Addr::new(203, 0, 113, 32));
        assert_eq!(first.hosts.last(), Some(&Ipv4Addr::new(203, 0, 113, 62)));
        let last = firewall_lan(MAX_FIREWALLS - 1, MAX_FIREWALL_HOSTS);
        assert_eq!(last.network, Ipv4Addr::new(203, 0, 113, 224));
        assert_eq!(last.hosts.last(), Some(&Ipv4Addr::new(203, 0, 113, 254)));
    }

    #[test]
    fn ipv6_addresses_mirror_the_ipv4_plan() {
        let address = |text: &str| text.parse::<Ipv6Addr>().expect("address");
        assert_eq!(router_wan_ip6(11), address("2001:db8:100::12"));
        assert_eq!(
            router_wan_ip6(MAX_ROUTERS - 1),
            address("2001:db8:100::200")
        );
        assert_eq!(public_host_ip6(0), address("2001:db8:113::12"));
        assert_eq!(
            public_host_ip6(MAX_PUBLIC_HOSTS - 1),
            address("2001:db8:113::30")
        );
        let firewall = lan6(Ipv6Kind::Firewall, 1, 2);
        assert_eq!(firewall.network, address("2001:db8:1:2::"));
        assert_eq!(firewall.router, address("2001:db8:1:2::1"));
        assert_eq!(
            firewall.hosts,
            [address("2001:db8:1:2::10"), address("2001:db8:1:2::11")]
        );
        let nat = lan6(Ipv6Kind::Masquerade, MAX_ROUTERS - 1, MAX_NAT_HOSTS);
        assert_eq!(nat.router, address("fd00:10:200::1"));
        assert_eq!(nat.hosts.last(), Some(&address("fd00:10:200::209")));
        let ula = NAT66_ULA.0.segments();
        assert_eq!(&nat.network.segments()[..2], &ula[..2]);
    }

    #[test]
    fn nat_lans_follow_the_router_index() {
        let lan = nat_lan(1, 2);
        assert_eq!(lan.router, Ipv4Addr::new(10, 2, 0, 1));
        assert_eq!(
            lan.hosts,
            [Ipv4Addr::new(10, 2, 0, 10), Ipv4Addr::new(10, 2, 0, 11)]
        );
        assert_eq!(router_wan_ip(0), Ipv4Addr::new(198, 51, 100, 1));
    }
}
