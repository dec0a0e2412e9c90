//! A lab with a relay and a peer behind each of two routers, and trials in it.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use libp2p::{Multiaddr, PeerId};
use natlab::{Host, Input, Ipv6Kind, Lab, LabBuilder, RouterKind};
use punchport::{Family, InitiatorRole, PortRange, QuicAddr};
use punchport_node::{NodeEvent, PeerSummary, TransportKind, cli::RelayArgs};

use crate::{
    Binaries, Error, Implementation, LabNode, Outcome, PeerRole, Punch, QuicRole, RelayImpl, Side,
    Trial,
};

/// How long nodes get to start and reserve.
const STARTUP: Duration = Duration::from_secs(20);
/// How long the reserving side is watched after the dialer finished.
const AFTERMATH: Duration = Duration::from_millis(500);
/// How long the dialing peer may take to report failure after the
/// reserving one has.
const GRACE: Duration = Duration::from_secs(3);
/// How long one wait for a line lasts while following both peers.
const POLL: Duration = Duration::from_millis(20);
/// The relay's UDP port.
const RELAY_PORT: u16 = 443;

/// Describes a [`PunchLab`].
#[derive(Debug, Clone)]
pub struct PunchLabBuilder {
    a: RouterKind,
    b: RouterKind,
    wan_delay: Duration,
    wan_loss_percent: f64,
    range: PortRange,
    a_hosts: usize,
    inputs: (Option<Input>, Option<Input>),
    public_hosts: Vec<String>,
    ipv6: (Option<Ipv6Kind>, Option<Ipv6Kind>),
    ipv6_only: (bool, bool),
}

impl PunchLabBuilder {
    /// Makes the lab dual-stack, with these IPv6 kinds for routers `a` and
    /// `b` (`None`: that router's hosts get no IPv6). The relay gets its
    /// IPv6 addresses too, and peers listen on every family their host has.
    pub fn ipv6(mut self, a: Option<Ipv6Kind>, b: Option<Ipv6Kind>) -> Self {
        self.ipv6 = (a, b);
        self
    }

    /// Gives the hosts behind router `a` and/or `b` no IPv4 at all (with
    /// an IPv6 kind from [`ipv6`](Self::ipv6)).
    pub fn ipv6_only(mut self, a: bool, b: bool) -> Self {
        self.ipv6_only = (a, b);
        self
    }

    /// Adds a host with a public address and no firewall, on the internet
    /// (a bystander, say, that a hostile peer names).
    pub fn public_host(mut self, name: impl Into<String>) -> Self {
        self.public_hosts.push(name.into());
        self
    }

    /// Whether routers `a` and `b` accept unsolicited packets addressed to
    /// themselves ([`Input::Accept`], as a Kubernetes node or a plain SNAT
    /// box does) or drop them; `None` keeps the kind's default.
    pub fn inputs(mut self, a: Option<Input>, b: Option<Input>) -> Self {
        self.inputs = (a, b);
        self
    }

    /// How many hosts sit behind router `a` (`a0`, `a1`, ...; 1 by default).
    pub fn a_hosts(mut self, count: usize) -> Self {
        self.a_hosts = count;
        self
    }

    /// One-way delay on each router's WAN link (the relay's link has none).
    pub fn wan_delay(mut self, delay: Duration) -> Self {
        self.wan_delay = delay;
        self
    }

    /// Loss on every WAN link, in each direction.
    pub fn wan_loss_percent(mut self, percent: f64) -> Self {
        self.wan_loss_percent = percent;
        self
    }

    /// The punch range the peers use (default `40000-40050`).
    pub fn range(mut self, range: PortRange) -> Self {
        self.range = range;
        self
    }

