//! Writing a batch of shadow results: aggregate in memory first (a batch of 500 results over a
//! handful of routes becomes a handful of rows), then upsert the deltas, count each differing
//! result under its difference set (see [`super::diffsets`]) and feed the sample reservoirs,
//! all in one transaction.
//!
//! Counters are added with `ON CONFLICT … DO UPDATE SET n = table.n + excluded.n`, which is
//! atomic on both databases, so several gateway replicas sharing one PostgreSQL never lose a
//! count. Keys are visited in sorted order (`BTreeMap`) so concurrent writers take row locks in
//! the same order and cannot deadlock each other.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::diffsets::{self, LEGACY_MISMATCH, LEGACY_NOISE_ONLY, SetKey};
use super::histogram::bin_index;
use super::samples::{self, SampleOffer};
use super::shadow::bucket_floor;
use super::{Outcome, Result, ShadowResult, Store};

/// At most this many (pattern, kind) reservoirs receive a copy of one result's sample: a
/// response that differs everywhere must not write its body hundreds of times.
const MAX_SAMPLE_KEYS_PER_RESULT: usize = 16;

/// Outcome counters of one route × tenant × minute.
#[derive(Debug, Default, Clone, Copy)]
struct BucketDelta {
    compared: i64,
    matched: i64,
    mismatched: i64,
    noise_only: i64,
    errors: i64,
    skipped: i64,
    self_checked: i64,
}

/// Count and time span of one route × tenant × pattern × kind × minute.
#[derive(Debug, Clone, Copy)]
struct DiffDelta {
    count: i64,
    first_ms: i64,
    last_ms: i64,
}

type RouteTenantBucket = (String, String, i64);

/// A batch folded into per-key deltas.
#[derive(Debug, Default)]
struct Aggregate {
    buckets: BTreeMap<RouteTenantBucket, BucketDelta>,
    /// (route, tenant, bucket, reason) → count.
    skips: BTreeMap<(String, String, i64, String), i64>,
    /// (route, tenant, pattern, kind, bucket).
    diffs: BTreeMap<(String, String, String, String, i64), DiffDelta>,
    /// (route, pattern, bucket) → count.
    self_diffs: BTreeMap<(String, String, i64), i64>,
    /// (route, tenant, side, bucket, bin) → count.
    latency: BTreeMap<(String, String, &'static str, i64, i64), i64>,
    /// (route, tenant, bucket, difference set) → differing results.
    set_counts: BTreeMap<(String, String, i64, SetKey), i64>,
    /// Distinct difference sets of the batch → newest time seen.
    sets: BTreeMap<Vec<(String, String)>, i64>,
    offers: Vec<SampleOffer>,
}

/// What one batch write did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchStats {
    pub results: usize,
    pub samples_kept: usize,
}

// === impl Aggregate ===

impl Aggregate {
    fn build(results: &[ShadowResult]) -> Result<Aggregate> {
        let mut agg = Aggregate::default();
        for r in results {
            agg.add(r)?;
        }
        Ok(agg)
    }

