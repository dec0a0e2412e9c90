//! Bulk transfer over the punched direct connection, against stock
//! libp2p-quic's direct connection and the relayed connection, in one lab.
//!
//! Each pair is two in-process swarms, one in host `a0`'s namespace and one
//! in `b0`'s (a tokio runtime built inside the namespace: its worker threads
//! and so every socket the swarm opens are in it), meeting through the
//! `relay` binary:
//!
//! - *punchport*: `punchport::new`'s transport and behaviour, the punch
//!   socket on the first free port of the range;
//! - *stock*: `with_quic()` and libp2p-dcutr, listening on one port (with a
//!   single listener stock libp2p-quic punches from it every time);
//! - *relayed*: stock, without DCUtR: the relayed connection only.
//!
//! Once a pair is direct its relayed connection is closed, so that the
//! stream (libp2p-stream, `/punchport/bulk/1`) takes the direct one. The
//! sender writes `size` bytes and closes; the receiver counts until the end
//! (or the relay cuts the circuit) and reports the bytes and the time of the
//! last one. Transfers of the pairs alternate, round after round, on the
//! same links.

use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, dcutr, identify,
    identity::Keypair,
    multiaddr::Protocol,
    noise, relay,
    swarm::{ConnectionId, NetworkBehaviour, SwarmEvent, behaviour::toggle::Toggle},
    yamux,
};
use natlab::{Host, Lab, Nat};
use punchport::QuicAddr;
use punchport_node::RelayLimits;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::{
    Binaries, Error, LabNode,
    scale::{relay_args, start_relay},
};

const BULK: StreamProtocol = StreamProtocol::new("/punchport/bulk/1");
/// How long a pair gets to reserve, connect and punch.
const SETUP: Duration = Duration::from_secs(30);
/// How long one transfer may take.
const TRANSFER: Duration = Duration::from_secs(120);
const CHUNK: usize = 64 * 1024;
/// How long after the first direct connection a pair waits for DCUtR's
/// other dials to end.
const SETTLE: Duration = Duration::from_secs(2);

/// Which connection a pair transfers over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PathKind {
    /// punchport's punched direct connection.
    Punchport,
    /// Stock libp2p-quic's punched direct connection.
    Stock,
    /// The relayed connection, under the relay's limits.
    Relayed,
}

impl PathKind {
    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            PathKind::Punchport => "punchport direct",
            PathKind::Stock => "stock libp2p-quic direct",
            PathKind::Relayed => "relayed",
        }
    }
}

/// One throughput run: a lab, its links, the pairs, the rounds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThroughputConfig {
    /// One-way delay on each router's WAN link.
    pub wan_delay: Duration,
    /// Each router's WAN link rate, bits per second (`None`: unshaped).
    pub wan_rate: Option<u64>,
    /// Bytes per direct transfer.
    pub size: usize,
    /// Bytes the relayed pair tries to send.
    pub relayed_size: usize,
    /// Rounds of transfers (each pair once per round).
    pub rounds: usize,
    /// The relay's limits for the relayed pair (the defaults: 128 KiB and
    /// 2 minutes per circuit).
    #[serde(skip, default)]
    pub relay_limits: RelayLimits,
}

/// One transfer.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Transfer {
    /// The pair.
    pub path: PathKind,
    /// The round.
    pub round: usize,
    /// Bytes the receiver got.
    pub bytes: u64,
    /// Milliseconds from the sender's first write to the receiver's last
    /// byte.
    pub ms: f64,
    /// Whether the stream ended before every byte arrived (the relay cut
    /// the circuit).
    pub cut: bool,
}

impl Transfer {
    /// Megabits per second.
    pub fn mbit_s(&self) -> f64 {
        if self.ms <= 0.0 {
            return 0.0;
        }
        self.bytes as f64 * 8.0 / (self.ms / 1000.0) / 1e6
    }
}

/// The figures of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThroughputRun {
    /// What ran.
    pub config: ThroughputConfig,
    /// The relay's per-circuit byte limit.
    pub max_circuit_bytes: u64,
    /// Its per-circuit duration limit, seconds.
    pub max_circuit_duration_secs: u64,
    /// Every transfer, in the order they ran.
    pub transfers: Vec<Transfer>,
}

impl ThroughputRun {
    /// The median rate of `path`'s complete transfers, Mbit/s.
    pub fn median_mbit_s(&self, path: PathKind) -> Option<f64> {
        let mut rates: Vec<f64> = self
            .transfers
            .iter()
            .filter(|t| t.path == path && !t.cut)
            .map(Transfer::mbit_s)
            .collect();
        rates.sort_by(f64::total_cmp);
        rates.get(rates.len().saturating_sub(1) / 2).copied()
    }

