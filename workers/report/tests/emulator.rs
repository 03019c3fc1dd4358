//! The real `helios-report` bootstrap, invoked through the Lambda emulator, writing to MinIO.
//! Needs the local stack (`e2e/stack up`); a missing stack fails the tests. Only one runtime
//! may poll the suite's function (`common::FUNCTION`, used by no other suite) at a time, so
//! these tests take a lock.

mod common;

use std::time::{Duration, Instant};

use common::{Behaviour, ChatServer, Runtime};
use serde_json::{Value, json};

static EMULATOR: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_is_written_through_the_emulator_and_a_retry_overwrites() {
    let _lock = EMULATOR.lock().await;
    let env = common::stack();
    let (s3, lambda) = (common::s3(&env), common::lambda(&env));
    let bucket = common::bucket(&s3).await;
    let runtime = Runtime::spawn(&env, &[]);

    let req = common::request(&bucket);
    let first = common::invoke(&lambda, &req).await;
    assert_eq!(
        first.function_error,
        None,
        "{} / log:\n{}",
        first.payload,
        runtime.log_text()
    );
    let base = "reports/shop/checkout-events/2026-11-24/7f3a9c21d4e8b650";
    assert_eq!(
        first.payload["reportUri"],
        format!("s3://{bucket}/{base}.md")
    );
    assert_eq!(first.payload["textSource"], "template");
    assert!(first.payload.get("llmError").is_none());
    assert_eq!(
        first.payload["objects"],
        json!([
            format!("s3://{bucket}/{base}.md"),
            format!("s3://{bucket}/{base}.json"),
            format!("s3://{bucket}/{base}.svg")
        ])
    );

    let keys = common::keys(&s3, &bucket, "reports/").await;
    assert_eq!(
        keys,
        [
            format!("{base}.json"),
            format!("{base}.md"),
            format!("{base}.svg")
        ]
    );

    let md = common::get_text(&s3, &bucket, &format!("{base}.md")).await;
    for fact in [
        "# checkout p99 latency 1,240 ms vs typical 180 ms (6.9×) — Critical",
        "**1,240 ms**",
        "4.2 %",
        "Started **2026-11-24 10:04 UTC**",
        "- `payments`",
        "](7f3a9c21d4e8b650.svg)",
        "_Narrative: template_",
        "## Suggested next steps",
    ] {
        assert!(md.contains(fact), "missing {fact:?} in\n{md}");
    }
    let facts: Value =
        serde_json::from_str(&common::get_text(&s3, &bucket, &format!("{base}.json")).await)
            .unwrap();
    assert_eq!(facts["anomalyId"], "7f3a9c21d4e8b650");
    assert_eq!(facts["severity"], "Critical");
    assert_eq!(facts["features"][0]["feature"], "p99_latency");
    assert_eq!(facts["features"][0]["actual"], 1240.0);
    assert_eq!(facts["features"][0]["typical"], 180.0);
    assert_eq!(
        facts["blastRadius"],
        json!(["checkout /api/cart", "payments"])
    );
    let svg = common::get_text(&s3, &bucket, &format!("{base}.svg")).await;
    let doc = roxmltree::Document::parse(&svg).expect("the SVG parses");
    let band = doc
        .descendants()
        .find(|n| n.attribute("class") == Some("anomaly-band"))
        .expect("band");
    assert_eq!(
        band.attribute("data-window-start"),
        Some("2026-11-24T10:05:00+00:00")
    );

    // Same input again: same keys, overwritten, not duplicated.
    common::put_text(&s3, &bucket, &format!("{base}.md"), "stale").await;
    let second = common::invoke(&lambda, &req).await;
    assert_eq!(second.function_error, None, "{}", second.payload);
    assert_eq!(second.payload, first.payload);
    assert_eq!(common::keys(&s3, &bucket, "").await.len(), 3);
    assert_eq!(
        common::get_text(&s3, &bucket, &format!("{base}.md")).await,
        md
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_function_error_and_writes_nothing() {
    let _lock = EMULATOR.lock().await;
    let env = common::stack();
    let (s3, lambda) = (common::s3(&env), common::lambda(&env));
    let bucket = common::bucket(&s3).await;
    let runtime = Runtime::spawn(&env, &[]);

    let mut missing = common::request(&bucket);
    missing.as_object_mut().unwrap().remove("detector");
    let mut wrong_type = common::request(&bucket);
    wrong_type["explanation"][0]["actual"] = json!("very high");
    let mut empty = common::request(&bucket);
    empty["detector"] = json!("");
    let mut bad_time = common::request(&bucket);
    bad_time["windowStart"] = json!(12);
    for (payload, field) in [
        (missing, "missing field `detector`"),
        (wrong_type, "explanation[0].actual"),
        (empty, "field `detector` must not be empty"),
        (bad_time, "windowStart"),
        (json!("not an object"), "invalid type"),
    ] {
        let out = common::invoke(&lambda, &payload).await;
        assert!(
            out.function_error.is_some(),
            "expected a function error for {field}: {}",
            out.payload
        );
        assert_eq!(
            out.payload["errorType"], "InvalidRequest",
            "{}",
            out.payload
        );
        let msg = out.payload["errorMessage"].as_str().unwrap_or_default();
        assert!(msg.contains(field), "error {msg:?} does not name {field:?}");
    }
    assert!(
        common::keys(&s3, &bucket, "").await.is_empty(),
        "bad input wrote objects"
    );
    // The runtime is still serving after the errors.
    let ok = common::invoke(&lambda, &common::request(&bucket)).await;
    assert_eq!(
        ok.function_error,
        None,
        "{} / log:\n{}",
        ok.payload,
        runtime.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_narrative_through_the_emulator() {
    let _lock = EMULATOR.lock().await;
    let env = common::stack();
    let (s3, lambda) = (common::s3(&env), common::lambda(&env));
    let bucket = common::bucket(&s3).await;
    let chat = ChatServer::start(Behaviour::Answer(
        "Checkout latency rose sevenfold at 10:04 UTC.".into(),
    ))
    .await;
    let _runtime = Runtime::spawn(&env, &[]);

    let mut req = common::request(&bucket);
    req["report"]["llm"] = json!({"baseUrl": chat.base_url, "model": "test-model", "apiKey": "sk-test", "timeoutMs": 2000});
    let out = common::invoke(&lambda, &req).await;
    assert_eq!(out.function_error, None, "{}", out.payload);
    assert_eq!(out.payload["textSource"], "llm");
    let md = common::get_text(
        &s3,
        &bucket,
        "reports/shop/checkout-events/2026-11-24/7f3a9c21d4e8b650.md",
    )
    .await;
    assert!(
        md.contains("Checkout latency rose sevenfold at 10:04 UTC."),
        "{md}"
    );
    assert!(md.contains("_Narrative: LLM (test-model)"), "{md}");
    let requests = chat.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let (head, body) = &requests[0];
    assert!(head.starts_with("POST /v1/chat/completions "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer sk-test"),
        "{head}"
    );
    assert_eq!(body["model"], "test-model");
}

/// The emulator ends an idle long-poll with 408 after 60 s; the runtime must keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_survives_an_idle_poll_ending_in_408() {
    let _lock = EMULATOR.lock().await;
    let env = common::stack();
    let (s3, lambda) = (common::s3(&env), common::lambda(&env));
    let bucket = common::bucket(&s3).await;
    let runtime = Runtime::spawn(&env, &[]);
    tokio::time::sleep(Duration::from_secs(63)).await;
    let started = Instant::now();
    let out = common::invoke(&lambda, &common::request(&bucket)).await;
    assert_eq!(
        out.function_error,
        None,
        "{} / log:\n{}",
        out.payload,
        runtime.log_text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "invoke after idle took {:?}",
        started.elapsed()
    );
    assert!(
        runtime.log_text().contains("polling again"),
        "no 408 seen:\n{}",
        runtime.log_text()
    );
    assert_eq!(common::keys(&s3, &bucket, "").await.len(), 3);
}
