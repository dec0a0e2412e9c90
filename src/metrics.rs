//! Prometheus metrics for punchport's hole punching.
//!
//! Named after go-libp2p's holepunch metrics and registered under the
//! `libp2p` prefix as libp2p-metrics does, so dashboards for either read
//! them:
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `libp2p_holepunch_direct_dials_total` | `outcome` | this side's direct dials (DCUtR attempts), by `success`/`failed` |
//! | `libp2p_holepunch_address_outcomes_total` | `side`, `num_attempts`, `ipv`, `transport`, `outcome` | the same dials, by side (`initiator`/`responder`), attempt number, IP version of the address dialed and outcome |
//! | `libp2p_holepunch_outcomes_total` | `side`, `num_attempts`, `outcome` | hole punches that ended, on either side: `success` when a direct connection opened (whichever side dialed it), `failed` otherwise; `num_attempts` is this side's dials until then |
//! | `libp2p_holepunch_time_to_direct_seconds` | `side` | histogram: relayed connection to the first direct connection |
//! | `libp2p_holepunch_candidates_total` | `decision` | the candidate filter's decisions |
//! | `libp2p_holepunch_nat` | `ipv`, `mapping`, `port_preserved` | 1 for the current NAT classification of each family's punch socket, 0 for earlier ones |
//! | `libp2p_holepunch_punch_socket_moves_total` | | moves of the punch socket to another port |
//! | `libp2p_holepunch_birthday_attempts_total` | `role`, `ipv`, `outcome` | birthday punches (one side's NAT maps endpoint-dependently), by this side's role (`hard`/`easy`) and outcome |
//! | `libp2p_holepunch_birthday_flows_total` | `role`, `ipv` | sockets the hard side opened and probes the easy side sent |
//! | `libp2p_holepunch_birthday_datagrams_total` | `role`, `ipv` | datagrams birthday punches sent |
//! | `libp2p_holepunch_birthday_bytes_total` | `role`, `ipv` | bytes those datagrams took on the wire (IP and UDP headers included) |
//!
//! ```
//! use libp2p_metrics::Recorder;
//! use prometheus_client::registry::Registry;
//!
//! let mut registry = Registry::default();
//! let metrics = punchport::metrics::Metrics::new(&mut registry);
//! # let event: Option<punchport::Event> = None;
//! // for every event of punchport's DCUtR behaviour:
//! if let Some(event) = &event {
//!     metrics.record(event);
//! }
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry)?;
//! assert!(text.contains("libp2p_holepunch_punch_socket_moves_total 0"));
//! # Ok::<(), std::fmt::Error>(())
//! ```

use std::sync::Mutex;

use crate::dcutr::{AttemptOutcome, Decision, Event, Method, NatStatus, Observation};
use crate::net::QuicAddr;
use libp2p_core::Multiaddr;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

/// The hole-punch metrics; feed it every [`Event`] with
/// [`Recorder::record`](libp2p_metrics::Recorder::record).
#[derive(Debug)]
pub struct Metrics {
    direct_dials: Family<DialLabels, Counter>,
    address_outcomes: Family<AddressOutcomeLabels, Counter>,
    outcomes: Family<OutcomeLabels, Counter>,
    time_to_direct: Family<SideLabels, Histogram>,
    candidates: Family<DecisionLabels, Counter>,
    nat: Family<NatLabels, Gauge>,
    /// The current classification of each family's punch socket.
    current_nat: Mutex<Vec<NatLabels>>,
    moves: Counter,
    birthday_attempts: Family<BirthdayLabels, Counter>,
    birthday_flows: Family<RoleLabels, Counter>,
    birthday_datagrams: Family<RoleLabels, Counter>,
    birthday_bytes: Family<RoleLabels, Counter>,
}

