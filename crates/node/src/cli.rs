//! Command lines of the `relay` and `peer` binaries.
//!
//! Scripts outside this repository drive the binaries, so the flags and the
//! JSON lines are a fixed interface. A bad flag gets a one-line error on
//! stderr and exit code 2.

use std::{ffi::OsString, net::IpAddr, process::ExitCode, time::Duration};

use clap::{Parser, error::ErrorKind};
use libp2p::{Multiaddr, PeerId};
use punchport::{CandidateMode, InitiatorRole, PortRange};

use crate::{ConfigError, PeerConfig, RelayConfig, RelayLimits, TransportKind, keypair_from_seed};

/// Exit code for bad flags.
pub const EXIT_USAGE: u8 = 2;

const DEFAULT_PING_INTERVAL_SECS: u64 = 15;
/// Long enough for a deferred birthday punch (one plain attempt of 5 s
/// first) and two attempts, with room to spare: a dialer behind an
/// endpoint-dependent NAT whose first attempt missed is still waiting when
/// the second connects.
const DEFAULT_TIMEOUT_SECS: u64 = 45;

/// Parses the command line, or prints help (exit 0) or a one-line error
/// (exit 2).
pub fn parse_or_exit<T: Parser>(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<T, ExitCode> {
    T::try_parse_from(args).map_err(|err| match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        _ => {
            usage_error(one_line(&err.to_string()));
            ExitCode::from(EXIT_USAGE)
        }
    })
}

/// The configuration, or a one-line error and exit code 2.
pub fn config_or_exit<T>(config: Result<T, ConfigError>) -> Result<T, ExitCode> {
    config.map_err(|e| {
        usage_error(format!("error: {e}"));
        ExitCode::from(EXIT_USAGE)
    })
}

/// What a node binary does first: parses the process's arguments as `A`,
/// logs at `info` (or `RUST_LOG`), and builds the node's configuration with
/// `config`; on bad input, prints one line and returns the exit code.
pub fn start<A: Parser, C>(
    config: impl FnOnce(&A) -> Result<C, ConfigError>,
) -> Result<(A, C), ExitCode> {
    let args: A = parse_or_exit(std::env::args_os())?;
    init_tracing("info");
    let config = config_or_exit(config(&args))?;
    Ok((args, config))
}

