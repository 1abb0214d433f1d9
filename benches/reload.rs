//! Compile + swap of a large rule set: 10 000 tenants × 2 000 routes, through the same
//! `Live::reload` pipeline a file edit takes (read → parse and compile, compare rules included →
//! build pools → swap). Two versions of the file alternate so every reload applies.
//!
//! Run: `cargo bench --bench reload`

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard::clock::Clock;
use switchyard::config::source::Source;
use switchyard::live::{Live, ReloadOutcome, Trigger};
use switchyard::telemetry::Metrics;

#[path = "../tests/config/generate.rs"]
mod generate;

fn reload(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = generate::write_big_config(dir.path(), 10_000, 2_000);
    let a = std::fs::read_to_string(&path).unwrap();
    let b = format!("{a}\n# second version\n[tenants.bench-flip]\nside = \"new\"\n");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let live = runtime
        .block_on(Live::open(
            Source::file(&path),
            Arc::new(Metrics::new()),
            Clock::system(),
        ))
        .unwrap();
    let mut flip = false;
    let mut group = c.benchmark_group("reload");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("compile_and_swap_10k_tenants_2k_routes", |bench| {
        bench.iter(|| {
            flip = !flip;
            std::fs::write(&path, if flip { &b } else { &a }).unwrap();
            let outcome = runtime.block_on(live.reload(Trigger::Admin)).unwrap();
            assert!(matches!(outcome, ReloadOutcome::Applied { .. }));
        })
    });
    group.finish();
}

criterion_group!(benches, reload);
criterion_main!(benches);