impl Metrics {
    /// Registers the metrics in `registry` under `libp2p_holepunch_`.
    pub fn new(registry: &mut Registry) -> Self {
        let registry = registry
            .sub_registry_with_prefix("libp2p")
            .sub_registry_with_prefix("holepunch");
        let direct_dials = Family::default();
        registry.register(
            "direct_dials",
            "Direct dials of hole punches, by outcome",
            direct_dials.clone(),
        );
        let address_outcomes = Family::default();
        registry.register(
            "address_outcomes",
            "Direct dials of hole punches, by side, attempt, IP version and outcome",
            address_outcomes.clone(),
        );
        let outcomes = Family::default();
        registry.register(
            "outcomes",
            "Hole punches that ended, by side, this side's attempts and outcome",
            outcomes.clone(),
        );
        let time_to_direct =
            Family::new_with_constructor(time_to_direct_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "time_to_direct",
            "Time from the relayed connection to the successful hole punch",
            Unit::Seconds,
            time_to_direct.clone(),
        );
        let candidates = Family::default();
        registry.register(
            "candidates",
            "Decisions of the candidate filter about observed addresses",
            candidates.clone(),
        );
        let nat = Family::default();
        registry.register(
            "nat",
            "The NAT in front of the punch socket: 1 for the current classification",
            nat.clone(),
        );
        let moves = Counter::default();
        registry.register(
            "punch_socket_moves",
            "Moves of the punch socket because the NAT rewrote its port",
            moves.clone(),
        );
        let birthday_attempts = Family::default();
        registry.register(
            "birthday_attempts",
            "Birthday punches, by this side's role and outcome",
            birthday_attempts.clone(),
        );
        let birthday_flows = Family::default();
        registry.register(
            "birthday_flows",
            "Sockets opened (hard side) and probes sent (easy side) by birthday punches",
            birthday_flows.clone(),
        );
        let birthday_datagrams = Family::default();
        registry.register(
            "birthday_datagrams",
            "Datagrams birthday punches sent, by this side's role",
            birthday_datagrams.clone(),
        );
        let birthday_bytes = Family::default();
        registry.register(
            "birthday_bytes",
            "Bytes on the wire (IP and UDP headers included) of the datagrams birthday punches sent, by this side's role",
            birthday_bytes.clone(),
        );
        Self {
            birthday_attempts,
            birthday_flows,
            birthday_datagrams,
            birthday_bytes,
            direct_dials,
            address_outcomes,
            outcomes,
            time_to_direct,
            candidates,
            nat,
            current_nat: Mutex::new(Vec::new()),
            moves,
        }
    }

    fn nat_status(&self, status: &NatStatus) {
        let labels = NatLabels {
            ipv: match status.family {
                crate::net::Family::Ipv4 => "ip4",
                crate::net::Family::Ipv6 => "ip6",
            },
            mapping: status.mapping.as_str(),
            port_preserved: match status.port_preserved {
                Some(true) => "true",
                Some(false) => "false",
                None => "unknown",
            },
        };
        let mut current = self
            .current_nat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(previous) = current.iter_mut().find(|l| l.ipv == labels.ipv) {
            self.nat.get_or_create(previous).set(0);
            *previous = labels.clone();
        } else {
            current.push(labels.clone());
        }
        self.nat.get_or_create(&labels).set(1);
    }
}

fn time_to_direct_histogram() -> Histogram {
    Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0])
}

