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
    init_tracing();
    let config = match args.config() {
        Ok(config) => config,
        Err(e) => {
            cli::usage_error(format!("error: {e}"));
            return ExitCode::from(cli::EXIT_USAGE);
        }
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

fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