/// Logs to stderr, filtered by `RUST_LOG` or else by `default` (e.g. `info`),
/// with colours only on a terminal.
pub fn init_tracing(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Prints a usage error as one line on stderr.
pub fn usage_error(message: impl std::fmt::Display) {
    eprintln!("{}", one_line(&message.to_string()));
}

fn one_line(text: &str) -> String {
    // clap puts the message first, then a blank line and usage hints; a list
    // of missing arguments follows on indented lines.
    let message: Vec<&str> = text
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
        .collect();
    let joined = message.join(" ");
    let joined = joined.trim_end_matches(':').trim();
    match joined {
        "" => "error: invalid arguments".to_owned(),
        line if line.starts_with("error:") => line.to_owned(),
        line => format!("error: {line}"),
    }
}

/// `relay`: a circuit relay v2 server with identify and ping.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "relay", version, about)]
pub struct RelayArgs {
    /// Address to listen on, e.g. /ip4/0.0.0.0/udp/443/quic-v1 (repeatable).
    #[arg(long, required = true, value_name = "MULTIADDR", value_parser = parse_multiaddr)]
    pub listen: Vec<Multiaddr>,
    /// Address to announce as reachable, e.g. the public IP (repeatable).
    /// Without it the relay announces its listen addresses.
    #[arg(long = "external-address", value_name = "MULTIADDR", value_parser = parse_multiaddr)]
    pub external_address: Vec<Multiaddr>,
    /// Derive the identity from this byte (for tests and labs only: anyone can derive it).
    #[arg(long, value_name = "U8", conflicts_with = "key_file")]
    pub secret_key_seed: Option<u8>,
    /// Read the identity from this file (protobuf-encoded libp2p keypair),
    /// creating it if missing. Without this or --secret-key-seed the identity
    /// is new on every start.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<std::path::PathBuf>,
    /// Reservations held at once.
    #[arg(long, default_value_t = RelayLimits::default().max_reservations, value_parser = count)]
    pub max_reservations: usize,
    /// Reservations one peer may hold at once.
    #[arg(long, default_value_t = RelayLimits::default().max_reservations_per_peer, value_parser = count)]
    pub max_reservations_per_peer: usize,
    /// Seconds a reservation lasts before it must be renewed.
    #[arg(long, default_value_t = RelayLimits::default().reservation_duration.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub reservation_duration_secs: u64,
    /// Circuits open at once.
    #[arg(long, default_value_t = RelayLimits::default().max_circuits, value_parser = count)]
    pub max_circuits: usize,
    /// Circuits one peer may have open at once.
    #[arg(long, default_value_t = RelayLimits::default().max_circuits_per_peer, value_parser = count)]
    pub max_circuits_per_peer: usize,
    /// Seconds a circuit may stay open.
    #[arg(long, default_value_t = RelayLimits::default().max_circuit_duration.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub max_circuit_duration_secs: u64,
    /// Bytes a circuit may carry in each direction.
    #[arg(long, default_value_t = RelayLimits::default().max_circuit_bytes, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_circuit_bytes: u64,
    /// Turn off the per-peer and per-IP rate limits (for many peers behind one IP).
    #[arg(long)]
    pub no_rate_limits: bool,
    /// Serve Prometheus metrics at http://<ADDR>/metrics, e.g. 0.0.0.0:9464 (off by default).
    #[arg(long, value_name = "ADDR")]
    pub metrics_address: Option<std::net::SocketAddr>,
    /// Accept reservations only from this peer (repeatable); without it any
    /// peer may reserve, within the limits.
    #[arg(long = "allow-peer", value_name = "PEER_ID", value_parser = parse_peer_id)]
    pub allow_peer: Vec<PeerId>,
}

impl RelayArgs {
    /// The flags of a relay listening on `listen` with every other flag at
    /// its default.
    pub fn new(listen: Vec<Multiaddr>) -> Self {
        let limits = RelayLimits::default();
        Self {
            listen,
            external_address: Vec::new(),
            secret_key_seed: None,
            key_file: None,
            max_reservations: limits.max_reservations,
            max_reservations_per_peer: limits.max_reservations_per_peer,
            reservation_duration_secs: limits.reservation_duration.as_secs(),
            max_circuits: limits.max_circuits,
            max_circuits_per_peer: limits.max_circuits_per_peer,
            max_circuit_duration_secs: limits.max_circuit_duration.as_secs(),
            max_circuit_bytes: limits.max_circuit_bytes,
            no_rate_limits: false,
            metrics_address: None,
            allow_peer: Vec::new(),
        }
    }

    /// The command line that parses back into these flags (without the
    /// program name): what the NAT lab runs the binary with.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Args::default();
        args.each("--listen", &self.listen);
        args.each("--external-address", &self.external_address);
        args.opt("--secret-key-seed", self.secret_key_seed);
        args.opt("--key-file", self.key_file.as_ref().map(|p| p.display()));
        let defaults = RelayLimits::default();
        args.unless_default(
            "--max-reservations",
            self.max_reservations,
            defaults.max_reservations,
        );
        args.unless_default(
            "--max-reservations-per-peer",
            self.max_reservations_per_peer,
            defaults.max_reservations_per_peer,
        );
        args.unless_default(
            "--reservation-duration-secs",
            self.reservation_duration_secs,
            defaults.reservation_duration.as_secs(),
        );
        args.unless_default("--max-circuits", self.max_circuits, defaults.max_circuits);
        args.unless_default(
            "--max-circuits-per-peer",
            self.max_circuits_per_peer,
            defaults.max_circuits_per_peer,
        );
        args.unless_default(
            "--max-circuit-duration-secs",
            self.max_circuit_duration_secs,
            defaults.max_circuit_duration.as_secs(),
        );
        args.unless_default(
            "--max-circuit-bytes",
            self.max_circuit_bytes,
            defaults.max_circuit_bytes,
        );
        args.flag("--no-rate-limits", self.no_rate_limits);
        args.opt("--metrics-address", self.metrics_address);
        args.each("--allow-peer", &self.allow_peer);
        args.0
    }

    /// The relay configuration these flags describe.
    pub fn config(&self) -> Result<RelayConfig, ConfigError> {
        let keypair = keypair(self.secret_key_seed, self.key_file.as_deref())?;
        for addr in &self.listen {
            punchport::QuicAddr::parse(addr).map_err(ConfigError::ListenAddr)?;
        }
        for addr in &self.external_address {
            punchport::QuicAddr::parse(addr).map_err(ConfigError::ExternalAddr)?;
        }
        let mut config = RelayConfig::new(keypair, self.listen.clone());
        config.external = self.external_address.clone();
        config.limits = RelayLimits {
            max_reservations: self.max_reservations,
            max_reservations_per_peer: self.max_reservations_per_peer,
            reservation_duration: Duration::from_secs(self.reservation_duration_secs),
            max_circuits: self.max_circuits,
            max_circuits_per_peer: self.max_circuits_per_peer,
            max_circuit_duration: Duration::from_secs(self.max_circuit_duration_secs),
            max_circuit_bytes: self.max_circuit_bytes,
            rate_limits: !self.no_rate_limits,
        };
        config.metrics_address = self.metrics_address;
        if !self.allow_peer.is_empty() {
            config.allow = Some(self.allow_peer.iter().copied().collect());
        }
        Ok(config)
    }
}

