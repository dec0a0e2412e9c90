//! A NAT lab of Linux network namespaces, for tests and benchmarks that run
//! real processes behind real NAT behaviour.
//!
//! ```no_run
//! use std::time::Duration;
//! use natlab::{Lab, Nat};
//!
//! if let Err(why) = natlab::available() {
//!     eprintln!("SKIPPED: {why}");
//!     return Ok(());
//! }
//! let lab = Lab::builder()
//!     .router("a", Nat::PortRestricted) // router "a" with host "a0"
//!     .router("b", Nat::FullCone)
//!     .hosts(2) // hosts "b0" and "b1"
//!     .wan_delay(Duration::from_millis(25))
//!     .build()?;
//!
//! // Sockets bound inside a namespace stay there; use them from any thread.
//! let relay = lab.relay().bind_udp((lab.relay().ip(), 5000))?;
//! let a0 = lab.host("a0").bind_udp(([0, 0, 0, 0], 40000))?;
//! a0.send_to(b"hello", (lab.relay().ip(), 5000))?;
//! let (_, from) = relay.recv_from(&mut [0; 64])?;
//! assert_eq!(from.ip(), lab.router("a").wan_ip());
//! assert_eq!(lab.router("a").conntrack()?[0].external(), from);
//!
//! // Or run a program inside a host's namespace and read its stdout.
//! let mut command = lab.host("b0").command("ip");
//! command.args(["-4", "-o", "addr", "show", "eth0"]);
//! let process = lab.host("b0").spawn(command)?;
//! let line = process.next_line(Duration::from_secs(5));
//! # drop(line);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Topology
//!
//! One "internet" namespace routes between all other nodes: the relay, any
//! public hosts, and the routers. Each node hangs off it by its own
//! point-to-point WAN link (`wan0` on the node, `l0`, `l1`, ... in the
//! internet), and uses `192.0.2.1`, present on every internet-side link, as
//! its gateway. Hosts behind a router sit on a bridge `br0` in the router's
//! namespace, one veth each (`eth0` in the host). The addresses are listed in
//! the [`plan`] module. Every interface, address, route and nftables rule
//! lives in namespaces the lab created; nothing touches the host's own
//! namespace, and nothing is connected to it.
//!
//! ```text
//!   relay   public hosts                 (203.0.113.x, 2001:db8:113::x)
//!     |        |
//!   wan0     wan0
//!     |        |
//!    l0  ...  lK   internet namespace    (gateway 192.0.2.1, 2001:db8::1)
//!              |
//!            wan0  router "a"            (198.51.100.1, 2001:db8:100::1)
//!              |
//!             br0 --- eth0 host "a0"     (10.1.0.10; fd00:10:1::10 or
//!                 --- eth0 host "a1"      2001:db8:1:1::10 with IPv6)
//! ```
//!
//! Labs are IPv4-only unless asked otherwise: IPv6 is then disabled in every
//! namespace.
//!
//! # IPv6 and dual stack
//!
//! [`LabBuilder::dual_stack`] makes the internet route IPv6 too and gives
//! the relay, the public hosts and every router an IPv6 address from
//! `2001:db8::/32` next to the IPv4 one ([`Host::ip6`],
//! [`Router::wan_ip6`]). [`LabBuilder::ipv6`] gives a router's LAN IPv6 of
//! an [`Ipv6Kind`] (and implies `dual_stack`):
//!
//! - [`Ipv6Kind::Firewall`]: hosts get global addresses routed via the
//!   router, a stateful firewall (only established and related traffic in);
//! - [`Ipv6Kind::Masquerade`]: NAT66 `masquerade`, hosts on a unique local
//!   prefix, ports kept, endpoint-independent mapping;
//! - [`Ipv6Kind::MasqueradeFullyRandom`]: NAT66 `masquerade fully-random`.
//!
//! Each comes open too ([`LabBuilder::input`] applies to both families; an
//! open router answers ICMPv6 port unreachable).
//! [`LabBuilder::ipv6_only`] leaves IPv4 off a router's LAN: its hosts have
//! only IPv6 ([`Host::ip`] is then their IPv6 address). Conntrack listings,
//! flushes and [`UdpCounter`]s cover both families; a host's
//! [`ips`](Host::ips) lists IPv4 addresses first.
//!
//! ```no_run
//! use natlab::{Ipv6Kind, Lab, Nat};
//!
//! let lab = Lab::builder()
//!     .router("a", Nat::PortRestricted)
//!     .ipv6(Ipv6Kind::Masquerade) // a0: 10.1.0.10 and fd00:10:1::10
//!     .router("b", Nat::PortRestricted)
//!     .ipv6(Ipv6Kind::Firewall)
//!     .ipv6_only() // b0: 2001:db8:1:2::10 only
//!     .build()?;
//! let b0 = lab.host("b0").bind_udp((lab.host("b0").ip(), 40000))?;
//! b0.send_to(b"hi", (lab.router("a").wan_ip6().expect("dual stack"), 40000))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Namespaces are named `natlab-<pid>-<counter>-<node>`, so labs in several
//! processes and threads run side by side. Dropping a [`Lab`] removes
//! everything it created; [`LabBuilder::build`] first removes namespaces
//! left by processes that no longer exist.
//!
//! # Router kinds
//!
//! [`LabBuilder::router`] takes a [`RouterKind`]: a classic [`Nat`]
//! (port-restricted, port-rewriting, full cone, restricted cone, symmetric,
//! or a stateful firewall without NAT) or a [`KubeNode`], a Kubernetes node
//! whose hosts are pods behind the CNI's masquerade rule:
//!
//! - [`KubeNode::MASQUERADE`]: plain `masquerade`, endpoint-independent and
//!   port-preserving until two pods collide;
//! - [`KubeNode::FULLY_RANDOM`]: `masquerade fully-random` (flannel's
//!   nftables backend, Calico's `--random-fully`, ...), a random port for
//!   every new 5-tuple;
//! - either with [`.exempt(PUNCH_PORTS)`](KubeNode::exempt): the operator's
//!   SNAT exemption ([`exemption_ruleset`]) ahead of the CNI, so that UDP
//!   from the punch range maps endpoint-independently.
//!
//! ```no_run
//! use natlab::{KubeNode, Lab, Nat, PUNCH_PORTS};
//!
//! let lab = Lab::builder()
//!     .router("a", Nat::PortRestricted)
//!     .router("k", KubeNode::FULLY_RANDOM.exempt(PUNCH_PORTS))
//!     .hosts(3) // pods "k0", "k1", "k2" on one node
//!     .build()?;
//! # Ok::<(), natlab::Error>(())
//! ```
//!
//! The [`kube`] module lists the rules a Kubernetes node loads; `src/nat.rs`
//! tabulates mapping, filtering and rules for every kind.
//!
//! # Open routers
//!
//! By default every router drops unsolicited packets from the internet
//! that are addressed to itself, before conntrack confirms them
//! ([`Input::Drop`]). Each kind also comes open, with
//! [`.input(Input::Accept)`](LabBuilder::input), like a plain Linux box or
//! a Kubernetes node whose `INPUT` policy is `ACCEPT`: such a router
//! confirms an `[UNREPLIED]` conntrack entry for each unsolicited packet and
//! answers ICMP port unreachable (a connected UDP socket's `recv` then
//! fails with `ConnectionRefused`). An early punch packet therefore takes
//! the reply tuple the inside host's own flow needs, and the kernel maps
//! that flow to another source port: the conntrack clash (see [`Input`]).
//! [`Router::accepts_unsolicited`] tells which a router is;
//! [`RouterKind::default_input`] holds each kind's default: classic NATs
//! drop, Kubernetes nodes accept ([`KubeNode::DEFAULT_INPUT`]), as real
//! nodes do.
//!
//! ```no_run
//! use natlab::{Input, Lab, Nat};
//!
//! let lab = Lab::builder()
//!     .router("a", Nat::PortRestricted)
//!     .input(Input::Accept)
//!     .router("b", Nat::PortRestricted) // drops, the default
//!     .build()?;
//! # Ok::<(), natlab::Error>(())
//! ```
//!
//! # Hops and TTLs
//!
//! A packet from a host behind a router crosses two routing hops before it
//! reaches any other node: its own router and the internet namespace, which
//! forwards every packet between nodes. Delayed links do not count: their
//! forwarder copies packets unchanged. A node receives a packet addressed to
//! itself without a further hop, while a router forwarding a packet to a
//! host behind it is one. So for a packet from a host behind a router:
//!
//! | IP TTL | how far it gets |
//! | --- | --- |
//! | 1 | dies at the host's own router (time exceeded); no mapping is created |
//! | 2 | leaves the own router (its NAT mapping is created) and dies in the internet namespace: it reaches no other node, not even the relay |
//! | 3 | reaches the far router itself (its `input` chain, where an open router confirms a conntrack entry), the relay and public hosts, but not hosts behind a router |
//! | 4 | reaches hosts behind the far router |
//!
//! TTL 2 is therefore the only value that leaves a host's own router but
//! does not reach the other router: the remedy for the conntrack clash
//! (each side first sends one packet with TTL 2 to the other's public
//! address, e.g. with `UdpSocket::set_ttl(2)`, then back to 64) needs
//! exactly 2 in the lab. IPv6's hop limit counts the same hops
//! (`IPV6_UNICAST_HOPS` 2 likewise).
//!
//! # Counting
//!
//! Every router counts packets and bytes per conntrack entry
//! (`net.netfilter.nf_conntrack_acct=1`): [`Router::conntrack`] returns
//! them per direction in [`Flow::original_counts`] and
//! [`Flow::reply_counts`]. [`Host::udp_counter`] installs a [`UdpCounter`]
//! that counts the UDP datagrams reaching a host, in total and per source
//! address. Both count bytes of whole IP packets (IP header + UDP header +
//! payload: a 100-byte payload is 128 bytes over IPv4, 148 over IPv6).
//!
//! # Links
//!
//! Without delay a WAN link is a veth pair. With
//! [`wan_delay`](LabBuilder::wan_delay) it is two TUN devices and a
//! userspace forwarder that holds each packet for the delay (the kernel has
//! no `sch_netem`). The forwarder copies whole IP packets without looking
//! into them, so delayed links carry IPv6 as they carry IPv4 (the TUN device
//! tells the families apart by the version nibble).
//! [`wan_loss_percent`](LabBuilder::wan_loss_percent) drops packets (of
//! both families) with nftables in the internet namespace. A path between
//! two nodes crosses two WAN links.
//!
//! Every command the lab runs is logged with `tracing` at `debug` level.