    fn add(&mut self, r: &ShadowResult) -> Result<()> {
        let bucket = bucket_floor(r.at_ms);
        let tenant = r.tenant_key().to_owned();
        let key = (r.route.clone(), tenant.clone(), bucket);
        let b = self.buckets.entry(key).or_default();
        match r.outcome {
            Outcome::Match => b.matched += 1,
            Outcome::Mismatch => b.mismatched += 1,
            Outcome::NoiseOnly => b.noise_only += 1,
            Outcome::Error => b.errors += 1,
            Outcome::Skipped => b.skipped += 1,
        }
        if r.outcome == Outcome::Skipped {
            // A skip without a reason still counts in `skipped`, only not by reason.
            if let Some(reason) = r.skip_reason {
                *self
                    .skips
                    .entry((
                        r.route.clone(),
                        tenant.clone(),
                        bucket,
                        reason.as_str().to_owned(),
                    ))
                    .or_default() += 1;
            }
        } else {
            b.compared += 1;
        }

        if let Some(check) = &r.self_check {
            b.self_checked += 1;
            let patterns: BTreeSet<&String> = check.differing_patterns.iter().collect();
            for p in patterns {
                *self
                    .self_diffs
                    .entry((r.route.clone(), p.clone(), bucket))
                    .or_default() += 1;
            }
        }

        // A pattern × kind counts once per result, however many elements matched it.
        let keys: BTreeSet<(&str, &str)> = r
            .diffs
            .iter()
            .map(|d| (d.pattern.as_str(), d.kind.as_str()))
            .collect();
        for (pattern, kind) in &keys {
            let k = (
                r.route.clone(),
                tenant.clone(),
                (*pattern).to_owned(),
                (*kind).to_owned(),
                bucket,
            );
            self.diffs
                .entry(k)
                .and_modify(|d| {
                    d.count += 1;
                    d.first_ms = d.first_ms.min(r.at_ms);
                    d.last_ms = d.last_ms.max(r.at_ms);
                })
                .or_insert(DiffDelta {
                    count: 1,
                    first_ms: r.at_ms,
                    last_ms: r.at_ms,
                });
        }

        // Results that differed are counted under what they differed on; the report derives
        // their outcome from it. Matches and errors cannot change on reading: their bucket
        // counters are enough.
        if matches!(r.outcome, Outcome::Mismatch | Outcome::NoiseOnly) {
            let set = if keys.is_empty() {
                SetKey::Reserved(if r.outcome == Outcome::Mismatch {
                    LEGACY_MISMATCH
                } else {
                    LEGACY_NOISE_ONLY
                })
            } else {
                let members: Vec<(String, String)> = keys
                    .iter()
                    .map(|(p, k)| ((*p).to_owned(), (*k).to_owned()))
                    .collect();
                let seen = self.sets.entry(members.clone()).or_insert(r.at_ms);
                *seen = (*seen).max(r.at_ms);
                SetKey::Members(members)
            };
            *self
                .set_counts
                .entry((r.route.clone(), tenant.clone(), bucket, set))
                .or_default() += 1;
        }

        let sides = [
            (r.primary_side.as_str(), r.primary_ms),
            (r.shadow_side().as_str(), r.shadow_ms),
        ];
        for (side, ms) in sides {
            if let Some(ms) = ms {
                let bin = i64::try_from(bin_index(ms)).unwrap_or(0);
                let k = (r.route.clone(), tenant.clone(), side, bucket, bin);
                *self.latency.entry(k).or_default() += 1;
            }
        }

        if let Some(pair) = &r.sample
            && r.outcome != Outcome::Skipped
        {
            // Serialised once, after the last-guard scrub, shared by every key it is offered to.
            let pair_json = Arc::new(serde_json::to_string(&pair.scrubbed())?);
            let sample_keys: Vec<(String, String)> = if keys.is_empty() {
                vec![(String::new(), r.outcome.as_str().to_owned())]
            } else {
                keys.iter()
                    .take(MAX_SAMPLE_KEYS_PER_RESULT)
                    .map(|(p, k)| ((*p).to_owned(), (*k).to_owned()))
                    .collect()
            };
            for (pattern, kind) in sample_keys {
                self.offers.push(SampleOffer {
                    route: r.route.clone(),
                    tenant: tenant.clone(),
                    pattern,
                    kind,
                    at_ms: r.at_ms,
                    pair_json: Arc::clone(&pair_json),
                });
            }
        }
        Ok(())
    }
}

// === impl Store ===

