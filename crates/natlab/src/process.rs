//! Processes started inside the lab's namespaces.

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::Error;

/// The PIDs of the lab's live (not yet reaped) child processes.
///
/// A PID stays in the set until its [`Process`] reaps the child, and reaping
/// happens with the set locked, so the lab never kills a recycled PID.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pids: Mutex<HashSet<u32>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashSet<u32>> {
        self.pids.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// SIGKILLs every registered process (they are reaped by their
    /// [`Process`] later).
    pub(crate) fn kill_all(&self) {
        for &pid in self.lock().iter() {
            let Ok(raw) = i32::try_from(pid) else {
                continue;
            };
            tracing::debug!(pid, "natlab: killing spawned process");
            if let Err(errno) = kill(Pid::from_raw(raw), Signal::SIGKILL) {
                tracing::debug!(pid, %errno, "natlab: kill failed");
            }
        }
    }
}

/// A process running inside a lab namespace, started by
/// [`Host::spawn`](crate::Host::spawn).
///
/// Its stdout is read line by line on a background thread
/// ([`next_line`](Self::next_line), [`lines`](Self::lines)). Its stderr is
/// captured into a buffer ([`stderr`](Self::stderr)) for diagnostics and also
/// logged line by line at `debug` level with `tracing`.
///
/// Dropping a `Process` kills it (SIGKILL by PID) and reaps it. Dropping the
/// [`Lab`](crate::Lab) kills it too, even if the `Process` lives on.
#[derive(Debug)]
pub struct Process {
    label: String,
    child: Child,
    reaped: bool,
    lines: Receiver<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    registry: Arc<Registry>,
}

impl Process {
    pub(crate) fn spawn(
        mut command: Command,
        label: String,
        registry: Arc<Registry>,
    ) -> Result<Self, Error> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let program = std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|part| part.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        // Register under the lock, so teardown never misses a fresh child.
        let mut pids = registry.lock();
        let mut child = command.spawn().map_err(|source| Error::Spawn {
            command: program.clone(),
            source,
        })?;
        pids.insert(child.id());
        drop(pids);
        tracing::debug!(pid = child.id(), %label, command = %program, "natlab: spawned");

        let (sender, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            let reader_label = label.clone();
            spawn_reader(&label, move || {
                let label = reader_label;
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    tracing::trace!(%label, %line, "natlab: stdout");
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(pipe) = child.stderr.take() {
            let buffer = Arc::clone(&stderr);
            let reader_label = label.clone();
            spawn_reader(&label, move || {
                let label = reader_label;
                let mut reader = BufReader::new(pipe);
                let mut line = Vec::new();
                while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                    tracing::debug!(%label, line = %String::from_utf8_lossy(&line).trim_end(), "natlab: stderr");
                    buffer
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend_from_slice(&line);
                    line.clear();
                }
                // Keep draining anything without a newline.
                let mut rest = Vec::new();
                let _ = reader.read_to_end(&mut rest);
                buffer
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend_from_slice(&rest);
            });
        }

        Ok(Self {
            label,
            child,
            reaped: false,
            lines,
            stderr,
            registry,
        })
    }

    /// The child's PID (that of the program itself: `ip netns exec` execs it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line of stdout, waiting at most `timeout`; `None` on timeout
    /// or when stdout has closed and every line has been read.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Skips stdout lines until one satisfies `matches`, waiting at most
    /// `timeout` in total; returns that line.
    pub fn wait_for_line(
        &self,
        timeout: Duration,
        mut matches: impl FnMut(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.next_line(left)?;
            if matches(&line) {
                return Some(line);
            }
        }
    }

    /// Stdout lines as a blocking iterator that ends when stdout closes.
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.lines.iter()
    }

    /// Everything the process has written to stderr so far.
    pub fn stderr(&self) -> String {
        let buffer = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// The exit status if the process has exited, without blocking.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.reaped {
            return self.child.try_wait();
        }
        let mut pids = self.registry.lock();
        let status = self.child.try_wait()?;
        if status.is_some() {
            self.reaped = true;
            pids.remove(&self.child.id());
        }
        Ok(status)
    }

    /// Waits at most `timeout` for the process to exit; `None` if it is
    /// still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the process (SIGKILL) and reaps it. Does nothing if it has
    /// already been reaped.
    pub fn kill(&mut self) -> io::Result<()> {
        if self.reaped {
            return Ok(());
        }
        let mut pids = self.registry.lock();
        self.child.kill()?;
        self.child.wait()?;
        self.reaped = true;
        pids.remove(&self.child.id());
        tracing::debug!(pid = self.child.id(), label = %self.label, "natlab: killed");
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Err(error) = self.kill() {
            tracing::warn!(pid = self.child.id(), label = %self.label, %error, "natlab: kill failed");
        }
    }
}

fn spawn_reader(label: &str, body: impl FnOnce() + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name(format!("natlab-io-{label}"))
        .spawn(body);
    if let Err(error) = spawned {
        tracing::warn!(%label, %error, "natlab: could not start an output reader");
    }
}
