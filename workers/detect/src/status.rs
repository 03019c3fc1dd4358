//! The detector's runtime status, derived from the worker's state (pure; no I/O).
//!
//! The worker owns three conditions of its Detector and two status fields, written under the
//! field manager `helios-detect` beside the operator's `Ready`, `observedGeneration` and
//! `replicas` (conditions are a list map keyed by `type`, so both managers coexist):
//!
//! - `ModelTrained`: False (`WarmingUp`, "12/20 warm-up windows") until some key has a model,
//!   then True (`Trained`, "model v3 scoring 2/2 keys").
//! - `DataFlowing`: True while selected events arrived within 3 window sizes (wall clock),
//!   False ("no events for 15m") after that, Unknown right after start.
//! - `AnomalyActive`: True while the newest closed window of some key is anomalous (a key whose
//!   windows stop coming expires after the alerting cooldown); never part of `Ready`.
//! - `status.model` and `status.lastAnomaly` (with the report URI once the hook answered).
//! - `status.worker.heartbeatTime` (and the pod): rewritten at least every [`HEARTBEAT`] even
//!   when nothing else changed, so the operator can tell a silent worker from a quiet one and
//!   turn the three conditions `Unknown` (`WorkerSilent`) when it stops.
//!
//! [`StatusHandle`] is the cheap shared state the consume loop and the notifier update;
//! [`derive()`] turns it into the desired status at a given time; [`materialize`] turns the
//! desired conditions into `metav1.Condition`s, keeping `lastTransitionTime` of conditions
//! whose status did not change.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use helios_crds::common::Severity;
use helios_crds::conditions::{ANOMALY_ACTIVE, DATA_FLOWING, MODEL_TRAINED};
use helios_crds::detector::{
    DetectorStatus, FeatureDeviation, LastAnomaly, ModelStatus, WorkerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::config::DetectorConfig;
use crate::pipeline::{TrainingProgress, WindowResult};
use crate::records::AnomalyMessage;
use helios_detection::engine::seasonal::Period;

/// The condition types the worker owns, in the order it writes them.
pub const OWNED_CONDITIONS: [&str; 3] = [MODEL_TRAINED, DATA_FLOWING, ANOMALY_ACTIVE];
/// Features kept in `lastAnomaly.topFeatures`.
pub const TOP_FEATURES: usize = 3;
/// `DataFlowing` turns False after this many window sizes without events.
pub const DATA_WINDOWS: u32 = 3;
/// The worker rewrites `status.worker.heartbeatTime` at least this often: one status PATCH
/// (and one GET) per detect pod per minute, ~17 of each per second for 1,000 detectors.
pub const HEARTBEAT: Duration = Duration::from_secs(60);

/// Time limits of the runtime conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusSettings {
    /// `DataFlowing` is False after this long without a selected event.
    pub data_timeout: Duration,
    /// An anomalous key without newer windows stops counting for `AnomalyActive` after this.
    pub anomaly_hold: Duration,
    /// Windows a key needs before its first model.
    pub warmup_windows: usize,
}

impl StatusSettings {
    /// Limits from the detector configuration: 3 window sizes, and the cooldown (at least 3
    /// window sizes) for a key that went silent while anomalous.
    pub fn from_config(cfg: &DetectorConfig) -> Self {
        let size = Duration::from_millis(cfg.window.size_ms.unsigned_abs());
        let data_timeout = size * DATA_WINDOWS;
        let cooldown = Duration::from_millis(cfg.policy().cooldown_ms.unsigned_abs());
        Self {
            data_timeout,
            anomaly_hold: cooldown.max(data_timeout),
            warmup_windows: cfg.warmup_windows(),
        }
    }
}

/// A key whose newest closed window is anomalous.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyAnomaly {
    /// Start (ms) of the first window of the current anomalous run.
    pub since_ms: i64,
    /// The feature that drove the newest window, if known.
    pub top_feature: Option<String>,
    /// When the newest anomalous window was scored (wall clock).
    pub seen_at: DateTime<Utc>,
}

/// What the worker knows about itself, updated from the consume loop and the notifier.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeState {
    /// When the worker started (wall clock).
    pub started_at: DateTime<Utc>,
    /// When the last selected event was consumed (wall clock).
    pub last_event_at: Option<DateTime<Utc>>,
    /// Warm-up and model progress (`None` before the first closed window).
    pub training: Option<TrainingProgress>,
    /// When the newest model version was first seen (wall clock).
    pub trained_at: Option<DateTime<Utc>>,
    /// Keys whose newest closed window is anomalous.
    pub anomalous: BTreeMap<String, KeyAnomaly>,
    /// The most recent anomaly (seeded from the object's status at start).
    pub last_anomaly: Option<LastAnomaly>,
    /// False-positive suppressions in force.
    pub suppressions: usize,
}

