//! The model of one key: warm-up, a training history that excludes flagged windows, periodic
//! retraining, the forest input vector, the final score and the guards.
//!
//! Input vector per base feature `f` (RobustForest): `f` (the value), `f@local` (value minus
//! the median of the last `local_window` values), `f@delta` (first difference), `f@season`
//! (value minus its seasonal baseline, or minus the history median before seasonality), then
//! `f@t-1 … f@t-k` lags when `shingle = k`. The bare IsolationForest uses only the values and
//! lags. Final score:
//!
//! - `IsolationForest`: the forest score `s`.
//! - `RobustForest`: the likelihood of `0.5·s + 0.5·r(z)`, where `r` is `¼·ln(1 + z²/9)` with
//!   gauges and `z²/(z²+9)` for request features only ([`residual_term`]), `z` the larger of
//!   the largest robust z of a feature's deviation from its seasonal baseline (or history
//!   median) and the relation z (Mahalanobis distance of those deviations), with a scale that
//!   never falls below the feature's floor (so a near-constant feature cannot produce a score
//!   storm).
//!
//! Both: the **range guard** flags a window whatever the threshold when a value lies beyond
//! the range of every value learnt so far (widened by `range_widening` of each excess it
//! flags) by more than `range_tolerance` of that range and its
//! deviation reaches `z_guard` scales (once `guard_min_windows` are in the history), since the
//! forest groups values beyond its training range with the maximum. It scores 1
//! (RobustForest) or `max(s, z/(z+3))` (IsolationForest). Within the range only the model
//! flags, so a rare but known value (one error in a quiet hour) never storms. A tail
//! percentile resting on fewer than two requests (the p99 of under 200) is left to the model
//! ([`SampleSize::thin_tail`]): the p99 of 90 requests is the slowest one.
//! On the daily profile the request count's expected value is settled towards its local level
//! ([`settled_count`]), so the first weekend is not judged against pooled weekdays.
//! The **drop guard** ([`crate::engine::drop`]) flags a sustained, sudden fall of the request
//! count below its hour-of-week baseline the same way (score 1), and the **error guard**
//! ([`crate::engine::errors`]) a window with far more failed requests than its request count
//! makes plausible.
//! Windows flagged by a guard or scoring at or above `exclude_level` never enter the training
//! history or the seasonal profile — unless a window at the same time the day before was
//! flagged too ([`Recurrence`]: a daily pattern, not an incident). Neither depends on the
//! alert threshold, so a threshold sweep over stored scores is exact.

use std::collections::VecDeque;

use crate::DetectionError;
use crate::alert::ReplayWindow;
use crate::engine::drop::{self, DropState};
use crate::engine::errors::ErrorState;
use crate::engine::likelihood::Likelihood;
use crate::engine::range::GuardTail;
use crate::engine::recurrence::Recurrence;
use crate::engine::seasonal::{Period, SeasonalProfile, settled_count};
use crate::engine::threshold::ThresholdDecision;
use crate::explain::{Baseline, Explanation, explain};
use crate::forest::{ForestConfig, IsolationForest};
use crate::stats::{mad, mean, median};

pub use crate::engine::model_config::{
    Algorithm, ModelConfig, ResidualForm, base_name, input_names, residual_term,
};

/// A training row: the base values, the threshold-free context (local residual, difference,
/// lags) and its time (the seasonal residual is added when training).
#[derive(Debug, Clone, PartialEq)]
struct Row {
    ts: i64,
    x: Vec<f64>,
    ctx: Vec<f64>,
}

/// Deviation statistics of the base features in the training history.
#[derive(Debug, Clone, PartialEq)]
struct Deviation {
    medians: Vec<f64>,
    scales: Vec<f64>,
    /// Inverse of the (ridged) covariance of the scaled deviations, for the relation z.
    inverse: Option<Vec<Vec<f64>>>,
    /// Per feature: the robust z an out-of-range value must reach to be guarded.
    guard_z: Vec<f64>,
    /// The request count deviations are weighted against (see [`SampleSize`]).
    reference: f64,
}

/// The scored outcome of one window for one key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyScore {
    /// Final score in [0, 1].
    pub score: f64,
    /// The guard that flagged the window (anomalous whatever the threshold), if any.
    pub guard: Option<Guard>,
    /// Largest robust z of a base feature's deviation and that feature's index.
    pub max_z: (f64, usize),
    /// Model version that scored it.
    pub model_version: u64,
}

