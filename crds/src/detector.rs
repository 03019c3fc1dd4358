//! `Detector`: one model over one slice of a pipeline's events.

use crate::alertmanager::AlertmanagerSpec;
use crate::common::{Duration, Feature, Severity};
use crate::maintenance::MaintenanceWindow;
use crate::placement::Placement;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Desired state of a detector.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "helios.dev",
    version = "v1alpha1",
    kind = "Detector",
    plural = "detectors",
    shortname = "det",
    category = "helios",
    namespaced,
    status = "DetectorStatus",
    scale = r#"{"specReplicasPath":".spec.replicas","statusReplicasPath":".status.replicas"}"#,
    printcolumn = r#"{"name":"Pipeline","type":"string","jsonPath":".spec.pipelineRef.name"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.alerting.mode"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Anomaly","type":"string","jsonPath":".status.conditions[?(@.type==\"AnomalyActive\")].status"}"#,
    printcolumn = r#"{"name":"Last anomaly","type":"date","jsonPath":".status.lastAnomaly.time"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.alerting) || !has(self.alerting.floors) || self.alerting.floors.all(k, k in self.features)", "message": "alerting.floors may only name features listed in features", "fieldPath": ".alerting.floors"}
]))]
pub struct DetectorSpec {
    /// The pipeline whose events this detector reads (immutable).
    pub pipeline_ref: PipelineRef,
    /// Number of detector pods (consumers in the pipeline's consumer group).
    #[serde(default = "one")]
    #[schemars(range(min = 0, max = 64))]
    pub replicas: i32,
    /// Which events of the pipeline this detector looks at (all when empty).
    #[serde(default)]
    pub selector: EventSelector,
    /// Event fields that split the stream into independent series, e.g. `service`,
    /// `endpoint`, `attributes.region`.
    #[serde(default = "default_partition_by")]
    #[schemars(length(min = 1, max = 4), extend("x-kubernetes-list-type" = "set"))]
    pub partition_by: Vec<PartitionKey>,
    /// Event-time windowing.
    #[serde(default)]
    pub window: WindowSpec,
    /// Features computed per window: request features (`event_count`, `error_rate`,
    /// `avg_latency`, `p95_latency`, `p99_latency`) and/or `metrics.<name>` (the mean of a
    /// numeric metric the events carry).
    #[schemars(length(min = 1, max = 16), extend("x-kubernetes-list-type" = "set"))]
    pub features: Vec<Feature>,
    /// The anomaly model.
    #[serde(default)]
    pub model: ModelSpec,
    /// Warm-up and retraining.
    #[serde(default)]
    pub training: TrainingSpec,
    /// When an anomalous window becomes an alert.
    #[serde(default)]
    pub alerting: AlertingSpec,
    /// Where the detector pods run (node selector, tolerations, affinity, host network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// How many keys per detector pod get their own score series on `/metrics`
    /// (`helios_detect_score{key}` …: those with the highest recent score; default 10, 0 exports
    /// only the aggregates) — bounded cardinality whatever the number of keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub score_metrics_keys: Option<u32>,
}

/// A reference to the AnomalyPipeline in the same namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self == oldSelf", "message": "pipelineRef is immutable: create a new Detector to move to another pipeline"}
]))]
pub struct PipelineRef {
    /// Name of the AnomalyPipeline.
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
}

/// A key that partitions events into series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct PartitionKey(
    /// `service`, `endpoint`, or `attributes.<name>`.
    #[schemars(regex(pattern = r"^(service|endpoint|attributes\.[A-Za-z0-9_.\-]+)$"))]
    pub String,
);

/// Which events a detector reads; every listed condition must hold.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventSelector {
    /// Only events of these services (any service when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// Only events of these endpoints (any endpoint when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// Only events whose attributes have these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