impl RuntimeState {
    /// The state of a worker started at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            started_at: now,
            last_event_at: None,
            training: None,
            trained_at: None,
            anomalous: BTreeMap::new(),
            last_anomaly: None,
            suppressions: 0,
        }
    }

    /// The false-positive suppressions now in force.
    pub fn feedback(&mut self, suppressions: usize) {
        self.suppressions = suppressions;
    }

    /// A selected event was consumed.
    pub fn event(&mut self, now: DateTime<Utc>) {
        self.last_event_at = Some(now);
    }

    /// The pipeline's progress after a batch of windows (ignored while no key is known, as
    /// right after a rebalance reset).
    pub fn training(&mut self, progress: TrainingProgress, now: DateTime<Utc>) {
        if progress.keys == 0 {
            return;
        }
        let previous = self.training.as_ref().map_or(0, |t| t.model_version);
        if progress.model_version > previous {
            self.trained_at = Some(now);
        }
        self.training = Some(progress);
    }

    /// Scored windows (in order): tracks which keys' newest window is anomalous, and forgets
    /// anomalous keys not seen for `hold`.
    pub fn windows(&mut self, windows: &[WindowResult], hold: Duration, now: DateTime<Utc>) {
        for w in windows {
            if !w.window.anomalous {
                self.anomalous.remove(&w.key);
                continue;
            }
            let top_feature = w.window.drivers.first().cloned();
            let entry = self
                .anomalous
                .entry(w.key.clone())
                .or_insert_with(|| KeyAnomaly {
                    since_ms: w.window.start_ms,
                    top_feature: None,
                    seen_at: now,
                });
            entry.top_feature = top_feature.or(entry.top_feature.take());
            entry.seen_at = now;
        }
        self.anomalous.retain(|_, a| !expired(a, hold, now));
    }

    /// A new anomaly was recorded.
    pub fn anomaly(&mut self, m: &AnomalyMessage) {
        self.last_anomaly = Some(last_anomaly(m));
    }

    /// The report hook answered for the anomaly with `fingerprint` starting at `window_start`.
    pub fn report(&mut self, fingerprint: &str, window_start: DateTime<Utc>, uri: &str) {
        if let Some(last) = &mut self.last_anomaly
            && last.fingerprint == fingerprint
            && last.time == rfc3339(window_start)
        {
            last.report_uri = Some(uri.to_string());
        }
    }

    /// Takes `lastAnomaly` from the object's status when the worker has none yet (a restarted
    /// worker keeps showing the previous anomaly instead of erasing it).
    pub fn seed(&mut self, existing: Option<&DetectorStatus>) {
        if self.last_anomaly.is_none() {
            self.last_anomaly = existing.and_then(|s| s.last_anomaly.clone());
        }
    }
}

fn expired(a: &KeyAnomaly, hold: Duration, now: DateTime<Utc>) -> bool {
    let age = now
        .signed_duration_since(a.seen_at)
        .to_std()
        .unwrap_or_default();
    age > hold
}

/// RFC 3339 in whole seconds, UTC (`2025-01-02T03:04:05Z`).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A readable duration: `45s`, `3m`, `1h30m`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, sec) => format!("{m}m{sec}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// `lastAnomaly` of an anomaly message (non-finite feature values are left out).
pub fn last_anomaly(m: &AnomalyMessage) -> LastAnomaly {
    let severity = match m.severity() {
        helios_detection::alert::Severity::Info => Severity::Info,
        helios_detection::alert::Severity::Warning => Severity::Warning,
        helios_detection::alert::Severity::Critical => Severity::Critical,
    };
    LastAnomaly {
        time: rfc3339(m.window_start),
        score: if m.score.is_finite() {
            m.score.clamp(0.0, 1.0)
        } else {
            0.0
        },
        severity,
        fingerprint: m.fingerprint.clone(),
        key: Some(m.key.clone()),
        top_features: m
            .explanation
            .iter()
            .filter(|e| e.actual.is_finite() && e.typical.is_finite())
            .take(TOP_FEATURES)
            .map(|e| FeatureDeviation {
                feature: e.feature.clone(),
                actual: e.actual,
                typical: e.typical,
            })
            .collect(),
        report_uri: None,
    }
}