impl KeyScore {
    /// A guard flagged the window.
    pub fn forced(&self) -> bool {
        self.guard.is_some()
    }
}

/// The guard that flagged a window whatever the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// A value beyond every value seen and far from its baseline ([`crate::engine::range`]).
    Range,
    /// A sustained, sudden fall of the request count ([`crate::engine::drop`]).
    Drop,
    /// A burst of errors beyond the key's record ([`crate::engine::errors`]).
    Errors,
}

impl Guard {
    /// Stable name, as in `helios backtest` output (`range`, `drop`, `errors`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Range => "range",
            Self::Drop => "drop",
            Self::Errors => "errors",
        }
    }
}

/// What one observation did.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Collecting warm-up windows: `seen` of `needed`.
    WarmingUp {
        /// Windows collected so far.
        seen: usize,
        /// Windows needed.
        needed: usize,
    },
    /// Scored.
    Scored(KeyScore),
}

/// The per-key model state.
#[derive(Debug, Clone)]
pub struct KeyModel {
    cfg: ModelConfig,
    names: Vec<String>,
    dims: usize,
    recent: VecDeque<Vec<f64>>,
    history: VecDeque<Row>,
    seasonal: SeasonalProfile,
    forest: Option<(IsolationForest, Baseline)>,
    deviation: Option<Deviation>,
    likelihood: Likelihood,
    range: Option<(Vec<f64>, Vec<f64>)>,
    /// Lowest and highest values of the run of range-guarded windows under way; the range
    /// widens toward them when the run ends.
    guarded_run: Option<(Vec<f64>, Vec<f64>)>,
    version: u64,
    since_train: usize,
    last_vector: Vec<f64>,
    last_expected: Vec<f64>,
    scored: VecDeque<ReplayWindow>,
    /// `|value − baseline|` per feature of the recent scored windows (guard calibration).
    deviations: VecDeque<Vec<f64>>,
    threshold: Option<ThresholdDecision>,
    drop: DropState,
    errors: ErrorState,
    excluded_run: usize,
    recurrence: Recurrence,
    period: Period,
    seen: usize,
}

impl KeyModel {
    /// A fresh model for a key.
    pub fn new(cfg: ModelConfig, base: &[String]) -> Result<Self, DetectionError> {
        cfg.validate(base.len())?;
        Ok(Self {
            names: input_names(&cfg, base),
            dims: base.len(),
            recent: VecDeque::new(),
            history: VecDeque::new(),
            seasonal: SeasonalProfile::new(base.len(), cfg.seasonality, cfg.weekly_after_ms),
            forest: None,
            deviation: None,
            likelihood: Likelihood::new(cfg.likelihood),
            range: None,
            guarded_run: None,
            version: 0,
            since_train: 0,
            last_vector: Vec::new(),
            last_expected: Vec::new(),
            scored: VecDeque::new(),
            deviations: VecDeque::new(),
            threshold: None,
            drop: DropState::default(),
            errors: ErrorState::default(),
            excluded_run: 0,
            recurrence: Recurrence::default(),
            period: Period::None,
            seen: 0,
            cfg,
        })
    }

    /// Model input names (base names, derived components, lags).
    pub fn input_names(&self) -> &[String] {
        &self.names
    }

    /// Current model version (0 before the first model).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The forest, once trained.
    pub fn forest(&self) -> Option<&IsolationForest> {
        self.forest.as_ref().map(|(f, _)| f)
    }

    /// Windows collected towards (or beyond) warm-up.
    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    /// The seasonal profile in use.
    pub fn period(&self) -> Period {
        self.seasonal.period()
    }

    /// Time covered by the seasonal profile (ms).
    pub fn seasonal_span_ms(&self) -> i64 {
        self.seasonal.span_ms()
    }

    /// Recent out-of-sample windows (what thresholds are derived from).
    pub fn scored(&self) -> &VecDeque<ReplayWindow> {
        &self.scored
    }

    /// The threshold in force, once derived.
    pub fn threshold(&self) -> Option<&ThresholdDecision> {
        self.threshold.as_ref()
    }

    /// Sets the threshold in force.
    pub fn set_threshold(&mut self, d: ThresholdDecision) {
        self.threshold = Some(d);
    }