/// `peer`: meets other peers through a relay and hole-punches to them.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "peer", version, about)]
pub struct PeerArgs {
    /// The relay, with its peer id: /ip4/<ip>/udp/<port>/quic-v1/p2p/<id>.
    #[arg(long, value_name = "MULTIADDR", value_parser = parse_multiaddr)]
    pub relay: Multiaddr,
    /// An ordinary listen address, e.g. /ip4/0.0.0.0/udp/443/quic-v1 (repeatable).
    #[arg(long, value_name = "MULTIADDR", value_parser = parse_multiaddr)]
    pub listen: Vec<Multiaddr>,
    /// punchport's settings.
    #[command(flatten)]
    pub punch: PunchArgs,
    /// Announce this IP (with the punch port) to peers, e.g. a known public IP.
    #[arg(long, value_name = "IP")]
    pub announce_ip: Option<IpAddr>,
    /// `port-aware` (punchport) or `stock` (plain with_quic() and DCUtR, the control).
    #[arg(long, default_value_t = TransportKind::PortAware, value_name = "KIND")]
    pub transport: TransportKind,
    /// Derive the identity from this byte (for tests and labs only: anyone can derive it).
    #[arg(long, value_name = "U8", conflicts_with = "key_file")]
    pub secret_key_seed: Option<u8>,
    /// Read the identity from this file (protobuf-encoded libp2p keypair),
    /// creating it if missing.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<std::path::PathBuf>,
    /// Dial this peer through the relay and punch; exit 0 once direct, 1 on failure.
    #[arg(long, value_name = "PEER_ID", value_parser = parse_peer_id)]
    pub dial: Option<PeerId>,
    /// Seconds between pings on every connection; each answer prints a `ping` line.
    #[arg(long, default_value_t = DEFAULT_PING_INTERVAL_SECS, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub ping_interval_secs: u64,
    /// Serve Prometheus metrics at http://<ADDR>/metrics, e.g. 0.0.0.0:9464 (off by default).
    #[arg(long, value_name = "ADDR")]
    pub metrics_address: Option<std::net::SocketAddr>,
    /// With --dial: never exit; when a punch fails or the direct connection
    /// is lost, punch again through a new relayed connection.
    #[arg(long, requires = "dial")]
    pub persist: bool,
    /// With --dial: give up after this many seconds.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout_secs: u64,
    /// Print a `maps` line with the sizes of punchport's own maps every this
    /// many seconds (off by default).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub maps_interval_secs: Option<u64>,
}