    /// punchport's median over stock's.
    pub fn ratio(&self) -> Option<f64> {
        Some(self.median_mbit_s(PathKind::Punchport)? / self.median_mbit_s(PathKind::Stock)?)
    }
}

#[derive(NetworkBehaviour)]
struct Peer {
    relay_client: relay::client::Behaviour,
    identify: identify::Behaviour,
    punchport: Toggle<punchport::Behaviour>,
    dcutr: Toggle<dcutr::Behaviour>,
    stream: libp2p_stream::Behaviour,
}

fn build(kind: PathKind) -> Result<Swarm<Peer>, String> {
    let keypair = Keypair::generate_ed25519();
    let builder = SwarmBuilder::with_existing_identity(keypair.clone()).with_tokio();
    let config = |c: libp2p::swarm::Config| {
        c.with_idle_connection_timeout(Duration::from_secs(300))
            .with_substream_upgrade_protocol_override(libp2p::core::upgrade::Version::V1Lazy)
    };
    let behaviour = |key: &Keypair,
                     relay_client: relay::client::Behaviour,
                     punch: Option<punchport::Behaviour>| Peer {
        relay_client,
        identify: identify::Behaviour::new(identify::Config::new(
            "/punchport-throughput/1".into(),
            key.public(),
        )),
        dcutr: (kind == PathKind::Stock)
            .then(|| dcutr::Behaviour::new(key.public().to_peer_id()))
            .into(),
        punchport: punch.into(),
        stream: libp2p_stream::Behaviour::new(),
    };
    let e = |e: &dyn std::fmt::Display| e.to_string();
    Ok(match kind {
        PathKind::Punchport => {
            let (transport, punch) = punchport::new(&keypair);
            builder
                .with_other_transport(|_| transport)
                .map_err(|x| e(&x))?
                .with_relay_client(noise::Config::new, yamux::Config::default)
                .map_err(|x| e(&x))?
                .with_behaviour(|key, relay| behaviour(key, relay, Some(punch)))
                .map_err(|x| e(&x))?
                .with_swarm_config(config)
                .build()
        }
        PathKind::Stock | PathKind::Relayed => builder
            .with_quic()
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(|x| e(&x))?
            .with_behaviour(|key, relay| behaviour(key, relay, None))
            .map_err(|x| e(&x))?
            .with_swarm_config(config)
            .build(),
    })
}

fn listen_addr(kind: PathKind) -> Multiaddr {
    let port = match kind {
        // The first free port of the range.
        PathKind::Punchport => 0,
        PathKind::Stock => 41000,
        PathKind::Relayed => 42000,
    };
    QuicAddr {
        socket: ([0, 0, 0, 0], port).into(),
        peer_id: None,
    }
    .to_multiaddr()
}

/// What a receiving side reports of one stream.
#[derive(Debug)]
struct Received {
    bytes: u64,
    last: Instant,
    cut: bool,
}