    /// Learns a window the model considers normal: training history, seasonal profile, the
    /// range the guard checks (so a sustained shift stays guarded until it is learnt as the
    /// new normal after `adapt_after` windows).
    /// When the seasonal period changes, scores before it describe another model: the
    /// out-of-sample record, the likelihood and the drop guard's record start again (the
    /// threshold recalibrates; the drop limit stays until its new record is long enough).
    fn learn(&mut self, ts: i64, x: &[f64], ctx: Vec<f64>) {
        self.history.push_back(Row {
            ts,
            x: x.to_vec(),
            ctx,
        });
        while self.history.len() > self.cfg.history {
            self.history.pop_front();
        }
        self.seasonal.observe(ts, x);
        let period = self.seasonal.period();
        if period != self.period {
            self.period = period;
            self.scored.clear();
            self.likelihood = Likelihood::new(self.cfg.likelihood);
            self.threshold = None;
            self.drop.restart();
        }
        let (lo, hi) = self.range.get_or_insert_with(|| (x.to_vec(), x.to_vec()));
        for (j, &v) in x.iter().enumerate() {
            lo[j] = lo[j].min(v);
            hi[j] = hi[j].max(v);
        }
    }

    /// Per base feature: the weight of its deviation in window `x` (1 without a model or a
    /// request count).
    fn weights(&self, x: &[f64]) -> Vec<f64> {
        match (&self.cfg.sample_size, &self.deviation) {
            (Some(s), Some(d)) => s.weights(x, d.reference),
            _ => vec![1.0; x.len()],
        }
    }

    /// Median of feature `j` over the last `local_window` windows (`None` before any).
    fn local_median(&self, j: usize) -> Option<f64> {
        let n = self.recent.len();
        let w = self.cfg.local_window.min(n);
        let past: Vec<f64> = self.recent.iter().skip(n - w).map(|r| r[j]).collect();
        (!past.is_empty()).then(|| median(&past))
    }

    fn context(&self, x: &[f64]) -> Vec<f64> {
        let mut ctx = Vec::with_capacity(x.len() * (2 + self.cfg.shingle));
        if self.cfg.algorithm == Algorithm::RobustForest {
            for (j, &v) in x.iter().enumerate() {
                ctx.push(v - self.local_median(j).unwrap_or(v));
            }
            for (j, &v) in x.iter().enumerate() {
                let prev = self.recent.back().map_or(v, |r| r[j]);
                ctx.push(v - prev);
            }
        }
        for lag in 0..self.cfg.shingle {
            let n = self.recent.len();
            let prev = n.checked_sub(lag + 1).and_then(|i| self.recent.get(i));
            ctx.extend_from_slice(prev.map_or(x, Vec::as_slice));
        }
        ctx
    }

    fn expected(&self, ts: i64, x_len: usize) -> Vec<f64> {
        (0..x_len)
            .map(|j| {
                self.seasonal.expected(ts, j).unwrap_or_else(|| {
                    self.deviation
                        .as_ref()
                        .map_or(0.0, |d| d.medians.get(j).copied().unwrap_or(0.0))
                })
            })
            .collect()
    }

    /// On the daily profile, settles the count's expected value with [`settled_count`] (the
    /// drop guard's feature; `ctx` holds the window's local residuals first, RobustForest).
    fn settle_count(&self, x: &[f64], ctx: &[f64], expected: &mut [f64]) {
        if self.cfg.algorithm != Algorithm::RobustForest || self.period() != Period::Daily {
            return;
        }
        let Some(j) = self.cfg.drop_guard.as_ref().map(|g| g.feature) else {
            return;
        };
        if let (Some(&v), Some(&local), Some(e)) = (x.get(j), ctx.get(j), expected.get_mut(j)) {
            *e = settled_count(v, v - local, *e);
        }
    }

    fn vector(&self, x: &[f64], ctx: &[f64], expected: &[f64]) -> Vec<f64> {
        let mut v = Vec::with_capacity(self.names.len());
        v.extend_from_slice(x);
        if self.cfg.algorithm == Algorithm::RobustForest {
            let d = x.len();
            v.extend_from_slice(&ctx[..2 * d]);
            v.extend(x.iter().zip(expected).map(|(a, e)| a - e));
            v.extend_from_slice(&ctx[2 * d..]);
        } else {
            v.extend_from_slice(ctx);
        }
        v
    }

