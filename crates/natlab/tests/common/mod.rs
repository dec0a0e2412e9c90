//! Helpers shared by the natlab integration tests: receiving with
//! deadlines, the lab's addresses, conntrack look-ups, a host behind a
//! router with endpoints on the relay to talk to, and a simultaneous punch.

#![allow(dead_code, unreachable_pub)]

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use natlab::{Flow, Host, Lab, LabBuilder, Router};

/// How long a test waits for a packet that should arrive.
pub const ARRIVES: Duration = Duration::from_secs(2);
/// How long a test waits to be sure a packet does not arrive.
pub const SILENCE: Duration = Duration::from_millis(300);
/// The IPv4 wildcard address, for sockets on any of a host's addresses.
pub const ANY: [u8; 4] = [0, 0, 0, 0];

/// Builds the lab or panics.
pub fn build(builder: LabBuilder) -> Lab {
    builder.build().expect("build lab")
}

pub fn addr(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

/// The host's IPv6 address.
pub fn ip6(host: &Host) -> IpAddr {
    host.ip6()
        .unwrap_or_else(|| panic!("{} has no IPv6", host.name()))
}

/// The router's IPv6 WAN address.
pub fn wan6(router: &Router) -> IpAddr {
    router
        .wan_ip6()
        .unwrap_or_else(|| panic!("{} has no IPv6 WAN", router.name()))
}

/// A UDP socket on `host` bound to `address` (such as `(ANY, port)`).
pub fn bind(host: &Host, address: impl Into<SocketAddr>) -> UdpSocket {
    host.bind_udp(address).expect("bind")
}

/// A UDP socket on `host`'s IPv6 address.
pub fn bind6(host: &Host, port: u16) -> UdpSocket {
    host.bind_udp(addr(ip6(host), port)).expect("bind IPv6")
}

/// Receives one datagram, waiting at most `timeout`.
pub fn recv(socket: &UdpSocket, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let deadline = Instant::now() + timeout;
    let mut buffer = [0_u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        socket
            .set_read_timeout(Some(left))
            .expect("set read timeout");
        match socket.recv_from(&mut buffer) {
            Ok((length, from)) => return Some((buffer[..length].to_vec(), from)),
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            // ICMP errors from earlier sends surface here; ignore them.
            Err(_) => continue,
        }
    }
}

/// Receives one datagram or panics.
pub fn recv_expect(socket: &UdpSocket, what: &str) -> (Vec<u8>, SocketAddr) {
    recv(socket, ARRIVES).unwrap_or_else(|| panic!("{what}: nothing arrived within {ARRIVES:?}"))
}

/// Panics if a datagram arrives within [`SILENCE`].
pub fn expect_silence(socket: &UdpSocket, what: &str) {
    if let Some((payload, from)) = recv(socket, SILENCE) {
        panic!(
            "{what}: expected nothing, got {:?} from {from}",
            String::from_utf8_lossy(&payload)
        );
    }
}

/// Sends `payload` to `to`, panicking on error.
pub fn send(socket: &UdpSocket, payload: &[u8], to: SocketAddr) {
    socket.send_to(payload, to).expect("send_to");
}

/// The address a socket is bound to.
pub fn local(socket: &UdpSocket) -> SocketAddr {
    socket.local_addr().expect("local address")
}

/// Sends a datagram saying `what` from `from` to `to` and asserts that
/// `receiver` gets exactly it, from `from`'s address.
pub fn assert_delivered(from: &UdpSocket, to: SocketAddr, receiver: &UdpSocket, what: &str) {
    send(from, what.as_bytes(), to);
    let (payload, source) = recv_expect(receiver, what);
    assert_eq!(
        (String::from_utf8_lossy(&payload).as_ref(), source),
        (what, local(from)),
        "{what}: payload and source"
    );
}

/// Sends a datagram saying `what` from `from` to `to` and asserts that
/// nothing reaches `receiver` within [`SILENCE`].
pub fn assert_blocked(from: &UdpSocket, to: SocketAddr, receiver: &UdpSocket, what: &str) {
    send(from, what.as_bytes(), to);
    expect_silence(receiver, what);
}

/// Sends one datagram from `inside` to the bound socket `remote` and
/// returns the source `remote` saw: the mapping `inside`'s flow got.
pub fn mapping(inside: &UdpSocket, remote: &UdpSocket) -> SocketAddr {
    send(inside, b"hello", local(remote));
    recv_expect(remote, "outbound packet").1
}

/// The conntrack entry of the flow from `inside` to `remote`; panics,
/// listing the table, if there is none.
pub fn flow(router: &Router, inside: SocketAddr, remote: SocketAddr) -> Flow {
    let flows = router.flows(inside, remote).expect("conntrack");
    flows.first().copied().unwrap_or_else(|| {
        let table = router.conntrack();
        panic!("no flow {inside} -> {remote} in {table:#?}")
    })
}

/// Sends one unsolicited datagram from a fresh relay socket (on the
/// relay's first address of `target`'s family), connected to `target`;
/// returns the socket's address and what its next receive (within
/// [`SILENCE`]) reports: an error either way, `ConnectionRefused` for an
/// ICMP port unreachable, `WouldBlock` or `TimedOut` for silence.
pub fn probe(relay: &Host, target: SocketAddr) -> (SocketAddr, io::Result<usize>) {
    let ip = relay
        .ips()
        .iter()
        .copied()
        .find(|ip| ip.is_ipv6() == target.is_ipv6())
        .expect("the relay has an address of the target's family");
    let socket = bind(relay, (ip, 0));
    socket.connect(target).expect("connect");
    socket.send(b"unsolicited").expect("send");
    socket.set_read_timeout(Some(SILENCE)).expect("timeout");
    let answer = socket.recv(&mut [0; 64]);
    (local(&socket), answer)
}

/// Whom each side of a punch heard from: `(a_heard, b_heard)`.
pub type Heard = (Option<SocketAddr>, Option<SocketAddr>);

/// Runs up to `rounds` rounds of `exchange` (which sends the punch
/// packets), listening 50 ms on `a` and then on `b` after each, until each
/// side has heard the other; returns whom each heard from last.
pub fn punch_rounds(
    a: &UdpSocket,
    b: &UdpSocket,
    rounds: usize,
    mut exchange: impl FnMut(),
) -> Heard {
    let (mut a_heard, mut b_heard) = (None, None);
    for _ in 0..rounds {
        exchange();
        if let Some((_, from)) = recv(a, Duration::from_millis(50)) {
            a_heard = Some(from);
        }
        if let Some((_, from)) = recv(b, Duration::from_millis(50)) {
            b_heard = Some(from);
        }
        if a_heard.is_some() && b_heard.is_some() {
            break;
        }
    }
    (a_heard, b_heard)
}

/// A simultaneous punch for up to `rounds` rounds: in each, `a` sends to
/// `b_public`, then `b` to `a_public` (see [`punch_rounds`]).
pub fn punch(
    a: &UdpSocket,
    a_public: SocketAddr,
    b: &UdpSocket,
    b_public: SocketAddr,
    rounds: usize,
) -> Heard {
    punch_rounds(a, b, rounds, || {
        send(a, b"punch from a", b_public);
        send(b, b"punch from b", a_public);
    })
}

/// [`Remotes`] index of the first endpoint: the first IP, port 5000.
pub const MAIN: usize = 0;
/// [`Remotes`] index of [`MAIN`]'s IP at another port, 5001.
pub const OTHER_PORT: usize = 1;
/// [`Remotes`] index of the other IP at [`MAIN`]'s port, 5000.
pub const OTHER_IP: usize = 2;
/// [`Remotes`] index of the other IP at the other port, 5001.
pub const OTHER_IP_PORT: usize = 3;

/// Four bound endpoints on the relay, two ports on each of two of its
/// addresses, in the order [`MAIN`], [`OTHER_PORT`], [`OTHER_IP`],
/// [`OTHER_IP_PORT`].
pub struct Remotes {
    pub addrs: [SocketAddr; 4],
    pub sockets: [UdpSocket; 4],
}

impl Remotes {
    /// On the relay's two IPv4 addresses.
    pub fn new(lab: &Lab) -> Self {
        Self::on(lab.relay(), 0)
    }

    /// On the relay's two IPv6 addresses (a dual-stack lab).
    pub fn ipv6(lab: &Lab) -> Self {
        Self::on(lab.relay(), 2)
    }

    /// On the relay's addresses `first` and `first + 1`.
    fn on(relay: &Host, first: usize) -> Self {
        let ips = &relay.ips()[first..first + 2];
        let addrs = [
            addr(ips[0], 5000),
            addr(ips[0], 5001),
            addr(ips[1], 5000),
            addr(ips[1], 5001),
        ];
        let sockets = addrs.map(|remote| relay.bind_udp(remote).expect("bind relay"));
        Self { addrs, sockets }
    }

    /// Sends one packet from `inside` to endpoint `index` and returns the
    /// source it saw: the mapping of that flow (see [`mapping`]).
    pub fn mapping(&self, inside: &UdpSocket, index: usize) -> SocketAddr {
        mapping(inside, &self.sockets[index])
    }

    /// Sends one packet from `inside` to each endpoint of `indices`, in
    /// turn, and returns the source each of them saw (the mappings).
    pub fn mappings(
        &self,
        inside: &UdpSocket,
        indices: impl IntoIterator<Item = usize>,
    ) -> Vec<SocketAddr> {
        indices
            .into_iter()
            .map(|index| self.mapping(inside, index))
            .collect()
    }

    /// The mappings `router`'s conntrack table holds for the flows from
    /// `inside` (an address on a host) to each endpoint of `indices`.
    pub fn tracked(
        &self,
        router: &Router,
        inside: SocketAddr,
        indices: impl IntoIterator<Item = usize>,
    ) -> Vec<SocketAddr> {
        indices
            .into_iter()
            .map(|index| flow(router, inside, self.addrs[index]).external())
            .collect()
    }
}

/// A host behind a router with a socket on one port, and the relay's
/// [`Remotes`] of the socket's family to talk to.
pub struct Behind<'lab> {
    pub router: &'lab Router,
    pub host: &'lab Host,
    pub inside: UdpSocket,
    /// The socket's address on the host: its flows' original source.
    pub inside_addr: SocketAddr,
    pub remotes: Remotes,
}

