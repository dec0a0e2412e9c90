//! The `relay` and `peer` binaries as scripts drive them: JSON lines on
//! stdout, and a one-line error with exit code 2 for bad flags.

#![allow(clippy::unwrap_used)]

mod support;

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use support::{Binary, example};

/// Runs a binary to completion; returns its exit code and stderr.
fn run(name: &str, args: &[&str]) -> (i32, String) {
    let mut child = Command::new(example(name))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read stderr while waiting: a long error line would fill the pipe.
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    // A value that is wrongly accepted starts a node that never exits.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            let shown: Vec<String> = args.iter().map(|a| a.chars().take(40).collect()).collect();
            panic!("{name} {shown:?} did not exit within 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), reader.join().unwrap())
}

fn assert_usage_error(name: &str, args: &[&str], mentions: &str) {
    let (code, stderr) = run(name, args);
    assert_eq!(
        code, 2,
        "{name} {args:?}: exit code {code}, stderr: {stderr}"
    );
    let lines: Vec<_> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{name} {args:?}: not one line: {stderr}");
    assert!(lines[0].starts_with("error:"), "{}", lines[0]);
    assert!(
        lines[0].contains(mentions),
        "{name} {args:?}: {} lacks {mentions}",
        lines[0]
    );
}

/// How long a node gets to print a line.
const WAIT: Duration = Duration::from_secs(20);

const RELAY: &str =
    "/ip4/127.0.0.1/udp/9/quic-v1/p2p/12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5";

#[test]
fn bad_peer_flags_get_one_line_and_exit_code_2() {
    assert_usage_error("peer", &[], "--relay");
    // A relay address that is no QUIC address with a peer id.
    for (relay, named) in [
        ("/ip4/127.0.0.1/udp/9/quic-v1", "/p2p/"),
        ("not-a-multiaddr", "not-a-multiaddr"),
        (
            "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5",
            "/quic-v1",
        ),
    ] {
        assert_usage_error("peer", &["--relay", relay], named);
    }
    // One bad flag beside a good relay; the error names the value.
    for (flag, value, named) in [
        ("--punch-range", "40050-40000", "reversed"),
        ("--punch-range", "", "empty"),
        ("--punch-range", "443", "privileged"),
        ("--punch-range", "abc", "abc"),
        ("--listen", "/ip4/1.2.3.4/tcp/1", "/ip4/1.2.3.4/tcp/1"),
        ("--transport", "fast", "fast"),
        ("--dial", "nobody", "nobody"),
        ("--secret-key-seed", "256", "256"),
        ("--timeout-secs", "0", "0"),
        ("--announce-ip", "1.2.3", "1.2.3"),
    ] {
        assert_usage_error("peer", &["--relay", RELAY, flag, value], named);
    }
}

#[test]
fn bad_relay_flags_get_one_line_and_exit_code_2() {
    assert_usage_error("relay", &[], "--listen");
    assert_usage_error(
        "relay",
        &["--listen", "/ip4/0.0.0.0/tcp/443"],
        "/ip4/0.0.0.0/tcp/443",
    );
    // One bad flag beside a good listen address; the error names the value.
    for (flag, value) in [
        ("--external-address", "x"),
        ("--max-circuits", "-1"),
        ("--max-circuit-duration-secs", "0"),
    ] {
        assert_usage_error(
            "relay",
            &["--listen", "/ip4/127.0.0.1/udp/0/quic-v1", flag, value],
            value,
        );
    }
}

/// Each of `bad` (a flag and its bad values, each also with every value of
/// `bad_for_any`) given to `binary` beside the one flag it needs
/// (`required`, left out when that is the flag under test) gets a usage
/// error that names the value.
fn each_bad_value(
    binary: &str,
    required: [&str; 2],
    bad: &[(&str, &[&str])],
    bad_for_any: &[&str],
) {
    for (flag, values) in bad {
        for value in values.iter().chain(bad_for_any) {
            let mut args = required.to_vec();
            if *flag == required[0] {
                args.clear();
            }
            args.extend([*flag, *value]);
            let shown: String = value.chars().take(20).collect();
            assert_usage_error(binary, &args, &shown);
        }
    }
}

#[test]
fn relay_and_peers_punch_and_the_dialer_exits_0() {
    let relay = Binary::start(
        "relay",
        &[
            "--listen",
            "/ip4/127.0.0.1/udp/0/quic-v1",
            "--no-rate-limits",
        ],
    );
    let relay_addr = relay.wait_for("listening", WAIT).unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned();
    relay.wait_for("ready", WAIT).unwrap();
    let range = ["--punch-range", "43000-43099"];
    let a = Binary::start("peer", &[&["--relay", &relay_addr], &range[..]].concat());
    let a_id = a.wait_for("ready", WAIT).unwrap()["peer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut b = Binary::start(
        "peer",
        &[
            &[
                "--relay",
                &relay_addr,
                "--dial",
                &a_id,
                "--timeout-secs",
                "20",
            ],
            &range[..],
        ]
        .concat(),
    );
    b.wait_for("ready", WAIT).unwrap();
    assert_eq!(b.wait_for("relayed", WAIT).unwrap()["peer"], a_id.as_str());
    let direct = b.wait_for("direct", WAIT).unwrap();
    assert_eq!(direct["peer"], a_id.as_str());
    assert!(direct["elapsed_ms"].is_u64(), "{direct}");
    let local_port = direct["local_port"].as_u64().unwrap();
    assert!((43000..=43099).contains(&local_port), "{direct}");
    let status = b.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn keygen_writes_an_identity_that_the_relay_uses() {
    let dir = std::env::temp_dir().join(format!("punchport-cli-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("relay.key");
    let _ = std::fs::remove_file(&key);
    let out = Command::new(example("keygen")).arg(&key).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let peer_id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(peer_id.starts_with("12D3KooW"), "{peer_id}");
    // A second keygen never overwrites a key.
    let again = Command::new(example("keygen")).arg(&key).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    let key_arg = key.to_str().unwrap();
    let relay = Binary::start(
        "relay",
        &[
            "--listen",
            "/ip4/127.0.0.1/udp/0/quic-v1",
            "--key-file",
            key_arg,
        ],
    );
    assert_eq!(
        relay.wait_for("ready", WAIT).unwrap()["peer_id"],
        peer_id.as_str()
    );
    drop(relay);
    let with_key = [
        "--listen",
        "/ip4/127.0.0.1/udp/0/quic-v1",
        "--key-file",
        key_arg,
    ];
    assert_usage_error(
        "relay",
        &[&with_key[..], &["--secret-key-seed", "1"]].concat(),
        "--key-file",
    );
    std::fs::write(&key, b"junk").unwrap();
    assert_usage_error("relay", &with_key, "keygen");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every flag of both binaries with malformed, empty, huge and out-of-range
/// values: always one line on stderr and exit code 2.
#[test]
fn every_flag_refuses_bad_values_with_one_line_and_exit_code_2() {
    let huge_number = "9".repeat(100);
    let huge_text = "x".repeat(100_000);
    // Base58 in a `/p2p/` component decodes in time quadratic in its length.
    let huge_peer_addr = format!("/ip4/1.2.3.4/udp/1/quic-v1/p2p/{huge_text}");
    let bad_for_any = ["", huge_text.as_str()];
    let peer: &[(&str, &[&str])] = &[
        (
            "--relay",
            &[
                "/ip4/1.2.3.4/udp/1/quic-v1",
                "/ip4/1.2.3.4",
                "/p2p-circuit",
                "/dns4/relay/udp/443/quic-v1/p2p/12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5",
                huge_peer_addr.as_str(),
            ],
        ),
        (
            "--listen",
            &[
                "/ip4/0.0.0.0/tcp/1",
                "/ip4/0.0.0.0/udp/1",
                "/ip4/0.0.0.0/udp/70000/quic-v1",
                "0.0.0.0:443",
            ],
        ),
        (
            "--punch-range",
            &[
                "0",
                "0-10",
                "40050-40000",
                "1-1023",
                "65536",
                "40000-",
                "a-b",
                "-1",
            ],
        ),
        ("--announce-ip", &["1.2.3", "256.0.0.1", "::g", "localhost"]),
        ("--transport", &["quic", "STOCK", "port_aware"]),
        (
            "--secret-key-seed",
            &["-1", "256", "1.5", huge_number.as_str()],
        ),
        ("--key-file", &["/proc/version"]),
        (
            "--dial",
            &[
                "12D3",
                "QmNotAPeer",
                "/p2p/12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5",
            ],
        ),
        (
            "--timeout-secs",
            &["0", "-5", "86401", "1e3", huge_number.as_str()],
        ),
        ("--initiator-role", &["listener", "Client"]),
        ("--candidates", &["socket", "all"]),
        ("--ping-interval-secs", &["0", "3601", "-1"]),
        (
            "--metrics-address",
            &[
                "9464",
                "0.0.0.0",
                "[::1]",
                "localhost:9464",
                "1.2.3.4:70000",
            ],
        ),
    ];
    each_bad_value("peer", ["--relay", RELAY], peer, &bad_for_any);
    let listen = "/ip4/127.0.0.1/udp/0/quic-v1";
    let relay: &[(&str, &[&str])] = &[
        (
            "--listen",
            &["/ip4/0.0.0.0/tcp/443", "/ip4/0.0.0.0/udp/443", "443"],
        ),
        ("--external-address", &["/ip4/1.2.3.4/tcp/1", "1.2.3.4:443"]),
        ("--secret-key-seed", &["-1", "256", huge_number.as_str()]),
        ("--key-file", &["/proc/version"]),
        (
            "--max-reservations",
            &["0", "-1", "1000001", "many", huge_number.as_str()],
        ),
        (
            "--max-reservations-per-peer",
            &["0", "-1", huge_number.as_str()],
        ),
        (
            "--reservation-duration-secs",
            &["0", "-1", "1.5", huge_number.as_str()],
        ),
        ("--max-circuits", &["0", "-1", huge_number.as_str()]),
        (
            "--max-circuits-per-peer",
            &["0", "-1", huge_number.as_str()],
        ),
        (
            "--max-circuit-duration-secs",
            &["0", "-1", huge_number.as_str()],
        ),
        (
            "--max-circuit-bytes",
            &["0", "-1", "1k", huge_number.as_str()],
        ),
        ("--metrics-address", &["9464", "localhost:9464"]),
        ("--allow-peer", &["12D3", "nobody"]),
    ];
    each_bad_value("relay", ["--listen", listen], relay, &bad_for_any);
    // Switches take no value.
    assert_usage_error(
        "relay",
        &["--listen", listen, "--no-rate-limits=yes"],
        "yes",
    );
    assert_usage_error("peer", &["--relay", RELAY, "--persist"], "--dial");
}
