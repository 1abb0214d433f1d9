//! Raw config → validated, precompiled `RuleSet`, collecting every error with its position.
//!
//! Each section compiles on its own; a value that fails its check is reported and replaced by
//! a placeholder so the other checks still run. The rule set is only built when nothing was
//! reported. Routes live in `compile/route.rs`, tenant sources and the tenant directory in
//! `compile/tenant.rs`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::file::{
    RawConfig, RawListen, RawShadowGlobal, RawStore, RawTelemetry, RawUpstream, Text,
};
use super::units::{RawSize, parse_duration, parse_size, percent_to_bp};
use super::{ConfigErrors, Diag, Refs, parse_sections};
use crate::rules::{
    AccessLogTarget, Limits, Listen, RuleSet, ShadowGlobal, StoreConfig, Telemetry, UpstreamSpec,
};
use crate::trace::TraceConfig;

mod admin;
mod compare;
mod guard;
mod route;
mod tenant;

/// The compile context: errors and referenced files.
pub(super) struct Cx<'t> {
    pub(super) diag: Diag<'t>,
    pub(super) refs: Refs,
}

pub(super) fn compile(text: &str, path: &Path) -> Result<RuleSet, ConfigErrors> {
    let mut cx = Cx {
        diag: Diag::new(path, text),
        refs: Refs::new(path),
    };
    let Some(raw) = parse_sections(text, &mut cx.diag) else {
        return Err(cx.diag.finish());
    };
    let listen = listen(&mut cx, raw.listen.as_ref(), raw.failed.listen);
    let admin = admin::compile(&mut cx, raw.admin.as_ref());
    let upstreams = upstreams(&mut cx, &raw);
    let default_upstream = default_upstream(&mut cx, &raw, &upstreams);
    let (resolver, directory) = tenant::compile(&mut cx, &raw);
    let shadow = shadow_global(&mut cx, raw.shadow.as_ref());
    let known = Known {
        upstreams: &upstreams,
        quiet: raw.failed.upstreams,
        has_directory: raw.failed.tenant
            || raw.tenant.as_ref().is_some_and(|t| t.directory.is_some()),
        redact_key: shadow.redact_key.as_deref(),
    };
    let (routes, route_spans) = route::compile_all(&mut cx, &raw, &known, &default_upstream);
    let matcher = route::build_matcher(&mut cx, &routes, &route_spans);
    let store = store(&mut cx, raw.store.as_ref());
    let telemetry = telemetry(&mut cx, raw.telemetry.as_ref());
    if cx.diag.has_errors() {
        return Err(cx.diag.finish());
    }
    let (hash, files) = cx.refs.finish(text);
    Ok(RuleSet {
        source: path.to_path_buf(),
        hash,
        files,
        listen,
        admin,
        upstreams,
        default_upstream,
        routes,
        shadow,
        store,
        telemetry,
        tenant: resolver,
        directory,
        matcher,
    })
}

/// What routes may refer to.
pub(super) struct Known<'a> {
    pub(super) upstreams: &'a BTreeMap<String, Arc<UpstreamSpec>>,
    /// An upstream table failed to deserialize: do not call names undefined.
    pub(super) quiet: bool,
    /// A tenant directory is configured (or `[tenant]` failed, so it is unknown).
    pub(super) has_directory: bool,
    /// `[shadow] redact_key_file`: compare rules hash redacted values with it.
    pub(super) redact_key: Option<&'a [u8]>,
}

// === value helpers ===

