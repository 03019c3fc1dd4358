//! The pure mapping from OTLP spans to Helios events (no I/O).
//!
//! | event field | from |
//! |---|---|
//! | `service` | resource `service.name` (required) |
//! | `endpoint` | span `http.route`, else `url.path`, else `http.target` without its query |
//! | `status` | span `http.response.status_code`, else `http.status_code` (100-599) |
//! | `error` | `true` when the span status is ERROR; `false` when it is not and no status code is known; absent otherwise (the status code decides) |
//! | `latency_ms` | `endTimeUnixNano − startTimeUnixNano`, in milliseconds |
//! | `timestamp` | `startTimeUnixNano`, in milliseconds |
//! | `attributes` | the configured keys, span value first, then resource; scalars as strings |
//!
//! Which spans: kind SERVER always; kind INTERNAL or UNSPECIFIED when they carry an HTTP
//! attribute (`http.request.method`, `http.method`, `http.route`, `url.path`, `http.target`,
//! `http.response.status_code`, `http.status_code`); CLIENT, PRODUCER and CONSUMER never (a
//! request between two instrumented services would otherwise count twice, once under the caller).

use crate::event::{self, Event, FieldError, MAX_ATTRIBUTES};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Span attributes that make a non-server span an HTTP span.
pub const HTTP_KEYS: [&str; 7] = [
    "http.request.method",
    "http.method",
    "http.route",
    "url.path",
    "http.target",
    "http.response.status_code",
    "http.status_code",
];

/// Most rejected spans described in one `partialSuccess.errorMessage`.
pub const MAX_DESCRIBED: usize = 3;

/// Which attributes an event copies from its span and resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpanMapping {
    keys: Vec<String>,
}

/// Why an attribute-key list is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// More keys than an event may carry attributes.
    #[error("at most {MAX_ATTRIBUTES} OTLP attribute keys (got {0})")]
    TooManyKeys(usize),
}

impl SpanMapping {
    /// From a list of keys (blank entries ignored, duplicates dropped; `none` alone means none).
    pub fn from_keys(keys: &[String]) -> Result<Self, MappingError> {
        let mut out: Vec<String> = Vec::new();
        for key in keys.iter().map(|k| k.trim()).filter(|k| !k.is_empty()) {
            if !out.iter().any(|k| k == key) {
                out.push(key.to_string());
            }
        }
        if out == ["none"] {
            out.clear();
        }
        if out.len() > MAX_ATTRIBUTES {
            return Err(MappingError::TooManyKeys(out.len()));
        }
        Ok(Self { keys: out })
    }

    /// The attribute keys copied, in order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }
}

/// Why a span that should become an event cannot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    /// The resource has no (string) `service.name`.
    #[error("resource attribute service.name is missing or not a string")]
    MissingService,
    /// The service or endpoint breaks the event rules (empty, too long).
    #[error("{source_key}: {message}", message = .error.message)]
    BadName {
        /// The OTLP attribute the value came from.
        source_key: &'static str,
        /// The event rule it breaks.
        error: FieldError,
    },
    /// The status code attribute is not an HTTP status code.
    #[error("{key} {value} is not an HTTP status code (100-599)")]
    BadStatus {
        /// The attribute.
        key: &'static str,
        /// Its value, as given.
        value: String,
    },
    /// `startTimeUnixNano` is 0.
    #[error("startTimeUnixNano is unset (0)")]
    MissingStart,
    /// The span ends before it starts.
    #[error("endTimeUnixNano {end} is before startTimeUnixNano {start}")]
    EndBeforeStart {
        /// Start, ns since the epoch.
        start: u64,
        /// End, ns since the epoch.
        end: u64,
    },
}

/// A rejected span: which one and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("span {name:?} (spanId {span_id}): {error}")]
pub struct RejectedSpan {
    /// The span's name.
    pub name: String,
    /// The span id in hex.
    pub span_id: String,
    /// Why.
    pub error: SpanError,
}

