//! The structured facts of a report, derived purely from the request (and the history lookup).
//! Every rendering (Markdown, JSON, SVG, the LLM prompt) is built from these and nothing else.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::format::{self, FeatureKind};
use crate::request::{ReportRequest, Severity, WindowSample};
use crate::steps;

/// Schema tag of the JSON object.
pub const SCHEMA: &str = "helios.dev/incident-report/v1";

/// One anomalous feature, ready to show.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureFact {
    /// Feature name.
    pub feature: String,
    /// Readable label.
    pub label: String,
    /// Feature family.
    pub kind: FeatureKind,
    /// Observed value.
    pub actual: f64,
    /// Typical value.
    pub typical: f64,
    /// Observed value with unit.
    pub actual_text: String,
    /// Typical value with unit.
    pub typical_text: String,
    /// actual / typical (absent when typical is 0).
    pub ratio: Option<f64>,
    /// Readable change (`6.9×`, `−85 %`).
    pub change: String,
    /// Robust z, when given.
    pub robust_z: Option<f64>,
    /// Contribution to the score.
    pub contribution: f64,
}

/// A past anomaly with the same fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimilarAnomaly {
    /// Its id.
    pub anomaly_id: String,
    /// Its window start.
    pub window_start: DateTime<Utc>,
    /// Its score.
    pub score: f64,
    /// Its severity (as stored).
    pub severity: String,
}

/// What the history lookup produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "status", content = "detail")]
pub enum History {
    /// No database or no table configured: the part is skipped.
    NotConfigured,
    /// The lookup failed; the report says why.
    Unavailable(String),
    /// Past anomalies with the same fingerprint, newest first (possibly none).
    Found(Vec<SimilarAnomaly>),
}

/// When the deviation began, judged from the recent windows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Onset {
    /// Start of the first deviating window of the run that ends in the anomalous window.
    pub started_at: DateTime<Utc>,
    /// Deviating windows in that run, the anomalous one included.
    pub deviating_windows: usize,
}

/// Suggested next steps for one feature family.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NextSteps {
    /// Family.
    pub kind: FeatureKind,
    /// Features of the family in this anomaly.
    pub features: Vec<String>,
    /// What to check, in order.
    pub steps: Vec<String>,
}

/// Everything a report states.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    /// Schema tag.
    pub schema: &'static str,
    /// Anomaly id.
    pub anomaly_id: String,
    /// Namespace.
    pub namespace: String,
    /// Pipeline.
    pub pipeline: String,
    /// Detector.
    pub detector: String,
    /// Partition key value.
    pub key: String,
    /// Fingerprint.
    pub fingerprint: String,
    /// Severity.
    pub severity: Severity,
    /// Score.
    pub score: f64,
    /// Anomalous window start.
    pub window_start: DateTime<Utc>,
    /// Anomalous window end.
    pub window_end: DateTime<Utc>,
    /// One line: `checkout p99 latency 1,240 ms vs typical 180 ms (6.9×) — Critical`.
    pub summary: String,
    /// Anomalous features, most responsible first.
    pub features: Vec<FeatureFact>,
    /// When it started.
    pub onset: Onset,
    /// Other keys anomalous at the same time.
    pub blast_radius: Vec<String>,
    /// Similar past anomalies.
    pub history: History,
    /// Suggested next steps per feature family.
    pub next_steps: Vec<NextSteps>,
    /// The windows around the anomaly, oldest first.
    pub series: Vec<WindowSample>,
}