impl libp2p_metrics::Recorder<Event> for Metrics {
    fn record(&self, event: &Event) {
        match event {
            Event::Attempt(report) if matches!(report.method, Method::Birthday(_)) => {
                let Method::Birthday(stats) = &report.method else {
                    return;
                };
                let role = stats.role.as_str();
                let ipv = match stats.family {
                    crate::net::Family::Ipv4 => "ip4",
                    crate::net::Family::Ipv6 => "ip6",
                };
                let outcome = match &report.outcome {
                    AttemptOutcome::Direct { .. } => "success",
                    AttemptOutcome::Failed { .. } => "failed",
                };
                self.birthday_attempts
                    .get_or_create(&BirthdayLabels { role, ipv, outcome })
                    .inc();
                self.birthday_flows
                    .get_or_create(&RoleLabels { role, ipv })
                    .inc_by(u64::from(stats.sockets) + u64::from(stats.probes));
                self.birthday_datagrams
                    .get_or_create(&RoleLabels { role, ipv })
                    .inc_by(u64::from(stats.sent.datagrams));
                self.birthday_bytes
                    .get_or_create(&RoleLabels { role, ipv })
                    .inc_by(stats.sent.bytes);
            }
            Event::Attempt(report) => {
                let ipv = report
                    .dialed
                    .first()
                    .or(report.candidates_received.first())
                    .map_or("unknown", ipv_of);
                let outcome = match &report.outcome {
                    AttemptOutcome::Direct { .. } => "success",
                    AttemptOutcome::Failed { .. } => "failed",
                };
                self.direct_dials
                    .get_or_create(&DialLabels { outcome })
                    .inc();
                self.address_outcomes
                    .get_or_create(&AddressOutcomeLabels {
                        side: report.side.as_str(),
                        num_attempts: report.attempt,
                        ipv,
                        transport: "quic",
                        outcome,
                    })
                    .inc();
            }
            Event::Direct(report) => {
                self.outcomes
                    .get_or_create(&OutcomeLabels {
                        side: report.side.as_str(),
                        num_attempts: report.attempts,
                        outcome: "success",
                    })
                    .inc();
                self.time_to_direct
                    .get_or_create(&SideLabels {
                        side: report.side.as_str(),
                    })
                    .observe(report.since_relayed.as_secs_f64());
            }
            Event::PunchFailed(report) => {
                self.outcomes
                    .get_or_create(&OutcomeLabels {
                        side: report.side.as_str(),
                        num_attempts: report.attempts,
                        outcome: "failed",
                    })
                    .inc();
            }
            Event::Candidate(verdict) => {
                self.candidates
                    .get_or_create(&DecisionLabels {
                        decision: decision_label(&verdict.decision),
                    })
                    .inc();
            }
            Event::Nat(status) => self.nat_status(status),
            Event::Mapping(Observation::Rewritten {
                moving_to: Some(_), ..
            }) => {
                self.moves.inc();
            }
            _ => {}
        }
    }
}

fn decision_label(decision: &Decision) -> &'static str {
    match decision {
        Decision::Kept => "kept",
        Decision::Translated(_) => "translated",
        Decision::Fallback => "fallback",
        Decision::Bypassed => "bypassed",
        Decision::OnPunchSocket => "on_punch_socket",
        Decision::Dropped(_) => "dropped",
    }
}

