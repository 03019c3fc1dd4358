//! Maps the Detector spec (`helios-crds`) onto the detection library's configuration (pure).

use std::collections::BTreeMap;

use helios_crds::DetectorSpec;
use helios_crds::detector::{AlertMode, Seasonality};
use helios_detection::alert::{AlertPolicy, Mode, Severity, SeverityBand};
use helios_detection::engine::CoreConfig;
use helios_detection::engine::likelihood::LikelihoodConfig;
use helios_detection::engine::model::{Algorithm, ModelConfig};
use helios_detection::engine::range::GuardTail;
use helios_detection::engine::seasonal::SeasonalityMode;
use helios_detection::engine::threshold::ThresholdRule;
use helios_detection::features::FeatureDef;
use helios_detection::forest::ForestConfig;
use helios_detection::window::WindowConfig;

use crate::partition::PartitionBy;
use crate::selector::Selector;

/// Why the detector configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `HELIOS_DETECTOR_CONFIG` is not a valid `DetectorSpec`.
    #[error("HELIOS_DETECTOR_CONFIG is not a Detector spec: {0}")]
    Json(#[from] serde_json::Error),
    /// `HELIOS_DETECTOR` is not `namespace/name`.
    #[error("HELIOS_DETECTOR must be `namespace/name`, got {0:?}")]
    DetectorName(String),
    /// A duration field does not parse.
    #[error("{field}: {source}")]
    Duration {
        /// The offending field.
        field: &'static str,
        /// The parse error.
        source: helios_crds::common::DurationError,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// The Detector's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectorId {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Detector name.
    pub name: String,
}

impl DetectorId {
    /// Parses `namespace/name`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        match text.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(Self {
                    namespace: ns.to_string(),
                    name: name.to_string(),
                })
            }
            _ => Err(ConfigError::DetectorName(text.to_string())),
        }
    }

    /// `namespace/name`: the detector column and the fingerprint's detector part.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The Kafka consumer group: `helios.<namespace>.<detector>`.
    pub fn group_id(&self) -> String {
        format!("helios.{}.{}", self.namespace, self.name)
    }
}

/// Everything the pipeline needs, in the library's terms.
#[derive(Debug, Clone)]
pub struct DetectorConfig {
    /// Detector identity.
    pub id: DetectorId,
    /// The AnomalyPipeline the detector reads.
    pub pipeline: String,
    /// Which events count.
    pub selector: Selector,
    /// How events are split into series.
    pub partition_by: PartitionBy,
    /// Window geometry.
    pub window: WindowConfig,
    /// Features in spec order, as computed from a window.
    pub features: Vec<FeatureDef>,
    /// Names of the `metrics.<name>` features (index order of [`FeatureDef::Metric`]).
    pub metrics: Vec<String>,
    /// The detector core: model, threshold rule and alert policy.
    pub core: CoreConfig,
    /// Where anomalies page (`spec.alerting.alertmanager`; credentials come from env).
    pub alertmanager: Option<helios_crds::alertmanager::AlertmanagerSpec>,
    /// When anomalies are recorded but not notified, and windows not learnt.
    pub maintenance: crate::maintenance::Maintenance,
    /// Keys with their own score series (`spec.scoreMetricsKeys`; `None`: the default).
    pub score_metrics_keys: Option<usize>,
}

/// Default range guard: the robust z an out-of-range value must reach.
pub const DEFAULT_Z_GUARD: f64 = 3.0;

impl DetectorConfig {
    /// `--guard-after-windows`: the range guard of every feature acts after `n` windows (the
    /// calibration of per-request features included).
    pub fn apply_guard_wait(&mut self, n: usize) {
        let core = &mut self.core;
        core.model.guard_min_windows = n;
        core.model.guard_tail = Some(GuardTail::new(
            &core.features,
            core.hop_ms,
            &core.model,
            Some(n),
            helios_detection::engine::guard_alerts_per_week(core.rule),
        ));
    }

