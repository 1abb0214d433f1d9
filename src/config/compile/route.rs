//! `[[routes]]` → `Route`s (with their `shadow` policies and `rewrite`s) and the route matcher.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use toml::Spanned;

use super::{Cx, Known, defined, valid_name};
use crate::compare::CompareRules;
use crate::config::file::{RawConfig, RawRewrite, RawRoute, RawShadow, Text};
use crate::rules::matcher::{self, BuildError, HostPattern, Matcher};
use crate::rules::{Rewrite, Route, RouteState, ShadowPolicy, StickyKey, valid_tenant_id};

/// Where a compiled route's name and path patterns are, for checks made after compiling.
pub(super) struct RouteSpans {
    name: Range<usize>,
    paths: Vec<Range<usize>>,
}

/// Every route that compiled, in file order with `index` set, and the spans of each.
pub(super) fn compile_all(
    cx: &mut Cx<'_>,
    raw: &RawConfig,
    known: &Known<'_>,
    default_upstream: &str,
) -> (Vec<Route>, Vec<RouteSpans>) {
    let mut routes: Vec<Route> = Vec::new();
    let mut spans: Vec<RouteSpans> = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    for (span, r) in &raw.routes {
        let Some(r) = r else { continue };
        let Some((route, route_spans)) =
            compile_route(cx, span.clone(), r, routes.len(), known, default_upstream)
        else {
            continue;
        };
        if let Some(first) = names.get(&route.name).and_then(|&i| spans.get(i)) {
            let (line, _) = cx.diag.position(first.name.start);
            cx.diag.at(
                route_spans.name.clone(),
                format!(
                    "duplicate route name {:?} (first defined on line {line})",
                    route.name
                ),
            );
            continue;
        }
        names.insert(route.name.clone(), routes.len());
        routes.push(route);
        spans.push(route_spans);
    }
    (routes, spans)
}

/// Builds the matcher and reports pattern conflicts and fully shadowed routes.
pub(super) fn build_matcher(cx: &mut Cx<'_>, routes: &[Route], spans: &[RouteSpans]) -> Matcher {
    let (m, errors) = matcher::build(routes);
    for e in errors {
        match e {
            BuildError::Pattern {
                route,
                path,
                message,
            } => {
                let span = spans
                    .get(route)
                    .and_then(|s| s.paths.get(path))
                    .cloned()
                    .unwrap_or(0..0);
                cx.diag.at(span, message);
            }
            BuildError::Shadowed { route, by } => {
                let (Some(r), Some(s), Some(b), Some(bs)) = (
                    routes.get(route),
                    spans.get(route),
                    routes.get(by),
                    spans.get(by),
                ) else {
                    continue;
                };
                let (line, _) = cx.diag.position(bs.name.start);
                cx.diag.at(
                    s.name.clone(),
                    format!(
                        "route {:?} can never match: route {:?} (line {line}) has the same path, methods, host and headers and comes first",
                        r.name, b.name
                    ),
                );
            }
        }
    }
    m
}

