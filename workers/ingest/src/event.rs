//! The event schema: parsing and validating one JSON event into its canonical form.
//!
//! Accepted fields: `timestamp` (RFC 3339 string or epoch milliseconds), `service`, optional
//! `endpoint`, `status` (HTTP code), `error` (bool), `latency_ms`, optional `attributes`
//! (string → string) and optional `metrics` (metric name → finite number: gauges such as CPU
//! or queue depth). At least one of `status`, `error` or `metrics` is required; `latency_ms`
//! is required unless the event carries `metrics` (a pure gauge sample). Unknown top-level
//! fields are refused (400 naming the field): extra data belongs in `attributes`, and a typo
//! never silently drops a value.

use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Longest accepted `service` / `endpoint`.
pub const MAX_NAME_LEN: usize = 256;
/// Most attributes on one event.
pub const MAX_ATTRIBUTES: usize = 64;
/// Most metrics on one event.
pub const MAX_METRICS: usize = 64;
/// Longest accepted metric name.
pub const MAX_METRIC_NAME_LEN: usize = 100;

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
    /// Latency in milliseconds (absent only on a pure `metrics` sample).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Free-form string attributes.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Numeric samples (metric name → finite value), read by detectors as `metrics.<name>`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
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
    let metrics = parse_metrics(obj.remove("metrics"))?;
    if status.is_none() && error.is_none() && metrics.is_empty() {
        return Err(FieldError::new(
            "status",
            "required: give `status` (HTTP code), `error` (bool) or `metrics` (numeric samples)",
        ));
    }
    let latency_ms = match obj.remove("latency_ms") {
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() && v >= 0.0 => Some(v),
            _ => {
                return Err(FieldError::new(
                    "latency_ms",
                    "must be a finite number >= 0",
                ));
            }
        },
        None | Some(Value::Null) if !metrics.is_empty() => None,
        None | Some(Value::Null) => {
            return Err(FieldError::new(
                "latency_ms",
                "required (optional only on an event with `metrics`)",
            ));
        }
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
        metrics,
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
        Some(Value::String(s)) => check_name(field, &s).map(|()| Some(s)),
        Some(_) => Err(FieldError::new(field, "must be a string")),
    }
}

