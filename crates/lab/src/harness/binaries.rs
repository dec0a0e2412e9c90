//! Finding the node binaries that cargo built: the one place that knows
//! where they are, for the lab and for the tests that run them on loopback.

use std::path::{Path, PathBuf};

use crate::Error;

/// Paths of the node binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The `relay` example.
    pub relay: PathBuf,
    /// The `peer` example.
    pub peer: PathBuf,
    /// The `keygen` example.
    pub keygen: PathBuf,
}

impl Binaries {
    /// The binaries in `$PUNCHPORT_BIN_DIR`, or else in the `examples`
    /// directory of the cargo profile this program was built with (where
    /// `cargo test` and `cargo build --examples` put them).
    pub fn locate() -> Result<Self, Error> {
        let dir = match std::env::var_os("PUNCHPORT_BIN_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => profile_dir().join("examples"),
        };
        Self::in_dir(&dir)
    }

    /// The binaries in `dir`.
    pub fn in_dir(dir: &Path) -> Result<Self, Error> {
        let find = |name: &'static str| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(Error::MissingBinary { name, path })
            }
        };
        Ok(Self {
            relay: find("relay")?,
            peer: find("peer")?,
            keygen: find("keygen")?,
        })
    }
}

/// `target/<profile>`: the parent of `deps` for test executables, or the
/// executable's own directory for binaries and examples.
pub(crate) fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") || dir.ends_with("examples") {
        dir.pop();
    }
    dir
}
