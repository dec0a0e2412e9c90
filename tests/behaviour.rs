//! `punchport::Behaviour` in real swarms on loopback, as users run it:
//! punchport's QUIC transport sharing its punch sockets with the behaviour,
//! a real circuit relay, identify, DCUtR. The other side is either another
//! such peer or a scripted DCUtR remote that records what CONNECT carried.

#![allow(clippy::unwrap_used)]

mod behaviour_support;
use behaviour_support as support;

use std::{net::UdpSocket, time::Duration};

use libp2p::{Multiaddr, swarm::SwarmEvent};
use punchport::{
    AttemptOutcome, AttemptReport, CandidateMode, Config, DialFailure, DirectReport, Event,
    Observation, Side,
};
use punchport::{Family, PortRange};
use support::{Answer, PeerNode, quic, socket};

fn range(start: u16) -> PortRange {
    PortRange::new(start, start + 49).unwrap()
}

/// UDP sockets on `ip` that a hostile CONNECT names; none may hear a packet.
fn decoys(ip: &str, count: usize) -> Vec<UdpSocket> {
    (0..count)
        .map(|_| {
            let socket = UdpSocket::bind((ip, 0)).unwrap();
            socket.set_nonblocking(true).unwrap();
            // From the start: the kernel stamps a datagram when it arrives
            // only while some socket asks for stamps (otherwise it stamps
            // it when it is read), and reports its TTL only when asked.
            support::record_ttl_and_time(&socket);
            socket
        })
        .collect()
}

fn raw(sockets: &[UdpSocket]) -> Vec<Vec<u8>> {
    sockets
        .iter()
        .map(|s| quic(s.local_addr().unwrap()).to_vec())
        .collect()
}

fn assert_silent(sockets: &[UdpSocket]) {
    let mut buffer = [0; 2048];
    for socket in sockets {
        assert!(
            socket.recv_from(&mut buffer).is_err(),
            "a packet reached {}",
            socket.local_addr().unwrap()
        );
    }
}

/// A peer on `range` (with `config`) that reserves on a relay, and a
/// scripted remote that dials it through the relay and answers CONNECT with
/// the addresses of `targets`. The relay and the remote come back too: they
/// must outlive the test.
async fn connect_naming(
    range: PortRange,
    config: impl FnOnce(Config) -> Config,
    targets: &[UdpSocket],
) -> (
    support::Node<support::RelayBehaviour>,
    PeerNode,
    support::Remote,
) {
    let (relay, relay_addr) = support::relay().await;
    let mut a = support::peer(range, config, &["/ip4/127.0.0.1/udp/0/quic-v1"]).await;
    a.reserve(&relay_addr).await;
    let mut remote = support::remote(
        &["/ip4/127.0.0.1/udp/0/quic-v1"],
        Answer::These(raw(targets)),
    )
    .await;
    remote.dial_through(&relay_addr, a.peer_id).await;
    (relay, a, remote)
}

/// Announces `addr` (a public address from configuration) on `node`.
async fn announce(node: &mut PeerNode, addr: &'static str) {
    node.with(move |swarm| {
        swarm
            .behaviour_mut()
            .dcutr
            .add_announced_address(addr.parse().unwrap())
            .unwrap()
    })
    .await;
}

async fn attempt(node: &mut PeerNode) -> AttemptReport {
    node.wait_dcutr("an attempt report", |e| match e {
        Event::Attempt(report) => Some(report.clone()),
        _ => None,
    })
    .await
}

/// This side's attempt report and the punch's success, in whichever order
/// they come (the other side's dial may connect first).
async fn punched(node: &mut PeerNode) -> (AttemptReport, DirectReport) {
    let (mut attempt, mut direct) = (None, None);
    while attempt.is_none() || direct.is_none() {
        node.wait_dcutr("the attempt and the punch's success", |e| match e {
            Event::Attempt(report) => {
                attempt = Some(report.clone());
                Some(())
            }
            Event::Direct(report) => {
                direct = Some(report.clone());
                Some(())
            }
            _ => None,
        })
        .await;
    }
    (attempt.unwrap(), direct.unwrap())
}

