//! `[tenant]` (sources, unknown policy, directory file) and `[tenants.<id>]` → the tenant
//! resolver and the directory.

use std::path::Path;

use http::HeaderName;
use ipnet::IpNet;

use super::Cx;
use crate::config::file::{RawConfig, RawDirectory, RawSource, Text};
use crate::config::{Positions, toml_error_in};
use crate::rules::Side;
use crate::rules::jwt::{Expect, JwtSource, KeyError, TokenAt};
use crate::rules::tenant::{
    Affix, Directory, TenantResolver, TenantSource, UnknownPolicy, valid_tenant_id,
};

const ID_RULE: &str = "tenant ids are 1-128 letters, digits, '.', '_' or '-'";

pub(super) fn compile(cx: &mut Cx<'_>, raw: &RawConfig) -> (TenantResolver, Directory) {
    let mut resolver = TenantResolver::default();
    let mut directory = Directory::default();
    if let Some(t) = &raw.tenant {
        for source in t.sources.iter().flatten() {
            if let Some(s) = compile_source(cx, source.get_ref(), source.span()) {
                resolver.sources.push(s);
            }
        }
        if let Some(u) = &t.unknown {
            resolver.unknown = match u.get_ref().as_str() {
                "default" => UnknownPolicy::Default,
                "reject" => UnknownPolicy::Reject,
                other => {
                    cx.diag.at(
                        u.span(),
                        format!("`unknown` must be \"default\" or \"reject\", got {other:?}"),
                    );
                    UnknownPolicy::Default
                }
            };
        }
        if let Some(d) = &t.directory {
            load_directory(cx, d, &mut directory);
        }
    }
    for (id, wide) in &raw.tenants {
        if !valid_tenant_id(id.get_ref()) {
            cx.diag.at(
                id.span(),
                format!("invalid tenant id {:?}: {ID_RULE}", id.get_ref()),
            );
            continue;
        }
        let Some(side) = wide.as_ref().and_then(|w| w.side.as_ref()) else {
            continue;
        };
        match Side::parse(side.get_ref()) {
            Some(s) => directory.entry(id.get_ref().clone()).side = Some(s),
            None => cx.diag.at(
                side.span(),
                format!(
                    "`side` must be \"new\" or \"legacy\", got {:?}",
                    side.get_ref()
                ),
            ),
        }
    }
    (resolver, directory)
}

fn header_name(cx: &mut Cx<'_>, v: &Text) -> Option<HeaderName> {
    HeaderName::from_bytes(v.get_ref().trim().as_bytes())
        .map_err(|_| {
            cx.diag
                .at(v.span(), format!("invalid header name {:?}", v.get_ref()))
        })
        .ok()
}

fn cookie_name(cx: &mut Cx<'_>, v: &Text) -> Option<String> {
    let name = v.get_ref().trim();
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b'=' | b',' | b'"'));
    if ok {
        Some(name.to_owned())
    } else {
        cx.diag
            .at(v.span(), format!("invalid cookie name {:?}", v.get_ref()));
        None
    }
}

/// `{tenant}` split out of a host or path pattern.
fn affix(pattern: &str) -> Option<Affix> {
    let (prefix, suffix) = pattern.split_once("{tenant}")?;
    if suffix.contains("{tenant}") || !pattern.is_ascii() {
        return None;
    }
    Some(Affix {
        prefix: prefix.to_owned(),
        suffix: suffix.to_owned(),
    })
}

fn compile_source(
    cx: &mut Cx<'_>,
    s: &RawSource,
    span: std::ops::Range<usize>,
) -> Option<TenantSource> {
    if let Some(claim) = &s.jwt_claim {
        return jwt_source(cx, s, claim, span);
    }
    for (key, present) in [
        ("jwks", s.jwks.is_some()),
        ("hs256_secret_file", s.hs256_secret_file.is_some()),
        ("issuer", s.issuer.is_some()),
        ("audience", s.audience.is_some()),
    ] {
        if present {
            cx.diag.at(
                span.clone(),
                format!("`{key}` belongs to a JWT source: add `jwt_claim`"),
            );
            return None;
        }
    }
    let kinds = [&s.header, &s.host, &s.path, &s.cookie];
    if kinds.iter().filter(|k| k.is_some()).count() != 1 {
        cx.diag.at(span, "a tenant source needs exactly one of `header`, `host`, `path`, `cookie` or `jwt_claim`");
        return None;
    }
    if s.trusted_proxies.is_some() && s.header.is_none() {
        cx.diag
            .at(span, "`trusted_proxies` only applies to a `header` source");
        return None;
    }
    if let Some(h) = &s.header {
        let name = header_name(cx, h)?;
        let trusted = s
            .trusted_proxies
            .iter()
            .flatten()
            .filter_map(|c| cidr(cx, c))
            .collect();
        return Some(TenantSource::Header { name, trusted });
    }
    if let Some(h) = &s.host {
        let pattern = h.get_ref().trim().to_ascii_lowercase();
        return match affix(&pattern) {
            Some(a) if !a.prefix.contains(['/', ':']) && !a.suffix.contains(['/', ':']) => {
                Some(TenantSource::Host(a))
            }
            _ => {
                cx.diag.at(h.span(), format!("invalid host pattern {:?}: write one `{{tenant}}` label, such as \"{{tenant}}.app.example.com\"", h.get_ref()));
                None
            }
        };
    }
    if let Some(p) = &s.path {
        return match affix(p.get_ref().trim()) {
            Some(a)
                if a.prefix.starts_with('/')
                    && a.prefix.ends_with('/')
                    && (a.suffix.is_empty() || a.suffix.starts_with('/')) =>
            {
                Some(TenantSource::Path(a))
            }
            _ => {
                cx.diag.at(p.span(), format!("invalid path pattern {:?}: `{{tenant}}` must be one whole segment of a prefix, such as \"/t/{{tenant}}/\"", p.get_ref()));
                None
            }
        };
    }
    let c = s.cookie.as_ref()?;
    cookie_name(cx, c).map(TenantSource::Cookie)
}

