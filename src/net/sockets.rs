//! The punch sockets of one node, and the one rule that says which of them
//! carries a dial to a given remote.
//!
//! The transport owns the table ([`SocketTable`]): it binds and closes the
//! sockets and routes every dial with [`SocketTable::route`]. Everything else
//! (the DCUtR wrapper, its candidate filter, NAT classification, attempt
//! reports, the nodes) reads it through a [`PunchSockets`] handle, so no part
//! can hold a second opinion about which socket is the punch socket, on which
//! port, or where a connection left from.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    task::Waker,
};

use libp2p_core::{
    Endpoint,
    transport::{ListenerId, PortUse},
};
use libp2p_swarm::ConnectionId;

use crate::net::{Family, NoPunchSocketReason, PortRange, wire::PunchSender};

/// Openers per remote address: two, in case one is lost.
const OPENERS: usize = 2;

/// One bound punch socket.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PunchSocket {
    /// The swarm's id of its listener.
    pub listener: ListenerId,
    /// The address it is bound to (the IP may be unspecified).
    pub bound: SocketAddr,
    /// The IPs it reported as listen addresses so far.
    pub addresses: Vec<IpAddr>,
}

impl PunchSocket {
    /// Its IP family.
    pub fn family(&self) -> Family {
        Family::of(self.bound.ip())
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.bound.port()
    }

    /// Whether it can reach `remote`, by libp2p-quic's own rule: the same
    /// family and, for a loopback remote, a loopback listen address (a socket
    /// on `0.0.0.0` has none until it has learnt its interface addresses).
    pub fn reaches(&self, remote: IpAddr) -> Result<(), NoPunchSocketReason> {
        if Family::of(remote) != self.family() {
            return Err(NoPunchSocketReason::NotBound(Family::of(remote)));
        }
        if remote.is_loopback() && !self.addresses.iter().any(IpAddr::is_loopback) {
            return Err(NoPunchSocketReason::NoLoopback(self.bound));
        }
        Ok(())
    }

    /// The local address a connection to `remote` has on this socket: a
    /// loopback listen address for a loopback remote, otherwise the first
    /// other one, otherwise the bound address.
    pub fn local_addr_for(&self, remote: IpAddr) -> SocketAddr {
        let ip = self
            .addresses
            .iter()
            .find(|ip| ip.is_loopback() == remote.is_loopback())
            .copied()
            .unwrap_or(self.bound.ip());
        SocketAddr::new(ip, self.bound.port())
    }
}

/// What a dial is, as the DCUtR wrapper announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DialPurpose {
    /// Not a hole punch: from the punch socket if one reaches the remote.
    Ordinary,
    /// One of DCUtR's dials: from the punch socket or nowhere.
    Punch,
    /// The hard side of a birthday punch, once a probe reached its socket
    /// on this local port: a QUIC dial from a socket bound again to that
    /// port (its NAT mapping towards the remote is still there).
    BirthdayWinner(u16),
}

/// Where the transport sends one dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// From this punch socket.
    Punch(PunchSocket),
    /// From a socket of its own on `port` (a birthday punch's winning
    /// port), bound for this dial alone on the punch socket's IP `bind`
    /// and closed when its connection closes or its dial fails
    /// ([`PunchSockets::forget`]).
    Winner {
        /// The IP of the punch socket of the remote's family.
        bind: IpAddr,
        /// The port.
        port: u16,
    },
    /// From an ephemeral socket shared by such dials (no punch socket of the
    /// remote's family can reach it, and the dial is not a hole punch).
    Ephemeral,
    /// From a new ephemeral socket (`PortUse::New`).
    New,
    /// Nowhere: a hole-punch dial that no punch socket can carry.
    Refuse(NoPunchSocketReason),
}

#[derive(Debug)]
struct Entry {
    socket: PunchSocket,
    /// Removal was requested; the listener has not closed yet.
    closing: bool,
    /// The sender of its openers and birthday probes, found at its first
    /// use (or why it could not be, said once).
    sender: Option<Result<Arc<PunchSender>, io::ErrorKind>>,
}

