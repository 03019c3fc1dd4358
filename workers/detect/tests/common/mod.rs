//! The test kit of the `helios detect` suites (detect, status, watermark) and the replay
//! benchmark: the local stack's Kafka and PostgreSQL, topics, generated events, the worker in
//! a task, and polling helpers. The stack is required: every helper fails loudly naming
//! `e2e/stack up` when it is missing.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod alertmanager;

use std::future::Future;
use std::time::{Duration, Instant};

use helios_detect::Args;
use helios_e2e::StackEnv;
use helios_e2e::clients::{kafka_config, postgres_pool};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The services of the generated traffic (one partition key each).
pub const SERVICES: [&str; 3] = ["checkout", "cart", "search"];
/// Windows in which `checkout` has 10× latency.
pub const SPIKE: [i64; 3] = [40, 41, 42];

/// The local stack's clients and addresses.
pub struct Stack {
    /// The stack's environment (`e2e/.stack/env`).
    pub env: StackEnv,
    /// A pool on the stack's PostgreSQL.
    pub pool: PgPool,
    /// Kafka bootstrap servers.
    pub bootstrap: String,
    /// PostgreSQL URL for the worker.
    pub database_url: String,
}

/// Connects to the local stack (panics naming `e2e/stack up` when it is not running).
pub async fn stack() -> Stack {
    let env = StackEnv::load().expect("the local stack is required: e2e/stack up");
    let pool = postgres_pool(&env)
        .await
        .expect("PostgreSQL from the stack (e2e/stack up)");
    kafka_config(&env).expect("Kafka from the stack (e2e/stack up)");
    Stack {
        bootstrap: env.get("KAFKA_BOOTSTRAP").unwrap().to_string(),
        database_url: env.get("DATABASE_URL").unwrap().to_string(),
        env,
        pool,
    }
}

/// `prefix-` and 10 random hex digits.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// Creates `(topic, partitions)` with replication 1.
pub async fn create_topics(s: &Stack, topics: &[(&str, i32)]) {
    helios_e2e::topics::create_topics(&s.env, topics)
        .await
        .unwrap();
}

/// Deterministic noise in `[0, 1)`.
/// Fresh names for one test: a 3-partition events topic and a 1-partition anomalies topic
/// (both created) and a detector `test/<name>-…`.
pub async fn fresh(s: &Stack, name: &str) -> (String, String, String) {
    let (events_topic, anomalies_topic) = (unique("detect-events"), unique("detect-anomalies"));
    create_topics(s, &[(&events_topic, 3), (&anomalies_topic, 1)]).await;
    (
        events_topic,
        anomalies_topic,
        format!("test/{}", unique(name)),
    )
}

pub fn noise(a: i64, b: i64, c: i64) -> f64 {
    let h = (a * 7919 + b * 104_729 + c * 1_299_709).wrapping_mul(2_654_435_761);
    h.rem_euclid(1000) as f64 / 1000.0
}

/// One event as the ingest worker writes it.
pub fn event(ts_ms: i64, service: &str, latency_ms: f64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "timestamp": ts_ms, "service": service,
        "endpoint": "/api", "status": 200, "latency_ms": latency_ms
    }))
    .unwrap()
}

/// Events of 1 s windows `windows` (relative to `t0`): 15–24 events per service and window,
/// latency 40–60 ms; `checkout` has 10× latency in the SPIKE windows.
pub fn events(t0: i64, windows: std::ops::Range<i64>) -> Vec<(String, Vec<u8>)> {
    events_spiking(t0, windows, &["checkout"])
}

/// [`events`] where every service of `spiking` has 10× latency in the SPIKE windows.
pub fn events_spiking(
    t0: i64,
    windows: std::ops::Range<i64>,
    spiking: &[&str],
) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for w in windows {
        for (si, s) in SERVICES.iter().enumerate() {
            let n = 15 + (noise(w, 0, si as i64) * 10.0) as i64;
            for i in 0..n {
                let base = 40.0 + 20.0 * noise(w, i + 1, si as i64);
                let latency = if spiking.contains(s) && SPIKE.contains(&w) {
                    base * 10.0
                } else {
                    base
                };
                out.push((s.to_string(), event(t0 + w * 1000 + i * 30, s, latency)));
            }
        }
    }
    out
}

/// The kit's idempotent, batching producer on the stack's Kafka.
pub fn producer(s: &Stack) -> FutureProducer {
    helios_e2e::topics::producer(&s.env).unwrap()
}

/// Produces `batch` (key, payload) to `topic` (partition by key) and waits for every ack.
pub async fn produce(producer: &FutureProducer, topic: &str, batch: &[(String, Vec<u8>)]) {
    produce_to(producer, topic, None, batch).await;
}