    /// Parses the JSON spec and the `namespace/name` id.
    pub fn from_json(spec_json: &str, detector: &str) -> Result<Self, ConfigError> {
        let spec: DetectorSpec = serde_json::from_str(spec_json)?;
        Self::from_spec(&spec, DetectorId::parse(detector)?)
    }

    /// Maps a spec onto the library configuration.
    pub fn from_spec(spec: &DetectorSpec, id: DetectorId) -> Result<Self, ConfigError> {
        let window = window_config(spec)?;
        let (features, metrics) = features(&spec.features)?;
        let core = core_config(spec, &id.id(), window.hop_ms)?;
        Ok(Self {
            pipeline: spec.pipeline_ref.name.clone(),
            selector: Selector::from_spec(&spec.selector),
            partition_by: PartitionBy::parse(spec.partition_by.iter().map(|p| p.0.as_str()))?,
            window,
            features,
            metrics,
            core,
            alertmanager: spec.alerting.alertmanager.clone(),
            maintenance: crate::maintenance::Maintenance::from_spec(&spec.alerting.maintenance)?,
            score_metrics_keys: spec.score_metrics_keys.map(|n| n as usize),
            id,
        })
    }

    /// Base feature names in model order.
    pub fn feature_names(&self) -> Vec<String> {
        self.core.features.clone()
    }

    /// The alert policy.
    pub fn policy(&self) -> &AlertPolicy {
        &self.core.policy
    }

    /// Windows a key collects before its first model.
    pub fn warmup_windows(&self) -> usize {
        self.core.model.warmup
    }
}

/// A worker flag's duration (`30s`, `5m`, …), a parse error naming `field`.
pub fn flag_duration(field: &'static str, text: &str) -> Result<std::time::Duration, ConfigError> {
    helios_crds::common::parse_duration(text)
        .map_err(|source| ConfigError::Duration { field, source })
}

fn millis(field: &'static str, d: &helios_crds::Duration) -> Result<i64, ConfigError> {
    let std = d
        .parse()
        .map_err(|source| ConfigError::Duration { field, source })?;
    i64::try_from(std.as_millis())
        .map_err(|_| ConfigError::Invalid(format!("{field} is too large")))
}

fn window_config(spec: &DetectorSpec) -> Result<WindowConfig, ConfigError> {
    let size_ms = millis("window.size", &spec.window.size)?;
    let hop_ms = match &spec.window.hop {
        Some(h) => millis("window.hop", h)?,
        None => size_ms,
    };
    let cfg = WindowConfig {
        size_ms,
        hop_ms,
        allowed_lateness_ms: millis("window.allowedLateness", &spec.window.allowed_lateness)?,
    };
    cfg.validate()
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    Ok(cfg)
}

/// Maps spec features onto library feature definitions by wire name, refusing unknown names
/// and duplicates; also returns the metric names.
pub fn features(
    spec: &[helios_crds::Feature],
) -> Result<(Vec<FeatureDef>, Vec<String>), ConfigError> {
    if spec.is_empty() {
        return Err(ConfigError::Invalid("features must not be empty".into()));
    }
    if let Some(bad) = spec.iter().find(|f| !f.is_valid()) {
        return Err(ConfigError::Invalid(format!(
            "features: {:?} is neither a request feature nor metrics.<name>",
            bad.as_str()
        )));
    }
    let names: Vec<&str> = spec.iter().map(|f| f.as_str()).collect();
    helios_detection::features::parse_feature_defs(&names)
        .map_err(|e| ConfigError::Invalid(format!("features: {e}")))
}

fn positive(field: &str, v: i32) -> Result<usize, ConfigError> {
    usize::try_from(v)
        .ok()
        .filter(|&u| u > 0)
        .ok_or_else(|| ConfigError::Invalid(format!("{field} must be positive, got {v}")))
}

