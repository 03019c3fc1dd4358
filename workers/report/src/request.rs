//! The input of the hook: one anomaly plus where to write the report, parsed and validated.
//!
//! Parsing names the failing field (`at \`report.bucket\`: missing field ...`); validation
//! checks what types cannot (empty names, score range, window order, key-safe ids). Nothing
//! is written for a request that fails either step.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Severity of the anomaly, as the detector assigned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// Informational.
    #[serde(alias = "info", alias = "INFO")]
    Info,
    /// Needs attention.
    #[serde(alias = "warning", alias = "WARNING")]
    Warning,
    /// Needs action now.
    #[serde(alias = "critical", alias = "CRITICAL")]
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "Info",
            Severity::Warning => "Warning",
            Severity::Critical => "Critical",
        })
    }
}

/// One feature's part in the detector's explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureExplanation {
    /// Feature name, e.g. `p99_latency`.
    pub feature: String,
    /// Observed value in the anomalous window.
    pub actual: f64,
    /// Typical value (training median).
    pub typical: f64,
    /// How much the feature drove the score (higher = more responsible).
    pub contribution: f64,
    /// Robust z of the value, when the detector computed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robust_z: Option<f64>,
}

/// The features of one window around the anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowSample {
    /// Window start.
    pub start: DateTime<Utc>,
    /// Feature name → value.
    pub features: BTreeMap<String, f64>,
}

/// The OpenAI-compatible chat API used for the narrative.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LlmConfig {
    /// Base URL; `{baseUrl}/chat/completions` is called.
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// Bearer key, resolved by the caller (never logged, never written).
    #[serde(default, skip_serializing)]
    pub api_key: Option<String>,
    /// Per-attempt timeout in milliseconds (one retry follows a failed attempt).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    10_000
}

impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// Where and how to write the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportConfig {
    /// S3 bucket.
    pub bucket: String,
    /// Key prefix (leading/trailing slashes are ignored).
    #[serde(default)]
    pub prefix: String,
    /// S3 endpoint override (MinIO, LocalStack); path-style addressing is used with it.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// S3 region (else `AWS_REGION`, else `us-east-1`).
    #[serde(default)]
    pub region: Option<String>,
    /// Chat API for the narrative; without it the template is used.
    #[serde(default)]
    pub llm: Option<LlmConfig>,
    /// PostgreSQL table of past anomalies (`[schema.]table`); used when a database is configured.
    #[serde(default)]
    pub history_table: Option<String>,
}

/// One anomaly to report on (camelCase JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRequest {
    /// Kubernetes namespace of the pipeline.
    pub namespace: String,
    /// AnomalyPipeline name.
    pub pipeline: String,
    /// Detector name.
    pub detector: String,
    /// Partition key value (e.g. the service).
    pub key: String,
    /// Deterministic anomaly id (names the objects).
    pub anomaly_id: String,
    /// Start of the anomalous window.
    pub window_start: DateTime<Utc>,
    /// End of the anomalous window.
    pub window_end: DateTime<Utc>,
    /// Anomaly score in [0, 1].
    pub score: f64,
    /// Severity.
    pub severity: Severity,
    /// Stable fingerprint (detector + key + features).
    pub fingerprint: String,
    /// Which features drove the score.
    pub explanation: Vec<FeatureExplanation>,
    /// Windows around the anomaly, the anomalous one included.
    #[serde(default)]
    pub recent_windows: Vec<WindowSample>,
    /// Other keys anomalous at the same time (blast radius).
    #[serde(default)]
    pub related_keys: Vec<String>,
    /// Where to write.
    pub report: ReportConfig,
}

impl ReportRequest {
    /// Parse and validate a request from JSON; the error names the offending field.
    pub fn from_value(value: serde_json::Value) -> Result<Self, Error> {
        let req: ReportRequest = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                Error::InvalidRequest(inner.to_string())
            } else {
                Error::InvalidRequest(format!("at `{path}`: {inner}"))
            }
        })?;
        req.validate()?;
        Ok(req)
    }

    /// Parse and validate a request from JSON text.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::InvalidRequest(format!("not JSON: {e}")))?;
        Self::from_value(value)
    }

    /// Check what the types cannot: non-empty names, key-safe ids, ranges, window order.
    pub fn validate(&self) -> Result<(), Error> {
        for (field, value) in [
            ("namespace", &self.namespace),
            ("pipeline", &self.pipeline),
            ("anomalyId", &self.anomaly_id),
        ] {
            key_segment(field, value)?;
        }
        for (field, value) in [
            ("detector", &self.detector),
            ("key", &self.key),
            ("fingerprint", &self.fingerprint),
            ("report.bucket", &self.report.bucket),
        ] {
            non_empty(field, value)?;
        }
        if !self.score.is_finite() || !(0.0..=1.0).contains(&self.score) {
            return invalid(
                "score",
                format!("must be between 0 and 1, got {}", self.score),
            );
        }
        if self.window_end <= self.window_start {
            return invalid("windowEnd", "must be after windowStart".to_string());
        }
        if self.explanation.is_empty() {
            return invalid("explanation", "must list at least one feature".to_string());
        }
        for (i, e) in self.explanation.iter().enumerate() {
            non_empty(&format!("explanation[{i}].feature"), &e.feature)?;
        }
        for (i, k) in self.related_keys.iter().enumerate() {
            non_empty(&format!("relatedKeys[{i}]"), k)?;
        }
        if self.report.prefix.split('/').any(|s| s == "..") {
            return invalid("report.prefix", "must not contain `..`".to_string());
        }
        if let Some(llm) = &self.report.llm {
            non_empty("report.llm.baseUrl", &llm.base_url)?;
            non_empty("report.llm.model", &llm.model)?;
            if !(llm.base_url.starts_with("http://") || llm.base_url.starts_with("https://")) {
                return invalid(
                    "report.llm.baseUrl",
                    "must start with http:// or https://".into(),
                );
            }
            if llm.timeout_ms == 0 || llm.timeout_ms > 300_000 {
                return invalid("report.llm.timeoutMs", "must be 1..=300000".to_string());
            }
        }
        if let Some(table) = &self.report.history_table
            && !is_table_name(table)
        {
            return invalid(
                "report.historyTable",
                format!("`{table}` is not a plain [schema.]table identifier"),
            );
        }
        Ok(())
    }
}