fn compile_route(
    cx: &mut Cx<'_>,
    span: Range<usize>,
    r: &RawRoute,
    index: usize,
    known: &Known<'_>,
    default_upstream: &str,
) -> Option<(Route, RouteSpans)> {
    let Some(name) = &r.name else {
        cx.diag.at(span, "a route needs a `name`");
        return None;
    };
    if !valid_name(name.get_ref()) {
        cx.diag.at(
            name.span(),
            format!(
                "invalid route name {:?}: use 1-64 letters, digits, '.', '_' or '-'",
                name.get_ref()
            ),
        );
    }
    let (paths, path_spans) = paths(cx, r, name);
    let upstream = |cx: &mut Cx<'_>, v: &Text| {
        if !known.quiet && !known.upstreams.contains_key(v.get_ref()) {
            cx.diag.at(
                v.span(),
                format!(
                    "undefined upstream {:?} (defined: {})",
                    v.get_ref(),
                    defined(known.upstreams)
                ),
            );
        }
        v.get_ref().clone()
    };
    let legacy = match &r.legacy {
        Some(v) => upstream(cx, v),
        None => default_upstream.to_owned(),
    };
    let new = r.new.as_ref().map(|v| upstream(cx, v));
    let tenants = tenant_list(cx, r.tenants.as_deref());
    let exclude = tenant_list(cx, r.exclude.as_deref());
    both_lists(cx, r.exclude.as_deref(), &tenants);
    let cohorts = cohorts(cx, r, known);
    let state = match &r.state {
        None => RouteState::Rollout,
        Some(v) => RouteState::parse(v.get_ref()).unwrap_or_else(|| {
            cx.diag.at(
                v.span(),
                format!(
                    "`state` must be \"legacy\", \"rollout\" or \"new\", got {:?}",
                    v.get_ref()
                ),
            );
            RouteState::Rollout
        }),
    };
    let salt = match &r.salt {
        Some(s) if s.get_ref().is_empty() => {
            cx.diag.at(s.span(), "`salt` must not be empty");
            name.get_ref().clone()
        }
        Some(s) => s.get_ref().clone(),
        None => name.get_ref().clone(),
    };
    // Compare rules belong to the shadow policy: without a shadow copy there is nothing to
    // compare, so a lone `compare` table is a mistake worth naming.
    let compare = match &r.compare {
        Some(c) if r.shadow.is_none() => {
            cx.diag
                .at(c.span(), "`compare` has no effect without `shadow`");
            None
        }
        Some(c) => super::compare::compile(cx, c, known.redact_key),
        None => None,
    };
    let shadow = r
        .shadow
        .as_ref()
        .and_then(|s| shadow(cx, s, &salt, new.is_some(), compare, known.redact_key));
    let guard = r
        .guard
        .as_ref()
        .and_then(|g| super::guard::guard(cx, g, new.is_some(), shadow.is_some()));
    let schedule = r
        .rollout
        .as_ref()
        .and_then(|s| super::guard::schedule(cx, s, new.is_some()));
    let route = Route {
        name: name.get_ref().clone(),
        index,
        salt,
        legacy,
        new,
        state,
        percent_bp: cx.percent(r.percent.as_ref(), 0),
        rewrite: rewrite(cx, r.rewrite.as_ref()),
        fallback: r.fallback.unwrap_or(false),
        fallback_buffer: cx.size(r.fallback_buffer.as_ref(), 64 * 1024),
        shadow,
        paths,
        methods: methods(cx, r.methods.as_ref()),
        host: r.host.as_ref().and_then(|h| {
            HostPattern::parse(h.get_ref()).or_else(|| {
                cx.diag.at(
                    h.span(),
                    format!(
                        "invalid host {:?}: expected a host name or *.example.com",
                        h.get_ref()
                    ),
                );
                None
            })
        }),
        headers: header_pairs(cx, r.headers.as_ref()),
        tenants,
        exclude,
        cohorts,
        sticky: r
            .sticky
            .as_ref()
            .and_then(|s| sticky(cx, s))
            .unwrap_or(StickyKey::Tenant),
        guard,
        schedule,
    };
    Some((
        route,
        RouteSpans {
            name: name.span(),
            paths: path_spans,
        },
    ))
}

fn paths(cx: &mut Cx<'_>, r: &RawRoute, name: &Text) -> (Vec<String>, Vec<Range<usize>>) {
    let Some(path) = &r.path else {
        cx.diag.at(
            name.span(),
            format!("route {:?} needs a `path`", name.get_ref()),
        );
        return (Vec::new(), Vec::new());
    };
    let items: Vec<(String, Range<usize>)> = match path.get_ref() {
        crate::config::file::OneOrMany::One(p) => vec![(p.clone(), path.span())],
        crate::config::file::OneOrMany::Many(list) => list
            .iter()
            .map(|p| (p.get_ref().clone(), p.span()))
            .collect(),
    };
    if items.is_empty() {
        cx.diag.at(
            path.span(),
            "`path` must not be an empty list: the route could never match",
        );
    }
    let mut out = (Vec::new(), Vec::new());
    for (p, span) in items {
        if !p.starts_with('/') {
            cx.diag
                .at(span, format!("path pattern {p:?} must start with '/'"));
            continue;
        }
        out.0.push(p);
        out.1.push(span);
    }
    out
}

/// Methods the gateway knows; anything else is more likely a typo than a real method.
const KNOWN_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "REPORT",
    "SEARCH",
    "PURGE",
];

fn method_list(cx: &mut Cx<'_>, list: &Spanned<Vec<Text>>) -> Vec<(Method, Range<usize>)> {
    let mut out: Vec<(Method, Range<usize>)> = Vec::new();
    for m in list.get_ref() {
        let upper = m.get_ref().trim().to_ascii_uppercase();
        if !KNOWN_METHODS.contains(&upper.as_str()) {
            cx.diag
                .at(m.span(), format!("unknown HTTP method {:?}", m.get_ref()));
            continue;
        }
        if let Ok(method) = Method::from_bytes(upper.as_bytes())
            && !out.iter().any(|(x, _)| *x == method)
        {
            out.push((method, m.span()));
        }
    }
    out
}

