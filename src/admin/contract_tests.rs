//! The admin API's contract held by the real router: every answer of every non-shadow call
//! reads back into its type of [`crate::api`] — the one the admin client reads — and writes out
//! to the very same JSON, so the handlers and the client cannot drift apart (no field the type
//! drops, none it would add, `null` and absent kept apart). The keys of each answer are pinned
//! too: a key renamed, dropped or left out when empty is a change of the wire format.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{AdminState, router};
use crate::api::{
    AuditResponse, ChangedRules, ConfigText, ErrorBody, ErrorKind, FleetAnswer, GenerationAudit,
    GuardChangeResponse, GuardState, HistoryResponse, PushResponse, ReloadAudit, ReloadResponse,
    RollbackResponse, RolloutRequest, RolloutResponse, RolloutResult, RoutesResponse,
    StatusResponse, TextFrom,
};
use crate::clock::Clock;
use crate::config::source::Source;
use crate::live::{Live, ReloadOutcome};
use crate::rules::{RouteState, Side};
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::traffic::Traffic;

const WRITE: &str = "write-token-0123456789";
const READ: &str = "read-token-0123456789";

const CONFIG: &str = r#"
[listen]
http = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"
tokens_file = "tokens.toml"

[tenant]
sources = [{ header = "x-tenant-id" }]

[upstreams.legacy]
origins = ["http://127.0.0.1:9"]

[upstreams.cards]
origins = ["http://127.0.0.1:10"]

[default]
upstream = "legacy"

[tenants.umbrella]
side = "new"

[[routes]]
name = "cards"
path = ["/api/cards", "/api/cards/{*rest}"]
methods = ["GET", "POST"]
legacy = "legacy"
new = "cards"
tenants = ["acme"]
exclude = ["initech"]
percent = 12.5
shadow = { percent = 50 }

[[routes]]
name = "files"
path = "/api/files/{*rest}"
legacy = "legacy"
sticky = "header:x-user"
"#;

const TOKENS: &str = r#"
[tokens.ops]
role = "write"
secret = "write-token-0123456789"

[tokens.viewer]
role = "read"
secret = "read-token-0123456789"
"#;

/// The admin router on a config file in a temporary directory, with a store and some traffic.
struct Fixture {
    dir: tempfile::TempDir,
    state: Arc<AdminState>,
    router: Router,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gw.toml"), CONFIG).unwrap();
        std::fs::write(dir.path().join("tokens.toml"), TOKENS).unwrap();
        let (clock, _hand) = Clock::manual(1_700_000_000_000);
        let metrics = Arc::new(Metrics::new());
        let source = Source::file(&dir.path().join("gw.toml"));
        let fleet = crate::fleet::Fleet::new("r1".into(), &source, metrics.clone(), clock.clone());
        let live = Live::open(source, metrics.clone(), clock.clone())
            .await
            .unwrap();
        let store = Store::open("sqlite://admin.db", dir.path()).await.unwrap();
        let traffic = Arc::new(Traffic::new(clock.clone()));
        for (tenant, side, n) in [
            ("acme", Side::New, 3),
            ("globex", Side::Legacy, 2),
            ("t-1", Side::Legacy, 1),
        ] {
            for _ in 0..n {
                traffic.record("cards", side, Some(tenant));
            }
        }
        let guard = crate::guard::Guard::new(
            live.clone(),
            metrics.clone(),
            Some(store.clone()),
            clock.clone(),
            crate::guard::Lead::Single,
            "r1".into(),
        );
        let state = AdminState::new(live, Some(store), traffic, metrics, clock, fleet, guard);
        let router = router(state.clone());
        Fixture { dir, state, router }
    }

    /// Call the router; the status and the body as the client reads it (bytes → JSON).
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {bytes:?}"));
        (status, json)
    }

    /// A call that must succeed, read as `T`.
    async fn read<T: Serialize + DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> T {
        let (status, json) = self.call(method, path, WRITE, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {json}");
        round_trip(&json)
    }

    fn edit_config(&self, from: &str, to: &str) {
        let path = self.dir.path().join("gw.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from}");
        std::fs::write(path, text.replace(from, to)).unwrap();
    }
}

