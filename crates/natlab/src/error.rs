//! The lab's error types.

use std::io;

/// Everything that can go wrong while building or using a [`Lab`](crate::Lab).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A command (`ip`, `nft`, `conntrack`, ...) ran but exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, as it would be typed into a shell.
        command: String,
        /// How it exited.
        status: String,
        /// What it wrote to stderr, trimmed.
        stderr: String,
    },
    /// A command could not be started at all.
    #[error("could not run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why it could not be started.
        source: io::Error,
    },
    /// Entering a network namespace (`setns`) failed.
    #[error("could not enter network namespace {namespace}: {reason}")]
    Setns {
        /// The namespace's name.
        namespace: String,
        /// What failed.
        reason: String,
    },
    /// A TUN device could not be created for a delayed link.
    #[error("could not create TUN device {device} in network namespace {namespace}: {reason}")]
    Tun {
        /// The interface name.
        device: String,
        /// The namespace it was to live in.
        namespace: String,
        /// What failed.
        reason: String,
    },
    /// The builder was given a topology the lab cannot build.
    #[error("invalid lab configuration: {0}")]
    Config(String),
    /// A line of `conntrack -L` output could not be understood.
    #[error("could not parse conntrack output line: {0}")]
    Conntrack(String),
    /// Some other I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// Why the lab cannot run on this machine; see [`available`](crate::available).
///
/// Its message says exactly what is missing, so a test can print
/// `SKIPPED: {unavailable}` and return.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Unavailable {
    reason: String,
}

impl Unavailable {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }

    /// The human-readable reason.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}