/// `node`'s IPv4 punch socket.
async fn punch_socket(node: &PeerNode) -> punchport::PunchSocket {
    node.with(|swarm| {
        swarm
            .behaviour()
            .dcutr
            .punch_sockets()
            .get(Family::Ipv4)
            .unwrap()
    })
    .await
}

async fn punch_port(node: &PeerNode) -> u16 {
    punch_socket(node).await.port()
}

#[tokio::test]
async fn the_remote_receives_in_connect_what_the_behaviour_reports_it_sent() {
    let (_relay, relay_addr) = support::relay().await;
    let mut a = support::peer(range(44000), |c| c, &["/ip4/127.0.0.1/udp/0/quic-v1"]).await;
    // An announced address is translated onto the punch port, and comes
    // before the relay's observation in DCUtR's list.
    announce(&mut a, "/ip4/192.0.2.7/udp/0/quic-v1").await;
    a.reserve(&relay_addr).await;
    let punch = punch_socket(&a).await;
    let advertised = a.candidates().await;

    let mut remote = support::remote(&["/ip4/127.0.0.1/udp/0/quic-v1"], Answer::Own).await;
    let remote_addr = remote.listen[0].clone();
    remote.dial_through(&relay_addr, a.peer_id).await;
    let received = remote.connect().await;

    let me = libp2p::multiaddr::Protocol::P2p(a.peer_id);
    assert_eq!(
        received,
        [
            format!("/ip4/192.0.2.7/udp/{}/quic-v1", punch.port()),
            format!("/ip4/127.0.0.1/udp/{}/quic-v1", punch.port()),
        ]
        .map(|a| a.parse::<Multiaddr>().unwrap().with(me.clone()))
    );
    assert_eq!(received, advertised);

    // The attempt says what was sent and received, and that the dial left
    // the punch socket and connected.
    let (report, direct) = punched(&mut a).await;
    assert_eq!((report.side, report.attempt), (Side::Initiator, 1));
    assert_eq!(report.candidates_sent, received);
    assert_eq!(
        report.candidates_received,
        std::slice::from_ref(&remote_addr)
    );
    assert_eq!(
        report.local_addr,
        Some(quic(punch.local_addr_for([127, 0, 0, 1].into())))
    );
    let AttemptOutcome::Direct { address } = &report.outcome else {
        panic!("{report:?}")
    };
    assert_eq!(socket(address), socket(&remote_addr));
    assert_eq!(direct.remote_peer_id, remote.node.peer_id);
    assert_eq!(direct.side, Side::Initiator);
}

#[tokio::test]
async fn a_connect_with_more_candidates_than_dcutr_sends_is_denied_before_anything_leaves() {
    let targets = decoys("127.0.0.1", 21);
    let (_relay, mut a, _remote) = connect_naming(range(44050), |c| c, &targets).await;

    // DCUtR tries three times; each dial is denied, and then it gives up.
    for round in 1..=3 {
        let report = attempt(&mut a).await;
        assert_eq!(report.attempt, round);
        assert_eq!(report.candidates_received.len(), 21);
        let AttemptOutcome::Failed { error } = &report.outcome else {
            panic!("{report:?}")
        };
        let DialFailure::TooManyCandidates(denied) = error else {
            panic!("{error:?}")
        };
        assert_eq!((denied.count, denied.max), (21, 20));
        assert!(
            error
                .to_string()
                .contains("21 address candidates, more than the 20"),
            "{error}"
        );
    }
    let failed = a
        .wait_dcutr("the punch's failure", |e| match e {
            Event::PunchFailed(report) => Some(report.clone()),
            _ => None,
        })
        .await;
    assert_eq!((failed.side, failed.attempts), (Side::Initiator, 3));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_silent(&targets);
}

#[tokio::test]
async fn a_punch_to_a_family_without_a_punch_socket_is_denied() {
    let targets = decoys("::1", 2);
    let (_relay, mut a, _remote) = connect_naming(range(44100), |c| c, &targets).await;
    let report = attempt(&mut a).await;
    let AttemptOutcome::Failed { error } = &report.outcome else {
        panic!("{report:?}")
    };
    assert!(matches!(error, DialFailure::NoPunchSocket(_)), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("no IPv6 punch socket is bound") && text.contains("/ip6/::/udp/0/quic-v1"),
        "{error}"
    );
    assert_eq!(report.local_addr, None);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_silent(&targets);
}

