//! libp2p-relay's server with the fixes every deployment needs.
//!
//! [`Behaviour`] wraps `libp2p::relay::Behaviour` (libp2p-relay 0.22) and
//! takes its place in a relay's swarm, with the same events:
//!
//! ```
//! use libp2p::{SwarmBuilder, futures::StreamExt, identify, ping, relay, swarm::{NetworkBehaviour, SwarmEvent}};
//!
//! #[derive(NetworkBehaviour)]
//! struct Relay {
//!     relay: punchport::relay::Behaviour, // was: relay::Behaviour
//!     identify: identify::Behaviour,
//!     ping: ping::Behaviour,
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut swarm = SwarmBuilder::with_new_identity()
//!     .with_tokio()
//!     .with_quic()
//!     .with_behaviour(|key| Relay {
//!         relay: punchport::relay::Behaviour::new(key.public().to_peer_id(), relay::Config::default()),
//!         identify: identify::Behaviour::new(identify::Config::new("/app/1".into(), key.public())),
//!         ping: ping::Behaviour::default(),
//!     })?
//!     .build();
//! swarm.listen_on("/ip4/127.0.0.1/udp/0/quic-v1".parse()?)?;
//! while !matches!(swarm.select_next_some().await, SwarmEvent::NewListenAddr { .. }) {}
//! let load = swarm.behaviour().relay.load();
//! assert_eq!(load.reservations(), 0);
//! println!("relay load {load}"); // reservations=0 circuits=0 ...
//! # Ok(()) }
//! ```
//!
//! An existing `relay::Behaviour` is wrapped with `Behaviour::from`.
//!
//! **A restarted peer is reachable at once.** libp2p-relay 0.22 routes a
//! circuit to *any* connection of the destination that holds a reservation
//! (the first its `HashMap` yields). A peer that restarts with the same
//! identity reserves again on a new connection while its dead connection
//! still counts as reserving until QUIC's idle timeout ends it, so a
//! circuit to the restarted peer can take the dead connection and fail. The
//! wrapper closes a peer's older reserving connections as soon as the peer
//! holds a *new* reservation (not a renewal) on another connection
//! (`a_new_reservation_closes_the_older_reserving_connections_and_a_renewal_does_not`),
//! and a circuit to the peer then goes over the new one
//! (`a_peer_that_reserves_again_gets_its_older_connection_closed_and_circuits_over_the_new_one`
//! in `tests/relay.rs`, a stock relay swarm on loopback; ten pods restarted
//! one after another behind a NAT, each relayed and punched to within 3 s:
//! `a_rolling_restart_of_ten_pods_leaves_each_reachable_at_once` in
//! `crates/lab/tests/restart.rs`). A libp2p relay client reserves on a new
//! connection only when it has none left to the relay, so a live peer is not
//! cut off by it.
//!
//! **Circuits to one destination do not stall.** The libp2p-relay 0.22
//! *client* hands at most one accepted inbound circuit to its transport per
//! poll of its connection handler and does not ask to be polled again, so
//! when two circuit requests (STOP) reach a reserving peer within one poll,
//! the second waits until something else wakes that connection (in the
//! lab: the dialer's 10 s timeout). The wrapper sends a destination
//! connection one STOP at a time, the next when the previous one was
//! answered or after at most 5 s
//! (`circuits_to_one_destination_go_one_at_a_time`), so each is handed over
//! before the next arrives
//! (`two_circuits_to_one_destination_at_once_both_connect_promptly` in
//! `tests/relay.rs`; eight peers dialing one peer within a second, each
//! direct within 8 s:
//! `eight_peers_behind_one_nat_spread_over_the_range_and_all_punch` in
//! `crates/lab/tests/shared_nat.rs`).
//!
//! **What the relay holds.** [`Behaviour::load`] counts reservations and
//! circuits held now and at most, and refusals by reason; a circuit whose
//! destination's connection closed first counts once, though libp2p-relay
//! reports it twice (`a_circuit_the_destination_closed_first_counts_once`).
//! [`Load`] displays as `key=value` pairs
//! (`the_load_line_is_key_value_pairs`).
//!
//! To know which connection a reservation was accepted on, the wrapper polls
//! the inner behaviour right after it forwarded each handler event and each
//! swarm event: libp2p-relay queues the actions of a handler event during
//! `on_connection_handler_event`, so whatever comes out then was caused by
//! that connection.

mod behaviour;
mod load;
mod reserving;
mod stops;

pub use behaviour::Behaviour;
pub use load::Load;
