//! What a birthday punch puts on the wire, counted where it lands: at a
//! bystander a hostile peer names (nftables counters in its namespace), and
//! on the two NAT routers (conntrack accounting). And a punch through an
//! easy side whose router accepts unsolicited packets, as a Kubernetes node
//! does.

#![allow(clippy::unwrap_used)]

use std::{net::SocketAddr, time::Duration};

use punchport_lab::{
    Outcome, PunchLab, Side, Trial,
    hostile::{self, Lie},
    natlab::{Counts, Input, Nat},
    require_lab,
};
use punchport_node::NodeEvent;

/// The most a hard side sends in one attempt, and an easy side (the
/// issue's budgets; the defaults send 256 and 1024 datagrams of at most 60
/// bytes).
const HARD_BUDGET: Counts = Counts {
    packets: 600,
    bytes: 64 * 1024,
};
const EASY_BUDGET: Counts = Counts {
    packets: 1100,
    bytes: 128 * 1024,
};

/// A hostile peer behind router `b` lies in its birthday hello: its punch
/// socket is at the bystander `victim` (a public host of the lab), and its
/// NAT is hard (`claim_hard`) or easy. The honest peer behind router `a`
/// (of kind `honest`) holds the reservation. With `tie_victim`, the liar
/// also puts the victim's address among its DCUtR candidates. Returns what
/// reached the victim from the honest peer's public IP, and the honest
/// peer's birthday attempt lines.
fn lie_about(honest: Nat, claim_hard: bool, tie_victim: bool) -> (Counts, Vec<NodeEvent>) {
    let lab = PunchLab::builder(honest, Nat::PortRestricted)
        .public_host("victim")
        .build()
        .unwrap();
    let victim = lab.lab().host("victim");
    let counter = victim.udp_counter().unwrap();
    let (_relay, relay_addr) = lab.start_relay().unwrap();
    let honest_peer = lab
        .start_reserving(&relay_addr, &Trial::port_aware())
        .unwrap();
    let target = honest_peer.wait_ready().unwrap();
    let victim_addr = SocketAddr::new(victim.ip(), if claim_hard { 31000 } else { 40000 });
    // The liar's DCUtR candidates: its own router's address, and perhaps
    // the victim's.
    let own = SocketAddr::new(lab.lab().router("b").wan_ip(), 4001);
    let mut candidates = vec![quic(own)];
    if tie_victim {
        candidates.push(quic(victim_addr));
    }
    let lie = Lie {
        hard: claim_hard,
        public: victim_addr,
    };
    let b0 = lab.lab().host("b0");
    let report = hostile::run_in(
        b0,
        relay_addr,
        target,
        candidates,
        Some(lie),
        Duration::from_secs(12),
    )
    .unwrap();
    assert!(report.relayed && report.lied >= 1, "{report:?}");
    let mut attempts = Vec::new();
    while let Some(event) = honest_peer.next_event(Duration::from_millis(100)) {
        if matches!(&event, NodeEvent::Attempt { method, .. } if method == "birthday") {
            attempts.push(event);
        }
    }
    let honest_ip = lab.public_ip(lab.lab().host("a0"));
    let heard = counter
        .by_source()
        .unwrap()
        .get(&honest_ip)
        .copied()
        .unwrap_or_default();
    eprintln!("victim heard {heard:?} from {honest_ip}; birthday lines: {attempts:#?}");
    (heard, attempts)
}

fn quic(socket: SocketAddr) -> Vec<u8> {
    punchport::QuicAddr {
        socket,
        peer_id: None,
    }
    .to_multiaddr()
    .to_vec()
}

fn errors(attempts: &[NodeEvent]) -> Vec<String> {
    attempts
        .iter()
        .filter_map(|e| match e {
            NodeEvent::Attempt { error, .. } => error.clone(),
            _ => None,
        })
        .collect()
}

/// The bystander heard nothing, and the honest peer refused the attempt
/// because the address was not tied to the liar.
fn nothing_reached((heard, attempts): (Counts, Vec<NodeEvent>)) {
    assert_eq!(heard, Counts::default(), "the victim received datagrams");
    assert!(!attempts.is_empty(), "no birthday attempt was even refused");
    assert!(
        errors(&attempts)
            .iter()
            .all(|e| e.contains("not among the addresses the peer advertised")),
        "{attempts:#?}"
    );
}

/// A peer that claims to be hard and names a bystander's IP as its own
/// makes an easy side probe nothing there: the IP is not among the
/// addresses it advertised in its DCUtR exchange.
#[test]
fn a_hard_sides_hello_naming_a_victim_sends_the_victim_nothing() {
    require_lab!();
    nothing_reached(lie_about(Nat::PortRestricted, true, false));
}

/// A peer that claims to be easy and names a bystander's address as its
/// punch socket makes a hard side send nothing there.
#[test]
fn an_easy_sides_hello_naming_a_victim_sends_the_victim_nothing() {
    require_lab!();
    nothing_reached(lie_about(Nat::Symmetric, false, false));
}