impl<'lab> Behind<'lab> {
    /// Host `host` over IPv4, its socket on the wildcard address.
    pub fn ipv4(lab: &'lab Lab, host: &str, port: u16) -> Self {
        let host = lab.host(host);
        Self::new(
            lab,
            host,
            bind(host, (ANY, port)),
            addr(host.ip(), port),
            Remotes::new(lab),
        )
    }

    /// Host `host` over IPv6, its socket on its IPv6 address.
    pub fn ipv6(lab: &'lab Lab, host: &str, port: u16) -> Self {
        let host = lab.host(host);
        let inside_addr = addr(ip6(host), port);
        Self::new(
            lab,
            host,
            bind(host, inside_addr),
            inside_addr,
            Remotes::ipv6(lab),
        )
    }

    fn new(
        lab: &'lab Lab,
        host: &'lab Host,
        inside: UdpSocket,
        inside_addr: SocketAddr,
        remotes: Remotes,
    ) -> Self {
        let router = lab
            .router_of(host)
            .unwrap_or_else(|| panic!("{} is behind no router", host.name()));
        Self {
            router,
            host,
            inside,
            inside_addr,
            remotes,
        }
    }

    /// The router's WAN address of the socket's family.
    pub fn wan_ip(&self) -> IpAddr {
        if self.inside_addr.is_ipv6() {
            wan6(self.router)
        } else {
            self.router.wan_ip()
        }
    }