fn methods(cx: &mut Cx<'_>, list: Option<&Spanned<Vec<Text>>>) -> Option<Vec<Method>> {
    let list = list?;
    if list.get_ref().is_empty() {
        cx.diag.at(
            list.span(),
            "`methods` is empty: the route could never match (leave it out for every method)",
        );
        return None;
    }
    Some(method_list(cx, list).into_iter().map(|(m, _)| m).collect())
}

fn header_pairs(
    cx: &mut Cx<'_>,
    headers: Option<&BTreeMap<Text, Text>>,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    for (k, v) in headers.into_iter().flatten() {
        let Ok(name) = HeaderName::from_bytes(k.get_ref().trim().as_bytes()) else {
            cx.diag
                .at(k.span(), format!("invalid header name {:?}", k.get_ref()));
            continue;
        };
        let Ok(value) = HeaderValue::from_str(v.get_ref()) else {
            cx.diag
                .at(v.span(), format!("invalid header value {:?}", v.get_ref()));
            continue;
        };
        out.push((name, value));
    }
    out
}

fn tenant_list(cx: &mut Cx<'_>, list: Option<&[Text]>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for t in list.into_iter().flatten() {
        if valid_tenant_id(t.get_ref()) {
            out.insert(t.get_ref().clone());
        } else {
            cx.diag.at(
                t.span(),
                format!(
                    "invalid tenant id {:?}: tenant ids are 1-128 letters, digits, '.', '_' or '-'",
                    t.get_ref()
                ),
            );
        }
    }
    out
}

/// A tenant both listed and excluded is a contradiction: report it on the exclude entry.
fn both_lists(cx: &mut Cx<'_>, exclude: Option<&[Text]>, tenants: &BTreeSet<String>) {
    for t in exclude.into_iter().flatten() {
        if tenants.contains(t.get_ref()) {
            cx.diag.at(
                t.span(),
                format!(
                    "tenant {:?} is in both `tenants` and `exclude`",
                    t.get_ref()
                ),
            );
        }
    }
}

fn cohorts(cx: &mut Cx<'_>, r: &RawRoute, known: &Known<'_>) -> Vec<BTreeMap<String, String>> {
    let Some(list) = &r.cohorts else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for table in list {
        if table.get_ref().is_empty() {
            cx.diag.at(table.span(), "an empty cohort would match every tenant; use `percent = 100` or `state = \"new\"`");
            continue;
        }
        out.push(
            table
                .get_ref()
                .iter()
                .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                .collect(),
        );
    }
    if !out.is_empty()
        && !known.has_directory
        && let Some(first) = list.first()
    {
        cx.diag.at(first.span(), "`cohorts` match tenant directory attributes: set [tenant] directory = \"tenants.toml\"");
    }
    out
}

fn sticky(cx: &mut Cx<'_>, v: &Text) -> Option<StickyKey> {
    let key = StickyKey::parse(v.get_ref());
    if key.is_none() {
        cx.diag.at(
            v.span(),
            format!(
                "`sticky` must be \"tenant\", \"header:<name>\" or \"cookie:<name>\", got {:?}",
                v.get_ref()
            ),
        );
    }
    key
}

