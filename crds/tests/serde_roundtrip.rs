//! Defaults and serde round trips of every type, from minimal objects and from the examples.

#![allow(clippy::unwrap_used)]

use helios_crds::detector::{AlertMode, Algorithm};
use helios_crds::pipeline::DeletionPolicy;
use helios_crds::{AnomalyPipeline, Detector, Feature, Severity};
use std::path::Path;

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
    v: &T,
) {
    let json = serde_json::to_string(v).unwrap();
    let back: T = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, v, "JSON round trip changed the value");
    let yaml = serde_yaml::to_string(v).unwrap();
    let back: T = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(&back, v, "YAML round trip changed the value");
}

#[test]
fn minimal_pipeline_gets_sensible_defaults() {
    let p: AnomalyPipeline = serde_yaml::from_str(
        "apiVersion: helios.dev/v1alpha1\nkind: AnomalyPipeline\nmetadata: {name: p}\n\
         spec:\n  kafka: {bootstrapServers: 'k:9092'}\n",
    )
    .unwrap();
    let s = &p.spec;
    assert_eq!(s.kafka.deletion_policy, DeletionPolicy::Retain);
    assert_eq!(s.kafka.topics.events.partitions, 3);
    assert_eq!(s.kafka.topics.anomalies.partitions, 1);
    assert_eq!(s.kafka.topics.events.replication_factor, 1);
    assert_eq!(s.ingestion.replicas, 2);
    assert_eq!(s.ingestion.max_body_size, "5Mi");
    assert!(!s.suspend);
    assert!(s.reporting.is_none() && s.storage.is_none());
    round_trip(&p.spec);
}

#[test]
fn minimal_detector_gets_sensible_defaults() {
    let d: Detector = serde_yaml::from_str(
        "apiVersion: helios.dev/v1alpha1\nkind: Detector\nmetadata: {name: d}\n\
         spec:\n  pipelineRef: {name: p}\n  features: [p99_latency]\n",
    )
    .unwrap();
    let s = &d.spec;
    assert_eq!(s.model.algorithm, Algorithm::RobustForest);
    assert_eq!(
        (s.model.trees, s.model.sample_size, s.model.seed),
        (100, 256, 42)
    );
    assert_eq!(s.model.contamination, None);
    assert_eq!(s.model.threshold, None);
    assert_eq!(s.alerting.budget.false_alerts_per_week, 1.0);
    assert_eq!(s.window.size.parse().unwrap().as_secs(), 300);
    assert_eq!(s.window.hop, None);
    assert_eq!(s.alerting.mode, AlertMode::Enforce);
    assert_eq!(
        s.alerting.severity_bands.last().map(|b| b.severity),
        Some(Severity::Critical)
    );
    assert_eq!(s.partition_by.len(), 1);
    assert_eq!(s.training.warmup_windows, 12);
    assert_eq!(s.features, vec![Feature::new("p99_latency")]);
    round_trip(&d.spec);
}

#[test]
fn the_examples_parse_and_round_trip() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples");
    let mut pipelines = 0;
    let mut detectors = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(doc).unwrap();
            match value.get("kind").and_then(|k| k.as_str()) {
                Some("AnomalyPipeline") => {
                    let p: AnomalyPipeline = serde_yaml::from_value(value).unwrap();
                    round_trip(&p.spec);
                    pipelines += 1;
                }
                Some("Detector") => {
                    let d: Detector = serde_yaml::from_value(value).unwrap();
                    assert!(
                        d.spec.features.iter().all(Feature::is_valid),
                        "{}: features",
                        path.display()
                    );
                    assert_eq!(d.spec.model.contamination, None, "{}", path.display());
                    assert_eq!(d.spec.window.size.0, "5m");
                    round_trip(&d.spec);
                    detectors += 1;
                }
                _ => {}
            }
        }
    }
    assert_eq!((pipelines, detectors), (1, 3));
}

#[test]
fn statuses_round_trip() {
    use helios_crds::detector::{DetectorStatus, FeatureDeviation, LastAnomaly, ModelStatus};
    use helios_crds::pipeline::{AnomalyPipelineStatus, DetectorCounts, TopicsStatus};
    let ps = AnomalyPipelineStatus {
        observed_generation: Some(3),
        topics: Some(TopicsStatus {
            events: "e".into(),
            anomalies: "a".into(),
            events_partitions: Some(6),
        }),
        detectors: Some(DetectorCounts {
            total: 3,
            ready: 2,
            summary: "2/3".into(),
        }),
        ..Default::default()
    };
    round_trip(&ps);
    let ds = DetectorStatus {
        observed_generation: Some(1),
        replicas: 1,
        model: Some(ModelStatus {
            version: 4,
            trained_at: Some("2026-11-24T10:00:00Z".into()),
            effective_threshold: Some(0.7),
            threshold_rule: Some("alertBudget".into()),
            seasonality: Some("daily".into()),
            warmup: None,
            suppressions: Some(1),
        }),
        last_anomaly: Some(LastAnomaly {
            time: "2026-11-24T10:05:00Z".into(),
            score: 0.81,
            severity: Severity::Critical,
            fingerprint: "abc".into(),
            key: Some("checkout".into()),
            top_features: vec![FeatureDeviation {
                feature: "p99_latency".into(),
                actual: 1240.0,
                typical: 180.0,
            }],
            report_uri: None,
        }),
        ..Default::default()
    };
    round_trip(&ds);
}

use serde::Deserialize as _;
