//! Running `ip`, `nft` and `conntrack`, entering namespaces, and cleaning them up.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::Error;

/// Where `ip netns` keeps its namespace files.
pub(crate) const NETNS_DIR: &str = "/var/run/netns";

/// The first part of every namespace name the lab creates:
/// `natlab-<pid>-<counter>-<node>`.
pub(crate) const NAME_PREFIX: &str = "natlab-";

/// Renders a command line for logs and error messages.
fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `command` to completion, feeding it `stdin`, and returns its stdout.
///
/// A non-zero exit becomes [`Error::Command`] naming the command and its stderr.
pub(crate) fn run_with_input(mut command: Command, stdin: Option<&str>) -> Result<String, Error> {
    let line = describe(&command);
    tracing::debug!(command = %line, "natlab: running");
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawn_error = |source| Error::Spawn {
        command: line.clone(),
        source,
    };
    let mut child = command.spawn().map_err(spawn_error)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A failed write shows up as a failed command below.
        if let Err(error) = pipe.write_all(text.as_bytes()) {
            tracing::debug!(command = %line, %error, "natlab: writing stdin failed");
        }
    }
    let output = child.wait_with_output().map_err(spawn_error)?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if stderr.is_empty() {
            stderr = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        }
        Err(Error::Command {
            command: line,
            status: output.status.to_string(),
            stderr,
        })
    }
}

/// Runs `program args...` to completion and returns its stdout.
pub(crate) fn run<I, S>(program: &str, args: I) -> Result<String, Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(program);
    command.args(args);
    run_with_input(command, None)
}

/// Runs `ip -n <namespace> <args...>`.
pub(crate) fn ip_in(namespace: &str, args: &[&str]) -> Result<String, Error> {
    run("ip", ["-n", namespace].iter().chain(args))
}

/// A command that runs `program` inside `namespace` (`ip netns exec NS program`).
pub(crate) fn exec_command(namespace: &str, program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", namespace])
        .arg(program.as_ref());
    command
}

/// Runs `program args...` inside `namespace` to completion and returns its stdout.
pub(crate) fn exec_in(namespace: &str, program: &str, args: &[&str]) -> Result<String, Error> {
    let mut command = exec_command(namespace, program);
    command.args(args);
    run_with_input(command, None)
}

/// Loads an nftables ruleset into `namespace` (`ip netns exec NS nft -f -`).
pub(crate) fn load_nft(namespace: &str, ruleset: &str) -> Result<(), Error> {
    tracing::debug!(namespace, ruleset, "natlab: loading nftables ruleset");
    let mut command = exec_command(namespace, "nft");
    command.args(["-f", "-"]);
    run_with_input(command, Some(ruleset)).map(drop)
}

fn namespace_path(namespace: &str) -> Result<PathBuf, Error> {
    if namespace.is_empty() || namespace.contains('/') || namespace.starts_with('.') {
        return Err(Error::Setns {
            namespace: namespace.to_owned(),
            reason: "not a valid namespace name".to_owned(),
        });
    }
    Ok(Path::new(NETNS_DIR).join(namespace))
}

/// Runs `f` on a new thread that has entered the network namespace `namespace`
/// (one created by `ip netns add`), and returns its result.
///
/// Sockets keep the namespace they were created in, so a socket bound inside
/// `f` and returned from it can be used from any thread afterwards. The
/// calling thread itself never changes namespace. A panic inside `f` is
/// resumed on the calling thread.
///
/// ```no_run
/// let socket = natlab::run_in_namespace("some-namespace", || {
///     std::net::UdpSocket::bind("0.0.0.0:40000")
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run_in_namespace<T, F>(namespace: &str, f: F) -> Result<T, Error>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let path = namespace_path(namespace)?;
    let file = File::open(&path).map_err(|error| Error::Setns {
        namespace: namespace.to_owned(),
        reason: format!("opening {}: {error}", path.display()),
    })?;
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name(format!("natlab-in-{namespace}"))
            .spawn_scoped(scope, move || {
                setns(&file, CloneFlags::CLONE_NEWNET).map_err(|errno| Error::Setns {
                    namespace: namespace.to_owned(),
                    reason: format!("setns: {errno}"),
                })?;
                Ok(f())
            })
            .map_err(|error| Error::io("spawning a namespace thread", error))?;
        match thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Writes a sysctl file under `/proc/sys` from inside `namespace`.
