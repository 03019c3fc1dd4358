//! The pure core of the worker: selector → partition key → event-time windows → features →
//! per-key streaming model → alert policy. No I/O: the worker feeds events in, closes windows
//! up to the watermark, restores unknown keys from stored history, and writes what
//! [`Pipeline::score`] returns.
//!
//! Replay safety: per key the pipeline remembers the start of the last window it emitted (or
//! that was restored from storage) and never emits a window at or before it again. Replaying
//! Kafka from the committed offset therefore re-creates only windows that were not yet written,
//! and gaps between the stored history and the first replayed window are filled with empty
//! windows, as the windows do themselves within a run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use helios_detection::DetectionError;
use helios_detection::alert::{Alert, Transition};
use helios_detection::engine::seasonal::Period;
use helios_detection::engine::{DetectorCore, Guard, KeyStatus, StoredVerdict};
use helios_detection::event::Event;
use helios_detection::explain::Explanation;
use helios_detection::features::{FeatureAccumulator, Observation};
use helios_detection::forest::IsolationForest;
use helios_detection::window::ClosedWindow;

use crate::config::DetectorConfig;
use crate::feedback::Suppressions;
use crate::offsets::needed_bound;
use crate::windows::KeyedWindows;

/// Gap windows synthesised at most between stored history and a replayed window.
pub const MAX_GAP_FILL: i64 = 10_000;

/// What happened to one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Not selected by the detector.
    Filtered,
    /// Older than the watermark: dropped.
    Late,
    /// Added to its windows; they all close once the close bound reaches `needs`.
    Accepted {
        /// The event's partition key.
        key: String,
        /// Close bound (ms) after which every window of the event is closed.
        needs: i64,
    },
}

/// Windows that closed together and the bound they closed through.
#[derive(Debug, Clone)]
pub struct Closing {
    /// Every window ending at or before this (ms) is now closed.
    pub bound: i64,
    /// The closed windows, ordered by (start, key).
    pub windows: Vec<ClosedWindow<FeatureAccumulator>>,
}

/// One window as stored: what a restarted worker replays to rebuild a key.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredWindow {
    /// Window start (ms).
    pub start_ms: i64,
    /// Window end (ms).
    pub end_ms: i64,
    /// Feature values in the detector's feature order.
    pub values: Vec<f64>,
    /// Score (`None` while warming up).
    pub score: Option<f64>,
    /// Whether the model flagged it.
    pub anomalous: bool,
    /// Driving features of a flagged window.
    pub drivers: Vec<String>,
}

/// One scored window, ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowResult {
    /// Partition key.
    pub key: String,
    /// The window and its outcome.
    pub window: StoredWindow,
    /// Model version that scored it (0 while warming up).
    pub model_version: u64,
    /// The guard that flagged it whatever the threshold (`None`: the threshold, or not flagged).
    pub guard: Option<Guard>,
}

/// A new alert episode.
#[derive(Debug, Clone, PartialEq)]
pub struct FiredAnomaly {
    /// The alert (deterministic id, fingerprint, severity, episode start).
    pub alert: Alert,
    /// Explanation of the firing window.
    pub explanation: Explanation,
    /// Start of the firing window (ms).
    pub fired_window_start_ms: i64,
    /// Feature values of the firing window.
    pub values: Vec<f64>,
    /// Model version that scored the firing window.
    pub model_version: u64,
    /// The guard that flagged the firing window (`None`: its score passed the threshold).
    pub guard: Option<Guard>,
}

/// An alert episode that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedAnomaly {
    /// Alert id.
    pub alert_id: String,
    /// Partition key.
    pub key: String,
    /// End of the last anomalous window (ms).
    pub end_ms: i64,
}

/// An alert a false-positive label suppressed (recorded in the windows, never notified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressedAnomaly {
    /// The alert id it would have had.
    pub alert_id: String,
    /// Partition key.
    pub key: String,
    /// The labelled anomaly whose suppression covered it, or `maintenance:<window>`.
    pub by: String,
}

/// A freshly (re)trained model of one key.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSnapshot {
    /// Partition key.
    pub key: String,
    /// Model version.
    pub version: u64,
    /// Model input names (base features, then lagged copies).
    pub feature_names: Vec<String>,
    /// The trained forest; the store encodes it (`IsolationForest::snapshot`) when it persists
    /// the model, so a replay that keeps no models pays no JSON per retrain.
    pub forest: IsolationForest,
}

