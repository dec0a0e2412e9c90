//! NAT classification: a peer behind each kind of router says in one line
//! what kind of NAT it is behind, from what the relay saw at two of its
//! addresses: two IPs (the lab's default relay), or the seed's relay with
//! one IP and a second UDP port. With one address it says `unknown`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use punchport_lab::{PunchLab, Trial, natlab::Nat, require_lab};
use punchport_node::NodeEvent;

/// Where the relay listens.
#[derive(Clone, Copy)]
enum Relay {
    /// UDP 443 on its two IPs.
    TwoIps,
    /// UDP 443 and 4443 on one IP.
    OneIpTwoPorts,
}

/// Starts a peer behind a router of kind `nat` and returns its first
/// classification that is not `unknown`.
fn classify(nat: Nat) -> (String, Option<bool>) {
    classify_with(nat, Relay::TwoIps)
}

fn relay_args(lab: &PunchLab, relay: Relay) -> punchport_node::cli::RelayArgs {
    let mut args = lab.relay_args();
    if let Relay::OneIpTwoPorts = relay {
        let ip = lab.lab().relay().ip();
        args.listen = [443, 4443]
            .map(|port| format!("/ip4/{ip}/udp/{port}/quic-v1").parse().unwrap())
            .to_vec();
    }
    args
}

fn classify_with(nat: Nat, relay: Relay) -> (String, Option<bool>) {
    let lab = PunchLab::builder(nat, Nat::PortRestricted).build().unwrap();
    let (_relay, relay_addr) = lab.start_relay_with(relay_args(&lab, relay)).unwrap();
    let trial = Trial::port_aware();
    let peer = lab.start_reserving(&relay_addr, &trial).unwrap();
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

/// The seed's relay: one IP, and a second UDP port for the second opinion
/// (Linux `random-fully` changes the mapping when only the destination port
/// does).
#[test]
fn one_relay_ip_with_a_second_port_tells_endpoint_dependent_from_independent() {
    require_lab!();
    for (nat, mapping, preserved) in [
        (Nat::Symmetric, "endpoint-dependent", false),
        (Nat::PortRestricted, "endpoint-independent", true),
        (Nat::PortRewriting, "endpoint-independent", false),
        (Nat::FullCone, "endpoint-independent", true),
        (Nat::RestrictedCone, "endpoint-independent", true),
        (Nat::Firewall, "endpoint-independent", true),
    ] {
        assert_eq!(
            classify_with(nat, Relay::OneIpTwoPorts),
            (mapping.to_owned(), Some(preserved)),
            "{nat}"
        );
    }
}

/// One relay address: the peer cannot tell, says `unknown`, and logs what
/// would let it tell.
#[test]
fn one_relay_address_says_unknown_and_what_would_tell() {
    require_lab!();
    let lab = PunchLab::builder(Nat::Symmetric, Nat::PortRestricted)
        .build()
        .unwrap();
    let mut args = lab.relay_args();
    args.listen.truncate(1);
    let (_relay, relay_addr) = lab.start_relay_with(args).unwrap();
    let peer = lab
        .start_reserving(&relay_addr, &Trial::port_aware())
        .unwrap();
    let mapping = peer
        .wait_for(Duration::from_secs(30), "a nat line", |e| match e {
            NodeEvent::Nat { mapping, .. } => Some(mapping.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(mapping, "unknown");
    peer.wait_ready().unwrap();
    let stderr = peer.stderr();
    assert!(stderr.contains("another UDP port is enough"), "{stderr}");
}
