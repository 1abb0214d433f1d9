//! The decision for a request (SPEC "Decision for a request"), first rule that applies wins:
//!
//! 1. No route matches → the `default` upstream, legacy (`no_route`). The tenant is still
//!    resolved, for logs.
//! 2. `unknown = "reject"` and no tenant → rejected (`unknown_tenant`, the proxy answers 400).
//!    A route without a `new` upstream → legacy (`no_new_upstream`): nothing else can apply.
//! 3. A valid signed `x-switchyard-force` token (only with `[admin] override_secret_file`) →
//!    its side (`forced`).
//! 4. Route `state`: `legacy` → legacy, `new` → new.
//! 5. Tenant in the route's `exclude`, or held tenant-wide (`[tenants.<id>] side = "legacy"`)
//!    → legacy (`excluded`).
//! 6. Tenant in the route's `tenants` (`tenant_listed`), cut over tenant-wide
//!    (`tenant_cutover`), or in one of the route's `cohorts` (`cohort`) → new.
//! 7. Sticky bucket `bucket(salt, key) < percent` → new (`bucket`); no key, no bucket.
//! 8. Otherwise legacy (`default`).
//!
//! Shadow: when the route has a `shadow` table and `[shadow] enabled` holds, a request whose
//! method is listed, which is not itself a shadow copy (`x-switchyard-shadow`), whose tenant
//! passes the policy's `tenants`/`exclude`, and which the sampling picks (sticky bucket with
//! salt `"shadow:" + salt`, or the caller's per-request `sample`) gets `shadow = other side`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::tenant::{UnknownPolicy, cookie, in_cohort};
use super::{
    Decision, FORCE_HEADER, Reason, Reject, RequestView, Route, RouteState, RuleSet, SHADOW_HEADER,
    ShadowPolicy, Side, StickyKey, bucket, override_token,
};

impl RuleSet {
    /// Which side serves this request, and whether a shadow copy goes to the other side. Pure.
    pub fn decide<'r, 't>(&'r self, req: &RequestView<'t>, now: SystemTime) -> Decision<'r, 't> {
        let now_unix = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let tenant = self.tenant.resolve(req, now_unix);
        let Some(route) = self.matcher.find(&self.routes, req) else {
            return Decision {
                route: None,
                tenant,
                side: Side::Legacy,
                upstream: &self.default_upstream,
                reason: Reason::NoRoute,
                shadow: None,
                reject: None,
                forced: false,
            };
        };
        if tenant.is_none() && self.tenant.unknown == UnknownPolicy::Reject {
            return Decision {
                route: Some(route),
                tenant,
                side: Side::Legacy,
                upstream: &route.legacy,
                reason: Reason::UnknownTenant,
                shadow: None,
                reject: Some(Reject::UnknownTenant),
                forced: false,
            };
        }
        let (side, reason) = if route.new.is_none() {
            (Side::Legacy, Reason::NoNewUpstream)
        } else if let Some(side) = self.forced_side(req, now_unix) {
            (side, Reason::Forced)
        } else {
            request_rule(self, route, tenant.as_deref(), req)
        };
        // A route only has a shadow policy when it has both sides (checked at load).
        let shadow = route
            .shadow
            .as_ref()
            .filter(|_| self.shadow.enabled)
            .and_then(|policy| shadow_side(policy, side, tenant.as_deref(), req));
        Decision {
            route: Some(route),
            tenant,
            side,
            upstream: self.upstream_for(Some(route), side),
            reason,
            shadow,
            reject: None,
            forced: reason == Reason::Forced,
        }
    }

    fn forced_side(&self, req: &RequestView<'_>, now_unix: u64) -> Option<Side> {
        let secret = self.admin.override_secret.as_deref()?;
        let token = req.headers.get(FORCE_HEADER)?.to_str().ok()?;
        override_token::verify(secret, token.trim(), now_unix)
    }
}

/// Steps 4–8 for a request.
fn request_rule(
    rules: &RuleSet,
    route: &Route,
    tenant: Option<&str>,
    req: &RequestView<'_>,
) -> (Side, Reason) {
    if let Some(decided) =
        state_rule(route).or_else(|| tenant.and_then(|t| tenant_lists(rules, route, t)))
    {
        return decided;
    }
    let key = match &route.sticky {
        StickyKey::Tenant => tenant,
        other => sticky_value(other, req),
    };
    bucket_rule(route, key)
}

