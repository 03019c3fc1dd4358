//! Event → alert latency of `helios detect` under load (prints figures, asserts nothing about
//! speed), open-loop, the load generator and the worker in separate processes:
//!  1. per rate, a fresh 3-partition events topic and a `helios detect` child (the release
//!     binary) with 1 s windows, no allowed lateness, `event_count` and `error_rate`, alerts
//!     enforced with a 1 s cooldown;
//!  2. this process sends events to Kafka on a fixed schedule (event `i` is due at
//!     `start + i / rate`; each event's timestamp is its due time, and a late send is sent at
//!     once, never skipped, so queueing shows up as latency instead of as a lower rate; the
//!     sender sends what is due and sleeps at least 0.5 ms, never spins),
//!     round-robin over 100 keys (services), with the ingest worker's producer settings
//!     (`linger.ms` 2, idempotent, acks all, lz4);
//!  3. after a warm-up, each key has a burst every 20 windows (every request of the window
//!     fails), staggered over keys (5 bursts a second in all);
//!  4. a consumer in this process reads the anomalies topic; an alert's latency is the time it
//!     is read minus its window's end (the earliest time the window can close: every event
//!     due later closes it), measured on the wall clock of this one machine.
//!
//! Reported per rate: the achieved send rate and the sender's largest lag behind its schedule,
//! the worker's CPU, alerts and bursts, and p50/p90/p99/max latency of the alerts whose window
//! lies in the measured stretch. The latency includes the producer's batching, the broker (twice),
//! windowing, scoring, the PostgreSQL transaction that stores the window and the alert (the
//! outbox) and the publication.
//!
//! Run: `e2e/stack up && cargo bench -p helios --bench alert_latency`
//! (env: HELIOS_BENCH_RATES (events/s, comma-separated, default 2000,10000,30000),
//! HELIOS_BENCH_MEASURE_SECS (default 60), HELIOS_BENCH_RUST_LOG (the worker's, default `info`)).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kit;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use helios_e2e::StackEnv;
use helios_e2e::clients::kafka_config;
use helios_e2e::topics;
use kit::{Worker, unique, var};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};

/// Keys (services) the events are spread over.
const KEYS: u64 = 100;
/// Window size, ms.
const WINDOW_MS: i64 = 1000;
/// A key has a burst every this many windows.
const BURST_EVERY: i64 = 20;
/// Seconds of traffic before bursts start and latencies count (warm-up of 20 windows, the
/// likelihood's 20 and the guards' 20, with margin).
const WARM_SECS: u64 = 50;
/// Partitions of the events topic.
const PARTITIONS: i32 = 3;

/// The Detector: 1 s windows without lateness, request count and error rate, alerts enforced.
const SPEC: &str = r#"{"pipelineRef": {"name": "bench"}, "partitionBy": ["service"],
 "window": {"size": "1s", "allowedLateness": "0s"},
 "features": ["event_count", "error_rate"],
 "training": {"warmupWindows": 20},
 "alerting": {"mode": "Enforce", "minConsecutiveWindows": 1, "cooldown": "1s"}}"#;

fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Whether key `k` has a burst in window `w` (epoch window index).
fn burst(k: u64, w: i64) -> bool {
    (w + 7 * k as i64).rem_euclid(BURST_EVERY) == 0
}

/// What the sender did.
struct Sent {
    events: u64,
    secs: f64,
    max_lag_ms: f64,
    queue_full: u64,
    bursts: BTreeSet<(String, i64)>,
}