/// A condition as decided, before times and generation are filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Condition type.
    pub type_: &'static str,
    /// `True`, `False` or `Unknown`.
    pub status: &'static str,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

impl Desired {
    fn new(type_: &'static str, status: &'static str, reason: &str, message: String) -> Self {
        Self {
            type_,
            status,
            reason: reason.to_string(),
            message,
        }
    }
}

/// The part of the status the worker writes.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeStatus {
    /// `ModelTrained`, `DataFlowing`, `AnomalyActive`, in that order.
    pub conditions: Vec<Desired>,
    /// `status.model`.
    pub model: ModelStatus,
    /// `status.lastAnomaly`.
    pub last_anomaly: Option<LastAnomaly>,
}

/// The desired runtime status at `now`.
pub fn derive(
    state: &RuntimeState,
    settings: &StatusSettings,
    now: DateTime<Utc>,
) -> RuntimeStatus {
    let (model_trained, model) = model(state, settings.warmup_windows);
    RuntimeStatus {
        conditions: vec![
            model_trained,
            data_flowing(state, settings, now),
            anomaly_active(state, settings, now),
        ],
        model,
        last_anomaly: state.last_anomaly.clone(),
    }
}

fn model(state: &RuntimeState, warmup_windows: usize) -> (Desired, ModelStatus) {
    let t = state.training.clone().unwrap_or_default();
    let needed = match t.warmup_needed {
        0 => warmup_windows,
        n => n,
    };
    let progress = |seen: usize| match needed {
        0 => format!("{seen}"),
        n => format!("{}/{n}", seen.min(n)),
    };
    if t.trained_keys == 0 {
        let warmup = progress(t.warmup_seen);
        let cond = Desired::new(
            MODEL_TRAINED,
            "False",
            "WarmingUp",
            format!("{warmup} warm-up windows"),
        );
        let model = ModelStatus {
            version: 0,
            trained_at: None,
            effective_threshold: None,
            threshold_rule: None,
            seasonality: None,
            warmup: Some(warmup),
            suppressions: suppressions(state),
        };
        return (cond, model);
    }
    let version = i64::try_from(t.model_version).unwrap_or(i64::MAX);
    let mut message = format!(
        "model v{version} scoring {}/{} keys",
        t.trained_keys, t.keys
    );
    let warming = t.keys - t.trained_keys;
    if warming > 0 {
        message.push_str(&format!(
            "; {warming} warming up ({} windows)",
            progress(t.warmup_seen)
        ));
    }
    if let Some(reason) = &t.threshold_reason {
        message.push_str(&format!("; {reason}"));
    }
    if let Some((period, span_ms)) = t.seasonality {
        message.push_str(&format!("; {}", seasonality_note(period, span_ms)));
    }
    if state.suppressions > 0 {
        message.push_str(&format!(
            "; {} false-positive label(s) suppress their pattern",
            state.suppressions
        ));
    }
    let cond = Desired::new(MODEL_TRAINED, "True", "Trained", message);
    let model = ModelStatus {
        version,
        trained_at: state.trained_at.map(rfc3339),
        effective_threshold: t.threshold.filter(|v| v.is_finite()),
        threshold_rule: t.threshold_rule.map(str::to_string),
        seasonality: t.seasonality.map(|(p, _)| p.as_str().to_string()),
        warmup: None,
        suppressions: suppressions(state),
    };
    (cond, model)
}

/// `status.model.suppressions`: the count when any is in force.
fn suppressions(state: &RuntimeState) -> Option<i64> {
    (state.suppressions > 0).then(|| i64::try_from(state.suppressions).unwrap_or(i64::MAX))
}

/// What the seasonal baseline covers, for the `ModelTrained` message.
fn seasonality_note(period: Period, span_ms: i64) -> String {
    let days = span_ms as f64 / 86_400_000.0;
    match period {
        Period::Weekly => format!("weekly seasonality ({days:.1} days of history)"),
        Period::Daily => {
            format!("daily seasonality ({days:.1} days of history; weekly after 14 days)")
        }
        Period::None => format!(
            "no seasonal baseline yet ({days:.1} days of history; daily after 2 days, weekly after 14)"
        ),
    }
}

