//! A `relay` or `peer` process in the lab, read as [`NodeEvent`]s.

use std::{
    ffi::OsStr,
    path::Path,
    time::{Duration, Instant},
};

use natlab::{Host, Process};
use punchport_node::NodeEvent;

use crate::Error;

/// How much of a node's stderr an error shows.
const STDERR_TAIL: usize = 2000;

/// A node binary running inside a lab host.
#[derive(Debug)]
pub struct LabNode {
    name: String,
    process: Process,
}

impl LabNode {
    /// Starts `program` with `args` inside `host`.
    pub fn spawn(
        host: &Host,
        name: impl Into<String>,
        program: &Path,
        args: impl IntoIterator<Item = impl AsRef<OsStr>>,
    ) -> Result<Self, Error> {
        let mut command = host.command(program);
        command.args(args);
        let level = std::env::var("PUNCHPORT_NODE_LOG").unwrap_or_else(|_| "info".into());
        // The go node reads PUNCHPORT_GO_LOG (debug, info or warn); at info
        // it logs every holepunch attempt with its QUIC role.
        command.env(
            "PUNCHPORT_GO_LOG",
            std::env::var("PUNCHPORT_GO_LOG").unwrap_or_else(|_| "info".into()),
        );
        command.env("RUST_LOG", level);
        Ok(Self {
            name: name.into(),
            process: host.spawn(command)?,
        })
    }

    /// The next event within `timeout`; lines that are not events are logged
    /// and skipped.
    pub fn next_event(&self, timeout: Duration) -> Option<NodeEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.process.next_line(left)?;
            match serde_json::from_str(&line) {
                Ok(event) => return Some(event),
                Err(error) => tracing::warn!(node = %self.name, %line, %error, "not an event"),
            }
        }
    }

    /// Skips events until `matches` returns `Some`, within `timeout`.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut matches: impl FnMut(&NodeEvent) -> Option<T>,
    ) -> Result<T, Error> {
        let deadline = Instant::now() + timeout;
        while let Some(event) = self.next_event(deadline.saturating_duration_since(Instant::now()))
        {
            if let Some(found) = matches(&event) {
                return Ok(found);
            }
        }
        Err(self.error(format!("no {what} within {timeout:?}")))
    }

    /// A relay's address on `ip` (from its `listening` lines), once it also
    /// printed `ready`; each wait at most `timeout`.
    pub fn wait_relay(
        &self,
        ip: std::net::IpAddr,
        timeout: Duration,
    ) -> Result<libp2p::Multiaddr, Error> {
        let addr = self.wait_for(timeout, "listening line", |e| match e {
            NodeEvent::Listening { address, .. }
                if punchport::QuicAddr::parse(address).is_ok_and(|q| q.socket.ip() == ip) =>
            {
                Some(address.clone())
            }
            _ => None,
        })?;
        self.wait_for(timeout, "ready line", |e| {
            matches!(e, NodeEvent::Ready { .. }).then_some(())
        })?;
        Ok(addr)
    }

    /// Waits for `ready` (a peer holds its reservation); its peer id.
    pub fn wait_ready(&self) -> Result<libp2p::PeerId, Error> {
        self.wait_for(Duration::from_secs(30), "ready line", |e| match e {
            NodeEvent::Ready { peer_id } => Some(*peer_id),
            _ => None,
        })
    }

    /// Waits for `direct`; its milliseconds from relayed to direct.
    pub fn wait_direct(&self, within: Duration) -> Result<u64, Error> {
        self.wait_for(within, "direct line", |e| match e {
            NodeEvent::Direct { elapsed_ms, .. } => Some(*elapsed_ms),
            _ => None,
        })
    }

    /// An error about this node, with the tail of its stderr.
    pub fn error(&self, what: String) -> Error {
        let stderr = self.process.stderr();
        let start = stderr.len().saturating_sub(STDERR_TAIL);
        let start = (start..stderr.len())
            .find(|i| stderr.is_char_boundary(*i))
            .unwrap_or(stderr.len());
        Error::Node {
            node: self.name.clone(),
            what,
            stderr: stderr[start..].to_owned(),
        }
    }

    /// Waits at most `timeout` for the process to exit; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        self.process
            .wait_timeout(timeout)
            .ok()
            .flatten()
            .map(|status| status.code().unwrap_or(-1))
    }

    /// The process's CPU time so far (user + system), in milliseconds, while
    /// it runs.
    pub fn cpu_ms(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // Fields after the command name (which may hold spaces) in `(...)`:
        // utime and stime are the 12th and 13th of them, in clock ticks.
        let rest = stat.rsplit_once(')')?.1;
        let mut fields = rest.split_whitespace().skip(11);
        let utime: u64 = fields.next()?.parse().ok()?;
        let stime: u64 = fields.next()?.parse().ok()?;
        // Clock ticks are 100 per second on Linux (USER_HZ).
        Some((utime + stime) * 10)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Err(error) = self.process.kill() {
            tracing::debug!(node = %self.name, %error, "kill failed");
        }
    }

    /// Everything the node wrote to stderr.
    pub fn stderr(&self) -> String {
        self.process.stderr()
    }
}
