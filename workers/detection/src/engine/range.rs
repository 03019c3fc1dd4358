//! The range guard's calibration for request features: how far beyond its own recent noise
//! a feature must lie before the guard flags it whatever the threshold.

use serde::{Deserialize, Serialize};

use crate::engine::model::ModelConfig;
use crate::engine::threshold::tail_quantile;

/// The share of a guarded excess the range takes in (chosen on NAB's tuning half among
/// 0.25, 0.5 and 0.75).
pub const DEFAULT_WIDENING: f64 = 0.5;

/// Widens `[lo, hi]` toward every value of `x` beyond it by `share` of its excess.
pub fn widen_toward(lo: &mut [f64], hi: &mut [f64], x: &[f64], share: f64) {
    for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(x) {
        if v > *h {
            *h += (v - *h) * share;
        } else if v < *l {
            *l -= (*l - v) * share;
        }
    }
}

/// How the range guard of per-request features is calibrated. A p99 over twenty night-time
/// requests is far noisier than over two thousand at noon, which no fixed z knows: such a
/// feature's guard z is the largest of `z_guard`, the largest of its recent out-of-sample
/// deviations and their exponential tail extrapolated to `rate`, so it guards only beyond
/// what the feature recently did by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardTail {
    /// Per-window probability the guard z is extrapolated to.
    pub rate: f64,
    /// Scored windows a calibrated feature needs before its guard acts.
    pub min_windows: usize,
    /// Per base feature: whether it is calibrated.
    pub features: Vec<bool>,
}

impl GuardTail {
    /// The calibration of `features` for windows `hop_ms` apart: the guard may flag about
    /// `alerts_per_week` windows per key and week on its own (see
    /// [`guard_alerts_per_week`](crate::engine::guard_alerts_per_week)), split over the
    /// features; a calibrated feature waits `wait` scored windows, or by default a day of
    /// them (at most `history`, at least `guard_min_windows`): every hour's deviations once, so
    /// a latency spike in a detector's first week is guarded too (waiting a week missed three
    /// of them on the development schedules, and saved 6 false alerts in 200 key-weeks).
    pub fn new(
        features: &[String],
        hop_ms: i64,
        model: &ModelConfig,
        wait: Option<usize>,
        alerts_per_week: f64,
    ) -> Self {
        let windows_per_week = crate::engine::seasonal::WEEK_MS as f64 / hop_ms.max(1) as f64;
        let dims = features.len().max(1) as f64;
        let day = ((crate::engine::seasonal::DAY_MS as f64 / hop_ms.max(1) as f64).ceil() as usize)
            .min(model.history)
            .max(model.guard_min_windows);
        Self {
            rate: alerts_per_week / windows_per_week / dims,
            min_windows: wait.unwrap_or(day),
            features: features
                .iter()
                .map(|f| crate::features::per_request(f))
                .collect(),
        }
    }

    /// Whether feature `j` is calibrated.
    pub fn calibrates(&self, j: usize) -> bool {
        self.features.get(j).copied().unwrap_or(false)
    }

    /// Whether any feature is calibrated (else no deviations need recording).
    pub fn any(&self) -> bool {
        self.features.iter().any(|&c| c)
    }

