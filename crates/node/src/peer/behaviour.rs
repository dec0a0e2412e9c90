//! The peer's behaviour: relay client, identify, ping and DCUtR.

use libp2p::{
    dcutr, identify, identity::Keypair, ping, relay, swarm::NetworkBehaviour,
    swarm::behaviour::toggle::Toggle,
};

use crate::PROTOCOL_VERSION;

#[derive(NetworkBehaviour)]
pub(crate) struct PeerBehaviour {
    pub(crate) relay_client: relay::client::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    /// punchport's filtered DCUtR (port-aware nodes).
    pub(crate) punchport: Toggle<punchport::Behaviour>,
    /// Plain DCUtR (stock nodes, the control).
    pub(crate) dcutr: Toggle<dcutr::Behaviour>,
}

impl PeerBehaviour {
    pub(crate) fn new(
        key: &Keypair,
        relay_client: relay::client::Behaviour,
        punchport: Option<punchport::Behaviour>,
        ping_interval: std::time::Duration,
    ) -> Self {
        let peer_id = key.public().to_peer_id();
        let stock = punchport.is_none().then(|| dcutr::Behaviour::new(peer_id));
        Self {
            relay_client,
            identify: identify::Behaviour::new(identify::Config::new(
                PROTOCOL_VERSION.into(),
                key.public(),
            )),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(ping_interval)),
            punchport: punchport.into(),
            dcutr: stock.into(),
        }
    }
}
