//! The drop guard: a sustained fall of the request count below its seasonal baseline flags a
//! window whatever the threshold. A silent outage at peak (no errors, normal latency) keeps
//! the count inside the range seen at night, so the range guard never sees it, and the
//! forest and the likelihood rise only slowly on one feature of five; yet the count is the
//! feature whose seasonal residual says it plainly.
//!
//! Statistic: the mean of the last `span` signed residuals of the count ([`residual`]), each
//! the larger of the fall below `typical(hour)` and below `median(last local_window windows)`,
//! so only a fall that is both unseasonal and sudden counts (a level that drifted for hours,
//! or a noisy slot of a one-week profile, does not). Residuals are in Poisson units
//! (`2√x − 2√typical`, unit variance for a Poisson count whatever its level), so a quiet
//! weekend hour and a busy weekday peak are judged on one scale: in raw counts the tail of a
//! busy key's peak hours would hide any drop at 30 requests a window.
//! Limit: the exponential tail of that statistic's recent out-of-sample values, extrapolated
//! to `rate` per window, and never less than `z_guard` Poisson units. A statistic resting on a
//! window the core flagged (by any guard or by the model) stays out of the record: an outage
//! the model caught must not teach the guard that outages are normal. It acts on a seasonal
//! profile (hour of day in the first week, hour of week after), `min_windows` after that
//! profile starts; when the profile changes the record starts again and the old limit stays
//! in force until the new one is calibrated (a drop on the day of the switch still pages). On
//! the daily profile a weekend is below every weekday slot, but it falls slowly: the local
//! term of the residual keeps it out, so a drop in the first week pages too.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::engine::tail_record::TailRecord;

/// Signed residuals averaged: three 5-minute windows page a drop within 2 windows while one
/// noisy window does not.
pub const DROP_SPAN: usize = 3;

/// Settings of the drop guard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropGuardConfig {
    /// Index of the count feature among the base features.
    pub feature: usize,
    /// Signed residuals averaged (0 = guard off).
    pub span: usize,
    /// Per-window probability the limit is extrapolated to.
    pub rate: f64,
    /// Windows of a profile recorded before the guard acts.
    pub min_windows: usize,
    /// Most statistics kept for the calibration.
    pub keep: usize,
}

impl DropGuardConfig {
    /// The guard of `event_count` when `features` has it (`None` otherwise), at `rate` per
    /// window, acting after `min_windows` and keeping `keep` statistics.
    pub fn for_features(
        features: &[String],
        rate: f64,
        min_windows: usize,
        keep: usize,
    ) -> Option<Self> {
        let feature = features.iter().position(|f| f == "event_count")?;
        Some(Self {
            feature,
            span: DROP_SPAN,
            rate,
            min_windows,
            keep: keep.max(min_windows),
        })
    }
}

/// The signed residual of count `v` in Poisson units: the larger (less negative) of
/// `2√v − 2√slot` (unseasonal) and `2√v − 2√local` (sudden).
pub fn residual(v: f64, slot: f64, local: f64) -> f64 {
    let r = |c: f64| 2.0 * c.max(0.0).sqrt();
    (r(v) - r(slot)).max(r(v) - r(local))
}

/// Drop-guard state of one key.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DropState {
    /// The last `span` signed residuals.
    recent: VecDeque<f64>,
    /// Whether the core flagged each of the last `span` windows.
    flags: VecDeque<bool>,
    /// Out-of-sample `−mean` of the residuals (larger = deeper drop) of unflagged windows.
    tail: TailRecord,
}

impl DropState {
    /// Starts a new seasonal period: residuals of the old one do not calibrate it, but its
    /// limit stays in force until the new record is long enough.
    pub fn restart(&mut self) {
        let limit = self.tail.limit();
        *self = Self::default();
        self.tail.carry(limit);
    }

    /// Checks one window's signed residual `dev` of the count (`seasonal`: a seasonal profile
    /// is in use, else the guard waits): whether the guard flags it. Flagged needs the window
    /// itself below its baseline.
    pub fn check(&mut self, cfg: &DropGuardConfig, dev: f64, seasonal: bool) -> bool {
        self.tail.skip();
        if cfg.span == 0 || !seasonal {
            return false;
        }
        self.recent.push_back(dev);
        while self.recent.len() > cfg.span {
            self.recent.pop_front();
        }
        if self.recent.len() < cfg.span {
            return false;
        }
        let depth = -self.recent.iter().sum::<f64>() / cfg.span as f64;
        self.tail.check(depth) && dev < 0.0
    }

    /// Records the last checked window's statistic unless the core flagged (`flagged`: any
    /// guard or the model) one of the windows it averages.
    pub fn record(&mut self, cfg: &DropGuardConfig, flagged: bool) {
        self.flags.push_back(flagged);
        while self.flags.len() > cfg.span.max(1) {
            self.flags.pop_front();
        }
        let contaminated = self.flags.iter().any(|&f| f);
        self.tail.record(cfg.keep, contaminated);
    }

    /// Re-derives the limit from the record (its deepest value when the tail cannot be fitted);
    /// `floor` is the least it may be (`z_guard` Poisson units).
    pub fn calibrate(&mut self, cfg: &DropGuardConfig, floor: f64) {
        self.tail.calibrate(cfg.min_windows, cfg.rate, floor);
    }