    /// Builds the namespaces and finds the node binaries.
    pub fn build(self) -> Result<PunchLab, Error> {
        let binaries = Binaries::locate()?;
        let input = |kind: RouterKind, input: Option<Input>| input.unwrap_or(kind.default_input());
        let mut builder = Lab::builder();
        for name in self.public_hosts {
            builder = builder.public_host(name);
        }
        let family = |builder: LabBuilder, kind: Option<Ipv6Kind>, only: bool| {
            let builder = match kind {
                Some(kind) => builder.ipv6(kind),
                None => builder,
            };
            if only { builder.ipv6_only() } else { builder }
        };
        if self.ipv6 != (None, None) {
            builder = builder.dual_stack();
        }
        let builder = builder
            .router("a", self.a)
            .hosts(self.a_hosts)
            .input(input(self.a, self.inputs.0));
        let builder = family(builder, self.ipv6.0, self.ipv6_only.0)
            .router("b", self.b)
            .input(input(self.b, self.inputs.1));
        let lab = family(builder, self.ipv6.1, self.ipv6_only.1)
            .wan_delay(self.wan_delay)
            .wan_loss_percent(self.wan_loss_percent)
            .build()?;
        Ok(PunchLab {
            lab,
            binaries,
            range: self.range,
        })
    }
}

/// A relay on the internet and one peer host behind each of routers `a` and
/// `b`, ready to run [`Trial`]s one after another.
#[derive(Debug)]
pub struct PunchLab {
    lab: Lab,
    binaries: Binaries,
    range: PortRange,
}

impl PunchLab {
    /// A lab with router `a` of kind `a` and router `b` of kind `b` (a
    /// [`natlab::Nat`] or a Kubernetes node, [`natlab::KubeNode`]).
    pub fn builder(a: impl Into<RouterKind>, b: impl Into<RouterKind>) -> PunchLabBuilder {
        PunchLabBuilder {
            a: a.into(),
            b: b.into(),
            wan_delay: Duration::ZERO,
            wan_loss_percent: 0.0,
            range: PortRange::default(),
            a_hosts: 1,
            inputs: (None, None),
            public_hosts: Vec::new(),
            ipv6: (None, None),
            ipv6_only: (false, false),
        }
    }

    /// The lab itself.
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// The punch range the peers use.
    pub fn range(&self) -> PortRange {
        self.range
    }

    /// The node binaries.
    pub fn binaries(&self) -> &Binaries {
        &self.binaries
    }

    /// The address other peers reach `host` at: its router's WAN address, or
    /// its own behind a firewall (IPv4 if the host has it, else IPv6).
    pub fn public_ip(&self, host: &Host) -> IpAddr {
        match host.ip4() {
            Some(_) => self.public_ip_of(host, Family::Ipv4),
            None => self.public_ip_of(host, Family::Ipv6),
        }
    }

    /// The same in `family` (the host's own address when it has none).
    pub fn public_ip_of(&self, host: &Host, family: Family) -> IpAddr {
        let router = self.lab.router_of(host);
        match family {
            Family::Ipv4 => match router {
                Some(router) if router.nat().translates() => router.wan_ip(),
                _ => host.ip4().unwrap_or(host.ip()),
            },
            Family::Ipv6 => match router.and_then(|r| r.ipv6().zip(r.wan_ip6())) {
                Some((kind, wan)) if kind.translates() => wan,
                _ => host.ip6().unwrap_or(host.ip()),
            },
        }
    }

    /// `relay` (an address of the relay with `/p2p/`) as `host` reaches it:
    /// the relay's IPv6 address for a host without IPv4.
    fn relay_for(&self, host: &Host, relay: &Multiaddr) -> Multiaddr {
        if host.ip4().is_some() {
            return relay.clone();
        }
        let Some(v6) = self.lab.relay().ip6() else {
            return relay.clone();
        };
        let mut addr = Multiaddr::empty();
        for protocol in relay.iter() {
            addr.push(match protocol {
                libp2p::multiaddr::Protocol::Ip4(_) => match v6 {
                    IpAddr::V6(v6) => libp2p::multiaddr::Protocol::Ip6(v6),
                    IpAddr::V4(v4) => libp2p::multiaddr::Protocol::Ip4(v4),
                },
                other => other,
            });
        }
        addr
    }