#[tokio::test]
async fn a_punch_dial_that_hears_nothing_reports_a_handshake_timeout() {
    // A socket that never answers: the punch's datagrams reach it and die.
    let silent = decoys("127.0.0.1", 1);
    let short_handshake = |mut c: Config| {
        c.quic_mut().handshake_timeout = Duration::from_millis(300);
        c
    };
    let (_relay, mut a, _remote) = connect_naming(range(44350), short_handshake, &silent).await;
    let report = attempt(&mut a).await;
    assert_eq!(
        report.outcome,
        AttemptOutcome::Failed {
            error: DialFailure::HandshakeTimedOut
        },
        "{report:?}"
    );
}

#[tokio::test]
async fn each_family_punches_from_its_own_punch_socket() {
    let (_relay, relay_addr) = support::relay().await;
    let mut a = support::peer(
        range(44150),
        |c| c,
        &["/ip4/127.0.0.1/udp/0/quic-v1", "/ip6/::1/udp/0/quic-v1"],
    )
    .await;
    let sockets = a
        .with(|swarm| swarm.behaviour().dcutr.punch_sockets().all())
        .await;
    assert_eq!(sockets.len(), 2, "{sockets:?}");
    assert_ne!(sockets[0].family(), sockets[1].family());
    assert!(sockets.iter().all(|s| range(44150).contains(s.port())));
    a.reserve(&relay_addr).await;

    for family in [Family::Ipv6, Family::Ipv4] {
        let punch = sockets.iter().find(|s| s.family() == family).unwrap();
        let listen = match family {
            Family::Ipv4 => "/ip4/127.0.0.1/udp/0/quic-v1",
            Family::Ipv6 => "/ip6/::1/udp/0/quic-v1",
        };
        // The remote answers CONNECT with its own address of `family`.
        let mut remote = support::remote(&[listen], Answer::Own).await;
        let own = socket(&remote.listen[0]);
        remote.dial_through(&relay_addr, a.peer_id).await;
        remote.connect().await;
        let seen_from = remote
            .node
            .wait("the direct connection", |e| match e {
                SwarmEvent::ConnectionEstablished { endpoint, .. } if !endpoint.is_relayed() => {
                    Some(socket(endpoint.get_remote_address()))
                }
                _ => None,
            })
            .await;
        assert_eq!(seen_from.port(), punch.port(), "{family}");
        let direct = a
            .wait_dcutr("the punch's success", |e| match e {
                Event::Direct(report) => Some(report.clone()),
                _ => None,
            })
            .await;
        assert_eq!(direct.remote_peer_id, remote.node.peer_id);
        assert_eq!(
            direct.local_addr.as_ref().map(socket).map(|s| s.port()),
            Some(punch.port())
        );
        assert_eq!(socket(&direct.remote_addr), own);
    }
}

