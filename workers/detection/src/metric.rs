//! Metric mode: online anomaly scores for a univariate series (e.g. NAB).
//!
//! Each point becomes a feature vector `[value, first difference, value − rolling median,
//! previous k values…]` so the forest sees time structure. The forest is trained on a
//! sliding history of past vectors and retrained periodically; a point is always scored by a
//! model that has never seen it (online, past only). Two algorithms:
//!
//! * [`Algorithm::IsolationForest`]: the forest score `s` itself.
//! * [`Algorithm::RobustForest`]: an ensemble of the forest score with a robust residual score
//!   (`|x − median| / MAD` over a long window, squashed to [0, 1)), post-processed by a
//!   rolling likelihood: how improbable the recent mean of that raw score is under a Gaussian
//!   fitted to its own history (as in Numenta's anomaly likelihood), reported on a log scale
//!   in [0, 1]. After a score at or above `suppress_level`, later scores are capped below that
//!   level for `suppress_rows` rows, so one episode yields one detection.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::DetectionError;
use crate::forest::{ForestConfig, IsolationForest};
use crate::stats::{mad, median};

/// Named detection algorithm (what a Detector resource selects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    /// The bare Isolation Forest score.
    IsolationForest,
    /// Forest + robust residual ensemble with likelihood post-processing.
    RobustForest,
}

/// Metric-mode configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricConfig {
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Number of previous values appended to each vector.
    pub shingle: usize,
    /// Window of the rolling median feature.
    pub median_window: usize,
    /// Points seen before the first model (scores are 0 before).
    pub warmup: usize,
    /// Retrain after this many points.
    pub retrain_every: usize,
    /// Number of past vectors kept for training.
    pub history: usize,
    /// Forest parameters (threshold unused here).
    pub forest: ForestConfig,
    /// Window of the robust residual statistics (RobustForest).
    pub residual_window: usize,
    /// Weight of the residual score in the ensemble, in [0, 1] (RobustForest).
    pub residual_weight: f64,
    /// Raw-score history used to fit the likelihood Gaussian (RobustForest).
    pub likelihood_window: usize,
    /// Number of recent raw scores averaged before the likelihood (RobustForest).
    pub likelihood_short: usize,
    /// Level above which suppression starts (RobustForest).
    pub suppress_level: f64,
    /// Rows suppressed after a score at or above `suppress_level` (0 = off).
    pub suppress_rows: usize,
    /// A value beyond the range seen so far by more than this fraction of the range scores 1
    /// (RobustForest; 0 = off).
    pub spatial_tolerance: f64,
}

impl Default for MetricConfig {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::RobustForest,
            shingle: 4,
            median_window: 20,
            warmup: 150,
            retrain_every: 100,
            history: 1000,
            forest: ForestConfig {
                n_trees: 50,
                max_samples: 256,
                ..ForestConfig::default()
            },
            residual_window: 500,
            residual_weight: 0.3,
            likelihood_window: 3000,
            likelihood_short: 5,
            suppress_level: 0.4,
            suppress_rows: 100,
            spatial_tolerance: 0.1,
        }
    }
}

impl MetricConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), DetectionError> {
        self.forest.validate()?;
        if self.warmup < 2
            || self.median_window == 0
            || self.history < 2
            || self.likelihood_short == 0
            || self.residual_window < 2
            || !(0.0..=1.0).contains(&self.residual_weight)
        {
            return Err(DetectionError::InvalidConfig(
                "metric mode parameters out of range".into(),
            ));
        }
        Ok(())
    }
}

/// Upper tail probability of the standard normal, `Q(z) = P(Z > z)`.
pub fn normal_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Online scorer for one univariate series.
#[derive(Debug, Clone)]
pub struct MetricDetector {
    cfg: MetricConfig,
    values: VecDeque<f64>,
    history: VecDeque<Vec<f64>>,
    model: Option<IsolationForest>,
    since_train: usize,
    seen: usize,
    resid: (f64, f64),
    raw: VecDeque<f64>,
    raw_sum: f64,
    raw_sq: f64,
    short: VecDeque<f64>,
    suppress_left: usize,
    version: u64,
    range: Option<(f64, f64)>,
}

