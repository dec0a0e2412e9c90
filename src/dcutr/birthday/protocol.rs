//! `/punchport/birthday/2`: the typed messages of the negotiation and their
//! wire format (protobuf, `generated/birthday.proto`), and the probe
//! datagram. docs/birthday-protocol.md gives the sequence, the timers and
//! the limits.

use std::net::SocketAddr;

use crate::net::{Family, QuicAddr};
use asynchronous_codec::Framed;
use libp2p_swarm::{Stream, StreamProtocol};

use super::generated as proto;
use crate::dcutr::nat::MappingKind;

/// The protocol's name.
pub(crate) const PROTOCOL: StreamProtocol = StreamProtocol::new("/punchport/birthday/2");
/// The version a [`Hello`] carries.
pub(crate) const VERSION: u32 = 2;
/// The largest message, encoded.
const MAX_MESSAGE: usize = 1024;
/// How a probe datagram starts, before the nonce.
pub(crate) const PROBE_MAGIC: [u8; 4] = *b"PPB2";

/// A stream of the protocol, framed.
pub(crate) type Link = Framed<Stream, prost_codec::Codec<proto::Message>>;

/// Frames `stream` for the protocol's messages.
pub(crate) fn link(stream: Stream) -> Link {
    Framed::new(stream, prost_codec::Codec::new(MAX_MESSAGE))
}

/// 16 random bytes that a side's probes carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Nonce(pub(crate) [u8; 16]);

/// What a side knows of the NAT in front of its punch socket: a claim, as
/// far as the other side is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Class {
    pub(crate) mapping: MappingKind,
    /// Whether observers saw the punch port itself (`None`: none did yet).
    pub(crate) port_preserved: Option<bool>,
}

/// What a side says of one of its punch sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SocketHello {
    pub(crate) family: Family,
    pub(crate) class: Class,
    /// The punch socket's public address, as an observer saw it (of the
    /// socket's family).
    pub(crate) public: Option<SocketAddr>,
}

/// Each side's first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hello {
    pub(crate) enabled: bool,
    pub(crate) nonce: Nonce,
    /// The attempt over this relayed connection: 1 or 2.
    pub(crate) attempt: u8,
    /// At most one per family.
    pub(crate) sockets: Vec<SocketHello>,
}

impl Hello {
    /// What it says of its socket of `family`.
    pub(crate) fn socket(&self, family: Family) -> Option<&SocketHello> {
        self.sockets.iter().find(|s| s.family == family)
    }
}

/// A message of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    Hello(Hello),
    /// The hard side's sockets are open: probing may start.
    Ready {
        sockets: u16,
    },
    /// A probe reached the hard side's socket on local port `port`.
    Won {
        port: u16,
    },
    /// The sender's part is over without a winner, after `sent` datagrams.
    Done {
        sent: u32,
    },
}

/// A message that is well-formed protobuf but not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InvalidMessage {
    #[error("a birthday message of type {0} carries no {1} part")]
    Missing(&'static str, &'static str),
    #[error("a birthday hello of version {0}, this side speaks version {VERSION}")]
    Version(u32),
    #[error("a birthday hello whose nonce has {0} bytes, not 16")]
    Nonce(usize),
    #[error("a birthday hello for attempt {0}, outside 1-2")]
    Attempt(u32),
    #[error("a birthday hello whose public address is no QUIC address of its socket's family")]
    Public,
    #[error("a birthday hello with two sockets of one family")]
    Family,
    #[error("a birthday message field of {0} is out of range")]
    Range(u32),
}

