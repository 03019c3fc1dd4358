//! What the ingest benchmarks share: settings from the environment and the OTLP export request
//! of typical HTTP server spans they send.
#![allow(dead_code)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind};

/// `name` from the environment, else `default`.
pub fn var(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An attribute.
pub fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// A string value.
pub fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

/// An export request of `spans` HTTP server spans of one service.
pub fn request(spans: u64) -> ExportTraceServiceRequest {
    let t0: u64 = 1_795_514_400_000_000_000;
    let spans = (0..spans)
        .map(|i| Span {
            trace_id: (0..16).map(|b| (i as u8).wrapping_add(b)).collect(),
            span_id: (0..8).map(|b| (i as u8).wrapping_mul(b)).collect(),
            name: "GET /api/v1/items/{id}".into(),
            kind: SpanKind::Server as i32,
            start_time_unix_nano: t0 + i * 1_000_000,
            end_time_unix_nano: t0 + i * 1_000_000 + 12_345_678,
            attributes: vec![
                kv("http.request.method", s("GET")),
                kv("http.route", s("/api/v1/items/{id}")),
                kv("url.path", s(&format!("/api/v1/items/{i}"))),
                kv("url.scheme", s("https")),
                kv(
                    "http.response.status_code",
                    Value::IntValue(if i % 50 == 0 { 503 } else { 200 }),
                ),
                kv("server.address", s("items.shop.svc")),
                kv("network.protocol.version", s("1.1")),
                kv("user_agent.original", s("Mozilla/5.0 (X11; Linux x86_64)")),
            ],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s("items")),
                    kv("service.version", s("1.4.2")),
                    kv("deployment.environment.name", s("prod")),
                    kv("host.name", s("items-7d9f-abcde")),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