/// Steps 4–8 for a tenant alone (no request): what `tenants_on_new` and dry runs need. Sticky
/// keys other than the tenant are unknown here and count as no key.
pub(super) fn tenant_rule(rules: &RuleSet, route: &Route, tenant: &str) -> (Side, Reason) {
    if route.new.is_none() {
        return (Side::Legacy, Reason::NoNewUpstream);
    }
    if let Some(decided) = state_rule(route).or_else(|| tenant_lists(rules, route, tenant)) {
        return decided;
    }
    let key = (route.sticky == StickyKey::Tenant).then_some(tenant);
    bucket_rule(route, key)
}

fn state_rule(route: &Route) -> Option<(Side, Reason)> {
    match route.state {
        RouteState::Legacy => Some((Side::Legacy, Reason::StateLegacy)),
        RouteState::New => Some((Side::New, Reason::StateNew)),
        RouteState::Rollout => None,
    }
}

/// Steps 5 and 6.
fn tenant_lists(rules: &RuleSet, route: &Route, tenant: &str) -> Option<(Side, Reason)> {
    let info = rules.directory.get(tenant);
    let wide = info.and_then(|i| i.side);
    if route.exclude.contains(tenant) || wide == Some(Side::Legacy) {
        return Some((Side::Legacy, Reason::Excluded));
    }
    if route.tenants.contains(tenant) {
        return Some((Side::New, Reason::TenantListed));
    }
    if wide == Some(Side::New) {
        return Some((Side::New, Reason::TenantCutover));
    }
    if !route.cohorts.is_empty() && info.is_some_and(|i| in_cohort(&i.attrs, &route.cohorts)) {
        return Some((Side::New, Reason::Cohort));
    }
    None
}

fn bucket_rule(route: &Route, key: Option<&str>) -> (Side, Reason) {
    match key {
        Some(key) if route.percent_bp > 0 && bucket(&route.salt, key) < route.percent_bp => {
            (Side::New, Reason::Bucket)
        }
        _ => (Side::Legacy, Reason::Default),
    }
}

/// The value a header or cookie sticky key reads from the request.
fn sticky_value<'a>(key: &StickyKey, req: &RequestView<'a>) -> Option<&'a str> {
    match key {
        StickyKey::Tenant => None,
        StickyKey::Header(name) => req.headers.get(name)?.to_str().ok().map(str::trim),
        StickyKey::Cookie(name) => cookie(req.headers, name),
    }
    .filter(|v| !v.is_empty())
}

fn shadow_side(
    policy: &ShadowPolicy,
    side: Side,
    tenant: Option<&str>,
    req: &RequestView<'_>,
) -> Option<Side> {
    if !policy.methods.contains(req.method) || req.headers.contains_key(SHADOW_HEADER) {
        return None;
    }
    if !policy.tenants.is_empty() && !tenant.is_some_and(|t| policy.tenants.iter().any(|x| x == t))
    {
        return None;
    }
    if tenant.is_some_and(|t| policy.exclude.iter().any(|x| x == t)) {
        return None;
    }
    let picked = match &policy.sticky {
        None => u32::from(req.sample) < policy.percent_bp,
        Some(StickyKey::Tenant) => {
            tenant.is_some_and(|t| bucket(&policy.salt, t) < policy.percent_bp)
        }
        Some(key) => {
            sticky_value(key, req).is_some_and(|k| bucket(&policy.salt, k) < policy.percent_bp)
        }
    };
    picked.then_some(side.other())
}

/// The decision as JSON: `route`, `tenant`, `side`, `upstream`, `reason`, `shadow`,
/// `generation`, plus `forced`, `reject` and the rule set's `config_hash`.
pub fn explain(rules: &RuleSet, d: &Decision<'_, '_>, generation: u64) -> serde_json::Value {
    json!({
        "route": d.route.map(|r| r.name.as_str()),
        "tenant": d.tenant.as_deref(),
        "side": d.side,
        "upstream": d.upstream,
        "reason": d.reason,
        "shadow": d.shadow,
        "generation": generation,
        "forced": d.forced,
        "reject": d.reject,
        "config_hash": rules.hash,
    })
}
