//! Real swarms on loopback for the behaviour's tests: a circuit relay, peers
//! running punchport's transport and behaviour as users run them, and a
//! scripted DCUtR remote that records the CONNECT it receives and answers
//! with the addresses a test gives it.
//!
//! Every swarm runs in its own task; a test talks to it through a handle:
//! `node.wait(|event| ...)` for an event, `node.with(|swarm| ...)` to act on
//! the swarm.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::{
    net::{SocketAddr, UdpSocket},
    time::{Duration, SystemTime},
};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, identify,
    identity::Keypair,
    multiaddr::Protocol,
    noise, relay,
    swarm::{NetworkBehaviour, SwarmEvent},
    yamux,
};
use punchport::{Behaviour, Config};
use punchport::{PortRange, QuicAddr};
use tokio::sync::{mpsc, oneshot};

/// How long any wait lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);
const IDLE: Duration = Duration::from_secs(60);
const DCUTR: StreamProtocol = StreamProtocol::new("/libp2p/dcutr");
const BIRTHDAY: StreamProtocol = StreamProtocol::new("/punchport/birthday/2");

/// The birthday protocol's wire messages, the same `prost` types the crate
/// uses: a scripted remote can say anything with them, lies included. The
/// lab's hostile peer writes them too, and the DCUtR messages: the scripted
/// remote takes both from it.
pub use punchport_lab::hostile::birthday_proto;
use punchport_lab::hostile::{Lie, framed, hole_punch, read_message};

type Command<B> = Box<dyn FnOnce(&mut Swarm<B>) + Send>;

/// A swarm running in a task.
pub struct Node<B: NetworkBehaviour> {
    pub peer_id: PeerId,
    events: mpsc::UnboundedReceiver<SwarmEvent<B::ToSwarm>>,
    commands: mpsc::UnboundedSender<Command<B>>,
    task: tokio::task::JoinHandle<()>,
}

impl<B> Node<B>
where
    B: NetworkBehaviour + Send + 'static,
    B::ToSwarm: Send + std::fmt::Debug,
{
    /// Runs `swarm`; `on_event` sees each event first, with the swarm.
    fn spawn(
        mut swarm: Swarm<B>,
        mut on_event: impl FnMut(&mut Swarm<B>, &SwarmEvent<B::ToSwarm>) + Send + 'static,
    ) -> Self {
        let peer_id = *swarm.local_peer_id();
        let (event_tx, events) = mpsc::unbounded_channel();
        let (commands, mut command_rx) = mpsc::unbounded_channel::<Command<B>>();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    event = swarm.select_next_some() => {
                        on_event(&mut swarm, &event);
                        if event_tx.send(event).is_err() {
                            return;
                        }
                    }
                    Some(command) = command_rx.recv() => command(&mut swarm),
                }
            }
        });
        Self {
            peer_id,
            events,
            commands,
            task,
        }
    }

    /// Waits for the first event for which `matches` returns `Some`,
    /// skipping the others; fails the test after [`WAIT`].
    pub async fn wait<T>(
        &mut self,
        what: &str,
        mut matches: impl FnMut(&SwarmEvent<B::ToSwarm>) -> Option<T>,
    ) -> T {
        let search = async {
            while let Some(event) = self.events.recv().await {
                if let Some(found) = matches(&event) {
                    return found;
                }
            }
            panic!("the swarm stopped before {what}")
        };
        tokio::time::timeout(WAIT, search)
            .await
            .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
    }

    /// Runs `f` on the swarm and returns what it returns.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Swarm<B>) -> R + Send + 'static,
    ) -> R {
        let (tx, rx) = oneshot::channel();
        let command: Command<B> = Box::new(move |swarm| {
            let _ = tx.send(f(swarm));
        });
        assert!(self.commands.send(command).is_ok(), "the swarm stopped");
        rx.await.unwrap()
    }
}

impl<B: NetworkBehaviour> Drop for Node<B> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `addr` as a QUIC socket address.
pub fn socket(addr: &Multiaddr) -> SocketAddr {
    QuicAddr::parse(addr).unwrap().socket
}

/// A QUIC multiaddr for `socket`.
pub fn quic(socket: SocketAddr) -> Multiaddr {
    QuicAddr {
        socket,
        peer_id: None,
    }
    .to_multiaddr()
}

