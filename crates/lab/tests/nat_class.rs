//! NAT classification: a peer behind each kind of router says in one line
//! what kind of NAT it is behind, from what the relay saw at its two
//! addresses.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use punchport_lab::{PunchLab, Trial, natlab::Nat, require_lab};
use punchport_node::NodeEvent;

/// Starts a peer behind a router of kind `nat` and returns its first
/// classification that is not `unknown`.
fn classify(nat: Nat) -> (String, Option<bool>) {
    let lab = PunchLab::builder(nat, Nat::PortRestricted).build().unwrap();
    let (_relay, relay_addr) = lab.start_relay().unwrap();
    let trial = Trial::port_aware();
    let peer = lab
        .start_peer(lab.lab().host("a0"), &relay_addr, &trial, None)
        .unwrap();
    peer.wait_for(
        Duration::from_secs(30),
        "a nat line with a mapping",
        |e| match e {
            NodeEvent::Nat {
                mapping,
                port_preserved,
            } if mapping != "unknown" => Some((mapping.clone(), *port_preserved)),
            _ => None,
        },
    )
    .unwrap()
}

macro_rules! row {
    ($name:ident: $nat:expr => $mapping:literal, port preserved: $preserved:expr) => {
        #[test]
        fn $name() {
            require_lab!();
            assert_eq!(
                classify($nat),
                ($mapping.to_owned(), Some($preserved)),
                "{}",
                $nat
            );
        }
    };
}

row!(port_restricted: Nat::PortRestricted => "endpoint-independent", port preserved: true);
row!(port_rewriting: Nat::PortRewriting => "endpoint-independent", port preserved: false);
row!(full_cone: Nat::FullCone => "endpoint-independent", port preserved: true);
row!(restricted_cone: Nat::RestrictedCone => "endpoint-independent", port preserved: true);
row!(symmetric: Nat::Symmetric => "endpoint-dependent", port preserved: false);
row!(firewall: Nat::Firewall => "endpoint-independent", port preserved: true);