impl Cx<'_> {
    pub(super) fn duration(&mut self, v: Option<&Text>, default: Duration) -> Duration {
        let Some(v) = v else { return default };
        match parse_duration(v.get_ref()) {
            Ok(d) if d.is_zero() => {
                self.diag.at(v.span(), "duration must be greater than zero");
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.diag.at(v.span(), e);
                default
            }
        }
    }

    pub(super) fn size(&mut self, v: Option<&Spanned<RawSize>>, default: u64) -> u64 {
        let Some(v) = v else { return default };
        parse_size(v.get_ref()).unwrap_or_else(|e| {
            self.diag.at(v.span(), e);
            default
        })
    }

    pub(super) fn int(
        &mut self,
        v: Option<&Spanned<i64>>,
        default: i64,
        range: RangeInclusive<i64>,
        what: &str,
    ) -> i64 {
        let Some(v) = v else { return default };
        let n = *v.get_ref();
        if range.contains(&n) {
            n
        } else {
            self.diag.at(
                v.span(),
                format!(
                    "{what} must be between {} and {}, got {n}",
                    range.start(),
                    range.end()
                ),
            );
            default
        }
    }

    pub(super) fn percent(&mut self, v: Option<&Spanned<f64>>, default_bp: u32) -> u32 {
        let Some(v) = v else { return default_bp };
        percent_to_bp(*v.get_ref()).unwrap_or_else(|e| {
            self.diag.at(v.span(), e);
            default_bp
        })
    }

    pub(super) fn socket(&mut self, v: &Text, what: &str) -> Option<SocketAddr> {
        v.get_ref().trim().parse().map_err(|_| {
            self.diag.at(v.span(), format!("{what}: invalid address {:?}, expected IP:port such as \"127.0.0.1:8080\" or \"[::]:8080\"", v.get_ref()))
        }).ok()
    }

    /// Reads a referenced file; an unreadable one is an error at the key naming it.
    pub(super) fn file(&mut self, v: &Text, what: &str) -> Option<(PathBuf, Vec<u8>)> {
        if v.get_ref().trim().is_empty() {
            self.diag.at(v.span(), format!("{what}: empty file name"));
            return None;
        }
        self.refs
            .read(v.get_ref())
            .map_err(|e| self.diag.at(v.span(), format!("{what}: {e}")))
            .ok()
    }

    /// A referenced UTF-8 text file.
    pub(super) fn text_file(&mut self, v: &Text, what: &str) -> Option<(PathBuf, String)> {
        let (path, bytes) = self.file(v, what)?;
        match String::from_utf8(bytes) {
            Ok(text) => Some((path, text)),
            Err(_) => {
                self.diag
                    .in_file(&path, 1, 1, format!("{what}: not UTF-8 text"));
                None
            }
        }
    }

    /// A secret file: its content with surrounding whitespace (a trailing newline) trimmed.
    pub(super) fn secret(&mut self, v: &Text, what: &str) -> Option<Vec<u8>> {
        let (path, bytes) = self.file(v, what)?;
        let secret = bytes.trim_ascii().to_vec();
        if secret.is_empty() {
            self.diag
                .in_file(&path, 1, 1, format!("{what}: the file is empty"));
            return None;
        }
        Some(secret)
    }
}

/// Names of upstreams and routes: they appear in metrics labels, URLs and CLI arguments.
pub(super) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

// === sections ===

fn listen(cx: &mut Cx<'_>, raw: Option<&Spanned<RawListen>>, failed: bool) -> Listen {
    let empty = Spanned::new(0..0, RawListen::default());
    let section = raw.unwrap_or(&empty);
    let l = section.get_ref();
    let http = l.http.as_ref().and_then(|v| cx.socket(v, "listen.http"));
    let https = l.https.as_ref().and_then(|v| cx.socket(v, "listen.https"));
    if l.http.is_none() && l.https.is_none() && !failed {
        cx.diag.at(
            section.span(),
            "[listen] needs `http` and/or `https`, such as http = \"0.0.0.0:8080\"",
        );
    }
    let tls_cert = l
        .tls_cert
        .as_ref()
        .and_then(|v| cx.file(v, "listen.tls_cert").map(|(p, _)| p));
    let tls_key = l
        .tls_key
        .as_ref()
        .and_then(|v| cx.file(v, "listen.tls_key").map(|(p, _)| p));
    match (&l.https, &l.tls_cert, &l.tls_key) {
        (Some(h), None, _) | (Some(h), _, None) => {
            cx.diag
                .at(h.span(), "`https` needs both `tls_cert` and `tls_key`");
        }
        (None, Some(c), _) => cx
            .diag
            .at(c.span(), "`tls_cert` has no effect without `https`"),
        (None, None, Some(k)) => cx
            .diag
            .at(k.span(), "`tls_key` has no effect without `https`"),
        _ => {}
    }
    let d = Limits::default();
    let workers = l
        .workers
        .as_ref()
        .map(|w| cx.int(Some(w), 1, 1..=1024, "workers") as usize);
    let limits = Limits {
        max_header_bytes: cx
            .size(l.max_header_bytes.as_ref(), d.max_header_bytes as u64)
            .min(usize::MAX as u64) as usize,
        max_headers: cx.int(
            l.max_headers.as_ref(),
            d.max_headers as i64,
            1..=10_000,
            "max_headers",
        ) as usize,
        max_connections: cx.int(
            l.max_connections.as_ref(),
            d.max_connections as i64,
            1..=1_000_000,
            "max_connections",
        ) as usize,
        header_read_timeout: cx.duration(l.header_read_timeout.as_ref(), d.header_read_timeout),
        idle_timeout: cx.duration(l.idle_timeout.as_ref(), d.idle_timeout),
        body_timeout: cx.duration(l.body_timeout.as_ref(), d.body_timeout),
        drain_timeout: cx.duration(l.drain_timeout.as_ref(), d.drain_timeout),
        max_request_body: l.max_request_body.as_ref().map(|v| cx.size(Some(v), 0)),
    };
    if let Some(v) = &l.max_header_bytes
        && limits.max_header_bytes < 1024
    {
        cx.diag
            .at(v.span(), "max_header_bytes must be at least 1KiB");
    }
    Listen {
        http,
        https,
        tls_cert,
        tls_key,
        workers,
        limits,
    }
}

