//! The detector core: one type, built from a Detector's settings, that takes windowed feature
//! vectors per key and yields scores, explanations and alert decisions. `helios detect` runs
//! it on live windows, `helios eval` on labelled benchmarks and `helios backtest` on history,
//! so every figure describes the code a Detector runs.
//!
//! ```text
//! (key, window, values) ─▶ KeyModel (warm-up, history, seasonal baseline, forest, range, drop
//!                          and error guards)
//!                            │ score, forced
//!                            ▼
//!                          threshold rule (explicit | contamination | alert budget)
//!                            │ anomalous
//!                            ▼
//!                          explanation ─▶ AlertState (consecutive, cooldown, floors) ─▶ Transition
//! ```

pub mod drop;
pub mod errors;
pub mod likelihood;
pub mod model;
pub mod model_config;
pub mod range;
pub mod recurrence;
pub mod sample_size;
pub mod seasonal;
pub mod tail_record;
pub mod threshold;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::DetectionError;
use crate::alert::{AlertPolicy, AlertState, Transition, WindowVerdict};
use crate::explain::Explanation;
pub use model::Guard;
use model::{KeyModel, ModelConfig, Step, base_name};
use seasonal::Period;
use threshold::{ThresholdDecision, ThresholdRule, decide};

/// How often per key and week the range guard may flag healthy traffic on its own when the
/// Detector states no alert budget (an explicit threshold or contamination): each feature's
/// guard z is calibrated to this share of the key's windows.
pub const GUARD_ALERTS_PER_WEEK: f64 = 1.0;

/// How often per key and week the guards (range, drop, errors) may each flag healthy traffic
/// on their own: the Detector's stated alert budget, so a Detector asking for fewer pages
/// gets quieter guards too (the default budget of 1 gives [`GUARD_ALERTS_PER_WEEK`]);
/// without a budget, [`GUARD_ALERTS_PER_WEEK`].
pub fn guard_alerts_per_week(rule: ThresholdRule) -> f64 {
    match rule {
        // A budget that is not positive and finite is refused by `DetectorCore::new`.
        ThresholdRule::Budget {
            false_alerts_per_week,
        } => false_alerts_per_week,
        _ => GUARD_ALERTS_PER_WEEK,
    }
}

/// Everything a detector core needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoreConfig {
    /// Base feature names in model order (e.g. `event_count`, `metrics.cpu`).
    pub features: Vec<String>,
    /// The per-key model.
    pub model: ModelConfig,
    /// How scores become "anomalous".
    pub rule: ThresholdRule,
    /// The alert policy (its `detector_id` is part of every fingerprint).
    pub policy: AlertPolicy,
    /// Distance between window starts (ms): budgets per week count windows with it.
    pub hop_ms: i64,
}

/// The core's answer for one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Final score in [0, 1] (`None` while warming up).
    pub score: Option<f64>,
    /// Flagged (above the threshold, or a guard fired).
    pub anomalous: bool,
    /// The guard that flagged it whatever the threshold, if any.
    pub guard: Option<Guard>,
    /// Threshold in force for this key (`None` while warming up).
    pub threshold: Option<f64>,
    /// Model version that scored it (0 while warming up).
    pub model_version: u64,
    /// Why it scored as it did (flagged windows only).
    pub explanation: Option<Explanation>,
    /// Driving base features, most responsible first (flagged windows only).
    pub drivers: Vec<String>,
    /// What the alert policy did.
    pub transition: Transition,
    /// Warm-up progress `(seen, needed)` while warming up.
    pub warmup: Option<(usize, usize)>,
}

impl Verdict {
    /// A guard flagged it whatever the threshold.
    pub fn forced(&self) -> bool {
        self.guard.is_some()
    }
}

/// Model state of one key, for status and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyStatus {
    /// Model version (0 = warming up).
    pub model_version: u64,
    /// Windows in the training history.
    pub history: usize,
    /// Threshold in force and why.
    pub threshold: Option<ThresholdDecision>,
    /// Seasonal profile in use.
    pub period: Period,
    /// Time covered by the seasonal profile (ms).
    pub seasonal_span_ms: i64,
}

/// One detector over all its keys.
#[derive(Debug, Clone)]
pub struct DetectorCore {
    cfg: CoreConfig,
    keys: BTreeMap<String, KeyModel>,
    alerts: AlertState,
}

/// A window as stored before a restart: its verdict replaces the recomputed one in the alert
/// state, so a restored key continues exactly where it stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVerdict {
    /// Stored score (`None` while it was warming up).
    pub score: Option<f64>,
    /// Stored flag.
    pub anomalous: bool,
    /// Stored drivers.
    pub drivers: Vec<String>,
}