    /// The relay's flags in this lab: UDP 443 on both of its addresses
    /// (203.0.113.10 and .11, so that peers can ask a second observer), a
    /// fixed identity, no rate limits (every peer comes from few IPs).
    pub fn relay_args(&self) -> RelayArgs {
        let listen = self
            .lab
            .relay()
            .ips()
            .iter()
            .map(|ip| {
                QuicAddr {
                    socket: (*ip, RELAY_PORT).into(),
                    peer_id: None,
                }
                .to_multiaddr()
            })
            .collect();
        let mut args = RelayArgs::new(listen);
        args.secret_key_seed = Some(1);
        args.no_rate_limits = true;
        args
    }

    /// Starts the relay with [`relay_args`](Self::relay_args); returns it
    /// and its address on the first IP.
    pub fn start_relay(&self) -> Result<(LabNode, Multiaddr), Error> {
        self.start_relay_with(self.relay_args())
    }

    /// Starts our relay with `args`; returns it and its address on the
    /// relay's first IP.
    pub fn start_relay_with(&self, args: RelayArgs) -> Result<(LabNode, Multiaddr), Error> {
        self.start_relay_as(RelayImpl::Rust, args)
    }

    /// Starts `implementation`'s relay with `args` (the go node takes the
    /// same flags); returns it and its address on the relay's first IP.
    pub fn start_relay_as(
        &self,
        implementation: RelayImpl,
        args: RelayArgs,
    ) -> Result<(LabNode, Multiaddr), Error> {
        let relay = self.lab.relay();
        let node = match implementation {
            RelayImpl::Rust => {
                LabNode::spawn(relay, "relay", &self.binaries.relay, args.to_args())?
            }
            RelayImpl::Go => LabNode::spawn(
                relay,
                "go relay",
                crate::go::node()?,
                std::iter::once("relay".to_owned()).chain(args.to_args()),
            )?,
        };
        let addr = node.wait_relay(relay.ip(), STARTUP)?;
        Ok((node, addr))
    }

    /// Starts a peer on `host` for `trial`, dialing `dial` if given: the
    /// trial's dialing peer if so, else its reserving peer.
    pub fn start_peer(
        &self,
        host: &Host,
        relay: &Multiaddr,
        trial: &Trial,
        dial: Option<PeerId>,
    ) -> Result<LabNode, Error> {
        let role = match dial {
            Some(_) => PeerRole::Dialing,
            None => PeerRole::Reserving,
        };
        let relay = self.relay_for(host, relay);
        let mut args = trial.peer_args(role, &relay, self.range);
        args.dial = dial;
        let implementation = trial.peer(role).implementation;
        if self.lab.dual_stack() && implementation == Implementation::Rust(TransportKind::PortAware)
        {
            args.listen = listen_for(host, &args.listen);
        }
        match implementation {
            Implementation::Rust(_) => {
                LabNode::spawn(host, host.name(), &self.binaries.peer, args.to_args())
            }
            Implementation::Go => LabNode::spawn(
                host,
                format!("go {}", host.name()),
                crate::go::node()?,
                std::iter::once("peer".to_owned()).chain(args.to_args()),
            ),
        }
    }

    /// Starts `trial`'s reserving peer on `a0`, to hold a reservation on
    /// `relay`.
    pub fn start_reserving(&self, relay: &Multiaddr, trial: &Trial) -> Result<LabNode, Error> {
        self.start_peer(self.lab.host("a0"), relay, trial, None)
    }

    /// Starts a relay (`reserving`'s), a reserving peer on `a0` with
    /// `reserving`'s settings, and, once it holds its reservation, a peer on
    /// `b0` that dials it with `dialing`'s settings. Unlike
    /// [`run`](Self::run), it only starts them.
    pub fn start_pair(&self, reserving: &Trial, dialing: &Trial) -> Result<Pair, Error> {
        let (relay, relay_addr) = self.start_relay_as(reserving.relay, self.relay_args())?;
        let a = self.start_reserving(&relay_addr, reserving)?;
        let target = a.wait_ready()?;
        let b = self.start_peer(self.lab.host("b0"), &relay_addr, dialing, Some(target))?;
        Ok(Pair {
            relay,
            relay_addr,
            reserving: a,
            dialing: b,
            target,
        })
    }