mod builder;
mod conntrack;
mod counter;
mod error;
mod forwarder;
pub mod kube;
mod lab;
mod link;
mod nat;
mod netns;
mod node;
pub mod plan;
mod process;

use std::io::ErrorKind;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

pub use builder::LabBuilder;
pub use conntrack::{Counts, Flow, Tuple};
pub use counter::UdpCounter;
pub use error::{Error, Unavailable};
pub use kube::{KubeNode, PUNCH_PORTS, PortRange, RouterKind, exemption_ruleset};
pub use lab::Lab;
pub use nat::{
    Input, Ipv6Kind, MAX_REWRITING_HOSTS, Nat, REWRITTEN_PORTS_END, REWRITTEN_PORTS_START,
    rewritten_port,
};
pub use netns::run_in_namespace;
pub use node::{Host, Router};
pub use process::Process;

/// Returns from the calling test, printing `SKIPPED: the NAT lab cannot run
/// here: <why>`, when [`available`] says the lab cannot run here. Tests that
/// need the lab begin with it, so that elsewhere they skip with a reason
/// instead of passing silently.
#[macro_export]
macro_rules! require_lab {
    () => {
        if let Err(why) = $crate::available() {
            eprintln!("SKIPPED: the NAT lab cannot run here: {why}");
            return;
        }
    };
}

