//! Readable tables and sentences for the admin client's answers, read into the types of
//! [`crate::api`] (`--json` prints the API's JSON instead). Absent values print as `-`.
//!
//! `text` and `time` read loose JSON for the shadow report, and the audit table's `CHANGE`
//! column compares the free-form `before`/`after` documents key by key.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::api::{
    AuditResponse, Basis, ChangedRules, GuardChangeResponse, GuardStatus, HistoryResponse, Moves,
    ReloadResponse, RolloutResponse, RolloutResult, RoutesResponse, SourceStatus, StatusResponse,
};
use crate::live::ReloadOutcome;
use crate::term::table;

/// Tenant names shown inline before `…`.
const INLINE_NAMES: usize = 5;
/// The first second of the year 10000: RFC 3339 has no way to write it.
const YEAR_10000: Duration = Duration::from_secs(253_402_300_800);

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
    v.as_i64().map_or_else(|| "-".into(), time_ms)
}

/// Epoch milliseconds as RFC 3339 (`-` when negative).
pub(super) fn time_ms(ms: i64) -> String {
    u64::try_from(ms).map_or_else(
        |_| "-".into(),
        |ms| time_at(UNIX_EPOCH + Duration::from_millis(ms)),
    )
}

/// An instant as RFC 3339, to the second (`-` outside years 1970–9999).
fn time_at(t: SystemTime) -> String {
    match t.duration_since(UNIX_EPOCH) {
        Ok(since) if since < YEAR_10000 => humantime::format_rfc3339_seconds(t).to_string(),
        _ => "-".into(),
    }
}

/// A number as the API's JSON writes it (`12.5`, `0.0`).
fn number(x: f64) -> String {
    serde_json::Number::from_f64(x).map_or_else(|| "-".into(), |n| n.to_string())
}

/// `-` for nothing.
fn or_dash(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// The first few names, then `,… (N)`; `-` for none.
fn names<'a>(all: impl IntoIterator<Item = &'a String>) -> String {
    let all: Vec<&String> = all.into_iter().collect();
    if all.is_empty() {
        return "-".into();
    }
    let mut shown = all
        .iter()
        .take(INLINE_NAMES)
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(",");
    if all.len() > INLINE_NAMES {
        let _ = write!(shown, ",… ({})", all.len());
    }
    shown
}

/// A list of names in brackets.
fn list<'a>(all: impl IntoIterator<Item = &'a String>) -> String {
    format!("[{}]", names(all))
}

fn share(s: Option<f64>) -> String {
    s.map(|s| format!("{:.0}%", s * 100.0))
        .unwrap_or_else(|| "-".into())
}

/// The first 12 characters of a config hash.
fn short(hash: &str) -> String {
    hash.chars().take(12).collect()
}

/// `switchyard status`: the generation, reload errors, upstream health, then the routes.
pub fn status(s: &StatusResponse, routes: &RoutesResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "generation {}  hash {}  loaded {} ({})",
        s.generation,
        short(&s.hash),
        time_at(s.loaded_at),
        s.trigger.as_str()
    );
    let _ = writeln!(out, "config {}  replica {}", s.config, s.replica);
    if let SourceStatus::Postgres {
        document,
        up,
        down_reason,
        listening,
        newest_revision,
        rejected,
        ..
    } = &s.source
    {
        let reach = match (up, down_reason) {
            (true, _) => "reachable".to_owned(),
            (false, Some(why)) => {
                format!("UNREACHABLE ({why}): writes refused, rules in force serve")
            }
            (false, None) => "UNREACHABLE: writes refused, rules in force serve".to_owned(),
        };
        let listen = if *listening {
            "listening"
        } else {
            "polling only"
        };
        let _ = writeln!(
            out,
            "document {document}: newest revision {newest_revision}, database {reach}, {listen}"
        );
        if let Some(r) = rejected {
            let _ = writeln!(out, "revision {} REFUSED: {}", r.revision, r.message);
        }
    }
    match &s.last_reload_error {
        None => {
            let _ = writeln!(out, "last reload: ok");
        }
        Some(e) => {
            let _ = writeln!(
                out,
                "last reload REJECTED since {}: {}",
                time_at(e.since),
                e.message
            );
        }
    }
    let _ = writeln!(out, "audit store: {}\n", s.audit_store.as_str());
    let mut rows = Vec::new();
    for u in &s.upstreams {
        for o in &u.origins {
            rows.push(vec![
                u.upstream.clone(),
                o.origin.clone(),
                if o.healthy { "yes" } else { "NO" }.into(),
                o.consecutive_failures.to_string(),
            ]);
        }
    }
    out.push_str(&table(
        &["UPSTREAM", "ORIGIN", "HEALTHY", "FAILURES"],
        &rows,
    ));
    out.push('\n');
    out.push_str(&routes_table(routes));
    if !s.guards.is_empty() {
        out.push('\n');
        out.push_str(&guards_table(&s.guards));
    }
    out
}