    fn train(&mut self) -> Result<(), DetectionError> {
        // Deviation statistics first: the seasonal residual of old rows uses today's profile.
        let d = self.dims;
        let mut medians = Vec::with_capacity(d);
        let mut scales = Vec::with_capacity(d);
        for j in 0..d {
            let col: Vec<f64> = self.history.iter().map(|r| r.x[j]).collect();
            medians.push(median(&col));
        }
        let reference = self.cfg.sample_size.as_ref().map_or(1.0, |s| {
            s.reference(self.history.iter().map(|r| r.x.as_slice()))
        });
        let provisional = Deviation {
            medians: medians.clone(),
            scales: vec![1.0; d],
            inverse: None,
            guard_z: vec![self.cfg.z_guard; d],
            reference,
        };
        self.deviation = Some(provisional);
        let weights: Vec<Vec<f64>> = self.history.iter().map(|r| self.weights(&r.x)).collect();
        let rows: Vec<(Vec<f64>, Vec<f64>)> = self
            .history
            .iter()
            .map(|r| {
                let mut e = self.expected(r.ts, d);
                self.settle_count(&r.x, &r.ctx, &mut e);
                (self.vector(&r.x, &r.ctx, &e), e)
            })
            .collect();
        for j in 0..d {
            let resid: Vec<f64> = self
                .history
                .iter()
                .zip(&rows)
                .zip(&weights)
                .map(|((r, (_, e)), w)| (r.x[j] - e[j]) * w[j])
                .collect();
            let m = median(&resid);
            let abs: Vec<f64> = resid.iter().map(|v| (v - m).abs()).collect();
            let scale = (1.4826 * mad(&resid, m))
                .max(1.2533 * mean(&abs))
                .max(self.cfg.min_scales[j])
                .max(1e-9);
            scales.push(scale);
        }
        let scaled: Vec<Vec<f64>> = self
            .history
            .iter()
            .zip(&rows)
            .zip(&weights)
            .map(|((r, (_, e)), w)| (0..d).map(|j| (r.x[j] - e[j]) * w[j] / scales[j]).collect())
            .collect();
        let inverse = (d > 1)
            .then(|| crate::stats::ridge_inverse(&scaled, d))
            .flatten();
        // Out-of-sample deviations of every recent scored window (flagged ones too: the
        // training history leaves them out, so its tail would be too thin), in today's scales:
        // a value is guarded only beyond all of them and beyond their tail's extrapolation.
        let guard_z = (0..d)
            .map(|j| match &self.cfg.guard_tail {
                Some(g) => g.guard_z(
                    j,
                    self.deviations.iter().map(|r| r[j]),
                    scales[j],
                    self.cfg.z_guard,
                ),
                None => self.cfg.z_guard,
            })
            .collect();
        if let Some(g) = &self.cfg.drop_guard {
            self.drop.calibrate(g, self.cfg.z_guard);
        }
        if let Some(g) = &self.cfg.error_guard {
            self.errors
                .calibrate(g, self.history.iter().map(|r| r.x.as_slice()));
        }
        self.deviation = Some(Deviation {
            medians,
            scales,
            inverse,
            guard_z,
            reference,
        });
        let vectors: Vec<Vec<f64>> = rows.into_iter().map(|(v, _)| v).collect();
        let forest_cfg = ForestConfig {
            seed: self.cfg.forest.seed.wrapping_add(self.version + 1),
            ..self.cfg.forest
        };
        let forest = IsolationForest::fit(&vectors, forest_cfg)?;
        let baseline = Baseline::fit(&vectors)?;
        self.forest = Some((forest, baseline));
        self.version += 1;
        self.since_train = 0;
        Ok(())
    }

    /// Largest robust z of a feature's deviation (and its index), and the relation z: the
    /// Mahalanobis distance of the scaled deviations per feature (`√(eᵀΣ⁻¹e / d)`), which is
    /// large when features that move together stop doing so although each one is ordinary.
    /// `w`: the window's deviation weights ([`Self::weights`]).
    fn max_z(&self, x: &[f64], expected: &[f64], w: &[f64]) -> ((f64, usize), f64) {
        let Some(dev) = &self.deviation else {
            return ((0.0, 0), 0.0);
        };
        let mut best = (0.0, 0);
        let e: Vec<f64> = x
            .iter()
            .zip(expected)
            .enumerate()
            .map(|(j, (&v, &m))| (v - m) * w[j] / dev.scales[j])
            .collect();
        for (j, z) in e.iter().enumerate() {
            if z.abs() > best.0 {
                best = (z.abs(), j);
            }
        }
        let relation = dev.inverse.as_ref().map_or(best.0, |inv| {
            let q: f64 = (0..e.len())
                .map(|a| e[a] * (0..e.len()).map(|b| inv[a][b] * e[b]).sum::<f64>())
                .sum();
            (q.max(0.0) / e.len() as f64).sqrt()
        });
        (best, relation)
    }