/// Event-time window settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "duration(self.size) > duration('0s')", "message": "window.size must be positive", "fieldPath": ".size"},
    {"rule": "!has(self.hop) || duration(self.hop) <= duration(self.size)", "message": "window.hop must not exceed window.size", "fieldPath": ".hop"},
    {"rule": "!has(self.hop) || duration(self.hop) > duration('0s')", "message": "window.hop must be positive", "fieldPath": ".hop"}
]))]
pub struct WindowSpec {
    /// Window length, e.g. `5m`.
    #[serde(default = "default_window")]
    pub size: Duration,
    /// Distance between window starts (hopping windows); defaults to `size` (tumbling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hop: Option<Duration>,
    /// How late an event may arrive and still count in its window.
    #[serde(default = "default_lateness")]
    pub allowed_lateness: Duration,
}

impl Default for WindowSpec {
    fn default() -> Self {
        Self {
            size: default_window(),
            hop: None,
            allowed_lateness: default_lateness(),
        }
    }
}

/// The anomaly model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.contamination) || (self.contamination > 0.0 && self.contamination <= 0.5)", "message": "model.contamination must be in (0, 0.5]", "fieldPath": ".contamination"},
    {"rule": "!has(self.threshold) || (self.threshold >= -1.0 && self.threshold <= 0.0)", "message": "model.threshold must be in [-1, 0] (scikit-learn score_samples convention: lower is more anomalous)", "fieldPath": ".threshold"}
]))]
pub struct ModelSpec {
    /// Algorithm: `RobustForest` (default) or `IsolationForest` (the bare forest score).
    #[serde(default)]
    pub algorithm: Algorithm,
    /// Seasonal baseline: `Auto` (weekly once two weeks are seen, or a week and a day when
    /// every feature is a request feature; daily once two days are), `Daily` (at most daily)
    /// or `Off`.
    #[serde(default)]
    pub seasonality: Seasonality,
    /// Number of trees.
    #[serde(default = "default_trees")]
    #[schemars(range(min = 1, max = 1000))]
    pub trees: i32,
    /// Sub-sample size ψ per tree.
    #[serde(default = "default_sample_size")]
    #[schemars(range(min = 2, max = 65536))]
    pub sample_size: i32,
    /// Fraction of windows to flag: the threshold is that upper quantile of recent scores
    /// (flags that fraction of healthy windows too). Overrides `alerting.budget`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 0.5))]
    pub contamination: Option<f64>,
    /// Explicit threshold in scikit-learn's `score_samples` convention (= −score, in
    /// [−1, 0]); a window is anomalous when its score exceeds `-threshold`, e.g. `-0.7` flags
    /// scores above 0.7. Overrides `contamination` and `alerting.budget`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Random seed; the same seed and data give the same model.
    #[serde(default = "default_seed")]
    #[schemars(range(min = 0))]
    pub seed: i64,
    /// Shingle size: a window's features plus those of the previous `shingleSize - 1` windows.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 64))]
    pub shingle_size: i32,
    /// For bursty series (tweet volumes, network bytes, ad clicks) with `RobustForest`: a
    /// window's surprise is also measured against this upper quantile of the key's own recent
    /// (smoothed) raw scores, so bursts of a size the history often has stop paging while one
    /// far beyond them still does. Unset: the spread of the typical scores alone (MAD).
    /// 0.995 is what the NAB figures use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.5, max = 0.9999))]
    pub tail_quantile: Option<f64>,
    /// With `RobustForest`: how many windows' raw scores are averaged before the likelihood.
    /// Longer finds sustained shifts in noisy series and pages later for brief ones (a value
    /// far beyond the range is paged at once by the range guard whatever it is). Unset: 5, or
    /// 3 when every feature is a request feature. The NAB figures use 16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 288))]
    pub score_smoothing: Option<i32>,
}

impl Default for ModelSpec {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::default(),
            trees: default_trees(),
            sample_size: default_sample_size(),
            seasonality: Seasonality::default(),
            contamination: None,
            threshold: None,
            seed: default_seed(),
            shingle_size: 1,
            tail_quantile: None,
            score_smoothing: None,
        }
    }
}