fn data_flowing(state: &RuntimeState, settings: &StatusSettings, now: DateTime<Utc>) -> Desired {
    let limit = human(settings.data_timeout);
    let since = |t: DateTime<Utc>| now.signed_duration_since(t).to_std().unwrap_or_default();
    match state.last_event_at {
        Some(t) if since(t) <= settings.data_timeout => Desired::new(
            DATA_FLOWING,
            "True",
            "EventsArriving",
            format!("events received within the last {limit}"),
        ),
        Some(_) => Desired::new(
            DATA_FLOWING,
            "False",
            "NoEvents",
            format!("no events for {limit}"),
        ),
        None if since(state.started_at) <= settings.data_timeout => Desired::new(
            DATA_FLOWING,
            "Unknown",
            "WaitingForEvents",
            "no event received since the worker started".into(),
        ),
        None => Desired::new(
            DATA_FLOWING,
            "False",
            "NoEvents",
            format!("no events for {limit} since the worker started"),
        ),
    }
}

fn anomaly_active(state: &RuntimeState, settings: &StatusSettings, now: DateTime<Utc>) -> Desired {
    let active: Vec<(&String, &KeyAnomaly)> = state
        .anomalous
        .iter()
        .filter(|(_, a)| !expired(a, settings.anomaly_hold, now))
        .collect();
    // Name the longest-running anomaly (then the key name): stable while the episode goes on.
    let Some((key, a)) = active
        .iter()
        .min_by(|x, y| (x.1.since_ms, x.0).cmp(&(y.1.since_ms, y.0)))
    else {
        return Desired::new(
            ANOMALY_ACTIVE,
            "False",
            "NoAnomaly",
            "the newest window of every key is normal".into(),
        );
    };
    let since = DateTime::from_timestamp_millis(a.since_ms).map_or_else(String::new, rfc3339);
    let mut message = format!("key {key} anomalous since {since}");
    if let Some(f) = &a.top_feature {
        message.push_str(&format!(", top feature {f}"));
    }
    if active.len() > 1 {
        message.push_str(&format!(" (and {} more keys)", active.len() - 1));
    }
    let reason = match a.top_feature.as_deref() {
        Some(f) => format!("Anomalous{}", camel(f)),
        None => "AnomalyDetected".into(),
    };
    Desired::new(ANOMALY_ACTIVE, "True", &reason, message)
}