/// The outcome of mapping one export request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapped {
    /// Events, in span order.
    pub events: Vec<Event>,
    /// Spans that are not server/HTTP spans (valid, just not events).
    pub skipped: usize,
    /// Server/HTTP spans that could not become events.
    pub rejected: usize,
    /// The first [`MAX_DESCRIBED`] rejections.
    pub errors: Vec<RejectedSpan>,
}

impl Mapped {
    /// Every span of the request.
    pub fn spans(&self) -> usize {
        self.events.len() + self.skipped + self.rejected
    }

    /// The `partialSuccess.errorMessage` naming the first rejections, when any span was rejected.
    pub fn error_message(&self) -> Option<String> {
        if self.rejected == 0 {
            return None;
        }
        let mut msg = format!("{} of {} spans rejected: ", self.rejected, self.spans());
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                msg.push_str("; ");
            }
            let _ = write!(msg, "{e}");
        }
        if self.rejected > self.errors.len() {
            let _ = write!(msg, "; and {} more", self.rejected - self.errors.len());
        }
        Some(msg)
    }
}

/// Map every span of an export request.
pub fn request(req: &ExportTraceServiceRequest, mapping: &SpanMapping) -> Mapped {
    let mut out = Mapped::default();
    for rs in &req.resource_spans {
        let resource: &[KeyValue] = rs
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
            match span_to_event(resource, span, mapping) {
                Ok(Some(event)) => out.events.push(event),
                Ok(None) => out.skipped += 1,
                Err(error) => {
                    out.rejected += 1;
                    if out.errors.len() < MAX_DESCRIBED {
                        out.errors.push(RejectedSpan {
                            name: span.name.chars().take(100).collect(),
                            span_id: hex(&span.span_id),
                            error,
                        });
                    }
                }
            }
        }
    }
    out
}

/// Whether a span is a server or HTTP span (see the module docs).
pub fn becomes_event(span: &Span) -> bool {
    match SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified) {
        SpanKind::Server => true,
        SpanKind::Client | SpanKind::Producer | SpanKind::Consumer => false,
        SpanKind::Internal | SpanKind::Unspecified => span
            .attributes
            .iter()
            .any(|kv| HTTP_KEYS.contains(&kv.key.as_str())),
    }
}

/// One span as an event: `Ok(None)` when it is not a server/HTTP span.
pub fn span_to_event(
    resource: &[KeyValue],
    span: &Span,
    mapping: &SpanMapping,
) -> Result<Option<Event>, SpanError> {
    if !becomes_event(span) {
        return Ok(None);
    }
    let service = match find(resource, "service.name") {
        Some(Value::StringValue(s)) => s.clone(),
        _ => return Err(SpanError::MissingService),
    };
    event::check_name("service", &service).map_err(|error| SpanError::BadName {
        source_key: "service.name",
        error,
    })?;
    let endpoint = endpoint(&span.attributes)?;
    let status = status(&span.attributes)?;
    let span_error = span
        .status
        .as_ref()
        .is_some_and(|s| s.code == StatusCode::Error as i32);
    let error = match (span_error, status) {
        (true, _) => Some(true),
        (false, None) => Some(false),
        (false, Some(_)) => None,
    };
    let (start, end) = (span.start_time_unix_nano, span.end_time_unix_nano);
    if start == 0 {
        return Err(SpanError::MissingStart);
    }
    if end < start {
        return Err(SpanError::EndBeforeStart { start, end });
    }
    let mut attributes = BTreeMap::new();
    for key in mapping.keys() {
        let value = find(&span.attributes, key).or_else(|| find(resource, key));
        if let Some(text) = value.and_then(scalar_text) {
            attributes.insert(key.clone(), text);
        }
    }
    Ok(Some(Event {
        // u64 nanoseconds / 10^6 is below i64::MAX: the cast is lossless.
        timestamp: (start / 1_000_000) as i64,
        service,
        endpoint,
        status,
        error,
        latency_ms: Some((end - start) as f64 / 1e6),
        attributes,
        metrics: BTreeMap::new(),
    }))
}

