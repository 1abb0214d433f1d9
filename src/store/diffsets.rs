//! Difference sets: what each differing result differed on, stored compactly so the report can
//! derive its outcome when it is read.
//!
//! A result that differed is counted in `shadow_set_counts` under the id of its *set*: the
//! sorted, de-duplicated (pattern, kind) pairs it showed. Patterns are interned
//! (`shadow_patterns`, one id per distinct text) and so are sets (`shadow_diff_sets`, one id per
//! distinct `members` text such as `"3:value,17:missing"`). A million results of a route with a
//! dozen ways of differing are then a dozen sets and one counter row per route × tenant × minute
//! × set; the read side classifies each distinct set once and sums counts.
//!
//! Interning is an upsert that returns the id (`ON CONFLICT … DO UPDATE … RETURNING id`, the
//! same SQL on SQLite and PostgreSQL), so concurrent replicas agree on ids without a read
//! before the write, and the update takes the row lock that keeps retention (which deletes
//! patterns and sets not used within the retention window, by `last_used_ms`) from removing a
//! set another transaction is about to count under. Keys are visited in sorted order, as in the
//! rest of the batch writer, so concurrent writers cannot deadlock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use sqlx::{AnyConnection, AnyPool, Row};

use super::Result;

/// Set id of results stored before difference sets existed and classified `mismatch` then.
pub(super) const LEGACY_MISMATCH: i64 = -1;
/// Set id of results stored before difference sets existed and classified `noise_only` then.
pub(super) const LEGACY_NOISE_ONLY: i64 = -2;

/// Sorted, de-duplicated (pattern, kind) pairs: what one result differed on.
pub(super) type Members = Vec<(String, String)>;

/// Ids looked up per `IN (…)` query on the read side.
const IDS_PER_QUERY: usize = 500;

/// What a differing result is counted under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum SetKey {
    /// What the result differed on.
    Members(Members),
    /// A result that claims to differ without saying where: one of the reserved set ids.
    Reserved(i64),
}

/// One stored set, read back: its (pattern, kind) pairs, or a reserved id's fixed meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StoredSet {
    Members(Members),
    LegacyMismatch,
    LegacyNoiseOnly,
    /// Referenced but no longer stored (or unreadable): counts as a mismatch.
    Unknown,
}

/// `members` text of a set of (pattern id, kind), sorted.
fn encode(members: &BTreeSet<(i64, &str)>) -> String {
    let mut out = String::new();
    for (i, (id, kind)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{id}:{kind}");
    }
    out
}

/// The inverse of [`encode`]; `None` for text this module did not write.
fn decode(text: &str) -> Option<Vec<(i64, String)>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split(',')
        .map(|m| {
            let (id, kind) = m.split_once(':')?;
            Some((id.parse().ok()?, kind.to_owned()))
        })
        .collect()
}

/// Intern every pattern and set of `sets` (each with the newest time it was seen) inside the
/// caller's transaction; returns the id of each set.
pub(super) async fn intern(
    conn: &mut AnyConnection,
    sets: &BTreeMap<Members, i64>,
) -> Result<HashMap<Members, i64>> {
    let mut patterns: BTreeMap<&str, i64> = BTreeMap::new();
    for (members, at_ms) in sets {
        for (pattern, _) in members {
            let used = patterns.entry(pattern.as_str()).or_insert(*at_ms);
            *used = (*used).max(*at_ms);
        }
    }
    let mut pattern_ids: HashMap<&str, i64> = HashMap::with_capacity(patterns.len());
    for (pattern, at_ms) in &patterns {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO shadow_patterns (pattern, last_used_ms) VALUES ($1, $2) \
             ON CONFLICT (pattern) DO UPDATE SET last_used_ms = \
             CASE WHEN excluded.last_used_ms > shadow_patterns.last_used_ms \
             THEN excluded.last_used_ms ELSE shadow_patterns.last_used_ms END \
             RETURNING id",
        )
        .bind((*pattern).to_owned())
        .bind(*at_ms)
        .fetch_one(&mut *conn)
        .await?;
        pattern_ids.insert(pattern, id);
    }

    // members text → (newest use, the sets written that way).
    let mut by_text: BTreeMap<String, (i64, Vec<&Members>)> = BTreeMap::new();
    for (members, at_ms) in sets {
        let ids: BTreeSet<(i64, &str)> = members
            .iter()
            .filter_map(|(p, k)| Some((*pattern_ids.get(p.as_str())?, k.as_str())))
            .collect();
        let entry = by_text.entry(encode(&ids)).or_insert((*at_ms, Vec::new()));
        entry.0 = entry.0.max(*at_ms);
        entry.1.push(members);
    }
    let mut out = HashMap::with_capacity(sets.len());
    for (text, (at_ms, keys)) in by_text {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO shadow_diff_sets (members, last_used_ms) VALUES ($1, $2) \
             ON CONFLICT (members) DO UPDATE SET last_used_ms = \
             CASE WHEN excluded.last_used_ms > shadow_diff_sets.last_used_ms \
             THEN excluded.last_used_ms ELSE shadow_diff_sets.last_used_ms END \
             RETURNING id",
        )
        .bind(text)
        .bind(at_ms)
        .fetch_one(&mut *conn)
        .await?;
        for key in keys {
            out.insert(key.clone(), id);
        }
    }
    Ok(out)
}

