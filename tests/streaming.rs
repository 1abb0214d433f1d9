//! Bodies, upgrades, HTTP/2 and TLS through the real gateway.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use support::*;

#[tokio::test]
async fn websocket_echo_through_the_gateway() {
    // A tokio-tungstenite echo server as the upstream.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() || msg.is_binary() {
                        let _ = ws.send(msg).await;
                    }
                }
            });
        }
    });
    let url = format!("http://{addr}");
    let gw = TestGateway::start(&config(&url, &url, "")).await;
    let (mut ws, response) = tokio_tungstenite::connect_async(format!("ws://{}/ws", gw.http))
        .await
        .expect("websocket handshake through the gateway");
    assert_eq!(response.status(), 101);
    for i in 0..5 {
        ws.send(tokio_tungstenite::tungstenite::Message::text(format!(
            "hello {i}"
        )))
        .await
        .unwrap();
        let echo = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echo.into_text().unwrap().as_str(), format!("hello {i}"));
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn http2_cleartext_clients_are_served() {
    let legacy = Upstream::json("legacy").await;
    let gw = TestGateway::start(&config(&legacy.url(), &legacy.url(), "")).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<Bytes>>();
    let response = client
        .request(
            http::Request::get(gw.url("/h2"))
                .body(http_body_util::Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["served_by"], "legacy");
    gw.shutdown().await;
}

/// A test CA, a server certificate for 127.0.0.1/localhost signed by it, as PEM.
struct TestPki {
    ca: String,
    cert: String,
    key: String,
}

fn pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    TestPki {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

#[tokio::test]
async fn tls_termination_and_https_origin_with_a_test_ca() {
    let pki = pki();
    switchyard::tls::install_provider();
    // An https origin: a hyper server behind tokio-rustls with the test certificate.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), &pki.cert).unwrap();
    std::fs::write(dir.path().join("key.pem"), &pki.key).unwrap();
    let certified = switchyard::tls::load_certified_key(
        &dir.path().join("cert.pem"),
        &dir.path().join("key.pem"),
    )
    .unwrap();
    let server_config =
        switchyard::tls::server_config(switchyard::tls::CertResolver::new(certified));
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(|req| async move {
                    Ok::<_, std::convert::Infallible>(json_answer("tls-origin", req).await)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });

    let https_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = config(&format!("https://127.0.0.1:{}", origin.port()), "http://127.0.0.1:1", "")
        .replace(
            "http = \"127.0.0.1:0\"",
            &format!("http = \"127.0.0.1:0\"\nhttps = \"127.0.0.1:{https_port}\"\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\""),
        )
        .replace(
            "connect_timeout = \"500ms\"\ntimeout = \"2s\"\n\n[upstreams.cards]",
            "connect_timeout = \"500ms\"\ntimeout = \"2s\"\nca_file = \"ca.pem\"\n\n[upstreams.cards]",
        );
    let gw = TestGateway::start_with(
        &cfg,
        &[
            ("cert.pem", pki.cert.as_bytes()),
            ("key.pem", pki.key.as_bytes()),
            ("ca.pem", pki.ca.as_bytes()),
        ],
        false,
    )
    .await;
    let https = gw.gw().https.unwrap();

    // A client trusting the test CA, over TLS to the gateway, which goes https to the origin.
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &pki.ca).unwrap();
    let tls = switchyard::tls::client_config(Some(&ca_path)).unwrap();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_all_versions()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, http_body_util::Full<Bytes>>(connector);
    {
        let response = client
            .request(
                http::Request::get(format!("https://localhost:{}/secure", https.port()))
                    .body(http_body_util::Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            .expect("https request through the gateway");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.version(),
            http::Version::HTTP_2,
            "ALPN should pick h2"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["served_by"], "tls-origin");
        assert_eq!(doc["headers"]["x-forwarded-proto"], "https");
    }
    gw.shutdown().await;
}
