//! Ingest benchmark (prints figures, asserts nothing about speed) on the stack's Kafka, in one
//! invocation, with `helios ingest` in its **own process** (this binary re-run as `server`, so
//! the load and the server share no runtime):
//!  1. the broker's ceiling: Kafka's own `ProducerPerformance` (the stack's jars) and a
//!     concurrent rdkafka producer (every event enqueued at once: librdkafka's in-flight limit),
//!     both with ingest's producer settings (idempotent, acks=all, lz4, 1 MB batches), on a topic
//!     like ingest's; the faster is "raw";
//!  2. throughput through ingest after warming up each path: NDJSON (batches of `BENCH_BATCH`
//!     events) and OTLP protobuf (export requests of `BENCH_BATCH` server spans), each on
//!     `BENCH_CONCURRENCY` connections;
//!  3. open-loop latency at each of `BENCH_RATES` events/s (NDJSON batches of 100): request *i*
//!     is due at start + *i* / requests-per-second and is sent then (or at once when late, never
//!     skipped); its latency runs from that **due time** to its answer, so queueing shows
//!     (no coordinated omission). p50/p99/p99.9, the rate achieved, answers other than 200.
//!
//! Run: `e2e/stack up && cargo bench -p helios-ingest --bench ingest`
//! (env: BENCH_EVENTS, BENCH_BATCH, BENCH_CONCURRENCY, BENCH_RATES=10000,50000, BENCH_SECONDS).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use helios_e2e::{StackEnv, clients};
use prost::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{request, var};

const SERVICES: [&str; 8] = [
    "checkout", "auth", "search", "cart", "billing", "catalog", "profile", "shipping",
];

