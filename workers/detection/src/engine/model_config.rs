//! The settings of the per-key model: the algorithm, the residual form, [`ModelConfig`] with
//! its defaults and checks, and the pure functions of a configuration (input names, the
//! residual term).

use serde::{Deserialize, Serialize};

use crate::DetectionError;
use crate::engine::drop::DropGuardConfig;
use crate::engine::errors::ErrorGuardConfig;
use crate::engine::likelihood::LikelihoodConfig;
use crate::engine::range::GuardTail;
use crate::engine::sample_size::SampleSize;
use crate::engine::seasonal::{REQUEST_WEEKLY_AFTER_MS, SeasonalityMode, WEEKLY_AFTER_MS};
use crate::forest::ForestConfig;

/// Detection algorithm: each is a value of a Detector's `spec.model.algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Algorithm {
    /// The bare Isolation Forest score over the window's values (and lags).
    IsolationForest,
    /// Forest over values, local/seasonal residuals and differences, ensembled with a robust
    /// seasonal residual and turned into a likelihood; range guard.
    #[default]
    RobustForest,
}

impl Algorithm {
    /// The lowest threshold a derived rule may produce for this algorithm's scores.
    pub fn min_threshold(self) -> f64 {
        match self {
            Algorithm::IsolationForest => 0.5,
            Algorithm::RobustForest => 0.5,
        }
    }

    /// Windows scoring at or above this never enter the training history.
    pub fn exclude_level(self) -> f64 {
        match self {
            Algorithm::IsolationForest => 0.65,
            Algorithm::RobustForest => 0.5,
        }
    }
}

fn default_recurrence() -> i64 {
    crate::engine::recurrence::DEFAULT_TOLERANCE_MS
}

fn default_recurrence_days() -> usize {
    crate::engine::recurrence::DEFAULT_DAYS
}

fn default_range_widening() -> f64 {
    crate::engine::range::DEFAULT_WIDENING
}

fn default_weekly_after() -> i64 {
    WEEKLY_AFTER_MS
}

/// How a deviation's robust z enters the RobustForest raw score ([`residual_term`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResidualForm {
    /// `z²/(z²+9)`: saturates near 6σ, tolerant of heavy tails. The default of a detector of
    /// request features only: a p99 over a few dozen requests is the slowest of them, and the
    /// guards (range, drop, error) page what lies far outside the normal.
    #[default]
    Squashed,
    /// `¼·ln(1 + z²/9)`: unbounded, so a shift held at 20σ inside the range stands out. The
    /// default of a detector with gauges (`metrics.*`).
    Logarithmic,
}

/// Settings of the per-key model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Forest hyper-parameters (its threshold is unused; the core decides).
    pub forest: ForestConfig,
    /// Windows collected before the first model.
    pub warmup: usize,
    /// Retrain after this many scored windows (0 = never).
    pub retrain_every: usize,
    /// Most unflagged windows kept for training.
    pub history: usize,
    /// Lagged copies of the values appended to the vector.
    pub shingle: usize,
    /// Window of the rolling median behind `f@local`.
    pub local_window: usize,
    /// Weight of the robust residual in the RobustForest ensemble, in [0, 1].
    pub residual_weight: f64,
    /// How the robust residual's z enters the raw score.
    #[serde(default)]
    pub residual_form: ResidualForm,
    /// Likelihood settings (RobustForest).
    pub likelihood: LikelihoodConfig,
    /// Seasonal baseline mode.
    pub seasonality: SeasonalityMode,
    /// Span of windows after which the weekly profile replaces the daily one (`Auto` mode).
    #[serde(default = "default_weekly_after")]
    pub weekly_after_ms: i64,
    /// Range guard: how far beyond the range seen a value must lie, as a fraction of that
    /// range (0 = guard off).
    pub range_tolerance: f64,
    /// Range guard: the share of a guarded value's excess over the range seen that the range
    /// then takes in, so bursts that keep setting records page for the first of a size, not
    /// for every later one of that size (0 = never: a repeat of the same burst pages again).
    #[serde(default = "default_range_widening")]
    pub range_widening: f64,
    /// Windows seen before the range guard is active.
    pub guard_min_windows: usize,
    /// Range guard: the robust z an out-of-range value must also reach.
    pub z_guard: f64,
    /// Range guard calibration of the features whose noise depends on how many requests a
    /// window holds (`None`: every feature guards at `z_guard`).
    #[serde(default)]
    pub guard_tail: Option<GuardTail>,
    /// Per base feature: the smallest scale a deviation is measured in (near-constant guard).
    pub min_scales: Vec<f64>,
    /// Flagged windows in a row after which flagged windows are learnt again (a new normal;
    /// 0 = never).
    pub adapt_after: usize,
    /// A flagged window is learnt when one within this many ms of the same time the day
    /// before was flagged too (a daily pattern, not an incident; 0 = never).
    #[serde(default = "default_recurrence")]
    pub recurrence_ms: i64,
    /// Previous days that must each have such a flagged window (0 = never).
    #[serde(default = "default_recurrence_days")]
    pub recurrence_days: usize,
    /// The drop guard of the request count (`None`: derived by the core when the features
    /// count requests; `span: 0` turns it off).
    #[serde(default)]
    pub drop_guard: Option<DropGuardConfig>,
    /// The error guard of the request error rate (`None`: derived by the core when the
    /// features have both `event_count` and `error_rate`).
    #[serde(default)]
    pub error_guard: Option<ErrorGuardConfig>,
    /// Which deviations are weighted by the window's request count (`None`: derived by the
    /// core when the features count requests).
    #[serde(default)]
    pub sample_size: Option<SampleSize>,
}

