//! Probe policy: when an observation of the punch port is checked against a
//! second observer, and which of the observer's addresses is asked; and
//! which observer address a family's punch socket reaches out to when no
//! observer has seen it yet.

use std::net::{IpAddr, SocketAddr};

use libp2p_core::Multiaddr;
use libp2p_identity::PeerId;
use libp2p_swarm::ConnectionId;

use super::connections::Seen;
use crate::{dcutr::nat::MappingKind, net::Family, net::QuicAddr};

/// A move that waits for the probe's answer.
#[derive(Debug, Clone)]
pub(super) struct Deferred {
    pub(super) peer: PeerId,
    pub(super) remote: Multiaddr,
    pub(super) local: u16,
    /// The port the first observer saw.
    pub(super) observed: u16,
}

/// What has been done about the current punch port.
#[derive(Debug, Default)]
pub(super) struct PortState {
    port: u16,
    /// A probe was dialed for this port.
    probed: bool,
    /// The probe's connection id, while it is pending.
    pub(super) probe: Option<ConnectionId>,
    /// A move waiting for the probe's answer.
    pub(super) deferred: Option<Deferred>,
}

/// What an observation of the punch port leads to.
#[derive(Debug)]
pub(super) enum Next {
    /// It says nothing about the punch port.
    Nothing,
    /// The port was kept.
    Kept,
    /// The port was rewritten (seen at `observed`); a second observer is
    /// asked before deciding.
    Wait { observed: u16 },
    /// The port was rewritten (seen at `observed`): decide whether to move,
    /// and if so, redial the observer.
    Decide {
        local: u16,
        observed: u16,
        redial: (PeerId, Multiaddr),
    },
}

impl PortState {
    /// Observations are of punch port `port` now.
    pub(super) fn follow(&mut self, port: u16) {
        if self.port != port {
            *self = PortState {
                port,
                ..PortState::default()
            };
        }
    }

    /// Whether `id` is the pending probe: it is answered now.
    pub(super) fn answered(&mut self, id: ConnectionId) -> bool {
        self.probe.take_if(|probe| *probe == id).is_some()
    }

    /// The probe's answer `seen`: it decides a move that waited for it.
    pub(super) fn answer(&mut self, seen: &Seen) -> Next {
        match self.deferred.take() {
            Some(deferred) => Next::Decide {
                local: deferred.local,
                observed: deferred.observed,
                redial: (deferred.peer, deferred.remote),
            },
            None if seen.kept() => Next::Kept,
            None => Next::Nothing,
        }
    }

    /// A first opinion `seen` (not a probe's): returns what follows and
    /// the address to probe, if a probe is to be dialed. A probe asks a
    /// second opinion once per port. It is not needed when the port was
    /// kept and two observers have already classified the NAT (`mapping`):
    /// then it would only open one more connection, here to a peer's other
    /// listener (its 443), which nobody asked for. A move under way
    /// (`moving`) is not probed either.
    pub(super) fn first_opinion(
        &mut self,
        seen: &Seen,
        mapping: MappingKind,
        moving: bool,
        may_move: bool,
        listen_addrs: &[Multiaddr],
    ) -> (Next, Option<Multiaddr>) {
        let kept = seen.kept();
        let observed = seen.observed.port();
        let settled = kept && mapping != MappingKind::Unknown;
        let mut probe = None;
        if !self.probed
            && !settled
            && !moving
            && let Some(addr) = probe_target(&seen.remote, listen_addrs)
        {
            self.probed = true;
            probe = Some(addr);
            if !kept && may_move {
                self.deferred = Some(Deferred {
                    peer: seen.peer,
                    remote: seen.remote.clone(),
                    local: seen.local,
                    observed,
                });
                return (Next::Wait { observed }, probe);
            }
        }
        let next = if kept {
            Next::Kept
        } else if self.deferred.is_some() {
            // Still waiting for the probe.
            Next::Wait { observed }
        } else {
            Next::Decide {
                local: seen.local,
                observed,
                redial: (seen.peer, seen.remote.clone()),
            }
        };
        (next, probe)
    }
}

/// Another QUIC address of the observer, of the same family: a second
/// observer. Another IP is best; another port of the same IP also tells,
/// because NATs that map endpoint-dependently (Linux `random-fully`, cloud
/// NAT gateways) change the mapping when only the destination port changes.
pub(super) fn probe_target(remote: &Multiaddr, listen_addrs: &[Multiaddr]) -> Option<Multiaddr> {
    let remote = QuicAddr::parse(remote).ok()?.socket;
    let usable = |candidate: &QuicAddr| {
        let ip = candidate.socket.ip();
        candidate.socket != remote
            && candidate.socket.port() != 0
            && Family::of(ip) == Family::of(remote.ip())
            && !ip.is_unspecified()
            && ip.is_loopback() == remote.ip().is_loopback()
    };
    let candidates: Vec<QuicAddr> = listen_addrs
        .iter()
        .filter_map(|addr| QuicAddr::parse(addr).ok())
        .filter(usable)
        .collect();
    candidates
        .iter()
        .find(|c| c.socket.ip() != remote.ip())
        .or(candidates.first())
        .map(|q| bare(q.socket))
}

/// An address of the observer in `family` (another family than the
/// connection's, `remote`), for a punch socket that no observer has seen.
pub(super) fn reach_target(
    family: Family,
    remote: SocketAddr,
    listen_addrs: &[Multiaddr],
) -> Option<Multiaddr> {
    listen_addrs
        .iter()
        .filter_map(|a| QuicAddr::parse(a).ok())
        .find(|q| {
            let ip = q.socket.ip();
            Family::of(ip) == family
                && q.socket.port() != 0
                && !ip.is_unspecified()
                && ip.is_loopback() == remote.ip().is_loopback()
                && !is_link_local(ip)
        })
        .map(|q| bare(q.socket))
}

/// An IPv6 link-local address (fe80::/10): not reachable off the link.
fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

/// `socket` as a QUIC multiaddr without a peer id.
fn bare(socket: SocketAddr) -> Multiaddr {
    QuicAddr {
        socket,
        peer_id: None,
    }
    .to_multiaddr()
}
