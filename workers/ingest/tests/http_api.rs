//! `helios ingest` against the real Kafka broker: what is accepted is in the topic intact, and
//! every error path answers the exact status with a message naming the problem.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure with a message

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::Write;
use std::time::{Duration, Instant};

async fn post(
    client: &reqwest::Client,
    url: &str,
    ct: &str,
    body: Vec<u8>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let resp = client
        .post(url)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, body, headers)
}

#[tokio::test]
async fn accepted_events_reach_kafka_intact_and_refused_ones_do_not() {
    let env = stack();
    let topic = create_topic(&env, 3).await;
    let server = start(args(env.get("KAFKA_BOOTSTRAP").unwrap(), &topic)).await;
    let client = reqwest::Client::new();

    // One object, an array, NDJSON, and gzip'd NDJSON: 1 + 3 + 2 + 2 = 8 events.
    let (s, b, _) = post(
        &client,
        &server.url(),
        "application/json",
        event(0, "checkout").to_string().into_bytes(),
    )
    .await;
    assert_eq!(
        (s, b["accepted"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{b}"
    );
    let arr = json!([event(1, "checkout"), event(2, "auth"), event(3, "auth")]);
    let (s, b, _) = post(
        &client,
        &server.url(),
        "application/json",
        arr.to_string().into_bytes(),
    )
    .await;
    assert_eq!(
        (s, b["accepted"].as_u64()),
        (StatusCode::OK, Some(3)),
        "{b}"
    );
    let nd = format!("{}\n{}\n", event(4, "batch"), event(5, "batch"));
    let (s, b, _) = post(
        &client,
        &server.url(),
        "application/x-ndjson",
        nd.into_bytes(),
    )
    .await;
    assert_eq!(
        (s, b["accepted"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{b}"
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(format!("{}\n{}\n", event(6, "batch"), event(7, "auth")).as_bytes())
        .unwrap();
    let resp = client
        .post(server.url())
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // A batch with one bad event is refused whole: none of its events reach Kafka.
    let mut bad = event(100, "checkout");
    bad["latency_ms"] = json!("slow");
    let batch = json!([event(99, "checkout"), bad]);
    let (s, b, _) = post(
        &client,
        &server.url(),
        "application/json",
        batch.to_string().into_bytes(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"]["index"], 1, "{b}");
    assert_eq!(b["error"]["field"], "latency_ms", "{b}");

    let messages = read_all(&env, &topic, 9, Duration::from_secs(5)).await;
    assert_eq!(
        messages.len(),
        8,
        "exactly the accepted events: {messages:?}"
    );
    let counts = seq_counts(&messages);
    assert!((0..8).all(|s| counts.get(&s) == Some(&1)), "{counts:?}");
    assert!(!counts.contains_key(&99) && !counts.contains_key(&100));
    let first = messages
        .iter()
        .find(|(_, v)| v["attributes"]["seq"] == "0")
        .expect("event 0");
    assert_eq!(first.0.as_deref(), Some("checkout"), "keyed by service");
    assert_eq!(first.1["timestamp"], 1_795_514_400_000_i64);
    assert_eq!(first.1["endpoint"], "/pay");
    assert_eq!(first.1["status"], 503);
    assert_eq!(first.1["latency_ms"], 0.5);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn metrics_samples_reach_kafka_and_bad_metrics_are_refused_whole() {
    let env = stack();
    let topic = create_topic(&env, 1).await;
    let server = start(args(env.get("KAFKA_BOOTSTRAP").unwrap(), &topic)).await;
    let client = reqwest::Client::new();
    let url = server.url();
    let gauge = |seq: u64, metrics: Value| {
        json!({"timestamp": "2026-12-02T10:00:00Z", "service": "checkout",
            "metrics": metrics, "attributes": {"seq": seq.to_string()}})
    };

    // A pure gauge sample (no status/error/latency) and, in NDJSON, a request event with metrics.
    let (s, b, _) = post(
        &client,
        &url,
        "application/json",
        gauge(0, json!({"cpu": 0.73, "queue_depth": 12}))
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(
        (s, b["accepted"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{b}"
    );
    let mut both = event(1, "auth");
    both["metrics"] = json!({"mem.rss-bytes": 1.5e9});
    let (s, b, _) = post(
        &client,
        &url,
        "application/x-ndjson",
        format!("{both}\n").into_bytes(),
    )
    .await;
    assert_eq!(
        (s, b["accepted"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{b}"
    );

    // Refused batches (each with a valid event first): nothing of them may reach Kafka.
    let refusals = [
        (
            json!({"cpu": "high"}),
            "metrics.cpu",
            "must be a finite number",
        ),
        (
            json!({"cpu": null}),
            "metrics.cpu",
            "must be a finite number",
        ),
        (json!({"cpu load": 1}), "metrics", "must match"),
        (json!([1, 2]), "metrics", "must be an object of numbers"),
        (
            Value::Object((0..65).map(|i| (format!("m{i}"), json!(i))).collect()),
            "metrics",
            "at most 64 metrics",
        ),
    ];
    for (i, (metrics, field, message)) in refusals.into_iter().enumerate() {
        let seq = 100 + 2 * i as u64;
        let batch = json!([gauge(seq, json!({"cpu": 0.1})), gauge(seq + 1, metrics)]);
        let (s, b, _) = post(
            &client,
            &url,
            "application/json",
            batch.to_string().into_bytes(),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(b["error"]["code"], "invalid_event", "{b}");
        assert_eq!(b["error"]["index"], 1, "{b}");
        assert_eq!(b["error"]["field"], field, "{b}");
        let text = b["error"]["message"].as_str().unwrap();
        assert!(text.contains(field) && text.contains(message), "{b}");
    }
    // A number overflowing f64 is not JSON serde can hold: refused as malformed, also whole.
    let overflow = format!(
        "[{},{}]",
        gauge(200, json!({"cpu": 0.1})),
        r#"{"timestamp":1,"service":"checkout","metrics":{"cpu":1e400},"attributes":{"seq":"201"}}"#
    );
    let (s, b, _) = post(&client, &url, "application/json", overflow.into_bytes()).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json")),
        "{b}"
    );
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("out of range"),
        "{b}"
    );

    let messages = read_all(&env, &topic, 3, Duration::from_secs(5)).await;
    let counts = seq_counts(&messages);
    assert_eq!(
        (messages.len(), counts.get(&0), counts.get(&1)),
        (2, Some(&1), Some(&1)),
        "exactly the two accepted events: {messages:?}"
    );
    let (key, sample) = messages
        .iter()
        .find(|(_, v)| v["attributes"]["seq"] == "0")
        .unwrap();
    assert_eq!(key.as_deref(), Some("checkout"), "keyed by service");
    assert_eq!(sample["timestamp"], 1_796_205_600_000_i64, "{sample}");
    assert_eq!(
        sample["metrics"],
        json!({"cpu": 0.73, "queue_depth": 12.0}),
        "{sample}"
    );
    for absent in ["status", "error", "latency_ms"] {
        assert!(sample.get(absent).is_none(), "{absent} in {sample}");
    }
    let (_, request) = messages
        .iter()
        .find(|(_, v)| v["attributes"]["seq"] == "1")
        .unwrap();
    assert_eq!(
        request["metrics"],
        json!({"mem.rss-bytes": 1.5e9}),
        "{request}"
    );
    assert_eq!(
        (request["status"].as_u64(), request["latency_ms"].as_f64()),
        (Some(200), Some(1.5)),
        "{request}"
    );
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn error_paths_answer_the_exact_status() {
    let env = stack();
    let topic = create_topic(&env, 1).await;
    let mut a = args(env.get("KAFKA_BOOTSTRAP").unwrap(), &topic);
    a.auth_token = Some("t0ken".into());
    a.max_body_bytes = 4096;
    a.rate_limit_eps = Some(1);
    a.rate_limit_burst = Some(10);
    let server = start(a).await;
    let client = reqwest::Client::new();
    let url = server.url();
    let one = event(1, "s").to_string();
    let send = |auth: Option<&'static str>, ct: &'static str, body: Vec<u8>| {
        let mut req = client.post(&url).header("content-type", ct).body(body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        async move {
            let resp = req.send().await.expect("request");
            let status = resp.status();
            let headers = resp.headers().clone();
            (
                status,
                resp.json::<Value>().await.unwrap_or(Value::Null),
                headers,
            )
        }
    };

    let (s, b, h) = send(None, "application/json", one.clone().into_bytes()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Authorization")
    );
    assert_eq!(h.get("www-authenticate").unwrap(), "Bearer");
    let (s, _, _) = send(
        Some("Bearer wrong"),
        "application/json",
        one.clone().into_bytes(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (s, b, _) = send(Some("Bearer t0ken"), "text/csv", one.clone().into_bytes()).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("text/csv"));

    let big = format!("[{}]", vec![one.clone(); 60].join(","));
    assert!(big.len() > 4096);
    let (s, b, _) = send(Some("Bearer t0ken"), "application/json", big.into_bytes()).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("4096"));

    let (s, b, _) = send(
        Some("Bearer t0ken"),
        "application/json",
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    let (s, b, _) = send(
        Some("Bearer t0ken"),
        "application/json",
        br#"{"timestamp":1,"service":"s","status":200,"latency_ms":1,"host":"x"}"#.to_vec(),
    )
    .await;
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("host")),
        "{b}"
    );

    // Burst 10: eleven events in one batch can never pass → 413 naming the burst.
    let eleven = format!("[{}]", vec![one.clone(); 11].join(","));
    let (s, b, _) = send(
        Some("Bearer t0ken"),
        "application/json",
        eleven.into_bytes(),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");
    // Ten pass; five more right after need ~5 s of refill at 1 event/s: 429 with Retry-After.
    let ten = format!("[{}]", vec![one.clone(); 10].join(","));
    let (s, b, _) = send(Some("Bearer t0ken"), "application/json", ten.into_bytes()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let five = format!("[{}]", vec![one.clone(); 5].join(","));
    let (s, b, h) = send(Some("Bearer t0ken"), "application/json", five.into_bytes()).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    let retry: u64 = h
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=5).contains(&retry), "{retry}");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn unreachable_broker_answers_503_quickly_and_readyz_says_so() {
    // A port nothing listens on: the breaker opens at start-up.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let mut a = args(&format!("127.0.0.1:{port}"), "nowhere");
    a.produce_timeout_ms = 3000;
    let server = start(a).await;
    let client = reqwest::Client::new();
    // Start-up probe takes up to 5 s; wait for the listener to answer.
    let ready_url = format!("http://{}/readyz", server.addr);
    let deadline = Instant::now() + Duration::from_secs(15);
    let ready = loop {
        if let Ok(r) = client.get(&ready_url).send().await {
            break r;
        }
        assert!(Instant::now() < deadline, "server never listened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let started = Instant::now();
    let (s, b, h) = post(
        &client,
        &server.url(),
        "application/json",
        event(1, "s").to_string().into_bytes(),
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert!(h.get("retry-after").is_some());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "503 must be immediate, took {:?}",
        started.elapsed()
    );
    let metrics = client
        .get(format!("http://{}/metrics", server.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("helios_ingest_breaker_open 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("helios_ingest_requests_total{status=\"503\"} 1"),
        "{metrics}"
    );
    let health = client
        .get(format!("http://{}/healthz", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(
        health.status(),
        StatusCode::OK,
        "liveness does not depend on Kafka"
    );
    server.shutdown().await.expect("clean shutdown");
}
