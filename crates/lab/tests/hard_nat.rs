//! Endpoint-dependent ("hard") NATs in the seed layout (443 + punch range):
//! a birthday punch against every endpoint-independent kind, whichever side
//! is hard; two hard sides stay relayed without spraying. Each pairing is a
//! row.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use punchport_lab::{Outcome, PunchLab, Trial, natlab::Nat, require_lab};

use Nat::{Firewall, FullCone, PortRestricted, Symmetric};

const TRIALS: usize = 2;

fn trials(a: Nat, b: Nat, delay: Duration) -> Vec<Outcome> {
    let lab = PunchLab::builder(a, b).wan_delay(delay).build().unwrap();
    (0..TRIALS)
        .map(|_| {
            // A miss (1.7 % of attempts) is tried once more: up to two
            // windows of about 16 s.
            lab.run(&Trial::port_aware().timeout(Duration::from_secs(45)))
                .unwrap()
        })
        .collect()
}

/// Every trial direct, but for a birthday punch's double miss (a draw of
/// about 0.8 %: `Outcome::birthday_missed_twice`), and at least one direct
/// per row. Where the easy side filters what it has not sent to
/// (`birthday`), through a birthday punch: the hard side opened its sockets,
/// the easy side's probes met one, both report the winner. A full cone
/// accepts the hard side's plain DCUtR dial, which may win first.
fn punches(a: Nat, b: Nat, delay: Duration, birthday: bool) {
    let outcomes = trials(a, b, delay);
    assert!(
        outcomes.iter().any(Outcome::direct),
        "{a} / {b}: no trial direct: {outcomes:#?}"
    );
    for outcome in outcomes {
        if birthday && outcome.birthday_missed_twice() {
            eprintln!("{a} / {b}: both birthday attempts missed (about 0.8 % of punches)");
            continue;
        }
        assert!(outcome.direct(), "{a} / {b}: {outcome:#?}");
        let (hard, easy) = if a == Symmetric {
            (&outcome.a.peer, &outcome.b.peer)
        } else {
            (&outcome.b.peer, &outcome.a.peer)
        };
        let sockets: u16 = hard.birthdays.iter().map(|b| b.sockets).sum();
        let probes: u16 = easy.birthdays.iter().map(|b| b.probes).sum();
        if birthday {
            // At most two attempts (a miss is tried once more); the last
            // connected, on both sides, and said which port won.
            let (Some(last_hard), Some(last_easy)) = (hard.birthdays.last(), easy.birthdays.last())
            else {
                panic!("{a} / {b}: no birthday attempt on a side: {outcome:#?}")
            };
            assert!(
                hard.birthdays.len() <= 2 && easy.birthdays.len() <= 2,
                "{outcome:#?}"
            );
            assert!(
                hard.birthdays
                    .iter()
                    .all(|b| b.role == "hard" && b.sockets <= 256)
            );
            assert!(
                easy.birthdays
                    .iter()
                    .all(|b| b.role == "easy" && b.probes <= 1024)
            );
            assert!(last_hard.direct && last_easy.direct, "{outcome:#?}");
            assert!(
                last_easy.winning_port.is_some() && last_hard.winning_port.is_some(),
                "{outcome:#?}"
            );
        }
        eprintln!(
            "{a} / {b}: direct in {:?} ms, {sockets} sockets, {probes} probes",
            outcome.elapsed_ms(),
        );
    }
}

macro_rules! row {
    ($name:ident: $a:expr, $b:expr, $delay_ms:expr, birthday: $birthday:expr) => {
        #[test]
        fn $name() {
            require_lab!();
            punches($a, $b, Duration::from_millis($delay_ms), $birthday);
        }
    };
}

row!(hard_and_port_restricted: Symmetric, PortRestricted, 0, birthday: true);
row!(port_restricted_and_hard: PortRestricted, Symmetric, 0, birthday: true);
row!(hard_and_firewall: Symmetric, Firewall, 0, birthday: true);
row!(hard_and_full_cone: Symmetric, FullCone, 0, birthday: false);
row!(hard_and_port_restricted_delayed: Symmetric, PortRestricted, 25, birthday: true);

/// Both sides hard: about 65 000 probes per side would be needed for a
/// 64 % chance, so neither sprays; the punch fails and the relay stays.
#[test]
fn two_hard_sides_stay_relayed_without_spraying() {
    require_lab!();
    for outcome in trials(Symmetric, Symmetric, Duration::ZERO) {
        assert!(!outcome.direct(), "{outcome:#?}");
        assert!(outcome.failure().is_some(), "{outcome:#?}");
        assert!(outcome.a.peer.birthdays.is_empty(), "{outcome:#?}");
        assert!(outcome.b.peer.birthdays.is_empty(), "{outcome:#?}");
    }
}