/// Everything one batch of closed windows produced.
#[derive(Debug, Clone, Default)]
pub struct Scored {
    /// Scored windows (skipped replays excluded, gap windows included).
    pub windows: Vec<WindowResult>,
    /// New alerts.
    pub fired: Vec<FiredAnomaly>,
    /// Ended alerts.
    pub resolved: Vec<ResolvedAnomaly>,
    /// Alerts suppressed by feedback.
    pub suppressed: Vec<SuppressedAnomaly>,
    /// Models trained during the batch.
    pub models: Vec<ModelSnapshot>,
    /// Windows dropped because they were emitted before (replay, idle close).
    pub skipped: usize,
    /// Seconds spent scoring each window (model, explanation, policy).
    pub score_seconds: Vec<f64>,
}

#[derive(Debug, Clone, Default)]
struct KeyProgress {
    last_start: Option<i64>,
    model_version: u64,
    warmup_seen: usize,
}

/// Warm-up and model progress over every key the pipeline knows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrainingProgress {
    /// Keys seen (restored or scored).
    pub keys: usize,
    /// Keys with a trained model.
    pub trained_keys: usize,
    /// Most warm-up windows collected by a key still warming up.
    pub warmup_seen: usize,
    /// Windows a key needs before its first model.
    pub warmup_needed: usize,
    /// Highest model version of any key (0 before the first model).
    pub model_version: u64,
    /// Threshold on the anomaly score (0–1) of that newest model.
    pub threshold: Option<f64>,
    /// Which rule set the threshold (`threshold`, `contamination`, `alertBudget`).
    pub threshold_rule: Option<&'static str>,
    /// Why the threshold has its value (for the `ModelTrained` message).
    pub threshold_reason: Option<String>,
    /// Seasonal baseline of that key, and the time its profile covers (ms).
    pub seasonality: Option<(Period, i64)>,
}

/// The detector's in-memory state.
pub struct Pipeline {
    cfg: DetectorConfig,
    suppressions: Suppressions,
    windows: KeyedWindows,
    core: DetectorCore,
    keys: HashMap<String, KeyProgress>,
    last_values: HashMap<String, Vec<f64>>,
    max_ts: Option<i64>,
}

impl Pipeline {
    /// A fresh pipeline for a configuration.
    pub fn new(cfg: DetectorConfig) -> Result<Self, DetectionError> {
        cfg.window.validate()?;
        let windows = KeyedWindows::new(cfg.window);
        let core = DetectorCore::new(cfg.core.clone())?;
        Ok(Self {
            cfg,
            suppressions: Suppressions::default(),
            windows,
            core,
            keys: HashMap::new(),
            last_values: HashMap::new(),
            max_ts: None,
        })
    }

