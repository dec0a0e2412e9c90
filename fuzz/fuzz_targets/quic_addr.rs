//! Reading a QUIC address out of arbitrary multiaddr bytes: never panics,
//! and an accepted address writes back to the same multiaddr.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libp2p_core::Multiaddr;
use punchport::QuicAddr;

fuzz_target!(|data: &[u8]| {
    let Ok(addr) = Multiaddr::try_from(data.to_vec()) else {
        return;
    };
    match QuicAddr::parse(&addr) {
        Ok(quic) => assert_eq!(quic.to_multiaddr(), addr),
        Err(err) => assert!(err.to_string().contains("is not a QUIC address")),
    }
});
