//! The one-sided Fisher exact test used by [`classify`](super::classify).

/// One-sided Fisher exact p-value that the cross rate exceeds the self rate:
/// `P(X >= cross_diffs)` for `X` hypergeometric with the table's margins
/// (`N = cross_total + self_total`, `K = cross_diffs + self_diffs` differing, `n = cross_total`
/// drawn). Counts above their totals are clamped.
pub fn fisher_one_sided(
    cross_diffs: u64,
    cross_total: u64,
    self_diffs: u64,
    self_total: u64,
) -> f64 {
    let x = cross_diffs.min(cross_total);
    let self_diffs = self_diffs.min(self_total);
    let n = cross_total;
    let total = cross_total.saturating_add(self_total);
    let k = x.saturating_add(self_diffs);
    // A cross rate at or below the self rate is at or below the expectation: never significant,
    // and the tail sum below would start under the mode. Cross-multiplied to stay exact.
    if u128::from(x) * u128::from(self_total) <= u128::from(self_diffs) * u128::from(cross_total) {
        return 1.0;
    }
    let upper = k.min(n);
    let log_first = ln_choose(k, x) + ln_choose(total - k, n - x) - ln_choose(total, n);
    // Above the mode the terms shrink, so the tail is summed relative to its first term with
    // the ratio P(i+1)/P(i) until the rest can no longer matter.
    let mut sum = 1.0f64;
    let mut term = 1.0f64;
    let mut i = x;
    while i < upper {
        // (total - k) - (n - i) counts the non-differing self comparisons left: never negative
        // because i >= x, and written this way so no intermediate underflows.
        let rest = (total - k) - (n - i) + 1;
        let ratio = (k - i) as f64 * (n - i) as f64 / ((i + 1) as f64 * rest as f64);
        term *= ratio;
        sum += term;
        i += 1;
        if term < sum * 1e-17 {
            break;
        }
    }
    (log_first + sum.ln()).exp().min(1.0)
}

fn ln_choose(n: u64, k: u64) -> f64 {
    ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k.min(n))
}

/// `ln(n!)`: summed exactly for small `n`, Stirling's series (error below 1e-13) above.
fn ln_factorial(n: u64) -> f64 {
    if n < 32 {
        return (2..=n).map(|i| (i as f64).ln()).sum();
    }
    let x = n as f64;
    let x2 = x * x;
    x * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI * x).ln() + 1.0 / (12.0 * x)
        - 1.0 / (360.0 * x * x2)
        + 1.0 / (1260.0 * x * x2 * x2)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1e-300)
    }

    #[test]
    fn ln_factorial_is_accurate_across_the_switch() {
        let exact: f64 = (2..=40u64).map(|i| (i as f64).ln()).sum();
        assert!((ln_factorial(40) - exact).abs() < 1e-10);
        assert_eq!(ln_factorial(0), 0.0);
        assert_eq!(ln_factorial(1), 0.0);
    }

    #[test]
    fn matches_textbook_values() {
        // Fisher's lady tasting tea: [[3, 1], [1, 3]] → one-sided p = 17/70.
        assert!(close(fisher_one_sided(3, 4, 1, 4), 17.0 / 70.0));
        // [[10, 0], [0, 10]] → 1 / C(20, 10).
        assert!(close(fisher_one_sided(10, 10, 0, 10), 1.0 / 184_756.0));
        // [[1, 9], [11, 3]]: the cross rate is lower → not significant.
        assert_eq!(fisher_one_sided(1, 10, 11, 14), 1.0);
    }

    #[test]
    fn brute_force_agrees_on_small_tables() {
        fn choose(n: u64, k: u64) -> f64 {
            (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
        }
        for (x, n, s, m) in [(5, 12, 2, 15), (7, 9, 3, 20), (4, 30, 1, 25), (2, 3, 1, 40)] {
            let (total, k) = (n + m, x + s);
            let brute: f64 = (x..=k.min(n))
                .map(|i| choose(k, i) * choose(total - k, n - i) / choose(total, n))
                .sum();
            assert!(
                close(fisher_one_sided(x, n, s, m), brute),
                "{x} {n} {s} {m}"
            );
        }
    }

    #[test]
    fn large_counts_stay_finite_and_fast() {
        let p = fisher_one_sided(600_000, 1_000_000, 500_000, 1_000_000);
        assert!(p < 1e-100, "{p}");
        let q = fisher_one_sided(500_100, 1_000_000, 500_000, 1_000_000);
        assert!(q > 0.3 && q < 0.5, "{q}");
    }
}