impl ModelConfig {
    /// The library defaults for everything a Detector spec does not set (a detector of request
    /// features only starts its weekly profile after 8 days and averages 3 raw scores).
    pub fn defaults(algorithm: Algorithm, features: &[String]) -> Self {
        let per_request = features.iter().all(|f| crate::features::per_request(f));
        Self {
            algorithm,
            forest: ForestConfig {
                n_trees: 100,
                max_samples: 256,
                seed: 42,
                ..ForestConfig::default()
            },
            warmup: 12,
            retrain_every: 12,
            history: 2016,
            shingle: 0,
            local_window: 20,
            residual_weight: 0.5,
            residual_form: if per_request {
                ResidualForm::Squashed
            } else {
                ResidualForm::Logarithmic
            },
            likelihood: if per_request {
                LikelihoodConfig {
                    short: crate::engine::likelihood::REQUEST_SHORT,
                    learn_guarded: false,
                    ..LikelihoodConfig::default()
                }
            } else {
                LikelihoodConfig::default()
            },
            seasonality: SeasonalityMode::Auto,
            weekly_after_ms: if per_request {
                REQUEST_WEEKLY_AFTER_MS
            } else {
                WEEKLY_AFTER_MS
            },
            range_tolerance: 0.1,
            range_widening: crate::engine::range::DEFAULT_WIDENING,
            guard_min_windows: 288,
            z_guard: 3.0,
            guard_tail: None,
            min_scales: features
                .iter()
                .map(|f| crate::features::min_scale(f))
                .collect(),
            adapt_after: 288,
            recurrence_ms: crate::engine::recurrence::DEFAULT_TOLERANCE_MS,
            recurrence_days: crate::engine::recurrence::DEFAULT_DAYS,
            drop_guard: None,
            error_guard: None,
            sample_size: None,
        }
    }

    /// Checks ranges against the number of base features.
    pub fn validate(&self, dims: usize) -> Result<(), DetectionError> {
        self.forest.validate()?;
        let bad = |m: &str| Err(DetectionError::InvalidConfig(m.to_string()));
        if dims == 0 {
            return bad("a detector needs at least one feature");
        }
        if self.warmup < 2 || self.history < self.warmup {
            return bad("warm-up must be >= 2 windows and <= the history");
        }
        if self.local_window == 0 || !(0.0..=1.0).contains(&self.residual_weight) {
            return bad("local window must be >= 1 and residual weight in [0, 1]");
        }
        if self.min_scales.len() != dims {
            return bad("one minimum scale per feature");
        }
        if !(0.0..=1.0).contains(&self.range_widening) {
            return bad("range widening must be in [0, 1]");
        }
        Ok(())
    }
}

/// The robust residual's share of the raw score for a deviation of `z` robust scales.
/// `Logarithmic` is about `z²/36` within 3σ and `½·ln(z/3)` beyond, unbounded: a deviation of
/// 20σ held for an hour stands out of the likelihood's fit, where `Squashed` saturates near 6σ
/// and leaves a level shift or a correlation break at 20σ scoring like noise of the forest.
pub fn residual_term(form: ResidualForm, z: f64) -> f64 {
    match form {
        ResidualForm::Squashed => z * z / (z * z + 9.0),
        ResidualForm::Logarithmic => 0.25 * (z * z / 9.0).ln_1p(),
    }
}

/// Input names of the model for the given base names.
pub fn input_names(cfg: &ModelConfig, base: &[String]) -> Vec<String> {
    let mut names = base.to_vec();
    if cfg.algorithm == Algorithm::RobustForest {
        for suffix in ["local", "delta", "season"] {
            names.extend(base.iter().map(|n| format!("{n}@{suffix}")));
        }
    }
    for lag in 1..=cfg.shingle {
        names.extend(base.iter().map(|n| format!("{n}@t-{lag}")));
    }
    names
}

/// The base feature an input name belongs to (`p99_latency@t-1` → `p99_latency`).
pub fn base_name(input: &str) -> &str {
    input.split_once('@').map_or(input, |(b, _)| b)
}
