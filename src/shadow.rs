//! Shadow traffic (pipeline placeholder until the comparison engine lands).

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;

use crate::live::Snapshot;
use crate::proxy::body::{self, Body};
use crate::rules::{Route, RuleSet, ShadowPolicy, Side};

/// Compiled compare rules by route index.
#[derive(Default)]
pub struct RouteCompare;

impl RouteCompare {
    pub fn compile(_rules: &RuleSet) -> Result<RouteCompare, String> {
        Ok(RouteCompare)
    }
}

/// The shadow worker.
#[derive(Default)]
pub struct Shadower;

/// A registered comparison slot for one request.
pub struct ShadowTicket;

impl Shadower {
    pub async fn start(
        _snapshot: &Snapshot,
        _metrics: Arc<crate::telemetry::Metrics>,
    ) -> Result<Arc<Shadower>, String> {
        Ok(Arc::new(Shadower))
    }

    pub async fn close(&self) {}

    #[allow(clippy::too_many_arguments)]
    pub fn begin(
        &self,
        _snapshot: &Arc<Snapshot>,
        _route: &Route,
        _policy: &ShadowPolicy,
        _tenant: Option<&str>,
        _primary: Side,
        _shadow: Side,
        _parts: &http::request::Parts,
        _body: Option<&bytes::Bytes>,
    ) -> Option<ShadowTicket> {
        None
    }
}

impl ShadowTicket {
    pub fn tee_primary(
        self,
        _head: &http::response::Parts,
        body: Incoming,
        _elapsed: Duration,
        _side: Side,
    ) -> Body {
        body::boxed(body)
    }
}
