//! `switchyard demo` end to end: the real binary, stand-in services, a request through it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn demo_serves_its_tour_and_stops_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, admin, legacy, new) = (free_port(), free_port(), free_port(), free_port());
    for name in ["demo.toml", "demo-admin-tokens.toml", "demo-tenants.toml"] {
        let text = std::fs::read_to_string(format!("config/{name}")).unwrap();
        let text = text
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{gw}"))
            .replace("127.0.0.1:9901", &format!("127.0.0.1:{admin}"))
            .replace("127.0.0.1:8001", &format!("127.0.0.1:{legacy}"))
            .replace("127.0.0.1:8002", &format!("127.0.0.1:{new}"));
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["demo", "--duration", "4", "--config"])
        .arg(dir.path().join("demo.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
            .join("\n")
    });
    let url = format!("http://127.0.0.1:{gw}/api/cards/1");
    let served = support::eventually(Duration::from_secs(3), || {
        let url = url.clone();
        async move {
            tokio::time::timeout(Duration::from_millis(500), async {
                let request = http::Request::get(&url)
                    .header("x-tenant-id", "acme")
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap();
                support::client()
                    .request(request)
                    .await
                    .is_ok_and(|r| r.status() == 200)
            })
            .await
            .unwrap_or(false)
        }
    })
    .await;
    assert!(served, "the demo gateway did not serve");
    let answer = support::get(&url, &[("x-tenant-id", "acme")]).await;
    assert_eq!(answer.served_by(), "new");
    let status = child.wait().unwrap();
    assert!(status.success(), "demo exited with {status}");
    let out = lines.join().unwrap();
    assert!(out.contains(&format!("http://127.0.0.1:{gw}")), "{out}");
    assert!(out.contains("curl -s -H 'x-tenant-id: acme'"), "{out}");
}
