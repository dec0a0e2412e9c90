//! Soak: one relay and one reserving peer run for a long time while a
//! dialing peer punches to the reserving one every few seconds (a fresh
//! `peer --dial` process each time, as a pod that comes and goes), and the
//! long-lived processes are sampled each minute: descriptors, UDP sockets,
//! threads, resident memory, and the reserving peer's `maps` line (the
//! sizes of punchport's own maps, `--maps-interval-secs`).
//!
//! The `soak` benchmark (`src/bin/soak.rs`) runs it; it is not a CI test.

use std::time::{Duration, Instant};

use natlab::{Lab, Nat};
use punchport_node::{NodeEvent, RelayLimits, cli::PeerArgs};
use serde::{Deserialize, Serialize};

use crate::{
    Binaries, Error, LabNode, Layout,
    procstat::ProcStat,
    relay_load::RelayLoad,
    scale::{Pod, relay_args, start_relay},
};

/// One soak run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakConfig {
    /// How long it runs.
    pub duration: Duration,
    /// Time between the starts of two punches.
    pub every: Duration,
    /// Time between two samples.
    pub sample: Duration,
}

/// The sizes of punchport's maps in one `maps` line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maps {
    /// Punches followed.
    pub punches: usize,
    /// DCUtR dials under way.
    pub dials: usize,
    /// Connections whose observations are followed.
    pub connections: usize,
    /// Connections whose source socket the transport recorded.
    pub sources: usize,
    /// Fresh birthday sockets.
    pub fresh_sockets: usize,
    /// Birthday attempts, dials and peers.
    pub birthday: (usize, usize, usize),
    /// Peers and IPs the birthday limits remember.
    pub limited: (usize, usize),
    /// libp2p-dcutr's entries (dials since it was last replaced), which
    /// [`Maps::total`] leaves out: that map is upstream's.
    #[serde(default)]
    pub dcutr_entries: usize,
    /// How often libp2p-dcutr was replaced to bound them.
    #[serde(default)]
    pub dcutr_renewals: u64,
}

impl Maps {
    fn of(event: &NodeEvent) -> Option<Self> {
        match *event {
            NodeEvent::Maps {
                punches,
                dials,
                connections,
                sources,
                fresh_sockets,
                birthday_attempts,
                birthday_dials,
                birthday_peers,
                limited,
                dcutr_entries,
                dcutr_renewals,
            } => Some(Self {
                punches,
                dials,
                connections,
                sources,
                fresh_sockets,
                birthday: (birthday_attempts, birthday_dials, birthday_peers),
                limited,
                dcutr_entries,
                dcutr_renewals,
            }),
            _ => None,
        }
    }

    /// Every entry of every map.
    pub fn total(&self) -> usize {
        self.punches
            + self.dials
            + self.connections
            + self.sources
            + self.fresh_sockets
            + self.birthday.0
            + self.birthday.1
            + self.birthday.2
            + self.limited.0
            + self.limited.1
    }
}

/// One sample.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the start.
    pub at_secs: u64,
    /// Punches started so far.
    pub punches: usize,
    /// Those that ended direct.
    pub direct: usize,
    /// The relay.
    pub relay: ProcStat,
    /// The reserving peer.
    pub peer: ProcStat,
    /// The reserving peer's last `maps` line.
    pub maps: Maps,
    /// The relay's counts.
    pub relay_load: RelayLoad,
}

/// The figures of a soak run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakRun {
    /// What ran.
    pub config: SoakConfig,
    /// The samples, the first before any punch.
    pub samples: Vec<Sample>,
    /// Milliseconds from each dialing peer's start to direct.
    pub times_ms: Vec<u64>,
}

/// Runs `config`, calling `on_sample` with each sample as it is taken.
pub fn run(config: &SoakConfig, mut on_sample: impl FnMut(&Sample)) -> Result<SoakRun, Error> {
    let binaries = Binaries::locate()?;
    let lab = Lab::builder()
        .router("a", Nat::PortRestricted)
        .router("b", Nat::PortRestricted)
        .build()?;
    let limits = RelayLimits {
        rate_limits: false,
        max_circuits: 64,
        max_circuits_per_peer: 16,
        ..RelayLimits::default()
    };
    let (relay, relay_addr) = start_relay(&lab, &binaries, &relay_args(&lab, &limits))?;
    let mut args = PeerArgs::new(&relay_addr);
    args.listen = Layout::With443.listen(443);
    let sample_secs = config.sample.as_secs().max(1);
    args.maps_interval_secs = Some(sample_secs);
    let peer = LabNode::spawn(lab.host("a0"), "a0", &binaries.peer, args.to_args())?;
    let target = peer.wait_ready()?;
    let mut maps = Maps::default();
    let read_peer = |maps: &mut Maps| {
        while let Some(event) = peer.next_event(Duration::ZERO) {
            if let Some(m) = Maps::of(&event) {
                *maps = m;
            }
        }
    };
    let sample = |at: Duration, punches, direct, maps: Maps| Sample {
        at_secs: at.as_secs(),
        punches,
        direct,
        relay: ProcStat::of(relay.pid()).unwrap_or_default(),
        peer: ProcStat::of(peer.pid()).unwrap_or_default(),
        maps,
        relay_load: RelayLoad::last_in(&relay.stderr()).unwrap_or_default(),
    };
    let start = Instant::now();
    let mut samples = Vec::new();
    // The first `maps` line comes at once.
    std::thread::sleep(Duration::from_secs(1));
    read_peer(&mut maps);
    let first = sample(start.elapsed(), 0, 0, maps);
    on_sample(&first);
    samples.push(first);
    let mut next_sample = start + config.sample;
    let mut next_punch = start;
    let mut dialer: Option<Pod> = None;
    let mut punches = 0;
    let mut times_ms = Vec::new();
    let mut dial_args = PeerArgs::new(&relay_addr);
    dial_args.dial = Some(target);
    dial_args.timeout_secs = 30;
    while start.elapsed() < config.duration {
        read_peer(&mut maps);
        if let Some(pod) = &mut dialer {
            pod.poll(Duration::ZERO);
            if pod.node.wait_exit(Duration::ZERO).is_some() {
                pod.poll(Duration::ZERO);
                if let Some(ms) = pod.record.direct_ms {
                    times_ms.push(ms);
                }
                dialer = None;
            }
        }
        if dialer.is_none() && Instant::now() >= next_punch {
            dialer = Some(Pod::spawn(&binaries, lab.host("b0"), &dial_args)?);
            punches += 1;
            next_punch = Instant::now() + config.every;
        }
        if Instant::now() >= next_sample {
            next_sample += config.sample;
            let s = sample(start.elapsed(), punches, times_ms.len(), maps);
            on_sample(&s);
            samples.push(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(SoakRun {
        config: config.clone(),
        samples,
        times_ms,
    })
}
