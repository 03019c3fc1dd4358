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

/// A window feature computed by the detectors (a closed set; unknown names are refused).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// Number of events in the window.
    EventCount,
    /// Fraction of events that are errors (status >= 500 or `error: true`).
    ErrorRate,
    /// Mean latency in milliseconds.
    AvgLatency,
    /// 95th percentile latency in milliseconds.
    P95Latency,
    /// 99th percentile latency in milliseconds.
    P99Latency,
}

impl Feature {
    /// Every feature, in declaration order.
    pub const ALL: [Feature; 5] = [
        Feature::EventCount,
        Feature::ErrorRate,
        Feature::AvgLatency,
        Feature::P95Latency,
        Feature::P99Latency,
    ];

    /// The wire name (`event_count`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::EventCount => "event_count",
            Feature::ErrorRate => "error_rate",
            Feature::AvgLatency => "avg_latency",
            Feature::P95Latency => "p95_latency",
            Feature::P99Latency => "p99_latency",
        }
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
    fn features_round_trip_by_wire_name() {
        for f in Feature::ALL {
            let json = serde_json::to_string(&f).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", f.as_str()));
            let back: Feature = serde_json::from_str(&json).unwrap_or(Feature::EventCount);
            assert_eq!(back, f);
        }
        assert!(serde_json::from_str::<Feature>("\"p50_latency\"").is_err());
    }

    #[test]
    fn severities_are_ordered() {
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Critical);
    }
}
