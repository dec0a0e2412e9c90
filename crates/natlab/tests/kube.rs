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
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

use common::{
    ANY, Behind, Heard, MAIN, OTHER_IP, OTHER_IP_PORT, OTHER_PORT, Remotes, addr, assert_delivered,
    bind, build, expect_silence, mapping, namespaces, punch, recv_expect, send,
};
use natlab::kube::{CNI_TABLE, EXEMPTION_TABLE};
use natlab::require_lab;
use natlab::{Error, Input, KubeNode, Lab, PUNCH_PORTS, PortRange, Router, RouterKind, plan};

/// A pod's punch port, inside the exempt range.
const PUNCH_PORT: u16 = 40001;
/// A pod's ordinary listener, outside the exempt range.
const LISTEN_PORT: u16 = 443;

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
    let t = Behind::ipv4(&lab, "k0", PUNCH_PORT);
    let router = t.router;
    assert_eq!(router.kind(), RouterKind::Kube(KubeNode::FULLY_RANDOM));
    assert_eq!(router.nat(), natlab::Nat::Symmetric);
    t.assert_blocked(MAIN, t.preserved(), "unsolicited inbound");

    let seen = t.mappings(0..3);
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
    assert_eq!(t.tracked(0..3), seen, "conntrack");
    assert_eq!(cni_count(router), 3, "the CNI's rule NATed each new flow");

    // Filtering: only the endpoint a mapping was made for gets in.
    t.assert_blocked(OTHER_PORT, seen[0], "another endpoint to a live mapping");
    t.assert_delivered(MAIN, seen[0], "reply through the mapping");
    // NAT rules see a flow's first packet only.
    assert_eq!(t.mappings([MAIN]), [seen[0]], "again");
    assert_eq!(cni_count(router), 3, "no NAT lookup for a known flow");
}

#[test]
fn plain_masquerade_keeps_the_port_until_two_pods_collide() {
    require_lab!();
    let lab = build(Lab::builder().router("k", KubeNode::MASQUERADE).hosts(3));
    let router = lab.router("k");
    assert_eq!(router.nat(), natlab::Nat::PortRestricted);
    let remotes = Remotes::new(&lab);
    let [first, second, third] =
        ["k0", "k1", "k2"].map(|name| bind(lab.host(name), (ANY, PUNCH_PORT)));
    let tracked = |name: &str, indices: [usize; 2]| {
        remotes.tracked(router, addr(lab.host(name).ip(), PUNCH_PORT), indices)
    };
    let preserved = addr(router.wan_ip(), PUNCH_PORT);

    let seen = remotes.mappings(&first, 0..2);
    assert_eq!(seen, [preserved, preserved], "port kept, same mapping");
    assert_eq!(tracked("k0", [MAIN, OTHER_PORT]), seen);

    // The second pod's flow to the same endpoint would need the same
    // reply tuple: Linux picks another port...
    let collided = remotes.mapping(&second, MAIN);
    assert_eq!(collided.ip(), router.wan_ip());
    assert_ne!(collided.port(), PUNCH_PORT, "collision remaps the port");
    // ...and reuses that mapping for the pod's next destinations (Linux
    // looks up the inside socket's existing mapping first).
    let next = remotes.mapping(&second, OTHER_IP);
    assert_eq!(next, collided, "the remapped port serves every destination");
    assert_eq!(tracked("k1", [MAIN, OTHER_IP]), [collided; 2]);

    // In the other order the port is kept first, and the colliding
    // destination gets a port of its own: this pod's mapping now depends
    // on the destination.
    let kept = remotes.mapping(&third, OTHER_IP_PORT);
    assert_eq!(kept, preserved, "no collision, port kept");
    let other = remotes.mapping(&third, OTHER_PORT);
    assert_eq!(other.ip(), router.wan_ip());
    assert_ne!(other.port(), PUNCH_PORT, "collision remaps the port");
    assert_eq!(tracked("k2", [OTHER_IP_PORT, OTHER_PORT]), [kept, other]);

    // Replies reach the right pod; strangers do not get in.
    let [main, _, other_ip, other_ip_port] = &remotes.sockets;
    assert_delivered(main, collided, &second, "reply to k1");
    assert_delivered(other_ip_port, preserved, &third, "reply to k2");
    expect_silence(&first, "k0 never sent to that endpoint");
    send(other_ip, b"stranger", collided);
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
    let t = Behind::ipv4(&lab, "k0", PUNCH_PORT);
    let router = t.router;
    assert_eq!(router.kind().kube(), Some(kind));
    let preserved = t.preserved();

    // Inside the range: one mapping for every destination, port kept.
    let seen = t.mappings(0..3);
    assert_eq!(
        seen, [preserved; 3],
        "endpoint-independent, port-preserving"
    );
    assert_eq!(t.tracked(0..3), seen, "conntrack");
    // The exemption made each mapping; the CNI's chain never ran for them.
    assert_eq!(exemption_count(router), 3);
    assert_eq!(cni_count(router), 0);

    // Outside the range: still the CNI's fully-random masquerade.
    let listener = bind(t.host, (ANY, LISTEN_PORT));
    let random = t.remotes.mappings(&listener, 0..4);
    assert!(
        random.iter().all(|mapping| mapping.ip() == router.wan_ip()),
        "{random:?}"
    );
    assert!(
        distinct_ports(&random).len() > 1,
        "443 maps per destination: {random:?}"
    );
    let listening = addr(t.host.ip(), LISTEN_PORT);
    assert_eq!(t.remotes.tracked(router, listening, 0..4), random);
    assert_eq!(cni_count(router), 4, "the CNI NATed the 443 flows");
    assert_eq!(exemption_count(router), 3, "the exemption did not");

    // Later packets of a flow keep its mapping and pass no NAT rule.
    assert_eq!(t.mappings([OTHER_PORT]), [preserved], "again");
    assert_eq!((exemption_count(router), cni_count(router)), (3, 4));

    // Filtering is unchanged: replies in, strangers out. Any endpoint the
    // pod has sent to may answer to the one mapping.
    t.assert_delivered(OTHER_IP, preserved, "reply");
    let what = "an endpoint the pod never sent to";
    t.assert_blocked(OTHER_IP_PORT, preserved, what);

    // Two pods on the same punch port towards the same endpoint still
    // collide; the exemption (not the CNI) picks the second pod's port.
    let other = bind(lab.host("k1"), (ANY, PUNCH_PORT));
    let collided = t.remotes.mapping(&other, MAIN);
    assert_eq!(collided.ip(), router.wan_ip());
    assert_ne!(collided.port(), PUNCH_PORT);
    assert_eq!((exemption_count(router), cni_count(router)), (4, 4));
}

