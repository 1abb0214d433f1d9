//! Route lookup: a matchit radix tree over path patterns, then method, host and header matchers.
//!
//! # Specificity (which route wins)
//! 1. **Path**: the pattern matchit picks — static segments beat parameters with a prefix or
//!    suffix (`img-{id}.png`), which beat whole-segment parameters (`{id}`), which beat
//!    catch-alls (`{*rest}`), compared from the left.
//! 2. **Matchers**, among routes sharing that exact pattern: more matchers first, counting one
//!    for `host`, one for a restricted `methods` list and one per `headers` entry.
//! 3. **File order** breaks the remaining ties. Two routes with the same pattern and identical
//!    matchers are a config error: the later one could never match.
//!
//! # Fallback to less specific patterns
//! When every route on the matched pattern rejects the request (say `/api/cards/{id}` is
//! GET-only and a POST arrives), the lookup falls back to the next less specific pattern that
//! matches the path (say `/api/{*rest}`). To keep this bounded, each pattern whose routes all
//! carry matchers gets, at load time, the list of other patterns that could match some of the
//! same paths (decided segment by segment, conservatively), ordered most specific first. At
//! request time only those are tried, each with its own one-pattern matchit tree, so the
//! fallback agrees with matchit on what a pattern matches. Patterns with an unrestricted route
//! never need the list: that route always accepts.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::fmt;

use http::Method;

use super::{RequestView, Route, tenant};

/// A route's `host` matcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    /// Exact host, lower-case.
    Exact(String),
    /// `*.example.com`: stored as `.example.com`; matches one or more labels before it, never
    /// `example.com` itself.
    Wildcard(String),
}

impl HostPattern {
    /// `*.example.com` or an exact host; lower-cased. `None` for an empty or malformed host.
    pub fn parse(text: &str) -> Option<HostPattern> {
        let lower = text.trim().to_ascii_lowercase();
        let valid = |h: &str| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        };
        match lower.strip_prefix('*') {
            Some(rest) if rest.starts_with('.') && valid(&rest[1..]) => {
                Some(HostPattern::Wildcard(rest.to_owned()))
            }
            Some(_) => None,
            None if valid(&lower) => Some(HostPattern::Exact(lower)),
            None => None,
        }
    }

    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(exact) => host.eq_ignore_ascii_case(exact),
            HostPattern::Wildcard(suffix) => {
                let (h, s) = (host.as_bytes(), suffix.as_bytes());
                h.len() > s.len() && h[h.len() - s.len()..].eq_ignore_ascii_case(s)
            }
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Wildcard(suffix) => write!(f, "*{suffix}"),
        }
    }
}

/// The compiled route table.
pub(crate) struct Matcher {
    router: matchit::Router<usize>,
    patterns: Vec<Pattern>,
}

struct Pattern {
    text: String,
    /// Route indices, most specific first.
    candidates: Vec<usize>,
    /// Pattern ids to try when every candidate rejects the request, most specific first.
    fallbacks: Vec<usize>,
    /// This pattern alone, to check a fallback against the path.
    alone: matchit::Router<()>,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.patterns.iter().map(|p| &p.text))
            .finish()
    }
}

impl Matcher {
    /// The most specific route for the request (see the module docs).
    pub(crate) fn find<'r>(&self, routes: &'r [Route], req: &RequestView<'_>) -> Option<&'r Route> {
        let path = req.uri.path();
        let matched = self.router.at(path).ok()?;
        let first = self.patterns.get(*matched.value)?;
        let mut host = HostCache::Unknown;
        if let Some(route) = first_accepting(&first.candidates, routes, req, &mut host) {
            return Some(route);
        }
        first
            .fallbacks
            .iter()
            .filter_map(|&id| self.patterns.get(id))
            .filter(|p| p.alone.at(path).is_ok())
            .find_map(|p| first_accepting(&p.candidates, routes, req, &mut host))
    }
}

/// The request host, looked up once and only when a candidate has a host matcher.
enum HostCache<'a> {
    Unknown,
    Known(Option<&'a str>),
}

fn first_accepting<'r, 'q>(
    candidates: &[usize],
    routes: &'r [Route],
    req: &RequestView<'q>,
    host: &mut HostCache<'q>,
) -> Option<&'r Route> {
    candidates
        .iter()
        .filter_map(|&i| routes.get(i))
        .find(|route| accepts(route, req, host))
}

