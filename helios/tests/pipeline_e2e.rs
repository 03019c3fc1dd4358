//! End to end on the real stack, as a platform team would run it: `kubectl apply` a pipeline and
//! a detector; `helios operator` creates the topics and workloads (kwok makes their pods Ready);
//! the ingest and detect pods run as local processes **from the pod templates the operator
//! wrote** (no container runtime here); synthetic traffic with an incident (latency spike and
//! error burst in checkout) goes through the ingest endpoint; the anomaly lands in PostgreSQL
//! and on the anomalies topic, the report hook writes its report to S3, and both kinds say
//! `Ready=True`. Deleting the pipeline removes its topics (deletionPolicy Delete) and children.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use helios_crds::{AnomalyPipeline, Detector};
use helios_e2e::kubectl::unique_suffix;
use helios_e2e::{clients, podrun};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// A local process; killed on drop.
struct Proc {
    child: Child,
    log: std::path::PathBuf,
}

impl Proc {
    fn spawn(mut cmd: Command, name: &str) -> Self {
        let log = std::env::temp_dir().join(format!("helios-e2e-{name}-{}.log", unique_suffix()));
        cmd.stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        Self {
            child: cmd.spawn().unwrap(),
            log,
        }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TOKEN: &str = "e2e-token-0123456789";
/// Simulated seconds of traffic; the incident starts at `INCIDENT_AT` for `INCIDENT_FOR`.
const TRAFFIC_SECS: i64 = 300;
const INCIDENT_AT: i64 = 220;
const INCIDENT_FOR: i64 = 40;

fn manifests(ns: &str, env: &helios_e2e::StackEnv, bucket: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: shop-token, namespace: {ns}}}
stringData: {{token: {TOKEN}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: shop-postgres, namespace: {ns}}}
stringData: {{url: "{db}"}}
---
apiVersion: helios.dev/v1alpha1
kind: AnomalyPipeline
metadata: {{name: shop, namespace: {ns}}}
spec:
  kafka:
    bootstrapServers: "{bootstrap}"
    topics:
      events: {{partitions: 3, replicationFactor: 1, retention: 24h}}
      anomalies: {{partitions: 1, replicationFactor: 1}}
    deletionPolicy: Delete
  ingestion:
    replicas: 1
    authTokenSecretRef: {{name: shop-token, key: token}}
  storage:
    postgresSecretRef: {{name: shop-postgres, key: url}}
  reporting:
    lambda: {{functionName: helios-report, endpoint: "{lambda}"}}
    s3: {{bucket: {bucket}, prefix: incidents, endpoint: "{s3}"}}
    minSeverity: Info
    cooldown: 1m
---
apiVersion: helios.dev/v1alpha1
kind: Detector
metadata: {{name: checkout, namespace: {ns}}}
spec:
  pipelineRef: {{name: shop}}
  selector: {{services: [checkout]}}
  partitionBy: [service]
  window: {{size: 5s, allowedLateness: 0s}}
  features: [error_rate, p99_latency]
  model: {{trees: 100, seed: 7}}
  training: {{warmupWindows: 20, historyWindows: 500, retrainInterval: 1h}}
  alerting: {{mode: Enforce, minConsecutiveWindows: 2, cooldown: 1m}}
"#,
        db = env.get("DATABASE_URL").unwrap(),
        bootstrap = env.get("KAFKA_BOOTSTRAP").unwrap(),
        lambda = env.get("LAMBDA_ENDPOINT").unwrap(),
        s3 = env.get("S3_ENDPOINT").unwrap(),
    )
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_in_anomaly_reported_and_ready_end_to_end() {
    let (env, kubectl) = stack();
    let ns = kubectl.temp_namespace("e2e").unwrap();
    let client = kube_client(&env).await;
    let helios = std::path::Path::new(env!("CARGO_BIN_EXE_helios"));
    let aws: Vec<(&str, String)> = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"]
        .iter()
        .map(|k| (*k, env.get(k).unwrap().to_string()))
        .chain([("AWS_EC2_METADATA_DISABLED", "true".to_string())])
        .collect();

    // The report hook is a Lambda function, not a pod: serve it from the emulator.
    let bucket = format!("e2e-reports-{}", unique_suffix());
    let s3 = clients::s3_client(&env).unwrap();
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let mut report = Command::new(helios);
    report
        .arg("report")
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!(
                "http://{}/helios-report",
                env.get("LAMBDA_RUNTIME_API_BASE").unwrap()
            ),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "helios-report")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("HELIOS_REPORT_S3_ENDPOINT", env.get("S3_ENDPOINT").unwrap())
        .envs(aws.iter().map(|(k, v)| (*k, v.as_str())));
    let report = Proc::spawn(report, "report");

    let mut op = start_operator(&env, &ns.name);
    kubectl
        .ok(
            &["apply", "-f", "-"],
            Some(&manifests(&ns.name, &env, &bucket)),
        )
        .unwrap();
    let pipelines: Api<AnomalyPipeline> = Api::namespaced(client.clone(), &ns.name);
    let detectors: Api<Detector> = Api::namespaced(client.clone(), &ns.name);
    pipeline_condition(&mut op, &pipelines, "shop", "Ready", "True", None).await;
    detector_condition(&mut op, &detectors, "checkout", "Ready", "True", None).await;

    // Run the pods the operator rendered.
    let ingest_pod = podrun::resolve(
        &kubectl,
        &ns.name,
        "deployment",
        "shop-ingest",
        "shop-ingest-0",
    )
    .unwrap();
    let ingest_addr = *ingest_pod
        .listen
        .get("HELIOS_INGEST_LISTEN")
        .expect("ingest listen env");
    let ingest = Proc::spawn(ingest_pod.command(helios, &[]), "ingest");
    let detect_pod = podrun::resolve(
        &kubectl,
        &ns.name,
        "statefulset",
        "checkout-detect",
        "checkout-detect-0",
    )
    .unwrap();
    let mut extra: Vec<(&str, &str)> = aws.iter().map(|(k, v)| (*k, v.as_str())).collect();
    extra.push(("KUBECONFIG", env.get("KUBECONFIG").unwrap()));
    extra.push(("RUST_LOG", "info"));
    let detect = Proc::spawn(detect_pod.command(helios, &extra), "detect");

    let http = reqwest::Client::new();
    let ready_url = format!("http://{ingest_addr}/readyz");
    eventually(&mut op, "the ingest process is ready", || async {
        match http.get(&ready_url).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            other => Err(format!("{other:?}; ingest log:\n{}", ingest.tail())),
        }
    })
    .await;

    // Normal traffic, then a latency spike and an error burst in checkout.
    let start_ms = (now_ms() - TRAFFIC_SECS * 1000 - 30_000) / 1000 * 1000;
    let incident_start = start_ms + INCIDENT_AT * 1000;
    let incident_end = incident_start + INCIDENT_FOR * 1000;
    let out = Command::new(helios)
        .arg("traffic")
        .args([
            "--url",
            &format!("http://{ingest_addr}/v1/events"),
            "--token",
            TOKEN,
        ])
        .args([
            "--duration-secs",
            &TRAFFIC_SECS.to_string(),
            "--speedup",
            "0",
        ])
        .args([
            "--start-ms",
            &start_ms.to_string(),
            "--seed",
            "7",
            "--day-secs",
            "86400",
        ])
        .args([
            "--incident",
            &format!("latency:checkout:at={INCIDENT_AT}:for={INCIDENT_FOR}:x=8"),
        ])
        .args([
            "--incident",
            &format!("errors:checkout:at={INCIDENT_AT}:for={INCIDENT_FOR}:x=0.3"),
        ])
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "traffic failed: {}\ningest log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        ingest.tail()
    );

    // The anomaly row, with the report's URI once the hook answered.
    let detector_id = format!("{}/checkout", ns.name);
    let pool = clients::postgres_pool(&env).await.unwrap();
    let rows: Vec<(i64, Option<String>)> = {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let rows: Result<Vec<(i64, Option<String>)>, sqlx::Error> = sqlx::query_as(
                "SELECT (extract(epoch from window_start) * 1000)::bigint, report_uri \
                 FROM helios.anomalies WHERE detector = $1 ORDER BY window_start",
            )
            .bind(&detector_id)
            .fetch_all(&pool)
            .await;
            if let Ok(rows) = &rows
                && rows.iter().any(|(_, uri)| uri.is_some())
            {
                break rows.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no reported anomaly within 180 s (last: {rows:?})\ndetect log:\n{}\nreport log:\n{}",
                detect.tail(),
                report.tail()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let in_incident = |t: i64| t >= incident_start - 5_000 && t < incident_end + 5_000;
    assert!(
        rows.iter().any(|(t, _)| in_incident(*t)),
        "an anomaly inside the incident [{incident_start}, {incident_end}): {rows:?}"
    );
    let at = |t: i64| (t - start_ms) / 1000;
    let false_alarms: Vec<i64> = rows
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| !in_incident(*t))
        .map(at)
        .collect();
    assert!(
        false_alarms.is_empty(),
        "anomalies outside the incident at {INCIDENT_AT}s..{}s (false pages) at simulated seconds {false_alarms:?}; all: {:?}",
        INCIDENT_AT + INCIDENT_FOR,
        rows.iter().map(|(t, _)| at(*t)).collect::<Vec<_>>()
    );

    // The report object exists where the row says.
    let uri = rows.iter().find_map(|(_, u)| u.clone()).unwrap();
    let prefix = format!("s3://{bucket}/");
    assert!(uri.starts_with(&format!("{prefix}incidents/")), "{uri}");
    let md = s3
        .get_object()
        .bucket(&bucket)
        .key(uri.trim_start_matches(&prefix))
        .send()
        .await
        .unwrap();
    let text = String::from_utf8(md.body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
    assert!(text.contains("checkout"), "{text}");

    // The alert is on the anomalies topic.
    let anomalies_topic = format!("helios.{}.shop.anomalies", ns.name);
    let consumer: StreamConsumer = clients::kafka_config(&env)
        .unwrap()
        .set("group.id", format!("e2e-{}", unique_suffix()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&anomalies_topic]).unwrap();
    let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("a message on the anomalies topic within 30 s")
        .unwrap();
    let payload: serde_json::Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
    assert!(payload.to_string().contains("checkout"), "{payload}");

    // The detect worker wrote its runtime status: trained, data flowing, and the last anomaly
    // with the report's URI.
    detector_condition(
        &mut op,
        &detectors,
        "checkout",
        "ModelTrained",
        "True",
        None,
    )
    .await;
    let last = eventually(&mut op, "lastAnomaly with the report URI", || async {
        let d = detectors.get("checkout").await.map_err(|e| e.to_string())?;
        let last = d.status.and_then(|s| s.last_anomaly);
        match &last {
            Some(l) if l.report_uri.is_some() => Ok(l.clone()),
            _ => Err(format!("{last:?}")),
        }
    })
    .await;
    assert_eq!(last.key.as_deref(), Some("checkout"));
    assert!(
        last.report_uri
            .as_deref()
            .is_some_and(|u| rows.iter().any(|(_, r)| r.as_deref() == Some(u))),
        "lastAnomaly.reportUri {:?} is one of the stored report URIs",
        last.report_uri
    );
    assert!(!last.top_features.is_empty(), "{last:?}");
    let d = detectors.get("checkout").await.unwrap();
    let conditions = d.status.map(|s| s.conditions).unwrap_or_default();
    assert!(
        conditions.iter().any(|c| c.type_ == "AnomalyActive"),
        "AnomalyActive is reported: {conditions:?}"
    );

    // Both kinds still say Ready (runtime anomalies never flip Ready).
    pipeline_condition(&mut op, &pipelines, "shop", "Ready", "True", None).await;
    detector_condition(&mut op, &detectors, "checkout", "Ready", "True", None).await;

    // Delete the pipeline: topics go (deletionPolicy Delete), children are collected, and the
    // detector says why it cannot run.
    pipelines.delete("shop", &Default::default()).await.unwrap();
    let kafka = admin(&env);
    let events_topic = format!("helios.{}.shop.events", ns.name);
    eventually(&mut op, "topics deleted with the pipeline", || async {
        match (
            partitions(&kafka, &events_topic),
            partitions(&kafka, &anomalies_topic),
        ) {
            (None, None) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    eventually(&mut op, "ingest Deployment collected", || async {
        match deployments.get_opt("shop-ingest").await {
            Ok(None) => Ok(()),
            other => Err(format!("{:?}", other.map(|d| d.is_some()))),
        }
    })
    .await;
    detector_condition(
        &mut op,
        &detectors,
        "checkout",
        "Ready",
        "False",
        Some("PipelineNotFound"),
    )
    .await;
    drop(detect);
}
