//! Readable tables for the admin client's answers (`--json` prints the API's JSON instead).
//! Everything here reads the JSON defensively: a missing field prints as `-`, never a panic.

use crate::term::table;
use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;

use super::Call;

/// Tenant names shown inline before `…`.
const INLINE_NAMES: usize = 5;

/// The text printed for `call`'s answer (`routes`: the routes listing, for `status`).
pub fn render(call: &Call, answer: &Value, routes: Option<&Value>) -> String {
    match call {
        Call::Status => status(answer, routes),
        Call::Rollout(_) => rollout(answer),
        Call::Reload { .. } | Call::Rollback { .. } => reload(answer),
        Call::History => history(answer),
        Call::Audit(_) => audit(answer),
        Call::Report(args) => super::report::render(args, answer),
    }
}

/// A JSON value as table text (`-` for null).
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Epoch milliseconds as RFC 3339 (`-` when absent or negative).
pub(super) fn time(v: &Value) -> String {
    v.as_i64()
        .and_then(|ms| u64::try_from(ms).ok())
        .map(|ms| {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
        })
        .unwrap_or_else(|| "-".into())
}

fn names(v: &Value) -> String {
    let all: Vec<String> = v
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    if all.is_empty() {
        return "-".into();
    }
    let mut shown = all
        .iter()
        .take(INLINE_NAMES)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    if all.len() > INLINE_NAMES {
        let _ = write!(shown, ",… ({})", all.len());
    }
    shown
}

fn share(v: &Value) -> String {
    v.as_f64()
        .map(|s| format!("{:.0}%", s * 100.0))
        .unwrap_or_else(|| "-".into())
}

fn status(s: &Value, routes: Option<&Value>) -> String {
    let mut out = String::new();
    let hash: String = text(&s["hash"]).chars().take(12).collect();
    let _ = writeln!(
        out,
        "generation {}  hash {hash}  loaded {} ({})",
        text(&s["generation"]),
        time(&s["loaded_at"]),
        text(&s["trigger"])
    );
    let _ = writeln!(out, "config {}", text(&s["config"]));
    match &s["last_reload_error"] {
        Value::Null => {
            let _ = writeln!(out, "last reload: ok");
        }
        e => {
            let _ = writeln!(
                out,
                "last reload REJECTED since {}: {}",
                time(&e["since"]),
                text(&e["message"])
            );
        }
    }
    let _ = writeln!(out, "audit store: {}\n", text(&s["audit_store"]));
    let mut rows = Vec::new();
    for u in s["upstreams"].as_array().into_iter().flatten() {
        for o in u["origins"].as_array().into_iter().flatten() {
            rows.push(vec![
                text(&u["upstream"]),
                text(&o["origin"]),
                if o["healthy"].as_bool() == Some(true) {
                    "yes"
                } else {
                    "NO"
                }
                .into(),
                text(&o["consecutive_failures"]),
            ]);
        }
    }
    out.push_str(&table(
        &["UPSTREAM", "ORIGIN", "HEALTHY", "FAILURES"],
        &rows,
    ));
    if let Some(routes) = routes {
        out.push('\n');
        out.push_str(&routes_table(routes));
    }
    out
}

fn routes_table(r: &Value) -> String {
    let rows: Vec<Vec<String>> = r["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|route| {
            let t = &route["traffic"];
            let busiest = route["busiest_tenants"]
                .as_array()
                .into_iter()
                .flatten()
                .take(3)
                .map(|b| format!("{}({})", text(&b["tenant"]), text(&b["requests"])))
                .collect::<Vec<_>>()
                .join(",");
            vec![
                text(&route["name"]),
                text(&route["state"]),
                text(&route["percent"]),
                names(&route["tenants"]),
                names(&route["exclude"]),
                text(&route["tenants_on_new"]["count"]),
                share(&t["1m"]["new_share"]),
                share(&t["15m"]["new_share"]),
                share(&t["1h"]["new_share"]),
                text(
                    &(t["1h"]["legacy"].as_u64().unwrap_or(0)
                        + t["1h"]["new"].as_u64().unwrap_or(0))
                    .into(),
                ),
                if busiest.is_empty() {
                    "-".into()
                } else {
                    busiest
                },
            ]
        })
        .collect();
    table(
        &[
            "ROUTE", "STATE", "PERCENT", "TENANTS", "EXCLUDE", "ON NEW", "NEW 1m", "NEW 15m",
            "NEW 1h", "REQ 1h", "BUSIEST",
        ],
        &rows,
    )
}

