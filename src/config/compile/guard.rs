//! A route's `guard` and `rollout` tables → [`GuardPolicy`] and [`Schedule`].

use std::time::Duration;

use toml::Spanned;

use super::Cx;
use crate::config::file::{RawGuard, RawSchedule};
use crate::rules::{GuardAction, GuardPolicy, Schedule};

/// Default window of a guard.
const DEFAULT_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Default bake period of a schedule.
const DEFAULT_BAKE: Duration = Duration::from_secs(30 * 60);
/// Default samples a guard window needs before it judges.
const DEFAULT_MIN_SAMPLES: i64 = 200;

/// Compile a route's `guard`. `has_new` and `has_shadow` say what the route can measure.
pub(super) fn guard(
    cx: &mut Cx<'_>,
    raw: &Spanned<RawGuard>,
    has_new: bool,
    has_shadow: bool,
) -> Option<GuardPolicy> {
    let g = raw.get_ref();
    if !has_new {
        cx.diag
            .at(raw.span(), "`guard` needs a route with a `new` upstream");
    }
    if g.max_error_rate.is_none() && g.max_latency_ratio.is_none() && g.max_mismatch_rate.is_none()
    {
        cx.diag.at(
            raw.span(),
            "`guard` needs at least one of max_error_rate, max_latency_ratio, max_mismatch_rate",
        );
    }
    if let Some(m) = &g.max_mismatch_rate
        && !has_shadow
    {
        cx.diag.at(
            m.span(),
            "`max_mismatch_rate` needs the route's `shadow` table",
        );
    }
    let max_error_rate = fraction(cx, g.max_error_rate.as_ref(), "max_error_rate");
    let max_mismatch_rate = fraction(cx, g.max_mismatch_rate.as_ref(), "max_mismatch_rate");
    let max_latency_ratio = g.max_latency_ratio.as_ref().and_then(|v| {
        let r = *v.get_ref();
        if r.is_finite() && r >= 1.0 {
            Some(r)
        } else {
            cx.diag.at(
                v.span(),
                format!(
                    "max_latency_ratio must be at least 1 (new no slower than legacy), got {r}"
                ),
            );
            None
        }
    });
    let action = match &g.action {
        None => GuardAction::Legacy,
        Some(v) => GuardAction::parse(v.get_ref()).unwrap_or_else(|| {
            cx.diag.at(
                v.span(),
                format!(
                    "guard `action` must be \"legacy\" or \"pause\", got {:?}",
                    v.get_ref()
                ),
            );
            GuardAction::Legacy
        }),
    };
    let policy = GuardPolicy {
        max_error_rate,
        max_latency_ratio,
        max_mismatch_rate,
        window: cx.duration(g.window.as_ref(), DEFAULT_WINDOW),
        min_samples: cx.int(
            g.min_samples.as_ref(),
            DEFAULT_MIN_SAMPLES,
            1..=1_000_000_000,
            "guard min_samples",
        ) as u64,
        action,
        tripped: g.tripped.unwrap_or(false),
    };
    has_new.then_some(policy)
}

fn fraction(cx: &mut Cx<'_>, v: Option<&Spanned<f64>>, what: &str) -> Option<f64> {
    let v = v?;
    let f = *v.get_ref();
    if f.is_finite() && (0.0..=1.0).contains(&f) {
        Some(f)
    } else {
        cx.diag.at(
            v.span(),
            format!("{what} is a fraction from 0 to 1 (0.01 = 1 %), got {f}"),
        );
        None
    }
}