///
/// `/proc/sys/net` resolves to the network namespace of the thread that
/// opens it, so this needs no `sysctl` binary.
pub(crate) fn set_sysctls(namespace: &str, settings: &[(&str, &str)]) -> Result<(), Error> {
    run_in_namespace(namespace, || {
        for (key, value) in settings {
            let path = Path::new("/proc/sys").join(key.replace('.', "/"));
            std::fs::write(&path, value).map_err(|error| {
                Error::io(
                    format!("setting {key}={value} in namespace {namespace}"),
                    error,
                )
            })?;
        }
        Ok(())
    })?
}

/// Creates a namespace with `ip netns add`.
pub(crate) fn add(namespace: &str) -> Result<(), Error> {
    run("ip", ["netns", "add", namespace]).map(drop)
}

/// Names of all namespaces `ip netns list` shows.
pub(crate) fn list() -> Result<Vec<String>, Error> {
    let output = run("ip", ["netns", "list"])?;
    Ok(output
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// PIDs of the processes inside `namespace` (`ip netns pids`).
fn pids(namespace: &str) -> Vec<i32> {
    match run("ip", ["netns", "pids", namespace]) {
        Ok(output) => output
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .collect(),
        Err(error) => {
            tracing::debug!(namespace, %error, "natlab: listing pids failed");
            Vec::new()
        }
    }
}

/// Kills every process inside `namespace` with SIGKILL, then deletes it.
/// Best effort: failures are logged, not returned.
pub(crate) fn destroy(namespace: &str) {
    let own = std::process::id();
    for pid in pids(namespace) {
        if u32::try_from(pid).is_ok_and(|pid| pid == own) {
            continue;
        }
        tracing::debug!(namespace, pid, "natlab: killing leftover process");
        if let Err(errno) = kill(Pid::from_raw(pid), Signal::SIGKILL) {
            tracing::debug!(namespace, pid, %errno, "natlab: kill failed");
        }
    }
    if let Err(error) = run("ip", ["netns", "del", namespace]) {
        tracing::warn!(namespace, %error, "natlab: deleting namespace failed");
    }
}

/// The PID embedded in a lab namespace name `natlab-<pid>-...`.
pub(crate) fn owner_pid(namespace: &str) -> Option<u32> {
    namespace
        .strip_prefix(NAME_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Deletes namespaces left behind by labs whose process is gone (for
/// example after a test was killed). Best effort.
pub(crate) fn collect_garbage() {
    let namespaces = match list() {
        Ok(namespaces) => namespaces,
        Err(error) => {
            tracing::warn!(%error, "natlab: listing namespaces failed");
            return;
        }
    };
    for namespace in namespaces {
        let Some(pid) = owner_pid(&namespace) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        tracing::info!(namespace, pid, "natlab: removing stale namespace");
        destroy(&namespace);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_parses_lab_names_only() {
        assert_eq!(owner_pid("natlab-1234-0-inet"), Some(1234));
        assert_eq!(owner_pid("natlab-1234-7-h-a0"), Some(1234));
        assert_eq!(owner_pid("natlab-x-0-inet"), None);
        assert_eq!(owner_pid("other-1234-0"), None);
    }

    #[test]
    fn describe_joins_program_and_arguments() {
        let mut command = Command::new("ip");
        command.args(["-n", "ns", "link"]);
        assert_eq!(describe(&command), "ip -n ns link");
    }
}
