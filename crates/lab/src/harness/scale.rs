//! Many pods behind one node: `pods` peers behind router `a` and as many
//! behind router `b` (Kubernetes nodes whose pods share one masquerade), one
//! relay for all. The `b` pods reserve; then every `a` pod dials its `b`
//! partner through the relay at the same moment, and punches.
//!
//! The `scale` benchmark (`src/bin/scale.rs`) runs 50 + 50 pods in several
//! variants; `crates/lab/tests/scale.rs` runs a small one in CI.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use libp2p::{Multiaddr, PeerId};
use natlab::{Host, KubeNode, Lab, RouterKind};
use punchport::{CandidateMode, PortRange, QuicAddr};
use punchport_node::{
    NodeEvent, RelayLimits,
    cli::{PeerArgs, RelayArgs},
};
use serde::{Deserialize, Serialize};

use crate::{Binaries, Error, LabNode, Layout, procstat::ProcStat, relay_load::RelayLoad, stats};

/// How long pods get to start and reserve.
const STARTUP: Duration = Duration::from_secs(60);
/// How long one wait for a line lasts while following many pods.
const POLL: Duration = Duration::from_millis(2);

/// The relay's limits in a scale run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Limits {
    /// libp2p-relay's defaults, rate limits included (what `relay` runs
    /// with when given no limit flags).
    Defaults,
    /// Sized for the run: [`sized_limits`].
    Sized,
}

/// The relay limits that `pods` reserving pods and as many simultaneous
/// punches need: a reservation per reserving pod and a circuit per punch
/// (each circuit stays until the relayed connection idles out, 60 s after
/// the punch with the nodes' defaults), twice over for retries and restarts;
/// per-IP rate limits off, since every pod of a node comes from the node's
/// one IP (libp2p's allow 60 reservations and 60 circuits per IP and
/// minute).
pub fn sized_limits(pods: usize) -> RelayLimits {
    let defaults = RelayLimits::default();
    RelayLimits {
        max_reservations: defaults.max_reservations.max(2 * pods),
        max_circuits: defaults.max_circuits.max(2 * pods),
        rate_limits: false,
        ..defaults
    }
}

/// One scale run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleConfig {
    /// Pods behind each of the two nodes.
    pub pods: usize,
    /// Whether the dialing pods' node masquerades `fully-random` (the
    /// reserving pods' node always masquerades plainly: port-preserving
    /// until pods collide).
    pub fully_random: bool,
    /// Candidate mode of every pod.
    #[serde(with = "text")]
    pub candidates: CandidateMode,
    /// The punch range.
    #[serde(with = "text")]
    pub range: PortRange,
    /// The relay's limits.
    pub limits: Limits,
    /// One-way delay on each node's WAN link.
    pub wan_delay: Duration,
    /// How long the dialing pods get to end direct.
    pub deadline: Duration,
}

impl ScaleConfig {
    /// `pods` + `pods` pods behind plain masquerade, the default candidate
    /// mode and range, sized limits, no delay, 60 s.
    pub fn new(pods: usize) -> Self {
        Self {
            pods,
            fully_random: false,
            candidates: CandidateMode::default(),
            range: PortRange::default(),
            limits: Limits::Sized,
            wan_delay: Duration::ZERO,
            deadline: Duration::from_secs(60),
        }
    }

    /// A short name for tables.
    pub fn name(&self) -> String {
        format!(
            "{}+{} pods, {}, {} candidates, range {} ({} ports), {} limits{}",
            self.pods,
            self.pods,
            if self.fully_random {
                "dialing pods behind masquerade fully-random, reserving pods behind masquerade"
            } else {
                "masquerade"
            },
            self.candidates,
            self.range,
            self.range.len(),
            match self.limits {
                Limits::Defaults => "default",
                Limits::Sized => "sized",
            },
            if self.wan_delay.is_zero() {
                String::new()
            } else {
                format!(", {} ms", self.wan_delay.as_millis())
            }
        )
    }

    fn relay_limits(&self) -> RelayLimits {
        match self.limits {
            Limits::Defaults => RelayLimits::default(),
            Limits::Sized => sized_limits(self.pods),
        }
    }
}

/// (De)serializes a field as its `Display` text, read back with `FromStr`.
pub(crate) mod text {
    use std::{fmt::Display, str::FromStr};

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(crate) fn serialize<T: Display, S: Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub(crate) fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(D::Error::custom)
    }
}

