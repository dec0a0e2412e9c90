//! The relay's allow-list and circuit limits, with the binaries on loopback.

#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use serde_json::Value;

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

fn peer_id(seed: u8) -> String {
    punchport_node::keypair_from_seed(seed)
        .public()
        .to_peer_id()
        .to_string()
}

/// A binary whose stdout lines arrive on a channel and whose stderr is kept;
/// killed on drop.
struct Node {
    child: Child,
    lines: mpsc::Receiver<Value>,
    stderr: Arc<Mutex<String>>,
}

impl Node {
    fn start(name: &str, args: &[&str]) -> Self {
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
                if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Self {
            child,
            lines,
            stderr,
        }
    }

    fn wait_for(&self, event: &str, within: Duration) -> Option<Value> {
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
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn relay(extra: &[&str]) -> (Node, String) {
    let mut args = vec![
        "--listen",
        "/ip4/127.0.0.1/udp/0/quic-v1",
        "--secret-key-seed",
        "1",
        "--no-rate-limits",
    ];
    args.extend_from_slice(extra);
    let relay = Node::start("relay", &args);
    let addr = relay
        .wait_for("listening", Duration::from_secs(20))
        .unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned();
    relay.wait_for("ready", Duration::from_secs(20)).unwrap();
    (relay, addr)
}

#[test]
fn the_allow_list_refuses_other_peers_reservations_with_a_clear_log_line() {
    let allowed = peer_id(2);
    let (relay, relay_addr) = relay(&["--allow-peer", &allowed]);
    let range = ["--punch-range", "43600-43699"];
    let ok = Node::start(
        "peer",
        &[
            &["--relay", &relay_addr, "--secret-key-seed", "2"],
            &range[..],
        ]
        .concat(),
    );
    assert_eq!(
        ok.wait_for("ready", Duration::from_secs(20)).unwrap()["peer_id"],
        allowed.as_str()
    );

    let refused_id = peer_id(3);
    let refused = Node::start(
        "peer",
        &[
            &["--relay", &relay_addr, "--secret-key-seed", "3"],
            &range[..],
        ]
        .concat(),
    );
    let failed = refused
        .wait_for("reservation_failed", Duration::from_secs(20))
        .unwrap();
    assert!(failed["error"].is_string(), "{failed}");
    // It does not hammer the relay: the next attempt waits.
    assert!(
        refused
            .wait_for("reservation_failed", Duration::from_millis(1500))
            .is_none()
    );
    let log = relay.stderr.lock().unwrap().clone();
    assert!(
        log.lines()
            .any(|l| l.contains("refused a reservation") && l.contains(&refused_id)),
        "{log}"
    );
    assert!(!log.contains(&format!(
        "refused a reservation: the peer is not on the allow-list (--allow-peer) peer={allowed}"
    )));
}

#[test]
fn circuits_end_at_the_relays_duration_limit() {
    let (_relay, relay_addr) = relay(&["--max-circuit-duration-secs", "2"]);
    let range = ["--punch-range", "43700-43799"];
    let a = Node::start(
        "peer",
        &[
            &["--relay", &relay_addr, "--secret-key-seed", "4"],
            &range[..],
        ]
        .concat(),
    );
    a.wait_for("ready", Duration::from_secs(20)).unwrap();
    let b = Node::start(
        "peer",
        &[
            &["--relay", &relay_addr, "--dial", &peer_id(4), "--persist"],
            &range[..],
        ]
        .concat(),
    );
    b.wait_for("relayed", Duration::from_secs(20)).unwrap();
    let opened = Instant::now();
    let closed = b
        .wait_for("disconnected", Duration::from_secs(10))
        .expect("the relayed connection closes");
    assert_eq!(closed["relayed"], true, "{closed}");
    let lifetime = opened.elapsed();
    assert!(
        lifetime < Duration::from_secs(5),
        "the circuit lived {lifetime:?}"
    );
}
