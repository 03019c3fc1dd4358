//! `POST /v1/traces` against the real Kafka broker: spans sent by the real OpenTelemetry Python
//! SDK (protobuf and JSON exporters, gzip) arrive in the topic as mapped events; partial success
//! keeps the valid spans and counts the rest; undecodable bodies get 400, other types 415.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure with a message

mod common;

use common::*;
use helios_ingest::otlp::respond::RpcStatus;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Any};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind};
use prost::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

const TOKEN: &str = "otlp-secret";
/// 2026-11-24T10:00:00Z in nanoseconds.
const T0_NS: u64 = 1_795_514_400_000_000_000;
const T0_MS: i64 = 1_795_514_400_000;

async fn server(env: &helios_e2e::StackEnv, topic: &str) -> Server {
    let mut a = args(env.get("KAFKA_BOOTSTRAP").unwrap(), topic);
    a.auth_token = Some(TOKEN.into());
    a.otlp_attributes = vec![
        "tenant".into(),
        "deployment.environment.name".into(),
        "http.request.method".into(),
    ];
    start(a).await
}

fn traces_url(server: &Server) -> String {
    format!("http://{}/v1/traces", server.addr)
}

/// Run the SDK script; panics (never skips) when the interpreter or the SDK is missing.
async fn send_with_python_sdk(
    env: &helios_e2e::StackEnv,
    url: &str,
    encoding: &str,
    service: &str,
) -> Value {
    let python = env.get("HELIOS_OTEL_PYTHON").unwrap_or_else(|e| {
        panic!("{e}: run `e2e/stack up` (it installs the OpenTelemetry Python SDK)")
    });
    assert!(
        Path::new(python).exists(),
        "HELIOS_OTEL_PYTHON={python} does not exist: run `e2e/stack up`"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otlp/send_spans.py");
    let out = tokio::process::Command::new(python)
        .arg(&script)
        .args(["--endpoint", url, "--encoding", encoding, "--token", TOKEN])
        .args(["--service", service, "--t0", &T0_NS.to_string()])
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {python} {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SDK's {encoding} export failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test]
async fn python_sdk_spans_reach_kafka_as_events_in_protobuf_and_json() {
    let env = stack();
    let topic = create_topic(&env, 2).await;
    let server = server(&env, &topic).await;
    let id = helios_e2e::kubectl::unique_suffix();
    for (encoding, content_type) in [
        ("proto", "application/x-protobuf"),
        ("json", "application/json"),
    ] {
        let service = format!("otel-{encoding}-{id}");
        let report = send_with_python_sdk(&env, &traces_url(&server), encoding, &service).await;
        assert_eq!(
            report["exports"],
            json!([{"spans": 6, "ok": true}]),
            "{report}"
        );
        let exchanges = report["exchanges"].as_array().unwrap();
        assert_eq!(exchanges.len(), 1, "one request, no retry: {report}");
        let x = &exchanges[0];
        assert_eq!(x["status"], 200, "{report}");
        assert_eq!(x["content_type"], content_type, "{report}");
        assert_eq!(x["content_encoding"], "gzip", "{report}");
        assert_eq!(x["gzip_magic"], "1f8b", "the body really is gzip: {report}");
        assert_eq!(x["response_content_type"], content_type, "{report}");
    }

    // 6 spans per encoding: 4 server/HTTP spans become events, the client and db spans do not.
    let messages = read_all(&env, &topic, 9, Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 8, "{messages:?}");
    for encoding in ["proto", "json"] {
        let service = format!("otel-{encoding}-{id}");
        let mut events: Vec<&Value> = messages
            .iter()
            .filter(|(key, _)| key.as_deref() == Some(service.as_str()))
            .map(|(_, v)| v)
            .collect();
        events.sort_by_key(|v| v["timestamp"].as_i64());
        let base = json!({"service": service, "attributes": {"deployment.environment.name": "it"}});
        let expect = |ms: i64, extra: Value| {
            let mut e = base.clone();
            e["timestamp"] = json!(T0_MS + ms);
            for (k, v) in extra.as_object().unwrap() {
                if k == "attributes" {
                    for (ak, av) in v.as_object().unwrap() {
                        e["attributes"][ak] = av.clone();
                    }
                } else {
                    e[k] = v.clone();
                }
            }
            e
        };
        let want = [
            // http.route wins over url.path; the status code decides error-ness.
            expect(
                1,
                json!({"endpoint": "/pay/{id}", "status": 200, "latency_ms": 12.5,
                       "attributes": {"tenant": "acme", "http.request.method": "GET"}}),
            ),
            // url.path without a route; span status ERROR.
            expect(
                2,
                json!({"endpoint": "/refund", "status": 503, "error": true, "latency_ms": 40.0,
                       "attributes": {"http.request.method": "POST"}}),
            ),
            // Older conventions on an INTERNAL span: http.target without its query, http.status_code.
            expect(
                3,
                json!({"endpoint": "/old", "status": 404, "latency_ms": 3.0}),
            ),
            // A server span with no HTTP attributes: no endpoint/status, error from the span status.
            expect(4, json!({"error": true, "latency_ms": 7.0})),
        ];
        let got: Vec<Value> = events.into_iter().cloned().collect();
        assert_eq!(got, want, "{encoding}");
    }
    server.shutdown().await.unwrap();
}

fn kv(key: &str, value: Any) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn server_span(name: &str, status_code: i64, start_ms: u64) -> Span {
    Span {
        name: name.into(),
        trace_id: vec![7; 16],
        span_id: vec![0xab, 0xcd, 0, 0, 0, 0, 0, start_ms as u8],
        kind: SpanKind::Server as i32,
        start_time_unix_nano: T0_NS + start_ms * 1_000_000,
        end_time_unix_nano: T0_NS + start_ms * 1_000_000 + 5_000_000,
        attributes: vec![
            kv("http.route", Any::StringValue(format!("/{name}"))),
            kv("http.response.status_code", Any::IntValue(status_code)),
        ],
        ..Default::default()
    }
}

/// One valid server span, one with an impossible status code, one client span (skipped).
fn mixed_request(service: &str) -> ExportTraceServiceRequest {
    let mut client = server_span("upstream", 200, 3);
    client.kind = SpanKind::Client as i32;
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", Any::StringValue(service.into()))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    server_span("good", 200, 1),
                    server_span("bad", 999, 2),
                    client,
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    content_type: &str,
    gzip: bool,
    body: Vec<u8>,
) -> reqwest::Response {
    let body = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&body).unwrap();
        enc.finish().unwrap()
    } else {
        body
    };
    let mut req = client
        .post(url)
        .bearer_auth(TOKEN)
        .header("content-type", content_type)
        .body(body);
    if gzip {
        req = req.header("content-encoding", "gzip");
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn partial_success_keeps_the_valid_spans_in_both_encodings() {
    let env = stack();
    let topic = create_topic(&env, 1).await;
    let server = server(&env, &topic).await;
    let client = reqwest::Client::new();
    let id = helios_e2e::kubectl::unique_suffix();

    let service = format!("partial-proto-{id}");
    let resp = post(
        &client,
        &traces_url(&server),
        "application/x-protobuf",
        true,
        mixed_request(&service).encode_to_vec(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    let body = resp.bytes().await.unwrap();
    let partial = ExportTraceServiceResponse::decode(&body[..])
        .unwrap()
        .partial_success
        .expect("partialSuccess set");
    assert_eq!(partial.rejected_spans, 1);
    assert_eq!(
        partial.error_message,
        "1 of 3 spans rejected: span \"bad\" (spanId abcd000000000002): \
         http.response.status_code 999 is not an HTTP status code (100-599)"
    );

    let service_json = format!("partial-json-{id}");
    let json_body = serde_json::to_vec(&mixed_request(&service_json)).unwrap();
    // The crate's own serde is OTLP/JSON: hex ids and 64-bit integers as strings.
    let text = String::from_utf8(json_body.clone()).unwrap();
    assert!(text.contains("\"spanId\":\"abcd000000000001\""), "{text}");
    assert!(
        text.contains("\"startTimeUnixNano\":\"1795514400001000000\""),
        "{text}"
    );
    let resp = post(
        &client,
        &traces_url(&server),
        "application/json",
        false,
        json_body,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["partialSuccess"]["rejectedSpans"], 1, "{v}");
    assert!(
        v["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("http.response.status_code 999"),
        "{v}"
    );

    // A fully valid request answers an empty response.
    let mut clean = mixed_request(&format!("clean-{id}"));
    clean.resource_spans[0].scope_spans[0].spans.remove(1);
    let resp = post(
        &client,
        &traces_url(&server),
        "application/json",
        true,
        serde_json::to_vec(&clean).unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.unwrap(), "{}");

    // Exactly the three valid server spans are in Kafka.
    let messages = read_all(&env, &topic, 4, Duration::from_secs(5)).await;
    let mut got: Vec<(String, String, u64)> = messages
        .iter()
        .map(|(_, v)| {
            (
                v["service"].as_str().unwrap().to_string(),
                v["endpoint"].as_str().unwrap().to_string(),
                v["status"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (service, "/good".to_string(), 200),
        (service_json, "/good".to_string(), 200),
        (format!("clean-{id}"), "/good".to_string(), 200),
    ];
    want.sort();
    assert_eq!(got, want);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn undecodable_bodies_get_400_and_other_content_types_415() {
    let env = stack();
    let topic = create_topic(&env, 1).await;
    let server = server(&env, &topic).await;
    let client = reqwest::Client::new();
    let url = traces_url(&server);

    // Not protobuf: 400 with a google.rpc.Status naming the problem, in protobuf.
    let resp = post(
        &client,
        &url,
        "application/x-protobuf",
        false,
        vec![0xff; 16],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    let status = RpcStatus::decode(&resp.bytes().await.unwrap()[..]).unwrap();
    assert_eq!(status.code, 3);
    assert!(
        status
            .message
            .starts_with("body is not a protobuf ExportTraceServiceRequest"),
        "{}",
        status.message
    );

    // Not OTLP/JSON (a span id that is not hex): 400 in JSON.
    let bad = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"not-hex"}]}]}]}"#;
    let resp = post(&client, &url, "application/json", true, bad.to_vec()).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["code"], 3, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("body is not an OTLP/JSON ExportTraceServiceRequest"),
        "{v}"
    );

    // Corrupt gzip: 400 naming gzip.
    let resp = client
        .post(&url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body("not gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: Value = resp.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("gzip"), "{v}");

    // Other content types: 415, answered in JSON.
    let resp = post(&client, &url, "text/plain", false, b"x".to_vec()).await;
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("application/x-protobuf"),
        "{v}"
    );

    // Same authentication as /v1/events.
    let resp = client
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(Vec::new())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");

    // Same body limit (after decompression) as /v1/events: 413.
    let huge = vec![b' '; 6 * 1024 * 1024];
    let resp = post(&client, &url, "application/json", true, huge).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Nothing reached Kafka.
    assert!(
        read_all(&env, &topic, 1, Duration::from_secs(3))
            .await
            .is_empty()
    );
    server.shutdown().await.unwrap();
}