#[tokio::test]
async fn a_rewritten_punch_port_moves_the_socket_and_the_candidates() {
    let (mut relay, relay_addr) = support::relay().await;
    let config = |c: Config| c.with_candidates(CandidateMode::Range);
    let mut a = support::peer(range(44200), config, &["/ip4/127.0.0.1/udp/0/quic-v1"]).await;
    announce(&mut a, "/ip4/192.0.2.7/udp/0/quic-v1").await;
    let relay_peer = relay.peer_id;
    let dial = relay_addr.clone();
    a.with(move |swarm| swarm.dial(dial).unwrap()).await;
    let connection = a
        .wait("the relay connection", |e| match e {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            } if *peer_id == relay_peer => Some(*connection_id),
            _ => None,
        })
        .await;
    let identified = |id| {
        move |e: &SwarmEvent<support::PeerEvent>| {
            matches!(
                e,
                SwarmEvent::Behaviour(support::PeerEvent::Identify(
                    libp2p::identify::Event::Received { connection_id, .. }
                )) if *connection_id == id
            )
            .then_some(())
        }
    };
    a.wait("identify from the relay", identified(connection))
        .await;
    let old = a
        .with(|swarm| swarm.behaviour().dcutr.punch_sockets().get(Family::Ipv4))
        .await
        .unwrap();

    // The relay says it saw the punch socket at another port, as a NAT
    // that remapped it would show; with no second observer, it moves.
    let observation = a
        .with(move |swarm| {
            swarm.behaviour_mut().dcutr.observed_address(
                connection,
                &"/ip4/127.0.0.1/udp/1234/quic-v1".parse().unwrap(),
                &[],
            )
        })
        .await;
    let Observation::Rewritten {
        moving_to: Some(to),
        ..
    } = observation
    else {
        panic!("{observation:?}")
    };
    assert!(range(44200).contains(to) && to != old.port());
    // The new socket listens, and the relay is dialed again from it, in
    // whichever order the swarm reports them.
    let (mut listening, mut redialed) = (false, None);
    while !listening || redialed.is_none() {
        a.wait("the new socket and the redial", |e| match e {
            SwarmEvent::NewListenAddr { address, .. } if socket(address).port() == to => {
                listening = true;
                Some(())
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            } if *peer_id == relay_peer && *connection_id != connection => {
                redialed = Some(*connection_id);
                Some(())
            }
            _ => None,
        })
        .await;
    }
    let now = a
        .with(|swarm| swarm.behaviour().dcutr.punch_sockets().get(Family::Ipv4))
        .await
        .unwrap();
    assert_eq!(now.port(), to);
    assert_ne!(now.listener, old.listener);
    // The relay is dialed again, from the new socket.
    let from = relay
        .wait("the relay's connection from the new socket", |e| match e {
            SwarmEvent::ConnectionEstablished { endpoint, .. } => {
                let from = socket(endpoint.get_remote_address());
                (from.port() == to).then_some(from)
            }
            _ => None,
        })
        .await;
    assert_eq!(from.port(), to);
    // The announced address is decided again onto the new port, and the
    // relay's observation of the new socket follows it. DCUtR's own list
    // keeps the old port's entry until newer ones push it out: it costs the
    // remote one dial that nothing answers.
    a.wait("identify of the new socket", identified(redialed.unwrap()))
        .await;
    let candidates = a.candidates().await;
    let me = libp2p::multiaddr::Protocol::P2p(a.peer_id);
    let newest: Vec<Multiaddr> = [
        format!("/ip4/192.0.2.7/udp/{to}/quic-v1"),
        format!("/ip4/127.0.0.1/udp/{to}/quic-v1"),
    ]
    .iter()
    .map(|a| a.parse::<Multiaddr>().unwrap().with(me.clone()))
    .collect();
    assert_eq!(
        candidates[candidates.len() - 2..],
        newest[..],
        "{candidates:?}"
    );
}

#[tokio::test]
async fn two_punchport_peers_report_each_side_of_the_punch() {
    let (_relay, relay_addr) = support::relay().await;
    let listen = ["/ip4/127.0.0.1/udp/0/quic-v1"];
    let mut a = support::peer(range(44250), |c| c, &listen).await;
    let mut b = support::peer(range(44250), |c| c, &listen).await;
    a.reserve(&relay_addr).await;
    b.reach(&relay_addr).await;
    let a_sent = a.candidates().await;
    let b_sent = b.candidates().await;
    let (a_port, b_port) = (punch_port(&a).await, punch_port(&b).await);
    assert_ne!(a_port, b_port);
    b.dial_through(&relay_addr, a.peer_id).await;

    for (node, side, sent, received, local, remote) in [
        (&mut a, Side::Initiator, &a_sent, &b_sent, a_port, b_port),
        (&mut b, Side::Responder, &b_sent, &a_sent, b_port, a_port),
    ] {
        let (report, direct) = punched(node).await;
        assert_eq!(direct.side, side);
        assert!(direct.attempts <= 1, "{direct:?}");
        assert_eq!((report.side, report.attempt), (side, 1), "{report:?}");
        assert_eq!(&report.candidates_sent, sent, "{side:?}");
        assert_eq!(&report.candidates_received, received, "{side:?}");
        assert_eq!(
            report.local_addr.as_ref().map(|a| socket(a).port()),
            Some(local)
        );
        let AttemptOutcome::Direct { address } = &report.outcome else {
            panic!("{report:?}")
        };
        assert_eq!(socket(address).port(), remote);
    }
}