impl From<Message> for proto::Message {
    fn from(message: Message) -> Self {
        use proto::message::Type;
        let mut out = proto::Message {
            r#type: 0,
            hello: None,
            ready: None,
            won: None,
            done: None,
        };
        match message {
            Message::Hello(hello) => {
                out.r#type = Type::Hello as i32;
                out.hello = Some(proto::Hello {
                    version: VERSION,
                    enabled: hello.enabled,
                    nonce: hello.nonce.0.to_vec(),
                    attempt: u32::from(hello.attempt),
                    sockets: hello
                        .sockets
                        .iter()
                        .map(|socket| proto::hello::Socket {
                            family: match socket.family {
                                Family::Ipv4 => proto::hello::Family::Ipv4,
                                Family::Ipv6 => proto::hello::Family::Ipv6,
                            } as i32,
                            mapping: match socket.class.mapping {
                                MappingKind::Unknown => proto::hello::Mapping::Unknown,
                                MappingKind::EndpointIndependent => {
                                    proto::hello::Mapping::EndpointIndependent
                                }
                                MappingKind::EndpointDependent => {
                                    proto::hello::Mapping::EndpointDependent
                                }
                            } as i32,
                            port_preserved: socket.class.port_preserved,
                            public: socket.public.map(|socket| {
                                QuicAddr {
                                    socket,
                                    peer_id: None,
                                }
                                .to_multiaddr()
                                .to_vec()
                            }),
                        })
                        .collect(),
                });
            }
            Message::Ready { sockets } => {
                out.r#type = Type::Ready as i32;
                out.ready = Some(proto::Ready {
                    sockets: u32::from(sockets),
                });
            }
            Message::Won { port } => {
                out.r#type = Type::Won as i32;
                out.won = Some(proto::Won {
                    port: u32::from(port),
                });
            }
            Message::Done { sent } => {
                out.r#type = Type::Done as i32;
                out.done = Some(proto::Done { sent });
            }
        }
        out
    }
}

impl TryFrom<proto::Message> for Message {
    type Error = InvalidMessage;

