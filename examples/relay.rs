//! The relay node: circuit relay v2, identify and ping. Prints one JSON
//! object per line on stdout and logs to stderr. See `relay --help`.

use std::process::ExitCode;

use punchport_node::cli::{self, RelayArgs};
use tokio::sync::mpsc;

#[tokio::main]
async fn main() -> ExitCode {
    let args: RelayArgs = match cli::parse_or_exit(std::env::args_os()) {
        Ok(args) => args,
        Err(code) => return code,
    };
    cli::init_tracing("info");
    let config = match cli::config_or_exit(args.config()) {
        Ok(config) => config,
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