/// `p99_latency` → `P99Latency` (condition reasons are CamelCase).
fn camel(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut chars = p.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// Conditions with `observedGeneration` and `lastTransitionTime`, which is kept from
/// `previous` when the status did not change and is `now` otherwise.
pub fn materialize(
    desired: &[Desired],
    previous: &[Condition],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    desired
        .iter()
        .map(|d| {
            let last_transition_time = previous
                .iter()
                .find(|p| p.type_ == d.type_ && p.status == d.status)
                .map_or_else(|| now.clone(), |p| p.last_transition_time.clone());
            Condition {
                type_: d.type_.to_string(),
                status: d.status.to_string(),
                reason: d.reason.clone(),
                message: d.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// The worker-owned part of an object's status, to skip writes that change nothing.
pub fn owned_part(
    status: Option<&DetectorStatus>,
) -> (Vec<Condition>, Option<ModelStatus>, Option<LastAnomaly>) {
    let Some(s) = status else {
        return (Vec::new(), None, None);
    };
    let conditions = OWNED_CONDITIONS
        .iter()
        .filter_map(|t| s.conditions.iter().find(|c| c.type_ == *t).cloned())
        .collect();
    (conditions, s.model.clone(), s.last_anomaly.clone())
}

/// Whether the stored heartbeat (`status.worker`) is missing, unreadable, in the future, or at
/// least [`HEARTBEAT`] old at `now`: then the next write must be sent even if nothing else changed.
pub fn heartbeat_due(stored: Option<&DetectorStatus>, now: DateTime<Utc>) -> bool {
    let Some(beat) = stored
        .and_then(|s| s.worker.as_ref())
        .and_then(|w| w.heartbeat_time.as_deref())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    else {
        return true;
    };
    match now.signed_duration_since(beat).to_std() {
        Ok(age) => age >= HEARTBEAT,
        // Ahead of this worker's clock: rewrite it with the worker's own time.
        Err(_) => true,
    }
}

/// Whether the worker must apply: its part of `stored` differs from `conditions` (materialized)
/// and `desired`, or the stored heartbeat is due at `now`.
pub fn needs_apply(
    stored: Option<&DetectorStatus>,
    conditions: &[Condition],
    desired: &RuntimeStatus,
    now: DateTime<Utc>,
) -> bool {
    let wanted = (
        conditions.to_vec(),
        Some(desired.model.clone()),
        desired.last_anomaly.clone(),
    );
    owned_part(stored) != wanted || heartbeat_due(stored, now)
}

/// The heartbeat this worker writes at `now`, naming `pod`.
pub fn heartbeat(now: DateTime<Utc>, pod: Option<&str>) -> WorkerStatus {
    WorkerStatus {
        heartbeat_time: Some(rfc3339(now)),
        pod: pod.map(str::to_string),
    }
}

/// The server-side apply body for `detectors/<name>/status`: only the worker's fields, the
/// heartbeat included (every apply carries all three conditions whole, so a forced apply
/// takes back every field of them from a manager that wrote them meanwhile).
pub fn apply_body(
    name: &str,
    conditions: &[Condition],
    status: &RuntimeStatus,
    beat: &WorkerStatus,
) -> Result<serde_json::Value, serde_json::Error> {
    let mut fields = serde_json::Map::new();
    fields.insert("conditions".into(), serde_json::to_value(conditions)?);
    fields.insert("model".into(), serde_json::to_value(&status.model)?);
    if let Some(last) = &status.last_anomaly {
        fields.insert("lastAnomaly".into(), serde_json::to_value(last)?);
    }
    fields.insert("worker".into(), serde_json::to_value(beat)?);
    Ok(serde_json::json!({
        "apiVersion": "helios.dev/v1alpha1",
        "kind": "Detector",
        "metadata": { "name": name },
        "status": fields,
    }))
}

/// The runtime state shared by the consume loop, the notifier and the status writer. Every
/// update takes the lock for a few field writes; a poisoned lock skips the update.
#[derive(Debug, Clone)]
pub struct StatusHandle(Arc<Mutex<RuntimeState>>);

impl StatusHandle {
    /// A handle for a worker started at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(RuntimeState::new(now))))
    }

    /// Applies `f` to the state.
    pub fn update(&self, f: impl FnOnce(&mut RuntimeState)) {
        if let Ok(mut state) = self.0.lock() {
            f(&mut state);
        }
    }

    /// The desired status at `now` (`None` when the lock is poisoned).
    pub fn derive(&self, settings: &StatusSettings, now: DateTime<Utc>) -> Option<RuntimeStatus> {
        self.0.lock().ok().map(|s| derive(&s, settings, now))
    }

    /// A copy of the state (tests, debugging).
    pub fn snapshot(&self) -> Option<RuntimeState> {
        self.0.lock().ok().map(|s| s.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pipeline::StoredWindow;
    use helios_report::request::FeatureExplanation;
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn settings() -> StatusSettings {
        StatusSettings {
            data_timeout: Duration::from_secs(15),
            anomaly_hold: Duration::from_secs(60),
            warmup_windows: 20,
        }
    }

    fn cond<'a>(s: &'a RuntimeStatus, t: &str) -> &'a Desired {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    fn progress(keys: usize, trained: usize, seen: usize, version: u64) -> TrainingProgress {
        TrainingProgress {
            keys,
            trained_keys: trained,
            warmup_seen: seen,
            warmup_needed: 20,
            model_version: version,
            threshold: (version > 0).then_some(0.7),
            ..TrainingProgress::default()
        }
    }

    fn window(key: &str, start_s: i64, anomalous: bool, drivers: Vec<String>) -> WindowResult {
        WindowResult {
            key: key.into(),
            window: StoredWindow {
                start_ms: start_s * 1000,
                end_ms: start_s * 1000 + 1000,
                values: vec![1.0],
                score: Some(if anomalous { 0.9 } else { 0.4 }),
                anomalous,
                drivers,
            },
            model_version: 1,
            guard: None,
        }
    }

    fn message() -> AnomalyMessage {
        AnomalyMessage {
            anomaly_id: "id".into(),
            detector: "ns/d".into(),
            pipeline: "p".into(),
            key: "checkout".into(),
            fingerprint: "fp".into(),
            severity: "Critical".into(),
            score: 0.91,
            window_start: at(40),
            window_end: at(41),
            fired_window_start: at(40),
            explanation: ["p99_latency", "error_rate", "event_count", "avg_latency"]
                .iter()
                .enumerate()
                .map(|(i, f)| FeatureExplanation {
                    feature: (*f).into(),
                    actual: 500.0 - i as f64,
                    typical: 50.0,
                    contribution: 0.5,
                    robust_z: Some(9.0),
                })
                .collect(),
            features: BTreeMap::new(),
            model_version: 1,
        }
    }

    #[test]
    fn fresh_worker_is_warming_up_and_waiting_for_events() {
        let st = RuntimeState::new(at(0));
        let s = derive(&st, &settings(), at(1));
        let m = cond(&s, MODEL_TRAINED);
        assert_eq!((m.status, m.reason.as_str()), ("False", "WarmingUp"));
        assert_eq!(m.message, "0/20 warm-up windows");
        let d = cond(&s, DATA_FLOWING);
        assert_eq!(
            (d.status, d.reason.as_str()),
            ("Unknown", "WaitingForEvents")
        );
        assert_eq!(cond(&s, ANOMALY_ACTIVE).status, "False");
        assert_eq!(s.model.version, 0);
        assert!(s.last_anomaly.is_none());
        let d = cond(&derive(&st, &settings(), at(20)), DATA_FLOWING).clone();
        assert_eq!((d.status, d.reason.as_str()), ("False", "NoEvents"));
    }

    #[test]
    fn warm_up_progress_then_trained_model() {
        let mut st = RuntimeState::new(at(0));
        st.training(progress(2, 0, 12, 0), at(5));
        let s = derive(&st, &settings(), at(5));
        assert_eq!(cond(&s, MODEL_TRAINED).message, "12/20 warm-up windows");
        assert_eq!(s.model.warmup.as_deref(), Some("12/20"));
        st.training(progress(3, 2, 4, 1), at(9));
        let s = derive(&st, &settings(), at(10));
        let m = cond(&s, MODEL_TRAINED);
        assert_eq!((m.status, m.reason.as_str()), ("True", "Trained"));
        assert_eq!(
            m.message,
            "model v1 scoring 2/3 keys; 1 warming up (4/20 windows)"
        );
        assert_eq!(s.model.version, 1);
        assert_eq!(s.model.trained_at.as_deref(), Some("2023-11-14T22:13:29Z"));
        assert_eq!(s.model.effective_threshold, Some(0.7));
        assert_eq!(s.model.warmup, None);
        // Same version later: trainedAt stays; a retrain moves it.
        st.training(progress(3, 3, 0, 1), at(30));
        assert_eq!(st.trained_at, Some(at(9)));
        st.training(progress(3, 3, 0, 2), at(40));
        assert_eq!(st.trained_at, Some(at(40)));
        // A rebalance reset reports no keys: the progress is kept.
        st.training(TrainingProgress::default(), at(41));
        assert_eq!(st.training.unwrap().model_version, 2);
    }

    #[test]
    fn data_flows_within_three_windows_of_the_last_event() {
        let mut st = RuntimeState::new(at(0));
        st.event(at(100));
        let d = cond(&derive(&st, &settings(), at(110)), DATA_FLOWING).clone();
        assert_eq!((d.status, d.reason.as_str()), ("True", "EventsArriving"));
        assert_eq!(d.message, "events received within the last 15s");
        let d = cond(&derive(&st, &settings(), at(116)), DATA_FLOWING).clone();
        assert_eq!(
            (d.status, d.message.as_str()),
            ("False", "no events for 15s")
        );
    }

    #[test]
    fn anomaly_active_follows_the_newest_window_per_key() {
        let mut st = RuntimeState::new(at(0));
        let hold = settings().anomaly_hold;
        st.windows(
            &[
                window("checkout", 40, true, vec!["p99_latency".to_string()]),
                window("cart", 40, false, vec![]),
            ],
            hold,
            at(50),
        );
        st.windows(
            &[window(
                "checkout",
                41,
                true,
                vec!["p99_latency".to_string()],
            )],
            hold,
            at(51),
        );
        let a = cond(&derive(&st, &settings(), at(52)), ANOMALY_ACTIVE).clone();
        assert_eq!(
            (a.status, a.reason.as_str()),
            ("True", "AnomalousP99Latency")
        );
        assert_eq!(
            a.message,
            "key checkout anomalous since 1970-01-01T00:00:40Z, top feature p99_latency"
        );
        st.windows(
            &[window("cart", 42, true, vec!["error_rate".to_string()])],
            hold,
            at(53),
        );
        let a = cond(&derive(&st, &settings(), at(53)), ANOMALY_ACTIVE).clone();
        assert!(a.message.starts_with("key checkout") && a.message.ends_with("(and 1 more keys)"));
        st.windows(
            &[
                window("checkout", 42, false, vec![]),
                window("cart", 43, false, vec![]),
            ],
            hold,
            at(54),
        );
        let a = cond(&derive(&st, &settings(), at(54)), ANOMALY_ACTIVE).clone();
        assert_eq!((a.status, a.reason.as_str()), ("False", "NoAnomaly"));
        // A key that goes silent while anomalous expires after the hold.
        st.windows(&[window("search", 50, true, vec![])], hold, at(60));
        assert_eq!(
            cond(&derive(&st, &settings(), at(100)), ANOMALY_ACTIVE).status,
            "True"
        );
        assert_eq!(
            cond(&derive(&st, &settings(), at(121)), ANOMALY_ACTIVE).status,
            "False"
        );
        st.windows(&[], hold, at(121));
        assert!(st.anomalous.is_empty());
    }

    #[test]
    fn last_anomaly_carries_top_features_and_later_the_report_uri() {
        let mut st = RuntimeState::new(at(0));
        st.anomaly(&message());
        let last = st.last_anomaly.clone().unwrap();
        assert_eq!(last.time, "2023-11-14T22:14:00Z");
        assert_eq!((last.score, last.severity), (0.91, Severity::Critical));
        assert_eq!(last.key.as_deref(), Some("checkout"));
        assert_eq!(last.top_features.len(), TOP_FEATURES);
        assert_eq!(last.top_features[0].feature, "p99_latency");
        assert_eq!(
            (last.top_features[0].actual, last.top_features[0].typical),
            (500.0, 50.0)
        );
        st.report("other", at(40), "s3://b/x.md");
        assert_eq!(st.last_anomaly.as_ref().unwrap().report_uri, None);
        st.report("fp", at(40), "s3://b/r.md");
        assert_eq!(
            st.last_anomaly.as_ref().unwrap().report_uri.as_deref(),
            Some("s3://b/r.md")
        );
    }

    #[test]
    fn seeding_keeps_the_previous_last_anomaly_only_when_none_is_known() {
        let existing = DetectorStatus {
            last_anomaly: Some(LastAnomaly {
                fingerprint: "old".into(),
                ..LastAnomaly::default()
            }),
            ..DetectorStatus::default()
        };
        let mut st = RuntimeState::new(at(0));
        st.seed(Some(&existing));
        assert_eq!(st.last_anomaly.as_ref().unwrap().fingerprint, "old");
        st.anomaly(&message());
        st.seed(Some(&existing));
        assert_eq!(st.last_anomaly.as_ref().unwrap().fingerprint, "fp");
    }

    #[test]
    fn materialize_keeps_transition_time_while_status_is_unchanged() {
        let t = |s: i64| Time(Timestamp::from_second(s).unwrap());
        let desired = vec![
            Desired::new(MODEL_TRAINED, "True", "Trained", "model v2".into()),
            Desired::new(
                DATA_FLOWING,
                "False",
                "NoEvents",
                "no events for 15s".into(),
            ),
        ];
        let previous = vec![
            Condition {
                type_: MODEL_TRAINED.into(),
                status: "True".into(),
                reason: "Trained".into(),
                message: "model v1".into(),
                observed_generation: Some(1),
                last_transition_time: t(100),
            },
            Condition {
                type_: DATA_FLOWING.into(),
                status: "True".into(),
                reason: "EventsArriving".into(),
                message: String::new(),
                observed_generation: Some(1),
                last_transition_time: t(100),
            },
        ];
        let out = materialize(&desired, &previous, Some(2), &t(500));
        assert_eq!(out[0].last_transition_time, t(100), "still True");
        assert_eq!(out[0].message, "model v2");
        assert_eq!(out[1].last_transition_time, t(500), "True → False");
        assert!(out.iter().all(|c| c.observed_generation == Some(2)));
    }

    #[test]
    fn apply_body_holds_only_the_worker_fields() {
        let mut st = RuntimeState::new(at(0));
        let s = derive(&st, &settings(), at(1));
        let conds = materialize(&s.conditions, &[], Some(3), &Time(Timestamp::UNIX_EPOCH));
        let beat = heartbeat(at(1), Some("det-detect-0"));
        let body = apply_body("det", &conds, &s, &beat).unwrap();
        assert_eq!(body["kind"], "Detector");
        assert_eq!(body["metadata"]["name"], "det");
        let status = body["status"].as_object().unwrap();
        let keys: Vec<&str> = status.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec!["conditions", "model", "worker"],
            "no replicas, no observedGeneration"
        );
        assert_eq!(status["conditions"][0]["observedGeneration"], 3);
        assert_eq!(
            status["worker"],
            serde_json::json!({"heartbeatTime": "2023-11-14T22:13:21Z", "pod": "det-detect-0"})
        );
        st.anomaly(&message());
        let s = derive(&st, &settings(), at(1));
        let body = apply_body("det", &conds, &s, &heartbeat(at(1), None)).unwrap();
        assert_eq!(
            body["status"]["worker"],
            serde_json::json!({"heartbeatTime": "2023-11-14T22:13:21Z"})
        );
        assert_eq!(
            body["status"]["lastAnomaly"]["topFeatures"][0]["feature"],
            "p99_latency"
        );
        assert!(body["status"]["lastAnomaly"].get("reportUri").is_none());
    }

    #[test]
    fn owned_part_picks_the_worker_conditions_in_order() {
        let c = |t: &str| Condition {
            type_: t.into(),
            status: "True".into(),
            reason: "R".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
        };
        let status = DetectorStatus {
            conditions: vec![c(ANOMALY_ACTIVE), c("Ready"), c(MODEL_TRAINED)],
            ..DetectorStatus::default()
        };
        let (conds, model, last) = owned_part(Some(&status));
        let types: Vec<&str> = conds.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, vec![MODEL_TRAINED, ANOMALY_ACTIVE]);
        assert!(model.is_none() && last.is_none());
    }

    #[test]
    fn a_heartbeat_older_than_the_interval_or_missing_is_due() {
        let with = |beat: Option<&str>| DetectorStatus {
            worker: beat.map(|t| WorkerStatus {
                heartbeat_time: Some(t.to_string()),
                pod: None,
            }),
            ..DetectorStatus::default()
        };
        let written = rfc3339(at(100));
        assert!(heartbeat_due(None, at(100)), "no status yet");
        assert!(heartbeat_due(Some(&with(None)), at(100)), "never written");
        assert!(heartbeat_due(Some(&with(Some("yesterday"))), at(100)));
        assert!(!heartbeat_due(Some(&with(Some(&written))), at(100)));
        assert!(!heartbeat_due(Some(&with(Some(&written))), at(159)));
        assert!(
            heartbeat_due(Some(&with(Some(&written))), at(160)),
            "{HEARTBEAT:?} old"
        );
        assert!(
            heartbeat_due(Some(&with(Some(&written))), at(99)),
            "ahead of our clock"
        );
    }

    #[test]
    fn an_unchanged_status_is_applied_again_once_its_heartbeat_is_old() {
        let st = RuntimeState::new(at(0));
        let s = derive(&st, &settings(), at(1));
        let conds = materialize(&s.conditions, &[], Some(1), &Time(Timestamp::UNIX_EPOCH));
        let stored = |beat: i64| DetectorStatus {
            conditions: conds.clone(),
            model: Some(s.model.clone()),
            worker: Some(heartbeat(at(beat), Some("p-0"))),
            ..DetectorStatus::default()
        };
        assert!(
            !needs_apply(Some(&stored(1)), &conds, &s, at(30)),
            "fresh and same"
        );
        assert!(
            needs_apply(Some(&stored(1)), &conds, &s, at(61)),
            "heartbeat due"
        );
        let mut older = stored(1);
        older.worker = None;
        assert!(
            needs_apply(Some(&older), &conds, &s, at(2)),
            "no heartbeat yet"
        );
        // The operator marked the conditions Unknown meanwhile: the worker takes them back.
        let mut silenced = stored(1);
        silenced.conditions[0].status = "Unknown".into();
        silenced.conditions[0].reason = "WorkerSilent".into();
        assert!(needs_apply(Some(&silenced), &conds, &s, at(2)));
        assert!(needs_apply(None, &conds, &s, at(2)));
    }

    #[test]
    fn humane_durations_and_reasons() {
        assert_eq!(human(Duration::from_secs(3)), "3s");
        assert_eq!(human(Duration::from_secs(900)), "15m");
        assert_eq!(human(Duration::from_secs(95)), "1m35s");
        assert_eq!(human(Duration::from_secs(5400)), "1h30m");
        assert_eq!(camel("p99_latency"), "P99Latency");
        assert_eq!(camel("event_count"), "EventCount");
    }
}