impl DetectorCore {
    /// Validates the configuration and creates an empty core.
    pub fn new(mut cfg: CoreConfig) -> Result<Self, DetectionError> {
        if cfg.model.guard_tail.is_none() {
            // Whatever the threshold rule, so scores never depend on it. Gauges
            // (`metrics.*`) keep the fixed z.
            cfg.model.guard_tail = Some(range::GuardTail::new(
                &cfg.features,
                cfg.hop_ms,
                &cfg.model,
                None,
                guard_alerts_per_week(cfg.rule),
            ));
        }
        if let Some(g) = cfg.model.guard_tail.as_ref().map(|g| g.rate) {
            // The range guard's per-feature rate, acting after a day of windows (the drop
            // guard: a day after each seasonal profile starts).
            let (f, history) = (&cfg.features, cfg.model.history);
            let day = (seasonal::DAY_MS / cfg.hop_ms.max(1)).max(100) as usize;
            if cfg.model.drop_guard.is_none() {
                cfg.model.drop_guard = drop::DropGuardConfig::for_features(f, g, day, history);
            }
            if cfg.model.error_guard.is_none() {
                cfg.model.error_guard = errors::ErrorGuardConfig::for_features(f, g, day, history);
            }
        }
        if cfg.model.sample_size.is_none() {
            cfg.model.sample_size = sample_size::SampleSize::for_features(&cfg.features);
        }
        cfg.model.validate(cfg.features.len())?;
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = cfg.features.iter().find(|f| !seen.insert(f.as_str())) {
            return Err(DetectionError::InvalidConfig(format!(
                "duplicate feature {dup}"
            )));
        }
        if cfg.hop_ms <= 0 {
            return Err(DetectionError::InvalidConfig("hop must be positive".into()));
        }
        match cfg.rule {
            ThresholdRule::Score(t) if !(0.0..=1.0).contains(&t) => {
                return Err(DetectionError::InvalidConfig(format!(
                    "threshold {t} not in [0, 1]"
                )));
            }
            ThresholdRule::Contamination(c) if !(c > 0.0 && c <= 0.5) => {
                return Err(DetectionError::InvalidConfig(format!(
                    "contamination {c} not in (0, 0.5]"
                )));
            }
            ThresholdRule::Budget {
                false_alerts_per_week,
            } if !(false_alerts_per_week > 0.0 && false_alerts_per_week.is_finite()) => {
                return Err(DetectionError::InvalidConfig(format!(
                    "falseAlertsPerWeek {false_alerts_per_week} must be positive"
                )));
            }
            _ => {}
        }
        let alerts = AlertState::new(cfg.policy.clone(), &cfg.features);
        Ok(Self {
            cfg,
            keys: BTreeMap::new(),
            alerts,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    /// Model input names (base, derived components, lags).
    pub fn input_names(&self) -> Vec<String> {
        model::input_names(&self.cfg.model, &self.cfg.features)
    }

    /// The model of one key.
    pub fn model(&self, key: &str) -> Option<&KeyModel> {
        self.keys.get(key)
    }

    /// Status of one key.
    pub fn key_status(&self, key: &str) -> Option<KeyStatus> {
        self.keys.get(key).map(|m| KeyStatus {
            model_version: m.version(),
            history: m.history_len(),
            threshold: m.threshold().cloned(),
            period: m.period(),
            seasonal_span_ms: m.seasonal_span_ms(),
        })
    }

    /// Every key the core has seen.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Whether a flagged window with these values would pass the floors (drivers unknown: a
    /// feature without a floor could be one, so it passes).
    fn floor_ok(&self, values: &[f64]) -> bool {
        let floors = &self.cfg.policy.floors;
        floors.is_empty()
            || self
                .cfg
                .features
                .iter()
                .zip(values)
                .any(|(f, v)| floors.get(f).is_none_or(|floor| v >= floor))
    }

    fn step(&mut self, key: &str, start_ms: i64, values: &[f64]) -> Result<Step, DetectionError> {
        let floor_ok = self.floor_ok(values);
        if !self.keys.contains_key(key) {
            let m = KeyModel::new(self.cfg.model.clone(), &self.cfg.features)?;
            self.keys.insert(key.to_string(), m);
        }
        let Some(m) = self.keys.get_mut(key) else {
            return Err(DetectionError::InvalidConfig("key vanished".into()));
        };
        let before = m.version();
        let step = m.observe(start_ms, values, floor_ok)?;
        if m.version() != before || m.threshold().is_none() && m.version() > 0 {
            let recent: Vec<_> = m.scored().iter().copied().collect();
            let d = decide(
                self.cfg.rule,
                &recent,
                &self.cfg.policy,
                self.cfg.hop_ms,
                self.cfg.model.algorithm.min_threshold(),
            );
            m.set_threshold(d);
        }
        Ok(step)
    }

    /// Scores one closed window of `key` and runs the alert policy on it.
    pub fn observe(
        &mut self,
        key: &str,
        start_ms: i64,
        end_ms: i64,
        values: &[f64],
    ) -> Result<Verdict, DetectionError> {
        // A window is judged by the threshold in force before it (a retrain it triggers
        // applies from the next window on).
        let threshold = self
            .keys
            .get(key)
            .and_then(|m| m.threshold())
            .map(|t| t.value);
        let step = self.step(key, start_ms, values)?;
        let m = self.keys.get(key);
        let (score, anomalous, guard, model_version, warmup, max_z) = match step {
            Step::WarmingUp { seen, needed } => (None, false, None, 0, Some((seen, needed)), None),
            Step::Scored(s) => {
                let t = threshold.unwrap_or(threshold::CALIBRATING_THRESHOLD);
                let anomalous = s.forced() || crate::alert::exceeds(s.score, t);
                (
                    Some(s.score),
                    anomalous,
                    s.guard,
                    s.model_version,
                    None,
                    Some(s.max_z),
                )
            }
        };
        let explanation = if anomalous {
            m.and_then(KeyModel::explain_last).transpose()?
        } else {
            None
        };
        let drivers = match (&explanation, max_z) {
            (Some(e), Some((z, j))) => {
                drivers(e, guard.is_some().then_some((z, j)), &self.cfg.features)
            }
            _ => Vec::new(),
        };
        let verdict = WindowVerdict {
            partition_key: key.to_string(),
            window_start_ms: start_ms,
            window_end_ms: end_ms,
            score: score.unwrap_or(0.0),
            anomalous,
            values: self.values_map(values),
            drivers: drivers.clone(),
        };
        let transition = self.alerts.observe(&verdict);
        Ok(Verdict {
            score,
            anomalous,
            guard,
            threshold: if warmup.is_some() { None } else { threshold },
            model_version,
            explanation,
            drivers,
            transition,
            warmup,
        })
    }

    /// Scores one window of `key` as [`DetectorCore::observe`] does, then puts the key's model
    /// and alert state back as they were: a maintenance window is judged (its verdict says
    /// what would have fired) but nothing of it is learnt or carried into the next window.
    pub fn observe_muted(
        &mut self,
        key: &str,
        start_ms: i64,
        end_ms: i64,
        values: &[f64],
    ) -> Result<Verdict, DetectionError> {
        let model = self.keys.get(key).cloned();
        let held = self.alerts.hold(key);
        let verdict = self.observe(key, start_ms, end_ms, values);
        match model {
            Some(m) => {
                self.keys.insert(key.to_string(), m);
            }
            None => {
                self.keys.remove(key);
            }
        }
        self.alerts.release(key, held);
        verdict
    }

    /// Rebuilds a key after a restart: the model learns the stored values, the alert state
    /// replays the stored verdict.
    pub fn restore(
        &mut self,
        key: &str,
        start_ms: i64,
        end_ms: i64,
        values: &[f64],
        stored: &StoredVerdict,
    ) -> Result<(), DetectionError> {
        self.step(key, start_ms, values)?;
        let verdict = WindowVerdict {
            partition_key: key.to_string(),
            window_start_ms: start_ms,
            window_end_ms: end_ms,
            score: stored.score.unwrap_or(0.0),
            anomalous: stored.anomalous,
            values: self.values_map(values),
            drivers: stored.drivers.clone(),
        };
        self.alerts.observe(&verdict);
        Ok(())
    }

    fn values_map(&self, values: &[f64]) -> BTreeMap<String, f64> {
        self.cfg
            .features
            .iter()
            .cloned()
            .zip(values.iter().copied())
            .collect()
    }
}

/// Driving base features of an explanation, most responsible first (derived inputs map to
/// their base); a guard's feature leads when a guard flagged the window.
pub fn drivers(e: &Explanation, guard: Option<(f64, usize)>, features: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some((_, j)) = guard
        && let Some(f) = features.get(j)
    {
        out.push(f.clone());
    }
    for name in e.drivers() {
        let base = base_name(name);
        if features.iter().any(|f| f == base) && !out.iter().any(|o| o == base) {
            out.push(base.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests;