    fn try_from(message: proto::Message) -> Result<Self, Self::Error> {
        use proto::message::Type;
        let kind = Type::try_from(message.r#type)
            .map_err(|_| InvalidMessage::Range(message.r#type as u32))?;
        let narrow = |value: u32| u16::try_from(value).map_err(|_| InvalidMessage::Range(value));
        Ok(match kind {
            Type::Hello => {
                let hello = message
                    .hello
                    .ok_or(InvalidMessage::Missing("HELLO", "hello"))?;
                if hello.version != VERSION {
                    return Err(InvalidMessage::Version(hello.version));
                }
                let nonce: [u8; 16] = hello
                    .nonce
                    .as_slice()
                    .try_into()
                    .map_err(|_| InvalidMessage::Nonce(hello.nonce.len()))?;
                let attempt = match hello.attempt {
                    1 => 1,
                    2 => 2,
                    other => return Err(InvalidMessage::Attempt(other)),
                };
                let mut sockets: Vec<SocketHello> = Vec::new();
                for socket in hello.sockets {
                    // A family of a later version: not this side's concern.
                    let family = match proto::hello::Family::try_from(socket.family) {
                        Ok(proto::hello::Family::Ipv4) => Family::Ipv4,
                        Ok(proto::hello::Family::Ipv6) => Family::Ipv6,
                        Err(_) => continue,
                    };
                    if sockets.iter().any(|s| s.family == family) {
                        return Err(InvalidMessage::Family);
                    }
                    let mapping = match proto::hello::Mapping::try_from(socket.mapping) {
                        Ok(proto::hello::Mapping::EndpointIndependent) => {
                            MappingKind::EndpointIndependent
                        }
                        Ok(proto::hello::Mapping::EndpointDependent) => {
                            MappingKind::EndpointDependent
                        }
                        // An unknown value from a later version: unknown.
                        _ => MappingKind::Unknown,
                    };
                    let public = match socket.public {
                        Some(bytes) => {
                            let addr = libp2p_core::Multiaddr::try_from(bytes)
                                .map_err(|_| InvalidMessage::Public)?;
                            let socket = QuicAddr::parse(&addr)
                                .map_err(|_| InvalidMessage::Public)?
                                .socket;
                            if Family::of(socket.ip()) != family {
                                return Err(InvalidMessage::Public);
                            }
                            Some(socket)
                        }
                        None => None,
                    };
                    sockets.push(SocketHello {
                        family,
                        class: Class {
                            mapping,
                            port_preserved: socket.port_preserved,
                        },
                        public,
                    });
                }
                Message::Hello(Hello {
                    enabled: hello.enabled,
                    nonce: Nonce(nonce),
                    attempt,
                    sockets,
                })
            }
            Type::Ready => Message::Ready {
                sockets: narrow(
                    message
                        .ready
                        .ok_or(InvalidMessage::Missing("READY", "ready"))?
                        .sockets,
                )?,
            },
            Type::Won => Message::Won {
                port: narrow(
                    message
                        .won
                        .ok_or(InvalidMessage::Missing("WON", "won"))?
                        .port,
                )?,
            },
            Type::Done => Message::Done {
                sent: message
                    .done
                    .ok_or(InvalidMessage::Missing("DONE", "done"))?
                    .sent,
            },
        })
    }
}

/// A probe datagram: the magic, the hard side's nonce, and `padding` more
/// bytes (random, so that probes do not all look alike).
pub(crate) fn probe(nonce: &Nonce, padding: &[u8]) -> Vec<u8> {
    let mut datagram = Vec::with_capacity(PROBE_MAGIC.len() + 16 + padding.len());
    datagram.extend_from_slice(&PROBE_MAGIC);
    datagram.extend_from_slice(&nonce.0);
    datagram.extend_from_slice(padding);
    datagram
}

/// Whether `datagram` is a probe carrying `nonce`.
pub(crate) fn is_probe(datagram: &[u8], nonce: &Nonce) -> bool {
    datagram.len() >= 20 && datagram[..4] == PROBE_MAGIC && datagram[4..20] == nonce.0
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    fn hello() -> Hello {
        Hello {
            enabled: true,
            nonce: Nonce([7; 16]),
            attempt: 2,
            sockets: vec![
                SocketHello {
                    family: Family::Ipv4,
                    class: Class {
                        mapping: MappingKind::EndpointDependent,
                        port_preserved: Some(false),
                    },
                    public: Some("198.51.100.1:31000".parse().unwrap()),
                },
                SocketHello {
                    family: Family::Ipv6,
                    class: Class {
                        mapping: MappingKind::EndpointIndependent,
                        port_preserved: Some(true),
                    },
                    public: Some("[2001:db8::1]:40000".parse().unwrap()),
                },
            ],
        }
    }

    fn round_trip(message: Message) -> Message {
        let bytes = proto::Message::from(message).encode_to_vec();
        Message::try_from(proto::Message::decode(bytes.as_slice()).unwrap()).unwrap()
    }

    #[test]
    fn every_message_round_trips() {
        for message in [
            Message::Hello(hello()),
            Message::Hello(Hello {
                sockets: vec![SocketHello {
                    family: Family::Ipv6,
                    class: Class {
                        mapping: MappingKind::Unknown,
                        port_preserved: None,
                    },
                    public: None,
                }],
                ..hello()
            }),
            Message::Hello(Hello {
                sockets: Vec::new(),
                ..hello()
            }),
            Message::Ready { sockets: 256 },
            Message::Won { port: 51234 },
            Message::Done { sent: 1024 },
        ] {
            assert_eq!(round_trip(message.clone()), message);
        }
    }

    #[test]
    fn the_encoding_is_the_protos() {
        // Written out by hand from birthday.proto: type (field 1, varint) =
        // WON (3), won (field 2... 4, length-delimited) = { port (1) = 443 }.
        let bytes = proto::Message::from(Message::Won { port: 443 }).encode_to_vec();
        assert_eq!(bytes, [0x08, 0x03, 0x22, 0x03, 0x08, 0xbb, 0x03]);
        // READY (2) with sockets = 256 in field 3.
        let bytes = proto::Message::from(Message::Ready { sockets: 256 }).encode_to_vec();
        assert_eq!(bytes, [0x08, 0x02, 0x1a, 0x03, 0x08, 0x80, 0x02]);
        // A hello: version 2 (field 1), enabled (2), the nonce (6), the
        // attempt (7), then each socket (8): family, mapping, port kept.
        let bytes = proto::Message::from(Message::Hello(hello())).encode_to_vec();
        let inner = &bytes[4..];
        assert_eq!(&bytes[..2], [0x08, 0x01]);
        assert_eq!(&inner[..6], [0x08, 0x02, 0x10, 0x01, 0x32, 0x10]);
        let socket = &inner[6 + 16..];
        assert_eq!(&socket[..2], [0x38, 0x02]);
        assert_eq!(&socket[2..3], [0x42]);
        assert_eq!(&socket[4..10], [0x08, 0x04, 0x10, 0x02, 0x18, 0x00]);
    }

    #[test]
    fn invalid_messages_are_refused_with_their_reason() {
        let mut wrong = proto::Message::from(Message::Hello(hello()));
        wrong.hello.as_mut().unwrap().version = 1;
        assert_eq!(Message::try_from(wrong), Err(InvalidMessage::Version(1)));
        let mut wrong = proto::Message::from(Message::Hello(hello()));
        wrong.hello.as_mut().unwrap().nonce = vec![1; 3];
        assert_eq!(Message::try_from(wrong), Err(InvalidMessage::Nonce(3)));
        let mut wrong = proto::Message::from(Message::Hello(hello()));
        wrong.hello.as_mut().unwrap().attempt = 3;
        assert_eq!(Message::try_from(wrong), Err(InvalidMessage::Attempt(3)));
        let mut wrong = proto::Message::from(Message::Hello(hello()));
        wrong.hello.as_mut().unwrap().sockets[0].public = Some(b"junk".to_vec());
        assert_eq!(Message::try_from(wrong), Err(InvalidMessage::Public));
        // An IPv6 address for the IPv4 socket.
        let mut wrong = proto::Message::from(Message::Hello(hello()));
        let v6 = wrong.hello.as_ref().unwrap().sockets[1].public.clone();
        wrong.hello.as_mut().unwrap().sockets[0].public = v6;
        assert_eq!(Message::try_from(wrong), Err(InvalidMessage::Public));
        let mut wrong = proto::Message::from(Message::Hello(hello()));
        let first = wrong.hello.as_ref().unwrap().sockets[0].clone();
        wrong.hello.as_mut().unwrap().sockets.push(first);
        assert_eq!(Message::try_from(wrong), Err(InvalidMessage::Family));
        let mut wrong = proto::Message::from(Message::Won { port: 1 });
        wrong.won = None;
        assert_eq!(
            Message::try_from(wrong),
            Err(InvalidMessage::Missing("WON", "won"))
        );
        let mut wrong = proto::Message::from(Message::Won { port: 1 });
        wrong.won.as_mut().unwrap().port = 70_000;
        assert_eq!(Message::try_from(wrong), Err(InvalidMessage::Range(70_000)));
        let mut wrong = proto::Message::from(Message::Won { port: 1 });
        wrong.r#type = 9;
        assert_eq!(Message::try_from(wrong), Err(InvalidMessage::Range(9)));
    }

    #[test]
    fn a_probe_carries_the_magic_and_the_nonce() {
        let nonce = Nonce([9; 16]);
        let datagram = probe(&nonce, &[1, 2, 3]);
        assert_eq!(datagram.len(), 23);
        assert!(is_probe(&datagram, &nonce));
        assert!(!is_probe(&datagram, &Nonce([8; 16])));
        assert!(!is_probe(&datagram[..19], &nonce));
        assert!(!is_probe(b"GET / HTTP/1.1 ......", &nonce));
    }
}
