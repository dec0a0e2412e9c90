//! IPv6 and dual-stack pods. Each row is a pairing of IPv6 routers (a
//! stateful firewall in front of global addresses, NAT66 masquerade that
//! keeps ports, NAT66 `masquerade fully-random`), with IPv6-only or
//! dual-stack hosts, a dual-stack relay, and the seed layout (443 and the
//! punch range, in each family the host has). Every trial must end direct,
//! with conntrack showing the direct flows on the punch ports in the family
//! the row names.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use punchport::{Family, PortRange};
use punchport_lab::{
    Outcome, PunchLab, Trial,
    natlab::{Ipv6Kind, Nat},
    require_lab,
};

const TRIALS: usize = 2;

fn range(n: usize) -> PortRange {
    let start = 40000 + n as u16;
    PortRange::new(start, start + 50).unwrap()
}

/// `a` and `b` (IPv4 kind, IPv6 kind, IPv6 only), the family the direct
/// connection must use, and whether a birthday punch must make it.
fn punches(
    (a4, a6, a_only): (Nat, Option<Ipv6Kind>, bool),
    (b4, b6, b_only): (Nat, Option<Ipv6Kind>, bool),
    family: Family,
    birthday: bool,
) -> Vec<Outcome> {
    let lab = PunchLab::builder(a4, b4)
        .ipv6(a6, b6)
        .ipv6_only(a_only, b_only)
        .build()
        .unwrap();
    (0..TRIALS)
        .map(|n| {
            let trial = Trial::port_aware()
                .punch_range(range(n))
                .inspect(family)
                .timeout(Duration::from_secs(30));
            let outcome = lab.run(&trial).unwrap();
            eprintln!(
                "#{n}: direct={} in {:?} ms, remote {:?}; a {:?}; b {:?}; birthdays {:?} / {:?}",
                outcome.direct(),
                outcome.elapsed_ms(),
                outcome.b.peer.connections.first().map(|c| c.remote_port),
                outcome.a.flow_texts(),
                outcome.b.flow_texts(),
                outcome.a.peer.birthdays,
                outcome.b.peer.birthdays,
            );
            assert!(outcome.direct(), "#{n}: {outcome:#?}");
            assert!(
                outcome.b.peer.failures.is_empty() && outcome.a.peer.failures.is_empty(),
                "#{n}: a punch failure was reported: {outcome:#?}"
            );
            if !birthday {
                assert!(
                    outcome.direct_flows_on(range(n)),
                    "#{n}: no direct {family} flows on the punch ports: {outcome:#?}"
                );
            }
            if birthday {
                // The easy side's direct flow leaves from its punch port;
                // the hard side's from the winning socket.
                let hard_ip = outcome.a.public_ip.unwrap();
                let easy = outcome.b.mappings(hard_ip);
                assert!(
                    easy.iter()
                        .any(|m| m.replied && range(n).contains(m.inside)),
                    "#{n}: the easy side's direct flow is not on its punch port: {outcome:#?}"
                );
                let ipv = if family == Family::Ipv6 { "ip6" } else { "ip4" };
                for side in [&outcome.a, &outcome.b] {
                    assert!(
                        side.peer
                            .birthdays
                            .last()
                            .is_some_and(|b| b.direct && b.family.as_deref() == Some(ipv)),
                        "#{n}: not a birthday punch over {ipv}: {outcome:#?}"
                    );
                }
            }
            outcome
        })
        .collect()
}

use Ipv6Kind::{Firewall, Masquerade, MasqueradeFullyRandom};
use Nat::{PortRestricted, Symmetric};

macro_rules! row {
    ($name:ident: $a:expr, $b:expr, $family:expr, birthday: $birthday:expr) => {
        #[test]
        fn $name() {
            require_lab!();
            punches($a, $b, $family, $birthday);
        }
    };
}

// IPv6-only pods.
row!(ipv6_firewall_and_firewall:
    (PortRestricted, Some(Firewall), true), (PortRestricted, Some(Firewall), true),
    Family::Ipv6, birthday: false);
row!(nat66_and_firewall:
    (PortRestricted, Some(Masquerade), true), (PortRestricted, Some(Firewall), true),
    Family::Ipv6, birthday: false);
row!(nat66_fully_random_and_firewall_punch_by_birthday:
    (PortRestricted, Some(MasqueradeFullyRandom), true), (PortRestricted, Some(Firewall), true),
    Family::Ipv6, birthday: true);
row!(ipv6_only_and_dual_stack:
    (PortRestricted, Some(Firewall), true), (PortRestricted, Some(Firewall), false),
    Family::Ipv6, birthday: false);
// Dual stack: IPv4 blocked (both NATs endpoint-dependent, no birthday punch
// between two hard sides), IPv6 open.
row!(dual_stack_with_ipv4_blocked_ends_direct_over_ipv6:
    (Symmetric, Some(Firewall), false), (Symmetric, Some(Firewall), false),
    Family::Ipv6, birthday: false);
// Dual stack: IPv6 blocked the same way, IPv4 open.
row!(dual_stack_with_ipv6_blocked_ends_direct_over_ipv4:
    (PortRestricted, Some(MasqueradeFullyRandom), false),
    (PortRestricted, Some(MasqueradeFullyRandom), false),
    Family::Ipv4, birthday: false);
