//! The go-libp2p interop node (`tests/interop/go`): built with `go build`
//! into the cargo target directory once per process, so that the lab can
//! run it as the relay or as either peer, and what its logs say about the
//! QUIC roles it punched with.
//!
//! Tests that need it begin with [`require_go!`](crate::require_go): without
//! Go (or with a Go older than the node's `go.mod` asks for) they print
//! `SKIPPED: ...` and return; a Go that is there but cannot build the node
//! fails them.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use super::outcome::{Punch, QuicRole};

/// The Go release the node's `go.mod` needs (`go 1.26.0`).
const GO_NEEDED: (u32, u32) = (1, 26);

/// Why the go node cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GoUnavailable {
    /// No `go` on PATH: tests skip.
    #[error(
        "Go is not installed (`go` was not found on PATH); the go-libp2p interop node in \
         tests/interop/go needs Go {major}.{minor} or newer",
        major = GO_NEEDED.0,
        minor = GO_NEEDED.1
    )]
    NotInstalled,
    /// A Go older than the node needs: tests skip.
    #[error(
        "Go {found} is installed, but the go-libp2p interop node in tests/interop/go needs Go \
         {major}.{minor} or newer",
        major = GO_NEEDED.0,
        minor = GO_NEEDED.1
    )]
    TooOld {
        /// What `go env GOVERSION` said.
        found: String,
    },
    /// Go is there but the build failed: tests fail.
    #[error("`go build` of the go-libp2p interop node in {} failed: {output}", dir.display())]
    BuildFailed {
        /// The node's source directory.
        dir: PathBuf,
        /// What `go` printed.
        output: String,
    },
}

impl GoUnavailable {
    /// Whether a test should skip (Go missing or too old) rather than fail.
    pub fn skips(&self) -> bool {
        matches!(
            self,
            GoUnavailable::NotInstalled | GoUnavailable::TooOld { .. }
        )
    }
}

/// Returns from the calling test, printing `SKIPPED: the go-libp2p interop
/// tests cannot run here: <why>`, when Go is missing or too old; panics
/// when Go is there but cannot build the node. Evaluates to the node's path.
#[macro_export]
macro_rules! require_go {
    () => {
        match $crate::go::node() {
            Ok(path) => path,
            Err(why) if why.skips() => {
                eprintln!("SKIPPED: the go-libp2p interop tests cannot run here: {why}");
                return;
            }
            Err(why) => panic!("{why}"),
        }
    };
}

/// The node's source directory.
pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/go")
}

/// The go node, built on the first call of this process (later calls
/// return the same answer): `$PUNCHPORT_GO_NODE` if set, else
/// `target/<profile>/go/punchport-go-node`, built from [`source_dir`] with
/// `go build` (Go's own build cache makes a rebuild take about 2 s).
pub fn node() -> Result<&'static Path, GoUnavailable> {
    static NODE: OnceLock<Result<PathBuf, GoUnavailable>> = OnceLock::new();
    NODE.get_or_init(|| match std::env::var_os("PUNCHPORT_GO_NODE") {
        Some(path) => Ok(PathBuf::from(path)),
        None => build(&super::binaries::profile_dir().join("go")),
    })
    .as_ref()
    .map(PathBuf::as_path)
    .map_err(Clone::clone)
}

