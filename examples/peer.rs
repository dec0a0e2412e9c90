//! The peer node: reaches a relay, then holds a reservation or, with
//! `--dial`, dials a peer through the relay and hole-punches to it. Prints one
//! JSON object per line on stdout and logs to stderr. See `peer --help`.

use std::{process::ExitCode, time::Duration};

use punchport_node::{
    NodeEvent,
    cli::{self, PeerArgs},
};
use tokio::{sync::mpsc, time::Instant};

/// How long a dialing peer keeps running after `direct`, so that the other
/// side completes its handshake before this one closes.
const LINGER: Duration = Duration::from_millis(500);
/// How long it keeps running after `punch_failed`: the relayed connection
/// still carries traffic meanwhile (see the `ping` lines).
const LINGER_FAILED: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> ExitCode {
    let (args, config) = match cli::start(PeerArgs::config) {
        Ok(started) => started,
        Err(code) => return code,
    };
    // With --persist the peer keeps punching and never exits on its own.
    let target = args.dial.filter(|_| !args.persist);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let run = config.run(tx);
    tokio::pin!(run);
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let timeout = sleep_until(target.map_or(far, |_| Instant::now() + args.timeout()));
    tokio::pin!(timeout);
    let mut exit: Option<(Instant, ExitCode)> = None;
    loop {
        let linger = sleep_until(exit.as_ref().map_or(far, |(at, _)| *at));
        tokio::select! {
            result = &mut run => {
                if let Err(e) = result {
                    eprintln!("error: {e}");
                }
                return ExitCode::FAILURE;
            }
            Some(event) = rx.recv() => {
                println!("{}", event.to_json());
                match &event {
                    NodeEvent::Direct { peer, .. } if Some(*peer) == target && exit.is_none() => {
                        exit = Some((Instant::now() + LINGER, ExitCode::SUCCESS));
                    }
                    NodeEvent::PunchFailed { peer, .. } if Some(*peer) == target && exit.is_none() => {
                        exit = Some((Instant::now() + LINGER_FAILED, ExitCode::FAILURE));
                    }
                    _ => {}
                }
            }
            _ = &mut timeout, if exit.is_none() => {
                println!("{}", NodeEvent::Timeout.to_json());
                return ExitCode::FAILURE;
            }
            _ = linger => {
                if let Some((_, code)) = exit.take() {
                    return code;
                }
            }
        }
    }
}

fn sleep_until(at: Instant) -> tokio::time::Sleep {
    tokio::time::sleep_until(at)
}
