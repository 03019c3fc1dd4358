//! The error guard: a window whose errors are far more than its request count makes
//! plausible flags whatever the threshold. The error *rate* alone cannot say it: one failed
//! request of three at night is a rate of 0.33 and means nothing, a third of 120 requests
//! failing at noon is an outage, and the range guard (which sees only the rate) learns the
//! night-time value as normal.
//!
//! Statistic: the binomial surprise `n · KL(q ‖ p₀)` (nats; the exponent of the Chernoff bound
//! on `P(K ≥ q·n)`) of `n` requests with error rate `q` against the key's baseline rate `p₀`
//! (the pooled error rate of its learnt history, or the seasonal slot's when higher), 0 when
//! `q ≤ p₀`. Limit: the exponential tail of the statistic's recent out-of-sample values
//! (windows the core flagged left out), extrapolated to `rate` per window, never below
//! [`MIN_SURPRISE`]. It acts once `min_windows` are recorded.

use serde::{Deserialize, Serialize};

use crate::engine::tail_record::TailRecord;

/// The least surprise that flags (nats): `P ≈ e⁻¹²`, whatever the calibration.
pub const MIN_SURPRISE: f64 = 12.0;
/// The least baseline error rate (a service with no error in its history).
pub const MIN_BASE_RATE: f64 = 1e-3;

/// Settings of the error guard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorGuardConfig {
    /// Index of `event_count` among the base features.
    pub count: usize,
    /// Index of `error_rate` among the base features.
    pub errors: usize,
    /// Per-window probability the limit is extrapolated to.
    pub rate: f64,
    /// Windows recorded before the guard acts.
    pub min_windows: usize,
    /// Most statistics kept for the calibration.
    pub keep: usize,
}

impl ErrorGuardConfig {
    /// The guard when `features` has both `event_count` and `error_rate` (`None` otherwise),
    /// at `rate` per window, acting after `min_windows` and keeping `keep` statistics.
    pub fn for_features(
        features: &[String],
        rate: f64,
        min_windows: usize,
        keep: usize,
    ) -> Option<Self> {
        let at = |name: &str| features.iter().position(|f| f == name);
        Some(Self {
            count: at("event_count")?,
            errors: at("error_rate")?,
            rate,
            min_windows,
            keep: keep.max(min_windows),
        })
    }
}

/// `n · KL(q ‖ p)` for an error rate `q` of `n` requests above the baseline `p`; 0 otherwise.
pub fn surprise(n: f64, q: f64, p: f64) -> f64 {
    let p = p.clamp(MIN_BASE_RATE, 1.0 - 1e-9);
    let q = q.clamp(0.0, 1.0);
    if n.is_nan() || q.is_nan() || n <= 0.0 || q <= p {
        return 0.0;
    }
    let term = |a: f64, b: f64| if a > 0.0 { a * (a / b).ln() } else { 0.0 };
    n * (term(q, p) + term(1.0 - q, 1.0 - p))
}

/// Error-guard state of one key.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ErrorState {
    tail: TailRecord,
    /// The pooled error rate of the learnt history (set at training).
    base: Option<f64>,
}

impl ErrorState {
    /// Checks one window (`x` its base feature values, `expected_rate` the seasonal slot's
    /// error rate): whether the guard flags it.
    pub fn check(&mut self, cfg: &ErrorGuardConfig, x: &[f64], expected_rate: f64) -> bool {
        let (Some(base), Some(&n), Some(&q)) = (self.base, x.get(cfg.count), x.get(cfg.errors))
        else {
            self.tail.skip();
            return false;
        };
        self.tail.check(surprise(n, q, base.max(expected_rate)))
    }

    /// Records the last checked window unless the core flagged it (any guard or the model).
    pub fn record(&mut self, cfg: &ErrorGuardConfig, flagged: bool) {
        self.tail.record(cfg.keep, flagged);
    }

    /// Sets the baseline from the learnt history's `(count, error rate)` rows and re-derives
    /// the limit.
    pub fn calibrate<'a>(&mut self, cfg: &ErrorGuardConfig, rows: impl Iterator<Item = &'a [f64]>) {
        let (mut requests, mut errors) = (0.0, 0.0);
        for r in rows {
            if let (Some(&n), Some(&q)) = (r.get(cfg.count), r.get(cfg.errors))
                && n.is_finite()
                && q.is_finite()
            {
                requests += n;
                errors += n * q;
            }
        }
        self.base = (requests > 0.0).then(|| (errors / requests).max(MIN_BASE_RATE));
        self.tail.calibrate(cfg.min_windows, cfg.rate, MIN_SURPRISE);
    }

    /// The limit in force (nats).
    pub fn limit(&self) -> Option<f64> {
        self.tail.limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn cfg() -> ErrorGuardConfig {
        ErrorGuardConfig {
            count: 0,
            errors: 1,
            rate: 1e-4,
            min_windows: 288,
            keep: 2016,
        }
    }

    #[test]
    fn one_error_at_night_is_no_surprise_and_a_third_failing_at_noon_is() {
        let night = surprise(3.0, 1.0 / 3.0, 0.005);
        let noon = surprise(120.0, 0.32, 0.005);
        assert!(night < MIN_SURPRISE, "{night}");
        assert!(noon > 10.0 * MIN_SURPRISE, "{noon}");
        assert_eq!(surprise(120.0, 0.004, 0.005), 0.0);
        assert_eq!(surprise(0.0, 1.0, 0.005), 0.0);
    }

    /// A state calibrated on `n` windows of binomial-ish noise (0–2 errors of 20–300 requests).
    fn calibrated(n: usize) -> (ErrorState, Vec<Vec<f64>>) {
        let (c, mut s, mut r) = (cfg(), ErrorState::default(), SplitMix64::new(5));
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|_| {
                let n = (20.0 + 280.0 * r.next_f64()).round();
                let k = (r.next_f64() * 2.99).floor();
                vec![n, k / n]
            })
            .collect();
        s.calibrate(&c, rows.iter().map(Vec::as_slice));
        for row in &rows {
            let f = s.check(&c, row, 0.0);
            s.record(&c, f);
        }
        s.calibrate(&c, rows.iter().map(Vec::as_slice));
        (s, rows)
    }

    #[test]
    fn flags_a_burst_after_calibration_and_not_the_noise() {
        let c = cfg();
        let (mut s, rows) = calibrated(1000);
        let limit = s.limit().expect("calibrated");
        assert!(limit >= MIN_SURPRISE, "{limit}");
        assert!(!rows.iter().any(|r| s.check(&c, r, 0.0)));
        assert!(s.check(&c, &[120.0, 0.3], 0.0));
        assert!(!s.check(&c, &[3.0, 1.0 / 3.0], 0.0));
    }

    #[test]
    fn waits_for_min_windows_and_needs_both_features() {
        let c = cfg();
        let (mut s, _) = calibrated(100);
        assert_eq!(s.limit(), None);
        assert!(!s.check(&c, &[120.0, 0.9], 0.0));
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let g = ErrorGuardConfig::for_features(
            &f(&["error_rate", "p99", "event_count"]),
            1e-4,
            288,
            2016,
        )
        .expect("both present");
        assert_eq!((g.count, g.errors), (2, 0));
        assert!(ErrorGuardConfig::for_features(&f(&["error_rate"]), 1e-4, 288, 2016).is_none());
    }
}
