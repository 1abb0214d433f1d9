//! The driver over a real config file, store and metrics, on a manual clock: trip, re-arm,
//! advance, hold, pause and abort, each applied through the edit pipeline. Time is a manual
//! clock: the store's connection pool keeps real (tokio) time.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::edit::RouteChange;
use crate::config::source::Source;
use crate::rules::{RouteState, Side};
use crate::store::AuditFilter;
use crate::telemetry::RouteMetrics;

const CONFIG: &str = r#"[listen]
http = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[upstreams.legacy]
origins = ["http://127.0.0.1:1"]
[upstreams.new]
origins = ["http://127.0.0.1:2"]
[store]
url = "sqlite://guard.db"

[[routes]]
name = "cards"
path = "/cards"
new = "new"
percent = 1 # first step
guard = { max_error_rate = 0.05, window = "1m", min_samples = 20 }
rollout = { steps = [1, 5, 25, 50, 100], bake = "10m" }
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    guard: Arc<Guard>,
    live: Arc<Live>,
    store: Store,
    metrics: Arc<Metrics>,
    handles: RouteMetrics,
    hand: Arc<crate::clock::ManualTime>,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gw.toml"), CONFIG).unwrap();
        let (clock, hand) = Clock::manual(1_800_000_000_000);
        let metrics = Arc::new(Metrics::new());
        let source = Source::file(&dir.path().join("gw.toml"));
        let live = Live::open(source, metrics.clone(), clock.clone())
            .await
            .unwrap();
        let store = Store::open("sqlite://guard.db", dir.path()).await.unwrap();
        let guard = Guard::new(
            live.clone(),
            metrics.clone(),
            Some(store.clone()),
            clock,
            Lead::Single,
            "r1".into(),
        );
        Fixture {
            _dir: dir,
            guard,
            live,
            store,
            metrics,
            handles: RouteMetrics::new("cards"),
            hand,
        }
    }

    fn serve(&self, side: Side, status: u16, n: usize) {
        for _ in 0..n {
            self.handles.observe(&self.metrics, side, status, 0.01);
        }
    }

    fn route(&self) -> (RouteState, u32, bool, bool) {
        let s = self.live.load();
        let r = s.rules.route("cards").unwrap();
        (
            r.state,
            r.percent_bp,
            r.guard.as_ref().unwrap().tripped,
            r.schedule.as_ref().unwrap().paused,
        )
    }

    async fn audit(&self) -> Vec<crate::store::AuditEntry> {
        self.store
            .list_audit(&AuditFilter::default())
            .await
            .unwrap()
    }

    async fn operator(&self, change: RouteChange) {
        let note = drive::AuditNote {
            who: "ops",
            action: "test",
            reason: None,
            evidence: None,
            forced: false,
            replica: "r1",
        };
        apply_change(&self.live, Some(&self.store), "cards", change, note)
            .await
            .unwrap();
    }
}

impl Fixture {
    fn advance(&self, by: Duration) {
        self.hand.advance(by);
    }

    async fn minutes(&self, n: u64) {
        self.advance(Duration::from_secs(60 * n));
    }
}

