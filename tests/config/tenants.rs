//! Tenant sources: header (with trusted proxies), host, path, cookie, JWT (HS256 and ES256 via
//! a JWKS generated here), ordering, id validation, and `unknown = "reject"`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;

use super::*;

fn with_sources(sources: &str) -> String {
    let route = "\n[[routes]]\nname = \"cards\"\npath = \"/api/cards/{*rest}\"\nnew = \"new\"\ntenants = [\"acme\"]\n";
    BASE.replace(
        "sources = [{ header = \"x-tenant-id\" }]",
        &format!("sources = [{sources}]"),
    ) + route
}

fn tenant(rules: &RuleSet, req: Req) -> Option<String> {
    req.decide(rules).tenant
}

#[test]
fn header_source() {
    let f = Fixture::new();
    let rules = f.rules(&with_sources("{ header = \"x-tenant-id\" }"));
    assert_eq!(
        tenant(&rules, Req::get("/api/cards/1").tenant("acme")),
        Some("acme".into())
    );
    assert_eq!(
        tenant(&rules, Req::get("/api/cards/1").tenant("  acme ")),
        Some("acme".into())
    );
    assert_eq!(
        tenant(&rules, Req::get("/api/cards/1").tenant("not valid")),
        None
    );
    assert_eq!(
        tenant(&rules, Req::get("/api/cards/1").tenant(&"a".repeat(129))),
        None
    );
    assert_eq!(tenant(&rules, Req::get("/api/cards/1")), None);
    // Unmatched requests still get their tenant, for logs.
    let out = Req::get("/elsewhere").tenant("acme").decide(&rules);
    assert_eq!(
        (out.tenant.as_deref(), out.reason),
        (Some("acme"), Reason::NoRoute)
    );
}

#[test]
fn header_source_behind_trusted_proxies() {
    let f = Fixture::new();
    let rules = f.rules(&with_sources(
        "{ header = \"x-tenant-id\", trusted_proxies = [\"10.0.0.0/8\", \"::1\"] }, { cookie = \"tenant\" }",
    ));
    let req = |peer: Option<&str>| {
        let r = Req::get("/api/cards/1")
            .tenant("acme")
            .header("cookie", "tenant=globex");
        match peer {
            Some(p) => r.peer(p),
            None => r,
        }
    };
    assert_eq!(tenant(&rules, req(Some("10.1.2.3"))), Some("acme".into()));
    assert_eq!(tenant(&rules, req(Some("::1"))), Some("acme".into()));
    // Not a trusted peer: the header is ignored and the next source answers.
    assert_eq!(
        tenant(&rules, req(Some("192.168.1.1"))),
        Some("globex".into())
    );
    assert_eq!(tenant(&rules, req(None)), Some("globex".into()));
}

#[test]
fn host_source() {
    let f = Fixture::new();
    let rules = f.rules(&with_sources("{ host = \"{tenant}.app.example.com\" }"));
    let host = |h: &str| tenant(&rules, Req::get("/api/cards/1").header("host", h));
    assert_eq!(host("acme.app.example.com"), Some("acme".into()));
    assert_eq!(host("ACME.App.Example.COM:8443"), Some("acme".into()));
    assert_eq!(host("a.b.app.example.com"), None, "one label only");
    assert_eq!(host("app.example.com"), None);
    assert_eq!(host("acme.other.com"), None);
    // HTTP/2 and absolute-form requests carry the host in the URI.
    assert_eq!(
        tenant(
            &rules,
            Req::get("http://globex.app.example.com/api/cards/1")
        ),
        Some("globex".into())
    );
}

#[test]
fn path_source() {
    let f = Fixture::new();
    let rules = f.rules(&with_sources("{ path = \"/t/{tenant}/\" }"));
    assert_eq!(
        tenant(&rules, Req::get("/t/acme/api/cards/1")),
        Some("acme".into())
    );
    assert_eq!(tenant(&rules, Req::get("/t/acme")), Some("acme".into()));
    assert_eq!(tenant(&rules, Req::get("/t/bad%20id/x")), None);
    assert_eq!(tenant(&rules, Req::get("/api/cards/1")), None);
}