// ---- the relay --------------------------------------------------------------

#[derive(NetworkBehaviour)]
pub struct RelayBehaviour {
    relay: relay::Behaviour,
    identify: identify::Behaviour,
}

/// A circuit relay v2 server on 127.0.0.1 (stock libp2p-quic), and its
/// address with `/p2p/`.
pub async fn relay() -> (Node<RelayBehaviour>, Multiaddr) {
    relay_on(1).await
}

/// A relay listening on `ports` UDP ports of 127.0.0.1: with two, peers
/// classify their NAT (on loopback: endpoint-independent).
pub async fn relay_on(ports: usize) -> (Node<RelayBehaviour>, Multiaddr) {
    let mut swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_quic()
        .with_behaviour(|key| RelayBehaviour {
            relay: relay::Behaviour::new(
                key.public().to_peer_id(),
                relay::Config {
                    max_circuits: 64,
                    max_circuits_per_peer: 16,
                    reservation_rate_limiters: Vec::new(),
                    circuit_src_rate_limiters: Vec::new(),
                    ..relay::Config::default()
                },
            ),
            identify: identify::Behaviour::new(identify::Config::new(
                "/test/1".into(),
                key.public(),
            )),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE))
        .build();
    for _ in 0..ports {
        swarm
            .listen_on("/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap())
            .unwrap();
    }
    let mut node = Node::spawn(swarm, |swarm, event| {
        if let SwarmEvent::NewListenAddr { address, .. } = event {
            swarm.add_external_address(address.clone());
        }
    });
    let mut addrs = Vec::new();
    for _ in 0..ports {
        addrs.push(
            node.wait("the relay's listen address", |e| match e {
                SwarmEvent::NewListenAddr { address, .. } => Some(address.clone()),
                _ => None,
            })
            .await,
        );
    }
    let addr = addrs.remove(0).with(Protocol::P2p(node.peer_id));
    (node, addr)
}

// ---- punchport peers --------------------------------------------------------

#[derive(NetworkBehaviour)]
pub struct Peer {
    pub relay_client: relay::client::Behaviour,
    pub identify: identify::Behaviour,
    pub dcutr: Behaviour,
}

pub type PeerNode = Node<Peer>;

/// A peer as a user builds it: punchport's transport and behaviour sharing
/// one table, the relay client, identify, whose observations go to the
/// behaviour. It listens on each of `listen` (port 0 binds the punch socket
/// on the first free port of `range`).
pub async fn peer(
    range: PortRange,
    config: impl FnOnce(Config) -> Config,
    listen: &[&str],
) -> PeerNode {
    let key = Keypair::generate_ed25519();
    let (transport, dcutr) = punchport::with_config(config(Config::new(&key).with_range(range)));
    let mut swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_other_transport(|_| transport)
        .unwrap()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|key, relay_client| Peer {
            relay_client,
            identify: identify::Behaviour::new(identify::Config::new(
                "/test/1".into(),
                key.public(),
            )),
            dcutr,
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE))
        .build();
    for addr in listen {
        swarm.listen_on(addr.parse().unwrap()).unwrap();
    }
    let mut node = Node::spawn(swarm, |swarm, event| {
        if let SwarmEvent::Behaviour(PeerEvent::Identify(identify::Event::Received {
            connection_id,
            info,
            ..
        })) = event
        {
            swarm
                .behaviour_mut()
                .dcutr
                .on_identify(*connection_id, info);
        }
    });
    for _ in listen {
        node.wait("a listen address", |e| {
            matches!(e, SwarmEvent::NewListenAddr { .. }).then_some(())
        })
        .await;
    }
    node
}

impl PeerNode {
    /// Connects to the relay and waits until it has identified us, so that
    /// our observed address reaches DCUtR before any circuit opens.
    pub async fn reach(&mut self, relay: &Multiaddr) {
        let relay = relay.clone();
        self.with(move |swarm| swarm.dial(relay).unwrap()).await;
        self.wait("identify from the relay", |e| {
            matches!(
                e,
                SwarmEvent::Behaviour(PeerEvent::Identify(identify::Event::Received { .. }))
            )
            .then_some(())
        })
        .await;
    }