#[tokio::test]
async fn a_failing_new_side_trips_the_guard_back_to_legacy_with_evidence() {
    let f = Fixture::new().await;
    f.guard.tick().await;
    f.serve(Side::New, 200, 100);
    f.serve(Side::New, 500, 3);
    f.advance(Duration::from_secs(10));
    f.guard.tick().await;
    // 3 % failing: under the 5 % limit.
    assert_eq!(f.route(), (RouteState::Rollout, 100, false, false));
    f.serve(Side::New, 500, 10);
    f.advance(Duration::from_secs(10));
    f.guard.tick().await;
    assert_eq!(f.route(), (RouteState::Legacy, 100, true, false));
    let text = f.metrics.render();
    assert!(
        text.contains("switchyard_guard_tripped_total{route=\"cards\"} 1"),
        "{text}"
    );
    let audit = f.audit().await;
    let trip = audit.iter().find(|e| e.action == "guard_trip").unwrap();
    assert_eq!(trip.token_name, "guard");
    assert_eq!(trip.after["evidence"]["failed"], 13);
    assert_eq!(
        trip.after["evidence"]["breached"][0]["figure"],
        "error_rate"
    );
    assert_eq!(trip.after["rules"]["state"], "legacy");
    assert_eq!(f.live.load().trigger, crate::live::Trigger::Guard);
    let status = f.guard.status(&f.live.load());
    assert_eq!(status[0].state, crate::api::GuardState::Tripped);
    assert!(status[0].evidence.is_some());

    // Tripped: judges nothing, the schedule holds however long it waits.
    f.minutes(30).await;
    f.guard.tick().await;
    assert_eq!(f.route(), (RouteState::Legacy, 100, true, false));

    // Re-armed (and back in rollout): the failures from before are forgotten.
    f.operator(RouteChange {
        guard_tripped: Some(false),
        state: Some(RouteState::Rollout),
        ..RouteChange::default()
    })
    .await;
    f.guard.tick().await;
    f.serve(Side::New, 200, 50);
    f.advance(Duration::from_secs(10));
    f.guard.tick().await;
    assert_eq!(f.route(), (RouteState::Rollout, 100, false, false));
    assert_eq!(f.guard.status(&f.live.load())[0].state, GuardState::Armed);
}

#[tokio::test]
async fn a_clean_schedule_walks_to_100_one_bake_at_a_time() {
    let f = Fixture::new().await;
    f.guard.tick().await;
    f.minutes(9).await;
    f.guard.tick().await;
    assert_eq!(f.route().1, 100, "still baking");
    let status = f.guard.status(&f.live.load());
    let schedule = status[0].schedule.clone().unwrap();
    assert_eq!((schedule.step, schedule.next_percent), (1, Some(5.0)));
    assert!(schedule.next_step_at_ms.is_some());
    for expected in [500, 2500, 5000, 10_000] {
        f.minutes(10).await;
        f.serve(Side::New, 200, 30);
        f.guard.tick().await;
        assert_eq!(f.route().1, expected);
        // The bake starts again at each step.
        f.minutes(5).await;
        f.guard.tick().await;
        assert_eq!(f.route().1, expected);
    }
    f.minutes(60).await;
    f.guard.tick().await;
    assert_eq!(f.route(), (RouteState::Rollout, 10_000, false, false));
    let steps = f.audit().await;
    assert_eq!(
        steps.iter().filter(|e| e.action == "schedule_step").count(),
        4
    );
}

#[tokio::test]
async fn pause_and_abort_hold_the_schedule_and_resume_starts_a_new_bake() {
    let f = Fixture::new().await;
    f.guard.tick().await;
    f.operator(RouteChange {
        schedule_paused: Some(true),
        ..RouteChange::default()
    })
    .await;
    f.minutes(30).await;
    f.guard.tick().await;
    assert_eq!(f.route(), (RouteState::Rollout, 100, false, true));
    let status = f.guard.status(&f.live.load());
    assert_eq!(status[0].state, GuardState::Paused);
    assert_eq!(
        status[0].schedule.as_ref().unwrap().hold.as_deref(),
        Some("paused")
    );

    f.operator(RouteChange {
        schedule_paused: Some(false),
        ..RouteChange::default()
    })
    .await;
    f.guard.tick().await;
    f.minutes(9).await;
    f.guard.tick().await;
    assert_eq!(f.route().1, 100, "a resume bakes the step again");
    f.minutes(1).await;
    f.guard.tick().await;
    assert_eq!(f.route().1, 500);

    // Abort: legacy, back to the start, paused.
    f.operator(RouteChange {
        schedule_paused: Some(true),
        state: Some(RouteState::Legacy),
        percent: Some(0.0),
        ..RouteChange::default()
    })
    .await;
    f.minutes(60).await;
    f.guard.tick().await;
    assert_eq!(f.route(), (RouteState::Legacy, 0, false, true));
}
