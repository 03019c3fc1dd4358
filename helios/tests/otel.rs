//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set, `helios ingest` exports its request spans over
//! OTLP/HTTP (received here by a minimal collector on loopback).

#![allow(clippy::unwrap_used)]

use helios_e2e::{StackEnv, clients};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the collector received: (path, body) per request.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Accept OTLP/HTTP posts; record (path, body).
fn collector() -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            sink.lock().unwrap().push((path, body));
            let mut out = stream;
            let _ = out.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n");
        }
    });
    (port, seen)
}

#[tokio::test]
async fn ingest_exports_request_spans_over_otlp() {
    let env = StackEnv::load().unwrap_or_else(|e| panic!("{e}"));
    let topic = format!("otel-{}", helios_e2e::kubectl::unique_suffix());
    let admin: AdminClient<DefaultClientContext> =
        clients::kafka_config(&env).unwrap().create().unwrap();
    let res = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(res.iter().all(Result::is_ok), "{res:?}");
    let (otlp_port, seen) = collector();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut ingest = Command::new(env!("CARGO_BIN_EXE_helios"))
        .args([
            "ingest",
            "--kafka-bootstrap",
            env.get("KAFKA_BOOTSTRAP").unwrap(),
            "--topic",
            &topic,
        ])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{otlp_port}"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "helios ingest never became ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let resp = client
        .post(format!("http://127.0.0.1:{port}/v1/events"))
        .header("content-type", "application/json")
        .body(r#"{"timestamp":1,"service":"otel-probe","status":200,"latency_ms":3}"#)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    // SIGTERM: the process drains and flushes its spans on exit.
    assert!(
        Command::new("kill")
            .args(["-TERM", &ingest.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(ingest.wait().unwrap().success());
    let seen = seen.lock().unwrap();
    let traces: Vec<&(String, Vec<u8>)> = seen.iter().filter(|(p, _)| p == "/v1/traces").collect();
    assert!(
        !traces.is_empty(),
        "no OTLP export received: {:?}",
        seen.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    let all: Vec<u8> = traces.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    let has = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"POST /v1/events"), "the request span is exported");
    assert!(has(b"helios-ingest"), "the service name is set");
}
