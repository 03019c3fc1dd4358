//! Smoke tests: each server of the local stack is the real thing and answers a round trip.
//! Run `e2e/stack up` first; a missing server fails the test with the command that starts it.

use helios_e2e::{StackEnv, clients, kubectl::Kubectl};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};
use std::time::Duration;

fn stack() -> StackEnv {
    match StackEnv::load() {
        Ok(env) => env,
        Err(e) => panic!("{e}"),
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

#[test]
fn kube_apiserver_applies_and_reads_back_objects() {
    let env = stack();
    let kubectl = Kubectl::new(&env).unwrap_or_else(|e| panic!("{e}"));
    let version = kubectl
        .run(&["version", "-o", "json"], None)
        .expect("kubectl runs");
    assert!(
        version.success,
        "kubectl version failed: {}",
        version.stderr
    );
    let v: serde_json::Value = serde_json::from_str(&version.stdout).expect("version json");
    let minor: u32 = v["serverVersion"]["minor"]
        .as_str()
        .and_then(|m| m.trim_end_matches('+').parse().ok())
        .expect("server minor version");
    assert!(
        minor >= 33,
        "Kubernetes 1.33+ required, server is 1.{minor}"
    );

    let ns = unique("smoke");
    let manifest = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\n  namespace: {ns}\n\
         data:\n  answer: \"42\"\n"
    );
    let applied = kubectl.apply(&manifest).expect("kubectl runs");
    assert!(applied.success, "kubectl apply failed: {}", applied.stderr);
    let got = kubectl
        .run(
            &[
                "get",
                "configmap",
                "probe",
                "-n",
                &ns,
                "-o",
                "jsonpath={.data.answer}",
            ],
            None,
        )
        .expect("kubectl runs");
    assert_eq!(got.stdout, "42", "stderr: {}", got.stderr);
    let deleted = kubectl
        .run(&["delete", "namespace", &ns, "--wait=false"], None)
        .expect("kubectl");
    assert!(deleted.success, "{}", deleted.stderr);
}

#[test]
fn kube_controller_manager_creates_replicasets() {
    let env = stack();
    let kubectl = Kubectl::new(&env).unwrap_or_else(|e| panic!("{e}"));
    let ns = unique("smoke-kcm");
    let manifest = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {ns}\n\
         spec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: web}}\n  template:\n\
         \x20   metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n\
         \x20     - name: web\n        image: example.invalid/web:1\n"
    );
    let applied = kubectl.apply(&manifest).expect("kubectl runs");
    assert!(applied.success, "kubectl apply failed: {}", applied.stderr);
    let mut found = String::new();
    for _ in 0..100 {
        let rs = kubectl
            .run(&["get", "replicasets", "-n", &ns, "-o", "name"], None)
            .expect("kubectl runs");
        found = rs.stdout;
        if !found.trim().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        found.contains("replicaset.apps/web-"),
        "kube-controller-manager did not create a ReplicaSet for the Deployment"
    );
    let deleted = kubectl
        .run(&["delete", "namespace", &ns, "--wait=false"], None)
        .expect("kubectl");
    assert!(deleted.success, "{}", deleted.stderr);
}

/// Workloads for the kwok test: a Deployment of 2, and a StatefulSet of 1 with its headless
/// Service. The image is never pulled: kwok only plays the pods' lifecycle.
fn kwok_workloads(ns: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {ns}\n\
         spec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: web}}\n  template:\n\
         \x20   metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n\
         \x20     - name: web\n        image: registry.invalid/none:1\n---\n\
         apiVersion: v1\nkind: Service\nmetadata:\n  name: db\n  namespace: {ns}\n\
         spec:\n  clusterIP: None\n  selector: {{app: db}}\n  ports:\n    - port: 5432\n---\n\
         apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\n  namespace: {ns}\n\
         spec:\n  serviceName: db\n  replicas: 1\n  selector:\n    matchLabels: {{app: db}}\n\
         \x20 template:\n    metadata:\n      labels: {{app: db}}\n    spec:\n      containers:\n\
         \x20     - name: db\n        image: registry.invalid/none:1\n"
    )
}