impl Facts {
    /// Derive the facts of a (validated) request.
    pub fn derive(req: &ReportRequest, history: History) -> Self {
        let mut features: Vec<FeatureFact> = req
            .explanation
            .iter()
            .map(|e| FeatureFact {
                feature: e.feature.clone(),
                label: format::label(&e.feature),
                kind: FeatureKind::of(&e.feature),
                actual: e.actual,
                typical: e.typical,
                actual_text: format::value(&e.feature, e.actual),
                typical_text: format::value(&e.feature, e.typical),
                ratio: format::ratio(e.actual, e.typical),
                change: format::change(e.actual, e.typical),
                robust_z: e.robust_z,
                contribution: e.contribution,
            })
            .collect();
        features.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
        let mut series = req.recent_windows.clone();
        series.sort_by_key(|w| w.start);
        series.dedup_by_key(|w| w.start);
        let onset = features
            .first()
            .map(|f| onset(&series, req.window_start, &f.feature, f.typical))
            .unwrap_or(Onset {
                started_at: req.window_start,
                deviating_windows: 1,
            });
        let mut blast_radius: Vec<String> = req
            .related_keys
            .iter()
            .filter(|k| **k != req.key)
            .cloned()
            .collect();
        blast_radius.sort();
        blast_radius.dedup();
        Facts {
            schema: SCHEMA,
            anomaly_id: req.anomaly_id.clone(),
            namespace: req.namespace.clone(),
            pipeline: req.pipeline.clone(),
            detector: req.detector.clone(),
            key: req.key.clone(),
            fingerprint: req.fingerprint.clone(),
            severity: req.severity,
            score: req.score,
            window_start: req.window_start,
            window_end: req.window_end,
            summary: summary(&req.key, features.first(), req.severity),
            next_steps: steps::for_features(&features),
            features,
            onset,
            blast_radius,
            history,
            series,
        }
    }
}

/// `checkout p99 latency 1,240 ms vs typical 180 ms (6.9×) — Critical`.
pub fn summary(key: &str, top: Option<&FeatureFact>, severity: Severity) -> String {
    match top {
        Some(f) => format!(
            "{key} {} {} vs typical {} ({}) — {severity}",
            f.label, f.actual_text, f.typical_text, f.change
        ),
        None => format!("{key} anomalous — {severity}"),
    }
}

/// Walk back from the anomalous window while `feature` keeps deviating from `typical`.
pub fn onset(
    series: &[WindowSample],
    window_start: DateTime<Utc>,
    feature: &str,
    typical: f64,
) -> Onset {
    let mut started_at = window_start;
    let mut deviating_windows = 1;
    for w in series.iter().rev().filter(|w| w.start < window_start) {
        match w.features.get(feature) {
            Some(&v) if format::deviates(v, typical) => {
                started_at = w.start;
                deviating_windows += 1;
            }
            _ => break,
        }
    }
    Onset {
        started_at,
        deviating_windows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example::example_value;

    fn facts() -> Facts {
        let req = ReportRequest::from_value(example_value()).unwrap();
        Facts::derive(&req, History::NotConfigured)
    }

    #[test]
    fn summary_line_reads_well() {
        assert_eq!(
            facts().summary,
            "checkout p99 latency 1,240 ms vs typical 180 ms (6.9×) — Critical"
        );
    }

    #[test]
    fn onset_walks_back_over_deviating_windows() {
        let f = facts();
        assert_eq!(format::clock(f.onset.started_at), "10:04");
        assert_eq!(f.onset.deviating_windows, 2);
    }

    #[test]
    fn features_sorted_and_steps_per_kind() {
        let f = facts();
        let names: Vec<&str> = f.features.iter().map(|x| x.feature.as_str()).collect();
        assert_eq!(names, ["p99_latency", "error_rate", "event_count"]);
        let kinds: Vec<FeatureKind> = f.next_steps.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [
                FeatureKind::Latency,
                FeatureKind::Errors,
                FeatureKind::Volume
            ]
        );
        assert_eq!(f.blast_radius, ["checkout /api/cart", "payments"]);
        assert_eq!(f.series.len(), 14);
    }

    #[test]
    fn onset_without_series_is_the_window() {
        let t = DateTime::from_timestamp(1_000, 0).unwrap();
        let o = onset(&[], t, "x", 1.0);
        assert_eq!(
            o,
            Onset {
                started_at: t,
                deviating_windows: 1
            }
        );
    }
}
