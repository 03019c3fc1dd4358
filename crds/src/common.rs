//! Types shared by both kinds: durations, secret references, features, severities.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// The pattern every duration field obeys (Go/CEL duration syntax limited to ms, s, m, h).
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// A duration written as Kubernetes and CEL write them: `500ms`, `30s`, `5m`, `1h30m`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duration(pub String);

/// Why a duration string does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: expected e.g. 30s, 5m, 1h30m (units ms, s, m, h)")]
pub struct DurationError(pub String);

impl Duration {
    /// A duration from its text form (not validated; see [`Duration::parse`]).
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The duration as [`std::time::Duration`].
    pub fn parse(&self) -> Result<std::time::Duration, DurationError> {
        parse_duration(&self.0)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
        })
    }
}

/// Parse `1h30m`, `250ms`, `1.5s` into a [`std::time::Duration`].
pub fn parse_duration(text: &str) -> Result<std::time::Duration, DurationError> {
    let err = || DurationError(text.to_string());
    if text.is_empty() {
        return Err(err());
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if num_end == 0 {
            return Err(err());
        }
        let value: f64 = rest[..num_end].parse().map_err(|_| err())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

/// A reference to one key of a Secret in the object's namespace. Secret values are never
/// written inline in a Helios object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret (same namespace as the object).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// The names a feature may have: one of the request features, or `metrics.<name>` for a
/// numeric metric the events carry (`metrics: {"cpu": 0.7}`).
pub const FEATURE_PATTERN: &str = r"^(event_count|error_rate|avg_latency|p95_latency|p99_latency|metrics\.[A-Za-z0-9_.\-]{1,100})$";

/// A window feature: a request feature computed from the window's events (`event_count`,
/// `error_rate`, `avg_latency`, `p95_latency`, `p99_latency`) or `metrics.<name>`, the mean of
/// that numeric metric over the window's events (gauges a team already has).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Feature(pub String);

impl Feature {
    /// The request features computed from events, in canonical order.
    pub const REQUEST: [&'static str; 5] = [
        "event_count",
        "error_rate",
        "avg_latency",
        "p95_latency",
        "p99_latency",
    ];

    /// A feature by wire name (not validated; the schema and the detector validate).
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The wire name (`event_count`, `metrics.cpu`, …).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name is a request feature or a well-formed `metrics.<name>`.
    pub fn is_valid(&self) -> bool {
        Self::REQUEST.contains(&self.0.as_str())
            || self.0.strip_prefix("metrics.").is_some_and(|m| {
                (1..=100).contains(&m.len())
                    && m.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            })
    }
}

impl JsonSchema for Feature {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Feature".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": FEATURE_PATTERN,
        })
    }
}

/// How serious an anomaly is; ordered `Info < Warning < Critical`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
)]
pub enum Severity {
    /// Worth recording, not worth a page.
    Info,
    /// Worth a look soon.
    #[default]
    Warning,
    /// Page someone.
    Critical,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as StdDuration;

    #[test]
    fn parses_go_style_durations() {
        assert_eq!(parse_duration("5m"), Ok(StdDuration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(StdDuration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(StdDuration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(StdDuration::from_millis(1500)));
    }

    #[test]
    fn rejects_bad_durations() {
        for bad in ["", "5", "m", "5d", "5 m", "-5m", "5mm"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn duration_pattern_matches_parser() {
        // The schema pattern and the parser must agree on a sample of inputs.
        for (text, ok) in [("5m", true), ("1h30m", true), ("5d", false), ("10", false)] {
            assert_eq!(parse_duration(text).is_ok(), ok, "{text}");
        }
        assert!(DURATION_PATTERN.contains("ms|s|m|h"));
    }

    #[test]
    fn features_are_request_features_or_metrics() {
        for f in Feature::REQUEST {
            let json = serde_json::to_string(&Feature::new(f)).unwrap_or_default();
            assert_eq!(json, format!("\"{f}\""));
            assert!(Feature::new(f).is_valid());
        }
        for ok in [
            "metrics.cpu",
            "metrics.queue_depth",
            "metrics.kpi.orders-eu",
        ] {
            assert!(Feature::new(ok).is_valid(), "{ok}");
        }
        for bad in [
            "p50_latency",
            "metrics.",
            "metrics.a b",
            "cpu",
            "metrics.x@y",
        ] {
            assert!(!Feature::new(bad).is_valid(), "{bad}");
        }
        assert!(FEATURE_PATTERN.contains("metrics"));
    }

    #[test]
    fn severities_are_ordered() {
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Critical);
    }
}
