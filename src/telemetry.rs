//! Logs (tracing) and metrics (Prometheus text format; every metric is in docs/metrics.md).
//!
//! No metric carries a tenant label: tenants are unbounded, and a label per tenant would
//! explode the series count of every scraper.

use std::sync::OnceLock;

use crate::rules::Side;

mod histogram;

pub use histogram::LatencyHistogram;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Start the tracing subscriber: `RUST_LOG` filters (default `info`), `SWITCHYARD_LOG=json`
/// switches to JSON lines.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = std::env::var("SWITCHYARD_LOG").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub side: String,
    pub status_class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteSide {
    pub route: String,
    pub side: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamError {
    pub upstream: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteResult {
    pub route: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteReason {
    pub route: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

/// Every metric Switchyard exports, registered once at start.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<RouteSide, LatencyHistogram>,
    pub upstream_errors: Family<UpstreamError, Counter>,
    pub fallbacks: Family<RouteLabel, Counter>,
    pub shadow: Family<RouteResult, Counter>,
    pub shadow_skipped: Family<RouteReason, Counter>,
    pub reloads: Family<ResultLabel, Counter>,
    pub generation: Gauge<i64, AtomicU64Gauge>,
    /// 1 while the config source answers (always for a file), 0 while its database does not.
    pub source_up: Gauge<i64, AtomicU64Gauge>,
    pub guard_tripped: Family<RouteLabel, Counter>,
    pub store_dropped: Family<ResultLabel, Counter>,
    pub trace_spans: Family<ResultLabel, Counter>,
}

/// Gauge storage type (i64 over an atomic).
pub type AtomicU64Gauge = std::sync::atomic::AtomicI64;

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Register every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("switchyard");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests served, by route, side and status class",
            requests.clone(),
        );
        let duration = Family::<RouteSide, LatencyHistogram>::default();
        registry.register(
            "request_duration_seconds",
            "Time to the response head, by route and side",
            duration.clone(),
        );
        let upstream_errors = Family::<UpstreamError, Counter>::default();
        registry.register(
            "upstream_errors",
            "Upstream failures by upstream and kind",
            upstream_errors.clone(),
        );
        let fallbacks = Family::<RouteLabel, Counter>::default();
        registry.register(
            "fallbacks",
            "Requests retried on legacy after the new side failed",
            fallbacks.clone(),
        );
        let shadow = Family::<RouteResult, Counter>::default();
        registry.register(
            "shadow",
            "Shadow comparisons by route and result",
            shadow.clone(),
        );
        let shadow_skipped = Family::<RouteReason, Counter>::default();
        registry.register(
            "shadow_skipped",
            "Shadow comparisons skipped, by reason",
            shadow_skipped.clone(),
        );
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "config_reloads",
            "Config (re)loads by result",
            reloads.clone(),
        );
        let generation = Gauge::<i64, AtomicU64Gauge>::default();
        registry.register(
            "config_generation",
            "The rule generation in force",
            generation.clone(),
        );
        let source_up = Gauge::<i64, AtomicU64Gauge>::default();
        registry.register(
            "config_source_up",
            "1 while the config source answers, 0 while its database cannot be reached",
            source_up.clone(),
        );
        let guard_tripped = Family::<RouteLabel, Counter>::default();
        registry.register(
            "guard_tripped",
            "Automatic guard trips by route",
            guard_tripped.clone(),
        );
        let store_dropped = Family::<ResultLabel, Counter>::default();
        registry.register(
            "store_writes_dropped",
            "Store writes dropped (queue full or store down)",
            store_dropped.clone(),
        );
        let trace_spans = Family::<ResultLabel, Counter>::default();
        registry.register(
            "trace_spans",
            "Trace spans by result: exported, dropped (queue full), failed (the collector refused or was unreachable)",
            trace_spans.clone(),
        );
        Metrics {
            registry,
            requests,
            duration,
            upstream_errors,
            fallbacks,
            shadow,
            shadow_skipped,
            reloads,
            generation,
            source_up,
            guard_tripped,
            store_dropped,
            trace_spans,
        }
    }

    /// Count one served request and its time to the response head.
    pub fn observe_request(&self, route: &str, side: &str, status: u16, seconds: f64) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                side: side.to_string(),
                status_class: class.to_string(),
            })
            .inc();
        self.duration
            .get_or_create(&RouteSide {
                route: route.to_string(),
                side: side.to_string(),
            })
            .observe(seconds);
    }

    /// Count an upstream failure.
    pub fn upstream_error(&self, upstream: &str, kind: &str) {
        self.upstream_errors
            .get_or_create(&UpstreamError {
                upstream: upstream.to_string(),
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Count a shadow outcome (`match | mismatch | noise_only | error | skipped`).
    pub fn shadow_result(&self, route: &str, result: &str) {
        self.shadow
            .get_or_create(&RouteResult {
                route: route.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    /// Count a skipped shadow comparison and its reason (also counted as result `skipped`).
    pub fn shadow_skip(&self, route: &str, reason: &str) {
        self.shadow_result(route, "skipped");
        self.shadow_skipped
            .get_or_create(&RouteReason {
                route: route.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Count `n` trace spans by result (`exported | dropped | failed`).
    pub fn count_spans(&self, result: &str, n: u64) {
        self.trace_spans
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc_by(n);
    }

    /// Count a reload outcome (`ok | error | unchanged`).
    pub fn reload(&self, result: &str) {
        self.reloads
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
    }

    /// Render the Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Per-route handles on the request metrics, so the hot path neither allocates label strings
/// nor hashes them. Each series is created on first use (as with labels), so routes that see
/// no traffic export nothing.
pub struct RouteMetrics {
    route: String,
    requests: [[OnceLock<Counter>; 5]; 2],
    duration: [OnceLock<LatencyHistogram>; 2],
}

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const SIDES: [&str; 2] = ["legacy", "new"];

impl RouteMetrics {
    /// Handles for `route` (not yet created in the registry).
    pub fn new(route: &str) -> RouteMetrics {
        RouteMetrics {
            route: route.to_string(),
            requests: Default::default(),
            duration: Default::default(),
        }
    }

    /// Count one served request and its time to the response head.
    pub fn observe(&self, metrics: &Metrics, side: Side, status: u16, seconds: f64) {
        let s = match side {
            Side::Legacy => 0,
            Side::New => 1,
        };
        let class = match status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            _ => 4,
        };
        self.requests[s][class]
            .get_or_init(|| {
                metrics
                    .requests
                    .get_or_create(&RequestLabels {
                        route: self.route.clone(),
                        side: SIDES[s].to_string(),
                        status_class: STATUS_CLASSES[class].to_string(),
                    })
                    .clone()
            })
            .inc();
        self.duration[s]
            .get_or_init(|| {
                metrics
                    .duration
                    .get_or_create(&RouteSide {
                        route: self.route.clone(),
                        side: SIDES[s].to_string(),
                    })
                    .clone()
            })
            .observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_metric_names_render() {
        let m = Metrics::new();
        m.observe_request("cards", "new", 200, 0.01);
        m.upstream_error("legacy", "connect");
        m.shadow_skip("cards", "queue_full");
        m.reload("error");
        m.generation.set(3);
        m.source_up.set(1);
        let text = m.render();
        for name in [
            "switchyard_requests_total{route=\"cards\",side=\"new\",status_class=\"2xx\"} 1",
            "switchyard_request_duration_seconds_bucket",
            "switchyard_upstream_errors_total{upstream=\"legacy\",kind=\"connect\"} 1",
            "switchyard_shadow_total{route=\"cards\",result=\"skipped\"} 1",
            "switchyard_shadow_skipped_total{route=\"cards\",reason=\"queue_full\"} 1",
            "switchyard_config_reloads_total{result=\"error\"} 1",
            "switchyard_config_generation 3",
            "switchyard_config_source_up 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