#[test]
fn cookie_source() {
    let f = Fixture::new();
    let rules = f.rules(&with_sources("{ cookie = \"tenant\" }"));
    assert_eq!(
        tenant(
            &rules,
            Req::get("/api/cards/1").header("cookie", "a=b; tenant=acme")
        ),
        Some("acme".into())
    );
    assert_eq!(
        tenant(
            &rules,
            Req::get("/api/cards/1").header("cookie", "tenants=acme")
        ),
        None
    );
}

#[test]
fn sources_are_tried_in_order() {
    let f = Fixture::new();
    let rules = f.rules(&with_sources(
        "{ header = \"x-tenant-id\" }, { cookie = \"tenant\" }",
    ));
    let both = Req::get("/api/cards/1")
        .tenant("acme")
        .header("cookie", "tenant=globex");
    assert_eq!(tenant(&rules, both), Some("acme".into()));
    // An invalid id from the first source falls through to the next.
    let bad_first = Req::get("/api/cards/1")
        .tenant("bad id")
        .header("cookie", "tenant=globex");
    assert_eq!(tenant(&rules, bad_first), Some("globex".into()));
}

#[test]
fn unknown_reject_rejects_matched_routes_only() {
    let f = Fixture::new();
    let rules = f.rules(
        &with_sources("{ header = \"x-tenant-id\" }")
            .replace("[tenant]\n", "[tenant]\nunknown = \"reject\"\n"),
    );
    let out = Req::get("/api/cards/1").decide(&rules);
    assert!(out.rejected);
    assert_eq!(
        (out.reason, out.side, out.shadow),
        (Reason::UnknownTenant, Side::Legacy, None)
    );
    assert!(
        !Req::get("/api/cards/1")
            .tenant("acme")
            .decide(&rules)
            .rejected
    );
    // No route: the default upstream, as rule 1 says, tenant or not.
    let out = Req::get("/healthz").decide(&rules);
    assert!(!out.rejected);
    assert_eq!(out.reason, Reason::NoRoute);
}

// === JWT ===

const HS_SECRET: &str = "jwt-test-secret-0123456789";

