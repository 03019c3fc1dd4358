//! The event schema: parsing and validating one JSON event into its canonical form.
//!
//! Accepted fields: `timestamp` (RFC 3339 string or epoch milliseconds), `service`, optional
//! `endpoint`, `status` (HTTP code) and/or `error` (bool) — at least one of the two —,
//! `latency_ms`, optional `attributes` (string → string). Unknown top-level fields are refused
//! (400 naming the field): extra data belongs in `attributes`, and a typo never silently
//! drops a value.

use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Longest accepted `service` / `endpoint`.
pub const MAX_NAME_LEN: usize = 256;
/// Most attributes on one event.
pub const MAX_ATTRIBUTES: usize = 64;

/// A validated event, in the canonical form written to Kafka.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Event time, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The service that emitted the event (also the Kafka key).
    pub service: String,
    /// Endpoint or operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// HTTP status code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Explicit error flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<bool>,
    /// Latency in milliseconds.
    pub latency_ms: f64,
    /// Free-form string attributes.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

/// Why an event was refused: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The offending field (`timestamp`, `attributes.region`, or `(event)` for the whole value).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Validate one JSON value as an event.
pub fn validate(value: Value) -> Result<Event, FieldError> {
    let Value::Object(mut obj) = value else {
        return Err(FieldError::new("(event)", "an event must be a JSON object"));
    };
    let timestamp = parse_timestamp(obj.remove("timestamp"))?;
    let service = required_name(&mut obj, "service")?;
    let endpoint = optional_name(&mut obj, "endpoint")?;
    let status = match obj.remove("status") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(code @ 100..=599) => Some(code as u16),
            _ => {
                return Err(FieldError::new(
                    "status",
                    "must be an HTTP status code (100-599)",
                ));
            }
        },
        Some(_) => {
            return Err(FieldError::new(
                "status",
                "must be an integer HTTP status code",
            ));
        }
    };
    let error = match obj.remove("error") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(b),
        Some(_) => return Err(FieldError::new("error", "must be true or false")),
    };
    if status.is_none() && error.is_none() {
        return Err(FieldError::new(
            "status",
            "required: give `status` (HTTP code) or `error` (bool)",
        ));
    }
    let latency_ms = match obj.remove("latency_ms") {
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() && v >= 0.0 => v,
            _ => {
                return Err(FieldError::new(
                    "latency_ms",
                    "must be a finite number >= 0",
                ));
            }
        },
        None | Some(Value::Null) => return Err(FieldError::new("latency_ms", "required")),
        Some(_) => {
            return Err(FieldError::new(
                "latency_ms",
                "must be a number (milliseconds)",
            ));
        }
    };
    let attributes = parse_attributes(obj.remove("attributes"))?;
    if let Some(unknown) = obj.keys().next() {
        return Err(FieldError::new(
            unknown.clone(),
            "unknown field (put extra data in `attributes`)",
        ));
    }
    Ok(Event {
        timestamp,
        service,
        endpoint,
        status,
        error,
        latency_ms,
        attributes,
    })
}

fn parse_timestamp(value: Option<Value>) -> Result<i64, FieldError> {
    const FIELD: &str = "timestamp";
    match value {
        Some(Value::Number(n)) => n.as_i64().filter(|ms| *ms >= 0).ok_or_else(|| {
            FieldError::new(FIELD, "epoch milliseconds must be a non-negative integer")
        }),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(&s)
            .map(|t| t.timestamp_millis())
            .map_err(|_| {
                FieldError::new(
                    FIELD,
                    format!("{s:?} is not RFC 3339 (e.g. 2026-11-24T10:00:00Z)"),
                )
            }),
        None | Some(Value::Null) => Err(FieldError::new(FIELD, "required")),
        Some(_) => Err(FieldError::new(
            FIELD,
            "must be an RFC 3339 string or epoch milliseconds",
        )),
    }
}