/// Guards and schedules: state, step, when the next one is due or why it is held, and the
/// figures last judged.
fn guards_table(guards: &[GuardStatus]) -> String {
    let rows: Vec<Vec<String>> = guards
        .iter()
        .map(|g| {
            let (step, next) = match &g.schedule {
                Some(s) => (
                    format!("{}/{} ({}%)", s.step, s.steps.len(), number(s.percent)),
                    match (&s.hold, s.next_percent, s.next_step_at_ms) {
                        (Some(hold), _, _) => format!("held: {hold}"),
                        (None, None, _) => "done".into(),
                        (None, Some(p), Some(at)) => {
                            format!(
                                "{}% at {}",
                                number(p),
                                time_at(crate::clock::from_epoch_ms(at))
                            )
                        }
                        (None, Some(p), None) => format!("{}%", number(p)),
                    },
                ),
                None => ("-".into(), "-".into()),
            };
            let evidence = g.evidence.as_ref().map_or("-".into(), |e| {
                let rate = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.2}%", v * 100.0));
                format!(
                    "errors {} of {} req, mismatch {}, latency x{}",
                    rate(e.error_rate),
                    e.requests,
                    rate(e.mismatch_rate),
                    e.latency_ratio.map_or("-".into(), |v| format!("{v:.2}"))
                )
            });
            vec![
                g.route.clone(),
                g.state.as_str().to_owned(),
                g.action.map_or("-".into(), |a| a.as_str().to_owned()),
                step,
                next,
                evidence,
            ]
        })
        .collect();
    table(
        &["ROUTE", "GUARD", "ACTION", "STEP", "NEXT", "LAST JUDGED"],
        &rows,
    )
}