fn hs_token(alg: Algorithm, claims: serde_json::Value) -> String {
    encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(HS_SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn jwt_rules(f: &Fixture, extra: &str) -> RuleSet {
    f.write("jwt.key", format!("{HS_SECRET}\n"));
    f.rules(&with_sources(&format!(
        "{{ jwt_claim = \"org\", header = \"authorization\", hs256_secret_file = \"jwt.key\"{extra} }}"
    )))
}

fn bearer(rules: &RuleSet, token: &str) -> Option<String> {
    tenant(
        rules,
        Req::get("/api/cards/1").header("authorization", &format!("Bearer {token}")),
    )
}

#[test]
fn jwt_hs256() {
    let f = Fixture::new();
    let rules = jwt_rules(&f, "");
    let now = unix_now();
    let valid = hs_token(Algorithm::HS256, json!({"org": "acme", "exp": now + 600}));
    assert_eq!(bearer(&rules, &valid), Some("acme".into()));
    let out = Req::get("/api/cards/1")
        .header("authorization", &format!("Bearer {valid}"))
        .decide(&rules);
    assert_eq!((out.side, out.reason), (Side::New, Reason::TenantListed));
    // Expired beyond the leeway.
    let expired = hs_token(Algorithm::HS256, json!({"org": "acme", "exp": now - 3600}));
    assert_eq!(bearer(&rules, &expired), None);
    // No exp at all.
    assert_eq!(
        bearer(&rules, &hs_token(Algorithm::HS256, json!({"org": "acme"}))),
        None
    );
    // Not yet valid.
    let early = hs_token(
        Algorithm::HS256,
        json!({"org": "acme", "exp": now + 7200, "nbf": now + 3600}),
    );
    assert_eq!(bearer(&rules, &early), None);
    // Forged: another secret.
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &json!({"org": "acme", "exp": now + 600}),
        &EncodingKey::from_secret(b"someone-else").unwrap(),
    )
    .unwrap();
    assert_eq!(bearer(&rules, &forged), None);
    // Tampered payload.
    let parts: Vec<&str> = valid.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(json!({"org": "globex", "exp": now + 600}).to_string());
    assert_eq!(
        bearer(&rules, &format!("{}.{payload}.{}", parts[0], parts[2])),
        None
    );
    // Wrong algorithm with the right secret: pinned to HS256.
    assert_eq!(
        bearer(
            &rules,
            &hs_token(Algorithm::HS384, json!({"org": "acme", "exp": now + 600}))
        ),
        None
    );
    // alg "none".
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    assert_eq!(
        bearer(&rules, &format!("{none_header}.{}.", parts[1])),
        None
    );
    // Claim missing, not a string, or not a valid tenant id.
    assert_eq!(
        bearer(
            &rules,
            &hs_token(Algorithm::HS256, json!({"sub": "x", "exp": now + 600}))
        ),
        None
    );
    assert_eq!(
        bearer(
            &rules,
            &hs_token(Algorithm::HS256, json!({"org": 7, "exp": now + 600}))
        ),
        None
    );
    assert_eq!(
        bearer(
            &rules,
            &hs_token(Algorithm::HS256, json!({"org": "a b", "exp": now + 600}))
        ),
        None
    );
    assert_eq!(bearer(&rules, "garbage"), None);
}

#[test]
fn jwt_expiry_follows_the_given_clock() {
    let f = Fixture::new();
    let rules = jwt_rules(&f, "");
    let token = hs_token(Algorithm::HS256, json!({"org": "acme", "exp": 1_000_000}));
    let req = Req::get("/api/cards/1").header("authorization", &format!("Bearer {token}"));
    let at = |secs: u64| {
        req.decide_at(&rules, UNIX_EPOCH + Duration::from_secs(secs))
            .tenant
    };
    assert_eq!(at(999_000), Some("acme".into()));
    assert_eq!(at(1_000_060), Some("acme".into()), "60 s leeway");
    assert_eq!(at(1_000_061), None);
}

#[test]
fn jwt_issuer_and_audience() {
    let f = Fixture::new();
    let rules = jwt_rules(
        &f,
        ", issuer = \"https://idp.example.com\", audience = \"switchyard\"",
    );
    let exp = unix_now() + 600;
    let ok = hs_token(
        Algorithm::HS256,
        json!({"org": "acme", "exp": exp, "iss": "https://idp.example.com", "aud": "switchyard"}),
    );
    assert_eq!(bearer(&rules, &ok), Some("acme".into()));
    let aud_list = hs_token(
        Algorithm::HS256,
        json!({"org": "acme", "exp": exp, "iss": "https://idp.example.com", "aud": ["x", "switchyard"]}),
    );
    assert_eq!(bearer(&rules, &aud_list), Some("acme".into()));
    for claims in [
        json!({"org": "acme", "exp": exp, "iss": "https://evil.example.com", "aud": "switchyard"}),
        json!({"org": "acme", "exp": exp, "iss": "https://idp.example.com", "aud": "other"}),
        json!({"org": "acme", "exp": exp, "aud": "switchyard"}),
        json!({"org": "acme", "exp": exp, "iss": "https://idp.example.com"}),
    ] {
        assert_eq!(
            bearer(&rules, &hs_token(Algorithm::HS256, claims.clone())),
            None,
            "{claims}"
        );
    }
}

#[test]
fn jwt_from_a_cookie() {
    let f = Fixture::new();
    f.write("jwt.key", HS_SECRET);
    let rules = f.rules(&with_sources(
        "{ jwt_claim = \"org\", cookie = \"session\", hs256_secret_file = \"jwt.key\" }",
    ));
    let token = hs_token(
        Algorithm::HS256,
        json!({"org": "acme", "exp": unix_now() + 60}),
    );
    assert_eq!(
        tenant(
            &rules,
            Req::get("/api/cards/1").header("cookie", &format!("session={token}"))
        ),
        Some("acme".into())
    );
}

/// An ES256 key pair: the PKCS#8 PEM (to sign) and its public JWK (to verify).
fn es256_key(kid: &str) -> (String, serde_json::Value) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = key.public_key_raw();
    assert_eq!((raw.len(), raw[0]), (65, 4), "uncompressed P-256 point");
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
    });
    (key.serialize_pem(), jwk)
}

