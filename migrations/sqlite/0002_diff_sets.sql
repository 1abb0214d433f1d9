-- SQLite dialect. Keep in step with ../postgres/0002_diff_sets.sql: only the id columns differ.
-- Each compared result that differed is counted under the set of (pattern, kind) it differed
-- on, so the report derives matched / noise-only / mismatched when it is read, under the noise
-- classification and compare rules in force then, instead of freezing the live verdict.

-- Interned difference patterns (`/items/*/price`, `header:etag`, `status`): one id per text.
-- `last_used_ms` lets retention drop patterns no longer written.
CREATE TABLE shadow_patterns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pattern TEXT NOT NULL UNIQUE,
    last_used_ms BIGINT NOT NULL
);
CREATE INDEX shadow_patterns_used ON shadow_patterns (last_used_ms);

-- Interned difference sets: one id per distinct sorted set of (pattern id, kind), written as
-- `members` = '12:value,40:missing'.
CREATE TABLE shadow_diff_sets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    members TEXT NOT NULL UNIQUE,
    last_used_ms BIGINT NOT NULL
);
CREATE INDEX shadow_diff_sets_used ON shadow_diff_sets (last_used_ms);

-- Compared results that differed, per route x tenant x minute x difference set. Set ids -1 and
-- -2 stand for results stored before difference sets existed, as classified when they were
-- written: mismatched (-1) and noise-only (-2).
CREATE TABLE shadow_set_counts (
    route TEXT NOT NULL,
    tenant TEXT NOT NULL,
    bucket_ms BIGINT NOT NULL,
    set_id BIGINT NOT NULL,
    count BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (route, tenant, bucket_ms, set_id)
);
CREATE INDEX shadow_set_counts_time ON shadow_set_counts (bucket_ms);

-- The report sums latency per route x side x bin (x tenant). Read from this index alone,
-- without a visit to the table per row, that stays fast with hundreds of thousands of bins.
CREATE INDEX shadow_latency_bins ON shadow_latency (route, side, bin, tenant, bucket_ms, count);

INSERT INTO shadow_set_counts (route, tenant, bucket_ms, set_id, count)
SELECT route, tenant, bucket_ms, -1, mismatched FROM shadow_buckets WHERE mismatched > 0;
INSERT INTO shadow_set_counts (route, tenant, bucket_ms, set_id, count)
SELECT route, tenant, bucket_ms, -2, noise_only FROM shadow_buckets WHERE noise_only > 0;
