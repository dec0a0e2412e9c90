//! Loss on WAN links: an nftables table in the internet namespace.

/// The ruleset that drops `percent` of the packets entering and, separately,
/// leaving the internet namespace through any link interface (`l0`, `l1`,
/// ...): loss on every WAN link, in each direction.
///
/// Inbound packets are dropped in prerouting at raw priority, before
/// conntrack sees them.
pub(crate) fn loss_ruleset(percent: f64) -> String {
    let threshold = per_ten_thousand(percent);
    format!(
        "table inet natlab_loss {{\n  \
         chain inbound {{\n    type filter hook prerouting priority raw; policy accept;\n    \
         iifname \"l*\" numgen random mod 10000 < {threshold} drop\n  }}\n  \
         chain outbound {{\n    type filter hook postrouting priority filter; policy accept;\n    \
         oifname \"l*\" numgen random mod 10000 < {threshold} drop\n  }}\n}}\n"
    )
}

/// `percent` of 10000, rounded and clamped to `0..=10000`.
fn per_ten_thousand(percent: f64) -> u32 {
    let scaled = (percent * 100.0).round().clamp(0.0, 10_000.0);
    // Rounded and clamped above, so the conversion is exact.
    scaled as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_becomes_a_threshold_out_of_ten_thousand() {
        assert_eq!(per_ten_thousand(20.0), 2000);
        assert_eq!(per_ten_thousand(0.05), 5);
        assert_eq!(per_ten_thousand(150.0), 10_000);
        assert!(loss_ruleset(5.0).contains("numgen random mod 10000 < 500 drop"));
    }
}
