//! What another process of the lab uses, read from `/proc/<pid>`: CPU time,
//! resident and peak memory, threads, descriptors, UDP sockets. The scale,
//! busy-relay and soak benchmarks sample the relay and peer processes with
//! it.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// `/proc/<pid>/stat` counts CPU time in clock ticks of this many per second
/// (`USER_HZ`, fixed at 100 by Linux's ABI).
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcStat {
    /// User plus system CPU time so far, in seconds.
    pub cpu_secs: f64,
    /// Resident memory (`VmRSS`), in KiB.
    pub rss_kib: u64,
    /// Peak resident memory (`VmHWM`), in KiB.
    pub hwm_kib: u64,
    /// Threads.
    pub threads: u64,
    /// Open file descriptors.
    pub fds: usize,
    /// Descriptors that are UDP sockets (in the process's own namespace).
    pub udp_sockets: usize,
}

impl ProcStat {
    /// Reads process `pid`; `None` once it is gone.
    pub fn of(pid: u32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may hold spaces: the fields
        // after the last ')' start with the state (field 3).
        let after = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        // utime and stime are fields 14 and 15, i.e. 11 and 12 after the
        // state.
        let cpu_secs = (ticks(11)? + ticks(12)?) as f64 / TICKS_PER_SECOND;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib = |key: &str| status_value(&status, key).unwrap_or(0);
        let (fds, udp_sockets) =
            descriptors(&format!("/proc/{pid}/fd"), &format!("/proc/{pid}/net"));
        Some(Self {
            cpu_secs,
            rss_kib: kib("VmRSS:"),
            hwm_kib: kib("VmHWM:"),
            threads: kib("Threads:"),
            fds,
            udp_sockets,
        })
    }
}

/// A `Key:   value kB` line of a `/proc/<pid>/status` text, as a number.
pub(crate) fn status_value(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Open descriptors in `fd_dir` (a `/proc/<pid>/fd`), and how many of them
/// are UDP sockets of the namespace whose `net_dir` (a `/proc/<pid>/net`)
/// lists them.
pub(crate) fn descriptors(fd_dir: &str, net_dir: &str) -> (usize, usize) {
    let udp_inodes: HashSet<String> = ["udp", "udp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(format!("{net_dir}/{t}")).ok())
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
    for entry in std::fs::read_dir(fd_dir).into_iter().flatten().flatten() {
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
    (fds, udp_sockets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let me = ProcStat::of(std::process::id()).unwrap();
        assert!(me.rss_kib > 0 && me.hwm_kib >= me.rss_kib, "{me:?}");
        assert!(
            me.threads >= 1 && me.fds >= 3 && me.udp_sockets >= 1,
            "{me:?}"
        );
        assert!(me.cpu_secs >= 0.0);
        drop(socket);
        assert_eq!(ProcStat::of(u32::MAX), None);
    }
}
