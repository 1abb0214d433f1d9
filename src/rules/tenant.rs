//! Tenant sources: who a request belongs to.
//!
//! Sources are tried in config order and the first that yields a valid tenant id wins. A source
//! that finds nothing usable — header absent, peer not a trusted proxy, JWT expired or forged,
//! id malformed — yields nothing and the next source is tried; it never yields a guess.
//!
//! Tenant ids are 1–128 characters of `[A-Za-z0-9._-]`. Ids are borrowed from the request
//! where possible; only JWT claims and upper-case host names allocate.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use http::{HeaderMap, HeaderName, header};
use ipnet::IpNet;

use super::jwt::JwtSource;
use super::{RequestView, Side};

/// 1–128 characters of `[A-Za-z0-9._-]`.
pub fn valid_tenant_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// What to do when no source finds a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UnknownPolicy {
    /// Carry on without a tenant (tenant rules do not apply; tenant buckets neither).
    #[default]
    Default,
    /// Answer 400 on a matched route.
    Reject,
}

#[derive(Debug, Default)]
pub(crate) struct TenantResolver {
    pub(crate) sources: Vec<TenantSource>,
    pub(crate) unknown: UnknownPolicy,
}

/// Text around `{tenant}` in a host or path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Affix {
    pub(crate) prefix: String,
    pub(crate) suffix: String,
}

#[derive(Debug)]
pub(crate) enum TenantSource {
    /// The header's value; only from peers inside `trusted` when that list is not empty.
    Header {
        name: HeaderName,
        trusted: Vec<IpNet>,
    },
    /// `{tenant}.app.example.com`: case-insensitive, port ignored, one DNS label.
    Host(Affix),
    /// `/t/{tenant}/`: a prefix of the path, the tenant one segment.
    Path(Affix),
    Cookie(String),
    Jwt(Box<JwtSource>),
}

impl TenantResolver {
    /// The tenant of a request: borrowed from the request where it can be.
    pub(crate) fn resolve<'t>(&self, req: &RequestView<'t>, now_unix: u64) -> Option<Cow<'t, str>> {
        self.sources.iter().find_map(|s| s.extract(req, now_unix))
    }
}

impl TenantSource {
    fn extract<'t>(&self, req: &RequestView<'t>, now_unix: u64) -> Option<Cow<'t, str>> {
        let id: Cow<'t, str> = match self {
            TenantSource::Header { name, trusted } => {
                if !trusted.is_empty()
                    && !req
                        .peer
                        .is_some_and(|p| trusted.iter().any(|n| n.contains(&p)))
                {
                    return None;
                }
                Cow::Borrowed(req.headers.get(name)?.to_str().ok()?.trim())
            }
            TenantSource::Host(affix) => {
                let host = request_host(req)?;
                let label = strip_affix_ignore_case(host, affix)?;
                if label.contains('.') {
                    return None;
                }
                if label.bytes().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(label.to_ascii_lowercase())
                } else {
                    Cow::Borrowed(label)
                }
            }
            TenantSource::Path(affix) => Cow::Borrowed(path_tenant(req.uri.path(), affix)?),
            TenantSource::Cookie(name) => Cow::Borrowed(cookie(req.headers, name)?),
            TenantSource::Jwt(jwt) => Cow::Owned(jwt.tenant(req, now_unix)?),
        };
        valid_tenant_id(&id).then_some(id)
    }
}

fn strip_affix_ignore_case<'h>(host: &'h str, affix: &Affix) -> Option<&'h str> {
    let (p, s) = (affix.prefix.as_bytes(), affix.suffix.as_bytes());
    let h = host.as_bytes();
    if h.len() < p.len() + s.len() + 1
        || !h[..p.len()].eq_ignore_ascii_case(p)
        || !h[h.len() - s.len()..].eq_ignore_ascii_case(s)
    {
        return None;
    }
    // Prefix and suffix are ASCII (checked at load), so these are char boundaries.
    host.get(p.len()..host.len() - s.len())
}

fn path_tenant<'p>(path: &'p str, affix: &Affix) -> Option<&'p str> {
    let rest = path.strip_prefix(affix.prefix.as_str())?;
    let end = rest.find('/').unwrap_or(rest.len());
    let (segment, after) = rest.split_at(end);
    // "/t/{tenant}/" also matches "/t/acme" exactly: the trailing slash ends the segment.
    let fits =
        after.starts_with(affix.suffix.as_str()) || (after.is_empty() && affix.suffix == "/");
    fits.then_some(segment)
}

/// The request's host without port: the URI authority (HTTP/2, absolute form) or `Host`.
pub(crate) fn request_host<'a>(req: &RequestView<'a>) -> Option<&'a str> {
    if let Some(authority) = req.uri.authority() {
        return Some(authority.host());
    }
    let raw = req.headers.get(header::HOST)?.to_str().ok()?.trim();
    if raw.starts_with('[') {
        // [v6]:port
        return raw.find(']').map(|end| &raw[..=end]);
    }
    Some(match raw.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => raw,
    })
}

