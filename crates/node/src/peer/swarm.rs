//! Building the peer's swarm with punchport's transport or with `with_quic()`.

use std::time::Duration;

use libp2p::{Swarm, SwarmBuilder, noise, yamux};

use super::{PeerConfig, TransportKind, behaviour::PeerBehaviour};
use crate::ConfigError;

const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// The same for both transports, so that the benchmark compares transports
/// only.
///
/// `V1Lazy` sends the first message of an outbound stream together with the
/// protocol proposal instead of waiting for the remote to confirm the
/// protocol: DCUtR's CONNECT leaves one relayed round trip earlier (libp2p
/// 0.57's default, `V1`, waits). Any listener accepts it; it only matters
/// when the remote does not speak the protocol, which then fails a little
/// later instead of at once.
fn swarm_config(config: libp2p::swarm::Config) -> libp2p::swarm::Config {
    config
        .with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT)
        .with_substream_upgrade_protocol_override(libp2p::core::upgrade::Version::V1Lazy)
}

pub(super) fn build(config: &PeerConfig) -> Result<Swarm<PeerBehaviour>, ConfigError> {
    let err = |e: &dyn std::fmt::Display| ConfigError::Swarm(e.to_string());
    let builder = SwarmBuilder::with_existing_identity(config.keypair.clone()).with_tokio();
    let swarm = match config.transport {
        TransportKind::PortAware => {
            // One configuration for both halves, which share one table of
            // punch sockets.
            let (transport, dcutr) = punchport::with_config(config.punchport.clone());
            builder
                .with_other_transport(|_| transport)
                .map_err(|e| err(&e))?
                .with_relay_client(noise::Config::new, yamux::Config::default)
                .map_err(|e| err(&e))?
                .with_behaviour(|key, relay| {
                    PeerBehaviour::new(key, relay, Some(dcutr), config.ping_interval)
                })
                .map_err(|e| err(&e))?
                .with_swarm_config(swarm_config)
                .build()
        }
        TransportKind::Stock => builder
            .with_quic()
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(|e| err(&e))?
            .with_behaviour(|key, relay| PeerBehaviour::new(key, relay, None, config.ping_interval))
            .map_err(|e| err(&e))?
            .with_swarm_config(swarm_config)
            .build(),
    };
    Ok(swarm)
}
