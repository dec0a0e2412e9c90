//! Counting the UDP datagrams that reach a host, with an nftables table of
//! the counter's own in the host's namespace.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::conntrack::Counts;
use crate::{Error, netns};

/// Distinguishes the tables of counters made by this process.
static COUNTER_TABLES: AtomicU32 = AtomicU32::new(0);

/// Counts the UDP datagrams a host receives, from
/// [`Host::udp_counter`](crate::Host::udp_counter).
///
/// The counter is an nftables table of its own (`inet natlab_udp_<n>`) in
/// the host's namespace, whose chain on the `input` hook at priority `-400`
/// (ahead of any filter) counts every UDP datagram addressed to the host,
/// IPv4 and IPv6, whether or not a socket is bound to its port. The
/// `input` hook sees datagrams after reassembly, so a fragmented datagram
/// counts once. Hosts have no filter rules of their own, so nothing drops a
/// datagram before it is counted.
///
/// [`Counts::bytes`] is the length of the IP packet: IP header (20 bytes
/// for IPv4 without options, 40 for IPv6 plus any extension headers) plus
/// the 8-byte UDP header plus the payload. A 100-byte payload counts 128
/// bytes over IPv4 and 148 over IPv6. No link-layer header is counted.
///
/// Dropping the counter deletes its table (quietly doing nothing if the lab,
/// and so the namespace, is already gone); dropping the lab removes it too.
#[derive(Debug)]
pub struct UdpCounter {
    namespace: String,
    table: String,
}

impl UdpCounter {
    /// Installs a new counter in `namespace`.
    pub(crate) fn install(namespace: &str) -> Result<Self, Error> {
        let table = format!(
            "natlab_udp_{}",
            COUNTER_TABLES.fetch_add(1, Ordering::Relaxed)
        );
        netns::load_nft(namespace, &ruleset(&table))?;
        Ok(Self {
            namespace: namespace.to_owned(),
            table,
        })
    }

    /// The name of the counter's nftables table (family `inet`).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The UDP datagrams (as [`Counts::packets`]) and their bytes counted
    /// since the counter was installed.
    pub fn read(&self) -> Result<Counts, Error> {
        let output = netns::exec_in(
            &self.namespace,
            "nft",
            &["list", "counter", "inet", &self.table, "datagrams"],
        )?;
        parse_counts(&output).ok_or_else(|| self.unreadable(&output))
    }

    /// The counts per source address (IPv4 and IPv6), for every source that
    /// has sent at least one UDP datagram since the counter was installed.
    pub fn by_source(&self) -> Result<BTreeMap<IpAddr, Counts>, Error> {
        let mut sources = BTreeMap::new();
        for set in ["sources4", "sources6"] {
            let output = netns::exec_in(
                &self.namespace,
                "nft",
                &["list", "set", "inet", &self.table, set],
            )?;
            let elements = parse_elements(&output).ok_or_else(|| self.unreadable(&output))?;
            sources.extend(elements);
        }
        Ok(sources)
    }

    fn unreadable(&self, output: &str) -> Error {
        Error::Command {
            command: format!("nft list ... inet {}", self.table),
            status: "unexpected output".to_owned(),
            stderr: output.trim().to_owned(),
        }
    }
}

impl Drop for UdpCounter {
    fn drop(&mut self) {
        if !Path::new(netns::NETNS_DIR).join(&self.namespace).exists() {
            return;
        }
        if let Err(error) = netns::exec_in(
            &self.namespace,
            "nft",
            &["delete", "table", "inet", &self.table],
        ) {
            tracing::debug!(namespace = %self.namespace, table = %self.table, %error, "natlab: removing a UDP counter failed");
        }
    }
}

/// The counter's table: a named counter for all UDP datagrams, and two
/// dynamic sets with a counter per source address.
fn ruleset(table: &str) -> String {
    format!(
        "table inet {table} {{\n  \
         counter datagrams {{ }}\n  \
         set sources4 {{\n    type ipv4_addr\n    flags dynamic\n    counter\n  }}\n  \
         set sources6 {{\n    type ipv6_addr\n    flags dynamic\n    counter\n  }}\n  \
         chain input {{\n    type filter hook input priority -400; policy accept;\n    \
         meta l4proto udp counter name \"datagrams\"\n    \
         meta l4proto udp update @sources4 {{ ip saddr }}\n    \
         meta l4proto udp update @sources6 {{ ip6 saddr }}\n  }}\n}}\n"
    )
}

/// The first `packets N bytes M` in `text`.
fn parse_counts(text: &str) -> Option<Counts> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    tokens.windows(4).find_map(|window| match window {
        ["packets", packets, "bytes", bytes] => Some(Counts {
            packets: packets.parse().ok()?,
            bytes: bytes.trim_end_matches(',').parse().ok()?,
        }),
        _ => None,
    })
}

/// The elements of a listed set with per-element counters:
/// `elements = { 203.0.113.10 counter packets 3 bytes 384, ... }`. A set
/// without elements has no `elements` line.
fn parse_elements(text: &str) -> Option<BTreeMap<IpAddr, Counts>> {
    let mut elements = BTreeMap::new();
    let Some(start) = text.find("elements = {") else {
        return Some(elements);
    };
    let rest = &text[start + "elements = {".len()..];
    let body = &rest[..rest.find('}')?];
    for element in body.split(',') {
        let element = element.trim();
        if element.is_empty() {
            continue;
        }
        let (address, counter) = element.split_once(char::is_whitespace)?;
        elements.insert(address.parse().ok()?, parse_counts(counter)?);
    }
    Some(elements)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_named_counter_and_per_source_elements() {
        let counter = "table inet t {\n\tcounter datagrams {\n\t\tpackets 2 bytes 96\n\t}\n}\n";
        assert_eq!(
            parse_counts(counter),
            Some(Counts {
                packets: 2,
                bytes: 96
            })
        );
        let set = "table inet t {\n\tset sources6 {\n\t\ttype ipv6_addr\n\t\tsize 65535\n\t\t\
                   flags dynamic\n\t\tcounter\n\t\telements = { ::1 counter packets 1 bytes 58,\n\t\t\t\
                   2001:db8:113::10 counter packets 3 bytes 444 }\n\t}\n}\n";
        let elements = parse_elements(set).expect("parses");
        assert_eq!(elements.len(), 2);
        let relay: IpAddr = "2001:db8:113::10".parse().expect("address");
        assert_eq!(
            elements[&relay],
            Counts {
                packets: 3,
                bytes: 444
            }
        );
        let empty = "table inet t {\n\tset sources4 {\n\t\ttype ipv4_addr\n\t\tcounter\n\t}\n}\n";
        assert_eq!(parse_elements(empty), Some(BTreeMap::new()));
        assert_eq!(parse_counts("counter datagrams { }"), None);
    }

    #[test]
    fn the_ruleset_counts_udp_ahead_of_every_filter() {
        let rules = ruleset("natlab_udp_7");
        assert!(rules.starts_with("table inet natlab_udp_7 {"), "{rules}");
        assert!(rules.contains("hook input priority -400;"), "{rules}");
        assert!(rules.contains("meta l4proto udp counter name \"datagrams\""));
    }
}