fn upstreams(cx: &mut Cx<'_>, raw: &RawConfig) -> BTreeMap<String, Arc<UpstreamSpec>> {
    let mut out = BTreeMap::new();
    for (name, spec) in &raw.upstreams {
        if !valid_name(name.get_ref()) {
            cx.diag.at(
                name.span(),
                format!(
                    "invalid upstream name {:?}: use 1-64 letters, digits, '.', '_' or '-'",
                    name.get_ref()
                ),
            );
        }
        let Some(u) = spec else { continue };
        out.insert(name.get_ref().clone(), Arc::new(upstream(cx, name, u)));
    }
    out
}

fn upstream(cx: &mut Cx<'_>, name: &Text, u: &RawUpstream) -> UpstreamSpec {
    let mut origins = Vec::new();
    match &u.origins {
        None => cx.diag.at(
            name.span(),
            format!("upstream {:?} needs `origins`", name.get_ref()),
        ),
        Some(list) if list.get_ref().is_empty() => {
            cx.diag.at(list.span(), "`origins` must not be empty")
        }
        Some(list) => {
            for o in list.get_ref() {
                match origin(o.get_ref()) {
                    Ok(uri) => origins.push(uri),
                    Err(e) => cx.diag.at(o.span(), e),
                }
            }
        }
    }
    let ca_file = u
        .ca_file
        .as_ref()
        .and_then(|v| cx.file(v, "ca_file").map(|(p, _)| p));
    UpstreamSpec {
        name: name.get_ref().clone(),
        origins,
        connect_timeout: cx.duration(u.connect_timeout.as_ref(), Duration::from_secs(1)),
        timeout: cx.duration(u.timeout.as_ref(), Duration::from_secs(30)),
        idle_timeout: cx.duration(u.idle_timeout.as_ref(), Duration::from_secs(90)),
        max_idle_per_origin: cx.int(
            u.max_idle_per_origin.as_ref(),
            64,
            0..=100_000,
            "max_idle_per_origin",
        ) as usize,
        eject_after: cx.int(u.eject_after.as_ref(), 5, 1..=1_000_000, "eject_after") as u32,
        eject_for: cx.duration(u.eject_for.as_ref(), Duration::from_secs(10)),
        ca_file,
        http2: u.http2.unwrap_or(false),
    }
}

/// Why an origin URL is not usable.
#[derive(Debug, thiserror::Error)]
#[error("invalid origin {text:?}: {why}")]
pub(super) struct OriginError {
    text: String,
    why: OriginProblem,
}

#[derive(Debug, thiserror::Error)]
enum OriginProblem {
    #[error("{0}")]
    Unparsable(#[from] http::uri::InvalidUri),
    #[error("must start with http:// or https://")]
    Scheme,
    #[error("needs a host")]
    NoHost,
    #[error("user info is not allowed")]
    UserInfo,
    #[error("must not have a path or query; use a route's rewrite.add_prefix")]
    Path,
}

/// An origin URL: `http://` or `https://`, a host, no path beyond `/`, no query.
pub(super) fn origin(text: &str) -> Result<http::Uri, OriginError> {
    let bad = |why| OriginError {
        text: text.to_owned(),
        why,
    };
    let uri: http::Uri = text
        .trim()
        .parse()
        .map_err(|e| bad(OriginProblem::Unparsable(e)))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad(OriginProblem::Scheme)),
    }
    match uri.host() {
        Some(h) if !h.is_empty() => {}
        _ => return Err(bad(OriginProblem::NoHost)),
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(bad(OriginProblem::UserInfo));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad(OriginProblem::Path));
    }
    Ok(uri)
}