impl Entry {
    /// Its sender, found at the first call.
    fn sender(&mut self) -> Result<Arc<PunchSender>, io::ErrorKind> {
        let bound = self.socket.bound;
        self.sender
            .get_or_insert_with(|| {
                PunchSender::find(bound).map(Arc::new).map_err(|error| {
                    tracing::info!(%bound, %error, "punches go without short-TTL openers or birthday probes: a router in front of this node that accepts unsolicited packets may remap the punch port");
                    error.kind()
                })
            })
            .clone()
    }
}

/// What the dial being set up now is, as the DCUtR wrapper announced it in
/// `handle_pending_outbound_connection`, which the swarm calls right before
/// the transport's `dial` for each of the connection's addresses.
#[derive(Debug, Clone, Copy)]
struct Pending {
    connection: ConnectionId,
    purpose: DialPurpose,
}

#[derive(Debug)]
struct Shared {
    range: PortRange,
    sockets: Vec<Entry>,
    pending: Option<Pending>,
    /// The punch socket each recorded dial left from, per remote address.
    sources: HashMap<ConnectionId, Vec<(SocketAddr, SocketAddr)>>,
    /// The socket of each birthday winner's dial, to close with its
    /// connection.
    fresh: HashMap<ConnectionId, ListenerId>,
    /// Such sockets to close, for the transport's next poll.
    retired: Vec<ListenerId>,
    /// Wakes the transport when such a socket is retired.
    waker: Option<Waker>,
    /// The TTL of datagrams that must leave our NAT and not reach the
    /// other side's.
    opener_ttl: u8,
}

impl Shared {
    fn open(&self, family: Family) -> Option<&PunchSocket> {
        self.sockets
            .iter()
            .find(|e| !e.closing && e.socket.family() == family)
            .map(|e| &e.socket)
    }

    fn for_remote(&self, remote: IpAddr) -> Result<&PunchSocket, NoPunchSocketReason> {
        let family = Family::of(remote);
        let socket = self
            .open(family)
            .ok_or(NoPunchSocketReason::NotBound(family))?;
        socket.reaches(remote)?;
        Ok(socket)
    }

    fn entry_mut(&mut self, listener: ListenerId) -> Option<&mut Entry> {
        self.sockets
            .iter_mut()
            .find(|e| e.socket.listener == listener)
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // The table holds plain data that every write leaves consistent.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The punch range and the open punch sockets at one moment
/// ([`PunchSockets::snapshot`]).
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    range: PortRange,
    open: Vec<PunchSocket>,
}

impl Snapshot {
    /// The punch range.
    pub(crate) fn range(&self) -> PortRange {
        self.range
    }

    /// The open punch socket of `family`.
    pub(crate) fn get(&self, family: Family) -> Option<&PunchSocket> {
        self.open.iter().find(|s| s.family() == family)
    }

    /// The port of the open punch socket of `family`.
    pub(crate) fn port(&self, family: Family) -> Option<u16> {
        self.get(family).map(PunchSocket::port)
    }

    /// Whether `local` is the open punch socket of its family (its port;
    /// the IP may be any of the socket's addresses).
    pub(crate) fn is_punch(&self, local: SocketAddr) -> bool {
        self.port(Family::of(local.ip())) == Some(local.port())
    }
}

/// A read handle on a node's punch sockets, shared by everything that needs
/// to know them. Cheap to clone; every clone sees the same table.
#[derive(Debug, Clone)]
pub struct PunchSockets {
    shared: Arc<Mutex<Shared>>,
}

impl PunchSockets {
    /// The punch range.
    pub fn range(&self) -> PortRange {
        lock(&self.shared).range
    }

    /// The open punch socket of `family`, if one is bound.
    pub fn get(&self, family: Family) -> Option<PunchSocket> {
        lock(&self.shared).open(family).cloned()
    }

    /// The port of the open punch socket of `family`.
    pub fn port(&self, family: Family) -> Option<u16> {
        lock(&self.shared).open(family).map(PunchSocket::port)
    }

    /// The range and the open punch sockets as they are now, for logic
    /// that decides on a fixed view instead of reading the table as it
    /// changes.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let shared = lock(&self.shared);
        Snapshot {
            range: shared.range,
            open: shared
                .sockets
                .iter()
                .filter(|e| !e.closing)
                .map(|e| e.socket.clone())
                .collect(),
        }
    }