/// Checks that the lab can run here: root (euid 0), `ip netns` usable,
/// `nft` and `conntrack` present and working inside a namespace, and
/// `/dev/net/tun` present (for delayed links).
///
/// The error says exactly what is missing, for tests to print
/// `SKIPPED: {why}`. The answer is computed once per process.
pub fn available() -> Result<(), Unavailable> {
    static ANSWER: OnceLock<Result<(), Unavailable>> = OnceLock::new();
    ANSWER.get_or_init(probe).clone()
}

fn probe() -> Result<(), Unavailable> {
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        return Err(Unavailable::new(format!(
            "natlab needs root (euid 0) for network namespaces, nftables and conntrack; \
             running as euid {euid}"
        )));
    }
    for (tool, flag, package) in [
        ("ip", "-V", "iproute2"),
        ("nft", "--version", "nftables"),
        ("conntrack", "--version", "conntrack"),
    ] {
        match Command::new(tool).arg(flag).output() {
            Ok(output) if output.status.success() => {}
            Ok(output) => {
                return Err(Unavailable::new(format!(
                    "`{tool} {flag}` failed ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                )));
            }
            Err(error) if error.kind() == ErrorKind::NotFound => {
                return Err(Unavailable::new(format!(
                    "`{tool}` was not found on PATH (install the {package} package)"
                )));
            }
            Err(error) => {
                return Err(Unavailable::new(format!("could not run `{tool}`: {error}")));
            }
        }
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err(Unavailable::new(
            "/dev/net/tun is missing (delayed links need the tun module)",
        ));
    }

    let namespace = format!("{}{}-probe", netns::NAME_PREFIX, std::process::id());
    netns::add(&namespace)
        .map_err(|error| Unavailable::new(format!("cannot create a network namespace: {error}")))?;
    let checks = netns::exec_in(&namespace, "nft", &["list", "ruleset"])
        .map_err(|error| {
            Unavailable::new(format!("nftables does not work in a namespace: {error}"))
        })
        .and_then(|_| {
            netns::exec_in(&namespace, "conntrack", &["-L"]).map_err(|error| {
                Unavailable::new(format!("conntrack does not work in a namespace: {error}"))
            })
        });
    netns::destroy(&namespace);
    checks.map(drop)
}
