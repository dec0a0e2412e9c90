//! The metrics endpoint after a punch in the lab: the reserving peer's
//! hole-punch metrics and the relay's libp2p metrics.

#![allow(clippy::unwrap_used)]

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use punchport_lab::{PunchLab, Trial, natlab::Host, natlab::Nat, require_lab};
use punchport_node::NodeEvent;

/// `GET /metrics` from inside `host`'s namespace.
fn scrape(host: &Host, port: u16) -> String {
    host.run(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .unwrap()
}

/// The value of the sample `name` (with its labels, as printed), if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
}

#[test]
fn the_metrics_endpoint_shows_the_punch() {
    require_lab!();
    let lab = PunchLab::builder(Nat::PortRestricted, Nat::PortRestricted)
        .build()
        .unwrap();
    let mut relay_args = lab.relay_args();
    relay_args.metrics_address = Some("127.0.0.1:9464".parse().unwrap());
    let (_relay, relay_addr) = lab.start_relay_with(relay_args).unwrap();
    let trial = Trial::port_aware().metrics_address("127.0.0.1:9465".parse().unwrap());
    let reserving = lab
        .start_peer(lab.lab().host("a0"), &relay_addr, &trial, None)
        .unwrap();
    let port = reserving
        .wait_for(Duration::from_secs(20), "metrics", |e| match e {
            NodeEvent::Metrics { address } => Some(address.port()),
            _ => None,
        })
        .unwrap();
    assert_eq!(port, 9465);
    let id = reserving.wait_ready().unwrap();
    let mut dialing = lab
        .start_peer(lab.lab().host("b0"), &relay_addr, &trial, Some(id))
        .unwrap();
    assert_eq!(
        dialing.wait_exit(Duration::from_secs(30)),
        Some(0),
        "{}",
        dialing.stderr()
    );
    // The punch ended (`direct`, whichever side's dial made it) and the
    // initiator's own dial ended, connected or not (the dialing peer exits
    // half a second after it is direct), in whichever order they come.
    let (mut direct, mut attempt) = (false, false);
    while !(direct && attempt) {
        reserving
            .wait_for(Duration::from_secs(10), "direct and attempt", |e| {
                match e {
                    NodeEvent::Direct { .. } => direct = true,
                    NodeEvent::Attempt { .. } => attempt = true,
                    _ => return None,
                }
                Some(())
            })
            .unwrap();
    }
    let text = scrape(lab.lab().host("a0"), port);
    assert!(text.starts_with("HTTP/1."), "{text}");
    assert!(text.contains("application/openmetrics-text"), "{text}");
    // The sum of the samples of `name` whose labels include all of `labels`.
    let total = |name: &str, labels: &[&str]| -> f64 {
        text.lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(name)?.strip_prefix('{')?;
                let (set, value) = rest.split_once("} ")?;
                labels
                    .iter()
                    .all(|l| set.split(',').any(|s| s == *l))
                    .then(|| value.trim().parse::<f64>().ok())?
            })
            .sum()
    };
    let punches = total(
        "libp2p_holepunch_outcomes_total",
        &[r#"side="initiator""#, r#"outcome="success""#],
    );
    assert_eq!(punches, 1.0, "{text}");
    assert_eq!(
        total("libp2p_holepunch_outcomes_total", &[r#"outcome="failed""#]),
        0.0,
        "{text}"
    );
    assert!(
        total("libp2p_holepunch_direct_dials_total", &[]) >= 1.0,
        "{text}"
    );
    assert_eq!(
        total(
            "libp2p_holepunch_time_to_direct_seconds_count",
            &[r#"side="initiator""#]
        ),
        1.0,
        "{text}"
    );
    let expect = |name: &str, at_least: f64| {
        let value = sample(&text, name).unwrap_or_else(|| panic!("no {name} in\n{text}"));
        assert!(value >= at_least, "{name} = {value}");
    };
    expect(r#"libp2p_holepunch_candidates_total{decision="kept"}"#, 1.0);
    expect(
        r#"libp2p_holepunch_nat{ipv="ip4",mapping="endpoint-independent",port_preserved="true"}"#,
        1.0,
    );
    assert!(
        text.contains("libp2p_swarm_connections_incoming_total"),
        "{text}"
    );
    assert!(text.contains("libp2p_identify_"), "{text}");

    let relay_text = scrape(lab.lab().relay(), 9464);
    assert!(
        relay_text.contains("libp2p_relay_events_total"),
        "{relay_text}"
    );
}