    /// The limit in force (Poisson units below the baseline).
    pub fn limit(&self) -> Option<f64> {
        self.tail.limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn cfg() -> DropGuardConfig {
        DropGuardConfig {
            feature: 0,
            span: 3,
            rate: 1e-4,
            min_windows: 288,
            keep: 2016,
        }
    }

    /// A calibrated state on `n` windows of uniform noise in ±`noise`.
    fn calibrated(n: usize, noise: f64) -> DropState {
        let (c, mut s, mut r) = (cfg(), DropState::default(), SplitMix64::new(3));
        for _ in 0..n {
            let flagged = s.check(&c, noise * (2.0 * r.next_f64() - 1.0), true);
            s.record(&c, flagged);
        }
        s.calibrate(&c, 1.0);
        s
    }

    #[test]
    fn waits_for_min_windows_then_flags_a_sustained_drop_only() {
        let c = cfg();
        assert_eq!(calibrated(200, 5.0).limit(), None);
        let mut s = calibrated(1000, 5.0);
        let limit = s.limit().expect("calibrated");
        assert!((1.0..10.0).contains(&limit), "{limit}");
        // One deep window is diluted by the span; from the second in a row they flag.
        assert!(!s.check(&c, -12.0, true));
        assert!(!s.check(&c, 0.0, true));
        assert!(!s.check(&c, 0.0, true));
        let fired: Vec<bool> = (0..3).map(|_| s.check(&c, -2.5 * limit, true)).collect();
        assert_eq!(fired, [false, true, true]);
        // A rise is never a drop; a window above its baseline is not flagged.
        assert!(!s.check(&c, 40.0, true));
    }

    #[test]
    fn acts_on_a_seasonal_profile_only_and_carries_its_limit_over_a_restart() {
        let c = cfg();
        let mut s = calibrated(1000, 5.0);
        let limit = s.limit().expect("calibrated");
        assert!(!(0..5).any(|_| s.check(&c, -30.0, false)));
        // A new profile: the record starts again, the old limit stays in force meanwhile.
        s.restart();
        assert_eq!(s.limit(), Some(limit));
        let fired: Vec<bool> = (0..3).map(|_| s.check(&c, -30.0, true)).collect();
        assert_eq!(fired, [false, false, true]);
        for _ in 0..100 {
            s.check(&c, 0.0, true);
            s.record(&c, false);
        }
        s.calibrate(&c, 1.0);
        assert_eq!(
            s.limit(),
            Some(limit),
            "too short a record keeps the carried limit"
        );
        // Never calibrated: nothing to carry.
        let mut fresh = DropState::default();
        fresh.restart();
        assert_eq!(fresh.limit(), None);
    }

    #[test]
    fn flagged_windows_stay_out_of_the_record() {
        let c = cfg();
        let mut s = calibrated(1000, 5.0);
        let before = s.limit().expect("calibrated");
        for _ in 0..50 {
            let f = s.check(&c, -30.0, true);
            s.record(&c, f);
        }
        s.calibrate(&c, 1.0);
        let after = s.limit().expect("calibrated");
        assert!((after - before).abs() < 1.0, "{before} → {after}");
    }

    #[test]
    fn a_drop_the_model_flagged_does_not_raise_the_limit() {
        // The windows of an outage the guard itself missed but the core flagged (and the
        // statistics averaging them) stay out; recorded as unflagged they raise the limit.
        let c = cfg();
        let run = |core_flags: bool| {
            let mut s = calibrated(1000, 5.0);
            for i in 0..60 {
                let dev = if i % 20 < 9 { -40.0 } else { 0.0 };
                s.check(&c, dev, true);
                s.record(&c, core_flags && dev < 0.0);
            }
            s.calibrate(&c, 1.0);
            s.limit().expect("calibrated")
        };
        let (clean, learnt) = (run(true), run(false));
        let base = calibrated(1000, 5.0).limit().expect("calibrated");
        assert!((clean - base).abs() < 1.0, "{base} → {clean}");
        assert!(learnt > clean + 5.0, "{clean} vs {learnt}");
    }

    #[test]
    fn residuals_are_in_poisson_units() {
        // A fall to 30 % of 25 requests is about as deep as a fall to 90 % of 2,500 (4.5 and
        // 5.1 Poisson units); in raw counts (17.5 vs 250) a limit fitted to busy hours would
        // never see the quiet one.
        let quiet = residual(7.5, 25.0, 25.0);
        let busy = residual(2_250.0, 2_500.0, 2_500.0);
        assert!((quiet + 4.52).abs() < 0.05, "{quiet}");
        assert!((busy + 5.13).abs() < 0.05, "{busy}");
        // The larger of the two: a fall below the slot that the local level already shows
        // (a slow evening) counts only as far as it is sudden.
        assert_eq!(residual(16.0, 36.0, 16.0), 0.0);
        assert!((residual(16.0, 36.0, 25.0) + 2.0).abs() < 1e-12);
        // Never NaN below zero.
        assert!(residual(0.0, 4.0, 4.0).is_finite());
    }

    #[test]
    fn the_floor_holds_on_a_constant_count() {
        let mut s = calibrated(1000, 0.0);
        s.calibrate(&cfg(), 4.0);
        assert!(s.limit().is_some_and(|l| l >= 4.0), "{:?}", s.limit());
    }

    #[test]
    fn only_detectors_counting_requests_get_one() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            DropGuardConfig::for_features(&f(&["error_rate", "event_count"]), 1e-4, 288, 2016)
                .map(|c| c.feature),
            Some(1)
        );
        assert!(DropGuardConfig::for_features(&f(&["metrics.cpu"]), 1e-4, 288, 2016).is_none());
    }
}