/// punchport's settings on the command line: the one conversion to
/// [`punchport::Config`] ([`PunchArgs::apply`]), and what the lab and the
/// benchmarks vary.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct PunchArgs {
    /// The UDP port range of the punch socket.
    #[arg(long, default_value_t = PortRange::default(), value_name = "START-END")]
    pub punch_range: PortRange,
    /// How the DCUtR initiator punches: `client` (a QUIC connect at the same
    /// time as the other side's) or `server` (the spec's random UDP packets,
    /// then accepting). Port-aware only.
    #[arg(long, default_value_t = InitiatorRole::Client, value_name = "ROLE")]
    pub initiator_role: InitiatorRole,
    /// Which observed addresses DCUtR may advertise: `socket-aware` (also
    /// what observers saw of the punch socket, for NATs that keep mappings
    /// but not ports) or `range` (only ports of the punch range).
    #[arg(long, default_value_t = CandidateMode::SocketAware, value_name = "MODE")]
    pub candidates: CandidateMode,
    /// Birthday punching, when one side's NAT maps endpoint-dependently and
    /// the other's does not: `on` or `off`. Port-aware only.
    #[arg(long, default_value_t = OnOff::On, value_name = "ON|OFF")]
    pub birthday: OnOff,
    /// Birthday: sockets the endpoint-dependent side opens (1-256).
    #[arg(long, default_value_t = punchport::MAX_SOCKETS, value_parser = clap::value_parser!(u16).range(1..=i64::from(punchport::MAX_SOCKETS)))]
    pub birthday_sockets: u16,
    /// Birthday: probes the endpoint-independent side sends (1-1024).
    #[arg(long, default_value_t = punchport::MAX_PROBES, value_parser = clap::value_parser!(u16).range(1..=i64::from(punchport::MAX_PROBES)))]
    pub birthday_probes: u16,
    /// Birthday: datagrams (sockets or probes, each a new NAT flow) per
    /// second on each side (1-5000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=5000))]
    pub birthday_pace: u16,
    /// TTL of the datagrams that must leave this node's NAT but not reach the
    /// other side's (1-64): 2 for a NAT one hop away (a Kubernetes node, a
    /// home router); n + 1 for a NAT n hops away.
    #[arg(long, default_value_t = punchport::DEFAULT_OPENER_TTL, value_parser = clap::value_parser!(u8).range(1..=64))]
    pub opener_ttl: u8,
}

impl Default for PunchArgs {
    fn default() -> Self {
        Self {
            punch_range: PortRange::default(),
            initiator_role: InitiatorRole::Client,
            candidates: CandidateMode::SocketAware,
            birthday: OnOff::On,
            birthday_sockets: punchport::MAX_SOCKETS,
            birthday_probes: punchport::MAX_PROBES,
            birthday_pace: 1000,
            opener_ttl: punchport::DEFAULT_OPENER_TTL,
        }
    }
}

impl PunchArgs {
    /// `config` with these settings.
    pub fn apply(&self, config: punchport::Config) -> Result<punchport::Config, ConfigError> {
        let birthday = punchport::BirthdayConfig::new()
            .with_enabled(self.birthday == OnOff::On)
            .with_budget(self.birthday_sockets, self.birthday_probes)
            .and_then(|b| b.with_pace(self.birthday_pace))
            .map_err(ConfigError::Birthday)?;
        Ok(config
            .with_range(self.punch_range)
            .with_initiator_role(self.initiator_role)
            .with_candidates(self.candidates)
            .with_birthday(birthday)
            .with_opener_ttl(self.opener_ttl))
    }

