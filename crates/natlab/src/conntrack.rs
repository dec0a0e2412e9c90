//! Reading and flushing a router's conntrack table.

use std::net::{IpAddr, SocketAddr};

use crate::Error;
use crate::netns;

/// One direction of a tracked flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
}

/// Packets and bytes: one direction of a conntrack flow (with accounting
/// on), or what a [`UdpCounter`](crate::UdpCounter) counted.
///
/// Bytes are whole IP packets as the network layer sees them: IP header,
/// transport header and payload, without any link-layer header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Counts {
    /// How many packets (for UDP, datagrams).
    pub packets: u64,
    /// How many bytes those packets had, IP headers included.
    pub bytes: u64,
}

/// A UDP flow in a router's conntrack table.
///
/// For a flow an inside host started, `original` is what the host sent
/// (`inside -> remote`) and `reply` is what the router expects back
/// (`remote -> external`), so `reply.dst` is the external (mapped) address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// The tuple of the packet that created the entry.
    pub original: Tuple,
    /// The tuple replies are expected to carry.
    pub reply: Tuple,
    /// Whether conntrack considers the flow established (`[ASSURED]`; for
    /// UDP, replies seen over a couple of seconds).
    pub assured: bool,
    /// Whether a packet has passed in the reply direction (no `[UNREPLIED]`).
    pub replied: bool,
    /// Packets and bytes seen in the original direction (`packets=` and
    /// `bytes=` after the original tuple), or `None` if conntrack
    /// accounting was off when the entry was created. Every lab router turns
    /// accounting on (`net.netfilter.nf_conntrack_acct=1`). Bytes count
    /// whole IP packets: a UDP datagram with a 100-byte payload counts 128
    /// bytes over IPv4, 148 over IPv6.
    pub original_counts: Option<Counts>,
    /// Packets and bytes seen in the reply direction, like
    /// [`original_counts`](Self::original_counts).
    pub reply_counts: Option<Counts>,
}

impl Flow {
    /// The external address the router mapped the flow's source to
    /// (`reply.dst`).
    pub fn external(&self) -> SocketAddr {
        self.reply.dst
    }
}

/// Lists the UDP flows in `namespace`: `conntrack -L -p udp` for an
/// IPv4-only router; with `ipv6`, IPv4 flows then IPv6 flows, asking for
/// each family by name (conntrack-tools 1.4.7 lists both families without
/// `-f`, older versions only IPv4).
pub(crate) fn list(namespace: &str, ipv6: bool) -> Result<Vec<Flow>, Error> {
    let output = if ipv6 {
        let mut output = String::new();
        for family in ["ipv4", "ipv6"] {
            output.push_str(&netns::exec_in(
                namespace,
                "conntrack",
                &["-L", "-f", family, "-p", "udp"],
            )?);
            output.push('\n');
        }
        output
    } else {
        netns::exec_in(namespace, "conntrack", &["-L", "-p", "udp"])?
    };
    output
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(parse_line)
        .collect()
}

/// Empties the conntrack table of `namespace` (`conntrack -F`, and
/// `conntrack -F -f ipv6` too if `ipv6`, for versions whose `-F` means
/// IPv4 only).
pub(crate) fn flush(namespace: &str, ipv6: bool) -> Result<(), Error> {
    netns::exec_in(namespace, "conntrack", &["-F"])?;
    if ipv6 {
        netns::exec_in(namespace, "conntrack", &["-F", "-f", "ipv6"])?;
    }
    Ok(())
}