/// `IN ($1, …)` over `ids`, one query per chunk, collecting `(id, text)` of `column`.
async fn by_ids(
    pool: &AnyPool,
    table: &str,
    column: &str,
    ids: &[i64],
) -> Result<Vec<(i64, String)>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, {column} AS text FROM {table} WHERE id IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(pool).await? {
            out.push((row.try_get("id")?, row.try_get("text")?));
        }
    }
    Ok(out)
}

/// The sets behind `ids`, with their patterns resolved: two lookups however many counter rows
/// refer to them.
pub(super) async fn load(pool: &AnyPool, ids: &BTreeSet<i64>) -> Result<HashMap<i64, StoredSet>> {
    let mut out: HashMap<i64, StoredSet> = HashMap::with_capacity(ids.len());
    let stored: Vec<i64> = ids.iter().copied().filter(|id| *id > 0).collect();
    let mut decoded: Vec<(i64, Vec<(i64, String)>)> = Vec::with_capacity(stored.len());
    for (id, text) in by_ids(pool, "shadow_diff_sets", "members", &stored).await? {
        match decode(&text) {
            Some(members) => decoded.push((id, members)),
            None => tracing::warn!(id, "unreadable difference set; counted as a mismatch"),
        }
    }
    let pattern_ids: BTreeSet<i64> = decoded
        .iter()
        .flat_map(|(_, m)| m.iter().map(|(p, _)| *p))
        .collect();
    let pattern_ids: Vec<i64> = pattern_ids.into_iter().collect();
    let patterns: HashMap<i64, String> = by_ids(pool, "shadow_patterns", "pattern", &pattern_ids)
        .await?
        .into_iter()
        .collect();
    for (id, members) in decoded {
        let resolved: Option<Vec<(String, String)>> = members
            .into_iter()
            .map(|(p, kind)| Some((patterns.get(&p)?.clone(), kind)))
            .collect();
        out.insert(id, resolved.map_or(StoredSet::Unknown, StoredSet::Members));
    }
    for id in ids {
        let fixed = match *id {
            LEGACY_MISMATCH => StoredSet::LegacyMismatch,
            LEGACY_NOISE_ONLY => StoredSet::LegacyNoiseOnly,
            _ => StoredSet::Unknown,
        };
        out.entry(*id).or_insert(fixed);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn members_round_trip_sorted() {
        let set: BTreeSet<(i64, &str)> = [(17, "missing"), (3, "value"), (3, "type")]
            .into_iter()
            .collect();
        let text = encode(&set);
        assert_eq!(text, "3:type,3:value,17:missing");
        assert_eq!(
            decode(&text).unwrap(),
            vec![
                (3, "type".to_owned()),
                (3, "value".to_owned()),
                (17, "missing".to_owned())
            ]
        );
        assert_eq!(decode(""), Some(Vec::new()));
        assert_eq!(decode("x:value"), None);
        assert_eq!(decode("3"), None);
    }
}
