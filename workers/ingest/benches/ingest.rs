//! Ingest benchmark (prints figures, asserts nothing about speed): on the real local broker,
//! in one process and run,
//!  1. a raw rdkafka producer (same settings: idempotent, acks=all, lz4) writes N events;
//!  2. the load generator POSTs the same N events as NDJSON batches to `helios ingest`;
//!  3. ack latency p50/p95/p99 through `helios ingest` at a fixed 50k events/s.
//!
//! Run: `e2e/stack up && cargo bench -p helios-ingest --bench ingest`
//! (env: BENCH_EVENTS, BENCH_BATCH, BENCH_CONCURRENCY, BENCH_RATE).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use helios_e2e::{StackEnv, clients};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn var(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn event_line(i: u64) -> String {
    let services = [
        "checkout", "auth", "search", "cart", "billing", "catalog", "profile", "shipping",
    ];
    format!(
        r#"{{"timestamp":{},"service":"{}","endpoint":"/api/v1/items","status":{},"latency_ms":{:.1},"attributes":{{"region":"eu-west-1"}}}}"#,
        1_795_514_400_000_u64 + i,
        services[(i % 8) as usize],
        if i.is_multiple_of(50) { 503 } else { 200 },
        10.0 + (i % 113) as f64
    )
}

async fn create_topic(env: &StackEnv, name: &str) {
    let admin: AdminClient<DefaultClientContext> =
        clients::kafka_config(env).unwrap().create().unwrap();
    let res = admin
        .create_topics(
            &[NewTopic::new(name, 6, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(res.iter().all(Result::is_ok), "{res:?}");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn raw_producer(env: &StackEnv, topic: &str, lines: &[String]) -> f64 {
    let producer: FutureProducer = clients::ingest_producer_config(env)
        .unwrap()
        .create()
        .unwrap();
    let started = Instant::now();
    let mut pending = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let key = [
            "checkout", "auth", "search", "cart", "billing", "catalog", "profile", "shipping",
        ][i % 8];
        loop {
            match producer.send_result(FutureRecord::to(topic).key(key).payload(line.as_bytes())) {
                Ok(d) => {
                    pending.push(d);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }
    for d in futures::future::join_all(pending).await {
        d.unwrap().unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    lines.len() as f64 / started.elapsed().as_secs_f64()
}

async fn through_ingest(url: &str, bodies: Arc<Vec<String>>, batch: u64, concurrency: u64) -> f64 {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency as usize)
        .build()
        .unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, bodies, next) = (
            client.clone(),
            url.to_string(),
            bodies.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(body) = bodies.get(i) else { break };
                let resp = client
                    .post(&url)
                    .header("content-type", "application/x-ndjson")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().is_success(), "{}", resp.status());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (bodies.len() as u64 * batch) as f64 / started.elapsed().as_secs_f64()
}

async fn latency_at_rate(url: &str, rate: u64, batch: u64, seconds: u64) -> (f64, f64, f64, f64) {
    let client = reqwest::Client::new();
    let body: String = (0..batch).map(|i| event_line(i) + "\n").collect();
    let requests_per_sec = rate / batch;
    let interval = Duration::from_secs_f64(1.0 / requests_per_sec as f64);
    let total = requests_per_sec * seconds;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(total as usize);
    let started = Instant::now();
    for _ in 0..total {
        ticker.tick().await;
        let (client, url, body) = (client.clone(), url.to_string(), body.clone());
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let resp = client
                .post(&url)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success());
            t0.elapsed().as_secs_f64() * 1000.0
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    for t in tasks {
        lat.push(t.await.unwrap());
    }
    let achieved = (total * batch) as f64 / started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    (
        percentile(&lat, 50.0),
        percentile(&lat, 95.0),
        percentile(&lat, 99.0),
        achieved,
    )
}

#[tokio::main]
async fn main() {
    let env = StackEnv::load().unwrap_or_else(|e| panic!("{e}"));
    let n = var("BENCH_EVENTS", 1_000_000);
    let batch = var("BENCH_BATCH", 1000);
    let concurrency = var("BENCH_CONCURRENCY", 8);
    let rate = var("BENCH_RATE", 50_000);
    let suffix = helios_e2e::kubectl::unique_suffix();
    let (raw_topic, ingest_topic) = (
        format!("bench-raw-{suffix}"),
        format!("bench-ingest-{suffix}"),
    );
    create_topic(&env, &raw_topic).await;
    create_topic(&env, &ingest_topic).await;

    let lines: Vec<String> = (0..n).map(event_line).collect();
    let bodies: Vec<String> = lines.chunks(batch as usize).map(|c| c.join("\n")).collect();
    let bytes: usize = lines.iter().map(String::len).sum();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/events", listener.local_addr().unwrap());
    let args = {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: helios_ingest::Args,
        }
        Cli::parse_from([
            "ingest",
            "--kafka-bootstrap",
            env.get("KAFKA_BOOTSTRAP").unwrap(),
            "--topic",
            &ingest_topic,
        ])
        .args
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(helios_ingest::serve(args, listener, async move {
        let _ = stop_rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Warm up both paths briefly.
    let _ = through_ingest(
        &url,
        Arc::new(bodies[..bodies.len().min(20)].to_vec()),
        batch,
        2,
    )
    .await;

    let raw = raw_producer(&env, &raw_topic, &lines).await;
    let ingest = through_ingest(&url, Arc::new(bodies), batch, concurrency).await;
    let (p50, p95, p99, achieved) = latency_at_rate(&url, rate, 100, 10).await;

    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
    println!(
        "\n== helios ingest benchmark (real Kafka {} on loopback, one process) ==",
        env.get("KAFKA_BOOTSTRAP").unwrap()
    );
    println!(
        "machine: {} cores; events: {n} ({:.0} bytes avg, NDJSON); topics: 6 partitions, RF 1",
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(0),
        bytes as f64 / n as f64
    );
    println!("raw rdkafka producer      : {raw:>10.0} events/s");
    println!(
        "helios ingest (HTTP, batch {batch}, {concurrency} conns): {ingest:>10.0} events/s  ({:.2} x raw)",
        ingest / raw
    );
    println!(
        "ack latency at {rate} events/s (batches of 100, achieved {achieved:.0}/s): p50 {p50:.2} ms  p95 {p95:.2} ms  p99 {p99:.2} ms"
    );
}