    /// Runs one trial: fresh conntrack tables, a fresh relay, peer A on `a0`
    /// reserving, peer B on `b0` dialing A through the relay.
    pub fn run(&self, trial: &Trial) -> Result<Outcome, Error> {
        for router in self.lab.routers() {
            router.flush_conntrack()?;
        }
        let mut relay_args = self.relay_args();
        if trial.relay_on_one_address {
            relay_args.listen.truncate(1);
        }
        let (relay, relay_addr) = self.start_relay_as(trial.relay, relay_args)?;
        let (a_host, b_host) = (self.lab.host("a0"), self.lab.host("b0"));
        let side = |host| Side {
            peer: PeerSummary::new(),
            public_ip: Some(match trial.family {
                Some(family) => self.public_ip_of(host, family),
                None => self.public_ip(host),
            }),
            ..Side::default()
        };
        let (mut a, mut b) = (side(a_host), side(b_host));
        let a_node = self.start_peer(a_host, &relay_addr, trial, None)?;
        a_node.wait_for(STARTUP, "ready line (reservation)", |e| {
            a.record(e);
            matches!(e, NodeEvent::Ready { .. }).then_some(())
        })?;
        let mut b_node = self.start_peer(b_host, &relay_addr, trial, a.peer.peer_id)?;
        let exit_code = watch(
            &a_node,
            &mut a,
            &mut b_node,
            &mut b,
            trial.timeout + STARTUP,
        );
        while let Some(event) = a_node.next_event(AFTERMATH) {
            a.record(&event);
        }
        keep_logs([("relay", &relay), ("a", &a_node), ("b", &b_node)]);
        a.cpu_ms = a_node.cpu_ms();
        a.punches = punches(trial, PeerRole::Reserving, &a, &a_node);
        b.punches = punches(trial, PeerRole::Dialing, &b, &b_node);
        let a_router = self.lab.router_of(a_host);
        let b_router = self.lab.router_of(b_host);
        let (a_ip, b_ip) = (a.public_ip, b.public_ip);
        for (side, router, other) in [(&mut a, a_router, b_ip), (&mut b, b_router, a_ip)] {
            if let (Some(router), Some(other)) = (router, other) {
                let table = router.conntrack()?;
                side.conntrack_entries = table.len();
                side.flows = table
                    .into_iter()
                    .filter(|f| f.original.dst.ip() == other || f.original.src.ip() == other)
                    .collect();
            }
        }
        Ok(Outcome {
            trial: trial.clone(),
            a,
            b,
            exit_code,
        })
    }
}

/// The listen addresses of a port-aware peer on `host` in a dual-stack lab:
/// the trial's ordinary listeners in every family the host has, and a
/// punch socket (port 0) in each.
fn listen_for(host: &Host, ordinary: &[Multiaddr]) -> Vec<Multiaddr> {
    let mut listen = Vec::new();
    let families = [
        (host.ip4().is_some(), IpAddr::from([0, 0, 0, 0])),
        (
            host.ip6().is_some(),
            IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED),
        ),
    ];
    for (has, any) in families {
        if !has {
            continue;
        }
        for addr in ordinary {
            if let Ok(quic) = QuicAddr::parse(addr) {
                listen.push(
                    QuicAddr {
                        socket: (any, quic.socket.port()).into(),
                        peer_id: None,
                    }
                    .to_multiaddr(),
                );
            }
        }
        listen.push(
            QuicAddr {
                socket: (any, 0).into(),
                peer_id: None,
            }
            .to_multiaddr(),
        );
    }
    listen
}

