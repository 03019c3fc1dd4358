//! Maps the Detector spec (`helios-crds`) onto the detection library's configuration (pure).

use std::collections::BTreeMap;

use helios_crds::DetectorSpec;
use helios_crds::detector::AlertMode;
use helios_detection::alert::{AlertPolicy, Mode, Severity, SeverityBand};
use helios_detection::features::Feature;
use helios_detection::forest::{ForestConfig, Threshold};
use helios_detection::stream::StreamConfig;
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
    /// Features in spec order.
    pub features: Vec<Feature>,
    /// Streaming model settings.
    pub stream: StreamConfig,
    /// Alerting policy.
    pub policy: AlertPolicy,
    /// Range guard: a window is also anomalous when a base feature's robust z (against the
    /// training median/MAD) reaches this, scored `max(s, z/(z+3))`; 0 disables it.
    pub z_guard: f64,
}

/// Default range guard (robust z).
pub const DEFAULT_Z_GUARD: f64 = 8.0;

impl DetectorConfig {
    /// Parses the JSON spec and the `namespace/name` id.
    pub fn from_json(spec_json: &str, detector: &str) -> Result<Self, ConfigError> {
        let spec: DetectorSpec = serde_json::from_str(spec_json)?;
        Self::from_spec(&spec, DetectorId::parse(detector)?)
    }

    /// Maps a spec onto the library configuration.
    pub fn from_spec(spec: &DetectorSpec, id: DetectorId) -> Result<Self, ConfigError> {
        let window = window_config(spec)?;
        let features = features(&spec.features)?;
        let stream = stream_config(spec, window.hop_ms)?;
        let policy = alert_policy(spec, &id.id())?;
        Ok(Self {
            pipeline: spec.pipeline_ref.name.clone(),
            selector: Selector::from_spec(&spec.selector),
            partition_by: PartitionBy::parse(spec.partition_by.iter().map(|p| p.0.as_str()))?,
            window,
            features,
            stream,
            policy,
            id,
            z_guard: DEFAULT_Z_GUARD,
        })
    }