    /// The range guard: the first feature whose value lies beyond the range of every value seen
    /// so far by more than `range_tolerance` of that range and deviates from its baseline by at
    /// least its guard z in scales (after `guard_min_windows` of history).
    fn out_of_range(&self, x: &[f64], expected: &[f64], w: &[f64]) -> Option<usize> {
        let (lo, hi) = self.range.as_ref()?;
        let dev = self.deviation.as_ref()?;
        if self.cfg.range_tolerance <= 0.0 || self.seen < self.cfg.guard_min_windows {
            return None;
        }
        let calibrating = |j: usize| {
            self.cfg
                .guard_tail
                .as_ref()
                .is_some_and(|g| g.calibrates(j) && self.deviations.len() < g.min_windows)
        };
        let thin = |j: usize| {
            self.cfg
                .sample_size
                .as_ref()
                .is_some_and(|s| s.thin_tail(x, j))
        };
        x.iter().enumerate().position(|(j, &v)| {
            if calibrating(j) || thin(j) {
                return false;
            }
            let tol = self.cfg.range_tolerance * (hi[j] - lo[j]);
            let beyond = v > hi[j] + tol || v < lo[j] - tol;
            beyond && (v - expected[j]).abs() * w[j] >= dev.guard_z[j] * dev.scales[j]
        })
    }

    /// Extends the run of range-guarded windows by `x` when `guarded` (a guarded window the
    /// model does not learn), else ends it: the range widens by `range_widening` toward the
    /// run's extremes, after the run, so a sustained excursion stays guarded throughout.
    fn note_guarded_run(&mut self, x: &[f64], guarded: bool) {
        if guarded {
            let (lo, hi) = self
                .guarded_run
                .get_or_insert_with(|| (x.to_vec(), x.to_vec()));
            crate::engine::range::widen_toward(lo, hi, x, 1.0);
        } else if let Some((run_lo, run_hi)) = self.guarded_run.take()
            && let Some((lo, hi)) = self.range.as_mut()
        {
            let share = self.cfg.range_widening;
            crate::engine::range::widen_toward(lo, hi, &run_lo, share);
            crate::engine::range::widen_toward(lo, hi, &run_hi, share);
        }
    }

