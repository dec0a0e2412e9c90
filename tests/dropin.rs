//! The README's drop-in, as applied to rust-libp2p's own `examples/dcutr`:
//! TCP, punchport's QUIC in place of `with_quic()`, DNS, the relay client,
//! and punchport's DCUtR in place of libp2p's, built by `punchport::new` so
//! that both halves share one table of punch sockets. It builds, listens as
//! that example does, and the behaviour sees the transport's punch socket.

#![allow(clippy::unwrap_used)]

use futures::StreamExt;
use libp2p::{
    identify, noise, ping, relay,
    swarm::{NetworkBehaviour, SwarmEvent},
    tcp, yamux,
};
use punchport::Family;

#[derive(NetworkBehaviour)]
struct Behaviour {
    relay_client: relay::client::Behaviour,
    ping: ping::Behaviour,
    identify: identify::Behaviour,
    dcutr: punchport::Behaviour,
}

#[tokio::test]
async fn the_drop_in_builds_a_swarm_whose_halves_share_the_punch_socket() {
    let keypair = libp2p::identity::Keypair::generate_ed25519();
    let (punch_transport, punch_dcutr) = punchport::new(&keypair);
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_other_transport(|_| punch_transport)
        .unwrap()
        .with_dns()
        .unwrap()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|keypair, relay_behaviour| Behaviour {
            relay_client: relay_behaviour,
            ping: ping::Behaviour::new(ping::Config::new()),
            identify: identify::Behaviour::new(identify::Config::new(
                "/TODO/0.0.1".to_string(),
                keypair.public(),
            )),
            dcutr: punch_dcutr,
        })
        .unwrap()
        .build();

    swarm
        .listen_on("/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap())
        .unwrap();
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    let mut quic_port = None;
    while quic_port.is_none() {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await
            && let Ok(quic) = punchport::QuicAddr::parse(&address)
        {
            quic_port = Some(quic.socket.port());
        }
    }
    let sockets = swarm.behaviour().dcutr.punch_sockets();
    assert_eq!(sockets.port(Family::Ipv4), quic_port);
    assert!(sockets.range().contains(quic_port.unwrap()));
}