    /// Base feature names in model order.
    pub fn feature_names(&self) -> Vec<String> {
        self.features
            .iter()
            .map(|f| f.as_str().to_string())
            .collect()
    }
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

/// Maps spec features onto library features by wire name, refusing duplicates.
pub fn features(spec: &[helios_crds::Feature]) -> Result<Vec<Feature>, ConfigError> {
    if spec.is_empty() {
        return Err(ConfigError::Invalid("features must not be empty".into()));
    }
    let names: Vec<&str> = spec.iter().map(|f| f.as_str()).collect();
    helios_detection::features::parse_features(&names)
        .map_err(|e| ConfigError::Invalid(e.to_string()))
}

fn positive(field: &str, v: i32) -> Result<usize, ConfigError> {
    usize::try_from(v)
        .ok()
        .filter(|&u| u > 0)
        .ok_or_else(|| ConfigError::Invalid(format!("{field} must be positive, got {v}")))
}

fn stream_config(spec: &DetectorSpec, hop_ms: i64) -> Result<StreamConfig, ConfigError> {
    let retrain_ms = millis("training.retrainInterval", &spec.training.retrain_interval)?;
    // Retraining counts scored windows; one window arrives per hop.
    let retrain_every = if retrain_ms <= 0 {
        0
    } else {
        usize::try_from((retrain_ms + hop_ms - 1) / hop_ms).unwrap_or(usize::MAX)
    };
    let threshold = match spec.model.threshold {
        Some(t) => Threshold::ScoreSamples(t),
        None => Threshold::Contamination(spec.model.contamination),
    };
    let cfg = StreamConfig {
        warmup_windows: positive("training.warmupWindows", spec.training.warmup_windows)?,
        retrain_every,
        history: positive("training.historyWindows", spec.training.history_windows)?,
        shingle: positive("model.shingleSize", spec.model.shingle_size)? - 1,
        forest: ForestConfig {
            n_trees: positive("model.trees", spec.model.trees)?,
            max_samples: positive("model.sampleSize", spec.model.sample_size)?,
            seed: u64::try_from(spec.model.seed).map_err(|_| {
                ConfigError::Invalid(format!("model.seed must be >= 0, got {}", spec.model.seed))
            })?,
            threads: 1,
            threshold,
        },
    };
    helios_detection::stream::StreamDetector::new(cfg, &["probe".to_string()])
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    Ok(cfg)
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
        let feature: Feature = f
            .as_str()
            .parse()
            .map_err(|e: helios_detection::DetectionError| ConfigError::Invalid(e.to_string()))?;
        floors.insert(feature, *v);
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
            "features": ["p99_latency", "error_rate"],
            "model": {"trees": 50, "sampleSize": 128, "contamination": 0.02,
                      "threshold": -0.7, "seed": 7, "shingleSize": 3},
            "training": {"warmupWindows": 10, "retrainInterval": "10m", "historyWindows": 500},
            "alerting": {"mode": "DryRun", "minConsecutiveWindows": 2, "cooldown": "5m",
                         "floors": {"p99_latency": 200.0},
                         "severityBands": [{"severity": "Critical", "minScore": 0.8}]}
        }));
        let c = DetectorConfig::from_spec(&s, id()).unwrap();
        assert_eq!(c.pipeline, "checkout-events");
        assert_eq!(
            c.window,
            WindowConfig {
                size_ms: 60_000,
                hop_ms: 30_000,
                allowed_lateness_ms: 5_000
            }
        );
        assert_eq!(c.features, vec![Feature::P99Latency, Feature::ErrorRate]);
        assert_eq!(c.feature_names(), vec!["p99_latency", "error_rate"]);
        assert_eq!(c.stream.warmup_windows, 10);
        assert_eq!(c.stream.retrain_every, 20); // 10m / 30s hop
        assert_eq!(c.stream.history, 500);
        assert_eq!(c.stream.shingle, 2);
        assert_eq!(c.stream.forest.n_trees, 50);
        assert_eq!(c.stream.forest.max_samples, 128);
        assert_eq!(c.stream.forest.seed, 7);
        assert_eq!(c.stream.forest.threshold, Threshold::ScoreSamples(-0.7));
        assert_eq!(c.policy.detector_id, "shop/latency");
        assert_eq!(c.policy.mode, Mode::DryRun);
        assert_eq!(c.policy.min_consecutive, 2);
        assert_eq!(c.policy.cooldown_ms, 300_000);
        assert_eq!(c.policy.floors.get(&Feature::P99Latency), Some(&200.0));
        assert_eq!(c.policy.severity(0.9), Severity::Critical);
        assert_eq!(c.policy.severity(0.5), Severity::Info);
        assert!(c.selector.services.contains("checkout"));
    }

    #[test]
    fn defaults_tumble_and_use_contamination() {
        let s = spec(serde_json::json!({
            "pipelineRef": {"name": "p"}, "features": ["event_count"]
        }));
        let c = DetectorConfig::from_spec(&s, id()).unwrap();
        assert_eq!(c.window.size_ms, 300_000);
        assert_eq!(c.window.hop_ms, 300_000);
        assert_eq!(c.window.allowed_lateness_ms, 30_000);
        assert_eq!(c.stream.forest.threshold, Threshold::Contamination(0.05));
        assert_eq!(c.stream.retrain_every, 12); // 1h / 5m
        assert_eq!(c.stream.shingle, 0);
        assert_eq!(c.policy.mode, Mode::Enforce);
        assert_eq!(c.policy.severity(0.7), Severity::Warning);
        assert_eq!(c.policy.severity(0.76), Severity::Critical);
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
        let mut dup = base;
        dup["features"] = serde_json::json!(["event_count", "event_count"]);
        assert!(DetectorConfig::from_spec(&spec(dup), id()).is_err());
        assert!(DetectorConfig::from_json("{", "a/b").is_err());
    }
}