/// `http.route`, else `url.path`, else `http.target` without its query or fragment.
fn endpoint(attrs: &[KeyValue]) -> Result<Option<String>, SpanError> {
    for key in ["http.route", "url.path", "http.target"] {
        let Some(Value::StringValue(raw)) = find(attrs, key) else {
            continue;
        };
        let path = if key == "http.target" {
            raw.split(['?', '#']).next().unwrap_or_default()
        } else {
            raw.as_str()
        };
        if path.is_empty() {
            continue;
        }
        event::check_name("endpoint", path).map_err(|error| SpanError::BadName {
            source_key: key,
            error,
        })?;
        return Ok(Some(path.to_string()));
    }
    Ok(None)
}

/// `http.response.status_code`, else `http.status_code`: an integer (or integer string) 100-599.
fn status(attrs: &[KeyValue]) -> Result<Option<u16>, SpanError> {
    for key in ["http.response.status_code", "http.status_code"] {
        let Some(value) = find(attrs, key) else {
            continue;
        };
        let code = match value {
            Value::IntValue(i) => u16::try_from(*i).ok(),
            Value::StringValue(s) => s.trim().parse::<u16>().ok(),
            _ => None,
        };
        return match code {
            Some(c @ 100..=599) => Ok(Some(c)),
            _ => Err(SpanError::BadStatus {
                key,
                value: scalar_text(value).unwrap_or_else(|| "(not a scalar)".into()),
            }),
        };
    }
    Ok(None)
}

/// The value of `key` among `attrs`, if set.
fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

/// A scalar attribute as text (string, bool, integer, finite double); `None` for the rest.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::StringValue(s) => Some(s.clone()),
        Value::BoolValue(b) => Some(b.to_string()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::DoubleValue(d) if d.is_finite() => Some(d.to_string()),
        _ => None,
    }
}