/// Builds the node into `out_dir/punchport-go-node` (through a temporary
/// name, so that processes building at once never run a half-written file).
fn build(out_dir: &Path) -> Result<PathBuf, GoUnavailable> {
    let version = go_version()?;
    let dir = source_dir();
    let failed = |output: String| GoUnavailable::BuildFailed {
        dir: dir.clone(),
        output,
    };
    std::fs::create_dir_all(out_dir).map_err(|e| failed(format!("{}: {e}", out_dir.display())))?;
    let target = out_dir.join("punchport-go-node");
    let partial = out_dir.join(format!("punchport-go-node.{}.partial", std::process::id()));
    let mut command = go();
    command
        .current_dir(&dir)
        .args(["build", "-trimpath", "-o"])
        .arg(&partial)
        .arg(".")
        // Never rewrite go.mod, never fetch another toolchain.
        .env("GOFLAGS", "-mod=readonly")
        .env("GOWORK", "off");
    if std::env::var_os("GOCACHE").is_none()
        && std::env::var_os("XDG_CACHE_HOME").is_none()
        && std::env::var_os("HOME").is_none()
    {
        command.env("GOCACHE", out_dir.join("cache"));
    }
    let started = std::time::Instant::now();
    let output = command
        .output()
        .map_err(|e| failed(format!("cannot run `go build`: {e}")))?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(failed(format!(
            "{} ({}): {}",
            output.status,
            version,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    std::fs::rename(&partial, &target).map_err(|e| {
        failed(format!(
            "cannot move the binary to {}: {e}",
            target.display()
        ))
    })?;
    tracing::info!(path = %target.display(), %version, took = ?started.elapsed(), "built the go-libp2p interop node");
    Ok(target)
}

/// `go`, never switching to another toolchain.
fn go() -> Command {
    let mut command = Command::new("go");
    command.env("GOTOOLCHAIN", "local");
    command
}

/// The installed Go's version (`go1.26.0`), if it is new enough.
fn go_version() -> Result<String, GoUnavailable> {
    let output = match go().args(["env", "GOVERSION"]).output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(GoUnavailable::NotInstalled);
        }
        Err(e) => {
            return Err(GoUnavailable::BuildFailed {
                dir: source_dir(),
                output: format!("cannot run `go env GOVERSION`: {e}"),
            });
        }
    };
    let found = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || found.is_empty() {
        return Err(GoUnavailable::BuildFailed {
            dir: source_dir(),
            output: format!(
                "`go env GOVERSION` failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    match parse_version(&found) {
        Some(v) if v >= GO_NEEDED => Ok(found),
        Some(_) => Err(GoUnavailable::TooOld { found }),
        // A development build (`devel ...`): let `go build` decide.
        None => Ok(found),
    }
}

/// `go1.26.0` → `(1, 26)`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let rest = text.strip_prefix("go")?;
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The hole-punch attempts a go node's stderr reports, in order: its
/// `holepunch: attempt` lines (`tests/interop/go/tracer.go`) carry
/// `side=initiator|receiver` and `quic=server|client`.
pub fn punches(stderr: &str) -> Vec<Punch> {
    stderr
        .lines()
        .filter(|line| line.contains("msg=\"holepunch: attempt\""))
        .filter_map(|line| {
            let value = |key: &str| {
                line.split_whitespace()
                    .find_map(|field| field.strip_prefix(key)?.strip_prefix('='))
            };
            let initiator = match value("side")? {
                "initiator" => true,
                "receiver" => false,
                _ => return None,
            };
            let quic = match value("quic")? {
                "server" => QuicRole::Server,
                "client" => QuicRole::Client,
                _ => return None,
            };
            Some(Punch { initiator, quic })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("go1.26.0"), Some((1, 26)));
        assert_eq!(parse_version("go1.9"), Some((1, 9)));
        assert_eq!(parse_version("go1.27rc1"), Some((1, 27)));
        assert_eq!(parse_version("devel go1.27-abc"), None);
        assert!(parse_version("go1.25.3").unwrap() < GO_NEEDED);
    }

    #[test]
    fn attempt_lines_give_side_and_quic_role() {
        let stderr = "\
time=2025-01-01T00:00:00Z level=INFO msg=\"holepunch: start\" peer=12D3 rtt=1ms
time=2025-01-01T00:00:00Z level=INFO msg=\"holepunch: attempt\" peer=12D3 attempt=1 tracer_attempt=1 side=initiator quic=server quic_role=\"server (random UDP packets to each address, then waits to accept)\"
time=2025-01-01T00:00:05Z level=INFO msg=\"holepunch: attempt\" peer=12D3 attempt=3 tracer_attempt=3 side=initiator quic=client quic_role=\"client (QUIC dial)\"
time=2025-01-01T00:00:05Z level=INFO msg=\"holepunch: attempt\" peer=12D3 attempt=1 tracer_attempt=1 side=receiver quic=client quic_role=\"client (QUIC dial)\"
";
        assert_eq!(
            punches(stderr),
            [
                Punch {
                    initiator: true,
                    quic: QuicRole::Server
                },
                Punch {
                    initiator: true,
                    quic: QuicRole::Client
                },
                Punch {
                    initiator: false,
                    quic: QuicRole::Client
                },
            ]
        );
    }
}