/// Parses one line of `conntrack -L` output, e.g.
/// `udp 17 29 src=10.1.0.10 dst=203.0.113.10 sport=40000 dport=5000 [UNREPLIED]
/// src=203.0.113.10 dst=198.51.100.1 sport=5000 dport=40000 mark=0 use=1`,
/// or with accounting
/// `udp 17 29 src=... dport=5000 packets=1 bytes=128 [UNREPLIED] src=...
/// dport=40000 packets=0 bytes=0 mark=0 use=1`. IPv6 lines look the same
/// with IPv6 addresses: compressed (`fd00:10:1::10`) from conntrack-tools
/// 1.4.7, in full form (`fd00:0010:0001:0000:...`) in `/proc`-style output
/// (`ipv6 10 udp 17 ...`); both parse.
fn parse_line(line: &str) -> Result<Flow, Error> {
    let bad = || Error::Conntrack(line.to_owned());
    let mut ips: Vec<IpAddr> = Vec::with_capacity(4);
    let mut ports: Vec<u16> = Vec::with_capacity(4);
    let mut packets: Vec<u64> = Vec::with_capacity(2);
    let mut bytes: Vec<u64> = Vec::with_capacity(2);
    let mut assured = false;
    let mut replied = true;
    for token in line.split_whitespace() {
        if token == "[ASSURED]" {
            assured = true;
        } else if token == "[UNREPLIED]" {
            replied = false;
        } else if let Some((key, value)) = token.split_once('=') {
            match key {
                "src" | "dst" => ips.push(value.parse().map_err(|_| bad())?),
                "sport" | "dport" => ports.push(value.parse().map_err(|_| bad())?),
                "packets" => packets.push(value.parse().map_err(|_| bad())?),
                "bytes" => bytes.push(value.parse().map_err(|_| bad())?),
                _ => {}
            }
        }
    }
    // Counters come as packets, bytes after each direction's tuple, or not
    // at all.
    let (original_counts, reply_counts) = match (&packets[..], &bytes[..]) {
        ([], []) => (None, None),
        (&[op, rp], &[ob, rb]) => (
            Some(Counts {
                packets: op,
                bytes: ob,
            }),
            Some(Counts {
                packets: rp,
                bytes: rb,
            }),
        ),
        _ => return Err(bad()),
    };
    // Keys come as src, dst (then sport, dport) for each direction.
    let [osrc, odst, rsrc, rdst] = ips[..] else {
        return Err(bad());
    };
    let [osport, odport, rsport, rdport] = ports[..] else {
        return Err(bad());
    };
    Ok(Flow {
        original: Tuple {
            src: SocketAddr::new(osrc, osport),
            dst: SocketAddr::new(odst, odport),
        },
        reply: Tuple {
            src: SocketAddr::new(rsrc, rsport),
            dst: SocketAddr::new(rdst, rdport),
        },
        assured,
        replied,
        original_counts,
        reply_counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse()
            .unwrap_or_else(|_| panic!("bad address {text}"))
    }

    #[test]
    fn parses_unreplied_flow() {
        let line = "udp      17 29 src=10.1.0.10 dst=203.0.113.10 sport=40000 dport=5000 \
                    [UNREPLIED] src=203.0.113.10 dst=198.51.100.1 sport=5000 dport=40000 mark=0 use=1";
        let flow = parse_line(line).expect("parses");
        assert_eq!(flow.original.src, addr("10.1.0.10:40000"));
        assert_eq!(flow.original.dst, addr("203.0.113.10:5000"));
        assert_eq!(flow.reply.src, addr("203.0.113.10:5000"));
        assert_eq!(flow.external(), addr("198.51.100.1:40000"));
        assert!(!flow.assured);
        assert!(!flow.replied);
    }

    #[test]
    fn parses_assured_flow() {
        let line = "udp      17 119 src=10.1.0.10 dst=203.0.113.10 sport=40000 dport=5000 \
                    src=203.0.113.10 dst=198.51.100.1 sport=5000 dport=21000 [ASSURED] mark=0 use=1";
        let flow = parse_line(line).expect("parses");
        assert!(flow.assured && flow.replied);
        assert_eq!(flow.external(), addr("198.51.100.1:21000"));
    }

    #[test]
    fn parses_accounting_per_direction() {
        let line = "udp      17 29 src=10.1.0.10 dst=203.0.113.10 sport=40000 dport=5000 \
                    packets=3 bytes=384 src=203.0.113.10 dst=198.51.100.1 sport=5000 \
                    dport=40000 packets=1 bytes=128 mark=0 use=1";
        let flow = parse_line(line).expect("parses");
        assert_eq!(
            flow.original_counts,
            Some(Counts {
                packets: 3,
                bytes: 384
            })
        );
        assert_eq!(
            flow.reply_counts,
            Some(Counts {
                packets: 1,
                bytes: 128
            })
        );
        assert_eq!(flow.external(), addr("198.51.100.1:40000"));
        let without = "udp 17 29 src=10.1.0.10 dst=203.0.113.10 sport=40000 dport=5000 \
                       src=203.0.113.10 dst=198.51.100.1 sport=5000 dport=40000 mark=0 use=1";
        let flow = parse_line(without).expect("parses");
        assert_eq!((flow.original_counts, flow.reply_counts), (None, None));
        let half = "udp 17 29 src=10.1.0.10 dst=203.0.113.10 sport=40000 dport=5000 packets=3 \
                    src=203.0.113.10 dst=198.51.100.1 sport=5000 dport=40000 mark=0 use=1";
        assert!(parse_line(half).is_err());
    }

    #[test]
    fn parses_ipv6_lines_in_compressed_and_full_form() {
        let compressed = "udp      17 29 src=fd00:10:1::10 dst=2001:db8:113::10 sport=40000 \
                          dport=5000 packets=1 bytes=50 [UNREPLIED] src=2001:db8:113::10 \
                          dst=2001:db8:100::1 sport=5000 dport=40000 packets=0 bytes=0 mark=0 use=1";
        let flow = parse_line(compressed).expect("parses");
        assert_eq!(flow.original.src, addr("[fd00:10:1::10]:40000"));
        assert_eq!(flow.external(), addr("[2001:db8:100::1]:40000"));
        let line = "ipv6     10 udp      17 29 src=fd00:0010:0001:0000:0000:0000:0000:0010 \
                    dst=2001:0db8:0113:0000:0000:0000:0000:0010 sport=40000 dport=5000 \
                    packets=1 bytes=148 [UNREPLIED] src=2001:0db8:0113:0000:0000:0000:0000:0010 \
                    dst=2001:0db8:0100:0000:0000:0000:0000:0001 sport=5000 dport=40000 \
                    packets=0 bytes=0 mark=0 use=1";
        let flow = parse_line(line).expect("parses");
        assert_eq!(flow.original.src, addr("[fd00:10:1::10]:40000"));
        assert_eq!(flow.original.dst, addr("[2001:db8:113::10]:5000"));
        assert_eq!(flow.external(), addr("[2001:db8:100::1]:40000"));
        assert!(!flow.replied);
        assert_eq!(flow.original_counts.map(|counts| counts.bytes), Some(148));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_line("udp 17 29 src=10.1.0.10").is_err());
        assert!(parse_line("udp 17 29 src=x dst=y sport=1 dport=2 src=a dst=b").is_err());
    }
}
