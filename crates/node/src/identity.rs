//! Node identities: deterministic ones for tests and labs, and key files for
//! deployments.

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use libp2p::identity::Keypair;

/// The ed25519 keypair whose secret key is 32 bytes of `seed`, as the
/// rust-libp2p examples derive it from `--secret-key-seed`. Anyone can derive
/// the same key: for tests and labs only.
pub fn keypair_from_seed(seed: u8) -> Keypair {
    Keypair::ed25519_from_bytes([seed; 32]).expect("32 bytes are a valid ed25519 secret key")
}

/// A key file that cannot be read, written or decoded.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing failed.
    #[error("key file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// The file is not a libp2p keypair.
    #[error(
        "key file {} is not a protobuf-encoded libp2p keypair ({reason}); write a new one with `keygen <path>` or remove it to have one created",
        path.display()
    )]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's complaint.
        reason: String,
    },
}

/// Reads the protobuf-encoded keypair at `path`, or creates a new ed25519
/// keypair there (readable by the owner only) if the file does not exist.
pub fn load_or_create_keypair(path: &Path) -> Result<Keypair, KeyFileError> {
    match fs::read(path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| KeyFileError::Decode {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let keypair = Keypair::generate_ed25519();
            write_keypair(path, &keypair)?;
            Ok(keypair)
        }
        Err(source) => Err(KeyFileError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes `keypair` to a new file at `path`, readable by the owner only.
pub fn write_keypair(path: &Path, keypair: &Keypair) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let bytes = keypair
        .to_protobuf_encoding()
        .map_err(|e| io(io::Error::other(e)))?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_once_and_read_back() {
        let dir = std::env::temp_dir().join(format!("punchport-key-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("node.key");
        let _ = fs::remove_file(&path);
        let first = load_or_create_keypair(&path).unwrap();
        let again = load_or_create_keypair(&path).unwrap();
        assert_eq!(first.public(), again.public());
        fs::write(&path, b"not a key").unwrap();
        let err = load_or_create_keypair(&path).unwrap_err();
        assert!(err.to_string().contains("keygen"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
