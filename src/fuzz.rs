//! Entry points for `cargo fuzz` (`fuzz/`), compiled only with
//! `--cfg fuzzing`, which cargo-fuzz sets: they drive crate-internal parts
//! that the public API reaches only through a bound socket.

use std::task::{Context, Poll, Waker};

use libp2p_core::{Multiaddr, transport::ListenerId};
use libp2p_swarm::{
    FromSwarm, NetworkBehaviour, NewExternalAddrCandidate, ToSwarm, behaviour::NewListenAddr,
};

use crate::{
    Behaviour, Decision, Event, Family, PortRange, QuicAddr,
    dcutr::Config,
    net::{SocketTable, is_routable},
};

/// punchport's DCUtR behaviour fed arbitrary listen addresses, observed
/// candidates and announced addresses: never panics, and every candidate it
/// hands DCUtR obeys the filter's rules.
#[allow(clippy::unwrap_used)]
pub fn candidate_filter(data: &[u8]) {
    let range = PortRange::new(40000, 40050).unwrap();
    let peer = libp2p_identity::PeerId::from_bytes(&[0, 2, 1, 2]).unwrap();
    let translate = data.first().is_some_and(|b| b & 1 == 1);
    // The transport's table, filled as the transport would: a listen address
    // inside the range binds the punch socket of its family.
    let table = SocketTable::new(range, crate::DEFAULT_OPENER_TTL);
    let mut behaviour = Behaviour::with_config(
        peer,
        table.handle(),
        Config::new().with_translation(translate),
    );
    let listener = ListenerId::next();
    // Each chunk: a kind byte, a length byte, then that many bytes of multiaddr.
    let mut rest = data.get(1..).unwrap_or_default();
    while let [kind, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (bytes, next) = tail.split_at(len);
        rest = next;
        let Ok(addr) = Multiaddr::try_from(bytes.to_vec()) else {
            continue;
        };
        match kind % 3 {
            0 => {
                if let Ok(quic) = QuicAddr::parse(&addr)
                    && range.contains(quic.socket.port())
                    && table.handle().get(Family::of(quic.socket.ip())).is_none()
                {
                    table.bound(listener, quic.socket);
                }
                behaviour.on_swarm_event(FromSwarm::NewListenAddr(NewListenAddr {
                    listener_id: listener,
                    addr: &addr,
                }))
            }
            1 => behaviour.on_swarm_event(FromSwarm::NewExternalAddrCandidate(
                NewExternalAddrCandidate { addr: &addr },
            )),
            _ => {
                let _ = behaviour.add_announced_address(addr);
            }
        }
    }
    let mut cx = Context::from_waker(Waker::noop());
    while let Poll::Ready(event) = behaviour.poll(&mut cx) {
        let ToSwarm::GenerateEvent(Event::Candidate(verdict)) = event else {
            continue;
        };
        match &verdict.decision {
            Decision::Kept => {
                let quic = QuicAddr::parse(&verdict.addr).unwrap();
                assert!(range.contains(quic.socket.port()) && is_routable(quic.socket.ip()));
            }
            Decision::Translated(to) => {
                let to = QuicAddr::parse(to).unwrap();
                assert!(translate && range.contains(to.socket.port()));
                assert_eq!(
                    Some(to.socket.ip()),
                    QuicAddr::parse(&verdict.addr).ok().map(|q| q.socket.ip())
                );
            }
            Decision::Bypassed => assert!(QuicAddr::parse(&verdict.addr).is_err()),
            Decision::Dropped(_) => assert!(verdict.candidate().is_none()),
            _ => {}
        }
    }
    let stats = behaviour.filter_stats();
    assert_eq!(
        stats.seen,
        stats.kept
            + stats.translated
            + stats.fallback
            + stats.bypassed
            + stats.dropped
            + stats.on_punch_socket
    );
}