/// The threshold rule of a spec: `model.threshold` (sklearn convention, negated), else
/// `model.contamination`, else the alert budget.
pub fn threshold_rule(spec: &DetectorSpec) -> ThresholdRule {
    match (spec.model.threshold, spec.model.contamination) {
        (Some(t), _) => ThresholdRule::Score(-t),
        (None, Some(c)) => ThresholdRule::Contamination(c),
        (None, None) => ThresholdRule::Budget {
            false_alerts_per_week: spec.alerting.budget.false_alerts_per_week,
        },
    }
}

/// Maps a spec onto the detector core's configuration (what `helios detect`, `helios eval`
/// and `helios backtest` run).
pub fn core_config(
    spec: &DetectorSpec,
    detector_id: &str,
    hop_ms: i64,
) -> Result<CoreConfig, ConfigError> {
    let retrain_ms = millis("training.retrainInterval", &spec.training.retrain_interval)?;
    // Retraining counts scored windows; one window arrives per hop.
    let retrain_every = if retrain_ms <= 0 {
        0
    } else {
        usize::try_from((retrain_ms + hop_ms - 1) / hop_ms).unwrap_or(usize::MAX)
    };
    let names: Vec<String> = spec
        .features
        .iter()
        .map(|f| f.as_str().to_string())
        .collect();
    let algorithm = match spec.model.algorithm {
        helios_crds::detector::Algorithm::RobustForest => Algorithm::RobustForest,
        helios_crds::detector::Algorithm::IsolationForest => Algorithm::IsolationForest,
    };
    let defaults = ModelConfig::defaults(algorithm, &names);
    let model = ModelConfig {
        forest: ForestConfig {
            n_trees: positive("model.trees", spec.model.trees)?,
            max_samples: positive("model.sampleSize", spec.model.sample_size)?,
            seed: u64::try_from(spec.model.seed).map_err(|_| {
                ConfigError::Invalid(format!("model.seed must be >= 0, got {}", spec.model.seed))
            })?,
            ..defaults.forest
        },
        warmup: positive("training.warmupWindows", spec.training.warmup_windows)?,
        retrain_every,
        history: positive("training.historyWindows", spec.training.history_windows)?,
        shingle: positive("model.shingleSize", spec.model.shingle_size)? - 1,
        likelihood: LikelihoodConfig {
            tail_quantile: tail_quantile(spec.model.tail_quantile)?,
            short: match spec.model.score_smoothing {
                Some(n) if n > 288 => {
                    return Err(ConfigError::Invalid(format!(
                        "model.scoreSmoothing must be in [1, 288], got {n}"
                    )));
                }
                Some(n) => positive("model.scoreSmoothing", n)?,
                None => defaults.likelihood.short,
            },
            ..defaults.likelihood
        },
        seasonality: match spec.model.seasonality {
            Seasonality::Auto => SeasonalityMode::Auto,
            Seasonality::Daily => SeasonalityMode::Daily,
            Seasonality::Off => SeasonalityMode::Off,
        },
        ..defaults
    };
    let cfg = CoreConfig {
        features: names,
        model,
        rule: threshold_rule(spec),
        policy: alert_policy(spec, detector_id)?,
        hop_ms,
    };
    helios_detection::engine::DetectorCore::new(cfg.clone())
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    Ok(cfg)
}

/// `model.tailQuantile`, which must lie in [0.5, 0.9999].
fn tail_quantile(q: Option<f64>) -> Result<Option<f64>, ConfigError> {
    match q {
        Some(q) if !(0.5..=0.9999).contains(&q) => Err(ConfigError::Invalid(format!(
            "model.tailQuantile must be in [0.5, 0.9999], got {q}"
        ))),
        q => Ok(q),
    }
}

/// Maps a spec severity onto the library's.
pub fn severity(s: helios_crds::Severity) -> Severity {
    match s {
        helios_crds::Severity::Info => Severity::Info,
        helios_crds::Severity::Warning => Severity::Warning,
        helios_crds::Severity::Critical => Severity::Critical,
    }
}

