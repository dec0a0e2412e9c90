//! IP families: a node has at most one punch socket per family.

use std::{fmt, net::IpAddr};

/// The IP family of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl Family {
    /// The family of `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// The listen address that binds a punch socket of this family on every
    /// interface.
    pub fn punch_listen_hint(self) -> &'static str {
        match self {
            Family::Ipv4 => "/ip4/0.0.0.0/udp/0/quic-v1",
            Family::Ipv6 => "/ip6/::/udp/0/quic-v1",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        })
    }
}