impl MetricDetector {
    /// Creates a detector.
    pub fn new(cfg: MetricConfig) -> Result<Self, DetectionError> {
        cfg.validate()?;
        Ok(Self {
            cfg,
            values: VecDeque::new(),
            history: VecDeque::new(),
            model: None,
            since_train: 0,
            seen: 0,
            resid: (0.0, 0.0),
            raw: VecDeque::new(),
            raw_sum: 0.0,
            raw_sq: 0.0,
            short: VecDeque::new(),
            suppress_left: 0,
            version: 0,
            range: None,
        })
    }

    /// Feature vector of `x` given the past values (most recent last).
    fn vector(&self, x: f64) -> Vec<f64> {
        let n = self.values.len();
        let last = self.values.back().copied().unwrap_or(x);
        let w = self.cfg.median_window.min(n);
        let recent: Vec<f64> = self.values.iter().skip(n - w).copied().collect();
        let med = if recent.is_empty() {
            x
        } else {
            median(&recent)
        };
        let mut v = vec![x, x - last, x - med];
        for lag in 0..self.cfg.shingle {
            v.push(
                n.checked_sub(lag + 1)
                    .and_then(|i| self.values.get(i))
                    .copied()
                    .unwrap_or(x),
            );
        }
        v
    }

    fn retrain(&mut self) -> Result<(), DetectionError> {
        let rows: Vec<Vec<f64>> = self.history.iter().cloned().collect();
        let cfg = ForestConfig {
            seed: self.cfg.forest.seed.wrapping_add(self.version),
            ..self.cfg.forest
        };
        self.model = Some(IsolationForest::fit(&rows, cfg)?);
        self.version += 1;
        self.since_train = 0;
        Ok(())
    }

    fn residual_score(&mut self, x: f64) -> f64 {
        let n = self.values.len();
        if n < 10 {
            return 0.0;
        }
        if self.seen.is_multiple_of(10) || self.resid == (0.0, 0.0) {
            let w = self.cfg.residual_window.min(n);
            let past: Vec<f64> = self.values.iter().skip(n - w).copied().collect();
            let m = median(&past);
            let spread = 1.4826 * mad(&past, m);
            let fallback = past.iter().map(|v| (v - m).abs()).sum::<f64>() / past.len() as f64;
            self.resid = (m, spread.max(1.2533 * fallback).max(1e-9 * (1.0 + m.abs())));
        }
        let z = (x - self.resid.0).abs() / self.resid.1;
        z / (z + 3.0)
    }

    fn likelihood(&mut self, raw: f64) -> f64 {
        self.short.push_back(raw);
        if self.short.len() > self.cfg.likelihood_short {
            self.short.pop_front();
        }
        let avg = self.short.iter().sum::<f64>() / self.short.len() as f64;
        let n = self.raw.len() as f64;
        let out = if n < 50.0 {
            0.0
        } else {
            let mean = self.raw_sum / n;
            let var = (self.raw_sq / n - mean * mean).max(1e-4);
            let tail = normal_tail((avg - mean) / var.sqrt());
            ((tail + 1e-10).ln() / 1e-10f64.ln()).clamp(0.0, 1.0)
        };
        self.raw.push_back(avg);
        self.raw_sum += avg;
        self.raw_sq += avg * avg;
        if self.raw.len() > self.cfg.likelihood_window
            && let Some(old) = self.raw.pop_front()
        {
            self.raw_sum -= old;
            self.raw_sq -= old * old;
        }
        out
    }