/// `json` read as `T`, which must write it out again unchanged.
fn round_trip<T: Serialize + DeserializeOwned>(json: &Value) -> T {
    let typed: T = serde_json::from_value(json.clone()).unwrap_or_else(|e| {
        panic!(
            "does not read as {}: {e}\n{json:#}",
            std::any::type_name::<T>()
        )
    });
    assert_eq!(
        serde_json::to_value(&typed).unwrap(),
        *json,
        "{} does not write back what it read",
        std::any::type_name::<T>()
    );
    typed
}

/// `json`'s keys, which must be `expected` (in any order).
fn assert_keys(json: &Value, expected: &[&str]) {
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {json}"))
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = expected.to_vec();
    keys.sort_unstable();
    expected.sort_unstable();
    assert_eq!(keys, expected, "{json}");
}

#[tokio::test]
async fn status_reads_as_status_response() {
    let f = Fixture::new().await;
    let (_, json) = f.call("GET", "/admin/status", READ, None).await;
    assert_keys(
        &json,
        &[
            "generation",
            "hash",
            "loaded_at",
            "trigger",
            "config",
            "replica",
            "source",
            "routes",
            "last_reload_error",
            "upstreams",
            "guards",
            "audit_store",
        ],
    );
    assert_eq!(json["last_reload_error"], Value::Null);
    let status: StatusResponse = f.read("GET", "/admin/status", None).await;
    assert_eq!((status.generation, status.routes), (1, 2));
    assert!(status.last_reload_error.is_none());
    assert_eq!(status.upstreams.len(), 2);

    // A rejected reload shows in the status, with its time.
    f.edit_config(
        "[[routes]]\nname = \"files\"",
        "[[routes]\nname = \"files\"",
    );
    let (code, _) = f.call("POST", "/admin/reload", WRITE, None).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let status: StatusResponse = f.read("GET", "/admin/status", None).await;
    let failure = status.last_reload_error.unwrap();
    assert!(failure.message.contains("gw.toml"), "{}", failure.message);
}

#[tokio::test]
async fn routes_read_as_routes_response() {
    let f = Fixture::new().await;
    let (_, json) = f.call("GET", "/admin/routes", READ, None).await;
    assert_keys(&json, &["generation", "routes", "tenant_sides"]);
    for route in json["routes"].as_array().unwrap() {
        assert_keys(
            route,
            &[
                "name",
                "paths",
                "methods",
                "salt",
                "sticky",
                "legacy",
                "new",
                "state",
                "percent",
                "tenants",
                "exclude",
                "cohorts",
                "tenants_on_new",
                "fallback",
                "shadow",
                "traffic",
                "busiest_tenants",
            ],
        );
        assert_keys(&route["tenants_on_new"], &["count", "tenants"]);
        assert_keys(&route["shadow"], &["on", "percent"]);
        assert_keys(&route["traffic"], &["1m", "15m", "1h"]);
        assert_keys(&route["traffic"]["1h"], &["legacy", "new", "new_share"]);
    }
    assert_keys(
        &json["routes"][0]["busiest_tenants"][0],
        &["tenant", "requests", "new", "error"],
    );
    let routes: RoutesResponse = f.read("GET", "/admin/routes", None).await;
    assert_eq!(routes.tenant_sides["umbrella"], Side::New);
    let cards = &routes.routes[0];
    assert_eq!(cards.rules.percent, 12.5);
    assert_eq!(cards.traffic.h1.new, 3);
    assert_eq!(cards.busiest_tenants[0].tenant, "acme");
    assert_eq!(cards.shadow.percent, Some(50.0));
    let files = &routes.routes[1];
    assert_eq!((files.new.as_deref(), files.methods.as_ref()), (None, None));
    assert_eq!(files.sticky.to_string(), "header:x-user");

    let one: RoutesResponse = f.read("GET", "/admin/routes?route=files", None).await;
    assert_eq!(one.routes.len(), 1);
}