fn accepts<'q>(route: &Route, req: &RequestView<'q>, host: &mut HostCache<'q>) -> bool {
    if let Some(methods) = &route.methods
        && !methods.contains(req.method)
    {
        return false;
    }
    if let Some(pattern) = &route.host {
        let h = match host {
            HostCache::Known(h) => *h,
            HostCache::Unknown => {
                let h = tenant::request_host(req);
                *host = HostCache::Known(h);
                h
            }
        };
        if !h.is_some_and(|h| pattern.matches(h)) {
            return false;
        }
    }
    route.headers.iter().all(|(name, value)| {
        req.headers
            .get_all(name)
            .iter()
            .any(|v| v.as_bytes() == value.as_bytes())
    })
}

/// Matchers counted for specificity.
fn matcher_count(route: &Route) -> usize {
    usize::from(route.host.is_some()) + usize::from(route.methods.is_some()) + route.headers.len()
}

/// Same matchers, order aside: the later route can never win on this pattern.
fn same_matchers(a: &Route, b: &Route) -> bool {
    a.host == b.host && method_set(a) == method_set(b) && header_set(a) == header_set(b)
}

fn method_set(r: &Route) -> Option<Vec<&str>> {
    r.methods.as_ref().map(|m| {
        let mut v: Vec<&str> = m.iter().map(Method::as_str).collect();
        v.sort_unstable();
        v.dedup();
        v
    })
}

fn header_set(r: &Route) -> Vec<(&str, &[u8])> {
    let mut v: Vec<(&str, &[u8])> = r
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    v.sort_unstable();
    v
}

// === building ===

/// A problem found while building the table, for `compile` to place at the right span.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BuildError {
    /// `routes[route].paths[path]` is not a valid pattern or conflicts with another.
    Pattern {
        route: usize,
        path: usize,
        message: String,
    },
    /// Every pattern of `routes[route]` is taken by an earlier route with identical matchers.
    Shadowed { route: usize, by: usize },
}

/// Builds the table; `routes` are in file order with `index` set. Collects every problem.
pub(crate) fn build(routes: &[Route]) -> (Matcher, Vec<BuildError>) {
    let mut errors = Vec::new();
    let mut router = matchit::Router::new();
    let mut patterns: Vec<Pattern> = Vec::new();
    let mut by_text: HashMap<&str, usize> = HashMap::new();
    for route in routes {
        for (path_index, text) in route.paths.iter().enumerate() {
            if let Some(&id) = by_text.get(text.as_str()) {
                if let Some(p) = patterns.get_mut(id)
                    && !p.candidates.contains(&route.index)
                {
                    p.candidates.push(route.index);
                }
                continue;
            }
            let id = patterns.len();
            if let Err(e) = router.insert(text.as_str(), id) {
                let message = match e {
                    matchit::InsertError::Conflict { with } => {
                        let owner = by_text
                            .get(with.as_str())
                            .and_then(|&pid| patterns.get(pid))
                            .and_then(|p| p.candidates.first())
                            .and_then(|&r| routes.get(r))
                            .map(|r| format!(" (route {:?})", r.name))
                            .unwrap_or_default();
                        format!(
                            "path pattern {text:?} conflicts with {with:?}{owner}: the two are ambiguous"
                        )
                    }
                    other => format!("invalid path pattern {text:?}: {other}"),
                };
                errors.push(BuildError::Pattern {
                    route: route.index,
                    path: path_index,
                    message,
                });
                continue;
            }
            let mut alone = matchit::Router::new();
            // Inserting into an empty tree can only fail on a malformed pattern, which the
            // main tree just accepted.
            let _ = alone.insert(text.as_str(), ());
            by_text.insert(text.as_str(), id);
            patterns.push(Pattern {
                text: text.clone(),
                candidates: vec![route.index],
                fallbacks: Vec::new(),
                alone,
            });
        }
    }
    for p in &mut patterns {
        p.candidates
            .sort_by_key(|&i| (Reverse(routes.get(i).map_or(0, matcher_count)), i));
    }
    find_shadowed(routes, &patterns, &mut errors);
    compute_fallbacks(routes, &mut patterns);
    (Matcher { router, patterns }, errors)
}

