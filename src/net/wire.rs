//! Single datagrams with a TTL of their own, sent from a socket that quinn
//! owns.
//!
//! A punch needs two kinds of packet that QUIC does not send: a short-TTL
//! opener that leaves our own NAT (so that it maps the punch socket towards
//! the other side's exact address) but dies before the other side's router,
//! and the birthday probes of the endpoint-independent side, one small
//! datagram each. Both must leave from the punch socket, which quinn owns
//! inside libp2p-quic. [`PunchSender`] finds that socket's descriptor by its
//! local address, duplicates it (`pidfd_getfd` on this process, which hands
//! out a descriptor of our own for the same socket), and sends each datagram
//! with `sendmsg` and an `IP_TTL` (IPv6: `IPV6_HOPLIMIT`) control message:
//! the TTL applies to that datagram alone, quinn's own packets keep the
//! socket's default.
//!
//! Linux only; elsewhere [`PunchSender::find`] fails with
//! [`io::ErrorKind::Unsupported`] and punches go without openers (the way
//! they went before).

use std::{io, net::SocketAddr};

/// How many bytes a UDP datagram with `payload` bytes takes on the wire to
/// `to`: the IP header (20 bytes for IPv4, 40 for IPv6), the UDP header (8)
/// and the payload. Budgets count these.
pub(crate) fn wire_bytes(to: SocketAddr, payload: usize) -> usize {
    let ip = if to.is_ipv4() { 20 } else { 40 };
    ip + 8 + payload
}

/// Sends single datagrams from the socket bound to a given local address
/// (the punch socket, owned by quinn), each with its own TTL.
#[derive(Debug)]
pub(crate) struct PunchSender {
    #[cfg(target_os = "linux")]
    fd: std::os::fd::OwnedFd,
    local: SocketAddr,
}

impl PunchSender {
    /// The sender for the UDP socket of this process bound to `local`
    /// (exactly: the same IP, unspecified or not, and port).
    ///
    /// Fails with [`io::ErrorKind::NotFound`] if no such socket is open, and
    /// with [`io::ErrorKind::Unsupported`] off Linux.
    pub(crate) fn find(local: SocketAddr) -> io::Result<Self> {
        imp::find(local)
    }

    /// The local address of the socket it sends from.
    #[cfg(test)]
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends `payload` to `to` in one datagram; with `ttl`, the datagram
    /// crosses at most that many routers (the socket's other datagrams are
    /// not affected). Never blocks: a full send buffer is an error of kind
    /// [`io::ErrorKind::WouldBlock`].
    pub(crate) fn send(&self, to: SocketAddr, ttl: Option<u8>, payload: &[u8]) -> io::Result<()> {
        if to.is_ipv4() != self.local.is_ipv4() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{to} is of another IP family than the socket at {}",
                    self.local
                ),
            ));
        }
        imp::send(self, to, ttl, payload)
    }
}

