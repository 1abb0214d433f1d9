-- SQLite dialect. Keep in step with ../postgres/0001_init.sql: only the id columns differ.
-- Audit log: every admin write (who, when, what, before -> after).
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms BIGINT NOT NULL,
    token_name TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    before_json TEXT NOT NULL,
    after_json TEXT NOT NULL,
    reason TEXT,
    generation BIGINT,
    dry_run BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX audit_log_at ON audit_log (at_ms, id);
CREATE INDEX audit_log_target ON audit_log (target, at_ms);

-- Config history: the last generations with their full text (pruned to the newest 50).
CREATE TABLE config_generations (
    generation BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    loaded_at_ms BIGINT NOT NULL,
    source TEXT NOT NULL,
    content TEXT NOT NULL,
    origin TEXT NOT NULL
);

-- Shadow outcome counters per route x tenant x minute. tenant '' = no tenant (a key column
-- cannot be NULL and still make ON CONFLICT upserts merge rows).
CREATE TABLE shadow_buckets (
    route TEXT NOT NULL,
    tenant TEXT NOT NULL,
    bucket_ms BIGINT NOT NULL,
    compared BIGINT NOT NULL DEFAULT 0,
    matched BIGINT NOT NULL DEFAULT 0,
    mismatched BIGINT NOT NULL DEFAULT 0,
    noise_only BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0,
    skipped BIGINT NOT NULL DEFAULT 0,
    self_checked BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (route, tenant, bucket_ms)
);
CREATE INDEX shadow_buckets_time ON shadow_buckets (bucket_ms);

-- Skipped comparisons by reason.
CREATE TABLE shadow_skips (
    route TEXT NOT NULL,
    tenant TEXT NOT NULL,
    bucket_ms BIGINT NOT NULL,
    reason TEXT NOT NULL,
    count BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (route, tenant, bucket_ms, reason)
);
CREATE INDEX shadow_skips_time ON shadow_skips (bucket_ms);

-- Primary-vs-shadow differences: results that differed on pattern x kind.
CREATE TABLE shadow_diffs (
    route TEXT NOT NULL,
    tenant TEXT NOT NULL,
    pattern TEXT NOT NULL,
    kind TEXT NOT NULL,
    bucket_ms BIGINT NOT NULL,
    count BIGINT NOT NULL DEFAULT 0,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    PRIMARY KEY (route, tenant, pattern, kind, bucket_ms)
);
CREATE INDEX shadow_diffs_time ON shadow_diffs (bucket_ms);

-- Primary-vs-primary differences (learned noise), per route x pattern.
CREATE TABLE shadow_self_diffs (
    route TEXT NOT NULL,
    pattern TEXT NOT NULL,
    bucket_ms BIGINT NOT NULL,
    count BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (route, pattern, bucket_ms)
);
CREATE INDEX shadow_self_diffs_time ON shadow_self_diffs (bucket_ms);

-- Latency histogram, one row per non-empty log-scale bin.
CREATE TABLE shadow_latency (
    route TEXT NOT NULL,
    tenant TEXT NOT NULL,
    side TEXT NOT NULL,
    bucket_ms BIGINT NOT NULL,
    bin BIGINT NOT NULL,
    count BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (route, tenant, side, bucket_ms, bin)
);
CREATE INDEX shadow_latency_time ON shadow_latency (bucket_ms);

-- Reservoir state: how many results offered a sample for route x pattern x kind.
CREATE TABLE shadow_reservoir (
    route TEXT NOT NULL,
    pattern TEXT NOT NULL,
    kind TEXT NOT NULL,
    seen BIGINT NOT NULL DEFAULT 0,
    last_seen_ms BIGINT NOT NULL,
    PRIMARY KEY (route, pattern, kind)
);

-- Reservoir-sampled request/response pairs (already redacted), JSON as TEXT.
CREATE TABLE shadow_samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    route TEXT NOT NULL,
    tenant TEXT NOT NULL,
    pattern TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    pair_json TEXT NOT NULL
);
CREATE INDEX shadow_samples_key ON shadow_samples (route, pattern, kind, id);
CREATE INDEX shadow_samples_time ON shadow_samples (at_ms, id);