/// Produces `batch` to `partition` of `topic` (by key when `None`) and waits for every ack.
pub async fn produce_to(
    producer: &FutureProducer,
    topic: &str,
    partition: Option<i32>,
    batch: &[(String, Vec<u8>)],
) {
    /// A fn item (not a closure), so the future stays `Send` for any lifetime.
    fn pair((k, v): &(String, Vec<u8>)) -> (&String, &Vec<u8>) {
        (k, v)
    }
    helios_e2e::topics::produce(producer, topic, partition, batch.iter().map(pair))
        .await
        .unwrap();
}

/// The Detector spec of the suites: 1 s windows without lateness, 20 warm-up windows.
pub fn spec_json() -> serde_json::Value {
    serde_json::json!({
        "pipelineRef": {"name": "shop-events"},
        "partitionBy": ["service"],
        "window": {"size": "1s", "allowedLateness": "0s"},
        "features": ["event_count", "error_rate", "p99_latency"],
        "model": {"trees": 100, "threshold": -0.7, "seed": 1},
        "training": {"warmupWindows": 20, "retrainInterval": "1h", "historyWindows": 200},
        "alerting": {"mode": "Enforce", "minConsecutiveWindows": 1, "cooldown": "15m"}
    })
}

/// [`spec_json`] as text.
pub fn spec() -> String {
    spec_json().to_string()
}

/// A client of the stack's API server (its admin kubeconfig).
pub async fn kube_client(env: &StackEnv) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(env.get("KUBECONFIG").unwrap()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Worker arguments: `detector` (`ns/name`) on `events`, publishing to `anomalies`, metrics on
/// `port`, quiet wait `idle`, no status writer, no report hook.
pub fn args(
    s: &Stack,
    detector: &str,
    events: &str,
    anomalies: &str,
    port: u16,
    idle: &str,
) -> Args {
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
        guard_after_windows: Some(20),
        report_function: None,
        lambda_endpoint: None,
        report_bucket: None,
        report_prefix: String::new(),
        report_s3_endpoint: None,
        report_min_severity: "Warning".into(),
        report_cooldown: "15m".into(),
        report_max_per_hour: 20,
        shutdown_timeout_secs: 10,
        score_metrics_keys: None,
        kube_status: helios_detect::args::KubeStatusMode::Off,
        kubeconfig: None,
        alertmanager_urls: vec![],
        alertmanager_bearer_token: None,
        alertmanager_username: None,
        alertmanager_password: None,
        alertmanager_ca_file: None,
        alertmanager_ca: None,
        alertmanager_resend: None,
        alertmanager_max_age: None,
        feedback_interval: "1s".into(),
    }
}

/// A worker running in a task.
pub struct Running {
    handle: JoinHandle<Result<(), helios_detect::Error>>,
    stop: oneshot::Sender<()>,
}

/// Starts `helios detect` with `a` in a task.
pub fn start(a: Args) -> Running {
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
    pub async fn kill(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }

    /// SIGTERM-like graceful stop (fails the test if the worker failed).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// Polls `f` every 5 ms until it holds (returns how long that took) or panics after `timeout`.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut f: F) -> Duration
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

/// Rows of `detector` in `helios.windows` starting at `start_ms`.
pub async fn windows_at(pool: &PgPool, detector: &str, start_ms: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM helios.windows WHERE detector = $1 AND window_start = to_timestamp($2::float8 / 1000)",
    )
    .bind(detector)
    .bind(start_ms as f64)
    .fetch_one(pool)
    .await
    .unwrap_or(-1)
}

/// A `count(*)` query with `$1` = `detector` (-1 when it fails).
pub async fn count(pool: &PgPool, sql: &'static str, detector: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(detector)
        .fetch_one(pool)
        .await
        .unwrap_or(-1)
}

/// Every message on `topic` (fresh consumer group), read until 3 s pass without one.
pub async fn read_all(s: &Stack, topic: &str) -> Vec<(String, serde_json::Value)> {
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

/// `GET path` on the worker's loopback port: the whole response.
pub async fn http_get(port: u16, path: &str) -> String {
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

/// The value of the sample `series` (name with labels, exactly as exported) on the worker's
/// `/metrics`, `None` when absent or the server does not answer.
pub async fn metric(port: u16, series: &str) -> Option<f64> {
    let conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    if conn.is_err() {
        return None;
    }
    let body = http_get(port, "/metrics").await;
    body.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Start of the suites' event time: whole seconds, a few minutes in the past.
pub fn t0() -> i64 {
    (chrono::Utc::now().timestamp_millis() - 600_000) / 1000 * 1000
}
