//! The report hook: which anomalies get a report (severity, cooldown per fingerprint, hourly
//! budget) and the Lambda invocation that writes it.

use std::collections::{HashMap, VecDeque};

use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_lambda::primitives::Blob;
use helios_detection::alert::Severity;
use helios_report::ReportRequest;
use helios_report::request::ReportConfig;

/// Why a report was not written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reports are configured incompletely.
    #[error("report configuration: {0}")]
    Config(String),
    /// The invocation failed.
    #[error("invoking the report hook: {0}")]
    Invoke(String),
    /// The function ran and failed.
    #[error("the report hook failed ({kind}): {body}")]
    Function {
        /// Lambda's `FunctionError`.
        kind: String,
        /// The error payload.
        body: String,
    },
    /// The response has no `reportUri`.
    #[error("unexpected report hook response: {0}")]
    Response(String),
}

/// Whether an anomaly gets a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it.
    Report,
    /// Below the minimum severity.
    BelowSeverity,
    /// The fingerprint was reported less than a cooldown ago.
    Cooldown,
    /// The hourly budget is spent.
    Budget,
}

const HOUR_MS: i64 = 3_600_000;

/// Severity floor, per-fingerprint cooldown and a rolling hourly budget (wall-clock ms).
#[derive(Debug, Clone)]
pub struct ReportLimiter {
    min_severity: Severity,
    cooldown_ms: i64,
    max_per_hour: u32,
    last_by_fingerprint: HashMap<String, i64>,
    sent: VecDeque<i64>,
}

impl ReportLimiter {
    /// A limiter; `max_per_hour == 0` means unlimited.
    pub fn new(min_severity: Severity, cooldown_ms: i64, max_per_hour: u32) -> Self {
        Self {
            min_severity,
            cooldown_ms,
            max_per_hour,
            last_by_fingerprint: HashMap::new(),
            sent: VecDeque::new(),
        }
    }

    /// Decides for one anomaly at `now_ms`, and counts it when the answer is `Report`.
    pub fn check(&mut self, fingerprint: &str, severity: Severity, now_ms: i64) -> Decision {
        if severity < self.min_severity {
            return Decision::BelowSeverity;
        }
        if self
            .last_by_fingerprint
            .get(fingerprint)
            .is_some_and(|&last| now_ms - last < self.cooldown_ms)
        {
            return Decision::Cooldown;
        }
        while self.sent.front().is_some_and(|&t| now_ms - t >= HOUR_MS) {
            self.sent.pop_front();
        }
        if self.max_per_hour > 0 && self.sent.len() >= self.max_per_hour as usize {
            return Decision::Budget;
        }
        self.sent.push_back(now_ms);
        self.last_by_fingerprint
            .insert(fingerprint.to_string(), now_ms);
        Decision::Report
    }
}

/// Where reports go.
#[derive(Debug, Clone)]
pub struct ReportTarget {
    /// Lambda function name.
    pub function: String,
    /// The `report` part of each request (bucket, prefix, S3 endpoint, history table).
    pub config: ReportConfig,
}

/// Invokes the report hook.
#[derive(Debug, Clone)]
pub struct ReportClient {
    client: aws_sdk_lambda::Client,
    target: ReportTarget,
}

/// Reads an environment variable, empty counting as unset.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl ReportClient {
    /// A client with static credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
    /// (`AWS_SESSION_TOKEN` optional), region from `AWS_REGION` (default `us-east-1`) and an
    /// optional endpoint override; no instance-metadata lookups.
    pub fn from_env(target: ReportTarget, endpoint: Option<&str>) -> Result<Self, ReportError> {
        let (Some(key), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(ReportError::Config(
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are required for reports".into(),
            ));
        };
        let creds = Credentials::new(key, secret, env("AWS_SESSION_TOKEN"), None, "helios-env");
        let region = env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let mut conf = aws_sdk_lambda::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(creds);
        if let Some(url) = endpoint.filter(|u| !u.is_empty()) {
            conf = conf.endpoint_url(url);
        }
        Ok(Self {
            client: aws_sdk_lambda::Client::from_conf(conf.build()),
            target,
        })
    }

    /// The `report` settings put into every request.
    pub fn report_config(&self) -> &ReportConfig {
        &self.target.config
    }

    /// Invokes the hook synchronously and returns the report's URI.
    pub async fn invoke(&self, req: &ReportRequest) -> Result<String, ReportError> {
        let payload = serde_json::to_vec(req).map_err(|e| ReportError::Invoke(e.to_string()))?;
        let out = self
            .client
            .invoke()
            .function_name(&self.target.function)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| {
                ReportError::Invoke(aws_sdk_lambda::error::DisplayErrorContext(e).to_string())
            })?;
        let body = out
            .payload()
            .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())
            .unwrap_or_default();
        if let Some(kind) = out.function_error() {
            return Err(ReportError::Function {
                kind: kind.to_string(),
                body,
            });
        }
        report_uri(&body)
    }
}

/// The `reportUri` of a hook response.
pub fn report_uri(body: &str) -> Result<String, ReportError> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("reportUri")
                .and_then(|u| u.as_str())
                .map(str::to_string)
        })
        .ok_or_else(|| ReportError::Response(body.chars().take(300).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_floor_cooldown_and_budget() {
        let mut l = ReportLimiter::new(Severity::Warning, 1000, 2);
        assert_eq!(l.check("a", Severity::Info, 0), Decision::BelowSeverity);
        assert_eq!(l.check("a", Severity::Warning, 0), Decision::Report);
        assert_eq!(l.check("a", Severity::Critical, 999), Decision::Cooldown);
        assert_eq!(l.check("a", Severity::Critical, 1000), Decision::Report);
        assert_eq!(l.check("b", Severity::Critical, 1001), Decision::Budget);
        // The first report leaves the rolling hour.
        assert_eq!(l.check("b", Severity::Critical, HOUR_MS), Decision::Report);
        let mut unlimited = ReportLimiter::new(Severity::Info, 0, 0);
        for i in 0..100 {
            assert_eq!(unlimited.check("x", Severity::Info, i), Decision::Report);
        }
    }

    #[test]
    fn response_uri_is_extracted() {
        assert_eq!(
            report_uri(r#"{"reportUri":"s3://b/k.md","objects":[]}"#).unwrap(),
            "s3://b/k.md"
        );
        assert!(report_uri(r#"{"errorMessage":"x"}"#).is_err());
        assert!(report_uri("not json").is_err());
    }
}
