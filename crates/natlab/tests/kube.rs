//! Kubernetes-node routers behave like the CNI masquerade they model, and
//! the punch-range SNAT exemption (as the DaemonSet in
//! `docs/deploy/punch-snat-exemption.yaml` installs it) turns the punch
//! range endpoint-independent while everything else stays random. Proven
//! with plain UDP sockets and the routers' conntrack tables.
//!
//! A `fully-random` port is one of 64512 (one of 511 for an inside port
//! below 512), so two flows can draw the same port by chance; the
//! assertions on random ports are chosen to fail by chance at most once in
//! about 10^4 runs.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{expect_silence, recv, recv_expect, send};
use natlab::kube::{CNI_TABLE, EXEMPTION_TABLE};
use natlab::require_lab;
use natlab::{Error, KubeNode, Lab, PUNCH_PORTS, PortRange, Router, RouterKind, plan};

const ANY: [u8; 4] = [0, 0, 0, 0];
/// A pod's punch port, inside the exempt range.
const PUNCH_PORT: u16 = 40001;
/// A pod's ordinary listener, outside the exempt range.
const LISTEN_PORT: u16 = 443;

fn build(builder: natlab::LabBuilder) -> Lab {
    builder.build().expect("build lab")
}

fn addr(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

/// Four endpoints on the relay: two IPs, two ports each, bound.
struct Remotes {
    addrs: Vec<SocketAddr>,
    sockets: Vec<UdpSocket>,
}

impl Remotes {
    fn new(lab: &Lab) -> Self {
        let relay = lab.relay();
        let addrs = vec![
            addr(relay.ips()[0], 5000),
            addr(relay.ips()[0], 5001), // same IP, other port
            addr(relay.ips()[1], 5000), // other IP
            addr(relay.ips()[1], 5001),
        ];
        let sockets = addrs
            .iter()
            .map(|&remote| relay.bind_udp(remote).expect("bind relay"))
            .collect();
        Self { addrs, sockets }
    }

    /// Sends one packet from `inside` to each of the first `count`
    /// endpoints and returns the source each of them saw (the mapping).
    fn mappings(&self, inside: &UdpSocket, count: usize) -> Vec<SocketAddr> {
        (0..count)
            .map(|index| {
                send(inside, b"hello", self.addrs[index]);
                let (_, seen) = recv_expect(&self.sockets[index], "outbound packet");
                seen
            })
            .collect()
    }
}

/// The conntrack entry of the flow from `inside` to `remote`.
fn flow(router: &Router, inside: SocketAddr, remote: SocketAddr) -> natlab::Flow {
    let flows = router.conntrack().expect("conntrack");
    flows
        .iter()
        .find(|flow| flow.original.src == inside && flow.original.dst == remote)
        .copied()
        .unwrap_or_else(|| panic!("no flow {inside} -> {remote} in {flows:#?}"))
}

fn run(mut command: Command) -> Output {
    command.output().expect("run command")
}

fn nft(router: &Router, args: &[&str]) -> String {
    let mut command = router.command("nft");
    command.args(args);
    let output = run(command);
    assert!(
        output.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Packets counted by the rule of `table`/`chain` whose text contains
/// `needle`.
fn counter(router: &Router, table: &str, chain: &str, needle: &str) -> u64 {
    let listing = nft(router, &["list", "chain", "ip", table, chain]);
    let line = listing
        .lines()
        .find(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no rule with {needle:?} in {listing}"));
    let mut words = line.split_whitespace();
    words
        .find(|&word| word == "packets")
        .and_then(|_| words.next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no packet counter in {line:?}"))
}

/// Packets NATed by the CNI's (flannel's) pod egress rule.
fn cni_count(router: &Router) -> u64 {
    counter(router, CNI_TABLE, "postrtg", "daddr != 224.0.0.0/4")
}

/// Packets NATed by the exemption's rule.
fn exemption_count(router: &Router) -> u64 {
    counter(router, EXEMPTION_TABLE, "postrouting", "udp sport")
}

/// `apply.sh` from the DaemonSet's ConfigMap.
fn daemonset_script() -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/deploy/punch-snat-exemption.yaml");
    let yaml = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    let mut lines = yaml.lines();
    lines
        .by_ref()
        .find(|line| line.trim_end() == "  apply.sh: |")
        .expect("the ConfigMap has apply.sh");
    let mut script = String::new();
    for line in lines {
        if line.trim().is_empty() {
            script.push('\n');
        } else if let Some(body) = line.strip_prefix("    ") {
            script.push_str(body);
            script.push('\n');
        } else {
            break;
        }
    }
    script
}

/// Runs one pass of the DaemonSet's script in `router`'s namespace (the
/// node's host network namespace) and returns its output.
fn run_daemonset(router: &Router, mode: &str) -> String {
    let (network, prefix) = plan::KUBE_CLUSTER_CIDR;
    let mut command = router.command("sh");
    command
        .args(["-c", &daemonset_script()])
        .env("MODE", mode)
        .env("POD_CIDR", format!("{network}/{prefix}"))
        .env("PUNCH_PORTS", PUNCH_PORTS.to_string())
        .env("ONCE", "1")
        .env_remove("IPTABLES");
    let output = run(command);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "apply.sh ({mode}) failed: {text}");
    text
}

fn distinct_ports(mappings: &[SocketAddr]) -> BTreeSet<u16> {
    mappings.iter().map(SocketAddr::port).collect()
}

#[test]
fn fully_random_maps_every_destination_to_a_new_port() {
    require_lab!();
    let lab = build(Lab::builder().router("k", KubeNode::FULLY_RANDOM));
    let (router, pod) = (lab.router("k"), lab.host("k0"));
    assert_eq!(router.kind(), RouterKind::Kube(KubeNode::FULLY_RANDOM));
    assert_eq!(router.nat(), natlab::Nat::Symmetric);
    let remotes = Remotes::new(&lab);
    let inside = pod.bind_udp((ANY, PUNCH_PORT)).expect("bind");

    send(
        &remotes.sockets[0],
        b"early",
        addr(router.wan_ip(), PUNCH_PORT),
    );
    expect_silence(&inside, "unsolicited inbound");

    let seen = remotes.mappings(&inside, 3);
    for mapping in &seen {
        assert_eq!(mapping.ip(), router.wan_ip(), "masqueraded: {seen:?}");
        assert_ne!(mapping.port(), PUNCH_PORT, "port not preserved: {seen:?}");
        assert!(mapping.port() >= 1024, "random port 1024-65535: {seen:?}");
    }
    assert_ne!(
        seen[0].port(),
        seen[1].port(),
        "same IP, other port: {seen:?}"
    );
    assert_ne!(seen[0].port(), seen[2].port(), "other IP: {seen:?}");
    assert_ne!(seen[1].port(), seen[2].port(), "{seen:?}");

    let inside_addr = addr(pod.ip(), PUNCH_PORT);
    for (index, mapping) in seen.iter().enumerate() {
        let flow = flow(router, inside_addr, remotes.addrs[index]);
        assert_eq!(flow.external(), *mapping, "conntrack: {flow:?}");
    }
    assert_eq!(cni_count(router), 3, "the CNI's rule NATed each new flow");

    // Filtering: only the endpoint a mapping was made for gets in.
    send(&remotes.sockets[1], b"stranger", seen[0]);
    expect_silence(&inside, "another endpoint to a live mapping");
    send(&remotes.sockets[0], b"reply", seen[0]);
    let (_, from) = recv_expect(&inside, "reply through the mapping");
    assert_eq!(from, remotes.addrs[0]);
    // NAT rules see a flow's first packet only.
    send(&inside, b"again", remotes.addrs[0]);
    assert_eq!(recv_expect(&remotes.sockets[0], "again").1, seen[0]);
    assert_eq!(cni_count(router), 3, "no NAT lookup for a known flow");
}

#[test]
fn plain_masquerade_keeps_the_port_until_two_pods_collide() {
    require_lab!();
    let lab = build(Lab::builder().router("k", KubeNode::MASQUERADE).hosts(3));
    let router = lab.router("k");
    assert_eq!(router.nat(), natlab::Nat::PortRestricted);
    let remotes = Remotes::new(&lab);
    let bind = |name: &str| lab.host(name).bind_udp((ANY, PUNCH_PORT)).expect("bind");
    let (first, second, third) = (bind("k0"), bind("k1"), bind("k2"));
    let inside = |name: &str| addr(lab.host(name).ip(), PUNCH_PORT);
    let preserved = addr(router.wan_ip(), PUNCH_PORT);

    let seen = remotes.mappings(&first, 2);
    assert_eq!(seen, [preserved, preserved], "port kept, same mapping");
    for (index, mapping) in seen.iter().enumerate() {
        assert_eq!(
            flow(router, inside("k0"), remotes.addrs[index]).external(),
            *mapping
        );
    }

    // The second pod's flow to the same endpoint would need the same
    // reply tuple: Linux picks another port...
    send(&second, b"hello", remotes.addrs[0]);
    let (_, collided) = recv_expect(&remotes.sockets[0], "second pod");
    assert_eq!(collided.ip(), router.wan_ip());
    assert_ne!(collided.port(), PUNCH_PORT, "collision remaps the port");
    // ...and reuses that mapping for the pod's next destinations (Linux
    // looks up the inside socket's existing mapping first).
    send(&second, b"hello", remotes.addrs[2]);
    let (_, next) = recv_expect(&remotes.sockets[2], "second pod, other endpoint");
    assert_eq!(next, collided, "the remapped port serves every destination");
    assert_eq!(
        flow(router, inside("k1"), remotes.addrs[0]).external(),
        collided
    );
    assert_eq!(
        flow(router, inside("k1"), remotes.addrs[2]).external(),
        collided
    );

    // In the other order the port is kept first, and the colliding
    // destination gets a port of its own: this pod's mapping now depends
    // on the destination.
    send(&third, b"hello", remotes.addrs[3]);
    let (_, kept) = recv_expect(&remotes.sockets[3], "third pod, unused endpoint");
    assert_eq!(kept, preserved, "no collision, port kept");
    send(&third, b"hello", remotes.addrs[1]);
    let (_, other) = recv_expect(&remotes.sockets[1], "third pod, k0's endpoint");
    assert_eq!(other.ip(), router.wan_ip());
    assert_ne!(other.port(), PUNCH_PORT, "collision remaps the port");
    assert_eq!(
        flow(router, inside("k2"), remotes.addrs[3]).external(),
        kept
    );
    assert_eq!(
        flow(router, inside("k2"), remotes.addrs[1]).external(),
        other
    );

    // Replies reach the right pod; strangers do not get in.
    send(&remotes.sockets[0], b"to second", collided);
    assert_eq!(recv_expect(&second, "reply to k1").0, b"to second");
    send(&remotes.sockets[3], b"to third", preserved);
    assert_eq!(recv_expect(&third, "reply to k2").0, b"to third");
    expect_silence(&first, "k0 never sent to that endpoint");
    send(&remotes.sockets[2], b"stranger", collided);
    expect_silence(&first, "k0 is not behind k1's port");
    assert_eq!(
        recv_expect(&second, "k1 sent to that endpoint").0,
        b"stranger"
    );
}

#[test]
fn exemption_maps_the_punch_range_endpoint_independently_and_leaves_the_rest_random() {
    require_lab!();
    let kind = KubeNode::FULLY_RANDOM.exempt(PUNCH_PORTS);
    let lab = build(Lab::builder().router("k", kind).hosts(2));
    let router = lab.router("k");
    assert_eq!(router.kind().kube(), Some(kind));
    let remotes = Remotes::new(&lab);
    let pod = lab.host("k0");
    let punch = pod.bind_udp((ANY, PUNCH_PORT)).expect("bind");
    let listener = pod.bind_udp((ANY, LISTEN_PORT)).expect("bind");
    let preserved = addr(router.wan_ip(), PUNCH_PORT);

    // Inside the range: one mapping for every destination, port kept.
    let seen = remotes.mappings(&punch, 3);
    assert_eq!(
        seen, [preserved; 3],
        "endpoint-independent, port-preserving"
    );
    for (index, mapping) in seen.iter().enumerate() {
        let flow = flow(router, addr(pod.ip(), PUNCH_PORT), remotes.addrs[index]);
        assert_eq!(flow.external(), *mapping, "conntrack: {flow:?}");
    }
    // The exemption made each mapping; the CNI's chain never ran for them.
    assert_eq!(exemption_count(router), 3);
    assert_eq!(cni_count(router), 0);

    // Outside the range: still the CNI's fully-random masquerade.
    let random = remotes.mappings(&listener, 4);
    assert!(
        random.iter().all(|mapping| mapping.ip() == router.wan_ip()),
        "{random:?}"
    );
    assert!(
        distinct_ports(&random).len() > 1,
        "443 maps per destination: {random:?}"
    );
    for (index, mapping) in random.iter().enumerate() {
        let flow = flow(router, addr(pod.ip(), LISTEN_PORT), remotes.addrs[index]);
        assert_eq!(flow.external(), *mapping);
    }
    assert_eq!(cni_count(router), 4, "the CNI NATed the 443 flows");
    assert_eq!(exemption_count(router), 3, "the exemption did not");

    // Later packets of a flow keep its mapping and pass no NAT rule.
    send(&punch, b"again", remotes.addrs[1]);
    assert_eq!(recv_expect(&remotes.sockets[1], "again").1, preserved);
    assert_eq!((exemption_count(router), cni_count(router)), (3, 4));

    // Filtering is unchanged: replies in, strangers out. Any endpoint the
    // pod has sent to may answer to the one mapping.
    send(&remotes.sockets[2], b"reply", preserved);
    assert_eq!(recv_expect(&punch, "reply").1, remotes.addrs[2]);
    send(&remotes.sockets[3], b"stranger", preserved);
    expect_silence(&punch, "an endpoint the pod never sent to");

    // Two pods on the same punch port towards the same endpoint still
    // collide; the exemption (not the CNI) picks the second pod's port.
    let other = lab.host("k1").bind_udp((ANY, PUNCH_PORT)).expect("bind");
    send(&other, b"hello", remotes.addrs[0]);
    let (_, collided) = recv_expect(&remotes.sockets[0], "second pod");
    assert_eq!(collided.ip(), router.wan_ip());
    assert_ne!(collided.port(), PUNCH_PORT);
    assert_eq!((exemption_count(router), cni_count(router)), (4, 4));
}

/// Each side learns its public address from the relay, then both punch to
/// the other's learnt address; returns what each side heard the other from.
fn punch(lab: &Lab) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let relay = lab
        .relay()
        .bind_udp((lab.relay().ip(), 5000))
        .expect("bind");
    let a = lab.host("a0").bind_udp((ANY, PUNCH_PORT)).expect("bind");
    let b = lab.host("b0").bind_udp((ANY, PUNCH_PORT)).expect("bind");
    let relay_addr = addr(lab.relay().ip(), 5000);
    send(&a, b"observe me", relay_addr);
    let (_, a_public) = recv_expect(&relay, "a at the relay");
    send(&b, b"observe me", relay_addr);
    let (_, b_public) = recv_expect(&relay, "b at the relay");

    let (mut a_heard, mut b_heard) = (None, None);
    for _ in 0..10 {
        send(&a, b"punch from a", b_public);
        send(&b, b"punch from b", a_public);
        if let Some((_, from)) = recv(&a, Duration::from_millis(50)) {
            a_heard = Some(from);
        }
        if let Some((_, from)) = recv(&b, Duration::from_millis(50)) {
            b_heard = Some(from);
        }
        if a_heard.is_some() && b_heard.is_some() {
            break;
        }
    }
    (a_heard, b_heard)
}

#[test]
fn pods_punch_through_exempt_nodes_and_not_through_stock_ones() {
    require_lab!();
    let stock = build(
        Lab::builder()
            .router("a", KubeNode::FULLY_RANDOM)
            .router("b", KubeNode::FULLY_RANDOM),
    );
    assert_eq!(
        punch(&stock),
        (None, None),
        "fully-random: the learnt addresses do not reach the pods"
    );
    drop(stock);

    let exempt = KubeNode::FULLY_RANDOM.exempt(PUNCH_PORTS);
    let lab = build(Lab::builder().router("a", exempt).router("b", exempt));
    let a_public = addr(lab.router("a").wan_ip(), PUNCH_PORT);
    let b_public = addr(lab.router("b").wan_ip(), PUNCH_PORT);
    assert_eq!(
        punch(&lab),
        (Some(b_public), Some(a_public)),
        "each pod heard the other from its learnt address"
    );
}

#[test]
fn nat_chains_of_one_hook_stop_at_the_first_that_maps() {
    require_lab!();
    let lab = build(Lab::builder().router("k", KubeNode::FULLY_RANDOM));
    let router = lab.router("k");
    // An earlier chain that only accepts, and a later one that would
    // masquerade without random ports.
    let probe = format!(
        "table ip probe {{\n  chain early {{\n    \
         type nat hook postrouting priority srcnat - 10; policy accept;\n    \
         udp sport {PUNCH_PORT} counter accept\n  }}\n  chain late {{\n    \
         type nat hook postrouting priority srcnat + 10; policy accept;\n    \
         udp sport {PUNCH_PORT} counter masquerade\n  }}\n}}\n"
    );
    let mut command = router.command("nft");
    command.args(["-f", "-"]);
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("nft");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), probe.as_bytes())
        .expect("write ruleset");
    assert!(child.wait().expect("nft").success(), "probe table loads");

    let remotes = Remotes::new(&lab);
    let inside = lab.host("k0").bind_udp((ANY, PUNCH_PORT)).expect("bind");
    let seen = remotes.mappings(&inside, 3);
    assert_eq!(
        distinct_ports(&seen).len(),
        3,
        "an accept is no exemption: the CNI still maps randomly: {seen:?}"
    );
    assert_eq!(
        counter(router, "probe", "early", "udp sport"),
        3,
        "the early chain ran"
    );
    assert_eq!(cni_count(router), 3, "the CNI's chain mapped every flow");
    assert_eq!(
        counter(router, "probe", "late", "udp sport"),
        0,
        "once a chain has mapped a flow, later NAT chains do not run"
    );
}