fn ipv_of(addr: &Multiaddr) -> &'static str {
    match QuicAddr::parse(addr) {
        Ok(quic) if quic.socket.is_ipv4() => "ip4",
        Ok(_) => "ip6",
        Err(_) => "unknown",
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DialLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AddressOutcomeLabels {
    side: &'static str,
    num_attempts: u8,
    ipv: &'static str,
    transport: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    side: &'static str,
    num_attempts: u8,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BirthdayLabels {
    role: &'static str,
    ipv: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    role: &'static str,
    ipv: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SideLabels {
    side: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NatLabels {
    ipv: &'static str,
    mapping: &'static str,
    port_preserved: &'static str,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::dcutr::{
        AttemptReport, DirectReport, FailureReport, MappingKind, PunchError, Side, Source, Verdict,
    };
    use crate::net::Family;
    use libp2p_metrics::Recorder;
    use libp2p_swarm::ConnectionId;

    use super::*;

    fn text(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    }

    fn addr() -> Multiaddr {
        "/ip4/198.51.100.2/udp/40000/quic-v1".parse().unwrap()
    }

    fn report(outcome: AttemptOutcome) -> AttemptReport {
        AttemptReport {
            remote_peer_id: libp2p_identity::PeerId::random(),
            side: Side::Initiator,
            attempt: 1,
            local_addr: None,
            candidates_sent: Vec::new(),
            candidates_received: vec![addr()],
            dialed: Vec::new(),
            duration: Duration::from_millis(100),
            since_relayed: Some(Duration::from_millis(300)),
            outcome,
            method: Method::Plain,
        }
    }

    #[test]
    fn attempts_punches_candidates_and_the_nat_show_in_the_text() {
        let mut registry = Registry::default();
        let metrics = Metrics::new(&mut registry);
        metrics.record(&Event::Attempt(report(AttemptOutcome::Failed {
            error: crate::DialFailure::HandshakeTimedOut,
        })));
        metrics.record(&Event::Attempt(report(AttemptOutcome::Direct {
            address: addr(),
        })));
        let mut birthday = report(AttemptOutcome::Direct { address: addr() });
        birthday.method = Method::Birthday(crate::dcutr::BirthdayStats {
            role: crate::dcutr::Role::Easy,
            family: crate::net::Family::Ipv4,
            sockets: 0,
            probes: 217,
            sent: crate::dcutr::Cost {
                datagrams: 217,
                bytes: 217 * 52,
            },
            winner: Some(31337),
            window_used: None,
        });
        metrics.record(&Event::Attempt(birthday));
        metrics.record(&Event::Direct(DirectReport {
            remote_peer_id: libp2p_identity::PeerId::random(),
            connection_id: ConnectionId::new_unchecked(1),
            side: Side::Initiator,
            endpoint: libp2p_core::Endpoint::Listener,
            attempts: 1,
            since_relayed: Duration::from_millis(300),
            local_addr: None,
            remote_addr: addr(),
        }));
        metrics.record(&Event::PunchFailed(FailureReport {
            remote_peer_id: libp2p_identity::PeerId::random(),
            side: Side::Responder,
            attempts: 3,
            since_relayed: Duration::from_secs(15),
            error: PunchError::RelayedClosed,
        }));
        metrics.record(&Event::Candidate(Verdict {
            source: Source::Observed,
            addr: "/ip4/198.51.100.1/udp/40000/quic-v1".parse().unwrap(),
            decision: Decision::Kept,
        }));
        let status = |family, mapping, preserved| NatStatus {
            family,
            mapping,
            port_preserved: Some(preserved),
            observers: 2,
        };
        metrics.record(&Event::Nat(status(
            Family::Ipv4,
            MappingKind::EndpointDependent,
            false,
        )));
        metrics.record(&Event::Nat(status(
            Family::Ipv6,
            MappingKind::EndpointDependent,
            false,
        )));
        metrics.record(&Event::Nat(status(
            Family::Ipv4,
            MappingKind::EndpointIndependent,
            true,
        )));
        let text = text(&registry);
        for line in [
            r#"libp2p_holepunch_birthday_attempts_total{role="easy",ipv="ip4",outcome="success"} 1"#,
            r#"libp2p_holepunch_birthday_flows_total{role="easy",ipv="ip4"} 217"#,
            r#"libp2p_holepunch_birthday_datagrams_total{role="easy",ipv="ip4"} 217"#,
            r#"libp2p_holepunch_birthday_bytes_total{role="easy",ipv="ip4"} 11284"#,
            r#"libp2p_holepunch_direct_dials_total{outcome="failed"} 1"#,
            r#"libp2p_holepunch_direct_dials_total{outcome="success"} 1"#,
            r#"libp2p_holepunch_address_outcomes_total{side="initiator",num_attempts="1",ipv="ip4",transport="quic",outcome="success"} 1"#,
            r#"libp2p_holepunch_address_outcomes_total{side="initiator",num_attempts="1",ipv="ip4",transport="quic",outcome="failed"} 1"#,
            r#"libp2p_holepunch_outcomes_total{side="initiator",num_attempts="1",outcome="success"} 1"#,
            r#"libp2p_holepunch_outcomes_total{side="responder",num_attempts="3",outcome="failed"} 1"#,
            r#"libp2p_holepunch_time_to_direct_seconds_count{side="initiator"} 1"#,
            r#"libp2p_holepunch_candidates_total{decision="kept"} 1"#,
            r#"libp2p_holepunch_nat{ipv="ip4",mapping="endpoint-dependent",port_preserved="false"} 0"#,
            r#"libp2p_holepunch_nat{ipv="ip4",mapping="endpoint-independent",port_preserved="true"} 1"#,
            r#"libp2p_holepunch_nat{ipv="ip6",mapping="endpoint-dependent",port_preserved="false"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