/// Supported model algorithms (both run in `helios detect`, `helios eval` and
/// `helios backtest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum Algorithm {
    /// Isolation Forest over each window's values, their local and seasonal residuals and
    /// differences, ensembled with a robust seasonal residual (per feature and across
    /// features), turned into an anomaly likelihood; plus the range guard.
    #[default]
    RobustForest,
    /// The bare Isolation Forest score (Liu, Ting & Zhou, 2008) over the window's values
    /// (and lags), plus the range guard.
    IsolationForest,
}

/// Seasonal baseline of a detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum Seasonality {
    /// Hour of week once two weeks are covered (a week and a day for request features only),
    /// hour of day once two days are.
    #[default]
    Auto,
    /// Hour of day at most.
    Daily,
    /// No seasonal baseline.
    Off,
}

/// Warm-up and retraining of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.warmupWindows <= self.historyWindows", "message": "training.warmupWindows must not exceed training.historyWindows", "fieldPath": ".warmupWindows"}
]))]
pub struct TrainingSpec {
    /// Windows observed per series before the first model is trained (no alerts before).
    #[serde(default = "default_warmup")]
    #[schemars(range(min = 2, max = 100000))]
    pub warmup_windows: i32,
    /// How often the model is retrained on recent history.
    #[serde(default = "default_retrain")]
    pub retrain_interval: Duration,
    /// Windows of history kept for training (alerted windows excluded).
    #[serde(default = "default_history")]
    #[schemars(range(min = 2, max = 1000000))]
    pub history_windows: i32,
}

impl Default for TrainingSpec {
    fn default() -> Self {
        Self {
            warmup_windows: default_warmup(),
            retrain_interval: default_retrain(),
            history_windows: default_history(),
        }
    }
}

/// When anomalous windows become alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertingSpec {
    /// `Enforce` publishes and reports alerts; `DryRun` records them but never notifies.
    #[serde(default)]
    pub mode: AlertMode,
    /// Severity by anomaly score (0–1): the highest band whose `minScore` is reached applies.
    #[serde(default = "default_bands")]
    #[schemars(length(min = 1, max = 3))]
    pub severity_bands: Vec<SeverityBand>,
    /// Consecutive anomalous windows needed before an alert fires.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 100))]
    pub min_consecutive_windows: i32,
    /// Minimum time between two alerts with the same fingerprint.
    #[serde(default = "default_cooldown")]
    pub cooldown: Duration,
    /// Absolute floors per feature: an alert fires only if a driving feature reaches its floor
    /// (e.g. `p99_latency: 200` ignores anomalies below 200 ms).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(with = "BTreeMap<String, f64>")]
    pub floors: BTreeMap<Feature, f64>,
    /// The alert budget, the default threshold rule: how often each key may page on healthy
    /// traffic. The threshold is the lowest at which the key's recent windows would have
    /// raised at most this many alerts after this policy. Ignored when `model.threshold` or
    /// `model.contamination` is set.
    #[serde(default)]
    pub budget: AlertBudget,
    /// The Alertmanager anomalies page through (unset: none; `DryRun` never pages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<AlertmanagerSpec>,
    /// Maintenance windows: their anomalies are recorded (windows flagged) but never notified,
    /// and their windows stay out of training.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub maintenance: Vec<MaintenanceWindow>,
}

/// How often a detector may alert per key on healthy traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertBudget {
    /// Alerts per key per week the recent history may produce (> 0).
    #[serde(default = "default_budget")]
    #[schemars(range(min = 0.001, max = 10000.0))]
    pub false_alerts_per_week: f64,
}

impl Default for AlertBudget {
    fn default() -> Self {
        Self {
            false_alerts_per_week: default_budget(),
        }
    }
}

impl Default for AlertingSpec {
    fn default() -> Self {
        Self {
            mode: AlertMode::default(),
            severity_bands: default_bands(),
            min_consecutive_windows: 1,
            cooldown: default_cooldown(),
            floors: BTreeMap::new(),
            budget: AlertBudget::default(),
            alertmanager: None,
            maintenance: Vec::new(),
        }
    }
}

/// Whether alerts notify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum AlertMode {
    /// Publish, store and report alerts.
    #[default]
    Enforce,
    /// Store alerts but never publish or report them.
    DryRun,
}