    /// Reaches the relay and holds a reservation on it.
    pub async fn reserve(&mut self, relay: &Multiaddr) {
        self.reach(relay).await;
        let circuit = relay.clone().with(Protocol::P2pCircuit);
        self.with(move |swarm| swarm.listen_on(circuit).unwrap())
            .await;
        self.wait("the reservation", |e| {
            matches!(
                e,
                SwarmEvent::Behaviour(PeerEvent::RelayClient(
                    relay::client::Event::ReservationReqAccepted { .. }
                ))
            )
            .then_some(())
        })
        .await;
    }

    /// Reaches the relay and dials `target` through it.
    pub async fn dial_through(&mut self, relay: &Multiaddr, target: PeerId) {
        self.reach(relay).await;
        let circuit = relay
            .clone()
            .with(Protocol::P2pCircuit)
            .with(Protocol::P2p(target));
        self.with(move |swarm| swarm.dial(circuit).unwrap()).await;
    }

    /// Waits for the next event of punchport's behaviour matching `matches`.
    pub async fn wait_dcutr<T>(
        &mut self,
        what: &str,
        mut matches: impl FnMut(&punchport::Event) -> Option<T>,
    ) -> T {
        self.wait(what, |e| match e {
            SwarmEvent::Behaviour(PeerEvent::Dcutr(event)) => matches(event),
            _ => None,
        })
        .await
    }

    /// What DCUtR advertises now.
    pub async fn candidates(&self) -> Vec<Multiaddr> {
        self.with(|swarm| swarm.behaviour().dcutr.candidates())
            .await
    }
}

// ---- a scripted DCUtR remote ------------------------------------------------

#[derive(NetworkBehaviour)]
pub struct RemoteBehaviour {
    relay_client: relay::client::Behaviour,
    identify: identify::Behaviour,
    stream: libp2p_stream::Behaviour,
}

/// A peer with stock libp2p-quic that plays DCUtR's responder by hand.
pub struct Remote {
    pub node: Node<RemoteBehaviour>,
    /// The address lists of the CONNECT messages it received.
    pub connects: mpsc::UnboundedReceiver<Vec<Multiaddr>>,
    /// Each SYNC it read.
    pub syncs: mpsc::UnboundedReceiver<SyncRead>,
    /// Opens its own DCUtR streams ([`Remote::initiate`]).
    control: libp2p_stream::Control,
    /// Its QUIC listen addresses.
    pub listen: Vec<Multiaddr>,
}

/// A SYNC the scripted remote read.
#[derive(Debug, Clone, Copy)]
pub struct SyncRead {
    /// When.
    pub at: SystemTime,
    /// How the stream went on after it.
    pub end: StreamEnd,
    /// How long after SYNC that was.
    pub end_after: Duration,
}

/// How an initiator's DCUtR stream went on after SYNC, as the scripted
/// remote read it (rust yamux reads a reset as the end of the stream, as
/// it reads a close).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The read after SYNC saw the end of the stream.
    Ended,
    /// The read failed.
    Failed,
    /// More bytes came after SYNC.
    MoreData,
    /// Nothing within the wait.
    Open,
}

/// What the scripted remote answers a CONNECT with.
pub enum Answer {
    /// Its own listen addresses.
    Own,
    /// These address bytes, valid multiaddrs or not.
    These(Vec<Vec<u8>>),
    /// Its own listen addresses, after a wait (a long round trip).
    OwnAfter(Duration),
}

/// A scripted remote listening on each of `listen`, that answers every
/// DCUtR CONNECT with `answer`.
pub async fn remote(listen: &[&str], answer: Answer) -> Remote {
    remote_with(listen, answer, None).await
}

/// A hard side's hello that names `public` as its punch socket's public
/// address, then `Ready` at once: what a scripted remote says to make a
/// punchport peer probe.
pub fn hard_hello(public: SocketAddr) -> Vec<birthday_proto::Message> {
    Lie { hard: true, public }.messages()
}

