//! A route's `compare` table → `compare::CompareRules`, with every problem reported at the
//! position of the entry it is about (`gw.toml:41:22: ignore[1] "meta": must start with "/"`).

use std::ops::Range;
use std::sync::Arc;

use toml::Spanned;

use super::Cx;
use crate::compare::{CompareConfig, CompareEntry, CompareRules, StatusMode};
use crate::config::file::RawCompare;

/// Compile `raw`; `None` (and errors collected) when it has problems.
pub(super) fn compile(
    cx: &mut Cx<'_>,
    raw: &Spanned<RawCompare>,
    redact_key: Option<&[u8]>,
) -> Option<Arc<CompareRules>> {
    let r = raw.get_ref();
    let texts = |list: &Option<Vec<super::Text>>| -> Vec<String> {
        list.iter().flatten().map(|t| t.get_ref().clone()).collect()
    };
    let status = match &r.status {
        None => StatusMode::Exact,
        Some(v) => match v.get_ref().as_str() {
            "exact" => StatusMode::Exact,
            "class" => StatusMode::Class,
            other => {
                cx.diag.at(
                    v.span(),
                    format!("`status` must be \"exact\" or \"class\", got {other:?}"),
                );
                StatusMode::Exact
            }
        },
    };
    let config = CompareConfig {
        ignore: texts(&r.ignore),
        unordered: texts(&r.unordered),
        keyed: r
            .keyed
            .iter()
            .flatten()
            .map(|(k, v)| (k.get_ref().clone(), v.get_ref().clone()))
            .collect(),
        redact: texts(&r.redact),
        subset: r.subset.unwrap_or(false),
        tolerance: r.tolerance.as_ref().map(|t| *t.get_ref()),
        headers: texts(&r.headers),
        status,
    };
    match CompareRules::compile(&config) {
        Ok(rules) => Some(Arc::new(match redact_key {
            Some(key) => rules.with_redact_key(key),
            None => rules,
        })),
        Err(problems) => {
            for p in problems {
                let span = entry_span(r, &p.entry).unwrap_or_else(|| raw.span());
                cx.diag.at(span, format!("compare: {p}"));
            }
            None
        }
    }
}

/// The position of the entry a problem is about.
fn entry_span(r: &RawCompare, entry: &CompareEntry) -> Option<Range<usize>> {
    let nth = |list: &Option<Vec<super::Text>>, i: usize| list.as_ref()?.get(i).map(|t| t.span());
    match entry {
        CompareEntry::Ignore(i) => nth(&r.ignore, *i),
        CompareEntry::Redact(i) => nth(&r.redact, *i),
        CompareEntry::Unordered(i) => nth(&r.unordered, *i),
        CompareEntry::Headers(i) => nth(&r.headers, *i),
        CompareEntry::Keyed(path) => r
            .keyed
            .as_ref()?
            .iter()
            .find(|(k, _)| k.get_ref() == path)
            .map(|(k, _)| k.span()),
        CompareEntry::Tolerance => r.tolerance.as_ref().map(Spanned::span),
        CompareEntry::Table => None,
    }
}