#[tokio::test]
async fn rollouts_read_as_rollout_response() {
    let f = Fixture::new().await;
    // The body the admin client sends for `rollout cards --tenant globex --side new`.
    let request = RolloutRequest {
        route: Some("cards".into()),
        tenant: Some("globex".into()),
        side: Some(Side::New),
        reason: Some("pilot".into()),
        ..RolloutRequest::default()
    };
    let body = serde_json::to_value(&request).unwrap();
    let (_, json) = f.call("POST", "/admin/rollout", WRITE, Some(body)).await;
    assert_keys(
        &json,
        &[
            "result",
            "dry_run",
            "target",
            "generation",
            "previous_generation",
            "before",
            "after",
            "moves",
            "note",
            "audit_id",
        ],
    );
    assert_eq!(json["note"], Value::Null);
    assert_keys(&json["before"], &["state", "percent", "tenants", "exclude"]);
    assert_keys(
        &json["moves"][0],
        &[
            "route",
            "to_new_count",
            "to_legacy_count",
            "to_new",
            "to_legacy",
            "requests_1h",
            "moving_requests_1h",
            "share_1h",
            "basis",
        ],
    );
    let applied: RolloutResponse = round_trip(&json);
    assert_eq!(
        (applied.result, applied.generation),
        (RolloutResult::Applied, Some(2))
    );
    assert_eq!(applied.moves[0].to_new, ["globex"]);

    let dry: RolloutResponse = f
        .read(
            "POST",
            "/admin/rollout?dry_run=true",
            Some(json!({"route": "cards", "state": "legacy"})),
        )
        .await;
    assert_eq!((dry.result, dry.generation), (RolloutResult::DryRun, None));
    let Some(ChangedRules::Route(after)) = &dry.after else {
        panic!("route rules expected: {dry:?}")
    };
    assert_eq!(after.state, RouteState::Legacy);
    assert!(dry.moves[0].share_1h.is_some());

    let quiet: RolloutResponse = f
        .read(
            "POST",
            "/admin/rollout",
            Some(json!({"route": "files", "percent": 30})),
        )
        .await;
    assert!(quiet.moves[0].share_1h.is_none(), "no traffic on files");

    let tenant: RolloutResponse = f
        .read(
            "POST",
            "/admin/rollout",
            Some(json!({"scope": "tenant", "tenant": "hooli", "side": "new"})),
        )
        .await;
    let Some(ChangedRules::Tenant(before)) = &tenant.before else {
        panic!("tenant rules expected: {tenant:?}")
    };
    assert_eq!(before.side, None);
    let unchanged: RolloutResponse = f
        .read(
            "POST",
            "/admin/rollout",
            Some(json!({"scope": "tenant", "tenant": "hooli", "side": "new"})),
        )
        .await;
    assert_eq!(unchanged.result, RolloutResult::Unchanged);
}

#[tokio::test]
async fn reload_rollback_and_history_read_as_their_types() {
    let f = Fixture::new().await;
    let (_, json) = f.call("POST", "/admin/reload", WRITE, None).await;
    assert_keys(
        &json,
        &[
            "result",
            "generation",
            "hash",
            "previous_generation",
            "audit_id",
        ],
    );
    let same: ReloadResponse = round_trip(&json);
    assert!(matches!(same.outcome, ReloadOutcome::Unchanged { .. }));

    f.edit_config("tenants = [\"acme\"]", "tenants = [\"acme\", \"globex\"]");
    let applied: ReloadResponse = f
        .read("POST", "/admin/reload", Some(json!({"reason": "by hand"})))
        .await;
    assert_eq!(applied.outcome.generation(), 2);

    let back: RollbackResponse = f
        .read("POST", "/admin/rollback", Some(json!({"generation": 1})))
        .await;
    assert_eq!(
        (back.previous_generation, back.outcome.generation()),
        (2, 3)
    );

    let (_, json) = f.call("GET", "/admin/history", READ, None).await;
    assert_keys(&json, &["current", "generations"]);
    assert_keys(
        &json["generations"][0],
        &["generation", "hash", "loaded_at", "trigger"],
    );
    let history: HistoryResponse = round_trip(&json);
    assert_eq!(history.current, 3);
    let generations: Vec<u64> = history.generations.iter().map(|g| g.generation).collect();
    assert_eq!(generations, [3, 2, 1]);
}