    /// Sets birthday punching on or off.
    pub fn with_birthday(mut self, on: bool) -> Self {
        self.birthday = if on { OnOff::On } else { OnOff::Off };
        self
    }

    fn write(&self, args: &mut Args) {
        let default = Self::default();
        args.unless_default("--punch-range", self.punch_range, default.punch_range);
        args.unless_default(
            "--initiator-role",
            self.initiator_role,
            default.initiator_role,
        );
        args.unless_default("--candidates", self.candidates, default.candidates);
        args.unless_default("--birthday", self.birthday, default.birthday);
        args.unless_default(
            "--birthday-sockets",
            self.birthday_sockets,
            default.birthday_sockets,
        );
        args.unless_default(
            "--birthday-probes",
            self.birthday_probes,
            default.birthday_probes,
        );
        args.unless_default("--birthday-pace", self.birthday_pace, default.birthday_pace);
        args.unless_default("--opener-ttl", self.opener_ttl, default.opener_ttl);
    }
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum OnOff {
    /// On.
    On,
    /// Off.
    Off,
}

impl std::fmt::Display for OnOff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OnOff::On => "on",
            OnOff::Off => "off",
        })
    }
}

impl PeerArgs {
    /// The flags of a peer using the relay at `relay` with every other flag
    /// at its default.
    pub fn new(relay: &Multiaddr) -> Self {
        Self {
            relay: relay.clone(),
            listen: Vec::new(),
            punch: PunchArgs::default(),
            announce_ip: None,
            transport: TransportKind::PortAware,
            secret_key_seed: None,
            key_file: None,
            dial: None,
            ping_interval_secs: DEFAULT_PING_INTERVAL_SECS,
            metrics_address: None,
            persist: false,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            maps_interval_secs: None,
        }
    }

    /// The command line that parses back into these flags (without the
    /// program name): what the NAT lab runs the binary with.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Args::default();
        args.one("--relay", &self.relay);
        args.each("--listen", &self.listen);
        self.punch.write(&mut args);
        args.opt("--announce-ip", self.announce_ip);
        args.unless_default("--transport", self.transport, TransportKind::PortAware);
        args.opt("--secret-key-seed", self.secret_key_seed);
        args.opt("--key-file", self.key_file.as_ref().map(|p| p.display()));
        args.opt("--dial", self.dial);
        args.unless_default(
            "--ping-interval-secs",
            self.ping_interval_secs,
            DEFAULT_PING_INTERVAL_SECS,
        );
        args.opt("--metrics-address", self.metrics_address);
        args.flag("--persist", self.persist);
        args.unless_default("--timeout-secs", self.timeout_secs, DEFAULT_TIMEOUT_SECS);
        args.opt("--maps-interval-secs", self.maps_interval_secs);
        args.0
    }

    /// The peer configuration these flags describe.
    pub fn config(&self) -> Result<PeerConfig, ConfigError> {
        let identity = if self.secret_key_seed.is_some() || self.key_file.is_some() {
            keypair(self.secret_key_seed, self.key_file.as_deref())?
        } else {
            libp2p::identity::Keypair::generate_ed25519()
        };
        let punch = self.punch.apply(punchport::Config::new(&identity))?;
        let mut config = PeerConfig::with_keypair(self.relay.clone(), identity)?
            .listen(self.listen.clone())?
            .transport(self.transport)
            .punchport(|_| punch)
            .ping_interval(Duration::from_secs(self.ping_interval_secs));
        if let Some(ip) = self.announce_ip {
            config = config.announce_ip(ip);
        }
        if let Some(peer) = self.dial {
            config = config.dial(peer);
        }
        if let Some(addr) = self.metrics_address {
            config = config.metrics_address(addr);
        }
        config = config.persist(self.persist);
        if let Some(secs) = self.maps_interval_secs {
            config = config.maps_interval(Duration::from_secs(secs));
        }
        Ok(config)
    }

    /// The --timeout-secs value.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

