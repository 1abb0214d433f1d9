//! `switchyard report`: the shadow-diff report of a running gateway as a table, JSON, or
//! Markdown to paste into a ticket; `switchyard report --sample ID`: one stored pair as a
//! unified diff of the pretty-printed bodies (`similar`) plus a copy-as-curl line without
//! credentials.
//!
//! ```text
//! switchyard report --route cards --since 1h
//! switchyard report --format markdown > cards-shadow.md
//! switchyard report --sample 42
//! ```
//!
//! Rendering reads the API's JSON defensively: a missing field prints as `-`, never a panic.

use std::fmt::Write as _;

use serde_json::Value;
use similar::TextDiff;

use super::encode;
use super::format::{text, time};
use crate::admin::pretty_body;

/// How `switchyard report` prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// The API's JSON.
    Json,
    /// Tables to paste into a ticket.
    Markdown,
}

/// `switchyard report …`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReportArgs {
    /// Only this route.
    #[arg(long)]
    pub route: Option<String>,
    /// Only this tenant's requests.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only since: a duration back (1h, 30m), RFC 3339, or epoch milliseconds (default: all kept).
    #[arg(long)]
    pub since: Option<String>,
    /// Only until (same forms as --since).
    #[arg(long)]
    pub until: Option<String>,
    /// Add a breakdown per tenant under each route.
    #[arg(long)]
    pub by_tenant: bool,
    /// Differing paths listed per route.
    #[arg(long)]
    pub top: Option<usize>,
    /// table, json or markdown.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Show one stored sample pair (an id from the report's sample ids) instead.
    #[arg(long, conflicts_with_all = ["route", "tenant", "since", "until", "by_tenant", "top"])]
    pub sample: Option<i64>,
}

impl ReportArgs {
    /// The admin API path this command reads.
    pub fn path(&self) -> String {
        if let Some(id) = self.sample {
            return format!("/admin/shadow/samples/{id}");
        }
        let mut q = Vec::new();
        let filters = [
            ("route", &self.route),
            ("tenant", &self.tenant),
            ("since", &self.since),
            ("until", &self.until),
        ];
        for (key, value) in filters {
            if let Some(value) = value {
                q.push(format!("{key}={}", encode(value)));
            }
        }
        if self.by_tenant {
            q.push("by_tenant=true".into());
        }
        if let Some(top) = self.top {
            q.push(format!("top={top}"));
        }
        if q.is_empty() {
            "/admin/shadow/report".into()
        } else {
            format!("/admin/shadow/report?{}", q.join("&"))
        }
    }
}

/// The text printed for a report or sample answer (not JSON: that is printed as it came).
pub fn render(args: &ReportArgs, answer: &Value) -> String {
    match (args.sample, args.format) {
        (Some(_), _) => sample(answer),
        (None, ReportFormat::Markdown) => markdown(answer),
        (None, _) => table(answer),
    }
}

fn pct(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map(|p| format!("{p:.digits$}%"))
        .unwrap_or_else(|| "-".into())
}

fn ms(v: &Value) -> String {
    v.as_f64()
        .map(|m| {
            if m < 10.0 {
                format!("{m:.2}")
            } else {
                format!("{m:.0}")
            }
        })
        .unwrap_or_else(|| "-".into())
}

fn verdict_words(v: &Value) -> String {
    match v.as_str() {
        Some("ready") => "ready".into(),
        Some("not_ready") => "not_ready".into(),
        Some("insufficient_data") => "insufficient_data".into(),
        _ => "-".into(),
    }
}

fn ci(parity: &Value) -> String {
    match (parity["ci95_low"].as_f64(), parity["ci95_high"].as_f64()) {
        (Some(lo), Some(hi)) => format!("{lo:.2}–{hi:.2}%"),
        _ => "-".into(),
    }
}

fn window(r: &Value) -> String {
    match (&r["since_ms"], &r["until_ms"]) {
        (Value::Null, Value::Null) => "everything kept".into(),
        (since, Value::Null) => format!("since {}", time(since)),
        (Value::Null, until) => format!("until {}", time(until)),
        (since, until) => format!("{} to {}", time(since), time(until)),
    }
}

