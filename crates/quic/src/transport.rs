//! The port-aware transport: one libp2p-quic transport per socket, and a
//! routing rule that sends every hole-punch dial through the punch socket.

use std::{
    collections::HashSet,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    task::{Context, Poll, Waker},
};

use libp2p_core::{
    Endpoint, Multiaddr, Transport as _,
    transport::{DialOpts, ListenerId, PortUse, TransportError, TransportEvent},
};
use punchport_core::{Family, NoPunchSocket, NoPunchSocketReason, QuicAddr, is_routable};

use crate::{
    Config, InitiatorRole,
    error::{Error, PunchSocketTaken, RangeExhausted},
};

type Inner = libp2p_quic::tokio::Transport;
type QuicError = libp2p_quic::Error;

/// A QUIC transport for rust-libp2p that knows which of its sockets is the
/// punch socket.
///
/// - Listening on port 0, or on a port inside the punch range, binds the punch
///   socket: port 0 takes the first free port of the range. There is one punch
///   socket per IP family.
/// - Any other listen address is an ordinary listener. It accepts connections
///   and never originates one.
/// - Every dial with the listener role (DCUtR's initiator) leaves from the
///   punch socket of the remote's family, or fails with [`NoPunchSocket`].
/// - Every other dial reusing a port (DCUtR's other side, the relay
///   connection, everything else) also leaves from the punch socket, so that
///   the relay observes the punch port and identify reports it. Without a
///   punch socket of that family it leaves from an ephemeral socket, never
///   from an ordinary listener. Dials asking for a new port get one.
///
/// Its `Output`, `Error` and `ListenerUpgrade` are libp2p-quic's, so it
/// replaces `with_quic()` in `SwarmBuilder::with_other_transport`.
pub struct Transport {
    config: Config,
    /// One inner transport per listener, so that each holds exactly one socket.
    listeners: Vec<Listener>,
    /// An inner transport without listeners, for dials that do not leave from
    /// the punch socket.
    dialer: Inner,
    /// Where the next poll starts, so that every listener gets its turn.
    next_poll: usize,
    waker: Option<Waker>,
}

struct Listener {
    id: ListenerId,
    kind: Kind,
    /// The bound socket address (the IP may be unspecified).
    bound: SocketAddr,
    /// The IPs reported as listen addresses, as libp2p-quic tracks them.
    addresses: HashSet<IpAddr>,
    /// Removal was requested; the inner transport still has to report it.
    closing: bool,
    inner: Inner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Punch,
    Ordinary,
}

impl Transport {
    /// A transport with no sockets yet.
    pub fn new(config: Config) -> Self {
        Self {
            dialer: Inner::new(config.quic.clone()),
            config,
            listeners: Vec::new(),
            next_poll: 0,
            waker: None,
        }
    }

    /// The bound punch sockets, at most one per family.
    pub fn punch_sockets(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.listeners
            .iter()
            .filter(|l| l.kind == Kind::Punch && !l.closing)
            .map(|l| l.bound)
    }

    fn punch_listener(&self, family: Family) -> Option<&Listener> {
        self.listeners
            .iter()
            .find(|l| l.kind == Kind::Punch && !l.closing && Family::of(l.bound.ip()) == family)
    }

    /// The punch socket that libp2p-quic would use to reach `remote`: same
    /// family and, for a loopback remote, a loopback listen address.
    fn eligible_punch(&mut self, remote: SocketAddr) -> Result<&mut Listener, NoPunchSocketReason> {
        let family = Family::of(remote.ip());
        let listener = self
            .listeners
            .iter_mut()
            .find(|l| l.kind == Kind::Punch && !l.closing && Family::of(l.bound.ip()) == family)
            .ok_or(NoPunchSocketReason::NotBound(family))?;
        if remote.ip().is_loopback() && !listener.addresses.iter().any(IpAddr::is_loopback) {
            return Err(NoPunchSocketReason::NoLoopback(listener.bound));
        }
        Ok(listener)
    }

    fn bind(
        &self,
        id: ListenerId,
        kind: Kind,
        socket: SocketAddr,
    ) -> Result<Listener, TransportError<QuicError>> {
        let mut inner = Inner::new(self.config.quic.clone());
        inner.listen_on(
            id,
            QuicAddr {
                socket,
                peer_id: None,
            }
            .to_multiaddr(),
        )?;
        let addresses = if socket.ip().is_unspecified() {
            HashSet::new()
        } else {
            HashSet::from([socket.ip()])
        };
        Ok(Listener {
            id,
            kind,
            bound: socket,
            addresses,
            closing: false,
            inner,
        })
    }

    fn bind_punch(
        &self,
        id: ListenerId,
        requested: &Multiaddr,
        socket: SocketAddr,
    ) -> Result<Listener, TransportError<QuicError>> {
        let family = Family::of(socket.ip());
        if let Some(existing) = self.punch_listener(family) {
            return Err(Error::from(PunchSocketTaken {
                requested: requested.clone(),
                family,
                existing: existing.bound,
                range: self.config.range,
            })
            .into());
        }
        if socket.port() != 0 {
            return self.bind(id, Kind::Punch, socket);
        }
        for port in self.config.range.ports() {
            match self.bind(id, Kind::Punch, SocketAddr::new(socket.ip(), port)) {
                Err(TransportError::Other(QuicError::Io(e)))
                    if e.kind() == io::ErrorKind::AddrInUse =>
                {
                    tracing::trace!(port, "punch port in use, trying the next one");
                }
                bound => return bound,
            }
        }
        Err(Error::from(RangeExhausted::new(self.config.range, socket.ip())).into())
    }