/// A command line being written, flag by flag.
#[derive(Default)]
struct Args(Vec<String>);

impl Args {
    fn one(&mut self, flag: &str, value: impl std::fmt::Display) {
        self.0.extend([flag.to_owned(), value.to_string()]);
    }

    fn each<T: std::fmt::Display>(&mut self, flag: &str, values: &[T]) {
        for value in values {
            self.one(flag, value);
        }
    }

    fn opt(&mut self, flag: &str, value: Option<impl std::fmt::Display>) {
        if let Some(value) = value {
            self.one(flag, value);
        }
    }

    fn unless_default<T: std::fmt::Display + PartialEq>(
        &mut self,
        flag: &str,
        value: T,
        default: T,
    ) {
        if value != default {
            self.one(flag, value);
        }
    }

    fn flag(&mut self, flag: &str, on: bool) {
        if on {
            self.0.push(flag.to_owned());
        }
    }
}

/// A count of at least 1 and at most 1 000 000.
fn count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err(format!("`{text}` is not a count from 1 to 1000000")),
    }
}

/// The identity from a seed, a key file, or a new one.
fn keypair(
    seed: Option<u8>,
    key_file: Option<&std::path::Path>,
) -> Result<libp2p::identity::Keypair, ConfigError> {
    Ok(match (seed, key_file) {
        (Some(seed), _) => keypair_from_seed(seed),
        (None, Some(path)) => crate::load_or_create_keypair(path)?,
        (None, None) => libp2p::identity::Keypair::generate_ed25519(),
    })
}

/// A multiaddr, refusing absurdly long text before parsing it (a `/p2p/`
/// component is base58, whose decoding takes time quadratic in the length).
fn parse_multiaddr(text: &str) -> Result<Multiaddr, String> {
    const LONGEST: usize = 1024;
    if text.len() > LONGEST {
        let start: String = text.chars().take(20).collect();
        return Err(format!(
            "`{start}...` ({} characters) is too long for a multiaddr (at most {LONGEST}); write one like /ip4/198.51.100.1/udp/443/quic-v1",
            text.len()
        ));
    }
    text.parse().map_err(|e| {
        format!("`{text}` is no multiaddr ({e}); write one like /ip4/198.51.100.1/udp/443/quic-v1")
    })
}