fn routes(r: &Value) -> impl Iterator<Item = &Value> {
    r["routes"].as_array().into_iter().flatten()
}

fn paths(scope: &Value) -> impl Iterator<Item = &Value> {
    scope["top_paths"].as_array().into_iter().flatten()
}

fn class(p: &Value) -> String {
    text(&p["classification"])
}

fn samples(p: &Value) -> String {
    let ids: Vec<String> = p["sample_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .take(3)
        .map(text)
        .collect();
    if ids.is_empty() {
        "-".into()
    } else {
        ids.join(",")
    }
}

fn latency(scope: &Value) -> String {
    let parts: Vec<String> = scope["latency"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            format!(
                "{} {} / {} / {} ms",
                text(&l["side"]),
                ms(&l["p50_ms"]),
                ms(&l["p95_ms"]),
                ms(&l["p99_ms"])
            )
        })
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" · ")
    }
}

fn suggestions(route: &Value) -> Vec<String> {
    route["suggested_ignore"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| format!("{} ({})", text(&s["ignore"]), text(&s["looks_like"])))
        .collect()
}

/// Columns padded to their widest cell, indented.
fn columns(indent: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{indent}{}", line.join("  ").trim_end());
    }
    out
}

fn table(r: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "shadow report, {}", window(r));
    if routes(r).next().is_none() {
        out.push_str("no shadow results in this window\n");
        return out;
    }
    for route in routes(r) {
        let parity = &route["parity"];
        let _ = writeln!(
            out,
            "\n{}  {}  parity {} (95% CI {}, target {})",
            text(&route["route"]),
            verdict_words(&route["verdict"]).to_uppercase(),
            pct(&parity["percent"], 2),
            ci(parity),
            pct(&parity["target"], 1),
        );
        let _ = writeln!(out, "  {}", text(&route["verdict_reason"]));
        out.push_str(&scope_counts("  ", route));
        let _ = writeln!(out, "  latency p50 / p95 / p99: {}", latency(route));
        let rows: Vec<Vec<String>> = paths(route)
            .map(|p| {
                vec![
                    text(&p["pattern"]),
                    text(&p["kind"]),
                    text(&p["count"]),
                    pct(&Value::from(p["rate"].as_f64().unwrap_or(0.0) * 100.0), 1),
                    class(p),
                    time(&p["first_seen_ms"]),
                    time(&p["last_seen_ms"]),
                    samples(p),
                ]
            })
            .collect();
        if !rows.is_empty() {
            out.push_str(&columns(
                "  ",
                &[
                    "PATH",
                    "KIND",
                    "COUNT",
                    "RATE",
                    "CLASS",
                    "FIRST SEEN",
                    "LAST SEEN",
                    "SAMPLES",
                ],
                &rows,
            ));
        }
        let s = suggestions(route);
        if !s.is_empty() {
            let _ = writeln!(out, "  suggested ignore: {}", s.join(", "));
        }
        for t in route["tenants"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "  tenant {}: {} parity {}  {}",
                t["tenant"].as_str().unwrap_or("(none)"),
                verdict_words(&t["verdict"]),
                pct(&t["parity"]["percent"], 2),
                text(&t["verdict_reason"]),
            );
        }
    }
    out
}

fn scope_counts(indent: &str, s: &Value) -> String {
    let reasons: Vec<String> = s["skipped_by_reason"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k} {}", text(v)))
        .collect();
    let skipped = if reasons.is_empty() {
        text(&s["skipped"])
    } else {
        format!("{} ({})", text(&s["skipped"]), reasons.join(", "))
    };
    format!(
        "{indent}compared {}  matched {}  mismatched {}  noise only {}  errors {}  skipped {skipped}\n",
        text(&s["compared"]),
        text(&s["matched"]),
        text(&s["mismatched"]),
        text(&s["noise_only"]),
        text(&s["errors"]),
    )
}

/// Text safe inside a Markdown table cell.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// A Markdown code span for a path.
fn md_code(s: &str) -> String {
    format!("`{}`", md(&s.replace('`', "'")))
}