#[tokio::test]
async fn audit_entries_and_their_documents_read_as_their_types() {
    let f = Fixture::new().await;
    let _: RolloutResponse = f
        .read(
            "POST",
            "/admin/rollout?dry_run=1",
            Some(json!({"route": "cards", "percent": 40, "reason": "what if"})),
        )
        .await;
    let _: RolloutResponse = f
        .read(
            "POST",
            "/admin/rollout",
            Some(json!({"scope": "tenant", "tenant": "hooli", "side": "legacy"})),
        )
        .await;
    f.edit_config("percent = 12.5", "percent = 20");
    let _: ReloadResponse = f.read("POST", "/admin/reload", None).await;
    let _: RollbackResponse = f
        .read("POST", "/admin/rollback", Some(json!({"generation": 1})))
        .await;

    let (_, json) = f.call("GET", "/admin/audit", READ, None).await;
    assert_keys(&json, &["entries"]);
    for entry in json["entries"].as_array().unwrap() {
        assert_keys(
            entry,
            &[
                "id",
                "at_ms",
                "token_name",
                "action",
                "target",
                "before",
                "after",
                "reason",
                "generation",
                "dry_run",
                "replica",
            ],
        );
    }
    let audit: AuditResponse = round_trip(&json);
    let actions: Vec<&str> = audit.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["rollback", "reload", "rollout", "rollout"]);
    for e in &audit.entries {
        match e.action.as_str() {
            "rollout" => {
                round_trip::<ChangedRules>(&e.before);
                round_trip::<ChangedRules>(&e.after);
            }
            _ => {
                assert_keys(&e.before, &["generation", "hash"]);
                round_trip::<GenerationAudit>(&e.before);
                let after: ReloadAudit = round_trip(&e.after);
                let restored = (e.action == "rollback").then_some(1);
                assert_eq!(after.restored, restored);
                let mut keys = vec!["result", "generation", "hash"];
                keys.extend(restored.map(|_| "restored"));
                assert_keys(&e.after, &keys);
            }
        }
    }
    let dry = &audit.entries[3];
    assert_eq!((dry.dry_run, dry.generation), (true, None));
    assert_keys(&json["entries"][2]["after"], &["tenant", "side"]);

    let filtered: AuditResponse = f
        .read("GET", "/admin/audit?action=rollout&limit=1", None)
        .await;
    assert_eq!(filtered.entries.len(), 1);
}

#[tokio::test]
async fn every_failure_reads_as_error_body() {
    let f = Fixture::new().await;
    let cases = [
        ("GET", "/admin/status", "unknown-token", None, 401),
        ("POST", "/admin/reload", READ, None, 403),
        ("GET", "/admin/nothing", READ, None, 404),
        ("GET", "/admin/routes?route=nope", READ, None, 404),
        (
            "POST",
            "/admin/rollout",
            WRITE,
            Some(json!({"route": "cards", "side": "up", "tenant": "a"})),
            400,
        ),
        (
            "POST",
            "/admin/rollout",
            WRITE,
            Some(json!({"route": "cards", "tenants_add": ["initech"]})),
            422,
        ),
        (
            "POST",
            "/admin/rollback",
            WRITE,
            Some(json!({"generation": 9})),
            404,
        ),
    ];
    for (method, path, token, body, status) in cases {
        let (code, json) = f.call(method, path, token, body).await;
        assert_eq!(code.as_u16(), status, "{method} {path}: {json}");
        let mut keys = vec!["error", "kind", "status"];
        keys.extend((status == 422).then_some("errors"));
        assert_keys(&json, &keys);
        let error: ErrorBody = round_trip(&json);
        assert_eq!(error.status, status);
        assert_eq!(
            error.errors.is_some(),
            error.kind == ErrorKind::InvalidConfig,
            "{json}"
        );
    }
    // Nothing above changed anything.
    assert_eq!(f.state.live.load().generation, 1);
}

