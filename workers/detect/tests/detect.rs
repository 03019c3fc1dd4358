#![allow(clippy::unwrap_used)]
//! `helios detect` against the real local stack (Kafka + PostgreSQL): a latency spike becomes
//! exactly one anomaly row and one anomalies-topic message; killing the worker mid-stream and
//! restarting it neither loses nor duplicates the alert; event → alert latency is printed.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use helios_detect::Args;
use helios_e2e::StackEnv;
use helios_e2e::clients::{kafka_config, postgres_pool};
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const SERVICES: [&str; 3] = ["checkout", "cart", "search"];
const SPIKE: [i64; 3] = [40, 41, 42];

struct Stack {
    env: StackEnv,
    pool: PgPool,
    bootstrap: String,
    database_url: String,
}

async fn stack() -> Stack {
    let env = StackEnv::load().expect("the local stack is required: e2e/stack up");
    let pool = postgres_pool(&env)
        .await
        .expect("PostgreSQL from the stack");
    kafka_config(&env).expect("Kafka from the stack");
    Stack {
        bootstrap: env.get("KAFKA_BOOTSTRAP").unwrap().to_string(),
        database_url: env.get("DATABASE_URL").unwrap().to_string(),
        env,
        pool,
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

async fn create_topics(s: &Stack, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> = kafka_config(&s.env).unwrap().create().unwrap();
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
        .collect();
    for r in admin
        .create_topics(&new, &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
}

fn noise(a: i64, b: i64, c: i64) -> f64 {
    let h = (a * 7919 + b * 104_729 + c * 1_299_709).wrapping_mul(2_654_435_761);
    h.rem_euclid(1000) as f64 / 1000.0
}

/// Events of 1 s windows `windows` (relative to `t0`): 15–24 events per service and window,
/// latency 40–60 ms; `checkout` has 10× latency in the SPIKE windows.
fn events(t0: i64, windows: std::ops::Range<i64>) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for w in windows {
        for (si, s) in SERVICES.iter().enumerate() {
            let n = 15 + (noise(w, 0, si as i64) * 10.0) as i64;
            for i in 0..n {
                let base = 40.0 + 20.0 * noise(w, i + 1, si as i64);
                let latency = if *s == "checkout" && SPIKE.contains(&w) {
                    base * 10.0
                } else {
                    base
                };
                let ev = serde_json::json!({
                    "timestamp": t0 + w * 1000 + i * 30, "service": s,
                    "endpoint": "/api", "status": 200, "latency_ms": latency
                });
                out.push((s.to_string(), serde_json::to_vec(&ev).unwrap()));
            }
        }
    }
    out
}

fn producer(s: &Stack) -> FutureProducer {
    kafka_config(&s.env)
        .unwrap()
        .set("enable.idempotence", "true")
        .set("linger.ms", "1")
        .create()
        .unwrap()
}

async fn produce(producer: &FutureProducer, topic: &str, batch: &[(String, Vec<u8>)]) {
    let sends: Vec<_> = batch
        .iter()
        .map(|(k, v)| {
            producer.send(
                FutureRecord::to(topic).key(k).payload(v),
                Duration::from_secs(10),
            )
        })
        .collect();
    for f in sends {
        f.await.unwrap();
    }
}

fn spec() -> String {
    serde_json::json!({
        "pipelineRef": {"name": "shop-events"},
        "partitionBy": ["service"],
        "window": {"size": "1s", "allowedLateness": "0s"},
        "features": ["event_count", "error_rate", "p99_latency"],
        "model": {"trees": 100, "threshold": -0.7, "seed": 1},
        "training": {"warmupWindows": 20, "retrainInterval": "1h", "historyWindows": 200},
        "alerting": {"mode": "Enforce", "minConsecutiveWindows": 1, "cooldown": "15m"}
    })
    .to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn args(s: &Stack, detector: &str, events: &str, anomalies: &str, port: u16, idle: &str) -> Args {
    Args {
        detector_config: spec(),
        detector: detector.to_string(),
        kafka_bootstrap: s.bootstrap.clone(),
        events_topic: events.to_string(),
        anomalies_topic: anomalies.to_string(),
        kafka_properties: vec![],
        kafka_sasl_username: None,
        kafka_sasl_password: None,
        database_url: s.database_url.clone(),
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        restore_windows: 0,
        idle_close: Some(idle.to_string()),
        z_guard: helios_detect::config::DEFAULT_Z_GUARD,
        report_function: None,
        lambda_endpoint: None,
        report_bucket: None,
        report_prefix: String::new(),
        report_s3_endpoint: None,
        report_min_severity: "Warning".into(),
        report_cooldown: "15m".into(),
        report_max_per_hour: 20,
        shutdown_timeout_secs: 10,
        kube_status: helios_detect::args::KubeStatusMode::Off,
        kubeconfig: None,
    }
}

struct Running {
    handle: JoinHandle<Result<(), helios_detect::Error>>,
    stop: oneshot::Sender<()>,
}

fn start(a: Args) -> Running {
    let (stop, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let r = helios_detect::serve(a, async move {
            let _ = rx.await;
        })
        .await;
        if let Err(e) = &r {
            eprintln!("worker failed: {e}");
        }
        r
    });
    Running { handle, stop }
}

impl Running {
    /// A crash: the task is aborted, nothing is flushed or committed.
    async fn kill(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }

    /// SIGTERM-like graceful stop.
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < timeout {
        if f().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

async fn windows_at(pool: &PgPool, detector: &str, start_ms: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM helios.windows WHERE detector = $1 AND window_start = to_timestamp($2::float8 / 1000)",
    )
    .bind(detector)
    .bind(start_ms as f64)
    .fetch_one(pool)
    .await
    .unwrap_or(-1)
}

async fn count(pool: &PgPool, sql: &'static str, detector: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(detector)
        .fetch_one(pool)
        .await
        .unwrap_or(-1)
}

/// Every message on `topic` (fresh consumer group), read until 3 s pass without one.
async fn read_all(s: &Stack, topic: &str) -> Vec<(String, serde_json::Value)> {
    let consumer: StreamConsumer = kafka_config(&s.env)
        .unwrap()
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(3), consumer.recv()).await {
        let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
        out.push((
            key,
            serde_json::from_slice(m.payload().unwrap_or_default()).unwrap(),
        ));
    }
    out
}

async fn http_get(port: u16, path: &str) -> String {
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).await.unwrap();
    body
}

/// Start of the test's event time: whole seconds, a few minutes in the past.
fn t0() -> i64 {
    (chrono::Utc::now().timestamp_millis() - 600_000) / 1000 * 1000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_spike_gives_one_anomaly_row_and_one_message() {
    let s = stack().await;
    let (events_topic, anomalies_topic) = (unique("detect-events"), unique("detect-anomalies"));
    create_topics(&s, &[(&events_topic, 3), (&anomalies_topic, 1)]).await;
    let detector = format!("test/{}", unique("spike"));
    let p = producer(&s);
    let t0 = t0();

    // Phase 1: 40 normal windows and the first spike window (not yet closed: lateness 0).
    let phase1 = events(t0, 0..41);
    produce(&p, &events_topic, &phase1).await;
    let port = free_port();
    let started = Instant::now();
    let w = start(args(
        &s,
        &detector,
        &events_topic,
        &anomalies_topic,
        port,
        "1h",
    ));
    wait_for("window 39 written", Duration::from_secs(60), || async {
        windows_at(&s.pool, &detector, t0 + 39_000).await == 3
    })
    .await;
    let took = started.elapsed();
    println!(
        "throughput: {} events (start-up, migrations and consumer-group join included) \
         windowed, scored and written in {:.2?} = {:.0} events/s",
        phase1.len(),
        took,
        phase1.len() as f64 / took.as_secs_f64()
    );
    assert!(http_get(port, "/readyz").await.contains("200 OK"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        count(
            &s.pool,
            "SELECT count(*) FROM helios.anomalies WHERE detector = $1",
            &detector
        )
        .await,
        0,
        "the spike window is still open"
    );

    // Phase 2: the first event of window 41 of every service (the watermark is the minimum over
    // partitions) moves the watermark past the spike window.
    let (first, rest): (Vec<_>, Vec<_>) = events(t0, 41..42).into_iter().partition(|(_, v)| {
        serde_json::from_slice::<serde_json::Value>(v).unwrap()["timestamp"] == t0 + 41_000
    });
    assert_eq!(first.len(), 3);
    let sent = Instant::now();
    produce(&p, &events_topic, &first).await;
    let acked = sent.elapsed();
    wait_for("the anomaly row", Duration::from_secs(30), || async {
        count(
            &s.pool,
            "SELECT count(*) FROM helios.anomalies WHERE detector = $1",
            &detector,
        )
        .await
            == 1
    })
    .await;
    let latency = sent.elapsed();
    println!(
        "event → alert latency: {latency:.2?} from producing the watermark-advancing events \
         to the anomaly row in PostgreSQL (of which produce ack {acked:.2?})"
    );
    produce(&p, &events_topic, &rest).await;

    // Phase 3: the spike continues two windows, then normal traffic resolves the episode.
    produce(&p, &events_topic, &events(t0, 42..48)).await;
    wait_for("window 46 written", Duration::from_secs(30), || async {
        windows_at(&s.pool, &detector, t0 + 46_000).await == 3
    })
    .await;
    wait_for("the anomaly notified", Duration::from_secs(30), || async {
        count(
            &s.pool,
            "SELECT count(*) FROM helios.anomalies WHERE detector = $1 AND notified AND resolved",
            &detector,
        )
        .await
            == 1
    })
    .await;
    let metrics = http_get(port, "/metrics").await;
    assert!(
        metrics.contains("helios_detect_anomalies_total{severity="),
        "{metrics}"
    );
    assert!(metrics.contains("helios_detect_scoring_latency_seconds_count"));
    w.stop().await;

    let row: (
        String,
        String,
        String,
        f64,
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
        serde_json::Value,
    ) = sqlx::query_as(
        "SELECT anomaly_id, key, severity, score, window_start, window_end, explanation \
             FROM helios.anomalies WHERE detector = $1",
    )
    .bind(&detector)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    println!(
        "anomaly: id={} key={} severity={} score={:.3}",
        row.0, row.1, row.2, row.3
    );
    assert_eq!(row.1, "checkout");
    assert_eq!(
        row.4.timestamp_millis(),
        t0 + 40_000,
        "episode starts at the first spike window"
    );
    assert_eq!(
        row.5.timestamp_millis(),
        t0 + 43_000,
        "episode ends with the last spike window"
    );
    assert_eq!(row.6[0]["feature"], "p99_latency", "{}", row.6);
    let flagged = count(
        &s.pool,
        "SELECT count(*) FROM helios.windows WHERE detector = $1 AND anomalous",
        &detector,
    )
    .await;
    assert_eq!(flagged, 3, "exactly the three spike windows are anomalous");

    let messages = read_all(&s, &anomalies_topic).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].1["anomalyId"], row.0.as_str());
    assert_eq!(
        messages[0].0,
        messages[0].1["fingerprint"].as_str().unwrap()
    );
    assert_eq!(messages[0].1["explanation"][0]["feature"], "p99_latency");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_worker_neither_loses_nor_duplicates_the_alert() {
    let s = stack().await;
    let (events_topic, anomalies_topic) = (unique("detect-events"), unique("detect-anomalies"));
    create_topics(&s, &[(&events_topic, 3), (&anomalies_topic, 1)]).await;
    let detector = format!("test/{}", unique("restart"));
    let p = producer(&s);
    let t0 = t0();
    let a = |port| args(&s, &detector, &events_topic, &anomalies_topic, port, "1s");
    let anomalies = "SELECT count(*) FROM helios.anomalies WHERE detector = $1";

    // Run 1: killed while warming up.
    produce(&p, &events_topic, &events(t0, 0..30)).await;
    let w = start(a(free_port()));
    wait_for("window 25 written", Duration::from_secs(60), || async {
        windows_at(&s.pool, &detector, t0 + 25_000).await == 3
    })
    .await;
    w.kill().await;

    // Run 2: killed as soon as the anomaly row exists.
    produce(&p, &events_topic, &events(t0, 30..42)).await;
    let w = start(a(free_port()));
    wait_for("the anomaly row", Duration::from_secs(60), || async {
        count(&s.pool, anomalies, &detector).await >= 1
    })
    .await;
    w.kill().await;

    // Run 3: to the end (the last window closes on idle), then a graceful stop.
    produce(&p, &events_topic, &events(t0, 42..48)).await;
    let w = start(a(free_port()));
    wait_for("every window written", Duration::from_secs(60), || async {
        count(
            &s.pool,
            "SELECT count(*) FROM helios.windows WHERE detector = $1",
            &detector,
        )
        .await
            == 48 * 3
    })
    .await;
    wait_for(
        "the anomaly resolved and notified",
        Duration::from_secs(30),
        || async {
            count(
            &s.pool,
            "SELECT count(*) FROM helios.anomalies WHERE detector = $1 AND notified AND resolved",
            &detector,
        )
        .await
            == 1
        },
    )
    .await;
    w.stop().await;

    assert_eq!(count(&s.pool, anomalies, &detector).await, 1);
    let messages = read_all(&s, &anomalies_topic).await;
    let ids: BTreeSet<String> = messages
        .iter()
        .map(|(_, m)| m["anomalyId"].as_str().unwrap().to_string())
        .collect();
    // Counted by id: exactly one alert. Publishing is at-least-once: a kill that lands between
    // Kafka's acknowledgement and the `notified` update re-publishes the same id on restart.
    assert_eq!(ids.len(), 1, "exactly one alert id: {messages:?}");
    println!(
        "anomalies-topic messages: {} (distinct ids: {})",
        messages.len(),
        ids.len()
    );
    assert!(messages.len() <= 2, "{messages:?}");
    let key: String = sqlx::query_scalar("SELECT key FROM helios.anomalies WHERE detector = $1")
        .bind(&detector)
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(key, "checkout");
}
