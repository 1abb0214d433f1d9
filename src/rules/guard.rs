//! A route's automatic guard and progressive schedule, as compiled from its `guard` and
//! `rollout` tables. Only data: the evaluation lives in `crate::guard`, which applies what it
//! decides through the same edit pipeline as an operator, so these rules are also where a trip
//! or a pause is kept (`tripped`, `paused`).

use std::time::Duration;

/// What a tripped guard does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuardAction {
    /// Route state to `legacy`.
    Legacy,
    /// Hold the schedule.
    Pause,
}

impl GuardAction {
    pub fn as_str(self) -> &'static str {
        match self {
            GuardAction::Legacy => "legacy",
            GuardAction::Pause => "pause",
        }
    }

    pub fn parse(text: &str) -> Option<GuardAction> {
        match text {
            "legacy" => Some(GuardAction::Legacy),
            "pause" => Some(GuardAction::Pause),
            _ => None,
        }
    }
}

/// A route's `guard` table.
#[derive(Clone, Debug, PartialEq)]
pub struct GuardPolicy {
    /// Fraction 0..=1.
    pub max_error_rate: Option<f64>,
    /// New mean over legacy mean, ≥ 1.
    pub max_latency_ratio: Option<f64>,
    /// Fraction 0..=1 of compared requests with real differences.
    pub max_mismatch_rate: Option<f64>,
    pub window: Duration,
    pub min_samples: u64,
    pub action: GuardAction,
    /// Set by a trip, cleared by a re-arm.
    pub tripped: bool,
}

/// A route's `rollout` table.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// Basis points, strictly increasing, each in 1..=10000.
    pub steps_bp: Vec<u32>,
    pub bake: Duration,
    pub paused: bool,
}

impl Schedule {
    /// The step after `percent_bp`: the first one above it, `None` at or past the last.
    pub fn next_step(&self, percent_bp: u32) -> Option<u32> {
        self.steps_bp.iter().copied().find(|s| *s > percent_bp)
    }

    /// How many steps `percent_bp` has reached (0 before the first).
    pub fn reached(&self, percent_bp: u32) -> usize {
        self.steps_bp.iter().filter(|s| **s <= percent_bp).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_found_from_the_percent() {
        let s = Schedule {
            steps_bp: vec![100, 500, 2500, 10_000],
            bake: Duration::from_secs(60),
            paused: false,
        };
        assert_eq!(s.next_step(0), Some(100));
        assert_eq!(s.next_step(100), Some(500));
        assert_eq!(s.next_step(300), Some(500));
        assert_eq!(s.next_step(10_000), None);
        assert_eq!(s.reached(0), 0);
        assert_eq!(s.reached(2500), 3);
    }
}
