//! A hostile DCUtR peer: it reaches a victim through the relay and answers
//! the victim's CONNECT with whatever addresses it is given, junk included,
//! in a message of up to DCUtR's maximum size; and, if asked, answers
//! punchport's birthday negotiation with a lie ([`Lie`]).
//!
//! Its wire messages ([`hole_punch`], [`framed`], [`read_message`] and the
//! [`birthday_proto`] types) also serve the root crate's scripted swarm
//! peers (`tests/behaviour_support`).

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, SwarmBuilder, identify,
    multiaddr::Protocol,
    noise, relay,
    swarm::{NetworkBehaviour, SwarmEvent},
    yamux,
};

/// DCUtR's protocol name.
const DCUTR: StreamProtocol = StreamProtocol::new("/libp2p/dcutr");
/// punchport's birthday negotiation.
const BIRTHDAY: StreamProtocol = StreamProtocol::new("/punchport/birthday/2");

/// The birthday protocol's wire messages, the `prost` types punchport
/// itself uses (docs/birthday-protocol.md): the liar can say anything.
#[path = "../../../../src/dcutr/birthday/generated/mod.rs"]
pub mod birthday_proto;

/// What the hostile peer claims in punchport's birthday negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lie {
    /// That its NAT maps endpoint-dependently (then it also says its
    /// sockets are ready at once), or endpoint-independently.
    pub hard: bool,
    /// The public address of its punch socket: a victim's, say.
    pub public: std::net::SocketAddr,
}

impl Lie {
    /// Its hello (and `Ready` at once, when it claims to be hard): what
    /// makes a punchport peer that takes it at its word probe or open
    /// sockets.
    pub fn messages(self) -> Vec<birthday_proto::Message> {
        use birthday_proto::{Hello, Message, Ready, hello, hello::Mapping, message::Type};
        let empty = Message {
            r#type: 0,
            hello: None,
            ready: None,
            won: None,
            done: None,
        };
        let mapping = if self.hard {
            Mapping::EndpointDependent
        } else {
            Mapping::EndpointIndependent
        };
        let public = punchport::QuicAddr {
            socket: self.public,
            peer_id: None,
        }
        .to_multiaddr()
        .to_vec();
        let mut messages = vec![Message {
            r#type: Type::Hello as i32,
            hello: Some(Hello {
                version: 2,
                enabled: true,
                nonce: vec![0x42; 16],
                attempt: 1,
                sockets: vec![hello::Socket {
                    family: if self.public.is_ipv4() {
                        hello::Family::Ipv4
                    } else {
                        hello::Family::Ipv6
                    } as i32,
                    mapping: mapping as i32,
                    port_preserved: Some(!self.hard),
                    public: Some(public),
                }],
            }),
            ..empty.clone()
        }];
        if self.hard {
            messages.push(Message {
                r#type: Type::Ready as i32,
                ready: Some(Ready { sockets: 256 }),
                ..empty
            });
        }
        messages
    }
}

/// `messages` encoded, each behind its length (a varint), as the birthday
/// protocol's stream carries them.
pub fn framed(messages: &[birthday_proto::Message]) -> Vec<u8> {
    let mut framed = Vec::new();
    for message in messages {
        let body = prost::Message::encode_to_vec(message);
        varint(body.len() as u64, &mut framed);
        framed.extend(body);
    }
    framed
}

/// libp2p-dcutr's largest message.
pub const MAX_MESSAGE: usize = 4096;

#[derive(NetworkBehaviour)]
struct Hostile {
    relay: relay::client::Behaviour,
    identify: identify::Behaviour,
    stream: libp2p_stream::Behaviour,
}

/// What the hostile peer managed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// CONNECT messages it answered with junk.
    pub answered: usize,
    /// Whether the relayed connection to the victim opened.
    pub relayed: bool,
    /// Birthday negotiations it answered with its lie.
    pub lied: usize,
}

