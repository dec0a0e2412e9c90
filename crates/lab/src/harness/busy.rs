//! A busy relay: `targets` pods behind one node hold reservations, and
//! short-lived dialing pods behind another node reach them through the relay
//! at a steady rate, punch and leave, in waves. Each wave records what the
//! relay held and refused, its CPU time, and its resident memory before,
//! during and after (once the circuits are gone).
//!
//! The `scale` benchmark runs 200 punches a minute (`scale --busy`);
//! `crates/lab/tests/busy_relay.rs` a smaller one in CI.

use std::time::{Duration, Instant};

use natlab::{KubeNode, Lab};
use punchport_node::{RelayLimits, cli::PeerArgs};
use serde::{Deserialize, Serialize};

use crate::{
    Binaries, Error, LabNode, Layout,
    procstat::ProcStat,
    relay_load::RelayLoad,
    scale::{Pod, circuit_errors, relay_args, spread, start_relay},
};

/// How long a wave's last dialers get to finish, and its circuits to close.
const DRAIN: Duration = Duration::from_secs(60);

/// One busy-relay run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BusyConfig {
    /// Reserving pods (behind router `a`).
    pub targets: usize,
    /// Hosts the dialing pods take turns on (behind router `b`).
    pub dialer_hosts: usize,
    /// Punches per wave.
    pub punches: usize,
    /// How long a wave's dialing pods take to start, evenly spread.
    pub period: Duration,
    /// Waves, one after another.
    pub waves: usize,
    /// The relay's limits.
    #[serde(skip, default)]
    pub limits: RelayLimits,
}

/// What one wave did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BusyWave {
    /// Dialing pods started.
    pub punches: usize,
    /// Those that ended direct.
    pub direct: usize,
    /// Milliseconds from a dialing pod's start to direct: median, p90, max.
    pub time_to_direct_ms: Option<(u64, u64, u64)>,
    /// DCUtR's relayed-to-direct time: median, p90, max.
    pub punch_ms: Option<(u64, u64, u64)>,
    /// Failed dials through the relay (retried), and why.
    pub circuit_retries: u32,
    /// Their reasons, each once.
    pub circuit_errors: Vec<String>,
    /// The most dialing pods alive at once.
    pub concurrent_dialers: usize,
    /// Milliseconds from the first dialing pod's start to the last one's
    /// direct line.
    pub duration_ms: u64,
    /// The relay's resident memory before the wave, KiB.
    pub rss_before_kib: u64,
    /// The most resident memory seen during the wave (sampled), KiB.
    pub rss_peak_kib: u64,
    /// Resident memory once the wave's circuits were closed, KiB.
    pub rss_after_kib: u64,
    /// The relay's CPU seconds over the wave.
    pub relay_cpu_secs: f64,
    /// Milliseconds from the wave's last direct line until the relay held
    /// no circuit.
    pub drain_ms: u64,
    /// The relay's counts at the end of the wave (peaks over the whole run
    /// so far).
    pub relay: RelayLoad,
}

/// The figures of a busy-relay run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BusyRun {
    /// What ran.
    pub config: BusyConfig,
    /// The relay's limits, as flags.
    pub max_reservations: usize,
    /// Its circuit limit.
    pub max_circuits: usize,
    /// Its per-peer circuit limit.
    pub max_circuits_per_peer: usize,
    /// The relay's resident memory before any pod, KiB.
    pub rss_empty_kib: u64,
    /// With the reservations only, before the first wave, KiB.
    pub rss_reserved_kib: u64,
    /// The waves.
    pub waves: Vec<BusyWave>,
}

/// The last `relay load` line of `relay`, waiting up to 1.5 s for the relay
/// to log its latest counts.
fn settled_load(relay: &LabNode) -> RelayLoad {
    std::thread::sleep(Duration::from_millis(1500));
    RelayLoad::last_in(&relay.stderr()).unwrap_or_default()
}