    /// The guard z of feature `j` given its recent out-of-sample deviations `deviations` (in
    /// raw units; flagged windows included: the training history leaves them out, so its tail
    /// would be too thin) and today's `scale`: a value is guarded only beyond all of them and
    /// beyond their tail's extrapolation to `rate`, and never below `z_guard`. An uncalibrated
    /// feature guards at `z_guard`.
    pub fn guard_z(
        &self,
        j: usize,
        deviations: impl Iterator<Item = f64>,
        scale: f64,
        z_guard: f64,
    ) -> f64 {
        if !self.calibrates(j) {
            return z_guard;
        }
        let z: Vec<f64> = deviations.map(|d| d / scale).collect();
        let most = z.iter().copied().fold(0.0, f64::max);
        tail_quantile(&z, self.rate).map_or(z_guard, |q| q.max(most).max(z_guard))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::Algorithm;

    #[test]
    fn a_guarded_value_widens_the_range_by_its_share() {
        let (mut lo, mut hi) = (vec![0.0, 0.0, 0.0], vec![10.0, 10.0, 10.0]);
        widen_toward(&mut lo, &mut hi, &[30.0, -10.0, 5.0], 0.5);
        assert_eq!((lo, hi), (vec![0.0, -5.0, 0.0], vec![20.0, 10.0, 10.0]));
        let (mut lo, mut hi) = (vec![0.0], vec![10.0]);
        widen_toward(&mut lo, &mut hi, &[30.0], 0.0);
        assert_eq!(hi, vec![10.0], "share 0 learns nothing");
    }

    #[test]
    fn request_features_calibrate_and_gauges_keep_the_fixed_z() {
        let f = ["event_count", "p99_latency", "metrics.cpu"].map(String::from);
        let g = GuardTail::new(
            &f,
            300_000,
            &ModelConfig::defaults(Algorithm::RobustForest, &f),
            None,
            crate::engine::GUARD_ALERTS_PER_WEEK,
        );
        assert_eq!(g.features, [true, true, false]);
        assert!(g.any());
        // One guard alert per key and week, split over three features of 2016 windows a week.
        assert!((g.rate - 1.0 / 2016.0 / 3.0).abs() < 1e-12, "{}", g.rate);
        // Guarding after a day of 5-minute windows.
        assert_eq!(g.min_windows, 288);
        // The gauge: the fixed z whatever its deviations.
        assert_eq!(g.guard_z(2, [100.0, 200.0].into_iter(), 1.0, 3.0), 3.0);
        // Too few deviations to fit a tail: the fixed z.
        assert_eq!(g.guard_z(1, [1.0, 2.0].into_iter(), 1.0, 3.0), 3.0);
    }

    #[test]
    fn the_guards_rate_follows_the_stated_alert_budget() {
        use crate::engine::threshold::ThresholdRule;
        use crate::engine::{GUARD_ALERTS_PER_WEEK, guard_alerts_per_week};
        let budget = |w| ThresholdRule::Budget {
            false_alerts_per_week: w,
        };
        assert_eq!(guard_alerts_per_week(budget(0.25)), 0.25);
        assert_eq!(guard_alerts_per_week(budget(3.0)), 3.0);
        assert_eq!(
            guard_alerts_per_week(ThresholdRule::Score(0.7)),
            GUARD_ALERTS_PER_WEEK
        );
        assert_eq!(
            guard_alerts_per_week(ThresholdRule::Contamination(0.01)),
            GUARD_ALERTS_PER_WEEK
        );
        let f = ["event_count", "p99_latency"].map(String::from);
        let model = ModelConfig::defaults(Algorithm::RobustForest, &f);
        let quiet = GuardTail::new(&f, 300_000, &model, None, 0.25);
        let loud = GuardTail::new(&f, 300_000, &model, None, 3.0);
        assert!(
            (quiet.rate - 0.25 / 2016.0 / 2.0).abs() < 1e-12,
            "{}",
            quiet.rate
        );
        // A lower rate extrapolates the same deviations further: a higher guard z.
        let devs = || (0..500).map(|i| f64::from(i % 50) * 0.1);
        assert!(quiet.guard_z(0, devs(), 1.0, 3.0) > loud.guard_z(0, devs(), 1.0, 3.0));
    }

    #[test]
    fn a_calibrated_z_is_beyond_every_recent_deviation_and_never_below_the_fixed_one() {
        let f = ["p99_latency"].map(String::from);
        let g = GuardTail::new(
            &f,
            300_000,
            &ModelConfig::defaults(Algorithm::RobustForest, &f),
            None,
            crate::engine::GUARD_ALERTS_PER_WEEK,
        );
        // Deviations 0..=99 in scales of 2: beyond the largest (49.5 scales).
        let z = g.guard_z(0, (0..100).map(f64::from), 2.0, 3.0);
        assert!(z >= 49.5, "{z}");
        // Tiny deviations: the fixed z holds.
        let z = g.guard_z(0, (0..100).map(|i| f64::from(i) * 1e-3), 1.0, 3.0);
        assert_eq!(z, 3.0);
    }
}
