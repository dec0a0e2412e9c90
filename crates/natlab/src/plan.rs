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

use std::net::Ipv4Addr;

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

/// Address of public host number `index` (0-based).
pub(crate) fn public_host_ip(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, octet(12 + index))
}

/// WAN address of router number `index` (0-based, builder order).
pub(crate) fn router_wan_ip(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, octet(1 + index))
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
