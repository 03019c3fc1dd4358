//! OTLP decode + map throughput on one core (prints figures, asserts nothing about speed): an
//! export request of typical HTTP server spans, decoded from protobuf (plain and gzip'd) and from
//! OTLP/JSON, then mapped to events — the CPU `POST /v1/traces` spends before producing.
//!
//! Run: `cargo bench -p helios-ingest --bench otlp_map` (env: BENCH_SPANS per request,
//! BENCH_SECONDS per encoding).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use helios_ingest::body;
use helios_ingest::otlp::{decode, map};
mod support;

use prost::Message;
use std::io::Write;
use std::time::{Duration, Instant};
use support::{request, var};

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
