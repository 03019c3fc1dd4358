//! Feedback on anomalies: a team labels an anomaly a false positive or confirms it by annotating
//! its Detector (`helios.dev/feedback-<anomalyId>: false-positive | confirmed`, e.g. with
//! `kubectl annotate`). A false positive becomes a **suppression** scoped to its key and to what
//! drove it: a later anomaly of the same key whose leading feature is the same, deviates the
//! same way and by at most [`MARGIN`] × as much (robust z) is recorded but not alerted; a larger
//! deviation, another feature or another key still alerts. Confirmed anomalies need nothing
//! more: flagged windows never enter the training history.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::records::AnomalyMessage;

/// The annotation prefix; the rest of the key is the anomaly id.
pub const ANNOTATION_PREFIX: &str = "helios.dev/feedback-";
/// How much further than the labelled anomaly a deviation of the same kind must go to alert.
pub const MARGIN: f64 = 1.25;

/// A team's verdict on an anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// Not an incident: suppress its pattern on its key.
    FalsePositive,
    /// A real incident.
    Confirmed,
}

impl Label {
    /// Stable name (annotation value, database column, metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FalsePositive => "false-positive",
            Self::Confirmed => "confirmed",
        }
    }

    /// Parses an annotation value (case-insensitive; `fp`/`tp` accepted).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "false-positive" | "falsepositive" | "fp" => Some(Self::FalsePositive),
            "confirmed" | "true-positive" | "tp" => Some(Self::Confirmed),
            _ => None,
        }
    }
}

/// The labels in a Detector's annotations: (anomaly id, label); values that are no label are
/// returned as errors naming the annotation.
pub fn labels(annotations: &BTreeMap<String, String>) -> (Vec<(String, Label)>, Vec<String>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (k, v) in annotations {
        let Some(id) = k.strip_prefix(ANNOTATION_PREFIX) else {
            continue;
        };
        match Label::parse(v) {
            Some(l) if !id.is_empty() => ok.push((id.to_string(), l)),
            _ => bad.push(format!("{k}: {v:?} is not false-positive or confirmed")),
        }
    }
    (ok, bad)
}

/// What a false positive stands for: its key, leading feature, direction and size.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppression {
    /// The labelled anomaly.
    pub anomaly_id: String,
    /// Its key.
    pub key: String,
    /// The feature that drove it most.
    pub feature: String,
    /// Whether that feature was above its typical value.
    pub above: bool,
    /// How far from its typical value it was (feature units).
    pub deviation: f64,
}

impl Suppression {
    /// The suppression of a false positive `anomaly_id` on `key` led by `lead` (feature,
    /// actual, typical).
    pub fn new(anomaly_id: &str, key: &str, lead: (&str, f64, f64)) -> Self {
        Self {
            anomaly_id: anomaly_id.to_string(),
            key: key.to_string(),
            feature: lead.0.to_string(),
            above: lead.1 >= lead.2,
            deviation: (lead.1 - lead.2).abs(),
        }
    }

    /// The suppression a false positive on `m` stands for (`None` without an explanation).
    pub fn of(m: &AnomalyMessage) -> Option<Self> {
        let lead = m.explanation.first()?;
        Some(Self::new(
            &m.anomaly_id,
            &m.key,
            (&lead.feature, lead.actual, lead.typical),
        ))
    }

    /// Whether an anomaly of `key` led by `lead` (feature, actual, typical) is the same
    /// pattern, no larger than [`MARGIN`] × this one.
    pub fn covers(&self, key: &str, lead: (&str, f64, f64)) -> bool {
        let (feature, actual, typical) = lead;
        key == self.key
            && feature == self.feature
            && (actual >= typical) == self.above
            && (actual - typical).abs() <= self.deviation * MARGIN
    }
}

/// The suppressions in force, shared by the feedback reader and the scoring pipeline.
#[derive(Debug, Clone, Default)]
pub struct Suppressions(Arc<RwLock<Vec<Suppression>>>);