    /// Every open punch socket (at most one per family).
    pub fn all(&self) -> Vec<PunchSocket> {
        lock(&self.shared)
            .sockets
            .iter()
            .filter(|e| !e.closing)
            .map(|e| e.socket.clone())
            .collect()
    }

    /// The punch socket that carries a dial to `remote`: the open one of its
    /// family, if it [reaches](PunchSocket::reaches) it. This is the rule the
    /// transport routes hole-punch dials by.
    pub(crate) fn for_remote(&self, remote: IpAddr) -> Result<PunchSocket, NoPunchSocketReason> {
        lock(&self.shared).for_remote(remote).cloned()
    }

    /// Announces the dial the swarm is about to hand to the transport, and
    /// what it is (a hole punch may leave from nothing but a punch socket).
    /// Call it from `handle_pending_outbound_connection`.
    pub(crate) fn dialing(&self, connection: ConnectionId, purpose: DialPurpose) {
        lock(&self.shared).pending = Some(Pending {
            connection,
            purpose,
        });
    }

    /// The TTL of datagrams that must leave our NAT but not reach the
    /// other side's: the short-TTL openers and the birthday punch's hard
    /// side.
    pub(crate) fn opener_ttl(&self) -> u8 {
        lock(&self.shared).opener_ttl
    }

    /// Sends the openers of the punch socket that carries a dial to
    /// `remote`: [`OPENERS`] datagrams of 8 random bytes whose TTL (the
    /// opener TTL) is just large enough to leave our own NAT, so that it
    /// maps the punch socket towards `remote` before `remote`'s own packets
    /// arrive (which then come back as replies, not as new flows that a
    /// router accepting unsolicited packets would take for its own and
    /// clash with). Returns how many left. Off Linux, or without the
    /// socket's descriptor, nothing is sent, said once per socket.
    pub(crate) fn send_openers(&self, remote: SocketAddr) -> usize {
        let mut shared = lock(&self.shared);
        let ttl = shared.opener_ttl;
        let Ok(listener) = shared.for_remote(remote.ip()).map(|s| s.listener) else {
            return 0;
        };
        let Some(entry) = shared.entry_mut(listener) else {
            return 0;
        };
        let bound = entry.socket.bound;
        let Ok(sender) = entry.sender() else {
            return 0;
        };
        let mut sent = 0;
        for _ in 0..OPENERS {
            let payload: [u8; 8] = rand::random();
            match sender.send(remote, Some(ttl), &payload) {
                Ok(()) => sent += 1,
                Err(error) => tracing::debug!(%remote, %error, "an opener did not leave"),
            }
        }
        tracing::trace!(from=%bound, to=%remote, ttl, sent, "openers");
        sent
    }

    /// The sender of the open punch socket bound at `bound`: one per socket,
    /// found at its first use (a scan of this process's descriptors) and
    /// kept with the socket's entry. Fails with [`io::ErrorKind::NotFound`]
    /// if no punch socket is bound there, or as [`PunchSender::find`] did at
    /// the first use.
    pub(crate) fn sender(&self, bound: SocketAddr) -> io::Result<Arc<PunchSender>> {
        let mut shared = lock(&self.shared);
        let entry = shared
            .sockets
            .iter_mut()
            .find(|e| !e.closing && e.socket.bound == bound)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no open punch socket is bound at {bound}"),
                )
            })?;
        entry.sender().map_err(|kind| {
            io::Error::new(
                kind,
                format!("the descriptor of the punch socket at {bound} was not found"),
            )
        })
    }

    /// How many sockets of birthday winners' dials are open or about to
    /// close.
    pub(crate) fn fresh_sockets(&self) -> usize {
        let shared = lock(&self.shared);
        shared.fresh.len() + shared.retired.len()
    }

    /// The punch socket a dial of `connection` to `remote` left from, as a
    /// local socket address, if it left from one.
    pub(crate) fn source(
        &self,
        connection: ConnectionId,
        remote: SocketAddr,
    ) -> Option<SocketAddr> {
        lock(&self.shared)
            .sources
            .get(&connection)?
            .iter()
            .find(|(to, _)| *to == remote)
            .map(|(_, from)| *from)
    }

    /// The punch socket the first recorded dial of `connection` left from.
    pub(crate) fn first_source(&self, connection: ConnectionId) -> Option<SocketAddr> {
        lock(&self.shared)
            .sources
            .get(&connection)?
            .first()
            .map(|(_, from)| *from)
    }

    /// Forgets where `connection`'s dials left from (it failed or closed),
    /// and closes its fresh socket if it had one.
    pub(crate) fn forget(&self, connection: ConnectionId) {
        let mut shared = lock(&self.shared);
        shared.sources.remove(&connection);
        if let Some(listener) = shared.fresh.remove(&connection) {
            shared.retired.push(listener);
            if let Some(waker) = shared.waker.take() {
                waker.wake();
            }
        }
    }

    /// How many connections' sources are remembered.
    pub(crate) fn remembered(&self) -> usize {
        lock(&self.shared).sources.len()
    }
}

