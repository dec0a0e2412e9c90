//! DCUtR itself: libp2p-dcutr 0.15's behaviour, connection handler and
//! protocol (MIT, Copyright 2021 Protocol Labs), with three changes to the
//! exchange:
//! - each side sends the punch socket's short-TTL openers to the other
//!   side's candidates the moment it has read them, and only then sends
//!   its next message;
//! - each side dials 15 ms later than libp2p-dcutr's timing
//!   ([`protocol::LEAD`]): the responder after SYNC, the initiator after
//!   its half round trip;
//! - the initiator closes its stream after SYNC instead of dropping it,
//!   which reset it (a go-libp2p responder could miss SYNC).
//!
//! - The responder (the side that dialed through the relay) opens towards
//!   the candidates of the CONNECT it received before it answers with its
//!   own CONNECT ([`protocol::inbound`]).
//! - The initiator (the side that holds the reservation) opens towards the
//!   candidates of that answer before it sends SYNC
//!   ([`protocol::outbound`]).
//!
//! Every packet of the other side's punch is sent after the message that
//! followed our openers reached it, so the openers have crossed our own NAT
//! before anything of the other side's punch can arrive there, whatever
//! either side's scheduling. A router that accepts unsolicited packets
//! then sees the other side's packets as replies of our flow, not as a new
//! flow that takes the punch port's tuple (the conntrack clash,
//! docs/troubleshooting.md). Stock libp2p-dcutr leaves no room for this:
//! it writes SYNC in the same task that reads the answer, and reports the
//! candidates only after SYNC (half a round trip after it, on the
//! initiator).
//!
//! The lead protects the other side's router when the other side sends no
//! openers (see [`protocol::LEAD`]).
//!
//! Everything else is libp2p-dcutr's, message for message, so that the
//! other side may be stock rust-libp2p or go-libp2p: the protocol name, the
//! protobuf, the three attempts, the timeouts, the roles of the dials, and
//! the events.

mod behaviour;
mod handler;
mod open;
pub(crate) mod protocol;

/// The protobuf of `message.proto`, as prost-build generated it for
/// libp2p-dcutr.
#[path = "holepunch.pb.rs"]
#[allow(unreachable_pub, missing_docs, clippy::all)]
mod holepunch_pb;
mod proto {
    pub(crate) use super::holepunch_pb::{HolePunch, hole_punch::*};
}

pub(crate) use behaviour::Behaviour;
pub use behaviour::{Error, Event};
pub(crate) use open::Opener;
pub(crate) use protocol::PROTOCOL_NAME;