#[tokio::test]
async fn fleet_and_config_calls_read_as_their_types() {
    let f = Fixture::new().await;
    let (_, json) = f.call("GET", "/admin/fleet", READ, None).await;
    assert_keys(
        &json,
        &[
            "source",
            "document",
            "replica",
            "newest_revision",
            "source_up",
            "error",
            "replicas",
        ],
    );
    let fleet: FleetAnswer = round_trip(&json);
    assert_eq!((fleet.source.as_str(), fleet.replicas.len()), ("file", 1));
    assert!(fleet.replicas[0].this);

    let (_, json) = f.call("GET", "/admin/config", READ, None).await;
    assert_keys(&json, &["revision", "text", "from", "in_force"]);
    let text: ConfigText = round_trip(&json);
    assert_eq!(text.from, TextFrom::Source);
    assert_eq!(text.in_force, Some(true));

    let edited = text
        .text
        .replace("tenants = [\"acme\"]", "tenants = [\"globex\"]");
    let pushed: PushResponse = f
        .read(
            "POST",
            "/admin/config",
            Some(json!({"text": edited, "reason": "push"})),
        )
        .await;
    assert_eq!(
        (pushed.previous_generation, pushed.outcome.generation()),
        (1, 2)
    );
    assert_eq!(pushed.replica, "r1");
    // A file has no past revisions to read.
    let (status, json) = f.call("GET", "/admin/config?revision=1", READ, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let _: ErrorBody = round_trip(&json);
}

#[tokio::test]
async fn guards_read_as_guard_status_and_their_calls_as_guard_change_response() {
    let f = Fixture::new().await;
    f.edit_config(
        "shadow = { percent = 50 }",
        "shadow = { percent = 50 }\nguard = { max_error_rate = 0.01, tripped = true }\nrollout = { steps = [12.5, 50, 100], bake = \"1h\" }",
    );
    let (code, json) = f.call("POST", "/admin/reload", WRITE, None).await;
    assert_eq!(code, StatusCode::OK, "{json}");
    let (_, json) = f.call("GET", "/admin/status", READ, None).await;
    let guard = &json["guards"][0];
    assert_keys(
        guard,
        &[
            "route", "state", "action", "evidence", "schedule", "driving",
        ],
    );
    assert_keys(
        &guard["schedule"],
        &[
            "steps",
            "step",
            "percent",
            "next_percent",
            "next_step_at_ms",
            "hold",
            "paused",
        ],
    );
    let status: StatusResponse = f.read("GET", "/admin/status", None).await;
    assert_eq!(status.guards[0].state, GuardState::Tripped);

    let body = serde_json::json!({"route": "cards", "reason": "fixed"});
    let (_, json) = f
        .call("POST", "/admin/guard/rearm", WRITE, Some(body.clone()))
        .await;
    assert_keys(
        &json,
        &[
            "route",
            "action",
            "changed",
            "generation",
            "before",
            "after",
            "audit_id",
        ],
    );
    let again: GuardChangeResponse = f.read("POST", "/admin/guard/rearm", Some(body)).await;
    assert!(!again.changed);
    let body = serde_json::json!({"route": "cards", "action": "pause"});
    let paused: GuardChangeResponse = f.read("POST", "/admin/schedule", Some(body)).await;
    assert_eq!(
        (paused.action.as_str(), paused.changed),
        ("schedule_pause", true)
    );
    let (code, json) = f
        .call(
            "POST",
            "/admin/schedule",
            READ,
            Some(serde_json::json!({"route": "cards", "action": "resume"})),
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{json}");
    let (code, json) = f
        .call(
            "POST",
            "/admin/schedule",
            WRITE,
            Some(serde_json::json!({"route": "files", "action": "resume"})),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{json}");
    let error: ErrorBody = round_trip(&json);
    assert_eq!(error.kind, ErrorKind::BadRequest);
}