fn cidr(cx: &mut Cx<'_>, v: &Text) -> Option<IpNet> {
    let text = v.get_ref().trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            cx.diag.at(
                v.span(),
                format!(
                    "invalid CIDR {:?}, expected such as \"10.0.0.0/8\" or \"::1/128\"",
                    v.get_ref()
                ),
            )
        })
        .ok()
}

fn jwt_source(
    cx: &mut Cx<'_>,
    s: &RawSource,
    claim: &Text,
    span: std::ops::Range<usize>,
) -> Option<TenantSource> {
    if s.host.is_some() || s.path.is_some() || s.trusted_proxies.is_some() {
        cx.diag.at(span, "a JWT source takes `header` or `cookie` (where the token is), not `host`, `path` or `trusted_proxies`");
        return None;
    }
    if claim.get_ref().trim().is_empty() {
        cx.diag.at(claim.span(), "`jwt_claim` must name a claim");
        return None;
    }
    let at = match (&s.header, &s.cookie) {
        (Some(h), None) => TokenAt::Header(header_name(cx, h)?),
        (None, Some(c)) => TokenAt::Cookie(cookie_name(cx, c)?),
        (None, None) => TokenAt::Header(http::header::AUTHORIZATION),
        (Some(_), Some(_)) => {
            cx.diag.at(
                span,
                "a JWT source reads its token from `header` or `cookie`, not both",
            );
            return None;
        }
    };
    let expect = Expect {
        issuer: s.issuer.as_ref().map(|v| v.get_ref().clone()),
        audience: s.audience.as_ref().map(|v| v.get_ref().clone()),
    };
    let claim = claim.get_ref().trim().to_owned();
    let source = match (&s.jwks, &s.hs256_secret_file) {
        (Some(j), None) => {
            let (path, text) = cx.text_file(j, "jwks")?;
            match JwtSource::jwks(claim, at, &text, &expect) {
                Ok(source) => source,
                Err(KeyError::Jwks { line, col, message }) => {
                    cx.diag.in_file(&path, line, col, message);
                    return None;
                }
                Err(other) => {
                    cx.diag.in_file(&path, 1, 1, other.to_string());
                    return None;
                }
            }
        }
        (None, Some(f)) => {
            let secret = cx.secret(f, "hs256_secret_file")?;
            JwtSource::hs256(claim, at, &secret, &expect)
                .map_err(|e| cx.diag.at(f.span(), e))
                .ok()?
        }
        _ => {
            cx.diag.at(span, "a JWT source needs exactly one of `jwks` (RS256/ES256 keys) or `hs256_secret_file`");
            return None;
        }
    };
    Some(TenantSource::Jwt(Box::new(source)))
}

/// The directory file: `[tenants.<id>]` tables of string attributes.
fn load_directory(cx: &mut Cx<'_>, name: &Text, directory: &mut Directory) {
    let Some((path, text)) = cx.text_file(name, "tenant.directory") else {
        return;
    };
    let raw: RawDirectory = match toml::from_str(&text) {
        Ok(raw) => raw,
        Err(e) => {
            let err = toml_error_in(&path, &text, &e);
            cx.diag.in_file(&path, err.line, err.col, err.message);
            return;
        }
    };
    let positions = Positions::new(&text);
    let at = |cx: &mut Cx<'_>, path: &Path, span: std::ops::Range<usize>, msg: String| {
        let (line, col) = positions.at(span.start);
        cx.diag.in_file(path, line, col, msg);
    };
    for (id, attrs) in raw.tenants {
        if !valid_tenant_id(id.get_ref()) {
            at(
                cx,
                &path,
                id.span(),
                format!("invalid tenant id {:?}: {ID_RULE}", id.get_ref()),
            );
            continue;
        }
        let entry = directory.entry(id.into_inner());
        for (key, value) in attrs {
            if key.get_ref() == "side" {
                at(cx, &path, key.span(), "`side` is not a directory attribute: set it in the main config as [tenants.<id>] side = \"new\"".to_owned());
                continue;
            }
            entry.attrs.insert(key.into_inner(), value.into_inner());
        }
    }
}
