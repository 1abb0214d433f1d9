//! The exporter task: takes finished spans off the bounded queue, a batch at a time, and posts
//! them to the collector (OTLP/HTTP protobuf). One post at a time: while it is in flight new
//! spans wait in the queue (and are dropped, counted, when it fills), so a slow collector
//! never reaches the request path.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::mpsc;

use super::{Queued, SpanData, TraceConfig, otlp};
use crate::telemetry::Metrics;

/// Spans in one post, at most.
const BATCH: usize = 512;
/// One post's time limit.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

type OtlpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub(super) async fn run(mut rx: mpsc::Receiver<Queued>, metrics: Arc<Metrics>) {
    let Some(client) = client() else {
        // Without a client nothing can be sent: count what arrives as failed.
        while let Some(item) = rx.recv().await {
            if let Queued::Span(..) = item {
                metrics.count_spans("failed", 1);
            }
        }
        return;
    };
    let mut batch: Vec<(Arc<TraceConfig>, SpanData)> = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    // Logged when exporting starts failing and when it works again, not for every batch.
    let mut failing = false;
    while let Some(first) = rx.recv().await {
        batch.clear();
        take(first, &mut batch, &mut flushes);
        // A flush ends the batch: what was queued before it goes now.
        while batch.len() < BATCH && flushes.is_empty() {
            match rx.try_recv() {
                Ok(item) => take(item, &mut batch, &mut flushes),
                Err(_) => break,
            }
        }
        // Spans made under different configs (a reload moved the endpoint) go separately.
        while !batch.is_empty() {
            let config = batch[0].0.clone();
            let (same, rest): (Vec<_>, Vec<_>) = batch.drain(..).partition(|(c, _)| c == &config);
            let spans: Vec<&SpanData> = same.iter().map(|(_, s)| s).collect();
            let n = spans.len() as u64;
            match post(&client, &config, &spans).await {
                Ok(()) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!(endpoint = %config.endpoint, "trace export works again");
                    }
                    metrics.count_spans("exported", n);
                }
                Err(error) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(endpoint = %config.endpoint, "trace export failed, spans are counted as failed until it works again: {error}");
                    }
                    metrics.count_spans("failed", n);
                }
            }
            batch = rest;
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

fn take(
    item: Queued,
    batch: &mut Vec<(Arc<TraceConfig>, SpanData)>,
    flushes: &mut Vec<tokio::sync::oneshot::Sender<()>>,
) {
    match item {
        Queued::Span(config, span) => batch.push((config, span)),
        Queued::Flush(done) => flushes.push(done),
    }
}

fn client() -> Option<OtlpClient> {
    let tls = match crate::tls::client_config(None) {
        Ok(tls) => tls,
        Err(error) => {
            tracing::error!("trace exporter has no TLS client: {error}");
            return None;
        }
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Some(
        Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector),
    )
}

async fn post(
    client: &OtlpClient,
    config: &TraceConfig,
    spans: &[&SpanData],
) -> Result<(), String> {
    let body = otlp::encode_request(&config.service_name, spans);
    let request = Request::post(config.endpoint.clone())
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let send = async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        // Read the answer so the connection can be reused.
        let _ = response.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the collector answered {status}"))
        }
    };
    match tokio::time::timeout(POST_TIMEOUT, send).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {POST_TIMEOUT:?}")),
    }
}