/// The value of cookie `name` across all `Cookie` headers, surrounding quotes removed.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k.trim() == name).then(|| {
                let v = v.trim();
                v.strip_prefix('"')
                    .and_then(|x| x.strip_suffix('"'))
                    .unwrap_or(v)
            })
        })
}

// === the tenant directory ===

/// What the config knows about each tenant: directory attributes and tenant-wide side.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    tenants: HashMap<String, TenantInfo>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct TenantInfo {
    /// `[tenants.<id>] side` in the main config.
    pub(crate) side: Option<Side>,
    /// String attributes from the directory file.
    pub(crate) attrs: BTreeMap<String, String>,
}

impl Directory {
    pub(crate) fn get(&self, id: &str) -> Option<&TenantInfo> {
        self.tenants.get(id)
    }

    pub(crate) fn entry(&mut self, id: String) -> &mut TenantInfo {
        self.tenants.entry(id).or_default()
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = &str> {
        self.tenants.keys().map(String::as_str)
    }
}

/// Does a tenant with these attributes belong to one of the cohorts? Each cohort table needs
/// every one of its pairs; any table will do.
pub(crate) fn in_cohort(
    attrs: &BTreeMap<String, String>,
    cohorts: &[BTreeMap<String, String>],
) -> bool {
    cohorts
        .iter()
        .any(|c| c.iter().all(|(k, v)| attrs.get(k).is_some_and(|a| a == v)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::{Method, Uri};

    fn view<'a>(uri: &'a Uri, headers: &'a HeaderMap, method: &'a Method) -> RequestView<'a> {
        RequestView {
            method,
            uri,
            headers,
            peer: None,
            sample: 0,
        }
    }

    #[test]
    fn tenant_ids() {
        assert!(valid_tenant_id("acme"));
        assert!(valid_tenant_id("Acme-Corp_2.eu"));
        assert!(valid_tenant_id(&"a".repeat(128)));
        assert!(!valid_tenant_id(""));
        assert!(!valid_tenant_id(&"a".repeat(129)));
        assert!(!valid_tenant_id("acme corp"));
        assert!(!valid_tenant_id("acme/../x"));
        assert!(!valid_tenant_id("ac\u{e9}me"));
    }

    #[test]
    fn host_without_port() {
        let m = Method::GET;
        let uri: Uri = "/x".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "Acme.App.Example.com:8080".parse().unwrap());
        assert_eq!(
            request_host(&view(&uri, &h, &m)),
            Some("Acme.App.Example.com")
        );
        h.insert(header::HOST, "[::1]:8080".parse().unwrap());
        assert_eq!(request_host(&view(&uri, &h, &m)), Some("[::1]"));
        let abs: Uri = "http://globex.app.example.com:81/x".parse().unwrap();
        assert_eq!(
            request_host(&view(&abs, &h, &m)),
            Some("globex.app.example.com")
        );
    }

    #[test]
    fn cookies() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; tenant=\"acme\"".parse().unwrap());
        h.append(header::COOKIE, "sid=xyz; broken; b = 2".parse().unwrap());
        assert_eq!(cookie(&h, "tenant"), Some("acme"));
        assert_eq!(cookie(&h, "sid"), Some("xyz"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "broken"), None);
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn path_prefix_patterns() {
        let affix = Affix {
            prefix: "/t/".into(),
            suffix: "/".into(),
        };
        assert_eq!(path_tenant("/t/acme/cards", &affix), Some("acme"));
        assert_eq!(path_tenant("/t/acme", &affix), Some("acme"));
        assert_eq!(path_tenant("/t/acme/", &affix), Some("acme"));
        assert_eq!(path_tenant("/x/acme/", &affix), None);
        let affix = Affix {
            prefix: "/orgs/".into(),
            suffix: "/api".into(),
        };
        assert_eq!(path_tenant("/orgs/acme/api/v1", &affix), Some("acme"));
        assert_eq!(path_tenant("/orgs/acme/web", &affix), None);
    }

    #[test]
    fn host_affix_needs_a_label() {
        let affix = Affix {
            prefix: String::new(),
            suffix: ".app.example.com".into(),
        };
        assert_eq!(
            strip_affix_ignore_case("acme.APP.example.com", &affix),
            Some("acme")
        );
        assert_eq!(strip_affix_ignore_case(".app.example.com", &affix), None);
        assert_eq!(strip_affix_ignore_case("app.example.com", &affix), None);
    }

    #[test]
    fn cohorts_need_every_pair_of_one_table() {
        let attrs: BTreeMap<String, String> = [
            ("region".into(), "eu".into()),
            ("plan".into(), "pro".into()),
        ]
        .into();
        let t = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(in_cohort(&attrs, &[t(&[("region", "eu")])]));
        assert!(in_cohort(
            &attrs,
            &[
                t(&[("region", "us")]),
                t(&[("plan", "pro"), ("region", "eu")])
            ]
        ));
        assert!(!in_cohort(
            &attrs,
            &[t(&[("plan", "enterprise"), ("region", "eu")])]
        ));
        assert!(!in_cohort(&attrs, &[]));
    }
}