    /// The router's WAN address at the socket's port: where a
    /// port-preserving mapping puts the socket.
    pub fn preserved(&self) -> SocketAddr {
        addr(self.wan_ip(), self.inside_addr.port())
    }

    /// The mappings of the socket's flows to the remotes of `indices`, as
    /// the remotes saw them (see [`Remotes::mappings`]).
    pub fn mappings(&self, indices: impl IntoIterator<Item = usize>) -> Vec<SocketAddr> {
        self.remotes.mappings(&self.inside, indices)
    }

    /// The mappings of the socket's flows to the remotes of `indices`, as
    /// the router's conntrack table holds them.
    pub fn tracked(&self, indices: impl IntoIterator<Item = usize>) -> Vec<SocketAddr> {
        self.remotes.tracked(self.router, self.inside_addr, indices)
    }

    /// Sends a datagram saying `what` from remote `from` to `to` and
    /// asserts that the host's socket gets exactly it, from that remote.
    pub fn assert_delivered(&self, from: usize, to: SocketAddr, what: &str) {
        assert_delivered(&self.remotes.sockets[from], to, &self.inside, what);
    }

    /// Sends a datagram saying `what` from remote `from` to `to` and
    /// asserts that nothing reaches the host's socket.
    pub fn assert_blocked(&self, from: usize, to: SocketAddr, what: &str) {
        assert_blocked(&self.remotes.sockets[from], to, &self.inside, what);
    }

    /// Asserts that the router maps per destination and filters by
    /// endpoint: the flows to [`MAIN`] and [`OTHER_IP`] leave from two
    /// ports of the WAN address, as conntrack holds them; [`OTHER_PORT`]
    /// cannot use [`MAIN`]'s mapping, [`MAIN`] can.
    pub fn assert_maps_per_destination(&self) {
        let seen = self.mappings([MAIN, OTHER_IP]);
        let wan_ip = self.wan_ip();
        assert!(seen.iter().all(|seen| seen.ip() == wan_ip), "{seen:?}");
        assert_ne!(seen[0].port(), seen[1].port(), "mapping is per destination");
        assert_eq!(self.tracked([MAIN, OTHER_IP]), seen);

        let what = "unsolicited inbound to a live mapping";
        self.assert_blocked(OTHER_PORT, seen[0], what);
        self.assert_delivered(MAIN, seen[0], "reply through the first mapping");
    }

    /// Asserts that the router is a stateful firewall for the host, which
    /// keeps its own (public) address: nothing unsolicited gets in, the
    /// host's packet to [`MAIN`] leaves untranslated, [`MAIN`]'s reply
    /// comes back, and [`OTHER_PORT`] stays out.
    pub fn assert_stateful_firewall(&self) {
        let public = self.inside_addr;
        self.assert_blocked(MAIN, public, "unsolicited inbound");
        assert_eq!(self.mappings([MAIN]), [public], "no translation");
        self.assert_delivered(MAIN, public, "reply");
        self.assert_blocked(OTHER_PORT, public, "other remote port");
    }
}

/// The network namespaces `ip netns list` shows.
pub fn namespaces() -> Vec<String> {
    let output = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}
