//! What a process holds: file descriptors, UDP sockets, resident memory. The
//! resource tests compare it before and after many punches.

/// Open file descriptors and UDP sockets of this process, and its resident
/// memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Open file descriptors.
    pub fds: usize,
    /// Those that are UDP sockets of the calling thread's network namespace.
    pub udp_sockets: usize,
    /// Resident memory, in KiB.
    pub rss_kib: u64,
}

impl Usage {
    /// Now, for this process, with UDP sockets counted in the calling
    /// thread's network namespace (where a lab test runs its nodes).
    pub fn now() -> Self {
        let (fds, udp_sockets) =
            crate::procstat::descriptors("/proc/self/fd", "/proc/thread-self/net");
        let rss_kib = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| crate::procstat::status_value(&status, "VmRSS:"))
            .unwrap_or(0);
        Self {
            fds,
            udp_sockets,
            rss_kib,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_udp_socket_shows() {
        let before = Usage::now();
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let after = Usage::now();
        assert_eq!(after.udp_sockets, before.udp_sockets + 1);
        assert!(after.fds > before.fds && after.rss_kib > 0);
        drop(socket);
    }
}