fn es_token(pem: &str, kid: Option<&str>, claims: serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    encode(
        &header,
        &claims,
        &EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[test]
fn jwt_es256_with_jwks() {
    let f = Fixture::new();
    let (pem1, jwk1) = es256_key("k1");
    let (pem2, jwk2) = es256_key("k2");
    let (stranger, _) = es256_key("k1");
    // An encryption key and an unsupported key type are skipped, not fatal.
    let enc = json!({"kty": "RSA", "use": "enc", "kid": "e1", "n": "AQAB", "e": "AQAB"});
    f.write("jwks.json", json!({"keys": [jwk1, enc, jwk2]}).to_string());
    let rules = f.rules(&with_sources(
        "{ jwt_claim = \"org\", jwks = \"jwks.json\" }",
    ));
    let exp = unix_now() + 600;
    let claims = json!({"org": "acme", "exp": exp});
    assert_eq!(
        bearer(&rules, &es_token(&pem1, Some("k1"), claims.clone())),
        Some("acme".into())
    );
    assert_eq!(
        bearer(&rules, &es_token(&pem2, Some("k2"), claims.clone())),
        Some("acme".into())
    );
    // Signed by k2's key but naming k1; an unknown kid; no kid with several keys.
    assert_eq!(
        bearer(&rules, &es_token(&pem2, Some("k1"), claims.clone())),
        None
    );
    assert_eq!(
        bearer(&rules, &es_token(&pem1, Some("k9"), claims.clone())),
        None
    );
    assert_eq!(bearer(&rules, &es_token(&pem1, None, claims.clone())), None);
    // A key the JWKS does not hold.
    assert_eq!(
        bearer(&rules, &es_token(&stranger, Some("k1"), claims.clone())),
        None
    );
    // HS256 with the kid of an ES256 key: the key pins the algorithm.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let confused = encode(&header, &claims, &EncodingKey::from_secret(b"k1").unwrap()).unwrap();
    assert_eq!(bearer(&rules, &confused), None);
    // Expired.
    assert_eq!(
        bearer(
            &rules,
            &es_token(&pem1, Some("k1"), json!({"org": "acme", "exp": exp - 7200}))
        ),
        None
    );
}

#[test]
fn jwks_with_one_key_accepts_tokens_without_kid() {
    let f = Fixture::new();
    let (pem, jwk) = es256_key("only");
    f.write("jwks.json", json!({"keys": [jwk]}).to_string());
    let rules = f.rules(&with_sources(
        "{ jwt_claim = \"org\", jwks = \"jwks.json\" }",
    ));
    let token = es_token(&pem, None, json!({"org": "acme", "exp": unix_now() + 60}));
    assert_eq!(bearer(&rules, &token), Some("acme".into()));
}

#[test]
fn jwks_without_usable_keys_is_an_error() {
    let f = Fixture::new();
    f.write(
        "jwks.json",
        json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}).to_string(),
    );
    let err = f
        .load(&with_sources(
            "{ jwt_claim = \"org\", jwks = \"jwks.json\" }",
        ))
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("jwks.json:1:1: JWKS has no usable key"),
        "{err}"
    );
}