fn routes_table(r: &RoutesResponse) -> String {
    let rows: Vec<Vec<String>> = r
        .routes
        .iter()
        .map(|route| {
            let t = &route.traffic;
            let busiest = route
                .busiest_tenants
                .iter()
                .take(3)
                .map(|b| format!("{}({})", b.tenant, b.requests))
                .collect::<Vec<_>>()
                .join(",");
            vec![
                route.name.clone(),
                route.rules.state.to_string(),
                number(route.rules.percent),
                names(&route.rules.tenants),
                names(&route.rules.exclude),
                route.tenants_on_new.count.to_string(),
                share(t.m1.new_share),
                share(t.m15.new_share),
                share(t.h1.new_share),
                (t.h1.legacy + t.h1.new).to_string(),
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

/// `switchyard guard rearm` and `switchyard rollout --pause | --resume | --abort`.
pub fn guard_change(r: &GuardChangeResponse) -> String {
    let what = if r.changed { "applied" } else { "unchanged" };
    format!(
        "{} {}: {what}, generation {} (audit #{})\nstate {} → {}, percent {} → {}\n",
        r.route,
        r.action,
        r.generation,
        r.audit_id,
        r.before.state,
        r.after.state,
        number(r.before.percent),
        number(r.after.percent),
    )
}

/// `switchyard rollout`: what changed (or would), who moves and how much traffic that is.
pub fn rollout(r: &RolloutResponse) -> String {
    let mut out = String::new();
    let (target, audit) = (&r.target, r.audit_id);
    match r.result {
        RolloutResult::DryRun => {
            let _ = writeln!(out, "{target}: dry run, nothing changed (audit #{audit})");
        }
        result => {
            let _ = writeln!(
                out,
                "{target}: {}, generation {} → {} (audit #{audit})",
                result.as_str(),
                r.previous_generation,
                or_dash(r.generation)
            );
        }
    }
    if let (Some(before), Some(after)) = (&r.before, &r.after) {
        for (key, old, new) in changed_fields(before, after) {
            let _ = writeln!(out, "  {key}: {old} → {new}");
        }
    }
    let verb = if r.dry_run { "would move" } else { "moved" };
    if r.moves
        .iter()
        .all(|m| m.to_new_count == 0 && m.to_legacy_count == 0)
    {
        let _ = writeln!(out, "  no known tenant changes side");
    }
    for m in &r.moves {
        moves(&mut out, m, verb);
    }
    if let Some(note) = &r.note {
        let _ = writeln!(out, "  note: {note}");
    }
    out
}

/// The lines of one route's moves.
fn moves(out: &mut String, m: &Moves, verb: &str) {
    for (dir, count, tenants) in [
        ("new", m.to_new_count, &m.to_new),
        ("legacy", m.to_legacy_count, &m.to_legacy),
    ] {
        if count > 0 {
            let _ = writeln!(
                out,
                "  {}: {verb} {count} tenant(s) to {dir}: {}",
                m.route,
                names(tenants)
            );
        }
    }
    // Counted per tenant, only the busiest tenants are known: the share is a floor.
    let (at_least, among) = match m.basis {
        Basis::SideCounters => ("", ""),
        Basis::BusiestTenants => ("at least ", ", counting the busiest tenants"),
    };
    if m.requests_1h > 0 {
        let _ = writeln!(
            out,
            "  {}: {at_least}{} of the last hour's requests ({} of {}{among})",
            m.route,
            share(m.share_1h),
            m.moving_requests_1h,
            m.requests_1h
        );
    }
}

/// `(key, before, after)` for each field the rollout changed, keys in alphabetical order.
fn changed_fields(
    before: &ChangedRules,
    after: &ChangedRules,
) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let mut field = |key, changed: bool, old: String, new: String| {
        if changed {
            out.push((key, old, new));
        }
    };
    match (before, after) {
        (ChangedRules::Route(b), ChangedRules::Route(a)) => {
            field(
                "exclude",
                b.exclude != a.exclude,
                list(&b.exclude),
                list(&a.exclude),
            );
            field(
                "percent",
                b.percent != a.percent,
                number(b.percent),
                number(a.percent),
            );
            field(
                "state",
                b.state != a.state,
                b.state.to_string(),
                a.state.to_string(),
            );
            field(
                "tenants",
                b.tenants != a.tenants,
                list(&b.tenants),
                list(&a.tenants),
            );
        }
        (ChangedRules::Tenant(b), ChangedRules::Tenant(a)) => {
            field("side", b.side != a.side, or_dash(b.side), or_dash(a.side));
            field(
                "tenant",
                b.tenant != a.tenant,
                b.tenant.clone(),
                a.tenant.clone(),
            );
        }
        // One target has one shape before and after.
        (ChangedRules::Route(_), ChangedRules::Tenant(_))
        | (ChangedRules::Tenant(_), ChangedRules::Route(_)) => {}
    }
    out
}

/// `switchyard reload` and `rollback`: the outcome in one line.
pub fn reload(r: &ReloadResponse) -> String {
    let (result, generation, hash) = match &r.outcome {
        ReloadOutcome::Applied { generation, hash } => ("applied", generation, hash),
        ReloadOutcome::Unchanged { generation, hash } => ("unchanged", generation, hash),
    };
    format!(
        "{result}: generation {} → {generation}  hash {} (audit #{})\n",
        r.previous_generation,
        short(hash),
        r.audit_id
    )
}

/// `switchyard history`: one row per generation, the one in force marked `*`.
pub fn history(h: &HistoryResponse) -> String {
    let rows: Vec<Vec<String>> = h
        .generations
        .iter()
        .map(|g| {
            let mark = if g.generation == h.current { "*" } else { "" };
            vec![
                format!("{}{mark}", g.generation),
                short(&g.hash),
                time_at(g.loaded_at),
                g.trigger.as_str().into(),
            ]
        })
        .collect();
    table(&["GEN", "HASH", "LOADED", "TRIGGER"], &rows)
}

/// `switchyard audit`: one row per entry, newest first.
pub fn audit(a: &AuditResponse) -> String {
    let rows: Vec<Vec<String>> = a
        .entries
        .iter()
        .map(|e| {
            let action = if e.dry_run {
                format!("{} (dry run)", e.action)
            } else {
                e.action.clone()
            };
            vec![
                time_ms(e.at_ms),
                e.token_name.clone(),
                action,
                e.target.clone(),
                or_dash(e.generation),
                changes(&e.before, &e.after),
                or_dash(e.reason.as_deref()),
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

/// `key: old→new` for the fields that differ between two audit documents (free-form: each
/// action records its own shape).
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

/// One value of an audit document: lists in brackets, `-` for null.
fn show(v: &Value) -> String {
    match v {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(text).collect();
            list(&items)
        }
        other => text(other),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_says_when_the_shared_document_is_out_of_reach() {
        let answer: StatusResponse = serde_json::from_value(json!({
            "generation": 7, "hash": "abcdef0123456789", "loaded_at": 0, "trigger": "admin",
            "config": "postgres://sy:***@db/sy?document=main", "replica": "gw-2",
            "source": {
                "kind": "postgres", "document": "main", "up": false,
                "down_reason": "connection refused", "listening": false, "newest_revision": 7,
                "poll_interval_ms": 5000, "cache": null,
                "rejected": {"revision": 8, "message": "revision 8:3:1: unknown key"},
            },
            "routes": 0, "last_reload_error": null, "upstreams": [], "guards": [],
            "audit_store": "ok",
        }))
        .expect("a status answer");
        let routes = RoutesResponse {
            generation: 7,
            routes: Vec::new(),
            tenant_sides: Default::default(),
        };
        let text = status(&answer, &routes);
        assert!(text.contains("replica gw-2"), "{text}");
        assert!(
            text.contains("document main: newest revision 7, database UNREACHABLE (connection refused): writes refused, rules in force serve, polling only"),
            "{text}"
        );
        assert!(
            text.contains("revision 8 REFUSED: revision 8:3:1: unknown key"),
            "{text}"
        );
    }

    #[test]
    fn tables_align_and_absent_values_print_as_dashes() {
        let t = table(&["A", "LONGER"], &[vec!["wide-cell".into(), "x".into()]]);
        assert_eq!(t, "A          LONGER\nwide-cell  x\n");
        assert_eq!(
            audit(&AuditResponse { entries: vec![] }),
            "no audit entries\n"
        );
        assert_eq!(time(&Value::Null), "-");
        assert_eq!(time(&json!(-5)), "-");
        assert_eq!(time(&json!(i64::MAX)), "-", "beyond the year 9999");
        assert_eq!(time(&json!(1_700_000_000_000_i64)), "2023-11-14T22:13:20Z");
        assert_eq!(or_dash(None::<u64>), "-");
        assert_eq!(number(0.0), "0.0");
        assert_eq!(number(12.5), "12.5");
        let many: Vec<String> = (0..7).map(|i| format!("t{i}")).collect();
        assert_eq!(names(&many), "t0,t1,t2,t3,t4,… (7)");
        assert_eq!(list(&[] as &[String]), "[-]");
    }

    #[test]
    fn rollout_answers_read_as_sentences() {
        let answer = json!({
            "result": "applied", "target": "cards", "previous_generation": 3, "generation": 4,
            "audit_id": 7, "dry_run": false, "note": null,
            "before": {"state": "rollout", "percent": 10.0, "tenants": ["acme"], "exclude": []},
            "after": {"state": "rollout", "percent": 10.0, "tenants": ["acme", "globex"],
                      "exclude": []},
            "moves": [{"route": "cards", "to_new_count": 1, "to_new": ["globex"],
                       "to_legacy_count": 0, "to_legacy": [], "requests_1h": 40,
                       "moving_requests_1h": 10, "share_1h": 0.25, "basis": "busiest_tenants"}],
        });
        let text = rollout(&serde_json::from_value(answer).unwrap());
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

        let cutover = json!({
            "result": "dry_run", "target": "tenant:umbrella", "previous_generation": 3,
            "generation": null, "audit_id": 8, "dry_run": true, "note": null, "moves": [],
            "before": {"tenant": "umbrella", "side": null},
            "after": {"tenant": "umbrella", "side": "new"},
        });
        let text = rollout(&serde_json::from_value(cutover).unwrap());
        assert_eq!(
            text,
            "tenant:umbrella: dry run, nothing changed (audit #8)\n  side: - → new\n  \
             no known tenant changes side\n"
        );
        assert_eq!(
            changes(&json!({"side": null}), &json!({"side": "new"})),
            "side: -→new"
        );
    }
}
