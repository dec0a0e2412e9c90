//! What a process holds: file descriptors, UDP sockets, resident memory. The
//! resource tests compare it before and after many punches.

use std::collections::HashSet;

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
        let udp_inodes: HashSet<String> =
            ["/proc/thread-self/net/udp", "/proc/thread-self/net/udp6"]
                .iter()
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .flat_map(|table| {
                    table
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_whitespace().nth(9).map(str::to_owned))
                        .collect::<Vec<_>>()
                })
                .collect();
        let mut fds = 0;
        let mut udp_sockets = 0;
        for entry in std::fs::read_dir("/proc/self/fd")
            .into_iter()
            .flatten()
            .flatten()
        {
            fds += 1;
            if let Ok(target) = std::fs::read_link(entry.path())
                && let Some(inode) = target
                    .to_string_lossy()
                    .strip_prefix("socket:[")
                    .and_then(|t| t.strip_suffix(']'))
                && udp_inodes.contains(inode)
            {
                udp_sockets += 1;
            }
        }
        let rss_kib = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
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