    /// Observes one window's base values at `ts` (window start); `floor_ok` records whether a
    /// flag on it would pass the floors (for threshold derivation).
    pub fn observe(&mut self, ts: i64, x: &[f64], floor_ok: bool) -> Result<Step, DetectionError> {
        if x.len() != self.dims {
            return Err(DetectionError::DimensionMismatch {
                expected: self.dims,
                got: x.len(),
            });
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(DetectionError::NonFinite { feature: i });
        }
        let ctx = self.context(x);
        let mut expected = self.expected(ts, x.len());
        self.settle_count(x, &ctx, &mut expected);
        let step = match &self.forest {
            None => {
                self.learn(ts, x, ctx.clone());
                let seen = self.history.len();
                if seen >= self.cfg.warmup {
                    self.train()?;
                }
                self.last_vector = self.vector(x, &ctx, &expected);
                Step::WarmingUp {
                    seen,
                    needed: self.cfg.warmup,
                }
            }
            Some((forest, _)) => {
                let v = self.vector(x, &ctx, &expected);
                let s = forest.score(&v)?;
                let w = self.weights(x);
                let (max_z, relation) = self.max_z(x, &expected, &w);
                let range = self.out_of_range(x, &expected, &w);
                let on_profile = self.period() != Period::None;
                let local = self
                    .cfg
                    .drop_guard
                    .as_ref()
                    .and_then(|g| self.local_median(g.feature));
                let dropped = self.cfg.drop_guard.as_ref().and_then(|g| {
                    let v = *x.get(g.feature)?;
                    // Only what is both unseasonal and sudden: a level that drifted for hours
                    // (or a noisy slot of a one-week profile) is not an outage.
                    let dev = drop::residual(v, *expected.get(g.feature)?, local.unwrap_or(v));
                    self.drop.check(g, dev, on_profile).then_some(g.feature)
                });
                let errored = self.cfg.error_guard.as_ref().and_then(|g| {
                    let slot = expected.get(g.errors).copied().unwrap_or(0.0);
                    self.errors.check(g, x, slot).then_some(g.errors)
                });
                let fired = range
                    .map(|j| (Guard::Range, j))
                    .or(dropped.map(|j| (Guard::Drop, j)))
                    .or(errored.map(|j| (Guard::Errors, j)));
                let guard = fired.map(|(_, j)| j);
                let forced = guard.is_some();
                let score = match self.cfg.algorithm {
                    Algorithm::IsolationForest if forced => s.max(max_z.0 / (max_z.0 + 3.0)),
                    Algorithm::IsolationForest => s,
                    Algorithm::RobustForest => {
                        let w = self.cfg.residual_weight;
                        let r = residual_term(self.cfg.residual_form, max_z.0.max(relation));
                        if forced && !self.cfg.likelihood.learn_guarded {
                            1.0
                        } else {
                            let l = self.likelihood.update((1.0 - w) * s + w * r);
                            if forced { 1.0 } else { l }
                        }
                    }
                };
                let max_z = guard.map_or(max_z, |j| {
                    let dev = self.deviation.as_ref().map_or(1.0, |d| d.scales[j]);
                    ((x[j] - expected[j]).abs() * w[j] / dev, j)
                });
                let flagged = forced || score >= self.cfg.algorithm.exclude_level();
                // A guard's record leaves out what the core flagged: an incident the model
                // caught is not the guard's normal.
                if let Some(g) = &self.cfg.drop_guard {
                    self.drop.record(g, flagged);
                }
                if let Some(g) = &self.cfg.error_guard {
                    self.errors.record(g, flagged);
                }
                self.excluded_run = if flagged { self.excluded_run + 1 } else { 0 };
                let recurs = self.recurrence.note(
                    ts,
                    flagged,
                    self.cfg.recurrence_ms,
                    self.cfg.recurrence_days,
                );
                let adapted = recurs
                    || (self.cfg.adapt_after > 0 && self.excluded_run > self.cfg.adapt_after);
                self.note_guarded_run(x, range.is_some() && !adapted);
                if !flagged || adapted {
                    self.learn(ts, x, ctx);
                }
                self.scored.push_back(ReplayWindow {
                    start_ms: ts,
                    score,
                    forced,
                    floor_ok,
                });
                while self.scored.len() > self.cfg.history {
                    self.scored.pop_front();
                }
                if self.cfg.guard_tail.as_ref().is_some_and(GuardTail::any) {
                    self.deviations.push_back(
                        x.iter()
                            .zip(&expected)
                            .zip(&w)
                            .map(|((a, e), w)| (a - e).abs() * w)
                            .collect(),
                    );
                    while self.deviations.len() > self.cfg.history {
                        self.deviations.pop_front();
                    }
                }
                self.last_vector = v;
                let version = self.version;
                self.since_train += 1;
                if self.cfg.retrain_every > 0 && self.since_train >= self.cfg.retrain_every {
                    self.train()?;
                }
                Step::Scored(KeyScore {
                    score,
                    guard: fired.map(|(g, _)| g),
                    max_z,
                    model_version: version,
                })
            }
        };
        self.last_expected = expected;
        self.seen += 1;
        self.recent.push_back(x.to_vec());
        let keep = self.cfg.local_window.max(self.cfg.shingle).max(1);
        while self.recent.len() > keep {
            self.recent.pop_front();
        }
        Ok(step)
    }

    /// Explains the last observed window per base feature: the forest contributions of a
    /// feature's inputs (value, residuals, lags) summed, its actual value, its typical value
    /// (seasonal baseline or history median) and its deviation's robust z; most responsible
    /// first (`None` before the first model).
    pub fn explain_last(&self) -> Option<Result<Explanation, DetectionError>> {
        let (forest, baseline) = self.forest.as_ref()?;
        let dev = self.deviation.as_ref()?;
        let e = match explain(forest, baseline, &self.last_vector, &self.names) {
            Ok(e) => e,
            Err(err) => return Some(Err(err)),
        };
        let w = self.weights(&self.last_vector[..self.dims]);
        let mut out: Vec<crate::explain::FeatureContribution> = self.names[..self.dims]
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let actual = self.last_vector[j];
                let typical = self.last_expected.get(j).copied().unwrap_or(actual);
                crate::explain::FeatureContribution {
                    feature: name.clone(),
                    actual,
                    typical,
                    robust_z: ((actual - typical).abs() * w[j] / dev.scales[j])
                        .min(crate::explain::Z_CAP),
                    contribution: 0.0,
                }
            })
            .collect();
        for c in &e.contributions {
            let base = base_name(&c.feature);
            if let Some(o) = out.iter_mut().find(|o| o.feature == base) {
                o.contribution += c.contribution;
            }
        }
        out.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
        Some(Ok(Explanation {
            score: e.score,
            contributions: out,
        }))
    }
}
