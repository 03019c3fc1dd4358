//! Alertmanager's v2 alert shape for an anomaly, and the tracker of the alerts this worker has
//! firing: what to post when an anomaly fires, gets its report, is re-sent, or resolves. Pure:
//! every time is passed in.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::records::AnomalyMessage;

/// The `alertname` label of every anomaly alert.
pub const ALERT_NAME: &str = "HeliosAnomaly";
/// Explanation lines in the description annotation.
const TOP_FEATURES: usize = 3;

/// One alert as `POST /api/v2/alerts` takes it (`postableAlert`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    /// Identity in Alertmanager: the same labels are the same alert, across restarts.
    pub labels: BTreeMap<String, String>,
    /// Summary, description (top features, actual vs typical), score, anomaly id, report.
    pub annotations: BTreeMap<String, String>,
    /// Start of the episode's first anomalous window.
    pub starts_at: DateTime<Utc>,
    /// Firing: a little beyond the next re-send; resolved: when the episode ended.
    pub ends_at: DateTime<Utc>,
    /// Link shown by Alertmanager's receivers (the report when there is one).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub generator_url: String,
}

/// The labels of an anomaly's alert: stable for its whole episode and across worker restarts
/// (Alertmanager deduplicates on them).
pub fn labels(m: &AnomalyMessage) -> BTreeMap<String, String> {
    let (namespace, detector) = m.detector.split_once('/').unwrap_or(("", &m.detector));
    BTreeMap::from([
        ("alertname".into(), ALERT_NAME.into()),
        ("namespace".into(), namespace.into()),
        ("detector".into(), detector.into()),
        ("pipeline".into(), m.pipeline.clone()),
        ("key".into(), m.key.clone()),
        ("severity".into(), m.severity.to_ascii_lowercase()),
        ("fingerprint".into(), m.fingerprint.clone()),
    ])
}

/// The annotations of an anomaly's alert; `report`: the S3 URI of its report, once written.
pub fn annotations(m: &AnomalyMessage, report: Option<&str>) -> BTreeMap<String, String> {
    let top: Vec<String> = m
        .explanation
        .iter()
        .take(TOP_FEATURES)
        .map(|e| {
            format!(
                "{} {} (typical {})",
                e.feature,
                num(e.actual),
                num(e.typical)
            )
        })
        .collect();
    let lead = m
        .explanation
        .first()
        .map_or_else(|| "unusual traffic".to_string(), |e| e.feature.clone());
    let mut a = BTreeMap::from([
        (
            "summary".into(),
            format!(
                "{} anomaly on {} ({}): {lead}",
                m.severity, m.key, m.detector
            ),
        ),
        ("description".into(), top.join("; ")),
        ("score".into(), format!("{:.3}", m.score)),
        ("anomaly_id".into(), m.anomaly_id.clone()),
    ]);
    if let Some(uri) = report {
        a.insert("report".into(), uri.to_string());
    }
    a
}

/// A value for people: at most four significant decimals.
fn num(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.into()
    }
}

/// A firing alert with its anomaly id (resolve and report events name the anomaly).
#[derive(Debug, Clone, PartialEq)]
struct Firing {
    alert: PostableAlert,
    anomaly_id: String,
}

/// The alerts this worker keeps firing, and the resolutions still to deliver.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    firing: BTreeMap<String, Firing>,
    resolving: BTreeMap<String, PostableAlert>,
    /// How long a posted firing alert lives without a re-send (Alertmanager resolves it then).
    lifetime: Duration,
}