/// Runs one side of a pair: listens, reaches the relay, then either reserves
/// (`dial: None`, the receiver) or dials `dial` through the relay and, once
/// direct (or, for the relayed pair, relayed), closes the relayed
/// connection. Reports its peer id on `ready`, then serves.
async fn side(
    kind: PathKind,
    relay: Multiaddr,
    dial: Option<PeerId>,
    ready: oneshot::Sender<Result<PeerId, String>>,
    mut sends: mpsc::UnboundedReceiver<(usize, oneshot::Sender<Instant>)>,
    received: mpsc::UnboundedSender<Received>,
) {
    let mut swarm = match build(kind) {
        Ok(swarm) => swarm,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if let Err(e) = swarm.listen_on(listen_addr(kind)) {
        let _ = ready.send(Err(e.to_string()));
        return;
    }
    let mut control = swarm.behaviour().stream.new_control();
    let mut incoming = match control.accept(BULK) {
        Ok(incoming) => incoming,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    tokio::spawn(async move {
        while let Some((_, mut stream)) = incoming.next().await {
            let received = received.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; CHUNK];
                let mut bytes = 0u64;
                let mut last = Instant::now();
                let cut = loop {
                    match stream.read(&mut buffer).await {
                        Ok(0) => {
                            // Tell the sender it all arrived, so that it
                            // keeps the stream until then.
                            let _ = stream.write_all(&bytes.to_be_bytes()).await;
                            let _ = stream.close().await;
                            break false;
                        }
                        Ok(n) => {
                            bytes += n as u64;
                            last = Instant::now();
                        }
                        Err(_) => break true,
                    }
                };
                let _ = received.send(Received { bytes, last, cut });
            });
        }
    });
    let relay_peer = match relay.iter().last() {
        Some(Protocol::P2p(id)) => id,
        _ => {
            let _ = ready.send(Err("the relay address has no peer id".into()));
            return;
        }
    };
    if let Err(e) = swarm.dial(relay.clone()) {
        let _ = ready.send(Err(e.to_string()));
        return;
    }
    let deadline = tokio::time::Instant::now() + SETUP;
    let mut ready = Some(ready);
    let mut identified = false;
    let mut relayed: Vec<ConnectionId> = Vec::new();
    let mut directs: Vec<ConnectionId> = Vec::new();
    let mut settle_at: Option<tokio::time::Instant> = None;
    let mut settled = false;
    let mut target = None;
    let fail = |ready: &mut Option<oneshot::Sender<Result<PeerId, String>>>, why: String| {
        if let Some(ready) = ready.take() {
            let _ = ready.send(Err(why));
        }
    };
    loop {
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(PeerEvent::Identify(identify::Event::Received { peer_id, connection_id, info })) => {
                    if let Some(punch) = swarm.behaviour_mut().punchport.as_mut() {
                        punch.on_identify(connection_id, &info);
                    }
                    if peer_id == relay_peer && !identified {
                        identified = true;
                        let circuit = relay.clone().with(Protocol::P2pCircuit);
                        match dial {
                            None => {
                                if let Err(e) = swarm.listen_on(circuit) {
                                    fail(&mut ready, e.to_string());
                                }
                            }
                            Some(peer) => {
                                if let Err(e) = swarm.dial(circuit.with(Protocol::P2p(peer))) {
                                    fail(&mut ready, e.to_string());
                                }
                            }
                        }
                    }
                }
                SwarmEvent::Behaviour(PeerEvent::RelayClient(relay::client::Event::ReservationReqAccepted { .. })) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Ok(*swarm.local_peer_id()));
                    }
                }
                SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } if peer_id != relay_peer => {
                    if endpoint.is_relayed() {
                        relayed.push(connection_id);
                        if kind == PathKind::Relayed && dial.is_some() {
                            target = Some(peer_id);
                            if let Some(ready) = ready.take() {
                                let _ = ready.send(Ok(*swarm.local_peer_id()));
                            }
                        }
                    } else {
                        target = Some(peer_id);
                        directs.push(connection_id);
                        settle_at.get_or_insert(tokio::time::Instant::now() + SETTLE);
                    }
                }
                SwarmEvent::ConnectionClosed { connection_id, .. } => {
                    relayed.retain(|id| *id != connection_id);
                    directs.retain(|id| *id != connection_id);
                    if dial.is_some() && settled && relayed.is_empty() && directs.len() == 1 && let Some(ready) = ready.take() {
                        let _ = ready.send(Ok(*swarm.local_peer_id()));
                    }
                }
                SwarmEvent::ConnectionEstablished { .. } => {}
                SwarmEvent::OutgoingConnectionError { error, peer_id, .. } if peer_id != Some(relay_peer) || ready.is_some() => {
                    tracing::debug!(%error, "a dial failed");
                }
                _ => {}
            },
            Some((size, started)) = sends.recv() => {
                let Some(peer) = target else { continue };
                let mut control = control.clone();
                tokio::spawn(async move {
                    let Ok(mut stream) = control.open_stream(peer, BULK).await else {
                        return;
                    };
                    let chunk = vec![0xA5u8; CHUNK];
                    let _ = started.send(Instant::now());
                    let mut left = size;
                    while left > 0 {
                        let n = left.min(CHUNK);
                        if stream.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                        left -= n;
                    }
                    let _ = stream.close().await;
                    let mut ack = [0u8; 8];
                    let _ = stream.read_exact(&mut ack).await;
                });
            }
            // DCUtR's dials of both sides may each end in a direct
            // connection; once they are done, keep the first one only, so
            // that the stream takes it.
            () = tokio::time::sleep_until(settle_at.unwrap_or(deadline)), if settle_at.is_some() && !settled && dial.is_some() => {
                settled = true;
                for id in relayed.iter().chain(directs.iter().skip(1)) {
                    swarm.close_connection(*id);
                }
                if relayed.is_empty() && directs.len() == 1 && let Some(ready) = ready.take() {
                    let _ = ready.send(Ok(*swarm.local_peer_id()));
                }
            }
            () = tokio::time::sleep_until(deadline), if ready.is_some() => {
                fail(&mut ready, format!("{kind:?}: not ready within {SETUP:?}"));
            }
        }
    }
}

/// A pair of sides running in the two hosts' runtimes.
struct Pair {
    kind: PathKind,
    sends: mpsc::UnboundedSender<(usize, oneshot::Sender<Instant>)>,
    /// Kept open: a closed channel would end the receiver's `select!`
    /// branch on every turn.
    _receiver_sends: mpsc::UnboundedSender<(usize, oneshot::Sender<Instant>)>,
    received: mpsc::UnboundedReceiver<Received>,
}