/// A plain UDP socket of our own on `ip` (port 0: the system picks one)
/// whose every datagram carries `ttl`.
pub(crate) fn bind_with_ttl(ip: std::net::IpAddr, ttl: u8) -> io::Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind((ip, 0))?;
    match ip {
        std::net::IpAddr::V4(_) => socket.set_ttl(u32::from(ttl))?,
        std::net::IpAddr::V6(_) => imp::set_hop_limit(&socket, ttl)?,
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

#[cfg(target_os = "linux")]
mod imp {
    use std::{
        io::{self, IoSlice},
        net::SocketAddr,
        os::fd::{AsRawFd, RawFd},
    };

    use nix::sys::socket::{
        ControlMessage, MsgFlags, SockaddrIn, SockaddrIn6, SockaddrStorage, getsockname, sendmsg,
        setsockopt, sockopt,
    };
    use rustix::process::{PidfdFlags, PidfdGetfdFlags, getpid, pidfd_getfd, pidfd_open};

    use super::PunchSender;

    fn socket_addr(storage: &SockaddrStorage) -> Option<SocketAddr> {
        if let Some(v4) = storage.as_sockaddr_in() {
            return Some(SocketAddr::V4((*v4).into()));
        }
        storage
            .as_sockaddr_in6()
            .map(|v6| SocketAddr::V6((*v6).into()))
    }

    pub(super) fn find(local: SocketAddr) -> io::Result<PunchSender> {
        let pidfd = pidfd_open(getpid(), PidfdFlags::empty())?;
        for entry in std::fs::read_dir("/proc/self/fd")? {
            let entry = entry?;
            let Some(raw) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<RawFd>().ok())
            else {
                continue;
            };
            let is_socket = std::fs::read_link(entry.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
            if !is_socket {
                continue;
            }
            // A duplicate of our own first: the number may be closed and
            // reused at any moment by the part that owns it.
            let Ok(fd) = pidfd_getfd(&pidfd, raw, PidfdGetfdFlags::empty()) else {
                continue;
            };
            let Ok(name) = getsockname::<SockaddrStorage>(fd.as_raw_fd()) else {
                continue;
            };
            let datagram = nix::sys::socket::getsockopt(&fd, sockopt::SockType)
                .is_ok_and(|t| t == nix::sys::socket::SockType::Datagram);
            if datagram && socket_addr(&name) == Some(local) {
                return Ok(PunchSender { fd, local });
            }
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no UDP socket of this process is bound to {local}"),
        ))
    }

    pub(super) fn send(
        sender: &PunchSender,
        to: SocketAddr,
        ttl: Option<u8>,
        payload: &[u8],
    ) -> io::Result<()> {
        let iov = [IoSlice::new(payload)];
        let ttl = ttl.map(libc_int);
        let flags = MsgFlags::MSG_DONTWAIT;
        let fd = sender.fd.as_raw_fd();
        let sent = match to {
            SocketAddr::V4(v4) => {
                let cmsg = ttl.as_ref().map(ControlMessage::Ipv4Ttl);
                let addr = SockaddrIn::from(v4);
                sendmsg(fd, &iov, cmsg.as_slice(), flags, Some(&addr))
            }
            SocketAddr::V6(v6) => {
                let cmsg = ttl.as_ref().map(ControlMessage::Ipv6HopLimit);
                let addr = SockaddrIn6::from(v6);
                sendmsg(fd, &iov, cmsg.as_slice(), flags, Some(&addr))
            }
        }
        .map_err(io::Error::from)?;
        if sent != payload.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} bytes", payload.len()),
            ));
        }
        Ok(())
    }

    fn libc_int(ttl: u8) -> i32 {
        i32::from(ttl)
    }

    pub(super) fn set_hop_limit(socket: &std::net::UdpSocket, hops: u8) -> io::Result<()> {
        setsockopt(socket, sockopt::Ipv6Ttl, &i32::from(hops)).map_err(io::Error::from)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::{io, net::SocketAddr};

    use super::PunchSender;

    fn unsupported() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "per-datagram TTLs from the punch socket need Linux (sendmsg with IP_TTL); punching goes without openers",
        )
    }

    pub(super) fn find(_: SocketAddr) -> io::Result<PunchSender> {
        Err(unsupported())
    }

    pub(super) fn send(_: &PunchSender, _: SocketAddr, _: Option<u8>, _: &[u8]) -> io::Result<()> {
        Err(unsupported())
    }

    pub(super) fn set_hop_limit(_: &std::net::UdpSocket, _: u8) -> io::Result<()> {
        Err(unsupported())
    }
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use std::{io::IoSliceMut, net::UdpSocket, os::fd::AsRawFd, time::Duration};

    use nix::sys::socket::{
        ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
    };

    use super::*;

    /// Receives one datagram on `socket` and returns its payload and the TTL
    /// it arrived with.
    fn receive_with_ttl(socket: &UdpSocket) -> (Vec<u8>, u8) {
        let mut buf = [0u8; 256];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!(i32);
        let message = recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .unwrap();
        let ttl = message
            .cmsgs()
            .unwrap()
            .find_map(|c| match c {
                ControlMessageOwned::Ipv4Ttl(ttl) => Some(u8::try_from(ttl).unwrap()),
                _ => None,
            })
            .expect("a TTL control message");
        let len = message.bytes;
        (buf[..len].to_vec(), ttl)
    }

    #[test]
    fn sends_from_a_socket_it_does_not_own_with_a_ttl_for_that_datagram_alone() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        setsockopt(&receiver, sockopt::Ipv4RecvTtl, &true).unwrap();
        let to = receiver.local_addr().unwrap();
        // The "quinn" socket: owned elsewhere, found by its address.
        let owned = UdpSocket::bind("127.0.0.1:0").unwrap();
        let local = owned.local_addr().unwrap();
        let sender = PunchSender::find(local).unwrap();
        assert_eq!(sender.local_addr(), local);

        sender.send(to, Some(2), b"opener").unwrap();
        owned.send_to(b"quic", to).unwrap();
        sender.send(to, None, b"probe").unwrap();
        let got: Vec<_> = (0..3).map(|_| receive_with_ttl(&receiver)).collect();
        assert_eq!(got[0], (b"opener".to_vec(), 2));
        // The owner's datagrams keep the socket's default TTL.
        assert_eq!(got[1], (b"quic".to_vec(), 64));
        assert_eq!(got[2], (b"probe".to_vec(), 64));
        // Every datagram left from the owner's port.
        let mut buf = [0; 16];
        owned.send_to(b"x", to).unwrap();
        let (_, from) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!(from, local);
    }

    #[test]
    fn a_socket_nobody_bound_is_not_found_and_a_family_mismatch_is_refused() {
        let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        drop(taken);
        let error = PunchSender::find(addr).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(error.to_string().contains(&addr.to_string()), "{error}");

        let owned = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = PunchSender::find(owned.local_addr().unwrap()).unwrap();
        let error = sender
            .send("[::1]:9".parse().unwrap(), Some(2), b"x")
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn own_sockets_carry_their_ttl_on_every_datagram() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        setsockopt(&receiver, sockopt::Ipv4RecvTtl, &true).unwrap();
        let socket = bind_with_ttl("127.0.0.1".parse().unwrap(), 3).unwrap();
        socket
            .send_to(b"a", receiver.local_addr().unwrap())
            .unwrap();
        assert_eq!(receive_with_ttl(&receiver), (b"a".to_vec(), 3));
        assert_eq!(wire_bytes(receiver.local_addr().unwrap(), 32), 60);
        assert_eq!(wire_bytes("[::1]:1".parse().unwrap(), 32), 80);
    }
}