impl Tracker {
    /// A tracker whose firing alerts live `lifetime` past each post.
    pub fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            ..Self::default()
        }
    }

    /// An anomaly fired (or was open at start-up); its alert to post now.
    pub fn fire(&mut self, m: &AnomalyMessage, now: DateTime<Utc>) -> PostableAlert {
        let alert = PostableAlert {
            labels: labels(m),
            annotations: annotations(m, None),
            starts_at: m.window_start,
            ends_at: now + self.lifetime,
            generator_url: String::new(),
        };
        self.resolving.remove(&m.anomaly_id);
        self.firing.insert(
            m.anomaly_id.clone(),
            Firing {
                alert: alert.clone(),
                anomaly_id: m.anomaly_id.clone(),
            },
        );
        alert
    }

    /// The report of a firing anomaly was written: its alert, updated, to post now.
    pub fn reported(
        &mut self,
        anomaly_id: &str,
        uri: &str,
        now: DateTime<Utc>,
    ) -> Option<PostableAlert> {
        let f = self.firing.get_mut(anomaly_id)?;
        f.alert.annotations.insert("report".into(), uri.to_string());
        f.alert.generator_url = uri.to_string();
        f.alert.ends_at = now + self.lifetime;
        Some(f.alert.clone())
    }

    /// An anomaly's episode ended: its alert with `endsAt` now, to post until delivered.
    pub fn resolve(&mut self, anomaly_id: &str, now: DateTime<Utc>) -> Option<PostableAlert> {
        let mut f = self.firing.remove(anomaly_id)?;
        f.alert.ends_at = now.max(f.alert.starts_at);
        self.resolving.insert(f.anomaly_id, f.alert.clone());
        Some(f.alert)
    }

    /// Every alert to post on a re-send at `now`: the firing ones with a fresh `endsAt`, and
    /// the resolutions not delivered yet.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<PostableAlert> {
        let lifetime = self.lifetime;
        let mut out: Vec<PostableAlert> = self
            .firing
            .values_mut()
            .map(|f| {
                f.alert.ends_at = now + lifetime;
                f.alert.clone()
            })
            .collect();
        out.extend(self.resolving.values().cloned());
        out
    }

    /// The resolutions in `posted` reached Alertmanager: stop sending them.
    pub fn delivered(&mut self, posted: &[PostableAlert]) {
        self.resolving.retain(|_, a| {
            !posted
                .iter()
                .any(|p| p.labels == a.labels && p.ends_at == a.ends_at)
        });
    }

    /// Alerts firing.
    pub fn firing(&self) -> usize {
        self.firing.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::ts;
    use helios_report::request::FeatureExplanation;

    fn anomaly(id: &str, key: &str) -> AnomalyMessage {
        AnomalyMessage {
            anomaly_id: id.into(),
            detector: "shop/latency".into(),
            pipeline: "checkout".into(),
            key: key.into(),
            fingerprint: format!("fp-{key}"),
            severity: "Critical".into(),
            score: 0.93456,
            window_start: ts(1_000_000),
            window_end: ts(1_060_000),
            fired_window_start: ts(1_000_000),
            explanation: vec![
                FeatureExplanation {
                    feature: "p99_latency".into(),
                    actual: 812.5,
                    typical: 120.0,
                    contribution: 0.8,
                    robust_z: Some(9.0),
                },
                FeatureExplanation {
                    feature: "error_rate".into(),
                    actual: 0.02,
                    typical: 0.001,
                    contribution: 0.1,
                    robust_z: Some(2.0),
                },
            ],
            features: BTreeMap::new(),
            model_version: 3,
        }
    }

    #[test]
    fn labels_identify_the_episode_and_annotations_say_what_to_look_at() {
        let m = anomaly("a1", "checkout");
        let l = labels(&m);
        assert_eq!(l["alertname"], "HeliosAnomaly");
        assert_eq!(l["namespace"], "shop");
        assert_eq!(l["detector"], "latency");
        assert_eq!(l["pipeline"], "checkout");
        assert_eq!(l["key"], "checkout");
        assert_eq!(l["severity"], "critical");
        assert_eq!(l["fingerprint"], "fp-checkout");
        assert_eq!(l.len(), 7, "nothing per window in the identity: {l:?}");
        let a = annotations(&m, Some("s3://r/a1.md"));
        assert_eq!(
            a["description"],
            "p99_latency 812.5 (typical 120); error_rate 0.02 (typical 0.001)"
        );
        assert_eq!(
            a["summary"],
            "Critical anomaly on checkout (shop/latency): p99_latency"
        );
        assert_eq!(a["score"], "0.935");
        assert_eq!(a["report"], "s3://r/a1.md");
        let json = serde_json::to_value(Tracker::new(Duration::minutes(4)).fire(&m, ts(2_000_000)))
            .unwrap_or_default();
        assert_eq!(json["startsAt"], "1970-01-01T00:16:40Z");
        assert_eq!(json["endsAt"], "1970-01-01T00:37:20Z");
        assert!(json.get("generatorURL").is_none() && json.get("generatorUrl").is_none());
    }

    #[test]
    fn a_firing_alert_is_resent_with_a_fresh_end_then_resolved_until_delivered() {
        let mut t = Tracker::new(Duration::minutes(4));
        let m = anomaly("a1", "checkout");
        t.fire(&m, ts(2_000_000));
        let later = ts(2_060_000);
        let due = t.due(later);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].ends_at, later + Duration::minutes(4));
        let r = t.reported("a1", "s3://r/a1.md", later);
        assert_eq!(r.map(|a| a.generator_url), Some("s3://r/a1.md".to_string()));
        assert!(t.reported("other", "s3://x", later).is_none());
        let done = ts(2_120_000);
        let resolved = t.resolve("a1", done);
        assert_eq!(resolved.as_ref().map(|a| a.ends_at), Some(done));
        assert_eq!(t.firing(), 0);
        // A resolution never ends before the episode began.
        let mut early = Tracker::new(Duration::minutes(4));
        early.fire(&m, ts(0));
        assert_eq!(
            early.resolve("a1", ts(0)).map(|a| a.ends_at),
            Some(m.window_start)
        );
        // Not delivered yet: every re-send carries the resolution, with its own end.
        let again = t.due(ts(2_180_000));
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].ends_at, done);
        assert_eq!(again[0].annotations["report"], "s3://r/a1.md");
        t.delivered(&again);
        assert!(t.due(ts(2_240_000)).is_empty());
        assert!(t.resolve("a1", done).is_none(), "resolved once");
    }

    #[test]
    fn a_refire_cancels_a_pending_resolution() {
        let mut t = Tracker::new(Duration::minutes(4));
        let m = anomaly("a1", "checkout");
        t.fire(&m, ts(0));
        t.resolve("a1", ts(60_000));
        t.fire(&m, ts(70_000));
        let due = t.due(ts(80_000));
        assert_eq!(due.len(), 1);
        assert!(due[0].ends_at > ts(80_000), "firing again");
    }
}
