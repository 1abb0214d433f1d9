//! `switchyard demo`: the gateway on `config/demo.toml` with in-process stand-in services for
//! every upstream on a loopback port (JSON answers that say who served them), light synthetic
//! traffic over a few tenants, and the URLs and curl lines to try. Stops cleanly on Ctrl-C.
//!
//! When `config/demo.toml` is not in the current directory (the binary was installed alone),
//! the copy embedded in the binary is written to a temporary directory and used.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::config;
use crate::gateway::{Gateway, Options};
use crate::term::{fail, runtime, wait_for_signal};

/// The demo files embedded in the binary.
const EMBEDDED: [(&str, &str); 3] = [
    ("demo.toml", include_str!("../config/demo.toml")),
    (
        "demo-admin-tokens.toml",
        include_str!("../config/demo-admin-tokens.toml"),
    ),
    (
        "demo-tenants.toml",
        include_str!("../config/demo-tenants.toml"),
    ),
];

/// Tenants the synthetic traffic uses.
const TENANTS: [&str; 6] = ["acme", "globex", "initech", "umbrella", "hooli", "stark"];
/// Paths the synthetic traffic uses.
const PATHS: [&str; 5] = [
    "/api/cards/42",
    "/api/invoices/7",
    "/api/users/me",
    "/api/search?q=switch",
    "/health",
];

/// Entry point of `switchyard demo`.
pub fn main(config: Option<PathBuf>, duration: Option<u64>, quiet: bool) -> ExitCode {
    crate::telemetry::init_logging();
    let config = match config.map(Ok).unwrap_or_else(demo_config) {
        Ok(path) => path,
        Err(error) => return fail(error),
    };
    let rules = match config::load_file(&config) {
        Ok(rules) => rules,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match runtime(rules.listen.workers) {
        Ok(rt) => rt,
        Err(error) => return fail(error),
    };
    rt.block_on(async move {
        for (name, spec) in &rules.upstreams {
            for origin in &spec.origins {
                let Some(addr) = loopback_addr(origin) else {
                    continue;
                };
                match TcpListener::bind(addr).await {
                    Ok(listener) => {
                        tokio::spawn(stand_in(listener, name.clone()));
                    }
                    Err(error) => {
                        return fail(format!(
                            "stand-in service {name} cannot listen on {addr}: {error}"
                        ));
                    }
                }
            }
        }
        let gateway = match Gateway::start(
            &config,
            Options {
                watch: true,
                ..Options::default()
            },
        )
        .await
        {
            Ok(g) => g,
            Err(error) => return fail(error),
        };
        print_tour(&gateway, &config);
        let traffic = (!quiet)
            .then(|| {
                gateway
                    .http
                    .map(|addr| tokio::spawn(synthetic_traffic(addr)))
            })
            .flatten();
        match duration {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => wait_for_signal().await,
        }
        if let Some(t) = traffic {
            t.abort();
        }
        println!("\nstopping: draining in-flight requests…");
        gateway.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// The embedded demo config could not be written out.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
struct DemoConfigError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

fn demo_config() -> Result<PathBuf, DemoConfigError> {
    let local = Path::new("config/demo.toml");
    if local.exists() {
        return Ok(local.to_path_buf());
    }
    let dir = std::env::temp_dir().join(format!("switchyard-demo-{}", std::process::id()));
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DemoConfigError { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(failed(&dir))?;
    for (name, text) in EMBEDDED {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(failed(&path))?;
    }
    Ok(dir.join("demo.toml"))
}

fn loopback_addr(origin: &http::Uri) -> Option<SocketAddr> {
    let host = origin.host()?;
    let port = origin.port_u16()?;
    let addr: SocketAddr = format!("{host}:{port}").parse().ok()?;
    addr.ip().is_loopback().then_some(addr)
}

fn print_tour(gateway: &Gateway, config: &Path) {
    let Some(http) = gateway.http else { return };
    let admin = gateway.admin;
    println!(
        r#"
Switchyard demo — rules from {config}
  gateway    http://{http}
  dashboard  http://{admin}/   (sign in with the read token: demo-read-token)
  metrics    http://{admin}/metrics

Try:
  curl -s -H 'x-tenant-id: acme'    http://{http}/api/cards/1     # acme is listed on new
  curl -s -H 'x-tenant-id: initech' http://{http}/api/cards/1     # initech is excluded: legacy
  curl -s -H 'x-tenant-id: umbrella' http://{http}/api/invoices/1 # kill switch: legacy
  curl -s -H 'x-tenant-id: umbrella' http://{http}/api/users/1    # tenant-wide cutover: new
  curl -si http://{http}/other | grep x-switchyard                 # no route: default upstream
  switchyard explain --config {config} -H 'x-tenant-id: globex' GET http://localhost/api/cards/1
  SWITCHYARD_ADMIN_TOKEN=demo-write-token switchyard rollout cards --tenant globex --side new --admin http://{admin}
  SWITCHYARD_ADMIN_TOKEN=demo-read-token switchyard report --route cards --admin http://{admin}

Edit {config} while this runs: the rules reload live. Ctrl-C stops.
"#,
        config = config.display()
    );
}

/// A stand-in service: answers every request with JSON naming itself. The `new` side differs
/// from `legacy` in a known way on cards (a renamed currency code on every 20th id), so the
/// shadow report has something real to show next to the noise (request ids, timestamps).
async fn stand_in(listener: TcpListener, name: String) {
    let name: Arc<str> = Arc::from(name);
    let counter = Arc::new(AtomicU64::new(0));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let name = name.clone();
        let counter = counter.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let name = name.clone();
                let n = counter.fetch_add(1, Ordering::Relaxed);
                async move { Ok::<_, Infallible>(stand_in_answer(&name, n, req).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn stand_in_answer(name: &str, n: u64, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let received = body
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    let path = parts.uri.path().to_string();
    let id: u64 = path
        .rsplit('/')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let currency = if name != "legacy" && id.is_multiple_of(20) {
        "usd"
    } else {
        "USD"
    };
    let doc = serde_json::json!({
        "served_by": name,
        "method": parts.method.as_str(),
        "path": path,
        "tenant": parts.headers.get("x-tenant-id").and_then(|v| v.to_str().ok()),
        "shadow": parts.headers.get("x-switchyard-shadow").is_some(),
        "received": received,
        // UUID-shaped, as many real services' ids are: the report then suggests ignoring it.
        "request_id": format!("{:08x}-0000-4000-8000-{:012x}", n as u32, rand::random::<u64>() & 0xffff_ffff_ffff),
        "generated_at": crate::clock::Clock::system().now_ms(),
        "card": { "id": id, "currency": currency, "limit": 1000, "tags": ["gold", "travel"] },
    });
    let mut response = Response::new(Full::new(Bytes::from(doc.to_string())));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// A few requests per second over the demo's tenants and routes.
async fn synthetic_traffic(gateway: SocketAddr) {
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    let mut i: usize = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let tenant = TENANTS[i % TENANTS.len()];
        let path = PATHS[(i / TENANTS.len() + i) % PATHS.len()];
        let uri = format!("http://{gateway}{path}").replace("42", &(i % 100).to_string());
        i = i.wrapping_add(1);
        let Ok(request) = Request::get(uri)
            .header("x-tenant-id", tenant)
            .body(Full::new(Bytes::new()))
        else {
            continue;
        };
        if let Ok(response) = client.request(request).await {
            let _ = response.into_body().collect().await;
        }
    }
}
