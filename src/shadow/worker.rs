//! The shadow worker: takes jobs off the bounded queue (at most `max_in_flight` at once),
//! sends the copy to the other side, optionally calls the primary side again (learned noise),
//! compares, classifies, and hands a redacted result to the store's writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Limited};
use tokio::sync::{Semaphore, mpsc};

use super::noise::{NoiseModel, NoiseVerdict};
use super::{Job, SkipSink, skip};
use crate::body;
use crate::clock::Clock;
use crate::compare::decode;
use crate::compare::{self, Captured, CompareRules, Diff};
use crate::error::ProxyError;
use crate::head::{self, Downstream, SHADOW_HEADER};
use crate::rules::Side;
use crate::store::{DiffRecord, Outcome, SamplePair, SampleResponse, SelfCheck, ShadowResult};
use crate::trace::{TRACEPARENT, TRACESTATE};

pub(super) async fn dispatch(
    mut rx: mpsc::Receiver<Job>,
    in_flight: Arc<Semaphore>,
    pending: Arc<AtomicUsize>,
    noise: Arc<NoiseModel>,
    skips: SkipSink,
) {
    while let Some(job) = rx.recv().await {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let noise = noise.clone();
        let skips = skips.clone();
        let pending = pending.clone();
        tokio::spawn(async move {
            let result = run(job, &skips, &noise).await;
            if let (Some(writer), Some(result)) = (&skips.writer, result)
                && !writer.try_send(result)
            {
                skips
                    .metrics
                    .store_dropped
                    .get_or_create(&crate::telemetry::ResultLabel {
                        result: "queue_full".into(),
                    })
                    .inc();
            }
            drop(permit);
            pending.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// One side's answer as collected by the worker.
struct Collected {
    captured: Captured,
    elapsed: Duration,
}

async fn run(mut job: Job, skips: &SkipSink, noise: &NoiseModel) -> Option<ShadowResult> {
    let metrics = &skips.metrics;
    let snapshot = job.snapshot.clone();
    let route = snapshot.rules.routes.get(job.route_index)?;
    let policy = route.shadow.as_ref()?;
    let rules = policy.compare.clone();
    let at_ms = skips.clock.now_ms();
    noise.set_window(snapshot.rules.shadow.noise_window);
    let primary = match tokio::time::timeout(
        policy.timeout + Duration::from_secs(30),
        &mut job.primary,
    )
    .await
    {
        Ok(Ok(p)) if !p.body.incomplete => p,
        _ => {
            skips.record(
                &route.name,
                job.tenant.as_deref(),
                job.primary_side,
                skip::PRIMARY_INCOMPLETE,
            );
            return None;
        }
    };
    let started = skips.clock.now();
    let shadow = call(&job, job.shadow_side, &skips.clock).await;
    if let Some(trace) = &job.trace {
        trace.finish(
            format!("shadow {}", route.name),
            started,
            skips.clock.now(),
            |span| {
                span.attr("switchyard.route", route.name.as_str())
                    .attr("switchyard.side", job.shadow_side.as_str())
                    .attr("switchyard.shadow", true);
                match &shadow {
                    Ok(s) => {
                        span.attr("http.response.status_code", i64::from(s.captured.status));
                        span.error = s.captured.status >= 500;
                    }
                    Err(error) => {
                        span.attr("switchyard.error", error.to_string());
                        span.error = true;
                    }
                }
            },
        );
    }
    let primary_captured = Captured {
        status: primary.status,
        headers: primary.headers,
        body: primary.body.bytes,
        truncated: primary.body.truncated,
    };
    let mut result = ShadowResult {
        at_ms,
        route: route.name.clone(),
        tenant: job.tenant.clone(),
        primary_side: job.primary_side,
        outcome: Outcome::Error,
        skip_reason: None,
        error: None,
        primary_ms: Some(primary.elapsed.as_secs_f64() * 1000.0),
        shadow_ms: None,
        diffs: Vec::new(),
        self_check: None,
        sample: None,
    };
    let shadow = match shadow {
        Ok(s) => s,
        Err(error) => {
            metrics.shadow_result(&route.name, "error");
            result.error = Some(error.to_string());
            return Some(result);
        }
    };
    result.shadow_ms = Some(shadow.elapsed.as_secs_f64() * 1000.0);
    if primary_captured.truncated || shadow.captured.truncated {
        // A cut body would compare its prefix only: not evidence either way.
        skips.record(
            &route.name,
            job.tenant.as_deref(),
            job.primary_side,
            skip::BODY_TOO_LARGE,
        );
        return None;
    }
    let (primary_decoded, shadow_decoded) = (decoded(&primary_captured), decoded(&shadow.captured));
    let diff = compare::diff(&primary_decoded, &shadow_decoded, &rules);

    if job.self_check {
        let again = call(&job, job.primary_side, &skips.clock).await;
        if let Ok(again) = again {
            let self_diff = compare::diff(&primary_decoded, &decoded(&again.captured), &rules);
            noise.record_self(&route.name, &self_diff, at_ms);
            result.self_check = Some(SelfCheck {
                differing_patterns: patterns(&self_diff),
            });
        }
    }
    noise.record_cross(&route.name, &diff, at_ms);

    result.outcome = if diff.differences.is_empty() {
        Outcome::Match
    } else if diff
        .differences
        .iter()
        .all(|d| noise.classify(&route.name, &d.pattern, at_ms) == NoiseVerdict::Noise)
    {
        Outcome::NoiseOnly
    } else {
        Outcome::Mismatch
    };
    metrics.shadow_result(&route.name, result.outcome.as_str());
    result.diffs = diff
        .differences
        .iter()
        .map(|d| DiffRecord {
            pattern: d.pattern.clone(),
            kind: d.kind.as_str().to_string(),
            primary: d.primary.clone(),
            shadow: d.shadow.clone(),
        })
        .collect();
    if !diff.differences.is_empty() {
        result.sample = Some(sample(
            &job.request.method,
            &job.request,
            &job.body,
            &primary_decoded,
            &shadow_decoded,
            job.primary_side,
            job.shadow_side,
            primary.elapsed,
            shadow.elapsed,
            &rules,
            snapshot.rules.shadow.redact_key.as_deref(),
        ));
    }
    Some(result)
}

fn patterns(diff: &Diff) -> Vec<String> {
    let mut out: Vec<String> = diff.differences.iter().map(|d| d.pattern.clone()).collect();
    out.sort();
    out.dedup();
    out
}

/// Decode Content-Encoding before comparing; an undecodable body is compared as received.
fn decoded(captured: &Captured) -> Captured {
    match decode::decode(&captured.headers, &captured.body) {
        Ok(Some(bytes)) => {
            let mut headers = captured.headers.clone();
            headers.remove(http::header::CONTENT_ENCODING);
            Captured {
                status: captured.status,
                headers,
                body: bytes,
                truncated: captured.truncated,
            }
        }
        _ => captured.clone(),
    }
}

/// Why the shadow copy (or the self-check call) brought no answer; kept with the result.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("{}", .0.chain())]
    Upstream(#[from] ProxyError),
    #[error("shadow body: {0}")]
    Body(#[source] crate::body::BoxError),
    #[error("shadow timed out after {0:?}")]
    Timeout(Duration),
}

/// Send the job's request to `side` (the shadow copy, or the self-check call to the primary
/// side) and collect a bounded answer.
async fn call(job: &Job, side: Side, clock: &Clock) -> Result<Collected, CallError> {
    let snapshot = &job.snapshot;
    let Some(route) = snapshot.rules.routes.get(job.route_index) else {
        return Err(ProxyError::UnknownUpstream(String::new()).into());
    };
    let Some(policy) = route.shadow.as_ref() else {
        return Err(ProxyError::UnknownUpstream(route.legacy.clone()).into());
    };
    let max_body = usize::try_from(policy.max_body).unwrap_or(usize::MAX);
    let upstream = snapshot.rules.upstream_for(Some(route), side);
    let pool = snapshot.pools.get(upstream)?;
    let origin = pool.pick()?;
    let mut parts = job.request.clone();
    for name in &policy.strip_headers {
        parts.headers.remove(name.as_str());
    }
    for (name, value) in &policy.set_headers {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            parts.headers.insert(n, v);
        }
    }
    parts
        .headers
        .insert(SHADOW_HEADER, HeaderValue::from_static("1"));
    let request_id = head::request_id(&parts.headers);
    let downstream = Downstream {
        peer: job.peer,
        tls: false,
        host: job.host.as_ref(),
    };
    head::prepare_request(
        &mut parts,
        origin,
        side,
        Some(&route.rewrite),
        &downstream,
        &request_id,
        false,
    )?;
    if let Some(trace) = &job.trace {
        // The copy's own span is the parent of the other side's work; the caller's
        // tracestate belongs to the caller's trace, not to this one.
        parts.headers.insert(TRACEPARENT, trace.span.traceparent());
        parts.headers.remove(TRACESTATE);
    }
    let started = clock.instant();
    let send = async {
        let response = pool
            .send(
                origin,
                Request::from_parts(parts, body::full(job.body.clone())),
                false,
            )
            .await?;
        let (head, incoming) = response.into_parts();
        let (bytes, truncated) = match Limited::new(incoming, max_body).collect().await {
            Ok(collected) => (collected.to_bytes(), false),
            Err(error)
                if error
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                (Bytes::new(), true)
            }
            Err(error) => return Err(CallError::Body(error)),
        };
        Ok(Collected {
            captured: Captured {
                status: head.status.as_u16(),
                headers: head.headers,
                body: bytes,
                truncated,
            },
            elapsed: clock.instant().saturating_duration_since(started),
        })
    };
    match tokio::time::timeout(policy.timeout, send).await {
        Ok(result) => result,
        Err(_) => Err(CallError::Timeout(policy.timeout)),
    }
}

/// A redacted request/response pair for the sample reservoir. Credentials never leave memory:
/// credential headers are dropped and `redact` paths replaced by keyed hashes.
#[allow(clippy::too_many_arguments)]
fn sample(
    method: &Method,
    request: &http::request::Parts,
    body: &Bytes,
    primary: &Captured,
    shadow: &Captured,
    primary_side: Side,
    shadow_side: Side,
    primary_elapsed: Duration,
    shadow_elapsed: Duration,
    rules: &CompareRules,
    key: Option<&[u8]>,
) -> SamplePair {
    let key = key.unwrap_or(compare::process_key().as_slice());
    let headers = |map: &HeaderMap| -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = map
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).to_string(),
                )
            })
            .collect();
        compare::redact_headers(&mut pairs);
        pairs
    };
    let text = |bytes: &Bytes| -> String {
        match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(mut json) => {
                compare::redact_json(&mut json, rules, key);
                json.to_string()
            }
            Err(_) => match std::str::from_utf8(bytes) {
                Ok(s) => s.to_string(),
                Err(_) => format!("<{} bytes of binary>", bytes.len()),
            },
        }
    };
    SamplePair {
        method: method.as_str().to_string(),
        uri: request.uri.to_string(),
        request_headers: headers(&request.headers),
        request_body: (!body.is_empty()).then(|| text(body)),
        primary: SampleResponse {
            side: primary_side,
            status: primary.status,
            headers: headers(&primary.headers),
            body: text(&primary.body),
            elapsed_ms: primary_elapsed.as_secs_f64() * 1000.0,
        },
        shadow: SampleResponse {
            side: shadow_side,
            status: shadow.status,
            headers: headers(&shadow.headers),
            body: text(&shadow.body),
            elapsed_ms: shadow_elapsed.as_secs_f64() * 1000.0,
        },
    }
}
