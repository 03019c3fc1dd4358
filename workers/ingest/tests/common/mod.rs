//! Shared helpers of the ingest integration tests: an in-process `helios ingest` against the
//! stack's real Kafka, topic creation, and reading a topic back.

#![allow(dead_code)]

use helios_e2e::{StackEnv, clients};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;

/// A running in-process ingest server.
pub struct Server {
    pub addr: SocketAddr,
    pub topic: String,
    stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<Result<(), helios_ingest::Error>>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}/v1/events", self.addr)
    }

    /// Send SIGTERM-equivalent and wait for the drain to finish.
    pub async fn shutdown(mut self) -> Result<(), helios_ingest::Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("server task")
    }
}

pub fn stack() -> StackEnv {
    StackEnv::load().unwrap_or_else(|e| panic!("{e}"))
}

pub fn kafka(env: &StackEnv) -> ClientConfig {
    clients::kafka_config(env).unwrap_or_else(|e| panic!("{e}"))
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", helios_e2e::kubectl::unique_suffix())
}

pub async fn create_topic(env: &StackEnv, partitions: i32) -> String {
    let topic = unique("ingest-test");
    let admin: AdminClient<DefaultClientContext> = kafka(env).create().expect("admin");
    let res = admin
        .create_topics(
            &[NewTopic::new(
                &topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("create topic");
    assert!(res.iter().all(Result::is_ok), "{res:?}");
    topic
}

pub fn args(bootstrap: &str, topic: &str) -> helios_ingest::Args {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: helios_ingest::Args,
    }
    Cli::parse_from([
        "ingest",
        "--kafka-bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--listen",
        "127.0.0.1:0",
    ])
    .args
}

pub async fn start(args: helios_ingest::Args) -> Server {
    // Worker logs go to the test's captured output (shown when a test fails).
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let topic = args.topic.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(helios_ingest::serve(args, listener, async move {
        let _ = rx.await;
    }));
    Server {
        addr,
        topic,
        stop: Some(tx),
        task,
    }
}

/// Read the whole topic (from the beginning) until `expect` messages or `wait` of silence.
pub async fn read_all(
    env: &StackEnv,
    topic: &str,
    expect: usize,
    wait: Duration,
) -> Vec<(Option<String>, serde_json::Value)> {
    let consumer: StreamConsumer = kafka(env)
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    while out.len() < expect {
        match tokio::time::timeout(wait, consumer.recv()).await {
            Ok(Ok(m)) => {
                let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
                let value =
                    serde_json::from_slice(m.payload().unwrap_or_default()).expect("json payload");
                out.push((key, value));
            }
            // Transient (e.g. a broker just restarted by another test step): keep reading.
            Ok(Err(e)) => eprintln!("consume (retrying): {e}"),
            Err(_) => break,
        }
    }
    out
}

pub fn event(seq: u64, service: &str) -> serde_json::Value {
    serde_json::json!({
        "timestamp": 1_795_514_400_000_i64 + seq as i64,
        "service": service,
        "endpoint": "/pay",
        "status": if seq.is_multiple_of(10) { 503 } else { 200 },
        "latency_ms": (seq % 97) as f64 + 0.5,
        "attributes": {"seq": seq.to_string()},
    })
}

/// Count messages per `attributes.seq`.
pub fn seq_counts(messages: &[(Option<String>, serde_json::Value)]) -> HashMap<u64, usize> {
    let mut counts = HashMap::new();
    for (_, v) in messages {
        if let Some(seq) = v["attributes"]["seq"].as_str().and_then(|s| s.parse().ok()) {
            *counts.entry(seq).or_insert(0) += 1;
        }
    }
    counts
}
