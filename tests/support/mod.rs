//! The node binaries as tests drive them: located next to the test
//! executable, their JSON lines on a channel, their stderr kept.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use serde_json::Value;

/// A node binary that `cargo test` built, as the lab finds it.
pub fn example(name: &str) -> PathBuf {
    let binaries = punchport_lab::Binaries::locate().unwrap_or_else(|e| panic!("{e}"));
    match name {
        "relay" => binaries.relay,
        "peer" => binaries.peer,
        "keygen" => binaries.keygen,
        other => panic!("no binary {other}"),
    }
}

/// A running binary; killed (by its PID) and reaped on drop.
pub struct Binary {
    pub child: Child,
    lines: mpsc::Receiver<Value>,
    stderr: Arc<Mutex<String>>,
}

impl Binary {
    /// Starts `name` with `args`, logging at `info`.
    pub fn start(name: &str, args: &[&str]) -> Self {
        let mut child = Command::new(example(name))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value: Value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
                assert!(value["event"].is_string(), "no event field: {line}");
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Self {
            child,
            lines,
            stderr,
        }
    }

    /// The first `event` line within `within`, skipping others.
    pub fn wait_for(&self, event: &str, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        while let Ok(value) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if value["event"] == event {
                return Some(value);
            }
        }
        None
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