/// One severity band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeverityBand {
    /// The severity of the band.
    pub severity: Severity,
    /// Lowest anomaly score (0–1) in the band.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub min_score: f64,
}

/// Observed state of a detector.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetectorStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (summary), `ModelTrained`, `DataFlowing`, `AnomalyActive` (not part of Ready;
    /// `Unknown`, reason `WorkerSilent`, while the worker's heartbeat is stale).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Ready detector pods.
    #[serde(default)]
    pub replicas: i32,
    /// The model in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelStatus>,
    /// The most recent anomaly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_anomaly: Option<LastAnomaly>,
    /// The detect worker's heartbeat, rewritten at least every 60 s with its runtime
    /// conditions; older than the operator's timeout (default 180 s), those turn `Unknown`
    /// (reason `WorkerSilent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<WorkerStatus>,
}

/// Liveness of the detect worker: it rewrites `heartbeatTime` at least every 60 s, even when
/// nothing else changed. When it is older than the operator's `--worker-heartbeat-timeout-secs`
/// (default 180 s), the operator sets `ModelTrained`, `DataFlowing` and `AnomalyActive` to
/// `Unknown` with reason `WorkerSilent` until a worker writes again.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerStatus {
    /// When a detect worker last wrote the status (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub heartbeat_time: Option<String>,
    /// The pod that wrote it (its `HOSTNAME`); with several replicas, the last one to write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

/// The model currently scoring.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelStatus {
    /// Model version (increments on every retrain).
    pub version: i64,
    /// When it was trained (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub trained_at: Option<String>,
    /// The anomaly-score threshold in effect (0–1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_threshold: Option<f64>,
    /// Which rule set it: `threshold`, `contamination` or `alertBudget`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_rule: Option<String>,
    /// Seasonal baseline in use: `none`, `daily` or `weekly`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seasonality: Option<String>,
    /// Warm-up progress, e.g. `7/12` windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<String>,
    /// False-positive labels in force: later anomalies of the same pattern on the same key
    /// are recorded, not alerted (`helios.dev/feedback-<anomalyId>` annotations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressions: Option<i64>,
}

/// The most recent anomaly of a detector.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastAnomaly {
    /// Start of the anomalous window (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub time: String,
    /// Anomaly score (0–1).
    pub score: f64,
    /// Severity from the detector's bands.
    pub severity: Severity,
    /// Stable fingerprint (detector + key + features) used for dedup and cooldown.
    pub fingerprint: String,
    /// The series (partition key value) that was anomalous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The features that drove the score, most important first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_features: Vec<FeatureDeviation>,
    /// URI of the incident report, once written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_uri: Option<String>,
}

/// A feature's value in the anomalous window beside its typical value.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeatureDeviation {
    /// Feature name.
    pub feature: String,
    /// Value in the anomalous window.
    pub actual: f64,
    /// Typical value (training median).
    pub typical: f64,
}

fn one() -> i32 {
    1
}
fn default_partition_by() -> Vec<PartitionKey> {
    vec![PartitionKey("service".into())]
}
fn default_window() -> Duration {
    Duration::new("5m")
}
fn default_lateness() -> Duration {
    Duration::new("30s")
}
fn default_trees() -> i32 {
    100
}
fn default_sample_size() -> i32 {
    256
}
fn default_budget() -> f64 {
    1.0
}
fn default_seed() -> i64 {
    42
}
fn default_warmup() -> i32 {
    12
}
fn default_retrain() -> Duration {
    Duration::new("1h")
}
fn default_history() -> i32 {
    2016
}
fn default_cooldown() -> Duration {
    Duration::new("15m")
}
fn default_bands() -> Vec<SeverityBand> {
    vec![
        SeverityBand {
            severity: Severity::Info,
            min_score: 0.0,
        },
        SeverityBand {
            severity: Severity::Warning,
            min_score: 0.65,
        },
        SeverityBand {
            severity: Severity::Critical,
            min_score: 0.75,
        },
    ]
}
