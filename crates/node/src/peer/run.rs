//! The peer's event loop.

use std::{collections::HashSet, time::Duration};

use futures::StreamExt;
use libp2p::{Multiaddr, Swarm, core::transport::ListenerId, swarm::SwarmEvent};
use punchport::QuicAddr;
use tokio::sync::mpsc;

use super::{PeerConfig, TransportKind, behaviour::PeerBehaviour, state::State};
use crate::{ConfigError, NodeEvent, event::send, metrics::NodeMetrics};

pub(super) async fn run(
    mut swarm: Swarm<PeerBehaviour>,
    config: PeerConfig,
    events: mpsc::UnboundedSender<NodeEvent>,
) -> Result<(), ConfigError> {
    let Listeners {
        mut waiting,
        stock_punch,
    } = listen(&mut swarm, &config)?;
    if let (Some(ip), Some(dcutr)) = (config.announce_ip, swarm.behaviour_mut().punchport.as_mut())
    {
        let addr = QuicAddr {
            socket: (ip, 0).into(),
            peer_id: None,
        };
        dcutr
            .add_announced_address(addr.to_multiaddr())
            .map_err(ConfigError::RelayAddr)?;
    }
    let metrics = match config.metrics_address {
        Some(addr) => {
            let metrics = NodeMetrics::new();
            let bound = crate::metrics::serve(addr, metrics.registry.clone())
                .await
                .map_err(|e| ConfigError::Listen {
                    addr: QuicAddr {
                        socket: addr,
                        peer_id: None,
                    }
                    .to_multiaddr(),
                    reason: format!("metrics endpoint: {e}"),
                })?;
            send(&events, NodeEvent::Metrics { address: bound });
            Some(metrics)
        }
        None => None,
    };
    let mut retry = tokio::time::interval(config.retry_interval);
    let mut maps = tokio::time::interval(config.maps_interval.unwrap_or(Duration::from_secs(3600)));
    let report_maps = config.maps_interval.is_some();
    let events_for_maps = events.clone();
    let mut state = State::new(config, events, metrics, stock_punch);
    loop {
        tokio::select! {
            event = swarm.select_next_some() => {
                if let SwarmEvent::NewListenAddr { listener_id, .. } = &event {
                    waiting.remove(listener_id);
                }
                state.on_event(&mut swarm, event);
            }
            _ = retry.tick(), if waiting.is_empty() => state.on_tick(&mut swarm),
            _ = maps.tick(), if report_maps => {
                if let Some(dcutr) = swarm.behaviour().punchport.as_ref() {
                    send(&events_for_maps, NodeEvent::maps(&dcutr.tracked()));
                }
            }
        }
    }
}

/// The listeners a peer opened.
struct Listeners {
    /// Those still to report an address.
    waiting: HashSet<ListenerId>,
    /// The punch socket's, for the stock control (port-aware peers have the
    /// transport's table).
    stock_punch: HashSet<ListenerId>,
}

/// Opens the listeners: the ordinary ones and the punch socket.
fn listen(swarm: &mut Swarm<PeerBehaviour>, config: &PeerConfig) -> Result<Listeners, ConfigError> {
    let mut ids = HashSet::new();
    let mut stock_punch = HashSet::new();
    let open = |swarm: &mut Swarm<PeerBehaviour>, addr: Multiaddr| {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| ConfigError::Listen {
                addr,
                reason: e.to_string(),
            })
    };
    let range = config.punchport.range();
    let is_punch = |addr: &Multiaddr| {
        QuicAddr::parse(addr).is_ok_and(|q| range.binds_punch_socket(q.socket.port()))
    };
    for addr in &config.listen {
        let id = open(swarm, addr.clone())?;
        ids.insert(id);
        if is_punch(addr) {
            stock_punch.insert(id);
        }
    }
    let done = |waiting, stock_punch| Listeners {
        waiting,
        stock_punch: match config.transport {
            TransportKind::Stock => stock_punch,
            TransportKind::PortAware => HashSet::new(),
        },
    };
    if config.listen.iter().any(is_punch) {
        return Ok(done(ids, stock_punch));
    }
    let punch_addr = |port| {
        QuicAddr {
            socket: (config.punch_ip, port).into(),
            peer_id: None,
        }
        .to_multiaddr()
    };
    match config.transport {
        // Port 0 binds the first free port of the range.
        TransportKind::PortAware => {
            ids.insert(open(swarm, punch_addr(0))?);
        }
        // libp2p-quic binds exactly what it is given: try the ports in turn.
        TransportKind::Stock => {
            let mut last = None;
            for port in range.ports() {
                match open(swarm, punch_addr(port)) {
                    Ok(id) => {
                        ids.insert(id);
                        stock_punch.insert(id);
                        last = None;
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            if let Some(e) = last {
                return Err(e);
            }
        }
    }
    Ok(done(ids, stock_punch))
}
