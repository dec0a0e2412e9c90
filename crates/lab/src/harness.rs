//! The harness: a NAT lab with a relay and two peers ([`PunchLab`]), the
//! trials run in it ([`Trial`]) and what they show ([`Outcome`]), the node
//! processes ([`LabNode`]), the go-libp2p node ([`go`]), hostile peers
//! ([`hostile`]), and the lab experiments with many pods ([`scale`],
//! [`busy`]), a long run ([`soak`]) and bulk transfers ([`throughput`]).
//! This is what the lab tests use; the crate root re-exports all of it. The
//! benchmark application that runs it and writes the documents is
//! [`crate::bench`].

mod binaries;
pub mod busy;
mod error;
pub mod go;
pub mod hostile;
mod node;
mod outcome;
pub mod procstat;
mod punch_lab;
pub mod relay_load;
pub mod scale;
pub mod soak;
pub mod throughput;
mod trial;
pub mod usage;

pub use binaries::Binaries;
pub use error::Error;
pub use node::LabNode;
pub use outcome::{Outcome, Punch, QuicRole, Side, Winner};
pub use punch_lab::{Pair, PunchLab, PunchLabBuilder};
pub use trial::{Implementation, Layout, PeerRole, PeerSetup, RelayImpl, Trial};

pub use natlab::{self, require_lab};