/// A scripted remote that also answers punchport's birthday negotiation
/// with `messages` (after the peer's hello).
pub async fn remote_with(
    listen: &[&str],
    answer: Answer,
    messages: Option<Vec<birthday_proto::Message>>,
) -> Remote {
    let mut swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|key, relay_client| RemoteBehaviour {
            relay_client,
            identify: identify::Behaviour::new(identify::Config::new(
                "/test/1".into(),
                key.public(),
            )),
            stream: libp2p_stream::Behaviour::new(),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE))
        .build();
    for addr in listen {
        swarm.listen_on(addr.parse().unwrap()).unwrap();
    }
    let mut control = swarm.behaviour().stream.new_control();
    let own_control = control.clone();
    let mut incoming = control.accept(DCUTR).unwrap();
    if let Some(messages) = messages {
        let mut birthday = control.accept(BIRTHDAY).unwrap();
        tokio::spawn(async move {
            while let Some((_, mut stream)) = birthday.next().await {
                let messages = messages.clone();
                tokio::spawn(async move {
                    // Their hello, then ours.
                    if read_message(&mut stream).await.is_err() {
                        return;
                    }
                    let _ = stream.write_all(&framed(&messages)).await;
                    let _ = stream.flush().await;
                    tokio::time::sleep(Duration::from_secs(30)).await;
                });
            }
        });
    }
    let mut node = Node::spawn(swarm, |_, _| {});
    let mut addrs = Vec::new();
    for _ in listen {
        addrs.push(
            node.wait("a listen address", |e| match e {
                SwarmEvent::NewListenAddr { address, .. } => Some(address.clone()),
                _ => None,
            })
            .await,
        );
    }
    let (answer, wait) = match answer {
        Answer::Own => (addrs.iter().map(|a| a.to_vec()).collect(), Duration::ZERO),
        Answer::OwnAfter(wait) => (addrs.iter().map(|a| a.to_vec()).collect(), wait),
        Answer::These(bytes) => (bytes, Duration::ZERO),
    };
    let (connect_tx, connects) = mpsc::unbounded_channel();
    let (sync_tx, syncs) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((_, mut stream)) = incoming.next().await {
            let answer = answer.clone();
            let connect_tx = connect_tx.clone();
            let sync_tx = sync_tx.clone();
            tokio::spawn(async move {
                // Their CONNECT, our CONNECT, their SYNC.
                let Ok(message) = read_message(&mut stream).await else {
                    return;
                };
                let _ = connect_tx.send(obs_addrs(&message));
                tokio::time::sleep(wait).await;
                let _ = stream.write_all(&hole_punch(100, &answer)).await;
                let _ = stream.flush().await;
                if let Ok(Ok(_)) =
                    tokio::time::timeout(Duration::from_secs(5), read_message(&mut stream)).await
                {
                    let at = SystemTime::now();
                    let read = std::time::Instant::now();
                    let mut more = [0; 1];
                    let end = match tokio::time::timeout(WAIT, stream.read(&mut more)).await {
                        Ok(Ok(0)) => StreamEnd::Ended,
                        Ok(Ok(_)) => StreamEnd::MoreData,
                        Ok(Err(_)) => StreamEnd::Failed,
                        Err(_) => StreamEnd::Open,
                    };
                    let _ = sync_tx.send(SyncRead {
                        at,
                        end,
                        end_after: read.elapsed(),
                    });
                }
            });
        }
    });
    Remote {
        node,
        connects,
        syncs,
        control: own_control,
        listen: addrs,
    }
}

impl Remote {
    /// Dials the relay and waits for its identify.
    async fn reach(&mut self, relay: &Multiaddr) {
        let dial = relay.clone();
        self.node.with(move |swarm| swarm.dial(dial).unwrap()).await;
        self.node
            .wait("identify from the relay", |e| {
                matches!(
                    e,
                    SwarmEvent::Behaviour(RemoteBehaviourEvent::Identify(
                        identify::Event::Received { .. }
                    ))
                )
                .then_some(())
            })
            .await;
    }

    /// Reaches the relay and dials `target` through it.
    pub async fn dial_through(&mut self, relay: &Multiaddr, target: PeerId) {
        self.reach(relay).await;
        let relay = relay.clone();
        let circuit = relay.with(Protocol::P2pCircuit).with(Protocol::P2p(target));
        self.node
            .with(move |swarm| swarm.dial(circuit).unwrap())
            .await;
    }

    /// Reaches the relay and holds a reservation there.
    pub async fn reserve(&mut self, relay: &Multiaddr) {
        self.reach(relay).await;
        let circuit = relay.clone().with(Protocol::P2pCircuit);
        self.node
            .with(move |swarm| swarm.listen_on(circuit).unwrap())
            .await;
        self.node
            .wait("the reservation", |e| {
                matches!(
                    e,
                    SwarmEvent::Behaviour(RemoteBehaviourEvent::RelayClient(
                        relay::client::Event::ReservationReqAccepted { .. }
                    ))
                )
                .then_some(())
            })
            .await;
    }

