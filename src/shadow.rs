//! TEMPORARY: shadow pipeline disabled until the comparison engine and store are merged.
use crate::live::Snapshot;
use crate::proxy::body::{self, Body};
use crate::proxy::forward::Downstream;
use crate::rules::{Route, RuleSet, ShadowPolicy, Side};
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Duration;
#[derive(Default)]
pub struct RouteCompare;
impl RouteCompare {
    pub fn compile(_rules: &RuleSet) -> Result<RouteCompare, String> {
        Ok(RouteCompare)
    }
}
#[derive(Default)]
pub struct Shadower;
pub struct ShadowTicket;
impl Shadower {
    pub async fn start(
        _s: &Snapshot,
        _m: Arc<crate::telemetry::Metrics>,
    ) -> Result<Arc<Shadower>, String> {
        Ok(Arc::new(Shadower))
    }
    pub async fn close(&self) {}
    #[allow(clippy::too_many_arguments)]
    pub fn begin(
        &self,
        _s: &Arc<Snapshot>,
        _r: &Route,
        _p: &ShadowPolicy,
        _t: Option<&str>,
        _a: Side,
        _b: Side,
        _parts: &http::request::Parts,
        _body: Option<&bytes::Bytes>,
        _d: &Downstream<'_>,
    ) -> Option<ShadowTicket> {
        None
    }
}
impl ShadowTicket {
    pub fn tee_primary(
        self,
        _h: &http::response::Parts,
        body: Incoming,
        _e: Duration,
        _s: Side,
    ) -> Body {
        body::boxed(body)
    }
}
