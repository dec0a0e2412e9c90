//! The sockets of a birthday attempt: the hard side's plain UDP sockets,
//! each sending its short-TTL datagram and listening for a probe, and the
//! easy side's probes from the punch socket. They only carry out what the
//! machine says.

use std::{
    io,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    task::{Context, Poll},
};

use crate::net::wire::{self, PunchSender};
use futures::{FutureExt as _, StreamExt as _, future::BoxFuture, stream::FuturesUnordered};

/// The largest datagram read on a hard side's socket (a probe is at most 32
/// bytes; anything longer is not one).
const READ: usize = 64;

type Receive = BoxFuture<
    'static,
    (
        u16,
        Arc<tokio::net::UdpSocket>,
        io::Result<(Vec<u8>, SocketAddr)>,
    ),
>;

/// The hard side's sockets of one attempt. Dropping it closes them all.
pub(crate) struct HardSockets {
    bind: IpAddr,
    ports: Vec<u16>,
    receiving: FuturesUnordered<Receive>,
    /// How many could not be opened, and the last error.
    pub(crate) failed: (u16, Option<io::Error>),
}

impl std::fmt::Debug for HardSockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HardSockets")
            .field("bind", &self.bind)
            .field("open", &self.receiving.len())
            .field("failed", &self.failed.0)
            .finish()
    }
}

fn receive(index: u16, socket: Arc<tokio::net::UdpSocket>) -> Receive {
    async move {
        let mut buf = [0u8; READ];
        let result = socket
            .recv_from(&mut buf)
            .await
            .map(|(len, from)| (buf[..len].to_vec(), from));
        (index, socket, result)
    }
    .boxed()
}

impl HardSockets {
    /// Sockets bound to `bind` (the punch socket's IP, perhaps unspecified).
    pub(crate) fn new(bind: IpAddr) -> Self {
        Self {
            bind,
            ports: Vec::new(),
            receiving: FuturesUnordered::new(),
            failed: (0, None),
        }
    }

    /// Opens socket `index` with `ttl` and sends `payload` to `to` from it.
    pub(crate) fn open(&mut self, index: u16, ttl: u8, to: SocketAddr, payload: &[u8]) {
        if let Err(error) = self.try_open(index, ttl, to, payload) {
            tracing::debug!(index, %error, "a birthday socket could not be opened");
            self.failed.0 += 1;
            self.failed.1 = Some(error);
        }
    }

    fn try_open(&mut self, index: u16, ttl: u8, to: SocketAddr, payload: &[u8]) -> io::Result<()> {
        // Without a tokio runtime there is nothing to listen with.
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let socket = wire::bind_with_ttl(self.bind, ttl)?;
        let port = socket.local_addr()?.port();
        socket.send_to(payload, to)?;
        let socket = Arc::new(tokio::net::UdpSocket::from_std(socket)?);
        if self.ports.len() <= usize::from(index) {
            self.ports.resize(usize::from(index) + 1, 0);
        }
        self.ports[usize::from(index)] = port;
        self.receiving.push(receive(index, socket));
        Ok(())
    }

    /// The next datagram to any of them: `(index, local port, from,
    /// datagram)`.
    pub(crate) fn poll_datagram(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<(u16, u16, SocketAddr, Vec<u8>)> {
        while let Poll::Ready(Some((index, socket, result))) = self.receiving.poll_next_unpin(cx) {
            let port = self.ports.get(usize::from(index)).copied().unwrap_or(0);
            match result {
                Ok((datagram, from)) => {
                    self.receiving.push(receive(index, socket));
                    return Poll::Ready((index, port, from, datagram));
                }
                // An ICMP error reported on the socket: keep listening.
                Err(error) => {
                    tracing::trace!(index, %error, "birthday socket error");
                    self.receiving.push(receive(index, socket));
                }
            }
        }
        Poll::Pending
    }
}

/// The easy side's probes of one attempt, from the punch socket.
#[derive(Debug)]
pub(crate) struct Probes {
    sender: Option<Arc<PunchSender>>,
    /// How many could not be sent, and the last error.
    pub(crate) failed: (u16, Option<io::Error>),
}

impl Probes {
    /// Probes through the punch socket's sender
    /// ([`PunchSockets::sender`](crate::net::PunchSockets::sender)), or
    /// none, with why.
    pub(crate) fn new(sender: io::Result<Arc<PunchSender>>) -> Self {
        match sender {
            Ok(sender) => Self {
                sender: Some(sender),
                failed: (0, None),
            },
            Err(error) => {
                tracing::warn!(%error, "birthday probes cannot leave from the punch socket");
                Self {
                    sender: None,
                    failed: (0, Some(error)),
                }
            }
        }
    }

    /// Sends one probe.
    pub(crate) fn send(&mut self, to: SocketAddr, payload: &[u8]) {
        let result = match &self.sender {
            Some(sender) => sender.send(to, None, payload),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        };
        if let Err(error) = result {
            self.failed.0 += 1;
            self.failed.1 = Some(error);
        }
    }
}