    /// Scores the next value (using only the past) and then learns from it.
    pub fn update(&mut self, x: f64) -> Result<f64, DetectionError> {
        let x = if x.is_finite() {
            x
        } else {
            self.values.back().copied().unwrap_or(0.0)
        };
        let v = self.vector(x);
        let forest = match &self.model {
            Some(m) => m.score(&v)?,
            None => 0.0,
        };
        let score = match self.cfg.algorithm {
            Algorithm::IsolationForest => forest,
            Algorithm::RobustForest => {
                let r = self.residual_score(x);
                let w = self.cfg.residual_weight;
                let raw = if self.model.is_some() {
                    (1.0 - w) * forest + w * r
                } else {
                    0.0
                };
                let mut l = if self.model.is_some() {
                    self.likelihood(raw)
                } else {
                    0.0
                };
                if let Some((lo, hi)) = self.range
                    && self.model.is_some()
                    && self.cfg.spatial_tolerance > 0.0
                {
                    let tol = self.cfg.spatial_tolerance * (hi - lo);
                    if x > hi + tol || x < lo - tol {
                        l = 1.0;
                    }
                }
                if self.suppress_left > 0 {
                    self.suppress_left -= 1;
                    l = l.min(self.cfg.suppress_level * 0.999);
                } else if l >= self.cfg.suppress_level {
                    self.suppress_left = self.cfg.suppress_rows;
                }
                l
            }
        };
        self.seen += 1;
        self.range = Some(self.range.map_or((x, x), |(lo, hi)| (lo.min(x), hi.max(x))));
        self.values.push_back(x);
        let keep = self
            .cfg
            .residual_window
            .max(self.cfg.median_window)
            .max(self.cfg.shingle)
            + 1;
        while self.values.len() > keep {
            self.values.pop_front();
        }
        self.history.push_back(v);
        while self.history.len() > self.cfg.history {
            self.history.pop_front();
        }
        self.since_train += 1;
        if (self.model.is_none() && self.seen >= self.cfg.warmup)
            || (self.model.is_some() && self.since_train >= self.cfg.retrain_every)
        {
            self.retrain()?;
        }
        Ok(score)
    }

    /// Scores a whole series online.
    pub fn score_series(cfg: MetricConfig, values: &[f64]) -> Result<Vec<f64>, DetectionError> {
        let mut d = Self::new(cfg)?;
        values.iter().map(|&x| d.update(x)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn tail_probability() {
        assert!((normal_tail(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_tail(1.959_964) - 0.025).abs() < 1e-6);
        assert!((normal_tail(-1.959_964) - 0.975).abs() < 1e-6);
        assert!(normal_tail(8.0) > 0.0 && normal_tail(8.0) < 1e-14);
    }

    fn series() -> Vec<f64> {
        let mut r = SplitMix64::new(3);
        let mut v: Vec<f64> = (0..1500)
            .map(|i| 10.0 + (i as f64 / 20.0).sin() + 0.2 * r.next_f64())
            .collect();
        v[1200] = 25.0;
        v
    }

    #[test]
    fn spike_gets_top_score_in_both_algorithms() {
        for algorithm in [Algorithm::IsolationForest, Algorithm::RobustForest] {
            let cfg = MetricConfig {
                algorithm,
                ..MetricConfig::default()
            };
            let s = MetricDetector::score_series(cfg, &series()).unwrap();
            let (argmax, _) = s
                .iter()
                .enumerate()
                .skip(300)
                .fold((0, f64::MIN), |a, (i, &x)| if x > a.1 { (i, x) } else { a });
            assert!((1200..1205).contains(&argmax), "{algorithm:?} {argmax}");
            assert!(s.iter().all(|x| x.is_finite() && (0.0..=1.0).contains(x)));
            assert!(s[..150].iter().all(|&x| x == 0.0));
        }
    }

    #[test]
    fn deterministic_and_online() {
        let cfg = MetricConfig::default();
        let v = series();
        let a = MetricDetector::score_series(cfg, &v).unwrap();
        let b = MetricDetector::score_series(cfg, &v[..1000]).unwrap();
        assert_eq!(a[..1000], b[..]);
    }
}