/// Runs `config`.
pub fn run(config: &BusyConfig) -> Result<BusyRun, Error> {
    let binaries = Binaries::locate()?;
    let lab = Lab::builder()
        .router("a", KubeNode::MASQUERADE)
        .hosts(config.targets)
        .router("b", KubeNode::MASQUERADE)
        .hosts(config.dialer_hosts)
        .build()?;
    let limits = &config.limits;
    let (relay, relay_addr) = start_relay(&lab, &binaries, &relay_args(&lab, limits))?;
    let relay_pid = relay.pid();
    let rss_empty_kib = ProcStat::of(relay_pid).unwrap_or_default().rss_kib;
    let mut target_args = PeerArgs::new(&relay_addr);
    target_args.listen = Layout::With443.listen(443);
    let mut targets = (0..config.targets)
        .map(|i| Pod::spawn(&binaries, lab.host(&format!("a{i}")), &target_args))
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    while targets.iter().any(|p| p.peer_id.is_none()) {
        if started.elapsed() > Duration::from_secs(60) {
            return Err(relay.error("the reserving pods were not ready within 60 s".into()));
        }
        for pod in &mut targets {
            pod.poll(Duration::from_millis(2));
        }
    }
    let ids: Vec<_> = targets.iter().filter_map(|p| p.peer_id).collect();
    let rss_reserved_kib = ProcStat::of(relay_pid).unwrap_or_default().rss_kib;

    let mut waves = Vec::new();
    let mut next_host = 0;
    for _ in 0..config.waves {
        let before = ProcStat::of(relay_pid).unwrap_or_default();
        let interval = config.period / config.punches.max(1) as u32;
        let wave_start = Instant::now();
        let mut live: Vec<Option<Pod>> = (0..config.dialer_hosts).map(|_| None).collect();
        let mut done: Vec<Pod> = Vec::new();
        let mut started = 0;
        let mut rss_peak_kib = before.rss_kib;
        let mut concurrent = 0;
        let mut last_sample = Instant::now();
        while started < config.punches || live.iter().any(Option::is_some) {
            if wave_start.elapsed() > config.period + DRAIN {
                break;
            }
            // Start the next dialing pod when its time has come, on a host
            // whose previous pod has left.
            if started < config.punches && wave_start.elapsed() >= interval * started as u32 {
                let free = (0..config.dialer_hosts)
                    .map(|k| (next_host + k) % config.dialer_hosts)
                    .find(|h| live[*h].is_none());
                if let Some(host) = free {
                    let mut args = PeerArgs::new(&relay_addr);
                    args.dial = Some(ids[started % ids.len()]);
                    args.timeout_secs = 30;
                    let pod = Pod::spawn(&binaries, lab.host(&format!("b{host}")), &args)?;
                    live[host] = Some(pod);
                    next_host = (host + 1) % config.dialer_hosts;
                    started += 1;
                }
            }
            let mut any = false;
            for slot in &mut live {
                if let Some(pod) = slot {
                    any |= pod.poll(Duration::ZERO);
                    if pod.node.wait_exit(Duration::ZERO).is_some() {
                        pod.poll(Duration::ZERO);
                        pod.read_log();
                        done.push(slot.take().expect("a live pod"));
                    }
                }
            }
            for pod in &mut targets {
                any |= pod.poll(Duration::ZERO);
            }
            concurrent = concurrent.max(live.iter().filter(|s| s.is_some()).count());
            if last_sample.elapsed() > Duration::from_millis(200) {
                last_sample = Instant::now();
                if let Some(now) = ProcStat::of(relay_pid) {
                    rss_peak_kib = rss_peak_kib.max(now.rss_kib);
                }
            }
            if !any {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        for slot in &mut live {
            if let Some(mut pod) = slot.take() {
                pod.poll(Duration::ZERO);
                pod.read_log();
                done.push(pod);
            }
        }
        let duration_ms = wave_start.elapsed().as_millis() as u64;
        // The dialing pods are gone; the relay closes their connections
        // (and so their circuits) at the QUIC idle timeout at the latest.
        let drain = Instant::now();
        let mut load = settled_load(&relay);
        while load.circuits > 0 && drain.elapsed() < DRAIN {
            load = settled_load(&relay);
        }
        let drain_ms = drain.elapsed().as_millis() as u64;
        let after = ProcStat::of(relay_pid).unwrap_or_default();
        let direct: Vec<u64> = done.iter().filter_map(|p| p.record.direct_ms).collect();
        let punch: Vec<u64> = done.iter().filter_map(|p| p.record.punch_ms).collect();
        let circuit_errors = circuit_errors(&done);
        waves.push(BusyWave {
            punches: started,
            direct: direct.len(),
            time_to_direct_ms: spread(&direct),
            punch_ms: spread(&punch),
            circuit_retries: done.iter().map(|p| p.record.circuit_retries).sum(),
            circuit_errors,
            concurrent_dialers: concurrent,
            duration_ms,
            rss_before_kib: before.rss_kib,
            rss_peak_kib,
            rss_after_kib: after.rss_kib,
            relay_cpu_secs: after.cpu_secs - before.cpu_secs,
            drain_ms,
            relay: load,
        });
    }
    Ok(BusyRun {
        config: config.clone(),
        max_reservations: limits.max_reservations,
        max_circuits: limits.max_circuits,
        max_circuits_per_peer: limits.max_circuits_per_peer,
        rss_empty_kib,
        rss_reserved_kib,
        waves,
    })
}