/// The rule every `service` / `endpoint` obeys: non-empty, at most [`MAX_NAME_LEN`] bytes.
pub fn check_name(field: &str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() {
        Err(FieldError::new(field, "must not be empty"))
    } else if value.len() > MAX_NAME_LEN {
        Err(FieldError::new(
            field,
            format!("longer than {MAX_NAME_LEN} bytes"),
        ))
    } else {
        Ok(())
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

/// Whether `name` matches `^[A-Za-z0-9_.\-]{1,100}$`.
fn is_metric_name(name: &str) -> bool {
    (1..=MAX_METRIC_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn parse_metrics(value: Option<Value>) -> Result<BTreeMap<String, f64>, FieldError> {
    const FIELD: &str = "metrics";
    let map = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(FieldError::new(
                FIELD,
                "must be an object of numbers (metric name → value)",
            ));
        }
    };
    if map.len() > MAX_METRICS {
        return Err(FieldError::new(
            FIELD,
            format!(
                "at most {MAX_METRICS} metrics per event (got {})",
                map.len()
            ),
        ));
    }
    map.into_iter()
        .map(|(name, v)| {
            if !is_metric_name(&name) {
                // The name may be huge or hostile: quote at most a prefix of it.
                let shown: String = name.chars().take(MAX_METRIC_NAME_LEN + 1).collect();
                return Err(FieldError::new(
                    FIELD,
                    format!(
                        "metric name {shown:?} must match ^[A-Za-z0-9_.\\-]{{1,{MAX_METRIC_NAME_LEN}}}$"
                    ),
                ));
            }
            match v.as_f64() {
                // `as_f64` is `None` for non-numbers; a number that overflowed is not finite.
                Some(x) if x.is_finite() => Ok((name, x)),
                _ => Err(FieldError::new(
                    format!("{FIELD}.{name}"),
                    "must be a finite number",
                )),
            }
        })
        .collect()
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

    fn err_of(v: Value) -> FieldError {
        validate(v).unwrap_err()
    }

    fn with_metrics(metrics: Value) -> Value {
        json!({"timestamp": 1, "service": "s", "metrics": metrics})
    }

    #[test]
    fn accepts_a_pure_metrics_sample() {
        let e = ok(
            json!({"timestamp": "2026-12-02T10:00:00Z", "service": "checkout",
            "metrics": {"cpu": 0.73, "queue_depth": 12}}),
        );
        assert_eq!(e.status, None);
        assert_eq!(e.error, None);
        assert_eq!(e.latency_ms, None);
        assert_eq!(
            e.metrics,
            BTreeMap::from([("cpu".to_string(), 0.73), ("queue_depth".to_string(), 12.0)])
        );
        let wire = serde_json::to_value(&e).unwrap();
        assert_eq!(wire["metrics"], json!({"cpu": 0.73, "queue_depth": 12.0}));
        let keys: Vec<&str> = wire
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["metrics", "service", "timestamp"], "{wire}");
    }

    #[test]
    fn metrics_alongside_a_request_and_edge_values() {
        let long = "a".repeat(MAX_METRIC_NAME_LEN);
        let e = ok(
            json!({"timestamp": 1, "service": "s", "status": 200, "latency_ms": 4,
            "metrics": {"mem.rss-bytes_max": 1.5e12, "temp": -40, "zero": 0,
                long.clone(): u64::MAX, "Z9": 1e-300}}),
        );
        assert_eq!(e.latency_ms, Some(4.0));
        assert_eq!(e.status, Some(200));
        assert_eq!(e.metrics["mem.rss-bytes_max"], 1.5e12);
        assert_eq!(e.metrics["temp"], -40.0);
        assert_eq!(e.metrics[&long], u64::MAX as f64);
        assert_eq!(e.metrics.len(), 5);
        // Latency stays optional with metrics but is still validated when given.
        let mut v = with_metrics(json!({"cpu": 1}));
        v["latency_ms"] = json!(-1);
        assert_eq!(field_of(v), "latency_ms");
        // A request event without metrics still needs its latency.
        assert_eq!(
            field_of(json!({"timestamp": 1, "service": "s", "status": 200})),
            "latency_ms"
        );
        // The full 64 metrics are fine; every value kept.
        let many: Map<String, Value> = (0..MAX_METRICS)
            .map(|i| (format!("m{i}"), json!(i)))
            .collect();
        assert_eq!(
            ok(with_metrics(Value::Object(many))).metrics.len(),
            MAX_METRICS
        );
        // Absent-like metrics do not stand in for status/error.
        assert_eq!(field_of(with_metrics(json!(null))), "status");
        assert_eq!(field_of(with_metrics(json!({}))), "status");
        // Other rules still hold on a metrics event.
        let mut v = with_metrics(json!({"cpu": 1}));
        v["host"] = json!("x");
        assert_eq!(field_of(v), "host");
        assert_eq!(
            field_of(json!({"timestamp": 1, "metrics": {"cpu": 1}})),
            "service"
        );
    }

    #[test]
    fn bad_metric_values_name_the_metric() {
        for bad in [
            json!("0.5"),
            json!(null),
            json!(true),
            json!([1]),
            json!({"v": 1}),
        ] {
            let e = err_of(with_metrics(json!({"ok": 1, "cpu": bad})));
            assert_eq!(
                (e.field.as_str(), e.message.as_str()),
                ("metrics.cpu", "must be a finite number"),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_metrics_object_names_metrics() {
        for bad in [json!([1, 2]), json!("cpu=1"), json!(3), json!(true)] {
            let e = err_of(with_metrics(bad.clone()));
            assert_eq!(e.field, "metrics", "{bad}");
            assert!(e.message.contains("must be an object of numbers"), "{e}");
        }
        let too_many: Map<String, Value> = (0..=MAX_METRICS)
            .map(|i| (format!("m{i}"), json!(i)))
            .collect();
        let e = err_of(with_metrics(Value::Object(too_many)));
        assert_eq!(e.field, "metrics");
        assert!(e.message.contains("at most 64 metrics"), "{e}");
        let long = "a".repeat(MAX_METRIC_NAME_LEN + 1);
        for name in [
            "",
            "cpu load",
            "cpu/total",
            "ünits",
            "a\nb",
            "cpu*",
            long.as_str(),
        ] {
            let mut m = Map::new();
            m.insert(name.to_string(), json!(1));
            let e = err_of(with_metrics(Value::Object(m)));
            assert_eq!(e.field, "metrics", "{name:?}");
            assert!(
                e.message.starts_with("metric name ")
                    && e.message.ends_with(r"must match ^[A-Za-z0-9_.\-]{1,100}$"),
                "{e}"
            );
        }
        // A huge name is quoted truncated, not echoed whole.
        let mut m = Map::new();
        m.insert("x ".repeat(10_000), json!(1));
        assert!(err_of(with_metrics(Value::Object(m))).message.len() < 300);
    }
}
