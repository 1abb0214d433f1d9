use super::*;
use crate::compare::{Diff, Difference, Kind};

/// An arbitrary instant (2023-11-14T22:13:20Z).
const NOW: i64 = 1_700_000_000_000;

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
            NOW,
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
        model.record_cross("cards", &diff_at(&patterns), NOW);
    }
    model.record_cross("cards", &Diff::default(), NOW);

    assert_eq!(
        model.stats("cards", "/items/*/updated_at", NOW),
        stats(100, 101, 30, 30)
    );
    assert_eq!(
        model.stats("cards", "/items/*/price", NOW),
        stats(10, 101, 0, 30)
    );
    assert_eq!(
        model.classify("cards", "/generated_at", NOW),
        NoiseVerdict::Noise
    );
    assert_eq!(
        model.classify("cards", "/items/*/price", NOW),
        NoiseVerdict::Real
    );
    assert_eq!(model.stats("other", "/x", NOW), PathStats::default());

    let verdicts = model.verdicts(
        "cards",
        &diff_at(&["/items/*/price", "/generated_at", "/new"]),
        NOW,
    );
    assert_eq!(
        verdicts,
        vec![NoiseVerdict::Real, NoiseVerdict::Noise, NoiseVerdict::Noise]
    );
    let listed: Vec<String> = model
        .patterns("cards", NOW)
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
    model.record_cross("a", &diff_at(&["/x", "/y", "/z"]), NOW);
    assert_eq!(model.len(), 3, "route a plus two patterns");
    assert_eq!(model.dropped(), 1);
    model.record_cross("b", &diff_at(&["/x"]), NOW);
    assert_eq!(model.dropped(), 3, "route b and its pattern");
    // Known keys keep counting.
    model.record_cross("a", &diff_at(&["/x"]), NOW);
    assert_eq!(model.stats("a", "/x", NOW).cross_diffs, 2);
    assert_eq!(model.stats("a", "/z", NOW), stats(0, 2, 0, 0));
}

#[test]
fn model_is_shared_across_threads() {
    let model = std::sync::Arc::new(NoiseModel::default());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let m = model.clone();
            std::thread::spawn(move || {
                for _ in 0..250 {
                    m.record_cross("r", &diff_at(&["/p"]), NOW);
                    m.record_self("r", &diff_at(&[]), NOW);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(model.stats("r", "/p", NOW), stats(1000, 1000, 0, 1000));
    assert_eq!(model.classify("r", "/p", NOW), NoiseVerdict::Real);
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

#[test]
fn a_field_that_stops_being_noisy_turns_real_after_the_window() {
    let hour = 3_600_000;
    let model = NoiseModel::with_window(DEFAULT_MAX_KEYS, std::time::Duration::from_secs(3600));
    // For an hour /at differs between two calls of the primary: it is noise.
    for i in 0..60 {
        let t = NOW + i * 60_000;
        model.record_self("cards", &diff_at(&["/at"]), t);
        model.record_cross("cards", &diff_at(&["/at"]), t);
    }
    let t = NOW + hour - 1;
    assert_eq!(model.classify("cards", "/at", t), NoiseVerdict::Noise);
    // Then the primary keeps it stable; the old self differences age out with the window.
    for i in 0..60 {
        model.record_self("cards", &Diff::default(), NOW + hour + i * 60_000);
    }
    let later = NOW + 2 * hour + 5 * 60_000;
    let s = model.stats("cards", "/at", later);
    assert_eq!((s.self_diffs, s.cross_diffs), (0, 0), "{s:?}");
    assert!(s.self_total >= MIN_SELF_SAMPLES, "{s:?}");
    // A cross-side difference on it now is real.
    model.record_cross("cards", &diff_at(&["/at"]), later);
    assert_eq!(model.classify("cards", "/at", later), NoiseVerdict::Real);
}

#[test]
fn expired_keys_make_room_and_a_new_window_starts_afresh() {
    let model = NoiseModel::with_window(3, std::time::Duration::from_secs(24 * 60));
    model.record_cross("a", &diff_at(&["/x", "/y"]), NOW);
    assert_eq!(model.len(), 3);
    // Within the window a new pattern has no room.
    model.record_cross("a", &diff_at(&["/z"]), NOW + 60_000);
    assert_eq!(model.dropped(), 1);
    // A window later the old keys hold no evidence and are swept.
    let later = NOW + 25 * 60_000;
    model.record_cross("b", &diff_at(&["/z"]), later);
    assert_eq!(model.stats("b", "/z", later), stats(1, 1, 0, 0));
    assert_eq!(model.stats("a", "/x", later), PathStats::default());
    assert_eq!(model.len(), 2);

    model.set_window(std::time::Duration::from_secs(24 * 60));
    assert_eq!(model.len(), 2, "the same window keeps the evidence");
    model.set_window(std::time::Duration::from_secs(3600));
    assert!(model.is_empty(), "another window starts afresh");
}
