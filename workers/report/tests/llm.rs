//! The LLM path against a local OpenAI-compatible server: the prompt carries the facts and no
//! raw payloads; a slow or failing server falls back to the template in bounded time.
//! Writes to the stack's MinIO (`e2e/stack up`); a missing stack fails the tests.

mod common;

use std::time::{Duration, Instant};

use common::{Behaviour, ChatServer};
use helios_report::{Handler, HandlerOptions, ReportRequest};
use serde_json::{Value, json};

const MD: &str = "reports/shop/checkout-events/2026-11-24/7f3a9c21d4e8b650.md";

#[allow(clippy::unwrap_used)] // test setup: a panic with the error is the failure
async fn setup(
    behaviour: Behaviour,
    timeout_ms: u64,
) -> (
    aws_sdk_s3::Client,
    String,
    ChatServer,
    Handler,
    ReportRequest,
) {
    let env = common::stack();
    let s3 = common::s3(&env);
    let bucket = common::bucket(&s3).await;
    let chat = ChatServer::start(behaviour).await;
    let handler = Handler::new(HandlerOptions {
        s3_endpoint: Some(env.get("S3_ENDPOINT").unwrap().to_string()),
        s3_credentials: Some(common::credentials(&env)),
        ..HandlerOptions::default()
    })
    .unwrap();
    let mut v = common::request(&bucket);
    v["report"]["llm"] =
        json!({"baseUrl": chat.base_url, "model": "m", "apiKey": "k", "timeoutMs": timeout_ms});
    v["rawEvents"] =
        json!([{"service": "checkout", "attributes": {"card": "SECRET-PAYLOAD-4111"}}]);
    (
        s3,
        bucket,
        chat,
        handler,
        ReportRequest::from_value(v).unwrap(),
    )
}

#[tokio::test]
async fn prompt_holds_the_facts_and_no_raw_payload() {
    let (s3, bucket, chat, handler, req) =
        setup(Behaviour::Answer("A narrative.".into()), 2000).await;
    let resp = handler.handle(&req).await.unwrap();
    assert_eq!(serde_json::to_value(&resp).unwrap()["textSource"], "llm");
    let requests = chat.requests.lock().unwrap().clone();
    let body: &Value = &requests[0].1;
    let prompt = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    for fact in [
        "1,240 ms",
        "180 ms",
        "6.9×",
        "checkout",
        "payments",
        "Critical",
        "p99 latency",
        "4.2 %",
    ] {
        assert!(prompt.contains(fact), "prompt misses {fact}:\n{prompt}");
    }
    assert!(
        !prompt.contains("SECRET-PAYLOAD"),
        "raw payload leaked into the prompt"
    );
    assert!(!prompt.contains("\"k\""), "API key leaked into the prompt");
    let md = common::get_text(&s3, &bucket, MD).await;
    assert!(md.contains("A narrative."));
}

#[tokio::test]
async fn slow_server_falls_back_to_the_template_within_the_timeout() {
    let (s3, bucket, chat, handler, req) =
        setup(Behaviour::Sleep(Duration::from_secs(10)), 500).await;
    let started = Instant::now();
    let resp = serde_json::to_value(handler.handle(&req).await.unwrap()).unwrap();
    let took = started.elapsed();
    // two attempts of 500 ms, a 200 ms pause, plus the S3 writes
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    assert_eq!(resp["textSource"], "template");
    assert_eq!(resp["llmError"], "timeout after 500 ms, 2 attempts");
    assert_eq!(chat.hits(), 2);
    let md = common::get_text(&s3, &bucket, MD).await;
    assert!(
        md.contains("_Narrative: template (LLM unavailable: timeout after 500 ms, 2 attempts)_"),
        "{md}"
    );
    assert!(
        md.contains("**checkout** in pipeline"),
        "template text missing:\n{md}"
    );
}

#[tokio::test]
async fn failing_server_falls_back_after_one_retry() {
    let (s3, bucket, chat, handler, req) = setup(Behaviour::Fail(500), 2000).await;
    let started = Instant::now();
    let resp = serde_json::to_value(handler.handle(&req).await.unwrap()).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(resp["textSource"], "template");
    let err = resp["llmError"].as_str().unwrap();
    assert!(err.starts_with("HTTP 500"), "{err}");
    assert_eq!(chat.hits(), 2, "one retry after a 500");
    let md = common::get_text(&s3, &bucket, MD).await;
    assert!(
        md.contains("_Narrative: template (LLM unavailable: HTTP 500"),
        "{md}"
    );
    let facts: Value =
        serde_json::from_str(&common::get_text(&s3, &bucket, &MD.replace(".md", ".json")).await)
            .unwrap();
    assert_eq!(facts["narrative"]["source"], "template");
    assert!(
        facts["narrative"]["llmError"]
            .as_str()
            .unwrap()
            .starts_with("HTTP 500")
    );
}

#[tokio::test]
async fn unreachable_server_and_client_errors_do_not_hang() {
    let (_s3, _bucket, chat, handler, mut req) = setup(Behaviour::Fail(401), 2000).await;
    let resp = serde_json::to_value(handler.handle(&req).await.unwrap()).unwrap();
    assert_eq!(chat.hits(), 1, "a 401 is not retried");
    assert!(resp["llmError"].as_str().unwrap().starts_with("HTTP 401"));
    if let Some(llm) = req.report.llm.as_mut() {
        llm.base_url = "http://127.0.0.1:9/v1".into(); // discard port: connection refused
    }
    let resp = serde_json::to_value(handler.handle(&req).await.unwrap()).unwrap();
    assert!(
        resp["llmError"]
            .as_str()
            .unwrap()
            .contains("transport error"),
        "{resp}"
    );
}