/// Waits until `node`'s wrapped libp2p-dcutr has been replaced `renewals`
/// times (it is, on the first poll with nothing queued after the bound).
async fn renewed(node: &PeerNode, renewals: u64) -> punchport::Tracked {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let tracked = node.with(|swarm| swarm.behaviour().dcutr.tracked()).await;
        if tracked.dcutr_renewals >= renewals {
            return tracked;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no renewal {renewals}: {tracked:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// libp2p-dcutr 0.15 never removes entries of two of its maps, one per
/// dial; the wrapper replaces it after `with_dcutr_renewal(n)` dials. Here
/// n = 1, so each punch renews it on both sides. Punches go on across
/// renewals, CONNECT still carries what the other side reports it sent (the
/// candidates were handed to the new behaviour), the entries never exceed
/// the bound, and the direct connection of each round, made before a
/// renewal, closes after it without upsetting the new behaviour (which
/// panics on a direct connection it does not know, and would stop the
/// swarm).
#[tokio::test]
async fn punches_go_on_across_renewals_and_dcutrs_maps_stay_bounded() {
    let (_relay, relay_addr) = support::relay().await;
    let listen = ["/ip4/127.0.0.1/udp/0/quic-v1"];
    let config = |c: Config| c.with_dcutr_renewal(1);
    let mut a = support::peer(range(44300), config, &listen).await;
    let mut b = support::peer(range(44300), config, &listen).await;
    a.reserve(&relay_addr).await;
    b.reach(&relay_addr).await;
    let a_id = a.peer_id;
    let circuit = relay_addr
        .clone()
        .with(libp2p::multiaddr::Protocol::P2pCircuit)
        .with(libp2p::multiaddr::Protocol::P2p(a_id));
    for round in 0..3u64 {
        let dial = circuit.clone();
        b.with(move |swarm| swarm.dial(dial).unwrap()).await;
        let (a_report, a_direct) = punched(&mut a).await;
        let (b_report, _) = punched(&mut b).await;
        assert_eq!(
            a_report.candidates_received, b_report.candidates_sent,
            "round {round}"
        );
        assert_eq!(
            b_report.candidates_received, a_report.candidates_sent,
            "round {round}"
        );
        for node in [&a, &b] {
            let tracked = renewed(node, round + 1).await;
            assert!(tracked.dcutr_entries <= 1, "round {round}: {tracked:?}");
        }
        // Close every connection between the two: the direct one is older
        // than the renewal.
        b.with(move |swarm| {
            let _ = swarm.disconnect_peer_id(a_id);
        })
        .await;
        let closed = a_direct.connection_id;
        a.wait("the direct connection closed", |e| {
            matches!(e, SwarmEvent::ConnectionClosed { connection_id, .. } if *connection_id == closed)
                .then_some(())
        })
        .await;
    }
}

/// A hostile remote that claims to sit behind an endpoint-dependent NAT
/// cannot aim this node's birthday probes at a third party: an IP it did
/// not advertise in the punch's DCUtR exchange is not probed at all, and
/// one it did gets at most the budget per attempt, two attempts per relayed
/// connection.
#[tokio::test]
async fn birthday_probes_go_only_to_an_ip_the_remote_advertised_and_stay_in_budget() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (_relay, relay_addr) = support::relay_on(2).await;
    let birthday = punchport::BirthdayConfig::new()
        .with_budget(8, 8)
        .unwrap()
        .with_pace(200)
        .unwrap();
    let mut a = support::peer(
        range(44300),
        |c| c.with_birthday(birthday),
        &["/ip4/127.0.0.1/udp/0/quic-v1"],
    )
    .await;
    a.reserve(&relay_addr).await;
    // The relay's second port tells this side it maps endpoint-independently.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while a
        .with(|swarm| swarm.behaviour().dcutr.nat(Family::Ipv4).mapping)
        .await
        != punchport::MappingKind::EndpointIndependent
    {
        assert!(tokio::time::Instant::now() < deadline, "not classified");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing listens where the remote's DCUtR candidates point, so plain
    // punching cannot win first.
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_addr = quic(dead.local_addr().unwrap());
    drop(dead);
    // The victim: every port the first probes go to (Linux's favoured
    // block, 1024-2047) on an address of its own.
    let victim = "127.0.0.99";
    let ears: Vec<UdpSocket> = (1024..=2047)
        .map(|port| {
            let socket = UdpSocket::bind((victim, port)).unwrap();
            socket.set_nonblocking(true).unwrap();
            socket
        })
        .collect();
    let heard = |ears: &[UdpSocket]| -> usize {
        let mut buf = [0u8; 64];
        ears.iter()
            .map(|ear| std::iter::from_fn(|| ear.recv(&mut buf).ok()).count())
            .sum()
    };
    for (tied, name) in [(false, "untied"), (true, "tied")] {
        let mut candidates = vec![dead_addr.to_vec()];
        if tied {
            candidates.push(
                format!("/ip4/{victim}/udp/1/quic-v1")
                    .parse::<Multiaddr>()
                    .unwrap()
                    .to_vec(),
            );
        }
        let hello = support::hard_hello(format!("{victim}:31000").parse().unwrap());
        let mut remote = support::remote_with(
            &["/ip4/127.0.0.1/udp/0/quic-v1"],
            Answer::These(candidates),
            Some(hello),
        )
        .await;
        remote.dial_through(&relay_addr, a.peer_id).await;
        let report = a
            .wait_dcutr("a birthday report", |e| match e {
                Event::Attempt(report)
                    if matches!(report.method, punchport::Method::Birthday(_)) =>
                {
                    Some(report.clone())
                }
                _ => None,
            })
            .await;
        let punchport::Method::Birthday(stats) = &report.method else {
            unreachable!()
        };
        let probed = heard(&ears);
        if tied {
            // Every probe the budget allows, and not one more, reached the
            // victim's ports: the IP was tied to the remote in its CONNECT.
            assert_eq!(probed, 8, "{name}");
            assert_eq!(stats.probes, 8, "{report:?}");
            assert_eq!(stats.sent.datagrams, 8, "{report:?}");
        } else {
            assert_eq!(probed, 0, "{name}");
            assert_eq!(stats.sent.datagrams, 0, "{report:?}");
            let AttemptOutcome::Failed { error } = &report.outcome else {
                panic!("{report:?}")
            };
            assert!(
                matches!(
                    error,
                    DialFailure::Birthday(punchport::BirthdayError::Untied(_))
                ),
                "{error:?}"
            );
            assert!(
                error
                    .to_string()
                    .contains("not among the addresses the peer advertised"),
                "{error}"
            );
        }
    }
}

/// When the openers (datagrams of 8 bytes with the opener TTL, 3 here)
/// among `got` arrived.
fn opener_times(got: &[(usize, u8, std::time::SystemTime)]) -> Vec<std::time::SystemTime> {
    got.iter()
        .filter(|(len, ttl, _)| *len == 8 && *ttl == 3)
        .map(|(.., at)| *at)
        .collect()
}

/// What reached `decoy` in `within` (read on a blocking thread, while the
/// swarms run).
async fn datagrams(decoy: &UdpSocket, within: Duration) -> Vec<(usize, u8, std::time::SystemTime)> {
    let decoy = decoy.try_clone().unwrap();
    tokio::task::spawn_blocking(move || support::datagrams_with_ttl(&decoy, within))
        .await
        .unwrap()
}

/// The initiator opens its NAT towards the responder's candidates before
/// it sends SYNC (the responder dials on SYNC, so its first packet cannot
/// reach our NAT before our openers crossed it): two openers with the
/// opener TTL reach each candidate, before the responder reads SYNC; its
/// QUIC handshake starts 15 ms later than libp2p-dcutr's would.
#[tokio::test]
async fn the_initiator_sends_its_openers_to_the_answer_before_sync() {
    let targets = decoys("127.0.0.1", 2);
    let (_relay, _a, mut remote) =
        connect_naming(range(44400), |c| c.with_opener_ttl(3), &targets).await;
    let sync = remote.sync().await.at;
    for decoy in &targets {
        let got = datagrams(decoy, Duration::from_millis(300)).await;
        let at = opener_times(&got);
        assert_eq!(at.len(), 2, "{got:?}");
        assert!(at.iter().all(|at| *at < sync), "{at:?} vs SYNC at {sync:?}");
        // Its QUIC handshake starts the lead after its half round trip's
        // wait, and so at least the lead after the openers.
        let (.., initial) = got
            .iter()
            .find(|(len, ..)| *len >= 1200)
            .unwrap_or_else(|| panic!("no QUIC Initial: {got:?}"));
        assert!(
            initial.duration_since(at[1]).unwrap() >= Duration::from_millis(10),
            "the handshake did not wait: {got:?}"
        );
    }
}

/// The responder opens its NAT towards the initiator's candidates before
/// it answers CONNECT (the initiator punches after the answer): two openers
/// with the opener TTL reach each candidate before the answer is read, and
/// its QUIC handshake starts a moment after SYNC. A CONNECT naming more
/// candidates than DCUtR ever sends gets no opener (and no dial), and
/// neither does a candidate with an unspecified IP (which Linux would
/// deliver to this host: a datagram to 0.0.0.0 goes to the sender's own
/// address).
#[tokio::test]
async fn the_responder_sends_its_openers_to_the_connect_before_its_answer() {
    let (relay, relay_addr) = support::relay().await;
    let mut remote = support::remote(&["/ip4/127.0.0.1/udp/0/quic-v1"], Answer::Own).await;
    remote.reserve(&relay_addr).await;
    let mut a = support::peer(
        range(44450),
        |c| c.with_opener_ttl(3),
        &["/ip4/127.0.0.1/udp/0/quic-v1"],
    )
    .await;
    a.dial_through(&relay_addr, remote.node.peer_id).await;
    let peer = a.peer_id;
    remote
        .node
        .wait("the relayed connection", |e| match e {
            SwarmEvent::ConnectionEstablished { peer_id, .. } if *peer_id == peer => Some(()),
            _ => None,
        })
        .await;
    for (count, expected, unspecified) in [(2, 2, false), (21, 0, false), (1, 0, true)] {
        let targets = decoys("127.0.0.1", count);
        // The first one named twice: it still gets two openers.
        let named: Vec<Multiaddr> = targets
            .iter()
            .chain(targets.first())
            .map(|s| {
                let mut at = s.local_addr().unwrap();
                if unspecified {
                    at.set_ip(std::net::Ipv4Addr::UNSPECIFIED.into());
                }
                quic(at)
            })
            .collect();
        let (answer, read) = remote.initiate(a.peer_id, &named).await;
        assert!(!answer.is_empty());
        for decoy in &targets {
            let got = datagrams(decoy, Duration::from_millis(200)).await;
            let at = opener_times(&got);
            assert_eq!(at.len(), expected, "{count} named: {got:?}");
            assert!(
                at.iter().all(|at| *at < read),
                "{at:?} vs answer read at {read:?}"
            );
            // Its QUIC handshake waits a moment after SYNC, which left
            // after `read` (the initiator's punch starts half a round trip
            // after SYNC).
            match got.iter().find(|(len, ..)| *len >= 1200) {
                Some((.., initial)) => assert!(
                    initial.duration_since(read).unwrap() >= Duration::from_millis(10),
                    "the handshake did not wait after SYNC: {got:?}"
                ),
                None => assert_eq!(expected, 0, "no QUIC Initial: {got:?}"),
            }
        }
    }
    drop(relay);
}

/// The initiator closes its DCUtR stream right after SYNC. libp2p-dcutr
/// drops it after its half round trip's wait, which resets it, and a go
/// responder that has not read SYNC by then reads the reset instead and
/// does not dial (docs/interop.md, 2.). Rust yamux reads a reset as the
/// stream's end, so the test tells them apart by when the end comes: with
/// a 2 s round trip, the drop comes 1 s after SYNC.
#[tokio::test]
async fn the_initiator_closes_its_stream_right_after_sync() {
    let (_relay, relay_addr) = support::relay().await;
    let mut a = support::peer(range(44500), |c| c, &["/ip4/127.0.0.1/udp/0/quic-v1"]).await;
    a.reserve(&relay_addr).await;
    let mut remote = support::remote(
        &["/ip4/127.0.0.1/udp/0/quic-v1"],
        Answer::OwnAfter(Duration::from_secs(2)),
    )
    .await;
    remote.dial_through(&relay_addr, a.peer_id).await;
    let sync = remote.sync().await;
    assert_eq!(sync.end, support::StreamEnd::Ended, "{sync:?}");
    assert!(sync.end_after < Duration::from_millis(500), "{sync:?}");
}
