//! OTLP decode + map throughput on one core (prints figures, asserts nothing about speed): an
//! export request of typical HTTP server spans, decoded from protobuf (plain and gzip'd) and from
//! OTLP/JSON, then mapped to events — the CPU `POST /v1/traces` spends before producing.
//!
//! Run: `cargo bench -p helios-ingest --bench otlp_map` (env: BENCH_SPANS per request,
//! BENCH_SECONDS per encoding).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use helios_ingest::body;
use helios_ingest::otlp::{decode, map};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind};
use prost::Message;
use std::io::Write;
use std::time::{Duration, Instant};

fn var(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

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

fn request(spans: u64) -> ExportTraceServiceRequest {
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

fn run(label: &str, body: &[u8], gzip: bool, encoding: decode::Encoding, spans: u64, secs: u64) {
    let mapping = map::SpanMapping::from_keys(&[
        "service.version".to_string(),
        "deployment.environment.name".to_string(),
        "http.request.method".to_string(),
    ])
    .unwrap();
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        let plain;
        let bytes = if gzip {
            plain = body::decode(body, Some("gzip"), 64 << 20).unwrap();
            plain.as_slice()
        } else {
            body
        };
        let req = decode::traces(bytes, encoding).unwrap();
        let mapped = map::request(&req, &mapping);
        assert_eq!(mapped.events.len() as u64, spans);
        done += spans;
    }
    let rate = done as f64 / started.elapsed().as_secs_f64();
    println!(
        "{label:<22} {:>9} bytes/request  {rate:>12.0} spans/s  ({:.2} µs/span)",
        body.len(),
        1e6 / rate
    );
}

fn main() {
    let spans = var("BENCH_SPANS", 1_000);
    let secs = var("BENCH_SECONDS", 3);
    let req = request(spans);
    let proto = req.encode_to_vec();
    let json = serde_json::to_vec(&req).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&proto).unwrap();
    let proto_gz = gz.finish().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&json).unwrap();
    let json_gz = gz.finish().unwrap();
    println!("OTLP decode + map, one core, {spans} server spans per request:");
    run(
        "protobuf",
        &proto,
        false,
        decode::Encoding::Protobuf,
        spans,
        secs,
    );
    run(
        "protobuf + gzip",
        &proto_gz,
        true,
        decode::Encoding::Protobuf,
        spans,
        secs,
    );
    run(
        "OTLP/JSON",
        &json,
        false,
        decode::Encoding::Json,
        spans,
        secs,
    );
    run(
        "OTLP/JSON + gzip",
        &json_gz,
        true,
        decode::Encoding::Json,
        spans,
        secs,
    );
}