// ---- Kubernetes nodes ------------------------------------------------------

use punchport_lab::natlab::{KubeNode, PUNCH_PORTS};

/// Pods behind flannel's and Calico's `masquerade fully-random` are behind
/// an endpoint-dependent NAT: they say so, and punch with a birthday punch
/// (but for a double miss, as in `punches`).
#[test]
fn pods_behind_a_random_fully_masquerade_punch_by_birthday() {
    require_lab!();
    let lab = PunchLab::builder(KubeNode::FULLY_RANDOM, PortRestricted)
        .build()
        .unwrap();
    let mut direct = 0;
    for _ in 0..TRIALS {
        let outcome = lab
            .run(&Trial::port_aware().timeout(Duration::from_secs(45)))
            .unwrap();
        if outcome.birthday_missed_twice() {
            eprintln!("both birthday attempts missed (about 0.8 % of punches)");
            continue;
        }
        direct += 1;
        assert!(outcome.direct(), "{outcome:#?}");
        assert!(
            outcome.a.said_nat("endpoint-dependent", None),
            "{outcome:#?}"
        );
        assert!(
            outcome.a.peer.birthdays.last().is_some_and(|b| b.direct),
            "{outcome:#?}"
        );
    }
    assert!(direct >= 1, "no trial direct");
}

/// The operator's fix: an SNAT rule without random ports for the punch
/// range, ahead of the CNI's (the DaemonSet in docs/deploy). The pods' punch
/// sockets then map endpoint-independently and plain punching (birthday
/// off) gets through every time; without the rule it never does.
#[test]
fn the_snat_exemption_makes_pods_behind_a_random_fully_masquerade_punch_plainly() {
    require_lab!();
    let exempt = KubeNode::FULLY_RANDOM.exempt(PUNCH_PORTS);
    let trial = Trial::port_aware()
        .timeout(Duration::from_secs(20))
        .birthday(false);
    let lab = PunchLab::builder(exempt, PortRestricted).build().unwrap();
    for _ in 0..3 {
        let outcome = lab.run(&trial).unwrap();
        assert!(outcome.direct(), "{outcome:#?}");
        assert!(
            outcome.a.said_nat("endpoint-independent", Some(true)),
            "{outcome:#?}"
        );
        assert!(outcome.direct_flows_on(lab.range()), "{outcome:#?}");
    }
    let stock_cni = PunchLab::builder(KubeNode::FULLY_RANDOM, PortRestricted)
        .build()
        .unwrap();
    let outcome = stock_cni.run(&trial).unwrap();
    assert!(!outcome.direct(), "{outcome:#?}");
}

/// Without random ports (kube-proxy alone, Cilium's iptables mode), the
/// masquerade keeps ports: plain punching.
#[test]
fn pods_behind_a_plain_masquerade_punch_plainly() {
    require_lab!();
    let lab = PunchLab::builder(KubeNode::MASQUERADE, PortRestricted)
        .build()
        .unwrap();
    let outcome = lab
        .run(
            &Trial::port_aware()
                .timeout(Duration::from_secs(20))
                .birthday(false),
        )
        .unwrap();
    assert!(outcome.direct(), "{outcome:#?}");
}

/// With the relay on one address, no side can classify its NAT: the hard
/// side only sees its punch port rewritten, the easy side sees its own
/// kept. The hard side's plain punch fails first; then it punches the
/// birthday way, whichever side holds the reservation.
#[test]
fn with_a_relay_on_one_address_a_rewritten_port_punches_by_birthday_once_plain_failed() {
    require_lab!();
    for (a, b) in [(Symmetric, PortRestricted), (PortRestricted, Symmetric)] {
        let lab = PunchLab::builder(a, b).build().unwrap();
        let outcome = lab
            .run(
                &Trial::port_aware()
                    .relay_on_one_address()
                    .timeout(Duration::from_secs(45)),
            )
            .unwrap();
        if outcome.birthday_missed_twice() {
            eprintln!("{a} / {b}: both birthday attempts missed (about 0.1 % of punches)");
            continue;
        }
        assert!(outcome.direct(), "{a} / {b}: {outcome:#?}");
        let hard = if a == Symmetric {
            &outcome.a
        } else {
            &outcome.b
        };
        assert!(
            hard.peer
                .nat
                .iter()
                .all(|(mapping, _)| mapping == "unknown"),
            "{:?}",
            hard.peer.nat
        );
        let last = hard.peer.birthdays.last();
        assert!(
            last.is_some_and(|b| b.role == "hard" && b.direct),
            "{a} / {b}: not a birthday punch: {outcome:#?}"
        );
        eprintln!("{a} / {b}: direct in {:?} ms", outcome.elapsed_ms());
    }
}