    /// Scores with the false-positive suppressions in `s` (shared: added ones apply at once).
    pub fn with_suppressions(mut self, s: Suppressions) -> Self {
        self.suppressions = s;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &DetectorConfig {
        &self.cfg
    }

    /// The core's view of `key`: model version, history, threshold, seasonal profile.
    pub fn key_status(&self, key: &str) -> Option<KeyStatus> {
        self.core.key_status(key)
    }

    /// Warm-up and model progress over every known key.
    pub fn training(&self) -> TrainingProgress {
        let mut out = TrainingProgress {
            warmup_needed: self.cfg.warmup_windows(),
            ..TrainingProgress::default()
        };
        for (key, p) in &self.keys {
            out.keys += 1;
            if p.model_version == 0 {
                out.warmup_seen = out.warmup_seen.max(p.warmup_seen);
                continue;
            }
            out.trained_keys += 1;
            if p.model_version > out.model_version {
                out.model_version = p.model_version;
                if let Some(st) = self.core.key_status(key) {
                    out.threshold = st.threshold.as_ref().map(|t| t.value);
                    out.threshold_reason = st.threshold.map(|t| t.reason);
                    out.threshold_rule = Some(self.cfg.core.rule.name());
                    out.seasonality = Some((st.period, st.seasonal_span_ms));
                }
            }
        }
        out
    }

    /// Whether any accepted event exists (something to flush).
    pub fn has_events(&self) -> bool {
        self.max_ts.is_some()
    }

    /// Feeds one event.
    pub fn ingest(&mut self, e: &Event) -> Ingested {
        if !self.cfg.selector.matches(e) {
            return Ingested::Filtered;
        }
        let key = self.cfg.partition_by.key(e);
        if !self
            .windows
            .ingest(&key, e.timestamp_ms, &Observation::of(e, &self.cfg.metrics))
        {
            return Ingested::Late;
        }
        self.max_ts = Some(
            self.max_ts
                .map_or(e.timestamp_ms, |m| m.max(e.timestamp_ms)),
        );
        let w = self.cfg.window;
        Ingested::Accepted {
            key,
            needs: needed_bound(e.timestamp_ms, w.size_ms, w.hop_ms),
        }
    }

    /// Closes the windows ending at or before `bound` (the watermark).
    pub fn close(&mut self, bound: i64) -> Closing {
        Closing {
            bound,
            windows: self.windows.close(bound),
        }
    }

    /// The bound that closes every window holding an event (idle close).
    pub fn flush_bound(&self) -> Option<i64> {
        let w = self.cfg.window;
        self.max_ts.map(|m| needed_bound(m, w.size_ms, w.hop_ms))
    }

    /// Keys among `windows` this pipeline has not seen yet (restore them before scoring).
    pub fn unknown_keys(&self, windows: &[ClosedWindow<FeatureAccumulator>]) -> BTreeSet<String> {
        windows
            .iter()
            .filter(|w| !self.keys.contains_key(&w.key))
            .map(|w| w.key.clone())
            .collect()
    }

    /// Rebuilds one key from its stored windows (oldest first): the model relearns the
    /// features, the alert state replays the stored verdicts.
    pub fn restore(&mut self, key: &str, history: &[StoredWindow]) -> Result<(), DetectionError> {
        let mut progress = KeyProgress::default();
        for w in history {
            if progress.last_start.is_some_and(|l| w.start_ms <= l) {
                continue;
            }
            // A maintenance window was never learnt: it is not relearnt either.
            if self.cfg.maintenance.covering(key, w.start_ms).is_none() {
                let stored = StoredVerdict {
                    score: w.score,
                    anomalous: w.anomalous,
                    drivers: w.drivers.clone(),
                };
                self.core
                    .restore(key, w.start_ms, w.end_ms, &w.values, &stored)?;
            }
            if let Some(m) = self.core.model(key)
                && m.version() == 0
            {
                progress.warmup_seen = m.history_len();
            }
            self.last_values.insert(key.to_string(), w.values.clone());
            progress.last_start = Some(w.start_ms);
        }
        progress.model_version = self.core.model(key).map_or(0, |m| m.version());
        self.keys.insert(key.to_string(), progress);
        Ok(())
    }

    /// Scores closed windows in order; keys must be known (see [`Pipeline::unknown_keys`]).
    pub fn score(
        &mut self,
        windows: Vec<ClosedWindow<FeatureAccumulator>>,
    ) -> Result<Scored, DetectionError> {
        let mut out = Scored::default();
        let (size, hop) = (self.cfg.window.size_ms, self.cfg.window.hop_ms);
        for w in windows {
            let last = self.keys.get(&w.key).and_then(|p| p.last_start);
            if last.is_some_and(|l| w.start_ms <= l) {
                out.skipped += 1;
                continue;
            }
            if let Some(l) = last {
                let missing = (w.start_ms - l) / hop - 1;
                if (1..=MAX_GAP_FILL).contains(&missing) {
                    let empty = FeatureAccumulator::default();
                    for i in 1..=missing {
                        let start = l + i * hop;
                        self.score_one(&w.key, start, start + size, &empty, &mut out)?;
                    }
                }
            }
            self.score_one(&w.key, w.start_ms, w.end_ms, &w.acc, &mut out)?;
        }
        Ok(out)
    }

    fn score_one(
        &mut self,
        key: &str,
        start_ms: i64,
        end_ms: i64,
        acc: &FeatureAccumulator,
        out: &mut Scored,
    ) -> Result<(), DetectionError> {
        let started = Instant::now();
        let mut values = acc.values(&self.cfg.features);
        // A gauge without a sample in this window keeps its last value (0 before the first).
        let last = self.last_values.get(key);
        for (j, v) in values.iter_mut().enumerate() {
            if !v.is_finite() {
                *v = last.and_then(|l| l.get(j)).copied().unwrap_or(0.0);
            }
        }
        self.last_values.insert(key.to_string(), values.clone());
        let muted = self
            .cfg
            .maintenance
            .covering(key, start_ms)
            .map(str::to_string);
        let verdict = match &muted {
            Some(_) => self.core.observe_muted(key, start_ms, end_ms, &values)?,
            None => self.core.observe(key, start_ms, end_ms, &values)?,
        };
        let window = StoredWindow {
            start_ms,
            end_ms,
            values,
            score: verdict.score,
            anomalous: verdict.anomalous,
            drivers: verdict.drivers.clone(),
        };
        let model_version = verdict.model_version;
        match verdict.transition {
            Transition::Fired(alert) => {
                let covered = verdict.explanation.as_ref().and_then(|e| {
                    let lead = e.contributions.first()?;
                    self.suppressions
                        .covering(key, (&lead.feature, lead.actual, lead.typical))
                });
                if let Some(name) = muted {
                    tracing::info!(key, id = %alert.id, window = %name, "anomaly in a maintenance window");
                    out.suppressed.push(SuppressedAnomaly {
                        alert_id: alert.id,
                        key: key.to_string(),
                        by: format!("maintenance:{name}"),
                    });
                } else if let Some(by) = covered {
                    tracing::info!(key, id = %alert.id, %by, "anomaly suppressed by feedback");
                    out.suppressed.push(SuppressedAnomaly {
                        alert_id: alert.id,
                        key: key.to_string(),
                        by,
                    });
                } else if let Some(explanation) = verdict.explanation {
                    out.fired.push(FiredAnomaly {
                        alert,
                        explanation,
                        fired_window_start_ms: start_ms,
                        values: window.values.clone(),
                        model_version,
                        guard: verdict.guard,
                    });
                }
            }
            Transition::Resolved { alert_id, end_ms } => out.resolved.push(ResolvedAnomaly {
                alert_id,
                key: key.to_string(),
                end_ms,
            }),
            Transition::Suppressed { fingerprint } => {
                tracing::debug!(key, %fingerprint, "anomaly suppressed by cooldown");
            }
            Transition::Quiet | Transition::Pending { .. } | Transition::Continuing { .. } => {}
        }
        let progress = self.keys.entry(key.to_string()).or_default();
        progress.last_start = Some(start_ms);
        if let Some((seen, _)) = verdict.warmup {
            progress.warmup_seen = seen;
        }
        if let Some(m) = self.core.model(key)
            && m.version() != progress.model_version
        {
            progress.model_version = m.version();
            if let Some(forest) = m.forest() {
                out.models.push(ModelSnapshot {
                    key: key.to_string(),
                    version: m.version(),
                    feature_names: m.input_names().to_vec(),
                    forest: forest.clone(),
                });
            }
        }
        out.windows.push(WindowResult {
            key: key.to_string(),
            window,
            model_version,
            guard: verdict.guard,
        });
        out.score_seconds.push(started.elapsed().as_secs_f64());
        Ok(())
    }
}

/// Feature values as a name → value map (the `features` JSON).
pub fn values_map(features: &[String], values: &[f64]) -> BTreeMap<String, f64> {
    features
        .iter()
        .zip(values)
        .map(|(f, v)| (f.clone(), *v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use helios_detection::explain::FeatureContribution;

    fn config(extra: serde_json::Value) -> DetectorConfig {
        let mut spec = serde_json::json!({
            "pipelineRef": {"name": "p"},
            "selector": {"services": ["a", "b"]},
            "window": {"size": "1s", "allowedLateness": "0s"},
            "features": ["event_count", "p99_latency"],
            "model": {"trees": 50, "threshold": -0.7, "seed": 1},
            "training": {"warmupWindows": 20, "retrainInterval": "1h", "historyWindows": 100},
            "alerting": {"cooldown": "0s"}
        });
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                s.insert(k.clone(), v.clone());
            }
        }
        let mut cfg = DetectorConfig::from_json(&spec.to_string(), "ns/det").unwrap();
        // One-second windows: the range guard acts after the warm-up, not after a day (or
        // a week of calibration).
        cfg.apply_guard_wait(20);
        cfg
    }

    fn event(service: &str, ts: i64, latency: f64) -> Event {
        serde_json::from_value(serde_json::json!({
            "timestamp": ts, "service": service, "latency_ms": latency
        }))
        .unwrap()
    }

    fn events(windows: std::ops::Range<i64>, spike: &[i64]) -> Vec<Event> {
        super::tests_support::events(windows, spike, 2)
    }

    fn run(p: &mut Pipeline, evs: &[Event], flush: bool) -> Scored {
        let mut all = Scored::default();
        for e in evs {
            p.ingest(e);
        }
        let bound = if flush {
            p.flush_bound().unwrap()
        } else {
            evs.iter().map(|e| e.timestamp_ms).max().unwrap()
        };
        let closing = p.close(bound);
        let unknown = p.unknown_keys(&closing.windows);
        for k in unknown {
            p.restore(&k, &[]).unwrap();
        }
        let s = p.score(closing.windows).unwrap();
        all.windows.extend(s.windows);
        all.fired.extend(s.fired);
        all.resolved.extend(s.resolved);
        all.suppressed.extend(s.suppressed);
        all.models.extend(s.models);
        all.skipped += s.skipped;
        all
    }

    /// Windows `windows` of `a` and `b` (15–24 events each), `spiking` with 10× latency in
    /// `spike`.
    fn events_of(windows: std::ops::Range<i64>, spike: &[i64], spiking: &[&str]) -> Vec<Event> {
        let mut out = Vec::new();
        for w in windows {
            for (si, s) in ["a", "b"].iter().enumerate() {
                let n = 15 + (tests_support::noise(w, 0, si as i64) * 10.0) as i64;
                for i in 0..n {
                    let base = 40.0 + 20.0 * tests_support::noise(w, i + 1, si as i64);
                    let hit = spiking.contains(s) && spike.contains(&w);
                    out.push(event(
                        s,
                        w * 1000 + i * 30,
                        if hit { base * 10.0 } else { base },
                    ));
                }
            }
        }
        out.sort_by_key(|e| e.timestamp_ms);
        out
    }

    #[test]
    fn a_false_positive_suppresses_its_pattern_on_its_key_and_not_on_another() {
        let cfg = config(serde_json::json!({}));
        let suppressions = Suppressions::default();
        let mut p = Pipeline::new(cfg)
            .unwrap()
            .with_suppressions(suppressions.clone());
        let first = run(&mut p, &events_of(0..48, &[40, 41, 42], &["a"]), false);
        assert_eq!(first.fired.len(), 1, "{:?}", first.fired);
        let f = &first.fired[0];
        let lead = &f.explanation.contributions[0];
        // The team labels it a false positive.
        assert!(suppressions.add(crate::feedback::Suppression::new(
            &f.alert.id,
            "a",
            (&lead.feature, lead.actual, lead.typical),
        )));
        // The same spike again on `a` and, for the first time, on `b`.
        let again = run(&mut p, &events_of(48..70, &[60, 61, 62], &["a", "b"]), true);
        let fired: Vec<&str> = again
            .fired
            .iter()
            .map(|f| f.alert.partition_key.as_str())
            .collect();
        assert_eq!(fired, ["b"], "a's repeat suppressed, b alerts");
        assert_eq!(again.suppressed.len(), 1, "{:?}", again.suppressed);
        assert_eq!(again.suppressed[0].key, "a");
        assert_eq!(again.suppressed[0].by, f.alert.id);
        assert!(
            again
                .windows
                .iter()
                .any(|w| w.key == "a" && w.window.start_ms == 60_000 && w.window.anomalous),
            "the repeat is still flagged"
        );
    }

    #[test]
    fn a_maintenance_window_records_without_alerting_or_learning() {
        // Windows 40-42 of a are in maintenance (absolute times in epoch ms 40 000-43 000).
        let muted = config(
            serde_json::json!({"alerting": {"cooldown": "0s", "maintenance": [
                {"name": "deploy", "start": "1970-01-01T00:00:40Z", "end": "1970-01-01T00:00:43Z",
                 "keys": ["a"]}
            ]}}),
        );
        let mut p = Pipeline::new(muted).unwrap();
        let out = run(&mut p, &events_of(0..70, &[40, 41, 42, 60], &["a"]), true);
        let fired: Vec<i64> = out.fired.iter().map(|f| f.alert.start_ms).collect();
        assert_eq!(
            fired,
            [60_000],
            "only the spike after the maintenance window alerts"
        );
        // Each muted window is judged afresh (no episode carries over): one record per spike.
        assert_eq!(out.suppressed.len(), 3, "{:?}", out.suppressed);
        assert!(
            out.suppressed
                .iter()
                .all(|x| x.by == "maintenance:deploy" && x.key == "a")
        );
        assert!(
            out.windows
                .iter()
                .any(|w| w.key == "a" && w.window.start_ms == 41_000 && w.window.anomalous),
            "maintenance windows are still scored and flagged"
        );
    }

    #[test]
    fn filters_keys_and_needs() {
        let mut p = Pipeline::new(config(serde_json::json!({}))).unwrap();
        assert_eq!(p.ingest(&event("zzz", 5, 1.0)), Ingested::Filtered);
        assert_eq!(
            p.ingest(&event("a", 1500, 1.0)),
            Ingested::Accepted {
                key: "a".into(),
                needs: 2000
            }
        );
        assert!(p.close(1500).windows.is_empty());
        assert_eq!(p.ingest(&event("a", 100, 1.0)), Ingested::Late);
        assert_eq!(p.flush_bound(), Some(2000));
        assert_eq!(p.close(2000).windows.len(), 1);
    }

    #[test]
    fn spike_fires_once_with_the_spiking_feature_first_then_resolves() {
        let mut p = Pipeline::new(config(serde_json::json!({}))).unwrap();
        let out = run(&mut p, &events(0..48, &[40, 41, 42]), true);
        assert_eq!(out.windows.len(), 96);
        assert_eq!(out.fired.len(), 1, "{:?}", out.fired);
        let f = &out.fired[0];
        assert_eq!(f.alert.partition_key, "a");
        assert_eq!(f.alert.start_ms, 40_000);
        assert_eq!(f.explanation.contributions[0].feature, "p99_latency");
        assert_eq!(out.resolved.len(), 1);
        assert_eq!(out.resolved[0].end_ms, 43_000);
        // One model per key after warm-up (retraining is hourly).
        assert_eq!(out.models.len(), 2);
        assert!(out.models.iter().all(|m| m.version == 1));
    }

    #[test]
    fn training_progress_counts_warm_up_then_models() {
        let mut p = Pipeline::new(config(serde_json::json!({}))).unwrap();
        assert_eq!(p.training().keys, 0);
        run(&mut p, &events(0..12, &[]), true);
        let t = p.training();
        assert_eq!(
            (t.keys, t.trained_keys, t.warmup_seen, t.warmup_needed),
            (2, 0, 12, 20)
        );
        assert_eq!((t.model_version, t.threshold), (0, None));
        run(&mut p, &events(12..25, &[]), true);
        let t = p.training();
        assert_eq!((t.keys, t.trained_keys, t.model_version), (2, 2, 1));
        assert_eq!(
            t.threshold,
            Some(0.7),
            "explicit threshold -0.7 is 0.7 on the score"
        );
    }

    #[test]
    fn restore_from_history_reproduces_the_same_alert_without_duplicates() {
        let all = events(0..48, &[40, 41, 42]);
        let mut whole = Pipeline::new(config(serde_json::json!({}))).unwrap();
        let reference = run(&mut whole, &all, true);

        // First run: windows 0..30 written, then the worker dies.
        let mut first = Pipeline::new(config(serde_json::json!({}))).unwrap();
        let part1: Vec<Event> = all
            .iter()
            .filter(|e| e.timestamp_ms < 31_000)
            .cloned()
            .collect();
        let written = run(&mut first, &part1, false);
        assert_eq!(written.windows.len(), 60);
        // Restart: restore from the stored windows and replay Kafka from an earlier offset.
        let mut second = Pipeline::new(config(serde_json::json!({}))).unwrap();
        for key in ["a", "b"] {
            let hist: Vec<StoredWindow> = written
                .windows
                .iter()
                .filter(|w| w.key == key)
                .map(|w| w.window.clone())
                .collect();
            second.restore(key, &hist).unwrap();
        }
        let replay: Vec<Event> = all
            .iter()
            .filter(|e| e.timestamp_ms >= 25_000)
            .cloned()
            .collect();
        let rest = run(&mut second, &replay, true);
        assert_eq!(rest.skipped, 10); // windows 25..=29 of both keys
        assert_eq!(
            written.windows.len() + rest.windows.len(),
            reference.windows.len()
        );
        assert_eq!(rest.fired.len(), 1);
        assert_eq!(rest.fired[0].alert.id, reference.fired[0].alert.id);
        let tail: Vec<&WindowResult> = reference.windows.iter().skip(60).collect();
        let rest_refs: Vec<&WindowResult> = rest.windows.iter().collect();
        assert_eq!(
            tail, rest_refs,
            "restored scores equal an uninterrupted run"
        );
    }

    #[test]
    fn without_the_range_guard_the_bare_forest_misses_an_out_of_range_spike() {
        // Isolation Forest groups an unseen value beyond the training range with the training
        // maximum, so a 10x p99 scores like an ordinary window: the range guard catches it.
        let mut cfg = config(serde_json::json!({
            "model": {"algorithm": "IsolationForest", "trees": 50, "threshold": -0.7, "seed": 1}
        }));
        cfg.core.model.range_tolerance = 0.0;
        let mut p = Pipeline::new(cfg).unwrap();
        let out = run(&mut p, &events(0..48, &[40, 41, 42]), true);
        assert!(out.fired.is_empty());
        let spike: Vec<f64> = out
            .windows
            .iter()
            .filter(|w| w.key == "a" && (40_000..43_000).contains(&w.window.start_ms))
            .filter_map(|w| w.window.score)
            .collect();
        assert!(spike.iter().all(|&s| s < 0.7), "{spike:?}");
    }

    #[test]
    fn restored_gap_is_filled_with_empty_windows() {
        let mut p = Pipeline::new(config(serde_json::json!({}))).unwrap();
        let hist = vec![StoredWindow {
            start_ms: 0,
            end_ms: 1000,
            values: vec![10.0, 55.0],
            score: None,
            anomalous: false,
            drivers: vec![],
        }];
        p.restore("a", &hist).unwrap();
        let out = run(&mut p, &[event("a", 3500, 50.0)], true);
        let starts: Vec<i64> = out.windows.iter().map(|w| w.window.start_ms).collect();
        assert_eq!(starts, vec![1000, 2000, 3000]);
        assert_eq!(out.windows[0].window.values, vec![0.0, 0.0]);
    }

    #[test]
    fn drivers_map_lags_to_base_features() {
        let c = |feature: &str, contribution: f64| FeatureContribution {
            feature: feature.into(),
            actual: 0.0,
            typical: 0.0,
            robust_z: 0.0,
            contribution,
        };
        let e = Explanation {
            score: 0.9,
            contributions: vec![
                c("p99_latency@t-1", 0.3),
                c("p99_latency", 0.2),
                c("error_rate", 0.1),
                c("event_count", -0.1),
            ],
        };
        let features: Vec<String> = ["event_count", "error_rate", "p99_latency"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            helios_detection::engine::drivers(&e, None, &features),
            vec!["p99_latency", "error_rate"]
        );
    }
}
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// Deterministic noise in [0, 1).
    pub fn noise(a: i64, b: i64, c: i64) -> f64 {
        let h = (a * 7919 + b * 104_729 + c * 1_299_709).wrapping_mul(2_654_435_761);
        (h.rem_euclid(1000)) as f64 / 1000.0
    }
    /// 1 s windows of 15–24 events per service (`a`, `b`, `c`); `a` has 10× latency in `spike`.
    pub fn events(windows: std::ops::Range<i64>, spike: &[i64], services: usize) -> Vec<Event> {
        let names = ["a", "b", "c"];
        let mut out = Vec::new();
        for w in windows {
            for (si, s) in names.iter().take(services).enumerate() {
                let n = 15 + (noise(w, 0, si as i64) * 10.0) as i64;
                for i in 0..n {
                    let base = 40.0 + 20.0 * noise(w, i + 1, si as i64);
                    let l = if *s == "a" && spike.contains(&w) {
                        base * 10.0
                    } else {
                        base
                    };
                    out.push(serde_json::from_value(serde_json::json!({"timestamp": w * 1000 + i * 30, "service": s, "latency_ms": l})).unwrap());
                }
            }
        }
        out.sort_by_key(|e: &Event| e.timestamp_ms);
        out
    }
}
