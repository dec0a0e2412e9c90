//! Punch trials in the NAT lab: the `relay` and `peer` binaries run inside
//! [`natlab`] namespaces, one relay on the internet and a peer behind each of
//! two routers; a trial reports whether the peers ended up directly
//! connected, how fast, and which flows the routers' conntrack tables hold.
//!
//! ```no_run
//! use natlab::Nat;
//! use punchport_lab::{Layout, PunchLab, Trial};
//! use punchport_node::TransportKind;
//!
//! let lab = PunchLab::builder(Nat::PortRestricted, Nat::PortRestricted).build()?;
//! let outcome = lab.run(&Trial::new(TransportKind::PortAware, Layout::With443))?;
//! assert!(outcome.direct());
//! # Ok::<(), punchport_lab::Error>(())
//! ```

pub mod bench;
mod binaries;
pub mod busy;
mod error;
pub mod go;
pub mod hard_bench;
pub mod hostile;
pub mod interop;
mod node;
mod outcome;
pub mod plot;
pub mod procstat;
mod punch_lab;
pub mod relay_load;
pub mod report;
pub mod scale;
pub mod soak;
pub mod stats;
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