/// Sends `rate` events/s open-loop from `start_us` (wall clock) for `secs`; bursts only in
/// windows starting at or after `measure_from_ms`.
fn send(
    env: &StackEnv,
    topic: &str,
    rate: u64,
    start_us: i64,
    secs: u64,
    measure_from_ms: i64,
) -> Sent {
    let producer: ThreadedProducer<DefaultProducerContext> =
        helios_e2e::clients::ingest_producer_config(env)
            .unwrap()
            .create()
            .expect("a Kafka producer (e2e/stack up)");
    let total = rate * secs;
    let anchor = Instant::now();
    let anchor_us = wall_us();
    let (mut max_lag_us, mut queue_full) = (0i64, 0u64);
    let mut bursts = BTreeSet::new();
    let mut payload = String::with_capacity(160);
    // Every event already due is sent at once; then the sender sleeps until the next is due
    // (at least half a millisecond: a spinning sender would take a core from the worker).
    let now_us = || anchor_us + anchor.elapsed().as_micros() as i64;
    let due = |i: u64| start_us + (i as i128 * 1_000_000 / rate as i128) as i64;
    for i in 0..total {
        let ahead = due(i) - now_us();
        if ahead > 0 {
            std::thread::sleep(Duration::from_micros(ahead.max(500) as u64));
        }
        let due_us = due(i);
        if due_us >= measure_from_ms * 1000 {
            max_lag_us = max_lag_us.max(now_us() - due_us);
        }
        let k = i % KEYS;
        let ts_ms = due_us / 1000;
        let w = ts_ms.div_euclid(WINDOW_MS);
        let key = format!("svc-{k:03}");
        let failed = ts_ms >= measure_from_ms && burst(k, w);
        if failed {
            bursts.insert((key.clone(), w * WINDOW_MS));
        }
        let status = if failed || (i * 2_654_435_761) % 1000 < 5 {
            500
        } else {
            200
        };
        payload.clear();
        use std::fmt::Write as _;
        let _ = write!(
            payload,
            r#"{{"timestamp":{ts_ms},"service":"{key}","endpoint":"/api","status":{status},"latency_ms":{}}}"#,
            20 + (i * 7919) % 40
        );
        let mut record = BaseRecord::to(topic).key(&key).payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    queue_full += 1;
                    record = r;
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err((e, _)) => panic!("producing to {topic}: {e}"),
            }
        }
    }
    let secs_taken = anchor.elapsed().as_secs_f64() - (start_us - anchor_us) as f64 / 1e6;
    producer
        .flush(Duration::from_secs(30))
        .expect("flushing the producer");
    Sent {
        events: total,
        secs: secs_taken,
        max_lag_ms: max_lag_us as f64 / 1000.0,
        queue_full,
        bursts,
    }
}

/// An alert as read: key, fired window start (ms), read time minus window end (ms).
struct Read {
    key: String,
    window_ms: i64,
    latency_ms: f64,
}