fn alert_policy(spec: &DetectorSpec, detector_id: &str) -> Result<AlertPolicy, ConfigError> {
    let a = &spec.alerting;
    let mut floors = BTreeMap::new();
    for (f, v) in &a.floors {
        if !spec.features.contains(f) {
            return Err(ConfigError::Invalid(format!(
                "alerting.floors.{}: not one of the features",
                f.as_str()
            )));
        }
        floors.insert(f.as_str().to_string(), *v);
    }
    Ok(AlertPolicy {
        detector_id: detector_id.to_string(),
        bands: a
            .severity_bands
            .iter()
            .map(|b| SeverityBand {
                min_score: b.min_score,
                severity: severity(b.severity),
            })
            .collect(),
        min_consecutive: u32::try_from(a.min_consecutive_windows.max(1)).unwrap_or(1),
        cooldown_ms: millis("alerting.cooldown", &a.cooldown)?,
        floors,
        mode: match a.mode {
            AlertMode::Enforce => Mode::Enforce,
            AlertMode::DryRun => Mode::DryRun,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> DetectorSpec {
        serde_json::from_value(json).unwrap()
    }

    fn id() -> DetectorId {
        DetectorId::parse("shop/latency").unwrap()
    }

    #[test]
    fn detector_id_and_group() {
        let d = id();
        assert_eq!(d.id(), "shop/latency");
        assert_eq!(d.group_id(), "helios.shop.latency");
        for bad in ["", "shop", "/x", "x/", "a/b/c"] {
            assert!(DetectorId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn full_spec_maps_field_by_field() {
        let s = spec(serde_json::json!({
            "pipelineRef": {"name": "checkout-events"},
            "selector": {"services": ["checkout"]},
            "partitionBy": ["service", "attributes.region"],
            "window": {"size": "1m", "hop": "30s", "allowedLateness": "5s"},
            "features": ["p99_latency", "error_rate", "metrics.cpu"],
            "model": {"algorithm": "IsolationForest", "trees": 50, "sampleSize": 128,
                      "threshold": -0.7, "seed": 7, "shingleSize": 3, "seasonality": "Off",
                      "tailQuantile": 0.99, "scoreSmoothing": 12},
            "training": {"warmupWindows": 10, "retrainInterval": "10m", "historyWindows": 500},
            "alerting": {"mode": "DryRun", "minConsecutiveWindows": 2, "cooldown": "5m",
                         "floors": {"p99_latency": 200.0},
                         "severityBands": [{"severity": "Critical", "minScore": 0.8}]},
            "scoreMetricsKeys": 25
        }));
        let c = DetectorConfig::from_spec(&s, id()).unwrap();
        assert_eq!(c.pipeline, "checkout-events");
        assert_eq!(c.score_metrics_keys, Some(25));
        assert_eq!(
            c.window,
            WindowConfig {
                size_ms: 60_000,
                hop_ms: 30_000,
                allowed_lateness_ms: 5_000
            }
        );
        assert_eq!(
            c.feature_names(),
            vec!["p99_latency", "error_rate", "metrics.cpu"]
        );
        assert_eq!(c.metrics, vec!["cpu"]);
        assert_eq!(
            c.features[2],
            FeatureDef::Metric {
                index: 0,
                name: "cpu".into()
            }
        );
        let m = &c.core.model;
        assert_eq!(m.algorithm, Algorithm::IsolationForest);
        assert_eq!(m.seasonality, SeasonalityMode::Off);
        assert_eq!(
            (m.warmup, m.retrain_every, m.history, m.shingle),
            (10, 20, 500, 2)
        );
        assert_eq!(
            (m.forest.n_trees, m.forest.max_samples, m.forest.seed),
            (50, 128, 7)
        );
        assert_eq!(m.min_scales, vec![1.0, 0.01, 1e-6]);
        assert_eq!(m.likelihood.tail_quantile, Some(0.99));
        assert_eq!(m.likelihood.short, 12);
        assert_eq!(c.core.rule, ThresholdRule::Score(0.7));
        assert_eq!(c.core.hop_ms, 30_000);
        let p = c.policy();
        assert_eq!(p.detector_id, "shop/latency");
        assert_eq!(p.mode, Mode::DryRun);
        assert_eq!(p.min_consecutive, 2);
        assert_eq!(p.cooldown_ms, 300_000);
        assert_eq!(p.floors.get("p99_latency"), Some(&200.0));
        assert_eq!(p.severity(0.9), Severity::Critical);
        assert_eq!(p.severity(0.5), Severity::Info);
        assert!(c.selector.services.contains("checkout"));
    }

    #[test]
    fn defaults_tumble_and_use_the_alert_budget() {
        let s = spec(serde_json::json!({
            "pipelineRef": {"name": "p"}, "features": ["event_count"]
        }));
        let c = DetectorConfig::from_spec(&s, id()).unwrap();
        assert_eq!(c.window.size_ms, 300_000);
        assert_eq!(c.window.hop_ms, 300_000);
        assert_eq!(c.window.allowed_lateness_ms, 30_000);
        assert_eq!(
            c.core.rule,
            ThresholdRule::Budget {
                false_alerts_per_week: 1.0
            }
        );
        assert_eq!(c.core.model.algorithm, Algorithm::RobustForest);
        assert_eq!(c.core.model.seasonality, SeasonalityMode::Auto);
        assert_eq!(c.core.model.retrain_every, 12); // 1h / 5m
        assert_eq!(c.core.model.shingle, 0);
        assert_eq!(c.core.model.likelihood.tail_quantile, None);
        assert_eq!(c.core.model.likelihood.short, 3, "request features only");
        assert_eq!(c.policy().mode, Mode::Enforce);
        assert_eq!(c.policy().severity(0.7), Severity::Warning);
        assert_eq!(c.policy().severity(0.76), Severity::Critical);
        let mut contaminated = s.clone();
        contaminated.model.contamination = Some(0.02);
        assert_eq!(
            threshold_rule(&contaminated),
            ThresholdRule::Contamination(0.02)
        );
        contaminated.model.threshold = Some(-0.9);
        assert_eq!(threshold_rule(&contaminated), ThresholdRule::Score(0.9));
    }

    #[test]
    fn invalid_specs_are_refused() {
        let base = serde_json::json!({"pipelineRef": {"name": "p"}, "features": ["event_count"]});
        let mut bad_hop = base.clone();
        bad_hop["window"] = serde_json::json!({"size": "1m", "hop": "2m"});
        assert!(DetectorConfig::from_spec(&spec(bad_hop), id()).is_err());
        let mut bad_duration = base.clone();
        bad_duration["alerting"] = serde_json::json!({"cooldown": "5 days"});
        let err = DetectorConfig::from_spec(&spec(bad_duration), id()).unwrap_err();
        assert!(err.to_string().contains("alerting.cooldown"), "{err}");
        let mut bad_warmup = base.clone();
        bad_warmup["training"] = serde_json::json!({"warmupWindows": 10, "historyWindows": 5});
        assert!(DetectorConfig::from_spec(&spec(bad_warmup), id()).is_err());
        let mut dup = base.clone();
        dup["features"] = serde_json::json!(["event_count", "event_count"]);
        assert!(DetectorConfig::from_spec(&spec(dup), id()).is_err());
        let mut bad_tail = base.clone();
        bad_tail["model"] = serde_json::json!({"tailQuantile": 1.0});
        let err = DetectorConfig::from_spec(&spec(bad_tail), id()).unwrap_err();
        assert!(err.to_string().contains("model.tailQuantile"), "{err}");
        let mut bad_smoothing = base.clone();
        bad_smoothing["model"] = serde_json::json!({"scoreSmoothing": 0});
        let err = DetectorConfig::from_spec(&spec(bad_smoothing), id()).unwrap_err();
        assert!(err.to_string().contains("model.scoreSmoothing"), "{err}");
        let mut unknown = base;
        unknown["features"] = serde_json::json!(["p50_latency"]);
        let err = DetectorConfig::from_spec(&spec(unknown), id()).unwrap_err();
        assert!(err.to_string().contains("p50_latency"), "{err}");
        assert!(DetectorConfig::from_json("{", "a/b").is_err());
    }
}
