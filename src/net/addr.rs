//! Reading QUIC socket addresses out of multiaddrs.

use std::{fmt, net::SocketAddr};

use libp2p_core::{Multiaddr, multiaddr::Protocol};
use libp2p_identity::PeerId;

/// A QUIC address, `/ip4|ip6/<ip>/udp/<port>/quic-v1` with an optional
/// trailing `/p2p/<peer id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuicAddr {
    /// The UDP socket address.
    pub socket: SocketAddr,
    /// The peer id of a trailing `/p2p/` component, if any.
    pub peer_id: Option<PeerId>,
}

impl QuicAddr {
    /// Reads a QUIC address. Relayed (`/p2p-circuit`), DNS, TCP and draft-29
    /// (`/quic`) addresses are refused with an [`AddrError`] that says why.
    pub fn parse(addr: &Multiaddr) -> Result<Self, AddrError> {
        let err = |reason| AddrError {
            addr: addr.clone(),
            reason,
        };
        let mut iter = addr.iter();
        let ip = match iter.next() {
            Some(Protocol::Ip4(ip)) => ip.into(),
            Some(Protocol::Ip6(ip)) => ip.into(),
            Some(Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_)) => {
                return Err(err(AddrErrorReason::NotAnIp));
            }
            _ => return Err(err(AddrErrorReason::NotAnIp)),
        };
        let port = match iter.next() {
            Some(Protocol::Udp(port)) => port,
            _ => return Err(err(AddrErrorReason::NotUdp)),
        };
        match iter.next() {
            Some(Protocol::QuicV1) => {}
            Some(Protocol::Quic) => return Err(err(AddrErrorReason::Draft29)),
            _ => return Err(err(AddrErrorReason::NotQuicV1)),
        }
        let peer_id = match iter.next() {
            None => None,
            Some(Protocol::P2p(peer_id)) => Some(peer_id),
            Some(_) => return Err(err(AddrErrorReason::Trailing)),
        };
        if iter.next().is_some() {
            return Err(err(AddrErrorReason::Trailing));
        }
        Ok(Self {
            socket: SocketAddr::new(ip, port),
            peer_id,
        })
    }

    /// The address as a multiaddr, with `/p2p/` if a peer id is set.
    pub fn to_multiaddr(&self) -> Multiaddr {
        let addr = Multiaddr::empty()
            .with(self.socket.ip().into())
            .with(Protocol::Udp(self.socket.port()))
            .with(Protocol::QuicV1);
        match self.peer_id {
            Some(peer_id) => addr.with(Protocol::P2p(peer_id)),
            None => addr,
        }
    }
}

impl fmt::Display for QuicAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_multiaddr().fmt(f)
    }
}

/// Whether anyone could send to `ip`: not unspecified, multicast or broadcast.
/// Private, loopback and documentation addresses count as routable (LANs and
/// labs punch too).
pub(crate) fn is_routable(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast())
        }
        std::net::IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

/// Whether `addr` is a QUIC address that [`QuicAddr::parse`] accepts.
#[cfg(test)]
fn is_quic_addr(addr: &Multiaddr) -> bool {
    QuicAddr::parse(addr).is_ok()
}

/// A multiaddr that is not a usable QUIC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{addr}` is not a QUIC address: {reason}; write it as `/ip4/<ip>/udp/<port>/quic-v1` or `/ip6/<ip>/udp/<port>/quic-v1`, optionally followed by `/p2p/<peer id>`"
)]
#[non_exhaustive]
pub struct AddrError {
    /// The address as given.
    pub addr: Multiaddr,
    /// What is wrong with it.
    pub reason: AddrErrorReason,
}

/// What is wrong with a multiaddr given as a QUIC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddrErrorReason {
    /// It does not start with `/ip4/` or `/ip6/`.
    #[error(
        "it does not start with an IP address (`/ip4/` or `/ip6/`; DNS names are not resolved here)"
    )]
    NotAnIp,
    /// The IP is not followed by `/udp/<port>`.
    #[error("the IP address is not followed by `/udp/<port>`")]
    NotUdp,
    /// It uses the draft-29 `/quic` codepoint.
    #[error("`/quic` is QUIC draft-29, which libp2p no longer speaks; use `/quic-v1`")]
    Draft29,
    /// The UDP port is not followed by `/quic-v1`.
    #[error("the UDP port is not followed by `/quic-v1`")]
    NotQuicV1,
    /// Something other than one `/p2p/<peer id>` follows `/quic-v1`.
    #[error(
        "only `/p2p/<peer id>` may follow `/quic-v1` (relayed `/p2p-circuit` addresses are not direct QUIC addresses)"
    )]
    Trailing,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip4_ip6_and_peer_id() {
        let peer = PeerId::random();
        let a = QuicAddr::parse(&"/ip4/203.0.113.7/udp/40001/quic-v1".parse().unwrap()).unwrap();
        assert_eq!(a.socket, "203.0.113.7:40001".parse().unwrap());
        assert_eq!(a.peer_id, None);
        let text = format!("/ip6/::1/udp/9/quic-v1/p2p/{peer}");
        let b = QuicAddr::parse(&text.parse().unwrap()).unwrap();
        assert_eq!(b.socket, "[::1]:9".parse().unwrap());
        assert_eq!(b.peer_id, Some(peer));
        assert_eq!(b.to_string(), text);
    }

    #[test]
    fn refuses_other_kinds_and_names_the_value() {
        for (text, reason) in [
            ("/ip4/1.2.3.4/tcp/1", AddrErrorReason::NotUdp),
            ("/dns4/example.com/udp/1/quic-v1", AddrErrorReason::NotAnIp),
            ("/ip4/1.2.3.4/udp/1", AddrErrorReason::NotQuicV1),
            ("/ip4/1.2.3.4/udp/1/quic", AddrErrorReason::Draft29),
            (
                "/ip4/1.2.3.4/udp/1/quic-v1/p2p-circuit",
                AddrErrorReason::Trailing,
            ),
            ("/udp/1/quic-v1", AddrErrorReason::NotAnIp),
        ] {
            let addr: Multiaddr = text.parse().unwrap();
            let err = QuicAddr::parse(&addr).unwrap_err();
            assert_eq!(err.reason, reason, "{text}");
            assert!(err.to_string().contains(text), "{err}");
            assert!(err.to_string().contains("/quic-v1"), "{err}");
            assert!(!is_quic_addr(&addr));
        }
    }
}
