//! The access log: one JSON line per request, opt-in with `[telemetry] access_log = "stdout" |
//! "stderr" | PATH`, to answer "what happened to this request" after the fact.
//!
//! Fields, in this order (absent when unknown):
//! - `ts`: when the request arrived, RFC 3339 with milliseconds, UTC;
//! - `request_id`: the `x-request-id` sent upstream and back to the client;
//! - `client`: the peer address the connection came from;
//! - `method`, `host`, `path` (the query string is left out: it often carries secrets);
//! - `route` (`default` without one), `side` (the side that answered), `reason` (why the
//!   decision went that way, as in `switchyard explain`), `upstream`;
//! - `tenant`: only with `[telemetry] access_log_tenants = true` (tenant names may identify
//!   customers, so they are left out by default);
//! - `status`, `duration_ms` (to the response head), `fallback` (legacy answered after the new
//!   side failed), `shadowed` (a copy went to the other side), `generation` (the rules in
//!   force), `error` (the error kind when the gateway answered itself), `trace_id` (the
//!   request's trace, with `[telemetry] otlp_endpoint` on).
//!
//! Lines never wait on the disk: the request path hands each line to a bounded queue and a
//! background task writes them in batches; a full queue drops the line and counts it
//! ([`AccessLog::dropped`]). The target can change on reload; the writer reopens it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::rules::AccessLogTarget;

/// Lines waiting for the writer.
const QUEUE: usize = 16 * 1024;

/// One request, as logged.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    pub ts: String,
    pub request_id: &'a str,
    pub client: String,
    pub method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<&'a str>,
    pub path: &'a str,
    pub route: &'a str,
    pub side: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<&'a str>,
    pub status: u16,
    pub duration_ms: f64,
    pub fallback: bool,
    pub shadowed: bool,
    pub generation: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<&'a str>,
}

/// A line and where it goes.
struct Line {
    target: Arc<AccessLogTarget>,
    text: String,
}

/// The access log's queue and its writer task.
pub struct AccessLog {
    queue: mpsc::Sender<Line>,
    dropped: AtomicU64,
}

impl AccessLog {
    /// Start the writer task.
    pub fn start() -> Arc<AccessLog> {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_lines(rx));
        Arc::new(AccessLog {
            queue,
            dropped: AtomicU64::new(0),
        })
    }

    /// Queue `entry` for `target`; never waits.
    pub fn log(&self, target: &Arc<AccessLogTarget>, entry: &Entry<'_>) {
        let Ok(mut text) = serde_json::to_string(entry) else {
            return;
        };
        text.push('\n');
        let line = Line {
            target: target.clone(),
            text,
        };
        if self.queue.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// An open destination.
enum Sink {
    Stdout(tokio::io::Stdout),
    Stderr(tokio::io::Stderr),
    File(tokio::fs::File),
}

impl Sink {
    async fn open(target: &AccessLogTarget) -> Option<Sink> {
        match target {
            AccessLogTarget::Stdout => Some(Sink::Stdout(tokio::io::stdout())),
            AccessLogTarget::Stderr => Some(Sink::Stderr(tokio::io::stderr())),
            AccessLogTarget::File(path) => open_file(path).await.map(Sink::File),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout(out) => {
                out.write_all(bytes).await?;
                out.flush().await
            }
            Sink::Stderr(out) => {
                out.write_all(bytes).await?;
                out.flush().await
            }
            Sink::File(file) => file.write_all(bytes).await,
        }
    }
}

async fn open_file(path: &PathBuf) -> Option<tokio::fs::File> {
    match tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
    {
        Ok(file) => Some(file),
        Err(error) => {
            tracing::error!(path = %path.display(), "access log cannot be opened: {error}");
            None
        }
    }
}

/// Write queued lines, a batch at a time, reopening the destination when it changes.
async fn write_lines(mut rx: mpsc::Receiver<Line>) {
    let mut current: Option<(Arc<AccessLogTarget>, Option<Sink>)> = None;
    let mut batch = Vec::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        let target = first.target.clone();
        batch.clear();
        batch.extend_from_slice(first.text.as_bytes());
        // Take what else is queued for the same destination, up to a batch.
        while batch.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(line) if line.target == target => batch.extend_from_slice(line.text.as_bytes()),
                Ok(line) => {
                    flush(&mut current, &target, &batch).await;
                    batch.clear();
                    batch.extend_from_slice(line.text.as_bytes());
                    flush(&mut current, &line.target, &batch).await;
                    batch.clear();
                    break;
                }
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            flush(&mut current, &target, &batch).await;
        }
    }
}

async fn flush(
    current: &mut Option<(Arc<AccessLogTarget>, Option<Sink>)>,
    target: &Arc<AccessLogTarget>,
    bytes: &[u8],
) {
    if current.as_ref().is_none_or(|(t, _)| t != target) {
        *current = Some((target.clone(), Sink::open(target).await));
    }
    if let Some((_, Some(sink))) = current.as_mut()
        && let Err(error) = sink.write(bytes).await
    {
        tracing::warn!("access log write failed: {error}");
    }
}