/// Compile a route's `rollout` schedule.
pub(super) fn schedule(
    cx: &mut Cx<'_>,
    raw: &Spanned<RawSchedule>,
    has_new: bool,
) -> Option<Schedule> {
    let s = raw.get_ref();
    if !has_new {
        cx.diag
            .at(raw.span(), "`rollout` needs a route with a `new` upstream");
    }
    let mut steps_bp: Vec<u32> = Vec::new();
    match &s.steps {
        None => cx.diag.at(
            raw.span(),
            "`rollout` needs `steps`, such as [1, 5, 25, 50, 100]",
        ),
        Some(list) if list.get_ref().is_empty() => {
            cx.diag.at(list.span(), "`rollout` `steps` is empty")
        }
        Some(list) => {
            for step in list.get_ref() {
                let bp = cx.percent(Some(step), 0);
                if bp == 0 {
                    cx.diag.at(step.span(), "a rollout step must be above 0");
                } else if steps_bp.last().is_some_and(|last| *last >= bp) {
                    cx.diag
                        .at(step.span(), "rollout `steps` must be strictly increasing");
                } else {
                    steps_bp.push(bp);
                }
            }
        }
    }
    let schedule = Schedule {
        steps_bp,
        bake: cx.duration(s.bake.as_ref(), DEFAULT_BAKE),
        paused: s.paused.unwrap_or(false),
    };
    (has_new && !schedule.steps_bp.is_empty()).then_some(schedule)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    const BASE: &str = "[listen]\nhttp = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[upstreams.legacy]\norigins = [\"http://127.0.0.1:1\"]\n[upstreams.new]\norigins = [\"http://127.0.0.1:2\"]\n[[routes]]\nname = \"cards\"\npath = \"/cards\"\n";

    fn errors(route: &str) -> String {
        match crate::config::load_str(&format!("{BASE}{route}"), Path::new("gw.toml")) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn guards_and_schedules_compile_with_their_defaults() {
        let text = format!(
            "{BASE}new = \"new\"\nguard = {{ max_error_rate = 0.01 }}\nrollout = {{ steps = [1, 5, 25, 50, 100] }}\n"
        );
        let rules = crate::config::load_str(&text, Path::new("gw.toml")).unwrap();
        let route = &rules.routes[0];
        let guard = route.guard.as_ref().unwrap();
        assert_eq!(guard.window, super::DEFAULT_WINDOW);
        assert_eq!(guard.min_samples, 200);
        assert_eq!(guard.action, crate::rules::GuardAction::Legacy);
        assert!(!guard.tripped);
        let schedule = route.schedule.as_ref().unwrap();
        assert_eq!(schedule.steps_bp, [100, 500, 2500, 5000, 10_000]);
        assert_eq!(schedule.bake, super::DEFAULT_BAKE);
    }

    #[test]
    fn mistakes_are_errors_at_their_position() {
        let e = errors("guard = { max_error_rate = 0.01 }\n");
        assert!(
            e.contains("gw.toml:12:9: `guard` needs a route with a `new` upstream"),
            "{e}"
        );
        let e = errors("new = \"new\"\nguard = { window = \"1m\" }\n");
        assert!(e.contains("needs at least one of max_error_rate"), "{e}");
        let e = errors("new = \"new\"\nguard = { max_error_rate = 5 }\n");
        assert!(
            e.contains("max_error_rate is a fraction from 0 to 1"),
            "{e}"
        );
        let e = errors("new = \"new\"\nguard = { max_latency_ratio = 0.5 }\n");
        assert!(e.contains("max_latency_ratio must be at least 1"), "{e}");
        let e = errors("new = \"new\"\nguard = { max_mismatch_rate = 0.1 }\n");
        assert!(
            e.contains("`max_mismatch_rate` needs the route's `shadow` table"),
            "{e}"
        );
        let e = errors("new = \"new\"\nguard = { max_error_rate = 0.1, action = \"panic\" }\n");
        assert!(
            e.contains("guard `action` must be \"legacy\" or \"pause\""),
            "{e}"
        );
        let e = errors("new = \"new\"\nrollout = { steps = [5, 1] }\n");
        assert!(e.contains("strictly increasing"), "{e}");
        let e = errors("new = \"new\"\nrollout = { steps = [0, 5] }\n");
        assert!(e.contains("a rollout step must be above 0"), "{e}");
        let e = errors("new = \"new\"\nrollout = { bake = \"1h\" }\n");
        assert!(e.contains("`rollout` needs `steps`"), "{e}");
        let e = errors("new = \"new\"\nrollout = { steps = [1], pace = \"1h\" }\n");
        assert!(e.contains("pace"), "{e}");
    }
}
