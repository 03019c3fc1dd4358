//! Detector → report hook, with the real binaries on the real stack: `helios report` serves the
//! Lambda emulator's `helios-report-detect` function (its own: suites run side by side), `helios detect` reads a latency spike from Kafka,
//! stores the anomaly in PostgreSQL, invokes the hook, and the report lands in MinIO with its
//! URI stored on the anomaly row.

#![allow(clippy::unwrap_used)]

use helios_e2e::{StackEnv, clients};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn events(t0: i64, windows: std::ops::Range<i64>) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for w in windows {
        for (si, s) in ["checkout", "cart", "search"].iter().enumerate() {
            for i in 0..20 {
                let jitter = ((w * 31 + i * 17 + si as i64 * 7) % 20) as f64;
                let mut latency = 40.0 + jitter;
                if *s == "checkout" && (40..43).contains(&w) {
                    latency *= 10.0;
                }
                let ev = serde_json::json!({"timestamp": t0 + w * 1000 + i * 40, "service": s,
                    "endpoint": "/api", "status": 200, "latency_ms": latency});
                out.push((s.to_string(), serde_json::to_vec(&ev).unwrap()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detected_spike_is_reported_to_s3() {
    let env = StackEnv::load().unwrap_or_else(|e| panic!("{e}"));
    let suffix = helios_e2e::kubectl::unique_suffix();
    let (events_topic, anomalies_topic) = (
        format!("dr-events-{suffix}"),
        format!("dr-anomalies-{suffix}"),
    );
    let bucket = format!("dr-reports-{suffix}");
    let detector = format!("test/dr-{suffix}");
    let admin: AdminClient<DefaultClientContext> =
        clients::kafka_config(&env).unwrap().create().unwrap();
    let topics = [
        NewTopic::new(&events_topic, 3, TopicReplication::Fixed(1)),
        NewTopic::new(&anomalies_topic, 1, TopicReplication::Fixed(1)),
    ];
    for r in admin
        .create_topics(&topics, &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
    let s3 = clients::s3_client(&env).unwrap();
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let aws = |c: &mut Command| {
        for k in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
            c.env(k, env.get(k).unwrap());
        }
        c.env("AWS_EC2_METADATA_DISABLED", "true");
    };

    let mut report = Command::new(env!("CARGO_BIN_EXE_helios"));
    report
        .arg("report")
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!(
                "http://{}/helios-report-detect",
                env.get("LAMBDA_RUNTIME_API_BASE").unwrap()
            ),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "helios-report-detect")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("HELIOS_REPORT_S3_ENDPOINT", env.get("S3_ENDPOINT").unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    aws(&mut report);
    let _report = Kill(report.spawn().unwrap());

    let t0 = (chrono_now_ms() - 600_000) / 1000 * 1000;
    let producer: FutureProducer = clients::kafka_config(&env)
        .unwrap()
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for (k, v) in events(t0, 0..48) {
        producer
            .send(
                FutureRecord::to(&events_topic).key(&k).payload(&v),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    let spec = serde_json::json!({
        "pipelineRef": {"name": "shop"}, "partitionBy": ["service"],
        "window": {"size": "1s", "allowedLateness": "0s"},
        "features": ["event_count", "error_rate", "p99_latency"],
        "model": {"trees": 100, "threshold": -0.7, "seed": 1},
        "training": {"warmupWindows": 20, "retrainInterval": "1h", "historyWindows": 200},
        "alerting": {"mode": "Enforce", "minConsecutiveWindows": 1, "cooldown": "15m"}
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let detect_log = std::env::temp_dir().join(format!("helios-dr-detect-{suffix}.log"));
    let mut detect = Command::new(env!("CARGO_BIN_EXE_helios"));
    detect
        .arg("detect")
        .env("HELIOS_DETECTOR_CONFIG", spec.to_string())
        .env("HELIOS_DETECTOR", &detector)
        .env(
            "HELIOS_KAFKA_BOOTSTRAP",
            env.get("KAFKA_BOOTSTRAP").unwrap(),
        )
        .env("HELIOS_EVENTS_TOPIC", &events_topic)
        .env("HELIOS_ANOMALIES_TOPIC", &anomalies_topic)
        .env("DATABASE_URL", env.get("DATABASE_URL").unwrap())
        .env("HELIOS_DETECT_LISTEN", format!("127.0.0.1:{port}"))
        .env("HELIOS_DETECT_IDLE_CLOSE", "2s")
        .env("HELIOS_REPORT_FUNCTION", "helios-report-detect")
        .env(
            "HELIOS_LAMBDA_ENDPOINT",
            env.get("LAMBDA_ENDPOINT").unwrap(),
        )
        .env("HELIOS_REPORT_BUCKET", &bucket)
        .env("HELIOS_REPORT_PREFIX", "reports")
        .env("HELIOS_REPORT_S3_ENDPOINT", env.get("S3_ENDPOINT").unwrap())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&detect_log).unwrap());
    aws(&mut detect);
    let _detect = Kill(detect.spawn().unwrap());

    let pool = clients::postgres_pool(&env).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let uri: String = loop {
        // Until the worker has run its migrations the table does not exist: that is "not yet".
        let row: Result<Option<Option<String>>, sqlx::Error> = sqlx::query_scalar(
            "SELECT report_uri FROM helios.anomalies WHERE detector = $1 AND key = 'checkout'",
        )
        .bind(&detector)
        .fetch_optional(&pool)
        .await;
        if let Ok(Some(Some(uri))) = &row {
            break uri.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no reported anomaly for checkout within 120 s (last query: {row:?}); detect log:\n{}",
            std::fs::read_to_string(&detect_log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        uri.starts_with(&format!("s3://{bucket}/reports/test/")),
        "{uri}"
    );
    let key = uri.trim_start_matches(&format!("s3://{bucket}/"));
    let md = s3
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let text = String::from_utf8(md.body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
    assert!(text.contains("checkout"), "{text}");
    assert!(
        text.to_lowercase().contains("p99"),
        "the spiking feature is in the report: {text}"
    );
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let names: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert!(
        names.iter().any(|k| k.ends_with(".svg")) && names.iter().any(|k| k.ends_with(".json")),
        "{names:?}"
    );
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