/// A HolePunch protobuf, length-prefixed: field 1 `type` (100 CONNECT,
/// 300 SYNC), field 2 repeated `ObsAddrs`.
pub fn hole_punch(kind: u64, addrs: &[Vec<u8>]) -> Vec<u8> {
    let mut body = vec![0x08];
    varint(kind, &mut body);
    for addr in addrs {
        body.push(0x12);
        varint(addr.len() as u64, &mut body);
        body.extend_from_slice(addr);
    }
    let mut framed = Vec::new();
    varint(body.len() as u64, &mut framed);
    framed.extend(body);
    framed
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The observed addresses that fill one CONNECT of at most [`MAX_MESSAGE`]
/// bytes, taken from `junk` round-robin.
pub fn fill(junk: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut addrs = Vec::new();
    for addr in junk.iter().cycle() {
        let mut candidate = addrs.clone();
        candidate.push(addr.clone());
        if hole_punch(100, &candidate).len() > MAX_MESSAGE {
            break;
        }
        addrs = candidate;
    }
    addrs
}

/// Reads one length-prefixed message (at most [`MAX_MESSAGE`] bytes).
pub async fn read_message(stream: &mut libp2p::Stream) -> std::io::Result<Vec<u8>> {
    let mut len = 0usize;
    for shift in (0..).step_by(7).take(3) {
        let mut byte = [0u8];
        stream.read_exact(&mut byte).await?;
        len |= usize::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0; len.min(MAX_MESSAGE)];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

/// Reaches `victim` through `relay` (with `/p2p/`) and answers every DCUtR
/// CONNECT for `duration` with the observed addresses `addrs`. Run it on a
/// thread inside a lab namespace.
pub async fn run(
    relay: Multiaddr,
    victim: PeerId,
    addrs: Vec<Vec<u8>>,
    duration: Duration,
) -> Report {
    run_with(relay, victim, addrs, None, duration).await
}

/// [`run_with`] on a thread inside `host`'s namespace, on a runtime of its
/// own: what a lab test calls, with `host` a peer host of the lab.
pub fn run_in(
    host: &natlab::Host,
    relay: Multiaddr,
    victim: PeerId,
    addrs: Vec<Vec<u8>>,
    lie: Option<Lie>,
    duration: Duration,
) -> Result<Report, crate::Error> {
    let report = host.run(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime builds")
            .block_on(run_with(relay, victim, addrs, lie, duration))
    })?;
    Ok(report)
}

/// [`run`], answering punchport's birthday negotiation with `lie` too.
pub async fn run_with(
    relay: Multiaddr,
    victim: PeerId,
    addrs: Vec<Vec<u8>>,
    lie: Option<Lie>,
    duration: Duration,
) -> Report {
    let mut swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .expect("noise and yamux build")
        .with_behaviour(|key, relay| Hostile {
            relay,
            identify: identify::Behaviour::new(identify::Config::new(
                punchport_node::PROTOCOL_VERSION.into(),
                key.public(),
            )),
            stream: libp2p_stream::Behaviour::new(),
        })
        .expect("the behaviour builds")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let mut incoming = swarm
        .behaviour()
        .stream
        .new_control()
        .accept(DCUTR)
        .expect("DCUtR is not accepted twice");
    let mut birthday = swarm
        .behaviour()
        .stream
        .new_control()
        .accept(BIRTHDAY)
        .expect("the birthday protocol is not accepted twice");
    let circuit = relay
        .clone()
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(victim));
    let _ = swarm.dial(relay);
    let mut report = Report::default();
    let mut dialed = false;
    let deadline = tokio::time::Instant::now() + duration;
    let connect = hole_punch(100, &addrs);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return report,
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(HostileEvent::Identify(identify::Event::Received { .. })) if !dialed => {
                    dialed = true;
                    let _ = swarm.dial(circuit.clone());
                }
                SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. }
                    if peer_id == victim && endpoint.is_relayed() => report.relayed = true,
                _ => {}
            },
            Some((_, mut stream)) = birthday.next(), if lie.is_some() => {
                // Their hello, then our lie; the stream stays open.
                let Some(lie) = lie else { continue };
                if read_message(&mut stream).await.is_ok()
                    && stream.write_all(&framed(&lie.messages())).await.is_ok()
                    && stream.flush().await.is_ok()
                {
                    report.lied += 1;
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        drop(stream);
                    });
                }
            }
            Some((_, mut stream)) = incoming.next() => {
                // The victim's CONNECT, then our junk, then its SYNC.
                if read_message(&mut stream).await.is_ok()
                    && stream.write_all(&connect).await.is_ok()
                    && stream.flush().await.is_ok()
                {
                    report.answered += 1;
                    let _ = tokio::time::timeout(Duration::from_secs(2), read_message(&mut stream)).await;
                }
            }
        }
    }
}