fn default_upstream(
    cx: &mut Cx<'_>,
    raw: &RawConfig,
    upstreams: &BTreeMap<String, Arc<UpstreamSpec>>,
) -> String {
    if let Some(name) = raw.default.as_ref().and_then(|d| d.upstream.as_ref()) {
        if !upstreams.contains_key(name.get_ref()) && !raw.failed.upstreams {
            cx.diag.at(
                name.span(),
                format!(
                    "undefined upstream {:?} (defined: {})",
                    name.get_ref(),
                    defined(upstreams)
                ),
            );
        }
        return name.get_ref().clone();
    }
    if raw.failed.default || raw.failed.upstreams {
        return String::new();
    }
    // Without [default], an upstream called "legacy" (or the only upstream) serves unmatched
    // requests: the common case needs no extra table.
    if upstreams.contains_key("legacy") {
        return "legacy".to_owned();
    }
    if upstreams.len() == 1
        && let Some(only) = upstreams.keys().next()
    {
        return only.clone();
    }
    cx.diag.at(
        0..0,
        "missing [default] upstream = \"…\": which upstream serves requests no route matches",
    );
    String::new()
}

/// Upstream names for messages.
pub(super) fn defined(upstreams: &BTreeMap<String, Arc<UpstreamSpec>>) -> String {
    if upstreams.is_empty() {
        return "none".to_owned();
    }
    upstreams
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn shadow_global(cx: &mut Cx<'_>, raw: Option<&RawShadowGlobal>) -> ShadowGlobal {
    let empty = RawShadowGlobal::default();
    let s = raw.unwrap_or(&empty);
    ShadowGlobal {
        enabled: s.enabled.unwrap_or(true),
        queue: cx.int(s.queue.as_ref(), 1024, 1..=1_000_000, "shadow.queue") as usize,
        max_in_flight: cx.int(
            s.max_in_flight.as_ref(),
            64,
            1..=100_000,
            "shadow.max_in_flight",
        ) as usize,
        redact_key: s
            .redact_key_file
            .as_ref()
            .and_then(|v| cx.secret(v, "shadow.redact_key_file")),
        noise_window: noise_window(cx, s.noise_window.as_ref()),
    }
}

/// `[shadow] noise_window`: at least a minute, the resolution of the store's counts.
fn noise_window(cx: &mut Cx<'_>, v: Option<&Text>) -> Duration {
    const DEFAULT: Duration = Duration::from_secs(24 * 3600);
    let window = cx.duration(v, DEFAULT);
    match v {
        Some(v) if window < Duration::from_secs(60) => {
            cx.diag.at(
                v.span(),
                "shadow.noise_window must be at least 1m (the store counts per minute)",
            );
            DEFAULT
        }
        _ => window,
    }
}

fn telemetry(cx: &mut Cx<'_>, raw: Option<&RawTelemetry>) -> Telemetry {
    let empty = RawTelemetry::default();
    let t = raw.unwrap_or(&empty);
    let access_log = match t.access_log.as_ref() {
        None => None,
        Some(v) => match v.get_ref().trim() {
            "" | "off" => None,
            "stdout" => Some(Arc::new(AccessLogTarget::Stdout)),
            "stderr" => Some(Arc::new(AccessLogTarget::Stderr)),
            path => Some(Arc::new(AccessLogTarget::File(cx.refs.resolve(path)))),
        },
    };
    Telemetry {
        access_log,
        access_log_tenants: t.access_log_tenants.unwrap_or(false),
        traces: traces(cx, t),
    }
}

fn traces(cx: &mut Cx<'_>, t: &RawTelemetry) -> Option<Arc<TraceConfig>> {
    let sample_bp = match &t.sample_ratio {
        None => 10_000,
        Some(v) => {
            let ratio = *v.get_ref();
            if (0.0..=1.0).contains(&ratio) {
                (ratio * 10_000.0).round() as u32
            } else {
                cx.diag.at(
                    v.span(),
                    format!("telemetry.sample_ratio must be between 0.0 and 1.0, not {ratio}"),
                );
                10_000
            }
        }
    };
    let service_name = match &t.service_name {
        Some(v) if v.get_ref().trim().is_empty() => {
            cx.diag
                .at(v.span(), "telemetry.service_name must not be empty");
            return None;
        }
        Some(v) => v.get_ref().trim().to_owned(),
        None => "switchyard".to_owned(),
    };
    let v = t.otlp_endpoint.as_ref()?;
    if !cfg!(feature = "otel") {
        cx.diag.at(
            v.span(),
            "telemetry.otlp_endpoint: this build has no tracing (cargo feature `otel`)",
        );
        return None;
    }
    match crate::trace::traces_endpoint(v.get_ref()) {
        Ok(endpoint) => Some(Arc::new(TraceConfig {
            endpoint,
            service_name,
            sample_bp,
        })),
        Err(e) => {
            cx.diag.at(v.span(), e);
            None
        }
    }
}

fn store(cx: &mut Cx<'_>, raw: Option<&RawStore>) -> StoreConfig {
    let empty = RawStore::default();
    let s = raw.unwrap_or(&empty);
    let url = match &s.url {
        Some(v) => match store_url(v.get_ref(), &cx.refs) {
            Ok(url) => url,
            Err(e) => {
                cx.diag.at(v.span(), e);
                String::new()
            }
        },
        None => store_url("sqlite://switchyard.db", &cx.refs).unwrap_or_default(),
    };
    StoreConfig {
        url,
        retention: cx.duration(s.retention.as_ref(), Duration::from_secs(7 * 86_400)),
        max_samples: cx.int(
            s.max_samples.as_ref(),
            100_000,
            0..=100_000_000,
            "store.max_samples",
        ) as usize,
    }
}

/// Why a store URL is not usable.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum StoreUrlError {
    #[error("invalid store url {0:?}: expected sqlite://FILE or postgres://…")]
    Scheme(String),
    #[error("invalid store url {0:?}: no database file")]
    NoFile(String),
}