fn rewrite(cx: &mut Cx<'_>, raw: Option<&RawRewrite>) -> Rewrite {
    let Some(r) = raw else {
        return Rewrite::default();
    };
    let prefix = |cx: &mut Cx<'_>, v: &Option<Text>, key: &str| {
        let v = v.as_ref()?;
        let p = v.get_ref();
        if !p.starts_with('/') || p.contains(['?', '#', ' ']) {
            cx.diag.at(
                v.span(),
                format!("`{key}` must be a path starting with '/', got {p:?}"),
            );
            return None;
        }
        Some(p.clone())
    };
    let strip_prefix = prefix(cx, &r.strip_prefix, "strip_prefix");
    let add_prefix = prefix(cx, &r.add_prefix, "add_prefix");
    let host = r.host.as_ref().and_then(|h| {
        let ok = h
            .get_ref()
            .parse::<http::uri::Authority>()
            .is_ok_and(|a| !a.host().is_empty() && !a.as_str().contains('@'));
        if ok {
            Some(h.get_ref().clone())
        } else {
            cx.diag.at(
                h.span(),
                format!(
                    "`rewrite.host` must be a host[:port], got {:?}",
                    h.get_ref()
                ),
            );
            None
        }
    });
    let cookie_domain = r.cookie_domain.as_ref().and_then(|d| {
        if d.get_ref().trim().is_empty() || d.get_ref().contains([';', ' ', ',']) {
            cx.diag.at(
                d.span(),
                format!("invalid `cookie_domain` {:?}", d.get_ref()),
            );
            return None;
        }
        Some(d.get_ref().trim().to_owned())
    });
    Rewrite {
        strip_prefix,
        add_prefix,
        host,
        location: r.location.unwrap_or(true),
        cookie_domain,
        cookie_path: r.cookie_path.unwrap_or(false),
    }
}

const SAFE_METHODS: [Method; 4] = [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE];

fn shadow(
    cx: &mut Cx<'_>,
    raw: &Spanned<RawShadow>,
    salt: &str,
    has_new: bool,
    compare: Option<Arc<CompareRules>>,
    redact_key: Option<&[u8]>,
) -> Option<ShadowPolicy> {
    let s = raw.get_ref();
    if !has_new {
        cx.diag.at(
            raw.span(),
            "`shadow` needs a route with both `legacy` and `new` upstreams",
        );
    }
    let unsafe_methods = s.unsafe_methods.unwrap_or(false);
    let methods = match &s.methods {
        None => vec![Method::GET, Method::HEAD, Method::OPTIONS],
        Some(list) => {
            if list.get_ref().is_empty() {
                cx.diag.at(
                    list.span(),
                    "shadow `methods` is empty: nothing would be shadowed",
                );
            }
            let parsed = method_list(cx, list);
            for (m, span) in &parsed {
                if !unsafe_methods && !SAFE_METHODS.contains(m) {
                    cx.diag.at(
                        span.clone(),
                        format!("{m} has side effects: shadowing it needs `unsafe_methods = true`"),
                    );
                }
            }
            parsed.into_iter().map(|(m, _)| m).collect()
        }
    };
    let tenants: Vec<String> = tenant_list(cx, s.tenants.as_deref()).into_iter().collect();
    let exclude: Vec<String> = tenant_list(cx, s.exclude.as_deref()).into_iter().collect();
    both_lists(cx, s.exclude.as_deref(), &tenants.iter().cloned().collect());
    let names = |cx: &mut Cx<'_>, list: &[Text]| -> Vec<String> {
        list.iter()
            .filter_map(
                |h| match HeaderName::from_bytes(h.get_ref().trim().as_bytes()) {
                    Ok(n) => Some(n.as_str().to_owned()),
                    Err(_) => {
                        cx.diag
                            .at(h.span(), format!("invalid header name {:?}", h.get_ref()));
                        None
                    }
                },
            )
            .collect()
    };
    let strip_headers = match &s.strip_headers {
        Some(list) => names(cx, list),
        None => vec!["authorization".to_owned(), "cookie".to_owned()],
    };
    let set_headers = header_pairs(cx, s.set_headers.as_ref())
        .into_iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let policy = ShadowPolicy {
        percent_bp: cx.percent(s.percent.as_ref(), 10_000),
        sticky: s.sticky.as_ref().and_then(|v| sticky(cx, v)),
        methods,
        unsafe_methods,
        tenants,
        exclude,
        rate_per_sec: s
            .rate_per_sec
            .as_ref()
            .map(|v| cx.int(Some(v), 1, 1..=1_000_000, "rate_per_sec") as u32),
        max_body: cx.size(s.max_body.as_ref(), 1 << 20),
        timeout: cx.duration(s.timeout.as_ref(), Duration::from_secs(5)),
        strip_headers,
        set_headers,
        self_check_percent_bp: cx.percent(s.self_check_percent.as_ref(), 1_000),
        target_parity_bp: cx.percent(s.target_parity.as_ref(), 9_900),
        salt: format!("shadow:{salt}"),
        compare: compare.unwrap_or_else(|| {
            // Default rules still hash redacted headers with the configured key.
            let rules = CompareRules::default();
            Arc::new(match redact_key {
                Some(key) => rules.with_redact_key(key),
                None => rules,
            })
        }),
    };
    has_new.then_some(policy)
}