/// When the liar also puts the victim among its DCUtR candidates, the
/// punch is tied to that address, and what it may cost is what reaches the
/// victim: the easy side's probes, at most its budget per attempt and two
/// attempts' worth per destination IP; the hard side's datagrams die a hop
/// after its own NAT, so the victim hears only plain DCUtR's dials.
#[test]
fn a_liar_that_ties_the_victim_costs_it_at_most_the_budget() {
    require_lab!();
    let (heard, attempts) = lie_about(Nat::PortRestricted, true, true);
    assert!(heard.packets > 0, "the counter saw nothing: {heard:?}");
    assert!(
        heard.packets <= 2 * 1024 + 64 && heard.bytes <= 2 * 64 * 1024 + 64 * 1300,
        "{heard:?}"
    );
    let sent: u32 = attempts
        .iter()
        .map(|e| match e {
            NodeEvent::Attempt { datagrams, .. } => *datagrams,
            _ => 0,
        })
        .sum();
    assert!(sent > 0 && sent <= 2 * 1024, "{sent}");
    let (heard, attempts) = lie_about(Nat::Symmetric, false, true);
    let sockets: u32 = attempts
        .iter()
        .map(|e| match e {
            NodeEvent::Attempt { sockets, .. } => u32::from(*sockets),
            _ => 0,
        })
        .sum();
    assert!(
        sockets >= 256,
        "the hard side did not open its sockets: {attempts:#?}"
    );
    // Plain DCUtR's QUIC dials (a few Initials and retransmits per
    // attempt), never the birthday sockets' datagrams.
    assert!(heard.packets < 64, "{heard:?} from {sockets} sockets");
}

/// The datagrams (and bytes, IP and UDP headers included) each side's
/// router saw it send to the other side's public IP in a trial that ended
/// direct: the birthday punch, plain DCUtR's dials, and the direct
/// connection's first half second.
fn sent_to_peer(side: &Side) -> Counts {
    let me = side.public_ip.unwrap();
    side.flows
        .iter()
        .filter(|flow| flow.original.dst.ip() != me && flow.reply.dst.ip() == me)
        .filter_map(|flow| flow.original_counts)
        .fold(Counts::default(), |sum, c| Counts {
            packets: sum.packets + c.packets,
            bytes: sum.bytes + c.bytes,
        })
}

/// Counted on the routers, each side of a punch that met at the first
/// attempt stays within its budget.
#[test]
fn both_sides_stay_within_their_budgets_on_the_routers() {
    require_lab!();
    let lab = PunchLab::builder(Nat::Symmetric, Nat::PortRestricted)
        .build()
        .unwrap();
    let mut counted = 0;
    for _ in 0..3 {
        let outcome = lab
            .run(&Trial::port_aware().timeout(Duration::from_secs(20)))
            .unwrap();
        if outcome.birthday_missed_twice() {
            eprintln!("both birthday attempts missed (about 0.8 % of punches)");
            continue;
        }
        assert!(outcome.direct(), "{outcome:#?}");
        let (hard, easy) = (&outcome.a, &outcome.b);
        if hard.peer.birthdays.len() != 1 {
            continue; // a second attempt: budgets are per attempt
        }
        counted += 1;
        let (hard_sent, easy_sent) = (sent_to_peer(hard), sent_to_peer(easy));
        eprintln!(
            "hard side sent {hard_sent:?} ({:?} by its own count), easy side {easy_sent:?} ({:?})",
            hard.peer.birthdays, easy.peer.birthdays
        );
        assert!(
            hard_sent.packets >= 256,
            "the hard side's flows are not all counted: {hard_sent:?}"
        );
        assert!(
            hard_sent.packets <= HARD_BUDGET.packets && hard_sent.bytes <= HARD_BUDGET.bytes,
            "hard side over budget: {hard_sent:?}"
        );
        assert!(
            easy_sent.packets <= EASY_BUDGET.packets && easy_sent.bytes <= EASY_BUDGET.bytes,
            "easy side over budget: {easy_sent:?}"
        );
        let own = &hard.peer.birthdays[0];
        assert_eq!(own.datagrams, 256, "{own:?}");
        assert!(own.bytes <= 256 * 60, "{own:?}");
    }
    assert!(counted > 0, "every trial needed a second attempt");
}

fn punches_direct(outcome: &Outcome) {
    assert!(outcome.direct(), "{outcome:#?}");
    for side in [&outcome.a, &outcome.b] {
        let last = side.peer.birthdays.last();
        assert!(
            last.is_some_and(|b| b.direct && b.winning_port.is_some()),
            "not through a birthday punch: {outcome:#?}"
        );
    }
}

/// The easy side's router accepts unsolicited packets (a Kubernetes node's
/// INPUT policy is ACCEPT): the hard side's short-TTL datagrams die before
/// it, so no conntrack entry takes the port the easy side probes from, and
/// the punch ends direct, whichever side holds the reservation: every trial
/// but for a birthday punch's double miss (`Outcome::birthday_missed_twice`,
/// a draw of about 0.8 % that an open router does not change), and at least
/// one per row.
#[test]
fn an_easy_side_behind_an_open_router_punches_direct() {
    require_lab!();
    for (a, b, inputs) in [
        (
            Nat::Symmetric,
            Nat::PortRestricted,
            (None, Some(Input::Accept)),
        ),
        (
            Nat::PortRestricted,
            Nat::Symmetric,
            (Some(Input::Accept), None),
        ),
    ] {
        let lab = PunchLab::builder(a, b)
            .inputs(inputs.0, inputs.1)
            .build()
            .unwrap();
        let mut direct = 0;
        for _ in 0..2 {
            let outcome = lab
                .run(&Trial::port_aware().timeout(Duration::from_secs(30)))
                .unwrap();
            if outcome.birthday_missed_twice() {
                eprintln!("{a} / {b}: both birthday attempts missed (about 0.8 % of punches)");
                continue;
            }
            punches_direct(&outcome);
            direct += 1;
        }
        assert!(direct >= 1, "{a} / {b}: no trial direct");
    }
}