/// What one pod did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PodRecord {
    /// Host name (`a0`, `b3`, ...).
    pub name: String,
    /// Milliseconds from start to `ready`.
    pub ready_ms: Option<u64>,
    /// Milliseconds from start to the first relayed connection.
    pub relayed_ms: Option<u64>,
    /// Milliseconds from start to the first `direct` line.
    pub direct_ms: Option<u64>,
    /// DCUtR's time from relayed to direct, as the pod reports it.
    pub punch_ms: Option<u64>,
    /// Punch-socket moves.
    pub moves: u32,
    /// `punch_failed` lines.
    pub punch_failed: u32,
    /// `reservation_failed` lines.
    pub reservation_failed: u32,
    /// Failed dials through the relay (each retried a second later), from
    /// the pod's log.
    pub circuit_retries: u32,
    /// Why those failed, each reason once.
    pub circuit_errors: Vec<String>,
    /// The local port of the direct connection.
    pub direct_port: Option<u16>,
    /// The pod's last `nat` line: its NAT's mapping as the pod classified it.
    #[serde(default)]
    pub nat: Option<String>,
    /// Birthday attempts the pod's `attempt` lines report.
    #[serde(default)]
    pub birthday_attempts: u32,
    /// Each birthday attempt's sockets (hard side) or probes (easy side),
    /// its duration in ms, and its error.
    #[serde(default)]
    pub birthdays: Vec<(u16, u16, u64, Option<String>)>,
}

/// A pod: a `peer` process and what it did.
#[derive(Debug)]
pub struct Pod {
    /// The process.
    pub node: LabNode,
    /// When it started.
    pub started: Instant,
    /// Its peer id, once `ready`.
    pub peer_id: Option<PeerId>,
    /// What it did so far.
    pub record: PodRecord,
}

impl Pod {
    /// Starts `peer` with `args` on `host`.
    pub fn spawn(binaries: &Binaries, host: &Host, args: &PeerArgs) -> Result<Self, Error> {
        let node = LabNode::spawn(host, host.name(), &binaries.peer, args.to_args())?;
        Ok(Self {
            node,
            started: Instant::now(),
            peer_id: None,
            record: PodRecord {
                name: host.name().to_owned(),
                ..PodRecord::default()
            },
        })
    }

    /// Reads every line the pod has printed; returns whether there was one.
    pub fn poll(&mut self, wait: Duration) -> bool {
        let mut any = false;
        let mut wait = wait;
        while let Some(event) = self.node.next_event(wait) {
            wait = Duration::ZERO;
            any = true;
            let ms = self.started.elapsed().as_millis() as u64;
            let r = &mut self.record;
            match event {
                NodeEvent::Ready { peer_id } => {
                    self.peer_id = Some(peer_id);
                    r.ready_ms.get_or_insert(ms);
                }
                NodeEvent::Relayed { .. } => {
                    r.relayed_ms.get_or_insert(ms);
                }
                NodeEvent::Direct {
                    elapsed_ms,
                    local_port,
                    ..
                } if r.direct_ms.is_none() => {
                    r.direct_ms = Some(ms);
                    r.punch_ms = Some(elapsed_ms);
                    r.direct_port = local_port;
                }
                NodeEvent::PunchPortMoved { .. } => r.moves += 1,
                NodeEvent::Nat { mapping, .. } => r.nat = Some(mapping),
                NodeEvent::Attempt {
                    method,
                    sockets,
                    probes,
                    duration_ms,
                    error,
                    ..
                } if method == "birthday" => {
                    r.birthday_attempts += 1;
                    r.birthdays.push((sockets, probes, duration_ms, error));
                }
                NodeEvent::PunchFailed { .. } => r.punch_failed += 1,
                NodeEvent::ReservationFailed { .. } => r.reservation_failed += 1,
                _ => {}
            }
        }
        any
    }

    /// Counts the failed dials through the relay in the pod's log.
    pub fn read_log(&mut self) {
        let stderr = self.node.stderr();
        let failures: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("dialing through the relay failed"))
            .collect();
        self.record.circuit_retries = failures.len() as u32;
        let mut reasons: Vec<String> = failures
            .iter()
            .map(|l| {
                let reason = l.split_once("error=").map_or(*l, |(_, e)| e);
                // The multiaddr differs per pod; keep what follows it.
                reason
                    .rsplit_once(": ")
                    .map_or(reason, |(_, r)| r)
                    .trim_end_matches([')', ']'])
                    .to_owned()
            })
            .collect();
        reasons.sort();
        reasons.dedup();
        self.record.circuit_errors = reasons;
    }
}

