//! The anomaly as it leaves the worker: the row's content, the anomalies-topic message (JSON,
//! camelCase) and the base of the report request.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use helios_detection::alert::Severity;
use helios_detection::explain::Explanation;
use helios_report::request::FeatureExplanation;
use serde::{Deserialize, Serialize};

use crate::config::DetectorConfig;
use crate::pipeline::{FiredAnomaly, values_map};

/// One anomaly (alert episode), as published on the anomalies topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnomalyMessage {
    /// Deterministic id: FNV-1a of fingerprint and episode start.
    pub anomaly_id: String,
    /// Detector as `namespace/name`.
    pub detector: String,
    /// The AnomalyPipeline.
    pub pipeline: String,
    /// Partition key value.
    pub key: String,
    /// Stable fingerprint (detector + key + features).
    pub fingerprint: String,
    /// `Info`, `Warning` or `Critical`.
    pub severity: String,
    /// Score of the firing window (0–1).
    pub score: f64,
    /// Start of the episode's first anomalous window.
    pub window_start: DateTime<Utc>,
    /// End of the firing window (the row's end moves to the episode end on resolve).
    pub window_end: DateTime<Utc>,
    /// Start of the window that fired the alert.
    pub fired_window_start: DateTime<Utc>,
    /// Features that drove the score, most responsible first.
    pub explanation: Vec<FeatureExplanation>,
    /// Feature values of the firing window.
    pub features: BTreeMap<String, f64>,
    /// Model version that scored the firing window.
    pub model_version: i64,
}

/// Epoch milliseconds as a UTC timestamp (clamped to the epoch when out of range).
pub fn ts(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The severity's wire name.
pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "Info",
        Severity::Warning => "Warning",
        Severity::Critical => "Critical",
    }
}

/// Parses a severity name (case-insensitive).
pub fn parse_severity(s: &str) -> Option<Severity> {
    match s.to_ascii_lowercase().as_str() {
        "info" => Some(Severity::Info),
        "warning" => Some(Severity::Warning),
        "critical" => Some(Severity::Critical),
        _ => None,
    }
}

/// The explanation in the report hook's format.
pub fn explanation(e: &Explanation) -> Vec<FeatureExplanation> {
    e.contributions
        .iter()
        .map(|c| FeatureExplanation {
            feature: c.feature.clone(),
            actual: c.actual,
            typical: c.typical,
            contribution: c.contribution,
            robust_z: Some(c.robust_z),
        })
        .collect()
}

impl AnomalyMessage {
    /// The message of a fired alert.
    pub fn from_fired(cfg: &DetectorConfig, f: &FiredAnomaly) -> Self {
        Self {
            anomaly_id: f.alert.id.clone(),
            detector: f.alert.detector_id.clone(),
            pipeline: cfg.pipeline.clone(),
            key: f.alert.partition_key.clone(),
            fingerprint: f.alert.fingerprint.clone(),
            severity: severity_name(f.alert.severity).to_string(),
            score: f.alert.score,
            window_start: ts(f.alert.start_ms),
            window_end: ts(f.alert.window_end_ms),
            fired_window_start: ts(f.fired_window_start_ms),
            explanation: explanation(&f.explanation),
            features: values_map(&cfg.feature_names(), &f.values),
            model_version: i64::try_from(f.model_version).unwrap_or(i64::MAX),
        }
    }

    /// The severity, parsed back (`Info` when unknown).
    pub fn severity(&self) -> Severity {
        parse_severity(&self.severity).unwrap_or(Severity::Info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_round_trip() {
        for s in [Severity::Info, Severity::Warning, Severity::Critical] {
            assert_eq!(parse_severity(severity_name(s)), Some(s));
        }
        assert_eq!(parse_severity("CRITICAL"), Some(Severity::Critical));
        assert_eq!(parse_severity("page"), None);
    }

    #[test]
    fn message_is_camel_case() {
        let m = AnomalyMessage {
            anomaly_id: "id".into(),
            detector: "ns/d".into(),
            pipeline: "p".into(),
            key: "k".into(),
            fingerprint: "fp".into(),
            severity: "Critical".into(),
            score: 0.9,
            window_start: ts(1000),
            window_end: ts(2000),
            fired_window_start: ts(1000),
            explanation: vec![],
            features: BTreeMap::new(),
            model_version: 1,
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["anomalyId"], "id");
        assert_eq!(v["windowStart"], "1970-01-01T00:00:01Z");
        assert_eq!(m.severity(), Severity::Critical);
    }
}