fn required_name(obj: &mut Map<String, Value>, field: &'static str) -> Result<String, FieldError> {
    optional_name(obj, field)?.ok_or_else(|| FieldError::new(field, "required"))
}

fn optional_name(
    obj: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, FieldError> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Err(FieldError::new(field, "must not be empty")),
        Some(Value::String(s)) if s.len() > MAX_NAME_LEN => Err(FieldError::new(
            field,
            format!("longer than {MAX_NAME_LEN} bytes"),
        )),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(FieldError::new(field, "must be a string")),
    }
}

fn parse_attributes(value: Option<Value>) -> Result<BTreeMap<String, String>, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => {
            if map.len() > MAX_ATTRIBUTES {
                return Err(FieldError::new(
                    "attributes",
                    format!("more than {MAX_ATTRIBUTES} entries"),
                ));
            }
            map.into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    _ => Err(FieldError::new(
                        format!("attributes.{k}"),
                        "must be a string",
                    )),
                })
                .collect()
        }
        Some(_) => Err(FieldError::new(
            "attributes",
            "must be an object of strings",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(v: Value) -> Event {
        validate(v).unwrap()
    }

    fn field_of(v: Value) -> String {
        validate(v).unwrap_err().field
    }

    #[test]
    fn accepts_rfc3339_and_epoch_ms() {
        let a = ok(
            json!({"timestamp": "2026-11-24T10:00:00.250Z", "service": "checkout", "status": 200, "latency_ms": 12.5}),
        );
        assert_eq!(a.timestamp, 1_795_514_400_250);
        let b = ok(
            json!({"timestamp": 1_795_514_400_250_i64, "service": "checkout", "error": true, "latency_ms": 3}),
        );
        assert_eq!(b.timestamp, a.timestamp);
        assert_eq!(b.error, Some(true));
        let c = ok(
            json!({"timestamp": "2026-11-24T11:00:00.250+01:00", "service": "s", "status": 500, "latency_ms": 1}),
        );
        assert_eq!(c.timestamp, a.timestamp);
    }

    #[test]
    fn keeps_endpoint_and_attributes() {
        let e = ok(
            json!({"timestamp": 1, "service": "s", "endpoint": "/pay", "status": 201,
            "latency_ms": 1, "attributes": {"region": "eu-west-1"}}),
        );
        assert_eq!(e.endpoint.as_deref(), Some("/pay"));
        assert_eq!(
            e.attributes.get("region").map(String::as_str),
            Some("eu-west-1")
        );
        let wire = serde_json::to_value(&e).unwrap();
        assert_eq!(wire["attributes"]["region"], "eu-west-1");
        assert_eq!(wire["timestamp"], 1);
    }

    #[test]
    fn names_the_bad_field() {
        let base = || json!({"timestamp": 1, "service": "s", "status": 200, "latency_ms": 1});
        let with = |k: &str, v: Value| {
            let mut b = base();
            b[k] = v;
            b
        };
        assert_eq!(field_of(with("timestamp", json!("yesterday"))), "timestamp");
        assert_eq!(field_of(with("timestamp", json!(-5))), "timestamp");
        assert_eq!(field_of(with("service", json!(""))), "service");
        assert_eq!(field_of(with("service", json!(7))), "service");
        assert_eq!(field_of(with("status", json!(700))), "status");
        assert_eq!(field_of(with("latency_ms", json!(-1))), "latency_ms");
        assert_eq!(field_of(with("latency_ms", json!("fast"))), "latency_ms");
        assert_eq!(
            field_of(with("attributes", json!({"a": 1}))),
            "attributes.a"
        );
        assert_eq!(field_of(with("latency", json!(5))), "latency");
        assert_eq!(field_of(json!([1])), "(event)");
        assert_eq!(
            field_of(json!({"timestamp": 1, "service": "s", "latency_ms": 1})),
            "status"
        );
        assert_eq!(
            field_of(json!({"service": "s", "status": 200, "latency_ms": 1})),
            "timestamp"
        );
    }
}
