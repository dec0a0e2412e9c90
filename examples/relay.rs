//! The relay node: circuit relay v2, identify and ping. Prints one JSON
//! object per line on stdout and logs to stderr. See `relay --help`.

use std::process::ExitCode;

use punchport_node::cli::{self, RelayArgs};
use tokio::sync::mpsc;

#[tokio::main]
async fn main() -> ExitCode {
    let (_args, config) = match cli::start(RelayArgs::config) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let run = config.run(tx);
    tokio::pin!(run);
    loop {
        tokio::select! {
            result = &mut run => {
                if let Err(e) = result {
                    eprintln!("error: {e}");
                }
                return ExitCode::FAILURE;
            }
            Some(event) = rx.recv() => println!("{}", event.to_json()),
        }
    }
}
