//! Small statistics for the report: the Wilson score interval for a parity proportion.
//!
//! Wilson rather than the normal ("Wald") interval because parity sits near 100%, where the
//! Wald interval collapses to zero width (and exceeds 100%) exactly when caution matters most.

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Wilson score interval for `successes` out of `n` at the given `z`, as proportions in
/// `[0, 1]`; `None` when `n` is zero.
pub fn wilson_interval(successes: u64, n: u64, z: f64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let n_f = n as f64;
    let p = successes.min(n) as f64 / n_f;
    let z2 = z * z;
    let denom = 1.0 + z2 / n_f;
    let center = (p + z2 / (2.0 * n_f)) / denom;
    let half = z / denom * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt();
    Some((
        (center - half).clamp(0.0, 1.0),
        (center + half).clamp(0.0, 1.0),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn matches_hand_computed_values() {
        // p = 95/100: the textbook example, (0.888250, 0.978456).
        let (lo, hi) = wilson_interval(95, 100, Z95).unwrap();
        assert!(close(lo, 0.888_249_530_768_080_7), "{lo}");
        assert!(close(hi, 0.978_456_320_845_631_9), "{hi}");
        // p = 990/1000.
        let (lo, hi) = wilson_interval(990, 1000, Z95).unwrap();
        assert!(close(lo, 0.981_690_531_129_685_3), "{lo}");
        assert!(close(hi, 0.994_559_245_554_470_7), "{hi}");
    }

    #[test]
    fn edges_stay_inside_zero_one() {
        let (lo, hi) = wilson_interval(0, 10, Z95).unwrap();
        assert!(
            close(lo, 0.0) && close(hi, 0.277_532_799_862_889_2),
            "{lo} {hi}"
        );
        let (lo, hi) = wilson_interval(10, 10, Z95).unwrap();
        assert!(
            close(lo, 0.722_467_200_137_110_7) && hi <= 1.0 && close(hi, 1.0),
            "{lo} {hi}"
        );
        assert_eq!(wilson_interval(0, 0, Z95), None);
    }
}