impl Suppressions {
    /// Adds `s` unless one for the same anomaly is there; whether it was added.
    pub fn add(&self, s: Suppression) -> bool {
        let mut all = self.0.write().unwrap_or_else(|e| e.into_inner());
        if all.iter().any(|x| x.anomaly_id == s.anomaly_id) {
            return false;
        }
        all.push(s);
        true
    }

    /// The suppression covering an anomaly of `key` led by `lead` (feature, actual, typical),
    /// if any: its anomaly id.
    pub fn covering(&self, key: &str, lead: (&str, f64, f64)) -> Option<String> {
        let all = self.0.read().unwrap_or_else(|e| e.into_inner());
        all.iter()
            .find(|s| s.covers(key, lead))
            .map(|s| s.anomaly_id.clone())
    }

    /// Puts `all` in force instead of what was.
    pub fn replace(&self, all: Vec<Suppression>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = all;
    }

    /// How many are in force.
    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::ts;
    use helios_report::request::FeatureExplanation;

    fn fp(key: &str, actual: f64, z: f64) -> AnomalyMessage {
        AnomalyMessage {
            anomaly_id: format!("a-{key}"),
            detector: "ns/d".into(),
            pipeline: "p".into(),
            key: key.into(),
            fingerprint: "f".into(),
            severity: "Warning".into(),
            score: 0.9,
            window_start: ts(0),
            window_end: ts(1),
            fired_window_start: ts(0),
            explanation: vec![FeatureExplanation {
                feature: "p99_latency".into(),
                actual,
                typical: 100.0,
                contribution: 0.5,
                robust_z: Some(z),
            }],
            features: BTreeMap::new(),
            model_version: 1,
        }
    }

    #[test]
    fn annotations_become_labels_and_a_bad_value_is_named() {
        let a = BTreeMap::from([
            (
                "helios.dev/feedback-abc".to_string(),
                "false-positive".to_string(),
            ),
            (
                "helios.dev/feedback-def".to_string(),
                "Confirmed".to_string(),
            ),
            ("helios.dev/feedback-ghi".to_string(), "maybe".to_string()),
            (
                "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                "{}".to_string(),
            ),
        ]);
        let (ok, bad) = labels(&a);
        assert_eq!(
            ok,
            vec![
                ("abc".to_string(), Label::FalsePositive),
                ("def".to_string(), Label::Confirmed)
            ]
        );
        assert_eq!(bad.len(), 1);
        assert!(bad[0].contains("helios.dev/feedback-ghi"), "{bad:?}");
        assert_eq!(
            Label::parse(Label::FalsePositive.as_str()),
            Some(Label::FalsePositive)
        );
    }

    #[test]
    fn a_false_positive_covers_its_pattern_on_its_key_only_up_to_the_margin() {
        let s = Suppression::of(&fp("checkout", 300.0, 8.0)).unwrap_or_else(|| unreachable!());
        assert!(s.covers("checkout", ("p99_latency", 310.0, 100.0)));
        assert!(
            s.covers("checkout", ("p99_latency", 350.0, 100.0)),
            "200 × 1.25"
        );
        assert!(
            !s.covers("checkout", ("p99_latency", 351.0, 100.0)),
            "larger"
        );
        assert!(
            !s.covers("cart", ("p99_latency", 310.0, 100.0)),
            "another key"
        );
        assert!(
            !s.covers("checkout", ("error_rate", 0.2, 0.0)),
            "another feature"
        );
        assert!(
            !s.covers("checkout", ("p99_latency", 20.0, 100.0)),
            "the other way"
        );
        let all = Suppressions::default();
        assert!(all.add(s.clone()));
        assert!(!all.add(s), "once per anomaly");
        assert_eq!(
            all.covering("checkout", ("p99_latency", 310.0, 100.0)),
            Some("a-checkout".to_string())
        );
        assert_eq!(all.covering("cart", ("p99_latency", 310.0, 100.0)), None);
    }
}
