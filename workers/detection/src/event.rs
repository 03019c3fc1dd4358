//! The event type the workers share, with a timestamp that accepts RFC 3339 or epoch ms.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::DetectionError;

/// One observed request/operation of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Event time in milliseconds since the Unix epoch (JSON: `timestamp`, RFC 3339 or integer).
    #[serde(
        rename = "timestamp",
        alias = "timestamp_ms",
        deserialize_with = "de_timestamp"
    )]
    pub timestamp_ms: i64,
    /// Emitting service.
    pub service: String,
    /// Endpoint or route, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// HTTP-like status code, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Explicit error flag; wins over `status` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<bool>,
    /// Latency in milliseconds, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Free-form attributes (sorted for determinism).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    /// The error flag if present, else `status >= 500`, else false.
    pub fn is_error(&self) -> bool {
        match (self.error, self.status) {
            (Some(e), _) => e,
            (None, Some(s)) => s >= 500,
            (None, None) => false,
        }
    }
}

/// Parses an RFC 3339 timestamp into epoch milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Result<i64, DetectionError> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp_millis())
        .map_err(|_| DetectionError::InvalidTimestamp(s.to_string()))
}

fn de_timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(i64),
        Float(f64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Int(i) => Ok(i),
        Raw::Float(f) if f.is_finite() && f.fract() == 0.0 => Ok(f as i64),
        Raw::Float(f) => Err(serde::de::Error::custom(format!("invalid timestamp {f}"))),
        Raw::Text(s) => parse_rfc3339_ms(&s).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_forms_and_is_error() {
        let a: Event = serde_json::from_str(
            r#"{"timestamp":"1970-01-01T00:00:01.500Z","service":"s","status":503}"#,
        )
        .unwrap();
        assert_eq!(a.timestamp_ms, 1500);
        assert!(a.is_error());
        let b: Event =
            serde_json::from_str(r#"{"timestamp":1500,"service":"s","status":503,"error":false}"#)
                .unwrap();
        assert_eq!(b.timestamp_ms, 1500);
        assert!(!b.is_error());
        let c: Event =
            serde_json::from_str(r#"{"timestamp":"2024-01-01T01:00:00+01:00","service":"s"}"#)
                .unwrap();
        assert_eq!(c.timestamp_ms, 1_704_067_200_000);
        assert!(!c.is_error());
        assert!(
            serde_json::from_str::<Event>(r#"{"timestamp":"yesterday","service":"s"}"#).is_err()
        );
        let round: Event = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(round, a);
    }
}