/// Lower-case hex of an id.
fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};

    const T0: u64 = 1_795_514_400_000_000_000;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn s(v: &str) -> Value {
        Value::StringValue(v.into())
    }

    fn resource() -> Vec<KeyValue> {
        vec![
            kv("service.name", s("checkout")),
            kv("deployment.environment.name", s("prod")),
            kv("host.name", s("node-1")),
        ]
    }

    fn span(kind: SpanKind, attrs: Vec<KeyValue>) -> Span {
        Span {
            name: "GET /pay/{id}".into(),
            span_id: vec![0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74],
            kind: kind as i32,
            start_time_unix_nano: T0 + 250_000_000,
            end_time_unix_nano: T0 + 262_500_000,
            attributes: attrs,
            ..Default::default()
        }
    }

    fn mapping(keys: &[&str]) -> SpanMapping {
        SpanMapping::from_keys(&keys.iter().map(|k| k.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn map(span: &Span) -> Result<Option<Event>, SpanError> {
        span_to_event(
            &resource(),
            span,
            &mapping(&["deployment.environment.name", "tenant"]),
        )
    }

    #[test]
    fn server_span_maps_every_field() {
        let sp = span(
            SpanKind::Server,
            vec![
                kv("http.route", s("/pay/{id}")),
                kv("url.path", s("/pay/42")),
                kv("http.response.status_code", Value::IntValue(201)),
                kv("tenant", Value::IntValue(7)),
                kv("ignored", s("x")),
            ],
        );
        let e = map(&sp).unwrap().unwrap();
        assert_eq!(e.service, "checkout");
        assert_eq!(e.endpoint.as_deref(), Some("/pay/{id}"));
        assert_eq!(e.status, Some(201));
        assert_eq!(e.error, None, "the status code decides");
        assert_eq!(e.latency_ms, Some(12.5));
        assert_eq!(e.timestamp, 1_795_514_400_250);
        assert_eq!(
            e.attributes,
            BTreeMap::from([
                (
                    "deployment.environment.name".to_string(),
                    "prod".to_string()
                ),
                ("tenant".to_string(), "7".to_string()),
            ])
        );
        // The result obeys the JSON route's schema.
        let wire = serde_json::to_value(&e).unwrap();
        assert_eq!(event::validate(wire).unwrap(), e);
    }

    #[test]
    fn span_attribute_wins_over_resource_attribute() {
        let sp = span(
            SpanKind::Server,
            vec![kv("deployment.environment.name", s("canary"))],
        );
        let e = map(&sp).unwrap().unwrap();
        assert_eq!(e.attributes["deployment.environment.name"], "canary");
    }

    #[test]
    fn endpoint_fallbacks() {
        let endpoint = |attrs| {
            map(&span(SpanKind::Server, attrs))
                .unwrap()
                .unwrap()
                .endpoint
        };
        assert_eq!(
            endpoint(vec![
                kv("url.path", s("/pay/42")),
                kv("http.target", s("/t"))
            ]),
            Some("/pay/42".into())
        );
        assert_eq!(
            endpoint(vec![kv("http.target", s("/old/path?q=1#frag"))]),
            Some("/old/path".into())
        );
        assert_eq!(
            endpoint(vec![kv("http.route", s("")), kv("url.path", s("/p"))]),
            Some("/p".into()),
            "an empty route falls back"
        );
        assert_eq!(endpoint(vec![]), None);
        let err = map(&span(
            SpanKind::Server,
            vec![kv("http.route", s(&"r".repeat(300)))],
        ))
        .unwrap_err();
        assert_eq!(err.to_string(), "http.route: longer than 256 bytes");
    }

    #[test]
    fn status_fallbacks_and_error_flag() {
        let ev = |attrs, code: Option<StatusCode>| {
            let mut sp = span(SpanKind::Server, attrs);
            sp.status = code.map(|c| Status {
                code: c as i32,
                message: String::new(),
            });
            map(&sp).unwrap().unwrap()
        };
        let e = ev(vec![kv("http.status_code", Value::IntValue(404))], None);
        assert_eq!((e.status, e.error), (Some(404), None));
        let e = ev(
            vec![
                kv("http.response.status_code", s("503")),
                kv("http.status_code", Value::IntValue(200)),
            ],
            Some(StatusCode::Error),
        );
        assert_eq!((e.status, e.error), (Some(503), Some(true)));
        let e = ev(vec![], Some(StatusCode::Error));
        assert_eq!((e.status, e.error), (None, Some(true)));
        let e = ev(vec![], Some(StatusCode::Ok));
        assert_eq!((e.status, e.error), (None, Some(false)));
        let e = ev(vec![], None);
        assert_eq!((e.status, e.error), (None, Some(false)));
    }

    #[test]
    fn which_spans_become_events() {
        let http = vec![kv("http.request.method", s("GET"))];
        assert!(becomes_event(&span(SpanKind::Server, vec![])));
        assert!(becomes_event(&span(SpanKind::Internal, http.clone())));
        assert!(becomes_event(&span(
            SpanKind::Unspecified,
            vec![kv("http.target", s("/x"))]
        )));
        assert!(!becomes_event(&span(
            SpanKind::Internal,
            vec![kv("db.system", s("pg"))]
        )));
        assert!(!becomes_event(&span(SpanKind::Client, http.clone())));
        assert!(!becomes_event(&span(SpanKind::Producer, http.clone())));
        assert!(!becomes_event(&span(SpanKind::Consumer, http)));
        let mut unknown = span(SpanKind::Server, vec![]);
        unknown.kind = 42;
        assert!(!becomes_event(&unknown));
        assert_eq!(map(&span(SpanKind::Client, vec![])), Ok(None));
    }

    #[test]
    fn invalid_spans_name_the_problem() {
        let bad_status = |v| {
            map(&span(
                SpanKind::Server,
                vec![kv("http.response.status_code", v)],
            ))
            .unwrap_err()
        };
        assert_eq!(
            bad_status(Value::IntValue(999)).to_string(),
            "http.response.status_code 999 is not an HTTP status code (100-599)"
        );
        assert_eq!(
            bad_status(s("ok")).to_string(),
            "http.response.status_code ok is not an HTTP status code (100-599)"
        );
        assert!(matches!(
            bad_status(Value::IntValue(-1)),
            SpanError::BadStatus { .. }
        ));
        let mut sp = span(SpanKind::Server, vec![]);
        sp.end_time_unix_nano = sp.start_time_unix_nano - 1;
        assert!(matches!(map(&sp), Err(SpanError::EndBeforeStart { .. })));
        sp.start_time_unix_nano = 0;
        assert_eq!(map(&sp), Err(SpanError::MissingStart));
        let sp = span(SpanKind::Server, vec![]);
        for res in [vec![], vec![kv("service.name", Value::IntValue(1))]] {
            assert_eq!(
                span_to_event(&res, &sp, &SpanMapping::default()),
                Err(SpanError::MissingService)
            );
        }
        let err =
            span_to_event(&[kv("service.name", s(""))], &sp, &SpanMapping::default()).unwrap_err();
        assert_eq!(err.to_string(), "service.name: must not be empty");
    }

    #[test]
    fn counts_events_skipped_and_rejected_and_describes_the_first() {
        let ok = span(SpanKind::Server, vec![]);
        let skip = span(SpanKind::Client, vec![]);
        let bad = |code| {
            span(
                SpanKind::Server,
                vec![kv("http.status_code", Value::IntValue(code))],
            )
        };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(Resource {
                        attributes: resource(),
                        ..Default::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        spans: vec![ok.clone(), skip, bad(1), ok.clone(), bad(2), bad(3), bad(4)],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                // No resource at all: its server span is rejected, not the others.
                ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans: vec![ok],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        };
        let m = request(&req, &SpanMapping::default());
        assert_eq!(
            (m.events.len(), m.skipped, m.rejected, m.spans()),
            (2, 1, 5, 8)
        );
        assert_eq!(m.errors.len(), MAX_DESCRIBED);
        let msg = m.error_message().unwrap();
        assert!(
            msg.starts_with(
                "5 of 8 spans rejected: span \"GET /pay/{id}\" (spanId eee19b7ec3c1b174): \
                 http.status_code 1 is not an HTTP status code (100-599); "
            ),
            "{msg}"
        );
        assert!(msg.ends_with("; and 2 more"), "{msg}");
        let clean = Mapped {
            events: m.events.clone(),
            ..Default::default()
        };
        assert_eq!(clean.error_message(), None);
    }

    #[test]
    fn attribute_key_list() {
        let keys = |v: &[&str]| {
            SpanMapping::from_keys(&v.iter().map(|k| k.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(keys(&[" a", "", "b", "a"]).unwrap().keys(), ["a", "b"]);
        assert!(keys(&["none"]).unwrap().keys().is_empty());
        let many: Vec<String> = (0..=MAX_ATTRIBUTES).map(|i| format!("k{i}")).collect();
        assert_eq!(
            SpanMapping::from_keys(&many),
            Err(MappingError::TooManyKeys(MAX_ATTRIBUTES + 1))
        );
        // Non-scalar values are not copied.
        let sp = span(
            SpanKind::Server,
            vec![
                kv("list", Value::ArrayValue(Default::default())),
                kv("d", Value::DoubleValue(0.5)),
            ],
        );
        let e = span_to_event(
            &resource(),
            &sp,
            &mapping(&["list", "d", "host.name", "absent"]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            e.attributes,
            BTreeMap::from([
                ("d".to_string(), "0.5".to_string()),
                ("host.name".to_string(), "node-1".to_string()),
            ])
        );
    }
}