/// `sqlite://` paths resolved against the config's directory; `postgres://` as written.
fn store_url(url: &str, refs: &Refs) -> Result<String, StoreUrlError> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url.to_owned());
    }
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(StoreUrlError::Scheme(url.to_owned()));
    };
    let (file, query) = match rest.split_once('?') {
        Some((f, q)) => (f, Some(q)),
        None => (rest, None),
    };
    if file.is_empty() {
        return Err(StoreUrlError::NoFile(url.to_owned()));
    }
    if file == ":memory:" {
        return Ok(format!(
            "sqlite::memory:{}",
            query.map(|q| format!("?{q}")).unwrap_or_default()
        ));
    }
    let resolved = refs.resolve(file).to_string_lossy().into_owned();
    Ok(match query {
        Some(q) => format!("sqlite://{resolved}?{q}"),
        None => format!("sqlite://{resolved}"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert!(origin("http://127.0.0.1:8000").is_ok());
        assert!(origin("https://cards.internal").is_ok());
        assert!(origin("https://cards.internal/").is_ok());
        for bad in [
            "127.0.0.1:8000",
            "ftp://x",
            "http://",
            "http://x/api",
            "http://x?a=1",
            "http://u:p@x",
            "not a url",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn store_urls() {
        let refs = Refs::new(Path::new("/etc/switchyard/gw.toml"));
        assert_eq!(
            store_url("sqlite://switchyard.db", &refs),
            Ok("sqlite:///etc/switchyard/switchyard.db".into())
        );
        assert_eq!(
            store_url("sqlite:///var/lib/s.db?mode=rwc", &refs),
            Ok("sqlite:///var/lib/s.db?mode=rwc".into())
        );
        assert_eq!(
            store_url("sqlite::memory:", &refs),
            Ok("sqlite::memory:".into())
        );
        assert_eq!(
            store_url("postgres://u@db/sw", &refs),
            Ok("postgres://u@db/sw".into())
        );
        assert!(store_url("mysql://x", &refs).is_err());
        assert!(store_url("sqlite://", &refs).is_err());
    }
}