/// A multi-thread runtime whose threads are in `host`'s namespace.
fn runtime_in(host: &Host) -> Result<tokio::runtime::Runtime, Error> {
    host.run(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
    })?
    .map_err(|e| Error::Node {
        node: host.name().to_owned(),
        what: format!("building a runtime: {e}"),
        stderr: String::new(),
    })
}

fn start_pair(
    kind: PathKind,
    relay: &Multiaddr,
    a: &tokio::runtime::Runtime,
    b: &tokio::runtime::Runtime,
) -> Result<Pair, Error> {
    let err = |what: String| Error::Node {
        node: format!("{kind:?} pair"),
        what,
        stderr: String::new(),
    };
    let (a_ready, a_id) = oneshot::channel();
    let (a_sends, a_sends_rx) = mpsc::unbounded_channel::<(usize, oneshot::Sender<Instant>)>();
    let (received_tx, received) = mpsc::unbounded_channel();
    a.spawn(side(
        kind,
        relay.clone(),
        None,
        a_ready,
        a_sends_rx,
        received_tx,
    ));
    let a_id = a_id
        .blocking_recv()
        .map_err(|_| err("the receiver stopped".into()))?
        .map_err(err)?;
    let (b_ready, b_id) = oneshot::channel();
    let (sends, b_sends_rx) = mpsc::unbounded_channel();
    let (b_received, _unused) = mpsc::unbounded_channel();
    b.spawn(side(
        kind,
        relay.clone(),
        Some(a_id),
        b_ready,
        b_sends_rx,
        b_received,
    ));
    b_id.blocking_recv()
        .map_err(|_| err("the sender stopped".into()))?
        .map_err(err)?;
    Ok(Pair {
        kind,
        sends,
        _receiver_sends: a_sends,
        received,
    })
}

fn transfer(pair: &mut Pair, size: usize, round: usize) -> Result<Transfer, Error> {
    let err = |what: String| Error::Node {
        node: format!("{:?} pair", pair.kind),
        what,
        stderr: String::new(),
    };
    let (started_tx, started) = oneshot::channel();
    pair.sends
        .send((size, started_tx))
        .map_err(|_| err("the sender stopped".into()))?;
    let started = started
        .blocking_recv()
        .map_err(|_| err("no stream opened".into()))?;
    let deadline = Instant::now() + TRANSFER;
    loop {
        match pair.received.try_recv() {
            Ok(r) => {
                return Ok(Transfer {
                    path: pair.kind,
                    round,
                    bytes: r.bytes,
                    ms: r.last.saturating_duration_since(started).as_secs_f64() * 1000.0,
                    cut: r.cut || r.bytes < size as u64,
                });
            }
            Err(mpsc::error::TryRecvError::Empty) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return Err(err(format!("no end of the transfer within {TRANSFER:?}"))),
        }
    }
}

/// Runs `config`: the relay with `config.relay_limits`, the three pairs,
/// `rounds` rounds of transfers.
pub fn run(config: &ThroughputConfig) -> Result<ThroughputRun, Error> {
    let binaries = Binaries::locate()?;
    let mut builder = Lab::builder()
        .router("a", Nat::PortRestricted)
        .router("b", Nat::PortRestricted)
        .wan_delay(config.wan_delay);
    if let Some(rate) = config.wan_rate {
        builder = builder.wan_rate(rate);
    }
    let lab = builder.build()?;
    let limits = &config.relay_limits;
    let (_relay, relay_addr): (LabNode, Multiaddr) =
        start_relay(&lab, &binaries, &relay_args(&lab, limits))?;
    let a = runtime_in(lab.host("a0"))?;
    let b = runtime_in(lab.host("b0"))?;
    let mut pairs = Vec::new();
    for kind in [PathKind::Punchport, PathKind::Stock, PathKind::Relayed] {
        pairs.push(start_pair(kind, &relay_addr, &a, &b)?);
    }
    let mut transfers = Vec::new();
    for round in 0..config.rounds {
        for pair in &mut pairs {
            let size = match pair.kind {
                PathKind::Relayed => config.relayed_size,
                _ => config.size,
            };
            // The relayed pair's circuit is cut once; it runs in the first
            // round only.
            if pair.kind == PathKind::Relayed && round > 0 {
                continue;
            }
            let t = transfer(pair, size, round)?;
            tracing::info!(?t, "transfer");
            transfers.push(t);
        }
    }
    drop(pairs);
    a.shutdown_timeout(Duration::from_secs(1));
    b.shutdown_timeout(Duration::from_secs(1));
    Ok(ThroughputRun {
        config: config.clone(),
        max_circuit_bytes: limits.max_circuit_bytes,
        max_circuit_duration_secs: limits.max_circuit_duration.as_secs(),
        transfers,
    })
}
