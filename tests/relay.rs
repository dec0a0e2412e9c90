//! `punchport::relay::Behaviour` in a user's own relay: a stock rust-libp2p
//! relay swarm (`SwarmBuilder`, `with_quic()`, libp2p's relay client on the
//! peers, no punchport transport) on loopback, with the wrapper in place of
//! `libp2p::relay::Behaviour`.

#![allow(clippy::unwrap_used)]

use std::{fmt::Debug, time::Duration};

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, Swarm, SwarmBuilder, identify,
    identity::Keypair,
    multiaddr::Protocol,
    noise, ping, relay,
    swarm::{ConnectionId, NetworkBehaviour, SwarmEvent},
    yamux,
};
use tokio::{
    sync::{mpsc, oneshot},
    time::{Instant, timeout},
};

/// Well under what a circuit over a dead connection or a stalled circuit
/// request took (10 s and more).
const PROMPTLY: Duration = Duration::from_secs(3);

#[derive(NetworkBehaviour)]
struct Relay {
    relay: punchport::relay::Behaviour, // was: relay::Behaviour
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

#[derive(NetworkBehaviour)]
struct Client {
    relay_client: relay::client::Behaviour,
}

fn relay_swarm() -> Swarm<Relay> {
    SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_quic()
        .with_behaviour(|key| Relay {
            relay: punchport::relay::Behaviour::new(
                key.public().to_peer_id(),
                relay::Config::default(),
            ),
            identify: identify::Behaviour::new(identify::Config::new(
                "/test/1".into(),
                key.public(),
            )),
            ping: ping::Behaviour::default(),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

fn client_swarm(keypair: Keypair) -> Swarm<Client> {
    SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|_, relay_client| Client { relay_client })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

type Call<B> = Box<dyn FnOnce(&mut Swarm<B>) + Send>;

/// A swarm driven by its own task, its events read here.
struct Node<B: NetworkBehaviour> {
    peer_id: PeerId,
    events: mpsc::UnboundedReceiver<SwarmEvent<B::ToSwarm>>,
    calls: mpsc::UnboundedSender<Option<Call<B>>>,
}

impl<B> Node<B>
where
    B: NetworkBehaviour + Send + 'static,
    B::ToSwarm: Debug + Send + 'static,
{
    fn spawn(mut swarm: Swarm<B>) -> Self {
        let peer_id = *swarm.local_peer_id();
        let (event_tx, events) = mpsc::unbounded_channel();
        let (calls, mut call_rx) = mpsc::unbounded_channel::<Option<Call<B>>>();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    event = swarm.select_next_some() => { let _ = event_tx.send(event); }
                    call = call_rx.recv() => match call {
                        Some(Some(call)) => call(&mut swarm),
                        // Frozen: the swarm is kept but no longer polled, so
                        // its connections stay open (QUIC runs in tasks of its
                        // own) and nothing on them is answered.
                        Some(None) => std::future::pending::<()>().await,
                        None => return,
                    },
                }
            }
        });
        Self {
            peer_id,
            events,
            calls,
        }
    }

    /// Runs `f` on the swarm, in its task.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Swarm<B>) -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = oneshot::channel();
        let call: Call<B> = Box::new(move |swarm| {
            let _ = tx.send(f(swarm));
        });
        self.calls.send(Some(call)).unwrap();
        rx.await.unwrap()
    }

    /// Stops polling the swarm without dropping it: a process that hangs,
    /// or was killed and whose connections the relay has not seen end yet.
    fn freeze(&self) {
        self.calls.send(None).unwrap();
    }

    /// The first event for which `f` returns `Some`, within `within`.
    async fn wait_for<T>(
        &mut self,
        what: &str,
        within: Duration,
        mut f: impl FnMut(&SwarmEvent<B::ToSwarm>) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            match timeout(deadline - Instant::now(), self.events.recv()).await {
                Ok(Some(event)) => {
                    if let Some(found) = f(&event) {
                        return found;
                    }
                }
                Ok(None) => panic!("{what}: the swarm stopped"),
                Err(_) => panic!("{what}: not within {within:?}"),
            }
        }
    }
}

