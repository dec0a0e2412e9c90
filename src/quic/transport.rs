//! The port-aware transport: one libp2p-quic transport per socket, and a
//! routing rule that sends every hole-punch dial through the punch socket.

use std::{
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    task::{Context, Poll, Waker},
};

use crate::net::{
    Family, NoPunchSocket, NoPunchSocketReason, PunchSockets, QuicAddr, Route, SocketTable,
    is_routable,
};
use libp2p_core::{
    Endpoint, Multiaddr, Transport as _,
    transport::{DialOpts, ListenerId, PortUse, TransportError, TransportEvent},
};

use crate::quic::{
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
/// - Every hole-punch dial leaves from the punch socket of the remote's
///   family, or fails with [`NoPunchSocket`]: dials with the listener role
///   (DCUtR's initiator), and the dials that punchport's DCUtR wrapper
///   announces as DCUtR's (the other side's).
/// - Every other dial reusing a port (the relay connection, everything else)
///   also leaves from the punch socket, so that the relay observes the punch
///   port and identify reports it. Without a punch socket that reaches the
///   remote it leaves from an ephemeral socket, never from an ordinary
///   listener. Dials asking for a new port get one.
///
/// Which socket is the punch socket, and which one a dial leaves from, is
/// decided by one table that this transport owns; the
/// DCUtR wrapper reads it through [`Transport::punch_sockets`].
///
/// Its `Output`, `Error` and `ListenerUpgrade` are libp2p-quic's, so it
/// replaces `with_quic()` in `SwarmBuilder::with_other_transport`.
pub struct Transport {
    config: Config,
    /// The punch sockets and the routing rule.
    table: SocketTable,
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
    /// Removal was requested; the inner transport still has to report it.
    closing: bool,
    inner: Inner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Punch,
    Ordinary,
    /// A birthday winner's socket: the swarm never hears of it; it closes
    /// when the table retires it.
    Fresh,
}

impl Transport {
    /// A transport with no sockets yet.
    pub(crate) fn new(config: Config) -> Self {
        Self {
            dialer: Inner::new(config.quic.clone()),
            table: SocketTable::new(config.range, config.opener_ttl),
            config,
            listeners: Vec::new(),
            next_poll: 0,
            waker: None,
        }
    }

    /// A handle on this transport's punch sockets: which are bound, which
    /// one carries a dial to a given remote, and where each dial left from.
    /// Hand it to [`Behaviour`](crate::Behaviour)
    /// (`punchport::new` does).
    pub fn punch_sockets(&self) -> PunchSockets {
        self.table.handle()
    }

    fn refuse<T>(
        &self,
        addr: Multiaddr,
        remote: SocketAddr,
        reason: NoPunchSocketReason,
    ) -> Result<T, TransportError<QuicError>> {
        let family = Family::of(remote.ip());
        let err = NoPunchSocket::new(addr, family, self.config.range, reason);
        tracing::warn!("{err}");
        Err(Error::from(err).into())
    }

    /// The hard side of a birthday punch, once a probe reached its socket
    /// on `port`: a QUIC dial to `remote` from a socket bound again to that
    /// port (its plain socket is closed; the NAT's mapping towards `remote`
    /// outlives it). The socket closes with its connection.
    fn dial_winner(
        &mut self,
        addr: Multiaddr,
        remote: SocketAddr,
        bind: IpAddr,
        port: u16,
    ) -> Result<<Self as libp2p_core::Transport>::Dial, TransportError<QuicError>> {
        let id = ListenerId::next();
        let local = SocketAddr::new(bind, port);
        let mut inner = Inner::new(self.config.quic.clone());
        inner.listen_on(
            id,
            QuicAddr {
                socket: local,
                peer_id: None,
            }
            .to_multiaddr(),
        )?;
        let dial = inner.dial(
            addr,
            DialOpts {
                role: Endpoint::Dialer,
                port_use: PortUse::Reuse,
            },
        )?;
        self.table.winner_bound(id, remote, local);
        self.listeners.push(Listener {
            id,
            kind: Kind::Fresh,
            bound: local,
            closing: false,
            inner,
        });
        tracing::debug!(from=%local, to=%remote, "birthday winner dials");
        Ok(dial)
    }

    fn listener_mut(&mut self, id: ListenerId) -> Option<&mut Listener> {
        self.listeners.iter_mut().find(|l| l.id == id)
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
        Ok(Listener {
            id,
            kind,
            bound: socket,
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
        if let Some(existing) = self.table.handle().get(family) {
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
        let listener = if self.config.range.binds_punch_socket(port) {
            self.bind_punch(id, &addr, quic.socket)?
        } else {
            self.bind(id, Kind::Ordinary, quic.socket)?
        };
        tracing::debug!(
            %addr, bound=%listener.bound, kind=?listener.kind, "listening"
        );
        if listener.kind == Kind::Punch {
            self.table.bound(id, listener.bound);
        }
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
        self.table.closing(id);
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
        match self.table.route(remote, opts.role, opts.port_use) {
            Route::Punch(socket) => {
                let opts = match opts.role {
                    // DCUtR's initiator: the configured way to punch.
                    Endpoint::Listener => DialOpts {
                        role: Endpoint::Listener,
                        port_use: match self.config.initiator {
                            InitiatorRole::Client => PortUse::Reuse,
                            InitiatorRole::Server => PortUse::New,
                        },
                    },
                    Endpoint::Dialer => DialOpts {
                        role: Endpoint::Dialer,
                        port_use: PortUse::Reuse,
                    },
                };
                tracing::debug!(%addr, from=%socket.bound, role=?opts.role, "dial leaves from the punch socket");
                match self.listener_mut(socket.listener) {
                    Some(listener) => listener.inner.dial(addr, opts),
                    // The table lists only sockets held here; never reached.
                    None => {
                        self.refuse(addr, remote, NoPunchSocketReason::NotBound(socket.family()))
                    }
                }
            }
            Route::Winner { bind, port } => self.dial_winner(addr, remote, bind, port),
            Route::Ephemeral => {
                tracing::debug!(%addr, "dial leaves from an ephemeral socket");
                self.dialer.dial(addr, opts)
            }
            Route::New => self.dialer.dial(addr, opts),
            Route::Refuse(reason) => self.refuse(addr, remote, reason),
        }
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        let this = self.get_mut();
        for id in this.table.retired(cx.waker()) {
            if let Some(listener) = this.listener_mut(id)
                && !listener.closing
            {
                listener.closing = true;
                listener.inner.remove_listener(id);
            }
        }
        let count = this.listeners.len();
        for step in 0..count {
            let index = (this.next_poll + step) % count;
            let listener = &mut this.listeners[index];
            let Poll::Ready(event) = Pin::new(&mut listener.inner).poll(cx) else {
                continue;
            };
            this.next_poll = index + 1;
            if listener.kind == Kind::Fresh {
                // The swarm never asked for this socket: nothing of it goes
                // to the swarm. An inbound connection that is not the one
                // its hole puncher waits for is dropped. Poll again for
                // what else it has.
                cx.waker().wake_by_ref();
                if let TransportEvent::ListenerClosed { .. } = event {
                    tracing::trace!(bound=%listener.bound, "birthday socket closed");
                    this.listeners.remove(index);
                    if this.next_poll >= this.listeners.len() {
                        this.next_poll = 0;
                    }
                    return Poll::Pending;
                }
                continue;
            }
            match &event {
                TransportEvent::NewAddress { listen_addr, .. } if listener.kind == Kind::Punch => {
                    if let Ok(addr) = QuicAddr::parse(listen_addr) {
                        this.table.address_added(listener.id, addr.socket.ip());
                    }
                    tracing::debug!(%listen_addr, "punch socket listening");
                }
                TransportEvent::AddressExpired { listen_addr, .. }
                    if listener.kind == Kind::Punch =>
                {
                    if let Ok(addr) = QuicAddr::parse(listen_addr) {
                        this.table.address_removed(listener.id, addr.socket.ip());
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
                        this.table.closed(listener.id);
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
