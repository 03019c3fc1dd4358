#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Replay throughput of `helios detect` against the local stack (`e2e/stack up`): produces a
//! history of old events (3 keys, 15–24 events per key and 1 s window) to a one-partition
//! topic, starts the worker and prints events/s from the first event consumed (the worker's
//! `helios_detect_events_total` moving, polled every 2 ms) to the last window written
//! (`max(written_at)` in PostgreSQL).
//!
//! ```text
//! cargo run --release -p helios-detect --example replay_throughput [-- EVENTS]
//! ```
//! `EVENTS` defaults to 100000; the quiet wait is 10 minutes, so the figure is not an idle
//! close.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{args, count, create_topics, events, free_port, metric, produce, stack};
use rdkafka::producer::FutureProducer;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let wanted: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("EVENTS is a number"))
        .unwrap_or(100_000);
    let s = stack().await;
    let (events_topic, anomalies_topic) = (
        common::unique("bench-events"),
        common::unique("bench-anomalies"),
    );
    create_topics(&s, &[(&events_topic, 1), (&anomalies_topic, 1)]).await;
    let detector = format!("bench/{}", common::unique("replay"));
    // ~60 events per window: enough windows for `wanted` events, a week in the past.
    let windows = (wanted / 60).max(1) as i64 + 1;
    let t0 = (chrono::Utc::now().timestamp_millis() - 7 * 86_400_000) / 1000 * 1000;
    let batch = events(t0, 0..windows);
    let n = batch.len();
    // Larger batches than the tests' producer: the history is written faster.
    let p: FutureProducer = helios_e2e::clients::kafka_config(&s.env)
        .unwrap()
        .set("linger.ms", "50")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .create()
        .unwrap();
    let produced = Instant::now();
    for chunk in batch.chunks(20_000) {
        produce(&p, &events_topic, chunk).await;
    }
    eprintln!(
        "produced {n} events in {windows} windows in {:.2?}",
        produced.elapsed()
    );

    let port = free_port();
    let started = Instant::now();
    let w = common::start(args(
        &s,
        &detector,
        &events_topic,
        &anomalies_topic,
        port,
        "10m",
    ));
    let accepted = r#"helios_detect_events_total{outcome="accepted"}"#;
    let deadline = Instant::now() + Duration::from_secs(120);
    let first = loop {
        if metric(port, accepted).await.unwrap_or(0.0) > 0.0 {
            break chrono::Utc::now();
        }
        assert!(Instant::now() < deadline, "the worker never consumed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let startup = started.elapsed();
    let expected = windows * common::SERVICES.len() as i64;
    let total = "SELECT count(*) FROM helios.windows WHERE detector = $1";
    let deadline = Instant::now() + Duration::from_secs(1800);
    while count(&s.pool, total, &detector).await < expected {
        assert!(Instant::now() < deadline, "the replay did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT max(written_at) FROM helios.windows WHERE detector = $1")
            .bind(&detector)
            .fetch_one(&s.pool)
            .await
            .unwrap();
    let secs = (last - first).num_microseconds().unwrap_or(0) as f64 / 1e6;
    let late = metric(port, r#"helios_detect_events_total{outcome="late"}"#)
        .await
        .unwrap_or(0.0);
    let write_count = metric(port, "helios_detect_close_to_durable_seconds_count")
        .await
        .unwrap_or(0.0);
    let write_sum = metric(port, "helios_detect_close_to_durable_seconds_sum")
        .await
        .unwrap_or(0.0);
    w.stop().await;
    println!(
        "replay: {n} events, {expected} windows (3 keys), 1 partition: {secs:.2} s from the \
         first event consumed to the last window written = {:.0} events/s, {:.0} windows/s \
         (start-up to the first event {startup:.2?}; {write_count} write batches, {:.1} s \
         writing; {late} late events)",
        n as f64 / secs,
        expected as f64 / secs,
        write_sum
    );
}
