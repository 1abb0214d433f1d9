//! Shared pieces of the admin API tests: a gateway with admin tokens, authenticated calls.
#![allow(dead_code)]

use serde_json::Value;
use sha2::Digest;
use switchyard::gateway::{Gateway, Options};

use crate::support::{self, Answer, TestGateway, Upstream};

/// The write token `ops` (plain secret in the tokens file).
pub const WRITE: &str = "write-token-0123456789";
/// The read token `viewer` (only its sha256 is in the tokens file).
pub const READ: &str = "read-token-0123456789";

/// The tokens file: one plain secret, one by digest.
pub fn tokens_file() -> String {
    let digest = hex::encode(sha2::Sha256::digest(READ.as_bytes()));
    format!(
        "# admin tokens\n[tokens.ops]\nrole = \"write\"\nsecret = \"{WRITE}\"\n\n\
         [tokens.viewer]\nrole = \"read\"\nsecret_sha256 = \"{digest}\"\n"
    )
}

/// The harness config with a tokens file, a comment on the first line and one on `exclude`.
pub fn admin_config(legacy: &str, new: &str, admin_extra: &str, tail: &str) -> String {
    let text = support::config(legacy, new, "").replace(
        "debug_headers = true\n",
        &format!("debug_headers = true\ntokens_file = \"tokens.toml\"\n{admin_extra}\n"),
    );
    let text = text.replace(
        "exclude = [\"initech\"]\n",
        "exclude = [\"initech\"]  # held back\n",
    );
    format!("# keep-this-comment\n{text}\n{tail}\n")
}

/// Upstreams `legacy` and `cards` and a gateway with admin tokens in front of them.
pub async fn admin_gateway(admin_extra: &str, tail: &str) -> (TestGateway, Upstream, Upstream) {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let text = admin_config(&legacy.url(), &new.url(), admin_extra, tail);
    let tokens = tokens_file();
    let gw = TestGateway::start_with(&text, &[("tokens.toml", tokens.as_bytes())], false).await;
    (gw, legacy, new)
}

/// Call the admin API; a `Null` body sends none.
pub async fn admin(
    gw: &TestGateway,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Answer {
    let url = format!("http://{}{path}", gw.gw().admin);
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth.as_str()));
    }
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    support::send(method, &url, &headers, body).await
}

/// Stop the gateway and start a new process-worth of it on the same config file.
pub async fn restart(gw: &mut TestGateway) {
    if let Some(old) = gw.gateway.take() {
        old.shutdown().await;
    }
    let fresh = Gateway::start(&gw.config, Options::default())
        .await
        .unwrap();
    gw.http = fresh.http.unwrap();
    gw.gateway = Some(fresh);
}
