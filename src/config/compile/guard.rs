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