impl Store {
    /// Write `results` in one transaction: aggregates, then up to `reservoir_k` samples per
    /// (route, pattern, kind). On error nothing of the batch is written.
    pub async fn write_shadow_batch(
        &self,
        results: &[ShadowResult],
        reservoir_k: usize,
    ) -> Result<BatchStats> {
        let agg = Aggregate::build(results)?;
        // Seeded from the thread RNG before the first await: the future stays `Send`.
        let mut rng = StdRng::from_rng(&mut rand::rng());
        let mut tx = self.pool().begin().await?;

        for ((route, tenant, bucket), d) in &agg.buckets {
            sqlx::query(
                "INSERT INTO shadow_buckets (route, tenant, bucket_ms, compared, matched, \
                 mismatched, noise_only, errors, skipped, self_checked) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (route, tenant, bucket_ms) DO UPDATE SET \
                 compared = shadow_buckets.compared + excluded.compared, \
                 matched = shadow_buckets.matched + excluded.matched, \
                 mismatched = shadow_buckets.mismatched + excluded.mismatched, \
                 noise_only = shadow_buckets.noise_only + excluded.noise_only, \
                 errors = shadow_buckets.errors + excluded.errors, \
                 skipped = shadow_buckets.skipped + excluded.skipped, \
                 self_checked = shadow_buckets.self_checked + excluded.self_checked",
            )
            .bind(route.clone())
            .bind(tenant.clone())
            .bind(*bucket)
            .bind(d.compared)
            .bind(d.matched)
            .bind(d.mismatched)
            .bind(d.noise_only)
            .bind(d.errors)
            .bind(d.skipped)
            .bind(d.self_checked)
            .execute(&mut *tx)
            .await?;
        }

        for ((route, tenant, bucket, reason), n) in &agg.skips {
            sqlx::query(
                "INSERT INTO shadow_skips (route, tenant, bucket_ms, reason, count) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (route, tenant, bucket_ms, reason) \
                 DO UPDATE SET count = shadow_skips.count + excluded.count",
            )
            .bind(route.clone())
            .bind(tenant.clone())
            .bind(*bucket)
            .bind(reason.clone())
            .bind(*n)
            .execute(&mut *tx)
            .await?;
        }

        for ((route, tenant, pattern, kind, bucket), d) in &agg.diffs {
            sqlx::query(
                "INSERT INTO shadow_diffs (route, tenant, pattern, kind, bucket_ms, count, \
                 first_seen_ms, last_seen_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (route, tenant, pattern, kind, bucket_ms) DO UPDATE SET \
                 count = shadow_diffs.count + excluded.count, \
                 first_seen_ms = CASE WHEN excluded.first_seen_ms < shadow_diffs.first_seen_ms \
                 THEN excluded.first_seen_ms ELSE shadow_diffs.first_seen_ms END, \
                 last_seen_ms = CASE WHEN excluded.last_seen_ms > shadow_diffs.last_seen_ms \
                 THEN excluded.last_seen_ms ELSE shadow_diffs.last_seen_ms END",
            )
            .bind(route.clone())
            .bind(tenant.clone())
            .bind(pattern.clone())
            .bind(kind.clone())
            .bind(*bucket)
            .bind(d.count)
            .bind(d.first_ms)
            .bind(d.last_ms)
            .execute(&mut *tx)
            .await?;
        }

        for ((route, pattern, bucket), n) in &agg.self_diffs {
            sqlx::query(
                "INSERT INTO shadow_self_diffs (route, pattern, bucket_ms, count) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (route, pattern, bucket_ms) \
                 DO UPDATE SET count = shadow_self_diffs.count + excluded.count",
            )
            .bind(route.clone())
            .bind(pattern.clone())
            .bind(*bucket)
            .bind(*n)
            .execute(&mut *tx)
            .await?;
        }

        for ((route, tenant, side, bucket, bin), n) in &agg.latency {
            sqlx::query(
                "INSERT INTO shadow_latency (route, tenant, side, bucket_ms, bin, count) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (route, tenant, side, bucket_ms, bin) \
                 DO UPDATE SET count = shadow_latency.count + excluded.count",
            )
            .bind(route.clone())
            .bind(tenant.clone())
            .bind((*side).to_owned())
            .bind(*bucket)
            .bind(*bin)
            .bind(*n)
            .execute(&mut *tx)
            .await?;
        }

        let set_ids = diffsets::intern(&mut tx, &agg.sets).await?;
        for ((route, tenant, bucket, set), n) in &agg.set_counts {
            let set_id = match set {
                SetKey::Reserved(id) => *id,
                SetKey::Members(members) => match set_ids.get(members) {
                    Some(id) => *id,
                    None => LEGACY_MISMATCH,
                },
            };
            sqlx::query(
                "INSERT INTO shadow_set_counts (route, tenant, bucket_ms, set_id, count) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (route, tenant, bucket_ms, set_id) \
                 DO UPDATE SET count = shadow_set_counts.count + excluded.count",
            )
            .bind(route.clone())
            .bind(tenant.clone())
            .bind(*bucket)
            .bind(set_id)
            .bind(*n)
            .execute(&mut *tx)
            .await?;
        }

        let mut samples_kept = 0;
        for o in &agg.offers {
            if samples::offer(&mut tx, o, reservoir_k, &mut rng)
                .await?
                .is_some()
            {
                samples_kept += 1;
            }
        }

        tx.commit().await?;
        Ok(BatchStats {
            results: results.len(),
            samples_kept,
        })
    }
}