/// A relay listening on loopback and its address (with its peer id).
async fn relay() -> (Node<Relay>, Multiaddr) {
    let mut relay = Node::spawn(relay_swarm());
    relay
        .call(|s| s.listen_on("/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()))
        .await
        .unwrap();
    let address = relay
        .wait_for("the relay listens", PROMPTLY, |e| match e {
            SwarmEvent::NewListenAddr { address, .. } => Some(address.clone()),
            _ => None,
        })
        .await;
    let announced = address.clone();
    relay.call(move |s| s.add_external_address(announced)).await;
    let address = address.with(Protocol::P2p(relay.peer_id));
    (relay, address)
}

/// A peer with `keypair` that reserves on the relay at `relay_addr`.
async fn reserving_peer(keypair: Keypair, relay_addr: &Multiaddr) -> Node<Client> {
    let mut peer = Node::spawn(client_swarm(keypair));
    let circuit = relay_addr.clone().with(Protocol::P2pCircuit);
    peer.call(move |s| s.listen_on(circuit)).await.unwrap();
    peer.wait_for("the reservation", PROMPTLY, |e| match e {
        SwarmEvent::Behaviour(ClientEvent::RelayClient(
            relay::client::Event::ReservationReqAccepted { .. },
        )) => Some(()),
        _ => None,
    })
    .await;
    peer
}

/// A peer connected to the relay at `relay_addr`, ready to dial through it.
async fn dialer(relay_addr: &Multiaddr) -> Node<Client> {
    let mut dialer = Node::spawn(client_swarm(Keypair::generate_ed25519()));
    let addr = relay_addr.clone();
    dialer.call(move |s| s.dial(addr)).await.unwrap();
    dialer
        .wait_for("the connection to the relay", PROMPTLY, |e| {
            matches!(e, SwarmEvent::ConnectionEstablished { .. }).then_some(())
        })
        .await;
    dialer
}

fn circuit_to(relay_addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    relay_addr
        .clone()
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(peer))
}

/// The relay's connection established with `peer`.
async fn established_at_relay(relay: &mut Node<Relay>, peer: PeerId) -> ConnectionId {
    relay
        .wait_for(
            "the peer's connection at the relay",
            PROMPTLY,
            |e| match e {
                SwarmEvent::ConnectionEstablished {
                    peer_id,
                    connection_id,
                    ..
                } if *peer_id == peer => Some(*connection_id),
                _ => None,
            },
        )
        .await
}

/// A peer restarts with its identity: the old process hangs (its
/// connection to the relay stays open and reserving, and answers nothing),
/// the new one reserves on a new connection. The relay closes the old
/// connection at once, and a circuit to the peer reaches the new process.
/// Without the wrapper the old connection stays open for as long as QUIC
/// keeps it alive, and libp2p-relay routes the circuit over either.
#[tokio::test]
async fn a_peer_that_reserves_again_gets_its_older_connection_closed_and_circuits_over_the_new_one()
{
    let (mut relay, relay_addr) = relay().await;
    let keypair = Keypair::generate_ed25519();
    let peer = keypair.public().to_peer_id();

    let old = reserving_peer(keypair.clone(), &relay_addr).await;
    let old_connection = established_at_relay(&mut relay, peer).await;
    old.freeze();

    let mut new = reserving_peer(keypair, &relay_addr).await;
    let new_connection = established_at_relay(&mut relay, peer).await;
    assert_ne!(new_connection, old_connection);
    relay
        .wait_for("the old connection closed", PROMPTLY, |e| match e {
            SwarmEvent::ConnectionClosed { connection_id, .. }
                if *connection_id == old_connection =>
            {
                Some(())
            }
            SwarmEvent::ConnectionClosed { connection_id, .. }
                if *connection_id == new_connection =>
            {
                panic!("the relay closed the new connection")
            }
            _ => None,
        })
        .await;
    let load = relay.call(|s| s.behaviour().relay.load().clone()).await;
    assert_eq!((load.reservations(), load.stale_closed()), (1, 1), "{load}");

    let mut dialer = dialer(&relay_addr).await;
    let circuit = circuit_to(&relay_addr, peer);
    dialer.call(move |s| s.dial(circuit)).await.unwrap();
    dialer
        .wait_for(
            "the relayed connection to the peer",
            PROMPTLY,
            |e| match e {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if *peer_id == peer => Some(()),
                SwarmEvent::OutgoingConnectionError { error, .. } => panic!("{error}"),
                _ => None,
            },
        )
        .await;
    let dialer_id = dialer.peer_id;
    new.wait_for("the relayed connection at the new process", PROMPTLY, |e| {
        matches!(e, SwarmEvent::ConnectionEstablished { peer_id, .. } if *peer_id == dialer_id)
            .then_some(())
    })
    .await;
}

/// Two peers dial one reserving peer through the relay at the same moment.
/// Both relayed connections come up at once, on both sides. Without the
/// wrapper the relay sends both circuit requests (STOP) together, and
/// libp2p-relay's client may leave the second in its handler until
/// something else wakes the connection.
#[tokio::test]
async fn two_circuits_to_one_destination_at_once_both_connect_promptly() {
    let (relay, relay_addr) = relay().await;
    let mut destination = reserving_peer(Keypair::generate_ed25519(), &relay_addr).await;
    let target = destination.peer_id;
    let mut dialers = [dialer(&relay_addr).await, dialer(&relay_addr).await];

    let started = Instant::now();
    for dialer in &dialers {
        let circuit = circuit_to(&relay_addr, target);
        let call: Call<Client> = Box::new(move |s| s.dial(circuit).unwrap());
        dialer.calls.send(Some(call)).unwrap();
    }
    for dialer in &mut dialers {
        dialer
            .wait_for("the relayed connection", PROMPTLY, |e| match e {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if *peer_id == target => Some(()),
                SwarmEvent::OutgoingConnectionError { error, .. } => panic!("{error}"),
                _ => None,
            })
            .await;
    }
    let mut from: Vec<PeerId> = Vec::new();
    while from.len() < 2 {
        let peer = destination
            .wait_for(
                "the relayed connections at the destination",
                PROMPTLY,
                |e| match e {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => Some(*peer_id),
                    _ => None,
                },
            )
            .await;
        from.push(peer);
    }
    from.sort();
    let mut expected = vec![dialers[0].peer_id, dialers[1].peer_id];
    expected.sort();
    assert_eq!(from, expected);
    eprintln!("both relayed within {:?}", started.elapsed());
    let load = relay.call(|s| s.behaviour().relay.load().clone()).await;
    assert_eq!(load.circuits_accepted(), 2, "{load}");
}