/// With `PUNCHPORT_LAB_LOGS=<dir>`, writes each node's stderr of the trial
/// to `<dir>/<n>-<name>.log` (n counts the trials of this process), for
/// reading a failed trial afterwards.
fn keep_logs<'a>(nodes: impl IntoIterator<Item = (&'a str, &'a LabNode)>) {
    static TRIALS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let Some(dir) = std::env::var_os("PUNCHPORT_LAB_LOGS") else {
        return;
    };
    let n = TRIALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::path::PathBuf::from(dir);
    for (name, node) in nodes {
        let path = dir.join(format!("{n}-{name}.log"));
        if let Err(error) =
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, node.stderr()))
        {
            tracing::warn!(path = %path.display(), %error, "could not keep a node's log");
        }
    }
}

/// Follows both peers until the dialing one exits, or the reserving one has
/// given up and the dialing one has had [`GRACE`] to say so too, or `limit`
/// passes. Returns the dialing peer's exit code.
fn watch(
    a_node: &LabNode,
    a: &mut Side,
    b_node: &mut LabNode,
    b: &mut Side,
    limit: Duration,
) -> Option<i32> {
    let deadline = Instant::now() + limit;
    let mut a_gave_up: Option<Instant> = None;
    loop {
        while let Some(event) = a_node.next_event(Duration::ZERO) {
            a.record(&event);
        }
        if a.peer.failure().is_some() && a_gave_up.is_none() {
            a_gave_up = Some(Instant::now());
        }
        if let Some(event) = b_node.next_event(POLL) {
            b.record(&event);
            // The punch ended: what it cost, before the process lingers out.
            if matches!(
                event,
                NodeEvent::Direct { .. } | NodeEvent::PunchFailed { .. } | NodeEvent::Timeout
            ) {
                b.cpu_ms = b_node.cpu_ms().or(b.cpu_ms);
            }
            continue;
        }
        if let Some(code) = b_node.wait_exit(Duration::ZERO) {
            while let Some(event) = b_node.next_event(POLL) {
                b.record(&event);
            }
            return Some(code);
        }
        let grace_over = a_gave_up.is_some_and(|at| at.elapsed() > GRACE);
        if grace_over || Instant::now() > deadline {
            b_node.kill();
            if b.peer.failures.is_empty() {
                b.peer.failures.push(if grace_over {
                    "no punch_failed within the grace period after the initiator gave up".into()
                } else {
                    "the dialing peer did not finish in time".into()
                });
            }
            return None;
        }
    }
}

/// The hole-punch attempts of the peer in `role`, as [`Side::punches`]
/// describes.
fn punches(trial: &Trial, role: PeerRole, side: &Side, node: &LabNode) -> Vec<Punch> {
    let initiator = role == PeerRole::Reserving;
    match trial.peer(role).implementation {
        Implementation::Go => crate::go::punches(&node.stderr()),
        Implementation::Rust(TransportKind::PortAware) => side
            .attempt_roles
            .iter()
            .map(|dcutr_role| {
                let initiator = dcutr_role == "initiator";
                let quic = if initiator && trial.punch.initiator_role == InitiatorRole::Server {
                    QuicRole::Server
                } else {
                    QuicRole::Client
                };
                Punch { initiator, quic }
            })
            .collect(),
        // Stock libp2p-quic dials as a plain client on both sides (with
        // `PortUse::Reuse`; see tests/interop/go/FINDINGS.md, 5.).
        Implementation::Rust(_) => (0..side.peer.attempts.unwrap_or(0))
            .map(|_| Punch {
                initiator,
                quic: QuicRole::Client,
            })
            .collect(),
    }
}

/// The nodes [`PunchLab::start_pair`] started. Dropping a node kills it:
/// keep every one you need alive (bind it to a name, not `..`).
#[derive(Debug)]
pub struct Pair {
    /// The relay.
    pub relay: LabNode,
    /// Its address, with `/p2p/`.
    pub relay_addr: Multiaddr,
    /// The peer on `a0`, holding a reservation.
    pub reserving: LabNode,
    /// The peer on `b0`, dialing the other through the relay.
    pub dialing: LabNode,
    /// The reserving peer's id.
    pub target: PeerId,
}