fn markdown(r: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### Shadow report ({})\n", window(r));
    if routes(r).next().is_none() {
        out.push_str("No shadow results in this window.\n");
        return out;
    }
    out.push_str(
        "| Route | Verdict | Parity | 95% CI | Target | Compared | Mismatched | Noise only | Errors | Skipped |\n\
         |---|---|---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for route in routes(r) {
        let parity = &route["parity"];
        let _ = writeln!(
            out,
            "| {} | **{}** | {} | {} | {} | {} | {} | {} | {} | {} |",
            md(&text(&route["route"])),
            verdict_words(&route["verdict"]),
            pct(&parity["percent"], 2),
            ci(parity),
            pct(&parity["target"], 1),
            text(&route["compared"]),
            text(&route["mismatched"]),
            text(&route["noise_only"]),
            text(&route["errors"]),
            text(&route["skipped"]),
        );
    }
    for route in routes(r) {
        let name = text(&route["route"]);
        let _ = writeln!(out, "\n#### {} — top differing paths\n", md(&name));
        let _ = writeln!(out, "{}\n", md(&text(&route["verdict_reason"])));
        let rows: Vec<&Value> = paths(route).collect();
        if rows.is_empty() {
            out.push_str("No differences.\n");
        } else {
            out.push_str(
                "| Path | Kind | Count | Rate | Class | First seen | Last seen | Samples |\n\
                 |---|---|---:|---:|---|---|---|---|\n",
            );
            for p in rows {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.1}% | {} | {} | {} | {} |",
                    md_code(&text(&p["pattern"])),
                    md(&text(&p["kind"])),
                    text(&p["count"]),
                    p["rate"].as_f64().unwrap_or(0.0) * 100.0,
                    class(p),
                    time(&p["first_seen_ms"]),
                    time(&p["last_seen_ms"]),
                    samples(p),
                );
            }
        }
        let _ = writeln!(out, "\nLatency p50 / p95 / p99: {}", latency(route));
        let s = suggestions(route);
        if !s.is_empty() {
            let _ = writeln!(out, "\nSuggested `ignore`: {}", md(&s.join(", ")));
        }
    }
    out
}

fn sample(s: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "sample #{}  route {}  tenant {}  shows {} ({})  at {}",
        text(&s["id"]),
        text(&s["route"]),
        text(&s["tenant"]),
        text(&s["pattern"]),
        text(&s["kind"]),
        time(&s["at_ms"]),
    );
    let _ = writeln!(
        out,
        "{} {}",
        text(&s["request"]["method"]),
        text(&s["request"]["uri"])
    );
    let side = |r: &Value, role: &str| {
        format!(
            "{} ({role}) {} in {} ms",
            text(&r["side"]),
            text(&r["status"]),
            ms(&r["elapsed_ms"])
        )
    };
    let (p, sh) = (&s["primary"], &s["shadow"]);
    let _ = writeln!(out, "{}   vs   {}", side(p, "primary"), side(sh, "shadow"));
    if let Some(how) = s["body_comparison"].as_str() {
        let _ = writeln!(out, "body {how}");
    }
    let diffs: Vec<&Value> = s["differences"].as_array().into_iter().flatten().collect();
    if !diffs.is_empty() {
        out.push_str("differences under the current rules:\n");
        for d in diffs {
            let _ = writeln!(
                out,
                "  {:<24} {:<8} {} → {}",
                text(&d["path"]),
                text(&d["kind"]),
                text(&d["primary"]),
                text(&d["shadow"])
            );
        }
    }
    // A final newline on both: a missing one is framing, not a difference worth a marker.
    let body = |r: &Value| {
        let mut text = pretty_body(r["body"].as_str().unwrap_or(""));
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text
    };
    let (left, right) = (body(p), body(sh));
    let diff = TextDiff::from_lines(&left, &right);
    let unified = diff
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{} (primary)", text(&p["side"])),
            &format!("{} (shadow)", text(&sh["side"])),
        )
        .to_string();
    if unified.is_empty() {
        out.push_str("bodies are identical\n");
    } else {
        out.push_str(&unified);
        if !unified.ends_with('\n') {
            out.push('\n');
        }
    }
    let _ = writeln!(out, "replay (credentials removed):\n{}", text(&s["curl"]));
    out
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