    /// Plays DCUtR's initiator towards `peer` (over the connection they
    /// have, the relayed one): sends CONNECT with `candidates`, reads the
    /// answer, sends SYNC. Returns the answer's addresses and when it was
    /// read (SYNC left after that).
    pub async fn initiate(
        &mut self,
        peer: PeerId,
        candidates: &[Multiaddr],
    ) -> (Vec<Multiaddr>, SystemTime) {
        let connect = hole_punch(
            100,
            &candidates.iter().map(|a| a.to_vec()).collect::<Vec<_>>(),
        );
        let mut control = self.control.clone();
        tokio::time::timeout(WAIT, async move {
            let mut stream = control.open_stream(peer, DCUTR).await.unwrap();
            stream.write_all(&connect).await.unwrap();
            stream.flush().await.unwrap();
            let answer = read_message(&mut stream).await.unwrap();
            let read = SystemTime::now();
            stream.write_all(&hole_punch(300, &[])).await.unwrap();
            stream.flush().await.unwrap();
            (obs_addrs(&answer), read)
        })
        .await
        .expect("no DCUtR answer in time")
    }

    /// The next SYNC read.
    pub async fn sync(&mut self) -> SyncRead {
        tokio::time::timeout(WAIT, self.syncs.recv())
            .await
            .expect("no SYNC in time")
            .expect("the remote stopped")
    }

    /// The next CONNECT's addresses.
    pub async fn connect(&mut self) -> Vec<Multiaddr> {
        tokio::time::timeout(WAIT, self.connects.recv())
            .await
            .expect("no CONNECT in time")
            .expect("the remote stopped")
    }
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The `ObsAddrs` of a HolePunch message body.
fn obs_addrs(mut body: &[u8]) -> Vec<Multiaddr> {
    let mut addrs = Vec::new();
    while let Some(tag) = read_varint(&mut body) {
        match tag {
            0x08 => {
                read_varint(&mut body);
            }
            0x12 => {
                let Some(len) = read_varint(&mut body) else {
                    break;
                };
                let (addr, rest) = body.split_at((len as usize).min(body.len()));
                addrs.push(Multiaddr::try_from(addr.to_vec()).unwrap());
                body = rest;
            }
            _ => break,
        }
    }
    addrs
}

/// Makes `socket` report each datagram's TTL and the time the kernel took
/// it in.
pub fn record_ttl_and_time(socket: &UdpSocket) {
    use nix::sys::socket::{setsockopt, sockopt};
    match socket.local_addr().unwrap() {
        SocketAddr::V4(_) => setsockopt(socket, sockopt::Ipv4RecvTtl, &true).unwrap(),
        SocketAddr::V6(_) => setsockopt(socket, sockopt::Ipv6RecvHopLimit, &true).unwrap(),
    }
    setsockopt(socket, sockopt::ReceiveTimestampns, &true).unwrap();
}

/// Receives datagrams on `socket` for `within`: each one's payload length,
/// the TTL it arrived with, and when the kernel took it in.
pub fn datagrams_with_ttl(socket: &UdpSocket, within: Duration) -> Vec<(usize, u8, SystemTime)> {
    use std::{io::IoSliceMut, os::fd::AsRawFd};

    use nix::sys::{
        socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg},
        time::TimeSpec,
    };
    record_ttl_and_time(socket);
    socket.set_nonblocking(false).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let end = std::time::Instant::now() + within;
    let mut got = Vec::new();
    while std::time::Instant::now() < end {
        let mut buf = [0u8; 2048];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!(i32, TimeSpec);
        let Ok(message) = recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        ) else {
            continue;
        };
        let (mut ttl, mut at) = (None, None);
        for c in message.cmsgs().unwrap() {
            match c {
                ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => {
                    ttl = Some(u8::try_from(t).unwrap())
                }
                ControlMessageOwned::ScmTimestampns(ts) => {
                    at = Some(SystemTime::UNIX_EPOCH + Duration::from(ts))
                }
                _ => {}
            }
        }
        got.push((message.bytes, ttl.unwrap(), at.unwrap()));
    }
    got
}
