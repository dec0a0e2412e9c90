//! Building, running processes in, and tearing down labs.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{namespaces, recv_expect, send};
use natlab::require_lab;
use natlab::{Error, Lab, Nat};

fn host_interfaces() -> String {
    let output = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split(':').nth(1))
        .map(|name| name.trim().to_owned())
        .collect();
    names.sort();
    names.join(",")
}

fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for its (new) parent is dead too.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn drop_removes_every_namespace_and_process() {
    require_lab!();
    let interfaces_before = host_interfaces();
    let lab = Lab::builder()
        .router("a", Nat::PortRestricted)
        .hosts(2)
        .wan_delay(Duration::from_millis(5))
        .build()
        .expect("build lab");
    let prefix = lab.prefix().to_owned();
    let listed = namespaces();
    for namespace in lab.namespaces() {
        assert!(namespace.starts_with(&prefix));
        assert!(listed.contains(namespace), "{namespace} exists");
    }
    assert_eq!(lab.namespaces().len(), 5, "inet, relay, router, 2 hosts");
    assert_eq!(
        host_interfaces(),
        interfaces_before,
        "host namespace untouched"
    );

    let host = lab.host("a1");
    let mut command = host.command("sh");
    command.args(["-c", "sleep 30 & echo $!; wait"]);
    let mut process = host.spawn(command).expect("spawn");
    let grandchild: u32 = process
        .next_line(Duration::from_secs(5))
        .expect("grandchild pid")
        .parse()
        .expect("a pid");

    drop(lab);
    let left: Vec<String> = namespaces()
        .into_iter()
        .filter(|namespace| namespace.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let status = process
        .wait_timeout(Duration::from_secs(5))
        .expect("wait")
        .expect("killed by the lab's teardown");
    assert!(!status.success());
    assert!(is_gone(grandchild), "grandchild {grandchild} was killed");
    assert_eq!(
        host_interfaces(),
        interfaces_before,
        "host namespace untouched"
    );
}

#[test]
fn processes_run_inside_their_host() {
    require_lab!();
    let lab = Lab::builder()
        .router("a", Nat::FullCone)
        .build()
        .expect("build lab");
    let host = lab.host("a0");

    let mut command = host.command("sh");
    command.args([
        "-c",
        "echo first; ip -4 -o addr show dev eth0; echo oops >&2; exit 3",
    ]);
    let mut process = host.spawn(command).expect("spawn");
    assert!(process.pid() > 0);
    assert_eq!(
        process.next_line(Duration::from_secs(5)).as_deref(),
        Some("first")
    );
    let address = host.ip().to_string();
    let line = process
        .wait_for_line(Duration::from_secs(5), |line| line.contains(&address))
        .expect("the host's address is on its eth0");
    assert!(line.contains("eth0"), "{line}");
    let status = process
        .wait_timeout(Duration::from_secs(5))
        .expect("wait")
        .expect("exited");
    assert_eq!(status.code(), Some(3));
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while !process.stderr().contains("oops") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(process.stderr(), "oops\n");
    process.kill().expect("kill after exit is fine");

    // `run` executes on a thread inside the namespace.
    let devices = host
        .run(|| std::fs::read_to_string("/proc/thread-self/net/dev"))
        .expect("enter namespace")
        .expect("read /proc/thread-self/net/dev");
    assert!(devices.contains("eth0:"), "{devices}");
    assert!(!devices.contains("wan0:"), "{devices}");
    let router_devices = lab
        .router("a")
        .run(|| std::fs::read_to_string("/proc/thread-self/net/dev"))
        .expect("enter namespace")
        .expect("read");
    assert!(router_devices.contains("wan0:") && router_devices.contains("br0:"));

    // A long-running process is killed when its handle is dropped.
    let mut command = host.command("sleep");
    command.arg("30");
    let process = host.spawn(command).expect("spawn");
    let pid = process.pid();
    drop(process);
    assert!(is_gone(pid));
}

#[test]
fn labs_built_in_parallel_do_not_interfere() {
    require_lab!();
    let prefixes: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|worker| {
                scope.spawn(move || {
                    let lab = Lab::builder()
                        .router("a", Nat::PortRestricted)
                        .build()
                        .expect("build lab");
                    let relay = lab.relay();
                    let server = relay.bind_udp((relay.ip(), 5000)).expect("bind");
                    let client = lab
                        .host("a0")
                        .bind_udp(([0, 0, 0, 0], 40000))
                        .expect("bind");
                    for round in 0..20_u8 {
                        send(
                            &client,
                            &[worker, round],
                            server.local_addr().expect("addr"),
                        );
                        let (payload, from) = recv_expect(&server, "own lab's packet");
                        assert_eq!(payload, [worker, round], "no packets from the other lab");
                        assert_eq!(from.ip(), lab.router("a").wan_ip());
                    }
                    let flows = lab.router("a").conntrack().expect("conntrack");
                    assert_eq!(flows.len(), 1, "{flows:?}");
                    lab.prefix().to_owned()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("worker"))
            .collect()
    });
    assert_ne!(prefixes[0], prefixes[1]);
    let left: Vec<String> = namespaces()
        .into_iter()
        .filter(|namespace| prefixes.iter().any(|prefix| namespace.starts_with(prefix)))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn stale_namespaces_of_dead_processes_are_collected() {
    require_lab!();
    let mut child = Command::new("true").spawn().expect("spawn true");
    let dead_pid = child.id();
    child.wait().expect("wait");
    let stale = format!("natlab-{dead_pid}-0-stale");
    let status = Command::new("ip")
        .args(["netns", "add", &stale])
        .status()
        .expect("ip netns add");
    assert!(status.success());

    let lab = Lab::builder().build().expect("build lab");
    assert!(!namespaces().contains(&stale), "{stale} was collected");
    assert!(lab.hosts().count() == 1 && lab.routers().is_empty());
}

#[test]
fn invalid_topologies_are_rejected_before_anything_is_created() {
    require_lab!();
    let error = Lab::builder()
        .hosts(2)
        .router("a", Nat::Firewall)
        .hosts(30)
        .router("a", Nat::Symmetric)
        .public_host("relay")
        .wan_loss_percent(120.0)
        .build()
        .expect_err("invalid");
    let Error::Config(message) = &error else {
        panic!("unexpected error {error}");
    };
    for part in [
        "`hosts` must follow a `router`",
        "at most 29 hosts",
        "router name \"a\" is used twice",
        "host name \"relay\" is used twice",
        "between 0 and 100 percent",
    ] {
        assert!(message.contains(part), "{part:?} missing from {message}");
    }
}
