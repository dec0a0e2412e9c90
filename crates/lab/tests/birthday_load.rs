//! A node in the middle of a birthday attempt still serves its other
//! connections: pings over the relayed connection keep being answered, in
//! time, while the easy side sends its 1024 probes or the hard side keeps
//! 256 sockets sending.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use punchport_lab::{LabNode, PeerRole, PunchLab, Trial, natlab::Nat, require_lab};
use punchport_node::NodeEvent;

/// What one side saw, stamped with when this test read it.
#[derive(Default)]
struct Seen {
    pings: Vec<(Instant, u64)>,
    /// The birthday attempts: when they ended and how long they took.
    attempts: Vec<(Instant, Duration)>,
}

impl Seen {
    fn record(&mut self, event: &NodeEvent) {
        let now = Instant::now();
        match event {
            NodeEvent::Ping {
                relayed: true,
                rtt_ms,
                ..
            } => self.pings.push((now, *rtt_ms)),
            NodeEvent::Attempt {
                method,
                duration_ms,
                ..
            } if method == "birthday" => self
                .attempts
                .push((now, Duration::from_millis(*duration_ms))),
            _ => {}
        }
    }

    /// The relayed pings during the first attempt; panics if there was none.
    fn pings_during_first_attempt(&self) -> (Duration, Vec<(Instant, u64)>) {
        let (end, duration) = self.attempts[0];
        let start = end - duration;
        let during = self
            .pings
            .iter()
            .filter(|(at, _)| *at >= start && *at <= end)
            .copied()
            .collect();
        (duration, during)
    }
}

/// The hard side (behind a symmetric NAT) opens `sockets`, the easy side
/// sends `probes`; a budget of 1 on the other side makes the attempt miss,
/// so the heavy side works through its whole budget. At 100 datagrams a
/// second (a tenth of the default pace) an attempt lasts long enough to
/// watch. Pings every second.
fn run(sockets: u16, probes: u16) -> (Seen, Seen) {
    let lab = PunchLab::builder(Nat::Symmetric, Nat::PortRestricted)
        .build()
        .unwrap();
    let (_relay, relay_addr) = lab.start_relay().unwrap();
    let trial = Trial::port_aware().ping_interval_secs(1);
    let args = |role| {
        let mut args = trial.peer_args(role, &relay_addr, lab.range());
        args.punch.birthday_sockets = sockets;
        args.punch.birthday_probes = probes;
        args.punch.birthday_pace = 100;
        args.timeout_secs = 60;
        args
    };
    let hard = LabNode::spawn(
        lab.lab().host("a0"),
        "a0",
        &lab.binaries().peer,
        args(PeerRole::Reserving).to_args(),
    )
    .unwrap();
    let target = hard.wait_ready().unwrap();
    let mut dialing = args(PeerRole::Dialing);
    dialing.dial = Some(target);
    let easy = LabNode::spawn(
        lab.lab().host("b0"),
        "b0",
        &lab.binaries().peer,
        dialing.to_args(),
    )
    .unwrap();
    let (mut hard_seen, mut easy_seen) = (Seen::default(), Seen::default());
    let deadline = Instant::now() + Duration::from_secs(45);
    while Instant::now() < deadline
        && (hard_seen.attempts.is_empty() || easy_seen.attempts.is_empty())
    {
        if let Some(event) = hard.next_event(Duration::from_millis(10)) {
            hard_seen.record(&event);
        }
        if let Some(event) = easy.next_event(Duration::from_millis(10)) {
            easy_seen.record(&event);
        }
    }
    (hard_seen, easy_seen)
}

/// Pings kept coming every second or so, each answered within 500 ms.
fn assert_served(side: &str, seen: &Seen) {
    let (duration, pings) = seen.pings_during_first_attempt();
    let expected = duration.as_secs().saturating_sub(2) as usize;
    // (An attempt that meets a mapping by luck ends early: fewer pings.)
    assert!(
        pings.len() >= expected,
        "{side}: {} relayed pings in a {duration:?} attempt",
        pings.len()
    );
    for pair in pings.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap < Duration::from_millis(2500), "{side}: a {gap:?} gap");
    }
    let slowest = pings.iter().map(|(_, rtt)| *rtt).max().unwrap_or(0);
    assert!(slowest < 500, "{side}: a ping took {slowest} ms");
    eprintln!(
        "{side}: {} pings answered during a {duration:?} attempt, slowest {slowest} ms",
        pings.len()
    );
}

#[test]
fn the_easy_side_serves_its_relayed_connection_while_it_sends_1024_probes() {
    require_lab!();
    let (_, easy) = run(1, 1024);
    assert_served("easy side", &easy);
}

#[test]
fn the_hard_side_serves_its_relayed_connection_while_256_sockets_send() {
    require_lab!();
    let (hard, _) = run(256, 1);
    assert_served("hard side", &hard);
}
