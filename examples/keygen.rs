//! Writes a new node identity (an ed25519 libp2p keypair, protobuf-encoded)
//! to a file for `relay --key-file` or `peer --key-file`, and prints its peer
//! id. `keygen relay.key`

use std::{path::PathBuf, process::ExitCode};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(path), None) = (args.next(), args.next()) else {
        eprintln!("error: usage: keygen <path of the new key file>");
        return ExitCode::from(2);
    };
    let keypair = libp2p::identity::Keypair::generate_ed25519();
    match punchport_node::write_keypair(&PathBuf::from(path), &keypair) {
        Ok(()) => {
            println!("{}", keypair.public().to_peer_id());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
