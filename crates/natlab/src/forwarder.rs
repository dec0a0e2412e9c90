//! Delayed links: a pair of TUN devices and a userspace forwarder between them.
//!
//! The kernel here has no `sch_netem`, so delay is added in userspace: the
//! node-side `wan0` and the internet-side `lK` are TUN devices (L3, no packet
//! information), and one thread per direction reads packets from one device,
//! holds each in a FIFO queue for the configured one-way delay, and writes it
//! to the other device.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::Error;
use crate::netns::run_in_namespace;

/// How long a forwarding thread sleeps in `poll` at most, so it notices
/// [`Forwarder::stop`] quickly.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Largest packet a TUN device hands over (its MTU is far lower).
const BUFFER_SIZE: usize = 65_536;

/// The two forwarding threads of one delayed link.
#[derive(Debug)]
pub(crate) struct Forwarder {
    link: String,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// One end of a delayed link: a TUN device named `device` in `namespace`.
pub(crate) struct End<'a> {
    pub(crate) namespace: &'a str,
    pub(crate) device: &'a str,
}

impl Forwarder {
    /// Creates the TUN devices at both ends and starts forwarding between
    /// them with `delay` each way. The devices come up administratively down
    /// and unaddressed: configure them with `ip` afterwards.
    pub(crate) fn start(node: End<'_>, internet: End<'_>, delay: Duration) -> Result<Self, Error> {
        let node_device = Arc::new(create_tun(&node)?);
        let internet_device = Arc::new(create_tun(&internet)?);
        let link = format!(
            "{}/{}<->{}/{}",
            node.namespace, node.device, internet.namespace, internet.device
        );
        let stop = Arc::new(AtomicBool::new(false));
        let mut forwarder = Self {
            link: link.clone(),
            stop: Arc::clone(&stop),
            threads: Vec::with_capacity(2),
        };
        for (from, to, direction) in [
            (&node_device, &internet_device, "up"),
            (&internet_device, &node_device, "down"),
        ] {
            let (from, to, stop) = (Arc::clone(from), Arc::clone(to), Arc::clone(&stop));
            let name = format!("natlab-fwd-{}-{direction}", internet.device);
            let label = format!("{link} {direction}");
            let thread = std::thread::Builder::new()
                .name(name)
                .spawn(move || pump(&from, &to, delay, &stop, &label))
                .map_err(|error| Error::io("spawning a forwarder thread", error))?;
            forwarder.threads.push(thread);
        }
        tracing::debug!(link = %forwarder.link, ?delay, "natlab: forwarder started");
        Ok(forwarder)
    }

    /// Stops both threads and waits for them; the TUN devices close (and
    /// vanish) with the last thread.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::warn!(link = %self.link, "natlab: forwarder thread panicked");
            }
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop();
    }
}

fn create_tun(end: &End<'_>) -> Result<tun::Device, Error> {
    let tun_error = |reason: String| Error::Tun {
        device: end.device.to_owned(),
        namespace: end.namespace.to_owned(),
        reason,
    };
    let mut config = tun::Configuration::default();
    config
        .tun_name(end.device)
        .layer(tun::Layer::L3)
        .platform_config(|platform| {
            // Addresses, MTU and link state are set with `ip` instead.
            platform.ensure_root_privileges(false);
        });
    // The device joins the namespace of the thread that opens /dev/net/tun.
    run_in_namespace(end.namespace, || tun::create(&config))?
        .map_err(|error| tun_error(error.to_string()))
}

/// Moves packets from `from` to `to`, each `delay` after it arrived, until
/// `stop` is set.
fn pump(from: &tun::Device, to: &tun::Device, delay: Duration, stop: &AtomicBool, label: &str) {
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut buffer = vec![0_u8; BUFFER_SIZE];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while let Some((due, _)) = queue.front() {
            if *due > now {
                break;
            }
            if let Some((_, packet)) = queue.pop_front()
                && let Err(error) = to.send(&packet)
            {
                tracing::trace!(%label, %error, "natlab: forwarding a packet failed");
            }
        }
        let wait = queue
            .front()
            .map_or(POLL_INTERVAL, |(due, _)| due.saturating_duration_since(now))
            .min(POLL_INTERVAL);
        match from.recv_timeout(&mut buffer, wait) {
            Ok(length) => queue.push_back((Instant::now() + delay, buffer[..length].to_vec())),
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                ) => {}
            Err(error) => {
                tracing::warn!(%label, %error, "natlab: reading from a TUN device failed; link is down");
                break;
            }
        }
    }
}