fn find_shadowed(routes: &[Route], patterns: &[Pattern], errors: &mut Vec<BuildError>) {
    // For each route, the earlier route shadowing it on each of its patterns (if all are).
    let mut shadowed_by: HashMap<usize, (usize, usize)> = HashMap::new(); // route -> (count, by)
    for p in patterns {
        for (pos, &later) in p.candidates.iter().enumerate() {
            let Some(route) = routes.get(later) else {
                continue;
            };
            let earlier = p.candidates[..pos]
                .iter()
                .filter_map(|&i| routes.get(i))
                .find(|r| same_matchers(r, route));
            if let Some(by) = earlier {
                let entry = shadowed_by.entry(later).or_insert((0, by.index));
                entry.0 += 1;
            }
        }
    }
    let mut found: Vec<BuildError> = shadowed_by
        .into_iter()
        .filter(|(route, (count, _))| {
            let distinct = routes.get(*route).map_or(0, |r| {
                let mut paths: Vec<&String> = r.paths.iter().collect();
                paths.sort_unstable();
                paths.dedup();
                paths.len()
            });
            *count >= distinct
        })
        .map(|(route, (_, by))| BuildError::Shadowed { route, by })
        .collect();
    found.sort_by_key(|e| match e {
        BuildError::Shadowed { route, .. } | BuildError::Pattern { route, .. } => *route,
    });
    errors.extend(found);
}

/// One `/`-separated piece of a pattern, as far as overlap is concerned.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Segment<'a> {
    Static(&'a str),
    /// A parameter with a static prefix or suffix, or escaped braces: matches some segments.
    Partial,
    Param,
    CatchAll,
}

impl Segment<'_> {
    /// matchit's preference: lower is tried first.
    fn rank(self) -> u8 {
        match self {
            Segment::Static(_) => 0,
            Segment::Partial => 1,
            Segment::Param => 2,
            Segment::CatchAll => 3,
        }
    }
}

fn segments(pattern: &str) -> Vec<Segment<'_>> {
    pattern
        .strip_prefix('/')
        .unwrap_or(pattern)
        .split('/')
        .map(|s| {
            if s.starts_with("{*") {
                Segment::CatchAll
            } else if !s.contains(['{', '}']) {
                Segment::Static(s)
            } else if s.starts_with('{')
                && s.ends_with('}')
                && s[1..s.len() - 1].chars().all(|c| c != '{' && c != '}')
            {
                Segment::Param
            } else {
                Segment::Partial
            }
        })
        .collect()
}

/// Could some path match both patterns? Conservative: `true` unless provably disjoint.
fn could_overlap(a: &[Segment<'_>], b: &[Segment<'_>]) -> bool {
    let mut i = 0;
    loop {
        match (a.get(i), b.get(i)) {
            (None, None) => return true,
            (Some(Segment::CatchAll), _) | (_, Some(Segment::CatchAll)) => return true,
            (None, Some(_)) | (Some(_), None) => return false,
            (Some(Segment::Static(x)), Some(Segment::Static(y))) if x != y => return false,
            _ => i += 1,
        }
    }
}