fn invalid<T>(field: &str, why: String) -> Result<T, Error> {
    Err(Error::InvalidRequest(format!("field `{field}` {why}")))
}

fn non_empty(field: &str, value: &str) -> Result<(), Error> {
    if value.trim().is_empty() {
        return invalid(field, "must not be empty".to_string());
    }
    Ok(())
}

/// A value used as one S3 key segment: non-empty, no slashes, no control characters, not `.`/`..`.
fn key_segment(field: &str, value: &str) -> Result<(), Error> {
    non_empty(field, value)?;
    if value == "."
        || value == ".."
        || value
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
    {
        return invalid(field, format!("`{value}` cannot be used in an object key"));
    }
    Ok(())
}

/// `table` or `schema.table`, each part `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_table_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() <= 2
        && parts.iter().all(|p| {
            let mut chars = p.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example::example_value as sample_value;

    fn err_of(v: serde_json::Value) -> String {
        ReportRequest::from_value(v).unwrap_err().to_string()
    }

    #[test]
    fn sample_parses() {
        let req = ReportRequest::from_value(sample_value()).unwrap();
        assert_eq!(req.severity, Severity::Critical);
        assert_eq!(req.explanation[0].feature, "p99_latency");
    }

    #[test]
    fn missing_field_is_named() {
        let mut v = sample_value();
        v.as_object_mut().unwrap().remove("detector");
        assert!(err_of(v).contains("missing field `detector`"));
        let mut v = sample_value();
        v["report"].as_object_mut().unwrap().remove("bucket");
        let msg = err_of(v);
        assert!(msg.contains("report") && msg.contains("`bucket`"), "{msg}");
    }

    #[test]
    fn wrong_type_is_named_with_path() {
        let mut v = sample_value();
        v["explanation"][0]["actual"] = serde_json::json!("lots");
        let msg = err_of(v);
        assert!(msg.contains("explanation[0].actual"), "{msg}");
        let mut v = sample_value();
        v["score"] = serde_json::json!("high");
        assert!(err_of(v).contains("`score`"));
    }

    #[test]
    fn semantic_checks_name_the_field() {
        let mut v = sample_value();
        v["detector"] = serde_json::json!("  ");
        assert!(err_of(v).contains("field `detector` must not be empty"));
        let mut v = sample_value();
        v["score"] = serde_json::json!(1.5);
        assert!(err_of(v).contains("field `score`"));
        let mut v = sample_value();
        v["windowEnd"] = v["windowStart"].clone();
        assert!(err_of(v).contains("field `windowEnd`"));
        let mut v = sample_value();
        v["anomalyId"] = serde_json::json!("../x");
        assert!(err_of(v).contains("field `anomalyId`"));
        let mut v = sample_value();
        v["report"]["historyTable"] = serde_json::json!("x; drop table y");
        assert!(err_of(v).contains("report.historyTable"));
        let mut v = sample_value();
        v["explanation"] = serde_json::json!([]);
        assert!(err_of(v).contains("field `explanation`"));
    }

    #[test]
    fn bad_timestamp_and_not_an_object() {
        let mut v = sample_value();
        v["windowStart"] = serde_json::json!("yesterday");
        assert!(err_of(v).contains("windowStart"));
        assert!(err_of(serde_json::Value::Null).contains("invalid type"));
    }

    #[test]
    fn api_key_is_redacted_and_never_serialised() {
        let mut v = sample_value();
        v["report"]["llm"] =
            serde_json::json!({"baseUrl": "http://x", "model": "m", "apiKey": "sk-secret"});
        let req = ReportRequest::from_value(v).unwrap();
        assert!(!format!("{req:?}").contains("sk-secret"));
        assert!(!serde_json::to_string(&req).unwrap().contains("sk-secret"));
    }

    #[test]
    fn table_names() {
        assert!(is_table_name("anomalies"));
        assert!(is_table_name("helios.anomalies_v1"));
        assert!(!is_table_name("a.b.c"));
        assert!(!is_table_name("1abc"));
        assert!(!is_table_name("a-b"));
        assert!(!is_table_name(""));
    }
}
