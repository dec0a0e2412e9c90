//! `/punchport/birthday/1`: the negotiation over the relayed connection.
//!
//! The side that initiates DCUtR opens the stream; each side sends a
//! [`Hello`] with its NAT class and the public address of its punch socket.
//! Both then know the plan. When it is a birthday punch, the hard side
//! sends [`Go`] once its sockets are open, and the easy side starts
//! probing. A stock peer does not speak the protocol, so it is never
//! sprayed at and punches as DCUtR always does.

use std::{io, net::SocketAddr};

use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use libp2p_swarm::StreamProtocol;
use serde::{Deserialize, Serialize};

/// The protocol's name.
pub(crate) const PROTOCOL: StreamProtocol = StreamProtocol::new("/punchport/birthday/1");
/// The largest message.
const MAX_MESSAGE: usize = 1024;

/// What each side says first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// `endpoint-independent`, `endpoint-dependent` or `unknown`.
    pub(crate) mapping: String,
    /// The punch socket's public address, as an observer saw it.
    pub(crate) public: Option<SocketAddr>,
    /// Whether this side would punch this way at all.
    pub(crate) enabled: bool,
}

/// The hard side's sockets are open and sending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Go {
    /// How many.
    pub(crate) sockets: u16,
}

/// Writes one message: a 2-byte big-endian length, then JSON.
pub(crate) async fn send<T: Serialize>(
    stream: &mut (impl AsyncWrite + Unpin),
    message: &T,
) -> io::Result<()> {
    let body = serde_json::to_vec(message).map_err(io::Error::other)?;
    if body.len() > MAX_MESSAGE {
        return Err(io::Error::other("birthday message too large"));
    }
    let len = u16::try_from(body.len()).map_err(io::Error::other)?;
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(&body).await?;
    stream.flush().await
}

/// Reads one message of at most 1 KiB.
pub(crate) async fn receive<T: for<'de> Deserialize<'de>>(
    stream: &mut (impl AsyncRead + Unpin),
) -> io::Result<T> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let len = usize::from(u16::from_be_bytes(len));
    if len > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a birthday message of {len} bytes, more than {MAX_MESSAGE}"),
        ));
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use futures::io::Cursor;

    use super::*;

    #[test]
    fn messages_round_trip_and_oversized_ones_are_refused() {
        futures::executor::block_on(async {
            let hello = Hello {
                mapping: "endpoint-dependent".into(),
                public: Some("198.51.100.1:31000".parse().unwrap()),
                enabled: true,
            };
            let mut wire = Cursor::new(Vec::new());
            send(&mut wire, &hello).await.unwrap();
            send(&mut wire, &Go { sockets: 256 }).await.unwrap();
            wire.set_position(0);
            assert_eq!(receive::<Hello>(&mut wire).await.unwrap(), hello);
            assert_eq!(receive::<Go>(&mut wire).await.unwrap(), Go { sockets: 256 });

            let mut huge = Cursor::new([0x10u8, 0x00].to_vec());
            let error = receive::<Go>(&mut huge).await.unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            let mut junk = Cursor::new([0u8, 3, b'{', b'{', b'{'].to_vec());
            assert!(receive::<Go>(&mut junk).await.is_err());
        });
    }
}
