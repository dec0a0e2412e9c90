//! Delayed links: a pair of TUN devices and a userspace forwarder between them.
//!
//! The kernel here has no `sch_netem`, so delay is added in userspace: the
//! node-side `wan0` and the internet-side `lK` are TUN devices (L3, no packet
//! information), and one thread per direction reads packets from one device,
//! holds each in a FIFO queue for the configured one-way delay, and writes it
//! to the other device. Packets are copied as they are, so IPv4 and IPv6
//! pass alike: without packet information the kernel takes a written
//! packet's protocol from its IP version nibble.
//!
//! A link may also have a rate: each packet then leaves only once the ones
//! before it have been sent at that rate (its length over the rate), and a
//! packet that would wait more than [`QUEUE_LIMIT`] for that is dropped (a
//! drop-tail queue).

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

/// The longest a packet waits for the rate of a rate-limited link before it
/// is dropped instead.
pub(crate) const QUEUE_LIMIT: Duration = Duration::from_millis(50);

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
    /// them with `delay` each way, at `rate` bits per second if given. The
    /// devices come up administratively down and unaddressed: configure them
    /// with `ip` afterwards.
    pub(crate) fn start(
        node: End<'_>,
        internet: End<'_>,
        delay: Duration,
        rate: Option<u64>,
    ) -> Result<Self, Error> {
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
                .spawn(move || pump(&from, &to, delay, rate, &stop, &label))
                .map_err(|error| Error::io("spawning a forwarder thread", error))?;
            forwarder.threads.push(thread);
        }
        tracing::debug!(link = %forwarder.link, ?delay, ?rate, "natlab: forwarder started");
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

/// When a packet of `length` bytes arriving `now` leaves a link of `rate`
/// bits per second whose previous packet is sent at `free` (then `free`
/// moves on), or `None` if it would wait longer than [`QUEUE_LIMIT`].
pub(crate) fn departure(
    free: &mut Instant,
    now: Instant,
    length: usize,
    rate: u64,
) -> Option<Instant> {
    let start = (*free).max(now);
    if start.saturating_duration_since(now) > QUEUE_LIMIT {
        return None;
    }
    let bits = length as f64 * 8.0;
    *free = start + Duration::from_secs_f64(bits / rate.max(1) as f64);
    Some(*free)
}

/// Moves packets from `from` to `to`, each `delay` after it arrived (and,
/// with a `rate`, after the packets before it were sent at that rate), until
/// `stop` is set.
fn pump(
    from: &tun::Device,
    to: &tun::Device,
    delay: Duration,
    rate: Option<u64>,
    stop: &AtomicBool,
    label: &str,
) {
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut buffer = vec![0_u8; BUFFER_SIZE];
    let mut free = Instant::now();
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
        // The device waits in whole milliseconds: round up, or a packet due
        // in less than one would make this thread spin until then.
        let wait = queue
            .front()
            .map_or(POLL_INTERVAL, |(due, _)| {
                let left = due.saturating_duration_since(now);
                Duration::from_millis(
                    u64::try_from(left.as_micros().div_ceil(1000)).unwrap_or(u64::MAX),
                )
            })
            .min(POLL_INTERVAL);
        match from.recv_timeout(&mut buffer, wait) {
            Ok(length) => {
                let now = Instant::now();
                let sent = match rate {
                    Some(rate) => departure(&mut free, now, length, rate),
                    None => Some(now),
                };
                match sent {
                    Some(sent) => queue.push_back((sent + delay, buffer[..length].to_vec())),
                    None => tracing::trace!(%label, "natlab: the rate's queue is full; dropped"),
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_leave_at_the_rate_and_a_full_queue_drops() {
        let t = Instant::now();
        let mut free = t;
        // 1250 bytes at 1 Mbit/s take 10 ms each.
        let first = departure(&mut free, t, 1250, 1_000_000).unwrap();
        assert_eq!(first, t + Duration::from_millis(10));
        let second = departure(&mut free, t, 1250, 1_000_000).unwrap();
        assert_eq!(second, t + Duration::from_millis(20));
        // Four more wait 20..50 ms; the next would wait 60 ms: dropped.
        for _ in 0..4 {
            assert!(departure(&mut free, t, 1250, 1_000_000).is_some());
        }
        assert_eq!(departure(&mut free, t, 1250, 1_000_000), None);
        // An idle link sends at once.
        let later = t + Duration::from_secs(1);
        assert_eq!(
            departure(&mut free, later, 1250, 1_000_000),
            Some(later + Duration::from_millis(10))
        );
    }
}