#[test]
fn kwok_runs_deployment_and_statefulset_pods_on_the_fake_node() {
    let env = stack();
    let kubectl = Kubectl::new(&env).unwrap_or_else(|e| panic!("{e}"));
    let node = env
        .get("KWOK_NODE")
        .unwrap_or_else(|e| panic!("{e}"))
        .to_string();
    let node_ready = kubectl
        .ok(
            &[
                "get",
                "node",
                &node,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ],
            None,
        )
        .unwrap_or_else(|e| panic!("the kwok node: {e}; is kwok up? (`e2e/stack status`)"));
    assert_eq!(node_ready, "True", "kwok node {node} is not Ready");
    let temp = kubectl
        .temp_namespace("smoke-kwok")
        .unwrap_or_else(|e| panic!("{e}"));
    let ns = temp.name.as_str();

    // kube-controller-manager's serviceaccount controller creates "default" in a new namespace.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while kubectl
        .ok(
            &["get", "serviceaccount", "default", "-n", ns, "-o", "name"],
            None,
        )
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "ServiceAccount default was not created in {ns} within 30 s \
             (is kube-controller-manager's serviceaccount controller running?)"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let applied = kubectl.apply(&kwok_workloads(ns)).expect("kubectl runs");
    assert!(applied.success, "kubectl apply failed: {}", applied.stderr);

    let field = |kind: &str, path: &str| {
        kubectl
            .ok(
                &["get", kind, "-n", ns, "-o", &format!("jsonpath={path}")],
                None,
            )
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let available = field("deployment/web", "{.status.availableReplicas}");
        let ready = field("statefulset/db", "{.status.readyReplicas}");
        if available == "2" && ready == "1" {
            break;
        }
        if std::time::Instant::now() > deadline {
            let dump = kubectl
                .run(
                    &[
                        "get",
                        "deployment,statefulset,service,pods",
                        "-n",
                        ns,
                        "-o",
                        "yaml",
                    ],
                    None,
                )
                .map(|o| format!("{}{}", o.stdout, o.stderr))
                .unwrap_or_else(|e| e.to_string());
            let events = kubectl
                .run(&["get", "events", "-n", ns], None)
                .map(|o| format!("{}{}", o.stdout, o.stderr))
                .unwrap_or_else(|e| e.to_string());
            panic!(
                "after 120 s: Deployment availableReplicas={available:?} (want 2), \
                 StatefulSet readyReplicas={ready:?} (want 1)\n{dump}\nevents:\n{events}"
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }

    let pods = kubectl
        .ok(
            &[
                "get",
                "pods",
                "-n",
                ns,
                "-o",
                "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase}{\"\\n\"}{end}",
            ],
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let pods: Vec<Vec<&str>> = pods
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(pods.len(), 3, "want 2 web pods and db-0, got {pods:?}");
    for pod in &pods {
        assert_eq!(
            pod.get(1..),
            Some(&[node.as_str(), "Running"][..]),
            "every pod must run on the kwok node: {pods:?}"
        );
    }
    assert!(pods.iter().any(|p| p.first() == Some(&"db-0")), "{pods:?}");
}

#[tokio::test]
async fn kafka_round_trips_a_message() {
    let env = stack();
    let cfg: ClientConfig = clients::kafka_config(&env).unwrap_or_else(|e| panic!("{e}"));
    let topic = unique("smoke");
    let admin: AdminClient<_> = cfg.create().expect("admin client");
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 2, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("create_topics request");
    assert!(
        created.iter().all(Result::is_ok),
        "topic creation failed: {created:?}"
    );

    let producer: FutureProducer = cfg
        .clone()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .expect("producer");
    let delivered = producer
        .send(
            FutureRecord::to(&topic).key("k").payload("hello helios"),
            Duration::from_secs(10),
        )
        .await;
    assert!(delivered.is_ok(), "produce failed: {delivered:?}");

    let consumer: StreamConsumer = cfg
        .clone()
        .set("group.id", unique("smoke-group"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let msg = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("a message within 30 s")
        .expect("consume");
    assert_eq!(msg.payload(), Some(&b"hello helios"[..]));
    assert_eq!(msg.key(), Some(&b"k"[..]));
    let _ = admin.delete_topics(&[&topic], &AdminOptions::new()).await;
}

#[tokio::test]
async fn postgres_round_trips_rows() {
    let env = stack();
    let pool = clients::postgres_pool(&env)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await
        .expect("query");
    assert!(version.starts_with(char::is_numeric), "{version}");
    // A temporary table lives in one session: use one connection for the whole round trip.
    let mut conn = pool.acquire().await.expect("a connection");
    sqlx::query("CREATE TEMP TABLE smoke_probe (id int primary key, note text not null)")
        .execute(&mut *conn)
        .await
        .expect("create table");
    sqlx::query("INSERT INTO smoke_probe VALUES ($1, $2), ($3, $4)")
        .bind(1)
        .bind("one")
        .bind(2)
        .bind("two")
        .execute(&mut *conn)
        .await
        .expect("insert");
    let notes: Vec<String> = sqlx::query_scalar("SELECT note FROM smoke_probe ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .expect("select");
    assert_eq!(notes, vec!["one".to_string(), "two".to_string()]);
    let dup = sqlx::query("INSERT INTO smoke_probe VALUES (1, 'again')")
        .execute(&mut *conn)
        .await;
    assert!(
        dup.is_err(),
        "the primary key must be enforced by a real server"
    );
}

#[tokio::test]
async fn s3_puts_and_gets_an_object() {
    let env = stack();
    let s3 = clients::s3_client(&env).unwrap_or_else(|e| panic!("{e}"));
    let bucket = unique("smoke");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    let body = b"incident report\n".to_vec();
    s3.put_object()
        .bucket(&bucket)
        .key("reports/a.md")
        .content_type("text/markdown")
        .body(body.clone().into())
        .send()
        .await
        .expect("put object");
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("reports/a.md")
        .send()
        .await
        .expect("get");
    assert_eq!(got.content_type(), Some("text/markdown"));
    let bytes = got.body.collect().await.expect("read body").into_bytes();
    assert_eq!(bytes.as_ref(), body.as_slice());
    let missing = s3
        .get_object()
        .bucket(&bucket)
        .key("reports/none.md")
        .send()
        .await;
    assert!(missing.is_err(), "a missing key must be an error");
    s3.delete_object()
        .bucket(&bucket)
        .key("reports/a.md")
        .send()
        .await
        .expect("delete");
    s3.delete_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("delete bucket");
}

#[tokio::test]
async fn lambda_emulator_invokes_the_echo_function() {
    let env = stack();
    let lambda = clients::lambda_client(&env).unwrap_or_else(|e| panic!("{e}"));
    let function = env
        .get("LAMBDA_ECHO_FUNCTION")
        .unwrap_or_else(|e| panic!("{e}"))
        .to_string();
    let payload = serde_json::json!({"probe": unique("smoke"), "n": 7});
    let out = lambda
        .invoke()
        .function_name(&function)
        .payload(serde_json::to_vec(&payload).expect("json").into())
        .send()
        .await
        .expect("invoke");
    assert_eq!(out.status_code(), 200);
    assert!(
        out.function_error().is_none(),
        "function error: {:?}",
        out.function_error()
    );
    let body = out.payload().expect("a response payload");
    let echoed: serde_json::Value = serde_json::from_slice(body.as_ref()).expect("json response");
    assert_eq!(
        echoed["echo"], payload,
        "the emulator must run the bootstrap and return its answer"
    );
}
