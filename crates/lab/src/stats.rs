//! The figures the benchmark reports.

/// The Wilson score interval (95 %) of `successes` out of `trials`, as
/// fractions; `(0, 1)` for no trials.
pub fn wilson_95(successes: usize, trials: usize) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054_f64;
    let n = trials as f64;
    let p = successes as f64 / n;
    let denominator = 1.0 + z * z / n;
    let centre = p + z * z / (2.0 * n);
    let margin = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    (
        ((centre - margin) / denominator).max(0.0),
        ((centre + margin) / denominator).min(1.0),
    )
}

/// The `q` quantile (0..=1) of `values` by the nearest-rank method; `None`
/// when empty.
pub fn quantile(values: &[u64], q: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_known_values() {
        let (low, high) = wilson_95(10, 10);
        assert!(
            (low - 0.722).abs() < 0.001 && (high - 1.0).abs() < 1e-9,
            "{low} {high}"
        );
        let (low, high) = wilson_95(0, 20);
        assert!(low == 0.0 && (high - 0.161).abs() < 0.001, "{low} {high}");
        let (low, high) = wilson_95(15, 30);
        assert!(
            (low - 0.332).abs() < 0.001 && (high - 0.668).abs() < 0.001,
            "{low} {high}"
        );
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let values = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
        assert_eq!(quantile(&values, 0.5), Some(5));
        assert_eq!(quantile(&values, 0.9), Some(9));
        assert_eq!(quantile(&values, 1.0), Some(10));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