/// The transport's side of the table: the only writer (but for the
/// announcements, cancellations and forgetting the wrapper does through
/// [`PunchSockets`]).
#[derive(Debug)]
pub(crate) struct SocketTable {
    shared: Arc<Mutex<Shared>>,
}

impl SocketTable {
    /// An empty table for sockets of `range`, whose openers carry
    /// `opener_ttl`.
    pub(crate) fn new(range: PortRange, opener_ttl: u8) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                range,
                sockets: Vec::new(),
                pending: None,
                sources: HashMap::new(),
                fresh: HashMap::new(),
                retired: Vec::new(),
                waker: None,
                opener_ttl,
            })),
        }
    }

    /// A read handle.
    pub(crate) fn handle(&self) -> PunchSockets {
        PunchSockets {
            shared: self.shared.clone(),
        }
    }

    /// The socket `listener`, bound at `local`, carries the birthday
    /// winner's dial to `remote` of the connection announced last.
    pub(crate) fn winner_bound(&self, listener: ListenerId, remote: SocketAddr, local: SocketAddr) {
        let mut shared = lock(&self.shared);
        if let Some(pending) = shared.pending {
            shared.fresh.insert(pending.connection, listener);
            shared
                .sources
                .entry(pending.connection)
                .or_default()
                .push((remote, local));
        }
    }

    /// Fresh sockets to close now; registers `waker` to hear of the next.
    pub(crate) fn retired(&self, waker: &Waker) -> Vec<ListenerId> {
        let mut shared = lock(&self.shared);
        shared.waker = Some(waker.clone());
        std::mem::take(&mut shared.retired)
    }

    /// A punch socket was bound.
    pub(crate) fn bound(&self, listener: ListenerId, bound: SocketAddr) {
        let addresses = if bound.ip().is_unspecified() {
            Vec::new()
        } else {
            vec![bound.ip()]
        };
        lock(&self.shared).sockets.push(Entry {
            socket: PunchSocket {
                listener,
                bound,
                addresses,
            },
            closing: false,
            sender: None,
        });
    }

    /// A punch socket reported a listen address.
    pub(crate) fn address_added(&self, listener: ListenerId, ip: IpAddr) {
        if let Some(entry) = lock(&self.shared).entry_mut(listener)
            && !entry.socket.addresses.contains(&ip)
        {
            entry.socket.addresses.push(ip);
        }
    }

    /// A punch socket's listen address expired.
    pub(crate) fn address_removed(&self, listener: ListenerId, ip: IpAddr) {
        if let Some(entry) = lock(&self.shared).entry_mut(listener) {
            entry.socket.addresses.retain(|a| *a != ip);
        }
    }

    /// Removal of a punch socket was requested: it carries no new dial.
    pub(crate) fn closing(&self, listener: ListenerId) {
        if let Some(entry) = lock(&self.shared).entry_mut(listener) {
            entry.closing = true;
        }
    }

    /// A punch socket closed.
    pub(crate) fn closed(&self, listener: ListenerId) {
        lock(&self.shared)
            .sockets
            .retain(|e| e.socket.listener != listener);
    }

    /// Where a dial to `remote` with `role` and `port_use` leaves from, and,
    /// for a punch socket, a record of it for the connection the DCUtR
    /// wrapper announced.
    ///
    /// - The listener role (DCUtR's initiator) and every dial announced as
    ///   a hole punch: the punch socket for `remote`, or nowhere.
    /// - Other dials reusing a port: the punch socket for `remote` if there
    ///   is one (so that observers see the punch port), else an ephemeral
    ///   socket, never an ordinary listener.
    /// - Dials asking for a new port: a new socket.
    pub(crate) fn route(&self, remote: SocketAddr, role: Endpoint, port_use: PortUse) -> Route {
        let mut shared = lock(&self.shared);
        let pending = shared.pending;
        let purpose = pending.map_or(DialPurpose::Ordinary, |p| p.purpose);
        if let DialPurpose::BirthdayWinner(port) = purpose {
            return match shared.for_remote(remote.ip()) {
                Ok(socket) => Route::Winner {
                    bind: socket.bound.ip(),
                    port,
                },
                Err(reason) => Route::Refuse(reason),
            };
        }
        let punch = role == Endpoint::Listener || purpose != DialPurpose::Ordinary;
        if !punch && port_use == PortUse::New {
            return Route::New;
        }
        let socket = match shared.for_remote(remote.ip()) {
            Ok(socket) => socket.clone(),
            Err(reason) if punch => return Route::Refuse(reason),
            Err(_) => return Route::Ephemeral,
        };
        if let Some(pending) = pending {
            let local = socket.local_addr_for(remote.ip());
            let sources = shared.sources.entry(pending.connection).or_default();
            if !sources.iter().any(|(to, _)| *to == remote) {
                sources.push((remote, local));
            }
        }
        Route::Punch(socket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn table() -> (SocketTable, PunchSockets, ListenerId) {
        let table = SocketTable::new(PortRange::default(), 2);
        let handle = table.handle();
        let id = ListenerId::next();
        table.bound(id, sa("0.0.0.0:40003"));
        (table, handle, id)
    }

    /// The openers and the birthday probes share one sender per punch
    /// socket, found at its first use; it goes with the socket, and so does
    /// its duplicate of the socket's descriptor: the port can be bound again.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_punch_sockets_sender_is_found_once_and_goes_with_the_socket() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let bound = socket.local_addr().unwrap();
        let decoy = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let table = SocketTable::new(PortRange::default(), 2);
        let handle = table.handle();
        let id = ListenerId::next();
        table.bound(id, bound);
        let first = handle.sender(bound).unwrap();
        assert_eq!(handle.send_openers(decoy.local_addr().unwrap()), OPENERS);
        assert!(Arc::ptr_eq(&first, &handle.sender(bound).unwrap()));
        let other = sa("127.0.0.1:9");
        assert_eq!(
            handle.sender(other).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        table.closing(id);
        assert_eq!(
            handle.sender(bound).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        table.closed(id);
        drop((first, socket));
        std::net::UdpSocket::bind(bound).unwrap();
    }

    #[test]
    fn one_socket_per_family_side_by_side() {
        let (table, handle, v4) = table();
        let v6 = ListenerId::next();
        table.bound(v6, sa("[::]:40007"));
        assert_eq!(handle.get(Family::Ipv4).unwrap().listener, v4);
        assert_eq!(handle.get(Family::Ipv6).unwrap().port(), 40007);
        assert_eq!(handle.all().len(), 2);
        table.closing(v4);
        assert_eq!(handle.get(Family::Ipv4), None);
        assert_eq!(handle.get(Family::Ipv6).unwrap().listener, v6);
    }

    #[test]
    fn a_loopback_remote_needs_a_loopback_listen_address() {
        let (table, handle, id) = table();
        let remote = sa("127.0.0.1:5000").ip();
        assert_eq!(
            handle.for_remote(remote),
            Err(NoPunchSocketReason::NoLoopback(sa("0.0.0.0:40003")))
        );
        table.address_added(id, "127.0.0.1".parse().unwrap());
        assert!(handle.for_remote(remote).is_ok());
        assert!(handle.for_remote("203.0.113.1".parse().unwrap()).is_ok());
        assert_eq!(
            handle.for_remote("2001:db8::1".parse().unwrap()),
            Err(NoPunchSocketReason::NotBound(Family::Ipv6))
        );
    }

    #[test]
    fn punch_dials_leave_from_the_punch_socket_or_nowhere() {
        let (table, handle, _) = table();
        let remote = sa("203.0.113.1:40001");
        let v6 = sa("[2001:db8::1]:40001");
        assert!(matches!(
            table.route(remote, Endpoint::Listener, PortUse::New),
            Route::Punch(_)
        ));
        assert_eq!(
            table.route(v6, Endpoint::Listener, PortUse::Reuse),
            Route::Refuse(NoPunchSocketReason::NotBound(Family::Ipv6))
        );
        // Without an announcement an ordinary dial of another family goes
        // to an ephemeral socket; announced as a punch, nowhere.
        assert_eq!(
            table.route(v6, Endpoint::Dialer, PortUse::Reuse),
            Route::Ephemeral
        );
        let id = ConnectionId::new_unchecked(7);
        handle.dialing(id, DialPurpose::Punch);
        assert!(matches!(
            table.route(v6, Endpoint::Dialer, PortUse::Reuse),
            Route::Refuse(_)
        ));
        assert!(matches!(
            table.route(remote, Endpoint::Dialer, PortUse::Reuse),
            Route::Punch(_)
        ));
        assert_eq!(handle.source(id, remote), Some(sa("0.0.0.0:40003")));
        assert_eq!(handle.source(id, v6), None);
        handle.forget(id);
        assert_eq!(handle.remembered(), 0);
        // An ordinary dial asking for a new port gets one.
        handle.dialing(ConnectionId::new_unchecked(8), DialPurpose::Ordinary);
        assert_eq!(
            table.route(remote, Endpoint::Dialer, PortUse::New),
            Route::New
        );
    }

    #[test]
    fn a_birthday_winners_dial_gets_its_port_on_a_socket_that_closes_with_its_connection() {
        let (table, handle, _) = table();
        let conn = ConnectionId::new_unchecked(3);
        handle.dialing(conn, DialPurpose::BirthdayWinner(51234));
        let route = table.route(sa("203.0.113.1:40001"), Endpoint::Dialer, PortUse::Reuse);
        assert_eq!(
            route,
            Route::Winner {
                bind: "0.0.0.0".parse().unwrap(),
                port: 51234,
            }
        );
        let winner = ListenerId::next();
        table.winner_bound(winner, sa("203.0.113.1:40001"), sa("10.0.0.2:51234"));
        assert_eq!(
            handle.source(conn, sa("203.0.113.1:40001")),
            Some(sa("10.0.0.2:51234"))
        );
        assert_eq!(handle.fresh_sockets(), 1);
        let waker = futures::task::noop_waker();
        assert!(table.retired(&waker).is_empty());
        handle.forget(conn);
        assert_eq!(table.retired(&waker), [winner]);
        assert_eq!(handle.fresh_sockets(), 0);
        // Without a punch socket of the remote's family: nowhere.
        handle.dialing(conn, DialPurpose::BirthdayWinner(51234));
        assert!(matches!(
            table.route(sa("[2001:db8::1]:40001"), Endpoint::Dialer, PortUse::Reuse),
            Route::Refuse(_)
        ));
        assert_eq!(handle.opener_ttl(), 2);
    }

    #[test]
    fn the_recorded_source_names_the_interface_that_reaches_the_remote() {
        let (table, handle, id) = table();
        table.address_added(id, "10.0.0.2".parse().unwrap());
        table.address_added(id, "127.0.0.1".parse().unwrap());
        let conn = ConnectionId::new_unchecked(1);
        handle.dialing(conn, DialPurpose::Ordinary);
        table.route(sa("127.0.0.1:9"), Endpoint::Dialer, PortUse::Reuse);
        table.route(sa("203.0.113.9:9"), Endpoint::Dialer, PortUse::Reuse);
        assert_eq!(
            handle.source(conn, sa("127.0.0.1:9")),
            Some(sa("127.0.0.1:40003"))
        );
        assert_eq!(
            handle.source(conn, sa("203.0.113.9:9")),
            Some(sa("10.0.0.2:40003"))
        );
        assert_eq!(handle.first_source(conn), Some(sa("127.0.0.1:40003")));
        table.closed(id);
        assert!(handle.all().is_empty());
    }
}
