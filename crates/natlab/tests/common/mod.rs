//! Helpers shared by the natlab integration tests.

#![allow(dead_code, unreachable_pub)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// How long a test waits for a packet that should arrive.
pub const ARRIVES: Duration = Duration::from_secs(2);
/// How long a test waits to be sure a packet does not arrive.
pub const SILENCE: Duration = Duration::from_millis(300);

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
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
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