/// Each side learns its public address from the relay, then both punch to
/// the other's learnt address; returns what each side heard the other from.
fn punch_learnt(lab: &Lab) -> Heard {
    let relay = lab.relay();
    let observer = bind(relay, (relay.ip(), 5000));
    let a = bind(lab.host("a0"), (ANY, PUNCH_PORT));
    let b = bind(lab.host("b0"), (ANY, PUNCH_PORT));
    let a_public = mapping(&a, &observer);
    let b_public = mapping(&b, &observer);
    punch(&a, a_public, &b, b_public, 10)
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
        punch_learnt(&stock),
        (None, None),
        "fully-random: the learnt addresses do not reach the pods"
    );
    drop(stock);

    // Nodes that drop unsolicited input: these plain sockets send no
    // short-TTL openers, and on open nodes the side whose packet arrives
    // second would be remapped (the conntrack clash, `open.rs`), which is
    // not what this test is about.
    let exempt = KubeNode::FULLY_RANDOM.exempt(PUNCH_PORTS);
    let lab = build(
        Lab::builder()
            .router("a", exempt)
            .input(Input::Drop)
            .router("b", exempt)
            .input(Input::Drop),
    );
    let a_public = addr(lab.router("a").wan_ip(), PUNCH_PORT);
    let b_public = addr(lab.router("b").wan_ip(), PUNCH_PORT);
    assert_eq!(
        punch_learnt(&lab),
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

    let t = Behind::ipv4(&lab, "k0", PUNCH_PORT);
    let seen = t.mappings(0..3);
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

    let t = Behind::ipv4(&lab, "k0", PUNCH_PORT);
    let preserved = t.preserved();
    assert_eq!(t.mappings(0..2), [preserved; 2]);
    assert_eq!((exemption_count(node), cni_count(node)), (2, 0));

    // A second pass finds the table in place and leaves it (and its
    // counters, and every mapping) alone.
    let output = run_daemonset(node, "nftables");
    assert!(!output.contains("installed"), "nothing to do: {output}");
    assert_eq!(exemption_count(node), 2, "table not reloaded");
    assert_eq!(t.mappings(0..3), [preserved; 3]);

    // Someone flushes the chain: the next pass puts the rule back.
    nft(
        node,
        &["flush", "chain", "ip", EXEMPTION_TABLE, "postrouting"],
    );
    let output = run_daemonset(node, "nftables");
    assert!(output.contains("installed"), "{output}");
    assert_eq!(listing(node), listing(reference));
    // Flows mapped before the reload keep their mappings.
    assert_eq!(t.mappings(0..3), [preserved; 3]);
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

    let t = Behind::ipv4(&lab, "k0", PUNCH_PORT);
    let listener = bind(t.host, (ANY, LISTEN_PORT));
    let preserved = t.preserved();
    assert_eq!(t.mappings(0..3), [preserved; 3], "exempt");
    let random = t.remotes.mappings(&listener, 0..4);
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
    assert_eq!(t.mappings(0..2), [preserved; 2]);
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