fn compute_fallbacks(routes: &[Route], patterns: &mut [Pattern]) {
    let parsed: Vec<Vec<Segment<'_>>> = patterns.iter().map(|p| segments(&p.text)).collect();
    // Index by first segment so 2 000 routes do not cost 4 000 000 comparisons.
    let mut by_first: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut wild_first: Vec<usize> = Vec::new();
    for (id, segs) in parsed.iter().enumerate() {
        match segs.first() {
            Some(Segment::Static(s)) => by_first.entry(s).or_default().push(id),
            _ => wild_first.push(id),
        }
    }
    let mut all_fallbacks = Vec::with_capacity(patterns.len());
    for (id, p) in patterns.iter().enumerate() {
        let always_accepts = p
            .candidates
            .iter()
            .any(|&i| routes.get(i).is_some_and(|r| matcher_count(r) == 0));
        if always_accepts {
            all_fallbacks.push(Vec::new());
            continue;
        }
        let mine = &parsed[id];
        let pool: Vec<usize> = match mine.first() {
            Some(Segment::Static(s)) => by_first
                .get(s)
                .into_iter()
                .flatten()
                .chain(wild_first.iter())
                .copied()
                .collect(),
            _ => (0..patterns.len()).collect(),
        };
        let mut fallbacks: Vec<usize> = pool
            .into_iter()
            .filter(|&other| other != id && could_overlap(mine, &parsed[other]))
            .collect();
        fallbacks.sort_by(|&x, &y| {
            let rx = parsed[x].iter().map(|s| s.rank());
            let ry = parsed[y].iter().map(|s| s.rank());
            rx.cmp(ry).then(x.cmp(&y))
        });
        fallbacks.dedup();
        all_fallbacks.push(fallbacks);
    }
    for (p, f) in patterns.iter_mut().zip(all_fallbacks) {
        p.fallbacks = f;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn host_patterns() {
        let exact = HostPattern::parse("API.Example.com").unwrap();
        assert!(exact.matches("api.example.com"));
        assert!(exact.matches("API.EXAMPLE.COM"));
        assert!(!exact.matches("x.api.example.com"));
        let wild = HostPattern::parse("*.example.com").unwrap();
        assert_eq!(wild.to_string(), "*.example.com");
        assert!(wild.matches("a.example.com"));
        assert!(wild.matches("a.b.Example.com"));
        assert!(!wild.matches("example.com"));
        assert!(!wild.matches("badexample.com"));
        for bad in ["", "*", "*example.com", "a b", "*.", "x.*.com", "host/path"] {
            assert_eq!(HostPattern::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn segment_kinds() {
        assert!(matches!(
            segments("/api/{id}/img-{n}.png/{*rest}").as_slice(),
            [
                Segment::Static("api"),
                Segment::Param,
                Segment::Partial,
                Segment::CatchAll
            ]
        ));
        assert!(matches!(segments("/").as_slice(), [Segment::Static("")]));
        assert!(matches!(segments("/{{x}}").as_slice(), [Segment::Partial]));
    }

    #[test]
    fn overlap_is_conservative() {
        let o = |a: &str, b: &str| could_overlap(&segments(a), &segments(b));
        assert!(o("/api/cards/{id}", "/api/{*rest}"));
        assert!(o("/api/cards/{id}", "/{*rest}"));
        assert!(o("/api/cards/{id}", "/api/{x}/{y}"));
        assert!(o("/api/cards/{id}", "/api/cards/mine"));
        assert!(!o("/api/cards/{id}", "/api/other/{id}"));
        assert!(!o("/api/cards/{id}", "/api/cards"));
        assert!(!o("/api/cards/{id}", "/api/cards/{id}/notes"));
        assert!(
            o("/img/{n}.png", "/img/logo.jpg"),
            "partial segments are not analysed"
        );
    }

    proptest! {
        /// Whatever patterns a config holds and whatever path arrives, building and matching
        /// never panic.
        #[test]
        fn arbitrary_patterns_and_paths_never_panic(
            patterns in proptest::collection::vec("/[a-c{}*/.]{0,10}", 0..8),
            path in "/[a-c{}*/.%]{0,12}",
        ) {
            let routes: Vec<Route> = patterns
                .iter()
                .enumerate()
                .map(|(i, p)| test_route(i, p))
                .collect();
            let (m, _errors) = build(&routes);
            let (method, uri, headers) = (Method::POST, http::Uri::builder().path_and_query(path.as_str()).build(), http::HeaderMap::new());
            if let Ok(uri) = uri {
                let req = RequestView { method: &method, uri: &uri, headers: &headers, peer: None, sample: 0 };
                let _ = m.find(&routes, &req);
            }
        }
    }

    fn test_route(index: usize, pattern: &str) -> Route {
        Route {
            name: format!("r{index}"),
            index,
            salt: format!("r{index}"),
            legacy: "legacy".into(),
            new: None,
            state: super::super::RouteState::Rollout,
            percent_bp: 0,
            rewrite: super::super::Rewrite::default(),
            fallback: false,
            fallback_buffer: 0,
            shadow: None,
            paths: vec![pattern.to_owned()],
            methods: index.is_multiple_of(2).then(|| vec![Method::GET]),
            host: None,
            headers: Vec::new(),
            tenants: Default::default(),
            exclude: Default::default(),
            cohorts: Vec::new(),
            sticky: super::super::StickyKey::Tenant,
            guard: None,
            schedule: None,
        }
    }
}
