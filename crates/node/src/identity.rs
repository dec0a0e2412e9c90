//! Deterministic identities for tests and labs.

use libp2p::identity::Keypair;

/// The ed25519 keypair whose secret key is 32 bytes of `seed`, as the
/// rust-libp2p examples derive it from `--secret-key-seed`.
pub fn keypair_from_seed(seed: u8) -> Keypair {
    Keypair::ed25519_from_bytes([seed; 32]).expect("32 bytes are a valid ed25519 secret key")
}