    fn dial_punch(
        &mut self,
        addr: Multiaddr,
        remote: SocketAddr,
    ) -> Result<<Self as libp2p_core::Transport>::Dial, TransportError<QuicError>> {
        let range = self.config.range;
        let role = self.config.initiator;
        let port_use = match role {
            InitiatorRole::Client => PortUse::Reuse,
            InitiatorRole::Server => PortUse::New,
        };
        match self.eligible_punch(remote) {
            Ok(listener) => {
                tracing::debug!(
                    %addr, from=%listener.bound, ?role,
                    "hole-punch dial (listener role) leaves from the punch socket"
                );
                let opts = DialOpts {
                    role: Endpoint::Listener,
                    port_use,
                };
                listener.inner.dial(addr, opts)
            }
            Err(reason) => {
                let family = Family::of(remote.ip());
                let err = NoPunchSocket::new(addr, family, range, reason);
                tracing::warn!("{err}");
                Err(Error::from(err).into())
            }
        }
    }
}

impl libp2p_core::Transport for Transport {
    type Output = <Inner as libp2p_core::Transport>::Output;
    type Error = QuicError;
    type ListenerUpgrade = <Inner as libp2p_core::Transport>::ListenerUpgrade;
    type Dial = <Inner as libp2p_core::Transport>::Dial;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        let Ok(quic) = QuicAddr::parse(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let port = quic.socket.port();
        let listener = if port == 0 || self.config.range.contains(port) {
            self.bind_punch(id, &addr, quic.socket)?
        } else {
            self.bind(id, Kind::Ordinary, quic.socket)?
        };
        tracing::debug!(
            %addr, bound=%listener.bound, kind=?listener.kind, "listening"
        );
        self.listeners.push(listener);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        let Some(listener) = self.listeners.iter_mut().find(|l| l.id == id && !l.closing) else {
            return false;
        };
        listener.closing = true;
        listener.inner.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        let Ok(remote) = QuicAddr::parse(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let remote = remote.socket;
        // Nothing can answer from these; never send to them (a remote's
        // DCUtR candidates are whatever it chose to send).
        if !is_routable(remote.ip()) || remote.port() == 0 {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        match (opts.role, opts.port_use) {
            (Endpoint::Listener, _) => self.dial_punch(addr, remote),
            (Endpoint::Dialer, PortUse::Reuse) => match self.eligible_punch(remote) {
                Ok(listener) => {
                    tracing::debug!(%addr, from=%listener.bound, "dial leaves from the punch socket");
                    listener.inner.dial(addr, opts)
                }
                Err(reason) => {
                    tracing::debug!(%addr, %reason, "dial leaves from an ephemeral socket");
                    self.dialer.dial(addr, opts)
                }
            },
            (Endpoint::Dialer, PortUse::New) => self.dialer.dial(addr, opts),
        }
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        let this = self.get_mut();
        let count = this.listeners.len();
        for step in 0..count {
            let index = (this.next_poll + step) % count;
            let listener = &mut this.listeners[index];
            let Poll::Ready(event) = Pin::new(&mut listener.inner).poll(cx) else {
                continue;
            };
            this.next_poll = index + 1;
            match &event {
                TransportEvent::NewAddress { listen_addr, .. } => {
                    if let Ok(addr) = QuicAddr::parse(listen_addr) {
                        listener.addresses.insert(addr.socket.ip());
                    }
                    if listener.kind == Kind::Punch {
                        tracing::debug!(%listen_addr, "punch socket listening");
                    }
                }
                TransportEvent::AddressExpired { listen_addr, .. } => {
                    if let Ok(addr) = QuicAddr::parse(listen_addr) {
                        listener.addresses.remove(&addr.socket.ip());
                    }
                }
                TransportEvent::ListenerClosed { reason, .. } => {
                    if listener.kind == Kind::Punch {
                        match reason {
                            Ok(()) if listener.closing => {
                                tracing::debug!(bound=%listener.bound, "punch socket closed")
                            }
                            Ok(()) => tracing::warn!(bound=%listener.bound, "punch socket closed"),
                            Err(error) => {
                                tracing::warn!(bound=%listener.bound, %error, "punch socket failed")
                            }
                        }
                    }
                    this.listeners.remove(index);
                }
                _ => {}
            }
            if this.next_poll >= this.listeners.len() {
                this.next_poll = 0;
            }
            return Poll::Ready(event);
        }
        this.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sockets: Vec<_> = self
            .listeners
            .iter()
            .map(|l| (l.id, l.kind, l.bound))
            .collect();
        f.debug_struct("Transport")
            .field("config", &self.config)
            .field("sockets", &sockets)
            .finish_non_exhaustive()
    }
}