#[test]
fn daemonset_nftables_pass_installs_the_lab_exemption_idempotently() {
    require_lab!();
    let lab = build(
        Lab::builder()
            .router("k", KubeNode::FULLY_RANDOM)
            .router("e", KubeNode::FULLY_RANDOM.exempt(PUNCH_PORTS)),
    );
    let (node, reference) = (lab.router("k"), lab.router("e"));
    let output = run_daemonset(node, "nftables");
    assert!(output.contains("table ip punchport installed"), "{output}");

    // The same table, rule for rule, as the lab's exemption kind loads.
    let listing = |router: &Router| nft(router, &["-s", "list", "table", "ip", EXEMPTION_TABLE]);
    assert_eq!(listing(node), listing(reference));
    assert_eq!(
        listing(node).trim_end(),
        natlab::exemption_ruleset(plan::KUBE_CLUSTER_CIDR, PUNCH_PORTS).trim_end()
    );

    let remotes = Remotes::new(&lab);
    let pod = lab.host("k0").bind_udp((ANY, PUNCH_PORT)).expect("bind");
    let preserved = addr(node.wan_ip(), PUNCH_PORT);
    assert_eq!(remotes.mappings(&pod, 2), [preserved; 2]);
    assert_eq!((exemption_count(node), cni_count(node)), (2, 0));

    // A second pass finds the table in place and leaves it (and its
    // counters, and every mapping) alone.
    let output = run_daemonset(node, "nftables");
    assert!(!output.contains("installed"), "nothing to do: {output}");
    assert_eq!(exemption_count(node), 2, "table not reloaded");
    assert_eq!(remotes.mappings(&pod, 3), [preserved; 3]);

    // Someone flushes the chain: the next pass puts the rule back.
    nft(
        node,
        &["flush", "chain", "ip", EXEMPTION_TABLE, "postrouting"],
    );
    let output = run_daemonset(node, "nftables");
    assert!(output.contains("installed"), "{output}");
    assert_eq!(listing(node), listing(reference));
    // Flows mapped before the reload keep their mappings.
    assert_eq!(remotes.mappings(&pod, 3), [preserved; 3]);
    let flows = node.conntrack().expect("conntrack");
    assert!(
        flows.iter().all(|flow| flow.external() == preserved),
        "{flows:#?}"
    );
}

fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

fn iptables(router: &Router, backend: &str, args: &[&str]) -> String {
    let mut command = router.command(backend);
    command.args(["-w", "-t", "nat"]).args(args);
    let output = run(command);
    assert!(
        output.status.success(),
        "{backend} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A node whose CNI masquerades with iptables `backend` (Calico-style)
/// gets the DaemonSet's iptables pass: the script finds the backend, puts
/// the exemption first in nat/POSTROUTING, and puts it back on top when
/// the CNI re-inserts its own jump above it.
fn iptables_variant(backend: &str) {
    if !available(backend) {
        eprintln!("SKIPPED: {backend} was not found (install the iptables package)");
        return;
    }
    let lab = build(Lab::builder().router("k", KubeNode::FULLY_RANDOM));
    let node = lab.router("k");
    let ipt = |args: &[&str]| iptables(node, backend, args);
    // Swap flannel's nftables rule for a Calico-style iptables one:
    // POSTROUTING jumps to cali-POSTROUTING, which masquerades pod egress
    // with --random-fully (Calico matches its IP pools with ipsets).
    nft(node, &["delete", "table", "ip", CNI_TABLE]);
    let (network, prefix) = plan::KUBE_CLUSTER_CIDR;
    let cluster = format!("{network}/{prefix}");
    let jump = [
        "-m",
        "comment",
        "--comment",
        "cali:O3lYWMrLQYEMJtB5",
        "-j",
        "cali-POSTROUTING",
    ];
    ipt(&["-N", "cali-POSTROUTING"]);
    ipt(&["-N", "cali-nat-outgoing"]);
    ipt(&[&["-A", "POSTROUTING"][..], &jump].concat());
    ipt(&["-A", "cali-POSTROUTING", "-j", "cali-nat-outgoing"]);
    ipt(&[
        "-A",
        "cali-nat-outgoing",
        "-s",
        &cluster,
        "!",
        "-d",
        &cluster,
        "-j",
        "MASQUERADE",
        "--random-fully",
    ]);

    let output = run_daemonset(node, "iptables");
    assert!(output.contains(&format!("using {backend}")), "{output}");
    assert!(output.contains("rule 1 installed"), "{output}");
    let first_rule = || ipt(&["-S", "POSTROUTING", "1"]);
    assert!(
        first_rule().contains("punchport-snat-exemption"),
        "{}",
        first_rule()
    );

    let remotes = Remotes::new(&lab);
    let pod = lab.host("k0");
    let punch = pod.bind_udp((ANY, PUNCH_PORT)).expect("bind");
    let listener = pod.bind_udp((ANY, LISTEN_PORT)).expect("bind");
    let preserved = addr(node.wan_ip(), PUNCH_PORT);
    assert_eq!(remotes.mappings(&punch, 3), [preserved; 3], "exempt");
    let random = remotes.mappings(&listener, 4);
    assert!(
        distinct_ports(&random).len() > 1,
        "443 stays random: {random:?}"
    );

    // The CNI puts its jump back on top (Felix in insert mode does): the
    // next pass moves the exemption back to rule 1, one copy only.
    ipt(&[&["-D", "POSTROUTING"][..], &jump].concat());
    ipt(&[&["-I", "POSTROUTING", "1"][..], &jump].concat());
    assert!(!first_rule().contains("punchport"), "{}", first_rule());
    let output = run_daemonset(node, "iptables");
    assert!(output.contains("rule 1 installed"), "{output}");
    assert!(first_rule().contains("punchport-snat-exemption"));
    let rules = ipt(&["-S", "POSTROUTING"]);
    assert_eq!(
        rules.matches("punchport-snat-exemption").count(),
        1,
        "{rules}"
    );
    let output = run_daemonset(node, "iptables");
    assert!(!output.contains("installed"), "nothing to do: {output}");

    // New punch flows are exempt again.
    node.flush_conntrack().expect("flush");
    assert_eq!(remotes.mappings(&punch, 2), [preserved; 2]);
}

#[test]
fn daemonset_iptables_pass_goes_ahead_of_an_iptables_nft_cni_and_stays_there() {
    require_lab!();
    iptables_variant("iptables-nft");
}

#[test]
fn daemonset_iptables_pass_goes_ahead_of_an_iptables_legacy_cni_and_stays_there() {
    require_lab!();
    iptables_variant("iptables-legacy");
}

fn namespaces() -> Vec<String> {
    let output = run({
        let mut command = Command::new("ip");
        command.args(["netns", "list"]);
        command
    });
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn dropping_a_kube_lab_removes_its_namespaces_and_tables() {
    require_lab!();
    let lab = build(
        Lab::builder()
            .router(
                "k",
                KubeNode::FULLY_RANDOM.exempt(PortRange::new(41000, 41010)),
            )
            .hosts(3),
    );
    let node = lab.router("k");
    let tables = nft(node, &["list", "tables"]);
    for table in ["natlab", CNI_TABLE, EXEMPTION_TABLE] {
        assert!(tables.contains(&format!("table ip {table}\n")), "{tables}");
    }
    assert!(nft(node, &["list", "ruleset"]).contains("udp sport 41000-41010"));
    let created = lab.namespaces().to_vec();
    assert_eq!(created.len(), 6, "inet, relay, node, 3 pods");
    drop(lab);
    let left = namespaces();
    for namespace in &created {
        assert!(!left.contains(namespace), "{namespace} was removed");
    }
}

#[test]
fn builder_rejects_a_backwards_exempt_range() {
    // Configuration is checked before anything is created: no root needed.
    let error = Lab::builder()
        .router(
            "k",
            KubeNode::FULLY_RANDOM.exempt(PortRange::new(40050, 40000)),
        )
        .build()
        .expect_err("invalid range");
    match error {
        Error::Config(message) => assert!(message.contains("exempt port range"), "{message}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}
