//! Why a trial could not be run (as opposed to a punch that failed, which is
//! an [`Outcome`](crate::Outcome)).

use std::path::PathBuf;

/// A trial could not be set up or observed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The lab failed.
    #[error(transparent)]
    Lab(#[from] natlab::Error),
    /// A node binary is missing.
    #[error(
        "the {name} binary is missing at {}: build the examples first (`cargo build --examples`, or `--release`)",
        path.display()
    )]
    MissingBinary {
        /// `relay`, `peer` or `keygen`.
        name: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The go-libp2p interop node cannot run.
    #[error(transparent)]
    Go(#[from] crate::go::GoUnavailable),
    /// A node did not report what it should have.
    #[error("{node}: {what}; its stderr ends with:\n{stderr}")]
    Node {
        /// Which node.
        node: String,
        /// What was missing.
        what: String,
        /// The tail of its stderr.
        stderr: String,
    },
}