/// Reads the anomalies topic from the beginning until `stop`.
async fn read_alerts(env: StackEnv, topic: String, stop: Arc<AtomicBool>) -> Vec<Read> {
    let consumer: StreamConsumer = kafka_config(&env)
        .unwrap()
        .set("group.id", unique("helios-bench-latency"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .create()
        .expect("a Kafka consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning)
        .unwrap();
    consumer
        .assign(&tpl)
        .expect("assigning the anomalies topic");
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await
        else {
            continue;
        };
        let now = wall_us();
        let Some(Ok(v)) = m.payload().map(serde_json::from_slice::<serde_json::Value>) else {
            continue;
        };
        let fired = v["firedWindowStart"]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.timestamp_millis())
            .expect("firedWindowStart on an anomaly");
        out.push(Read {
            key: v["key"].as_str().unwrap_or_default().to_string(),
            window_ms: fired,
            latency_ms: (now - (fired + WINDOW_MS) * 1000) as f64 / 1000.0,
        });
    }
    out
}

/// CPU seconds (user + system) of process `pid` so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

async fn run_rate(env: &StackEnv, rate: u64, measure_secs: u64) -> String {
    let events_topic = unique("helios-bench-latency-events");
    let anomalies_topic = unique("helios-bench-latency-anomalies");
    topics::create_topics(env, &[(&events_topic, PARTITIONS), (&anomalies_topic, 1)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let detector = format!("bench/{}", unique("latency"));
    let spec: serde_json::Value = serde_json::from_str(SPEC).expect("the bench's Detector");
    let mut worker = Worker::start(
        env,
        &spec.to_string(),
        &detector,
        &events_topic,
        &anomalies_topic,
        &["--guard-after-windows", "20"],
    );
    // The worker is up once it serves its metrics.
    let deadline = Instant::now() + Duration::from_secs(60);
    while worker.events_by_outcome().await.is_empty() {
        if let Some(status) = worker.exited() {
            panic!("helios detect exited ({status}):\n{}", worker.log_tail(30));
        }
        assert!(
            Instant::now() < deadline,
            "helios detect never served /metrics"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(read_alerts(
        env.clone(),
        anomalies_topic.clone(),
        stop.clone(),
    ));
    // Start on a window boundary a little ahead; bursts and latencies from the warm-up's end.
    let start_us = (wall_us() / 1_000_000 + 2) * 1_000_000;
    let measure_from_ms = start_us / 1000 + WARM_SECS as i64 * 1000;
    let measure_to_ms = measure_from_ms + measure_secs as i64 * 1000;
    let pid = worker.pid();
    let (env2, topic2) = (env.clone(), events_topic.clone());
    let secs = WARM_SECS + measure_secs + 2;
    let sender = tokio::task::spawn_blocking(move || {
        send(&env2, &topic2, rate, start_us, secs, measure_from_ms)
    });
    // The worker's CPU over the measured stretch.
    tokio::time::sleep(Duration::from_micros(
        (measure_from_ms * 1000 - wall_us()).max(0) as u64,
    ))
    .await;
    let cpu0 = cpu_secs(pid);
    tokio::time::sleep(Duration::from_secs(measure_secs)).await;
    let cpu = (cpu_secs(pid) - cpu0) / measure_secs as f64;
    let sent = sender.await.expect("the sender");
    // Alerts of the last measured windows: a few seconds to arrive.
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    let reads = reader.await.expect("the reader");
    let stage = |name: &'static str| {
        let w = &worker;
        async move {
            let s = w.series(name).await;
            let get = |k: &str| s.get(k).copied().unwrap_or(f64::NAN);
            1000.0 * get("_sum") / get("_count")
        }
    };
    let (durable_ms, scoring_ms) = (
        stage("helios_detect_close_to_durable_seconds").await,
        stage("helios_detect_scoring_latency_seconds").await,
    );
    if let Some(status) = worker.exited() {
        panic!("helios detect exited ({status}):\n{}", worker.log_tail(30));
    }
    worker.stop();
    topics::delete_topics(env, &[&events_topic, &anomalies_topic]).await;

    let measured: Vec<&Read> = reads
        .iter()
        .filter(|r| r.window_ms >= measure_from_ms && r.window_ms < measure_to_ms)
        .collect();
    let bursts: BTreeSet<&(String, i64)> = sent
        .bursts
        .iter()
        .filter(|(_, w)| *w >= measure_from_ms && *w < measure_to_ms)
        .collect();
    let caught = measured
        .iter()
        .filter(|r| bursts.contains(&(r.key.clone(), r.window_ms)))
        .count();
    let mut lat: Vec<f64> = measured.iter().map(|r| r.latency_ms).collect();
    lat.sort_by(f64::total_cmp);
    let line = format!(
        "{rate} events/s offered, {:.0} achieved (sender lag while measured ≤ {:.1} ms, {} queue-full retries); \
         worker CPU {:.0} %; {} alerts in {measure_secs} s ({caught} on the {} bursts); \
         event → alert p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms (worker, whole \
         run: close → PostgreSQL commit {durable_ms:.1} ms, scoring {scoring_ms:.3} ms a window, \
         means)",
        sent.events as f64 / sent.secs,
        sent.max_lag_ms,
        sent.queue_full,
        cpu * 100.0,
        lat.len(),
        bursts.len(),
        quantile(&lat, 0.5),
        quantile(&lat, 0.9),
        quantile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
    );
    println!("{line}");
    line
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let (env, _pool) = kit::stack().await;
        let rates: Vec<u64> = std::env::var("HELIOS_BENCH_RATES")
            .unwrap_or_else(|_| "2000,10000,30000".into())
            .split(',')
            .map(|r| r.trim().parse().expect("HELIOS_BENCH_RATES: events/s"))
            .collect();
        let measure = var("HELIOS_BENCH_MEASURE_SECS", 60);
        println!(
            "# Event → alert latency: {KEYS} keys, 1 s windows, {PARTITIONS} partitions, \
             {measure} s measured after {WARM_SECS} s\n"
        );
        let mut lines = Vec::new();
        for rate in rates {
            lines.push(run_rate(&env, rate, measure).await);
        }
        println!("\n## Summary (README-ready)\n");
        for l in lines {
            println!("- {l}");
        }
    });
}