/// The figures of one scale run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleRun {
    /// What ran.
    pub config: ScaleConfig,
    /// The relay's limits.
    pub max_reservations: usize,
    /// The relay's circuit limit.
    pub max_circuits: usize,
    /// The relay's per-peer circuit limit.
    pub max_circuits_per_peer: usize,
    /// Whether the relay rate-limited per peer and IP.
    pub rate_limits: bool,
    /// Dialing pods that ended direct.
    pub direct: usize,
    /// Milliseconds from the dialing pods' start to direct: median, p90, max.
    pub time_to_direct_ms: Option<(u64, u64, u64)>,
    /// DCUtR's relayed-to-direct time: median, p90, max.
    pub punch_ms: Option<(u64, u64, u64)>,
    /// Punch-socket moves of the dialing and the reserving pods.
    pub moves: (u32, u32),
    /// Distinct local ports of the dialing pods' direct connections.
    pub distinct_direct_ports: usize,
    /// Failed dials through the relay (retried), all pods.
    pub circuit_retries: u32,
    /// Their reasons.
    pub circuit_errors: Vec<String>,
    /// `reservation_failed` lines of the reserving pods.
    pub reservation_failures: u32,
    /// `punch_failed` lines of the dialing pods.
    pub punch_failures: u32,
    /// The relay's CPU seconds from the dialing pods' start to the end.
    pub relay_cpu_secs: f64,
    /// The relay's peak resident memory (VmHWM), KiB.
    pub relay_peak_kib: u64,
    /// The relay's resident memory with the reservations only, KiB.
    pub relay_idle_kib: u64,
    /// The relay's counts at the end.
    pub relay: Option<RelayLoad>,
    /// Milliseconds the run took from the dialing pods' start.
    pub run_ms: u64,
    /// Every pod's record.
    pub pods: Vec<PodRecord>,
}

/// The relay's flags in a lab: UDP 443 on both of its addresses, identity
/// from seed 1, `limits`.
pub fn relay_args(lab: &Lab, limits: &RelayLimits) -> RelayArgs {
    let listen = lab
        .relay()
        .ips()
        .iter()
        .map(|ip| {
            QuicAddr {
                socket: (*ip, 443).into(),
                peer_id: None,
            }
            .to_multiaddr()
        })
        .collect();
    let mut args = RelayArgs::new(listen);
    args.secret_key_seed = Some(1);
    args.max_reservations = limits.max_reservations;
    args.max_reservations_per_peer = limits.max_reservations_per_peer;
    args.reservation_duration_secs = limits.reservation_duration.as_secs();
    args.max_circuits = limits.max_circuits;
    args.max_circuits_per_peer = limits.max_circuits_per_peer;
    args.max_circuit_duration_secs = limits.max_circuit_duration.as_secs();
    args.max_circuit_bytes = limits.max_circuit_bytes;
    args.no_rate_limits = !limits.rate_limits;
    args
}

/// Starts the relay with `args`; returns it and its address on its first IP.
pub fn start_relay(
    lab: &Lab,
    binaries: &Binaries,
    args: &RelayArgs,
) -> Result<(LabNode, Multiaddr), Error> {
    let relay = lab.relay();
    let node = LabNode::spawn(relay, "relay", &binaries.relay, args.to_args())?;
    let addr = node.wait_relay(relay.ip(), STARTUP)?;
    Ok((node, addr))
}

/// The address others reach `host` at.
pub fn public_ip(lab: &Lab, host: &Host) -> IpAddr {
    match lab.router_of(host) {
        Some(router) if router.nat().translates() => router.wan_ip(),
        _ => host.ip(),
    }
}

/// Why the dials of `pods` through the relay failed, each reason once.
pub fn circuit_errors(pods: &[Pod]) -> Vec<String> {
    let mut errors: Vec<String> = pods
        .iter()
        .flat_map(|p| p.record.circuit_errors.clone())
        .collect();
    errors.sort();
    errors.dedup();
    errors
}

/// Median, p90 and max.
pub fn spread(values: &[u64]) -> Option<(u64, u64, u64)> {
    Some((
        stats::quantile(values, 0.5)?,
        stats::quantile(values, 0.9)?,
        *values.iter().max()?,
    ))
}

