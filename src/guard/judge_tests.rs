use std::time::Duration;

use super::*;
use crate::rules::{GuardAction, Schedule};

fn policy() -> GuardPolicy {
    GuardPolicy {
        max_error_rate: Some(0.01),
        max_latency_ratio: Some(2.0),
        max_mismatch_rate: Some(0.02),
        window: Duration::from_secs(60),
        min_samples: 100,
        action: GuardAction::Legacy,
        tripped: false,
    }
}

fn reading(at_ms: i64, requests: u64, failed: u64) -> Reading {
    Reading {
        at_ms,
        new_requests: requests,
        new_failed: failed,
        new_timed: requests,
        new_nanos: requests * 1_000_000,
        legacy_timed: requests,
        legacy_nanos: requests * 1_000_000,
    }
}

#[test]
fn the_window_is_the_difference_from_its_base_reading() {
    let mut ring = Ring::default();
    ring.push(reading(0, 0, 0), 60_000);
    ring.push(reading(30_000, 500, 50), 60_000);
    ring.push(reading(60_000, 1000, 50), 60_000);
    assert_eq!(ring.delta().new_requests, 1000);
    // The failures of the first half-minute leave the window a minute later.
    ring.push(reading(90_000, 1500, 50), 60_000);
    assert_eq!(ring.delta().new_requests, 1000);
    assert_eq!(ring.delta().new_failed, 0);
    ring.clear();
    assert_eq!(ring.delta(), Reading::default());
}

#[test]
fn healthy_figures_hold_nothing() {
    let e = judge(
        &policy(),
        &reading(0, 1000, 5),
        Some(Parity {
            compared: 500,
            mismatched: 5,
        }),
    );
    assert!(e.breached.is_empty(), "{e:?}");
    assert_eq!(e.error_rate, Some(0.005));
    assert_eq!(e.latency_ratio, Some(1.0));
    assert_eq!(e.mismatch_rate, Some(0.01));
}

#[test]
fn each_threshold_trips_once_there_are_enough_samples() {
    let e = judge(&policy(), &reading(0, 1000, 20), None);
    assert_eq!(e.breached.len(), 1);
    assert_eq!(e.breached[0].figure, "error_rate");
    // Too few requests: the same rate judges nothing.
    assert!(
        judge(&policy(), &reading(0, 50, 20), None)
            .breached
            .is_empty()
    );

    let mut slow = reading(0, 1000, 0);
    slow.new_nanos *= 3;
    let e = judge(&policy(), &slow, None);
    assert_eq!(e.breached[0].figure, "latency_ratio");
    assert_eq!(e.latency_ratio, Some(3.0));

    let parity = Parity {
        compared: 200,
        mismatched: 10,
    };
    let e = judge(&policy(), &reading(0, 1000, 0), Some(parity));
    assert_eq!(e.breached[0].figure, "mismatch_rate");
    let few = Parity {
        compared: 20,
        mismatched: 10,
    };
    assert!(
        judge(&policy(), &reading(0, 1000, 0), Some(few))
            .breached
            .is_empty()
    );
}

fn route(percent_bp: u32, paused: bool, tripped: bool) -> (Route, Schedule) {
    let schedule = Schedule {
        steps_bp: vec![100, 500, 2500, 5000, 10_000],
        bake: Duration::from_secs(60),
        paused,
    };
    let mut guard = policy();
    guard.tripped = tripped;
    let text = "[listen]\nhttp = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[upstreams.legacy]\norigins = [\"http://127.0.0.1:1\"]\n[upstreams.new]\norigins = [\"http://127.0.0.1:2\"]\n[[routes]]\nname = \"cards\"\npath = \"/cards\"\nnew = \"new\"\n";
    let text = format!(
        "{text}percent = {}\nguard = {{ max_error_rate = 0.01, tripped = {tripped} }}\nrollout = {{ steps = [1, 5, 25, 50, 100], bake = \"1m\", paused = {paused} }}\n",
        f64::from(percent_bp) / 100.0
    );
    let mut rules = crate::config::load_str(&text, std::path::Path::new("gw.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let route = rules.routes.remove(0);
    assert_eq!(route.guard.as_ref().map(|g| g.tripped), Some(guard.tripped));
    assert_eq!(route.schedule.as_ref(), Some(&schedule));
    (route, schedule)
}

#[test]
fn a_schedule_bakes_then_advances_unless_held() {
    let (r, s) = route(500, false, false);
    assert_eq!(
        next_move(&r, &s, 0, 30_000, None),
        Move::Wait {
            due_ms: 60_000,
            to_bp: 2500
        }
    );
    assert_eq!(next_move(&r, &s, 0, 60_000, None), Move::Advance(2500));
    assert_eq!(
        next_move(&r, &s, 0, 60_000, Some(Verdict::InsufficientData)),
        Move::Advance(2500)
    );
    assert_eq!(
        next_move(&r, &s, 0, 60_000, Some(Verdict::NotReady)),
        Move::Hold("the shadow verdict is not_ready".into())
    );
    let (paused, s) = route(500, true, false);
    assert_eq!(
        next_move(&paused, &s, 0, 60_000, None),
        Move::Hold("paused".into())
    );
    let (tripped, s) = route(500, false, true);
    assert!(matches!(
        next_move(&tripped, &s, 0, 60_000, None),
        Move::Hold(_)
    ));
    let (mut aborted, s) = route(0, false, false);
    aborted.state = RouteState::Legacy;
    assert!(matches!(
        next_move(&aborted, &s, 0, 60_000, None),
        Move::Hold(_)
    ));
    let (done, s) = route(10_000, false, false);
    assert_eq!(next_move(&done, &s, 0, 60_000, None), Move::Done);
}