fn rollout(r: &Value) -> String {
    let mut out = String::new();
    let target = text(&r["target"]);
    let audit = text(&r["audit_id"]);
    match r["result"].as_str() {
        Some("dry_run") => {
            let _ = writeln!(out, "{target}: dry run, nothing changed (audit #{audit})");
        }
        Some(result) => {
            let _ = writeln!(
                out,
                "{target}: {result}, generation {} → {} (audit #{audit})",
                text(&r["previous_generation"]),
                text(&r["generation"])
            );
        }
        None => {
            let _ = writeln!(out, "{target}: {}", r);
        }
    }
    if let (Some(before), Some(after)) = (r["before"].as_object(), r["after"].as_object()) {
        for (key, old) in before {
            let new = after.get(key).unwrap_or(&Value::Null);
            if old != new {
                let _ = writeln!(out, "  {key}: {} → {}", show(old), show(new));
            }
        }
    }
    let verb = if r["dry_run"].as_bool() == Some(true) {
        "would move"
    } else {
        "moved"
    };
    let moves = r["moves"].as_array().cloned().unwrap_or_default();
    if moves
        .iter()
        .all(|m| m["to_new_count"].as_u64() == Some(0) && m["to_legacy_count"].as_u64() == Some(0))
    {
        let _ = writeln!(out, "  no known tenant changes side");
    }
    for m in &moves {
        for (dir, key) in [("new", "to_new"), ("legacy", "to_legacy")] {
            let count = m[format!("{key}_count")].as_u64().unwrap_or(0);
            if count > 0 {
                let _ = writeln!(
                    out,
                    "  {}: {verb} {count} tenant(s) to {dir}: {}",
                    text(&m["route"]),
                    names(&m[key])
                );
            }
        }
        // Counted per tenant, only the busiest tenants are known: the share is a floor.
        let (at_least, among) = match m["basis"].as_str() {
            Some("side_counters") => ("", ""),
            _ => ("at least ", ", counting the busiest tenants"),
        };
        if m["requests_1h"].as_u64().unwrap_or(0) > 0 {
            let _ = writeln!(
                out,
                "  {}: {at_least}{} of the last hour's requests ({} of {}{among})",
                text(&m["route"]),
                share(&m["share_1h"]),
                text(&m["moving_requests_1h"]),
                text(&m["requests_1h"])
            );
        }
    }
    if let Some(note) = r["note"].as_str() {
        let _ = writeln!(out, "  note: {note}");
    }
    out
}

fn show(v: &Value) -> String {
    match v {
        Value::Array(_) => format!("[{}]", names(v)),
        other => text(other),
    }
}

fn reload(r: &Value) -> String {
    let mut line = format!(
        "{}: generation {} → {}",
        text(&r["result"]),
        text(&r["previous_generation"]),
        text(&r["generation"])
    );
    let hash: String = text(&r["hash"]).chars().take(12).collect();
    let _ = writeln!(line, "  hash {hash} (audit #{})", text(&r["audit_id"]));
    line
}

fn history(h: &Value) -> String {
    let current = h["current"].as_u64();
    let rows: Vec<Vec<String>> = h["generations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            let mark = if g["generation"].as_u64() == current {
                "*"
            } else {
                ""
            };
            vec![
                format!("{}{mark}", text(&g["generation"])),
                text(&g["hash"]).chars().take(12).collect(),
                time(&g["loaded_at"]),
                text(&g["trigger"]),
            ]
        })
        .collect();
    table(&["GEN", "HASH", "LOADED", "TRIGGER"], &rows)
}

fn audit(a: &Value) -> String {
    let rows: Vec<Vec<String>> = a["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let action = match e["dry_run"].as_bool() {
                Some(true) => format!("{} (dry run)", text(&e["action"])),
                _ => text(&e["action"]),
            };
            vec![
                time(&e["at_ms"]),
                text(&e["token_name"]),
                action,
                text(&e["target"]),
                text(&e["generation"]),
                changes(&e["before"], &e["after"]),
                text(&e["reason"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no audit entries\n".into();
    }
    table(
        &[
            "TIME", "TOKEN", "ACTION", "TARGET", "GEN", "CHANGE", "REASON",
        ],
        &rows,
    )
}

/// `key: old→new` for the fields that differ.
fn changes(before: &Value, after: &Value) -> String {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return "-".into();
    };
    let parts: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, v)| {
            format!(
                "{k}: {}→{}",
                show(b.get(k).unwrap_or(&Value::Null)),
                show(v)
            )
        })
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_survive_missing_fields() {
        let t = table(&["A", "LONGER"], &[vec!["wide-cell".into(), "x".into()]]);
        assert_eq!(t, "A          LONGER\nwide-cell  x\n");
        assert!(render(&Call::Status, &json!({}), Some(&json!({}))).contains("generation -"));
        assert_eq!(
            render(&Call::Audit(Default::default()), &json!({}), None),
            "no audit entries\n"
        );
    }

    #[test]
    fn rollout_answers_read_as_sentences() {
        let answer = json!({
            "result": "applied", "target": "cards", "previous_generation": 3, "generation": 4,
            "audit_id": 7, "dry_run": false,
            "before": {"tenants": ["acme"], "percent": 10.0},
            "after": {"tenants": ["acme", "globex"], "percent": 10.0},
            "moves": [{"route": "cards", "to_new_count": 1, "to_new": ["globex"],
                       "to_legacy_count": 0, "to_legacy": [], "requests_1h": 40,
                       "moving_requests_1h": 10, "share_1h": 0.25, "basis": "busiest_tenants"}],
        });
        let text = render(&Call::Rollout(Default::default()), &answer, None);
        assert!(
            text.contains("cards: applied, generation 3 → 4 (audit #7)"),
            "{text}"
        );
        assert!(text.contains("tenants: [acme] → [acme,globex]"), "{text}");
        assert!(
            !text.contains("percent:"),
            "unchanged fields are not listed: {text}"
        );
        assert!(
            text.contains("cards: moved 1 tenant(s) to new: globex"),
            "{text}"
        );
        assert!(
            text.contains("cards: at least 25% of the last hour's requests (10 of 40, counting"),
            "{text}"
        );
        assert_eq!(
            changes(&json!({"side": null}), &json!({"side": "new"})),
            "side: -→new"
        );
    }
}