/// Runs `config` once.
pub fn run(config: &ScaleConfig) -> Result<ScaleRun, Error> {
    let binaries = Binaries::locate()?;
    // The dialing pods' node: behind `masquerade fully-random` the punch is a
    // birthday punch against the reserving pods' port-preserving node (both
    // fully random would be hard x hard, which stays relayed by design).
    let kind: RouterKind = if config.fully_random {
        KubeNode::FULLY_RANDOM.into()
    } else {
        KubeNode::MASQUERADE.into()
    };
    let lab = Lab::builder()
        .router("a", kind)
        .hosts(config.pods)
        .router("b", KubeNode::MASQUERADE)
        .hosts(config.pods)
        .wan_delay(config.wan_delay)
        .build()?;
    let limits = config.relay_limits();
    let (relay, relay_addr) = start_relay(&lab, &binaries, &relay_args(&lab, &limits))?;
    let peer_args = |dial: Option<PeerId>| {
        let mut args = PeerArgs::new(&relay_addr);
        args.listen = Layout::With443.listen(443);
        args.punch.punch_range = config.range;
        args.punch.candidates = config.candidates;
        args.dial = dial;
        args.persist = dial.is_some();
        args.timeout_secs = config.deadline.as_secs().max(1) + 60;
        args
    };

    // The reserving pods start together, as a deployment does.
    let mut reserving = (0..config.pods)
        .map(|i| Pod::spawn(&binaries, lab.host(&format!("b{i}")), &peer_args(None)))
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    while reserving.iter().any(|p| p.peer_id.is_none()) {
        if started.elapsed() > STARTUP {
            let missing: Vec<_> = reserving
                .iter()
                .filter(|p| p.peer_id.is_none())
                .map(|p| p.record.name.clone())
                .collect();
            return Err(reserving[0]
                .node
                .error(format!("pods {missing:?} not ready within {STARTUP:?}")));
        }
        for pod in &mut reserving {
            pod.poll(POLL);
        }
    }
    // Let the reservations settle (moves, a second observer) before the
    // punches begin.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(2) {
        for pod in &mut reserving {
            pod.poll(POLL);
        }
    }
    let idle = ProcStat::of(relay.pid()).unwrap_or_default();

    // Every dialing pod starts at the same moment.
    let mut dialing = (0..config.pods)
        .map(|i| {
            Pod::spawn(
                &binaries,
                lab.host(&format!("a{i}")),
                &peer_args(reserving[i].peer_id),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    while dialing.iter().any(|p| p.record.direct_ms.is_none()) && start.elapsed() < config.deadline
    {
        let mut any = false;
        for pod in dialing.iter_mut().chain(reserving.iter_mut()) {
            any |= pod.poll(Duration::ZERO);
        }
        if !any {
            std::thread::sleep(POLL);
        }
    }
    let run_ms = start.elapsed().as_millis() as u64;
    // The relay logs its counts at most once a second.
    let tail = Instant::now();
    while tail.elapsed() < Duration::from_millis(1500) {
        for pod in dialing.iter_mut().chain(reserving.iter_mut()) {
            pod.poll(POLL);
        }
    }
    let end = ProcStat::of(relay.pid()).unwrap_or_default();
    for pod in dialing.iter_mut().chain(reserving.iter_mut()) {
        pod.read_log();
    }

    let direct_times: Vec<u64> = dialing.iter().filter_map(|p| p.record.direct_ms).collect();
    let punch_times: Vec<u64> = dialing.iter().filter_map(|p| p.record.punch_ms).collect();
    let ports: std::collections::BTreeSet<u16> = dialing
        .iter()
        .filter_map(|p| p.record.direct_port)
        .collect();
    let circuit_errors = circuit_errors(&dialing);
    Ok(ScaleRun {
        config: config.clone(),
        max_reservations: limits.max_reservations,
        max_circuits: limits.max_circuits,
        max_circuits_per_peer: limits.max_circuits_per_peer,
        rate_limits: limits.rate_limits,
        direct: direct_times.len(),
        time_to_direct_ms: spread(&direct_times),
        punch_ms: spread(&punch_times),
        moves: (
            dialing.iter().map(|p| p.record.moves).sum(),
            reserving.iter().map(|p| p.record.moves).sum(),
        ),
        distinct_direct_ports: ports.len(),
        circuit_retries: dialing.iter().map(|p| p.record.circuit_retries).sum(),
        circuit_errors,
        reservation_failures: reserving.iter().map(|p| p.record.reservation_failed).sum(),
        punch_failures: dialing.iter().map(|p| p.record.punch_failed).sum(),
        relay_cpu_secs: end.cpu_secs - idle.cpu_secs,
        relay_peak_kib: end.hwm_kib,
        relay_idle_kib: idle.rss_kib,
        relay: RelayLoad::last_in(&relay.stderr()),
        run_ms,
        pods: dialing
            .iter()
            .chain(&reserving)
            .map(|p| p.record.clone())
            .collect(),
    })
}