/// A peer id, refusing absurdly long text before decoding it (base58
/// decoding takes time quadratic in the length).
fn parse_peer_id(text: &str) -> Result<PeerId, String> {
    const LONGEST: usize = 128;
    if text.len() > LONGEST {
        let start: String = text.chars().take(20).collect();
        return Err(format!(
            "`{start}...` ({} characters) is no peer id: peer ids are base58 text of at most {LONGEST} characters, like 12D3KooW...",
            text.len()
        ));
    }
    text.parse()
        .map_err(|e| format!("`{text}` is no peer id ({e}): write it as the base58 text a node prints, like 12D3KooW..."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(args: &[&str]) -> Result<PeerArgs, ExitCode> {
        parse_or_exit(std::iter::once("peer").chain(args.iter().copied()))
    }

    #[test]
    fn one_line_joins_a_list_of_missing_arguments() {
        let text = "error: the following required arguments were not provided:\n  --relay <MULTIADDR>\n\nUsage: peer --relay <MULTIADDR>\n";
        assert_eq!(
            one_line(text),
            "error: the following required arguments were not provided: --relay <MULTIADDR>"
        );
    }

    #[test]
    fn one_line_keeps_the_first_error_line() {
        let text = "error: invalid value 'x' for '--punch-range <START-END>': bad\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(text),
            "error: invalid value 'x' for '--punch-range <START-END>': bad"
        );
    }

    #[test]
    fn peer_flags_parse() {
        let relay = format!(
            "/ip4/198.51.100.1/udp/443/quic-v1/p2p/{}",
            keypair_from_seed(1).public().to_peer_id()
        );
        let args = peer(&[
            "--relay",
            &relay,
            "--punch-range",
            "41000-41010",
            "--transport",
            "stock",
        ])
        .unwrap();
        assert_eq!(args.punch.punch_range.to_string(), "41000-41010");
        assert_eq!(args.transport, TransportKind::Stock);
        assert!(args.config().is_ok());
    }

    #[test]
    fn flags_written_by_to_args_parse_back_to_the_same_flags() {
        let relay: Multiaddr = format!(
            "/ip4/198.51.100.1/udp/443/quic-v1/p2p/{}",
            keypair_from_seed(1).public().to_peer_id()
        )
        .parse()
        .unwrap();
        let defaults = PeerArgs::new(&relay);
        assert_eq!(peer(&["--relay", &relay.to_string()]).unwrap(), defaults);
        let mut all = defaults.clone();
        all.listen = vec!["/ip4/0.0.0.0/udp/443/quic-v1".parse().unwrap()];
        all.punch.punch_range = "41000-41010".parse().unwrap();
        all.announce_ip = Some([203, 0, 113, 5].into());
        all.transport = TransportKind::Stock;
        all.secret_key_seed = Some(9);
        all.dial = Some(keypair_from_seed(2).public().to_peer_id());
        all.punch.initiator_role = InitiatorRole::Server;
        all.punch.candidates = CandidateMode::Range;
        all.ping_interval_secs = 1;
        all.metrics_address = Some("127.0.0.1:9464".parse().unwrap());
        all.persist = true;
        all.timeout_secs = 7;
        all.punch.birthday = OnOff::Off;
        all.punch.birthday_sockets = 16;
        all.punch.birthday_probes = 64;
        all.punch.birthday_pace = 50;
        all.punch.opener_ttl = 3;
        all.maps_interval_secs = Some(60);
        for args in [defaults, all] {
            let again: PeerArgs = peer(
                &args
                    .to_args()
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            )
            .unwrap();
            assert_eq!(again, args);
        }
        let listen: Multiaddr = "/ip4/203.0.113.10/udp/443/quic-v1".parse().unwrap();
        let mut relay = RelayArgs::new(vec![listen.clone()]);
        let parsed: RelayArgs = parse_or_exit(["relay", "--listen", &listen.to_string()]).unwrap();
        assert_eq!(parsed, relay);
        relay.no_rate_limits = true;
        relay.max_circuits = 64;
        relay.secret_key_seed = Some(1);
        relay.allow_peer = vec![keypair_from_seed(3).public().to_peer_id()];
        let again: RelayArgs =
            parse_or_exit(std::iter::once("relay".to_owned()).chain(relay.to_args())).unwrap();
        assert_eq!(again, relay);
    }

    #[test]
    fn the_relay_limits_default_to_libp2p_relays_own() {
        let args = RelayArgs::new(Vec::new());
        assert_eq!(
            (
                args.max_reservations,
                args.max_reservations_per_peer,
                args.reservation_duration_secs,
                args.max_circuits,
                args.max_circuits_per_peer,
                args.max_circuit_duration_secs,
                args.max_circuit_bytes,
                args.no_rate_limits,
            ),
            (128, 4, 3600, 16, 4, 120, 131_072, false)
        );
    }

    #[test]
    fn a_relay_without_peer_id_is_a_config_error() {
        let args = peer(&["--relay", "/ip4/198.51.100.1/udp/443/quic-v1"]).unwrap();
        let err = args.config().unwrap_err();
        assert!(matches!(err, ConfigError::RelayWithoutPeerId(_)), "{err}");
        assert!(err.to_string().contains("/p2p/"), "{err}");
    }
}
