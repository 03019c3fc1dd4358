//! The event type the workers share, with a timestamp that accepts RFC 3339 or epoch ms.

use std::collections::BTreeMap;

use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
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
    /// Numeric samples the event carries (gauges such as `cpu`), read by `metrics.<name>`
    /// features.
    ///
    /// Read leniently, as the field was when ignored: `null`, a non-object, or a non-number
    /// value drops only that part, never the whole event (`helios ingest` refuses such input;
    /// other producers may not).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de_metrics"
    )]
    pub metrics: BTreeMap<String, f64>,
}

impl Event {
    /// Parses one JSON event. Not generic, so it is compiled (and optimised) here rather than
    /// in every caller: the backtest replays millions of lines through it.
    pub fn from_json(raw: &[u8]) -> serde_json::Result<Event> {
        serde_json::from_slice(raw)
    }

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

/// A metric value: `Some` for a finite number, `None` for anything else (consumed and dropped).
struct MetricValue(Option<f64>);

impl<'de> Deserialize<'de> for MetricValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Lenient::<MetricValue>(std::marker::PhantomData))
    }
}

/// The `metrics` map: finite numbers kept, everything else dropped.
struct Metrics(BTreeMap<String, f64>);

fn de_metrics<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
    d.deserialize_any(Lenient::<Metrics>(std::marker::PhantomData))
        .map(|m| m.0)
}

/// What a [`Lenient`] visitor yields: a value for numbers / maps, an empty default for every
/// other JSON shape.
trait LenientTarget: Sized {
    /// The value for an unusable input.
    fn empty() -> Self;
    /// The value for a number.
    fn number(_: f64) -> Self {
        Self::empty()
    }
    /// The value for a map (by default consumed and dropped).
    fn map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Self::empty())
    }
}

impl LenientTarget for MetricValue {
    fn empty() -> Self {
        MetricValue(None)
    }
    fn number(v: f64) -> Self {
        MetricValue(Some(v).filter(|v| v.is_finite()))
    }
}

impl LenientTarget for Metrics {
    fn empty() -> Self {
        Metrics(BTreeMap::new())
    }
    fn map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut out = BTreeMap::new();
        while let Some((name, MetricValue(v))) = map.next_entry::<String, MetricValue>()? {
            if let Some(v) = v {
                out.insert(name, v);
            }
        }
        Ok(Metrics(out))
    }
}

/// Accepts any self-describing value, mapping it through [`LenientTarget`].
struct Lenient<T>(std::marker::PhantomData<T>);

impl<'de, T: LenientTarget> Visitor<'de> for Lenient<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<T, E> {
        Ok(T::empty())
    }
    fn visit_i64<E>(self, v: i64) -> Result<T, E> {
        Ok(T::number(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<T, E> {
        Ok(T::number(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<T, E> {
        Ok(T::number(v))
    }
    fn visit_str<E>(self, _: &str) -> Result<T, E> {
        Ok(T::empty())
    }
    fn visit_unit<E>(self) -> Result<T, E> {
        Ok(T::empty())
    }
    fn visit_none<E>(self) -> Result<T, E> {
        Ok(T::empty())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(T::empty())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::map(map)
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

    #[test]
    fn metrics_parse_round_trip_and_stay_lenient() {
        let g: Event = serde_json::from_str(
            r#"{"timestamp":"2026-12-02T10:00:00Z","service":"checkout","metrics":{"cpu":0.73,"queue_depth":12,"delta":-3}}"#,
        )
        .unwrap();
        assert_eq!(
            g.metrics,
            BTreeMap::from([
                ("cpu".to_string(), 0.73),
                ("delta".to_string(), -3.0),
                ("queue_depth".to_string(), 12.0)
            ])
        );
        assert_eq!((g.status, g.error, g.latency_ms), (None, None, None));
        let wire = serde_json::to_value(&g).unwrap();
        assert_eq!(
            wire["metrics"],
            serde_json::json!({"cpu": 0.73, "delta": -3.0, "queue_depth": 12.0})
        );
        let round: Event = serde_json::from_value(wire).unwrap();
        assert_eq!(round, g);
        // No metrics: none written, none read (the wire form of request events is unchanged).
        let r: Event =
            serde_json::from_str(r#"{"timestamp":1,"service":"s","status":200,"latency_ms":2}"#)
                .unwrap();
        assert!(r.metrics.is_empty());
        assert!(!serde_json::to_string(&r).unwrap().contains("metrics"));
        // Foreign producers: bad parts are dropped, the event (and its other fields) kept.
        let odd: Event = serde_json::from_str(
            r#"{"timestamp":1,"service":"s","status":503,"metrics":{"ok":1,"s":"2","n":null,"b":true,"a":[1],"o":{"x":1}}}"#,
        )
        .unwrap();
        assert_eq!(odd.metrics, BTreeMap::from([("ok".to_string(), 1.0)]));
        assert!(odd.is_error());
        for m in ["null", "\"cpu\"", "[1,2]", "7", "false", "{}"] {
            let e: Event =
                serde_json::from_str(&format!(r#"{{"timestamp":1,"service":"s","metrics":{m}}}"#))
                    .unwrap_or_else(|err| panic!("{m}: {err}"));
            assert!(e.metrics.is_empty(), "{m}");
        }
        // Malformed JSON is still an error, not silently an empty map.
        assert!(
            serde_json::from_str::<Event>(r#"{"timestamp":1,"service":"s","metrics":{"cpu":}}"#)
                .is_err()
        );
    }
}
