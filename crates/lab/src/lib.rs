//! Punch trials in the NAT lab: the `relay` and `peer` binaries run inside
//! [`natlab`] namespaces, one relay on the internet and a peer behind each of
//! two routers; a trial reports whether the peers ended up directly
//! connected, how fast, and which flows the routers' conntrack tables hold.
//!
//! The crate has two parts. The harness (the crate root: [`PunchLab`],
//! [`Trial`], [`Outcome`], [`LabNode`], the go node in [`go`], hostile peers
//! in [`hostile`], and the lab experiments [`scale`], [`busy`], [`soak`],
//! [`throughput`]) is what the lab tests use. The benchmark application
//! ([`bench`](mod@bench)) runs it and writes the benchmark documents in `docs/`, with
//! the thin binaries `bench`, `scale`, `throughput` and `soak` in front of
//! it. [`stats`] holds the figures both use.
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
mod harness;
pub mod stats;

pub use harness::*;
