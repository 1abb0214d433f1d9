use super::*;
use crate::compare::{Diff, Difference, Kind};

fn stats(cross_diffs: u64, cross_total: u64, self_diffs: u64, self_total: u64) -> PathStats {
    PathStats {
        cross_diffs,
        cross_total,
        self_diffs,
        self_total,
    }
}

fn diff_at(patterns: &[&str]) -> Diff {
    Diff {
        differences: patterns
            .iter()
            .map(|p| Difference {
                kind: Kind::Value,
                path: p.replace('*', "0"),
                pattern: (*p).to_owned(),
                primary: Some("1".into()),
                shadow: Some("2".into()),
            })
            .collect(),
        truncated: false,
    }
}

#[test]
fn a_stable_path_makes_any_cross_difference_real() {
    assert_eq!(
        classify(&stats(1, 500, 0, MIN_SELF_SAMPLES)),
        NoiseVerdict::Real
    );
    assert_eq!(classify(&stats(1, 500, 0, 10_000)), NoiseVerdict::Real);
}

#[test]
fn too_few_self_samples_is_undetermined() {
    assert_eq!(
        classify(&stats(50, 100, 0, MIN_SELF_SAMPLES - 1)),
        NoiseVerdict::Undetermined
    );
    assert_eq!(classify(&stats(50, 100, 3, 5)), NoiseVerdict::Undetermined);
}

#[test]
fn no_cross_difference_is_nothing_real() {
    assert_eq!(classify(&stats(0, 100, 0, 0)), NoiseVerdict::Noise);
    assert_eq!(classify(&stats(0, 100, 40, 40)), NoiseVerdict::Noise);
}

#[test]
fn the_test_separates_noise_from_extra_differences() {
    // A timestamp differs on every call of either side: noise.
    assert_eq!(classify(&stats(1000, 1000, 50, 50)), NoiseVerdict::Noise);
    // Same rate on both sides: noise.
    assert_eq!(classify(&stats(100, 1000, 10, 100)), NoiseVerdict::Noise);
    // A noisy path whose cross rate is far above its self rate: real.
    assert_eq!(classify(&stats(600, 1000, 5, 100)), NoiseVerdict::Real);
    // Slightly above, not significant at 1 %: noise.
    assert_eq!(classify(&stats(130, 1000, 10, 100)), NoiseVerdict::Noise);
    // Counts beyond their totals are clamped, not trusted.
    assert_eq!(classify(&stats(2000, 1000, 500, 50)), NoiseVerdict::Noise);
}

#[test]
fn model_counts_patterns_once_per_comparison() {
    let model = NoiseModel::default();
    for _ in 0..30 {
        model.record_self(
            "cards",
            &diff_at(&[
                "/generated_at",
                "/items/*/updated_at",
                "/items/*/updated_at",
            ]),
        );
    }
    for i in 0..100 {
        let mut patterns = vec![
            "/generated_at",
            "/items/*/updated_at",
            "/items/*/updated_at",
        ];
        if i % 10 == 0 {
            patterns.push("/items/*/price");
        }
        model.record_cross("cards", &diff_at(&patterns));
    }
    model.record_cross("cards", &Diff::default());

    assert_eq!(
        model.stats("cards", "/items/*/updated_at"),
        stats(100, 101, 30, 30)
    );
    assert_eq!(
        model.stats("cards", "/items/*/price"),
        stats(10, 101, 0, 30)
    );
    assert_eq!(
        model.classify("cards", "/generated_at"),
        NoiseVerdict::Noise
    );
    assert_eq!(
        model.classify("cards", "/items/*/price"),
        NoiseVerdict::Real
    );
    assert_eq!(model.stats("other", "/x"), PathStats::default());

    let verdicts = model.verdicts(
        "cards",
        &diff_at(&["/items/*/price", "/generated_at", "/new"]),
    );
    assert_eq!(
        verdicts,
        vec![NoiseVerdict::Real, NoiseVerdict::Noise, NoiseVerdict::Noise]
    );
    let listed: Vec<String> = model
        .patterns("cards")
        .into_iter()
        .map(|(p, _, _)| p)
        .collect();
    assert_eq!(
        listed,
        ["/generated_at", "/items/*/price", "/items/*/updated_at"]
    );
}

#[test]
fn model_is_bounded_and_counts_what_it_drops() {
    let model = NoiseModel::new(3);
    model.record_cross("a", &diff_at(&["/x", "/y", "/z"]));
    assert_eq!(model.len(), 3, "route a plus two patterns");
    assert_eq!(model.dropped(), 1);
    model.record_cross("b", &diff_at(&["/x"]));
    assert_eq!(model.dropped(), 3, "route b and its pattern");
    // Known keys keep counting.
    model.record_cross("a", &diff_at(&["/x"]));
    assert_eq!(model.stats("a", "/x").cross_diffs, 2);
    assert_eq!(model.stats("a", "/z"), stats(0, 2, 0, 0));
}

#[test]
fn model_is_shared_across_threads() {
    let model = std::sync::Arc::new(NoiseModel::default());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let m = model.clone();
            std::thread::spawn(move || {
                for _ in 0..250 {
                    m.record_cross("r", &diff_at(&["/p"]));
                    m.record_self("r", &diff_at(&[]));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(model.stats("r", "/p"), stats(1000, 1000, 0, 1000));
    assert_eq!(model.classify("r", "/p"), NoiseVerdict::Real);
}

#[test]
fn difference_patterns_are_valid_ignore_rules() {
    use crate::compare::{CompareConfig, CompareRules};
    let cfg = CompareConfig {
        ignore: vec!["/items/*/updated_at".into(), "header:x-request-id".into()],
        ..CompareConfig::default()
    };
    assert!(CompareRules::compile(&cfg).is_ok());
    assert_eq!(
        suggest_ignore(&["\"2024-05-01T12:30:00Z\"", "\"2024-05-01T12:31:07.5Z\""]),
        Some("timestamp")
    );
}