fn event_line(i: u64) -> String {
    format!(
        r#"{{"timestamp":{},"service":"{}","endpoint":"/api/v1/items","status":{},"latency_ms":{:.1},"attributes":{{"region":"eu-west-1"}}}}"#,
        1_795_514_400_000_u64 + i,
        SERVICES[(i % 8) as usize],
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
    let idx = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[idx.clamp(1, sorted.len()) - 1]
}

/// The server process: `server TOPIC PORT`, until SIGINT.
async fn server(topic: &str, port: &str) {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: helios_ingest::Args,
    }
    let env = StackEnv::load().unwrap_or_else(|e| panic!("{e}"));
    let args = Cli::parse_from([
        "ingest",
        "--kafka-bootstrap",
        env.get("KAFKA_BOOTSTRAP").unwrap(),
        "--topic",
        topic,
    ])
    .args;
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    helios_ingest::serve(args, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .unwrap();
}

/// Kafka's `ProducerPerformance`: records/s for `n` records drawn from `lines`.
fn producer_performance(env: &StackEnv, topic: &str, lines: &[String], n: u64) -> f64 {
    let dir = std::env::temp_dir().join(helios_e2e::kubectl::unique_suffix());
    std::fs::create_dir_all(&dir).unwrap();
    let payloads = dir.join("payloads.txt");
    std::fs::write(&payloads, lines[..lines.len().min(10_000)].join("\n")).unwrap();
    let out = Command::new("java")
        .arg("-cp")
        .arg(format!("{}/*", env.get("KAFKA_LIBS").unwrap()))
        .arg("org.apache.kafka.tools.ProducerPerformance")
        .args(["--topic", topic, "--num-records", &n.to_string()])
        .args(["--throughput", "-1", "--payload-file"])
        .arg(&payloads)
        .arg("--producer-props")
        .arg(format!(
            "bootstrap.servers={}",
            env.get("KAFKA_BOOTSTRAP").unwrap()
        ))
        .args([
            "acks=all",
            "enable.idempotence=true",
            "compression.type=lz4",
            "linger.ms=2",
            "batch.size=1000000",
            "buffer.memory=268435456",
        ])
        .output()
        .expect("java (the stack's Kafka runs on it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .rfind(|l| l.contains("records/sec"))
        .unwrap_or_else(|| {
            panic!(
                "ProducerPerformance: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    last.split(',')
        .nth(1)
        .and_then(|f| f.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("ProducerPerformance summary: {last}"))
}

/// A concurrent rdkafka producer: every line enqueued, then every acknowledgement awaited.
async fn rdkafka_producer(env: &StackEnv, topic: &str, lines: &[String]) -> f64 {
    let producer: FutureProducer = clients::ingest_producer_config(env)
        .unwrap()
        .create()
        .unwrap();
    let started = Instant::now();
    let mut pending = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let key = SERVICES[i % 8];
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

/// Items per second posting `bodies` (each `per_body` items) on `concurrency` connections.
async fn closed_loop(
    url: &str,
    content_type: &'static str,
    bodies: Arc<Vec<Vec<u8>>>,
    per_body: u64,
    concurrency: u64,
) -> f64 {
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
                    .header("content-type", content_type)
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
    (bodies.len() as u64 * per_body) as f64 / started.elapsed().as_secs_f64()
}

/// Open-loop latency at `rate` events/s for `seconds`: (p50, p99, p99.9 in ms, achieved
/// events/s, answers other than 200).
async fn open_loop(url: &str, rate: u64, seconds: u64) -> (f64, f64, f64, f64, usize) {
    const BATCH: u64 = 100;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let body: String = (0..BATCH).map(|i| event_line(i) + "\n").collect();
    let rps = (rate / BATCH).max(1);
    let total = rps * seconds;
    let start = Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rps as f64);
        tokio::time::sleep_until(due.into()).await;
        let (client, url, body) = (client.clone(), url.to_string(), body.clone());
        tasks.push(tokio::spawn(async move {
            let resp = client
                .post(&url)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await;
            let ok = resp.is_ok_and(|r| r.status().is_success());
            ((Instant::now() - due).as_secs_f64() * 1000.0, ok)
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut failed = 0;
    for t in tasks {
        let (ms, ok) = t.await.unwrap();
        latencies.push(ms);
        failed += usize::from(!ok);
    }
    let achieved =
        ((total - failed as u64) * BATCH) as f64 / (Instant::now() - start).as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    (
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 99.9),
        achieved,
        failed,
    )
}

/// Peak resident memory of process `pid` (MiB), from `/proc`.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

async fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("helios ingest (the server process) was not ready in 30 s");
}

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("server") {
        return server(&argv[2], &argv[3]).await;
    }
    let env = StackEnv::load().unwrap_or_else(|e| panic!("{e}"));
    let n = var("BENCH_EVENTS", 1_000_000);
    let batch = var("BENCH_BATCH", 1000);
    let concurrency = var("BENCH_CONCURRENCY", 32);
    let seconds = var("BENCH_SECONDS", 10);
    let rates: Vec<u64> = std::env::var("BENCH_RATES")
        .unwrap_or_else(|_| "10000,50000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let suffix = helios_e2e::kubectl::unique_suffix();
    let topics = ["perf", "raw", "ingest"].map(|t| format!("bench-{t}-{suffix}"));
    for t in &topics {
        create_topic(&env, t).await;
    }
    let [perf_topic, raw_topic, ingest_topic] = &topics;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child: Child = Command::new(std::env::current_exe().unwrap())
        .args(["server", ingest_topic, &port.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port).await;
    let events_url = format!("http://127.0.0.1:{port}/v1/events");
    let traces_url = format!("http://127.0.0.1:{port}/v1/traces");

    let lines: Vec<String> = (0..n).map(event_line).collect();
    let bytes: usize = lines.iter().map(String::len).sum();
    let ndjson: Vec<Vec<u8>> = lines
        .chunks(batch as usize)
        .map(|c| c.join("\n").into_bytes())
        .collect();
    let otlp_body = request(batch).encode_to_vec();
    let otlp: Vec<Vec<u8>> = vec![otlp_body; ndjson.len()];

    // Warm-up: every path once, a little.
    let warm = |v: &Vec<Vec<u8>>| Arc::new(v[..v.len().min(50)].to_vec());
    closed_loop(&events_url, "application/x-ndjson", warm(&ndjson), batch, 2).await;
    closed_loop(&traces_url, "application/x-protobuf", warm(&otlp), batch, 2).await;
    rdkafka_producer(&env, raw_topic, &lines[..lines.len().min(50_000)]).await;

    let perf = producer_performance(&env, perf_topic, &lines, n);
    let rdkafka = rdkafka_producer(&env, raw_topic, &lines).await;
    let raw = perf.max(rdkafka);
    let through_ndjson = closed_loop(
        &events_url,
        "application/x-ndjson",
        Arc::new(ndjson),
        batch,
        concurrency,
    )
    .await;
    let through_otlp = closed_loop(
        &traces_url,
        "application/x-protobuf",
        Arc::new(otlp),
        batch,
        concurrency,
    )
    .await;
    let mut open = Vec::new();
    for &rate in &rates {
        open.push((rate, open_loop(&events_url, rate, seconds).await));
    }
    let rss = peak_rss_mib(child.id());
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();

    println!(
        "\n== helios ingest benchmark (Kafka {} on loopback; ingest in its own process) ==",
        env.get("KAFKA_BOOTSTRAP").unwrap()
    );
    println!(
        "machine: {} cores; events: {n} ({:.0} bytes avg); topics: 6 partitions, RF 1",
        std::thread::available_parallelism().map_or(0, |p| p.get()),
        bytes as f64 / n as f64
    );
    println!("Kafka ProducerPerformance   : {perf:>10.0} events/s");
    println!("rdkafka, all in flight      : {rdkafka:>10.0} events/s");
    println!(
        "ingest NDJSON (batch {batch}, {concurrency} conns): {through_ndjson:>10.0} events/s ({:.2} x raw)",
        through_ndjson / raw
    );
    println!(
        "ingest OTLP protobuf ({batch} spans/request, {concurrency} conns): {through_otlp:>10.0} spans/s ({:.2} x raw)",
        through_otlp / raw
    );
    for (rate, (p50, p99, p999, achieved, failed)) in open {
        println!(
            "open loop {rate} events/s (NDJSON batches of 100, {seconds} s): achieved {achieved:.0}/s, \
             from the due time p50 {p50:.2} ms  p99 {p99:.2} ms  p99.9 {p999:.2} ms, not 200: {failed}"
        );
    }
    println!("ingest process peak RSS: {rss:.1} MiB");
}
