//! Overload: with more requests in progress than `--max-concurrent-requests`, ingest sheds the
//! rest at once with 503 and `Retry-After` (a clean answer, never a reset), its peak memory stays
//! within what the admitted requests can hold, every acknowledged event is in Kafka exactly once,
//! and it serves normally again as soon as the burst is over.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure with a message

mod common;

use common::*;
use reqwest::StatusCode;
use std::io::Write;
use std::time::Duration;

const REQUESTS: u64 = 100;
const EVENTS_PER_REQUEST: u64 = 2_000;
const SLOTS: usize = 4;

/// Peak resident memory of this process (the server runs in it), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kib * 1024
}

fn gzip_batch(request: u64) -> Vec<u8> {
    let mut nd = String::new();
    for i in 0..EVENTS_PER_REQUEST {
        nd.push_str(&event(request * EVENTS_PER_REQUEST + i, "overload").to_string());
        nd.push('\n');
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(nd.as_bytes()).unwrap();
    gz.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_past_the_admission_slots_is_shed_with_retry_after_and_memory_stays_bounded() {
    let env = stack();
    let topic = create_topic(&env, 3).await;
    let mut a = args(env.get("KAFKA_BOOTSTRAP").unwrap(), &topic);
    a.max_concurrent_requests = SLOTS;
    let server = start(a).await;
    let client = reqwest::Client::new();
    let send = |body: Vec<u8>| {
        client
            .post(server.url())
            .header("content-type", "application/x-ndjson")
            .header("content-encoding", "gzip")
            .body(body)
            .send()
    };

    // Warm up (producer connected, buffers allocated), then note the peak so far.
    let warm = send(gzip_batch(REQUESTS)).await.unwrap();
    assert_eq!(warm.status(), StatusCode::OK);
    let bodies: Vec<Vec<u8>> = (0..REQUESTS).map(gzip_batch).collect();
    let decoded_bytes = bodies.len() as u64 * EVENTS_PER_REQUEST * 160;
    let before = peak_rss();

    let answers = futures::future::join_all(bodies.into_iter().map(|b| {
        let sent = send(b);
        async move {
            let resp = sent.await.expect("an answer, not a reset");
            let retry_after = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (resp.status(), retry_after)
        }
    }))
    .await;
    let grown = peak_rss().saturating_sub(before);

    let ok = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let shed: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    eprintln!(
        "{ok} accepted, {} shed of {REQUESTS} concurrent requests; peak RSS grew {:.1} MiB \
         (the bodies decode to {:.1} MiB)",
        shed.len(),
        grown as f64 / (1 << 20) as f64,
        decoded_bytes as f64 / (1 << 20) as f64
    );
    assert_eq!(
        ok + shed.len(),
        REQUESTS as usize,
        "only 200 or 503: {answers:?}"
    );
    assert!(ok >= 1, "some requests get through: {answers:?}");
    assert!(
        shed.len() >= REQUESTS as usize / 2,
        "the burst is shed: {answers:?}"
    );
    assert!(
        shed.iter().all(|(_, after)| after.as_deref() == Some("1")),
        "every 503 says Retry-After: 1: {shed:?}"
    );
    // Admitted requests hold at most SLOTS bodies with their parsed events (a few MiB each);
    // all 100 at once would hold hundreds of MiB.
    assert!(
        grown < 96 << 20,
        "peak RSS grew {grown} bytes with {SLOTS} slots"
    );

    // The burst is over: served normally again, at once.
    let after = send(gzip_batch(REQUESTS + 1)).await.unwrap();
    assert_eq!(after.status(), StatusCode::OK);

    // Every acknowledged event is in Kafka exactly once; nothing of a shed request is.
    let accepted = (ok as u64 + 2) * EVENTS_PER_REQUEST;
    let messages = read_all(&env, &topic, accepted as usize + 1, Duration::from_secs(5)).await;
    assert_eq!(messages.len() as u64, accepted);
    let counts = seq_counts(&messages);
    assert!(counts.values().all(|&n| n == 1), "duplicates");
    let shed_requests: Vec<u64> = (0..REQUESTS)
        .filter(|r| !counts.contains_key(&(r * EVENTS_PER_REQUEST)))
        .collect();
    assert_eq!(shed_requests.len(), shed.len());
    server.shutdown().await.unwrap();
}
