//! Operator benchmark (prints figures, asserts nothing about speed): `helios operator` against
//! the real local stack (kube-apiserver + controller-manager + scheduler + kwok, Kafka), in one
//! run:
//!  1. apply → Ready latency: pipelines applied one after another with `kubectl apply`, each
//!     timed from just before `kubectl` starts to the moment a watch sees `Ready=True` with
//!     `observedGeneration` equal to the generation;
//!  2. cold start: with the operator stopped, N pipelines and D detectors per pipeline are
//!     created (kube client, in one namespace); then the operator starts and the time until all
//!     N pipelines are Ready (which needs their detectors Ready) is measured, with the
//!     operator's peak (VmHWM) and final (VmRSS) resident memory; then, with nothing changing,
//!     the API server's requests on the operator's resources and the operator's external probes
//!     are counted over a window. Extra kwok fake nodes are added for the pods (one per 100
//!     pods) and deleted afterwards;
//!  3. everything is deleted again (the pipelines use `deletionPolicy: Delete`, so the operator
//!     deletes the topics); leftover topics of the bench namespaces are deleted directly.
//!
//! Run: `e2e/stack up && cargo bench -p helios --bench operator`
//! (env: HELIOS_BENCH_PIPELINES (default 1000), HELIOS_BENCH_DETECTORS_PER_PIPELINE (default 1),
//! HELIOS_BENCH_STEADY_SECS (default 300), HELIOS_BENCH_LATENCY_SAMPLES (default 20),
//! HELIOS_BENCH_COLD_TIMEOUT_SECS (default 60 + 0.6 s per pipeline), HELIOS_BENCH_RUST_LOG
//! (the operator's RUST_LOG, default `info`)).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::StreamExt;
use helios_crds::{AnomalyPipeline, Detector};
use helios_e2e::kubectl::{Kubectl, unique_suffix};
use helios_e2e::{StackEnv, clients};
use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::api::networking::v1::{IPAddress, ServiceCIDR};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch};
use kube::{Client, ResourceExt};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Pods one extra fake node takes (kwok nodes allow 110; some headroom).
const PODS_PER_NODE: usize = 100;
/// Prefix of the extra fake nodes.
const NODE_PREFIX: &str = "helios-bench-kwok-";

fn var(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

// ---------------------------------------------------------------------------------------------
// The machine.

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU", str::trim)
        .to_string();
    format!(
        "{cores} cores ({model}), {:.1} GiB RAM",
        mem_kib as f64 / 1024.0 / 1024.0
    )
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// The operator process.

struct Operator {
    child: Child,
    log: PathBuf,
    metrics_port: u16,
}

impl Operator {
    fn start(env: &StackEnv, namespace: &str) -> Self {
        let log = std::env::temp_dir().join(format!("helios-bench-operator-{namespace}.log"));
        let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_helios"));
        cmd.arg("operator")
            .arg("--kubeconfig")
            .arg(env.get("KUBECONFIG").unwrap())
            .args(["--namespace", namespace])
            .args(["--leader-election-namespace", namespace])
            .args(["--identity", &format!("bench-{namespace}")])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .args(["--worker-image", "helios:e2e"])
            .env(
                "RUST_LOG",
                std::env::var("HELIOS_BENCH_RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for k in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
            cmd.env(k, env.get(k).unwrap());
        }
        Self {
            child: cmd.spawn().unwrap(),
            log,
            metrics_port,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// (VmRSS, VmHWM) in KiB.
    fn memory(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// CPU time (user + system) the process used so far.
    fn cpu_time(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the command name (which is in parentheses): utime is the 14th field.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields
            .get(11..13)
            .map(|f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
            .unwrap_or(0);
        // USER_HZ is 100 on Linux.
        Duration::from_millis(ticks * 10)
    }

    async fn metrics(&self) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.metrics_port);
        match reqwest::get(&url).await {
            Ok(resp) => resp.text().await.unwrap_or_default(),
            Err(e) => format!("# metrics unavailable: {e}"),
        }
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reconcile counters and duration of the operator's `/metrics`.
fn metrics_summary(text: &str) -> String {
    let value = |prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let kind = "{kind=\"AnomalyPipeline\"}";
    let count = value(&format!(
        "helios_operator_reconcile_duration_seconds_count{kind}"
    ));
    let sum = value(&format!(
        "helios_operator_reconcile_duration_seconds_sum{kind}"
    ));
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("helios_operator_reconcile_errors_total"))
        .collect();
    format!(
        "{count} pipeline reconciles completed (mean {:.0} ms, total {sum:.1} s of reconcile \
         time); errors: {}",
        if count > 0.0 {
            sum / count * 1000.0
        } else {
            f64::NAN
        },
        if errors.is_empty() {
            "none".to_string()
        } else {
            errors.join(", ")
        }
    )
}

// ---------------------------------------------------------------------------------------------
// Watching pipelines.

/// When a watch first saw a pipeline's status at its current generation, with TopicsReady and
/// with Ready true.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    observed: Option<Instant>,
    topics: Option<Instant>,
    ready: Option<Instant>,
}

#[derive(Clone)]
struct Tracker {
    seen: Arc<Mutex<HashMap<String, Seen>>>,
    last: Arc<Mutex<HashMap<String, Vec<Condition>>>>,
    synced: Arc<AtomicBool>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

impl Tracker {
    async fn start(api: Api<AnomalyPipeline>) -> Self {
        let seen = Arc::new(Mutex::new(HashMap::<String, Seen>::new()));
        let last = Arc::new(Mutex::new(HashMap::new()));
        let synced = Arc::new(AtomicBool::new(false));
        let (s, l, y) = (Arc::clone(&seen), Arc::clone(&last), Arc::clone(&synced));
        let task = tokio::spawn(async move {
            let mut stream = watch(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(event) = stream.next().await {
                let p = match event {
                    Ok(Event::Apply(p) | Event::InitApply(p)) => p,
                    Ok(Event::InitDone) => {
                        y.store(true, Ordering::SeqCst);
                        continue;
                    }
                    _ => continue,
                };
                let now = Instant::now();
                let Some(status) = &p.status else { continue };
                if p.metadata.generation.is_none()
                    || status.observed_generation != p.metadata.generation
                {
                    continue;
                }
                l.lock()
                    .unwrap()
                    .insert(p.name_any(), status.conditions.clone());
                let mut map = s.lock().unwrap();
                let e = map.entry(p.name_any()).or_default();
                e.observed.get_or_insert(now);
                if is_true(&status.conditions, "TopicsReady") {
                    e.topics.get_or_insert(now);
                }
                if is_true(&status.conditions, "Ready") {
                    e.ready.get_or_insert(now);
                }
            }
        });
        let tracker = Self {
            seen,
            last,
            synced,
            task: Arc::new(task),
        };
        while !tracker.synced.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracker
    }

    fn get(&self, name: &str) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .get(name)
            .copied()
            .unwrap_or_default()
    }

    fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().values().copied().collect()
    }

    /// (status observed, TopicsReady, Ready) counts.
    fn counts(&self) -> (usize, usize, usize) {
        let all = self.all();
        (
            all.iter().filter(|s| s.observed.is_some()).count(),
            all.iter().filter(|s| s.topics.is_some()).count(),
            all.iter().filter(|s| s.ready.is_some()).count(),
        )
    }

    /// For pipelines not Ready: how many have each (condition, reason) that is not True.
    fn not_ready_reasons(&self) -> BTreeMap<String, usize> {
        let seen = self.seen.lock().unwrap();
        let last = self.last.lock().unwrap();
        let mut out = BTreeMap::new();
        for (name, conditions) in last.iter() {
            if seen.get(name).is_some_and(|s| s.ready.is_some()) {
                continue;
            }
            for c in conditions.iter().filter(|c| c.status != "True") {
                *out.entry(format!("{}={} ({})", c.type_, c.status, c.reason))
                    .or_insert(0) += 1;
            }
        }
        out
    }

    fn stop(&self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// Objects.

fn pipeline_json(name: &str, bootstrap: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "helios.dev/v1alpha1",
        "kind": "AnomalyPipeline",
        "metadata": { "name": name },
        "spec": {
            "kafka": {
                "bootstrapServers": bootstrap,
                "topics": {
                    "events": { "partitions": 1, "replicationFactor": 1 },
                    "anomalies": { "partitions": 1, "replicationFactor": 1 }
                },
                "deletionPolicy": "Delete"
            },
            "ingestion": { "replicas": 1 }
        }
    })
}

fn detector_json(name: &str, pipeline: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "helios.dev/v1alpha1",
        "kind": "Detector",
        "metadata": { "name": name },
        "spec": {
            "pipelineRef": { "name": pipeline },
            "window": { "size": "1m" },
            "features": ["event_count", "error_rate", "p99_latency"]
        }
    })
}

/// `apiserver_request_total` summed by (verb, resource) over the resources the operator reads or
/// writes, from the API server's own metrics.
async fn apiserver_requests(client: &Client) -> BTreeMap<(String, String), f64> {
    const RESOURCES: &[&str] = &[
        "anomalypipelines",
        "detectors",
        "deployments",
        "statefulsets",
        "services",
        "configmaps",
        "poddisruptionbudgets",
        "serviceaccounts",
        "roles",
        "rolebindings",
        "events",
        "secrets",
    ];
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(request).await.unwrap_or_default();
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let label = |name: &str| -> Option<String> {
            let at = line.find(&format!("{name}=\""))? + name.len() + 2;
            Some(line[at..].split('"').next()?.to_string())
        };
        let (Some(verb), Some(resource)) = (label("verb"), label("resource")) else {
            continue;
        };
        if !RESOURCES.contains(&resource.as_str()) {
            continue;
        }
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *out.entry((verb, resource)).or_insert(0.0) += value;
    }
    out
}

/// The operator's `external_probes_total` by outcome.
fn probes(metrics: &str, outcome: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("helios_operator_external_probes_total")
                && l.contains(&format!("outcome=\"{outcome}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn kube_client(env: &StackEnv) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(env.get("KUBECONFIG").unwrap()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

async fn create_namespace(client: &Client, prefix: &str) -> String {
    let name = format!("{prefix}-{}", unique_suffix());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({ "metadata": { "name": name } })).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    name
}

/// Poll `probe` every `every` until true or `limit` passes; whether it became true.
async fn wait_until<F, Fut>(limit: Duration, every: Duration, mut probe: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if probe().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Extra kwok nodes.

fn node_json(name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                "kwok.x-k8s.io/node": "fake",
                "node.alpha.kubernetes.io/ttl": "0"
            },
            "labels": {
                "type": "kwok",
                "helios.dev/bench": "operator",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name
            }
        },
        "spec": {},
        "status": {
            "allocatable": { "cpu": "32", "memory": "256Gi", "pods": "110" },
            "capacity": { "cpu": "32", "memory": "256Gi", "pods": "110" }
        }
    })
}

fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Create `count` fake nodes, wait until kwok has them Ready, and lift the not-ready taint the
/// API server's admission put on them (the node lifecycle controller is off in the stack).
async fn add_nodes(client: &Client, count: usize) -> Vec<String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let names: Vec<String> = (0..count).map(|i| format!("{NODE_PREFIX}{i}")).collect();
    for name in &names {
        let node: Node = serde_json::from_value(node_json(name)).unwrap();
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => panic!("creating node {name}: {e}"),
        }
    }
    for name in &names {
        let ok = wait_until(Duration::from_secs(60), Duration::from_millis(200), || {
            let nodes = nodes.clone();
            async move {
                nodes
                    .get_opt(name)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|n| node_ready(&n))
            }
        })
        .await;
        assert!(ok, "kwok did not mark node {name} Ready within 60 s");
        let node = nodes.get(name).await.unwrap();
        let taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        if taints
            .iter()
            .any(|t| t.key == "node.kubernetes.io/not-ready")
        {
            let keep: Vec<_> = taints
                .into_iter()
                .filter(|t| t.key != "node.kubernetes.io/not-ready")
                .collect();
            nodes
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({ "spec": { "taints": keep } })),
                )
                .await
                .unwrap();
        }
    }
    names
}

async fn delete_nodes(client: &Client, names: &[String]) {
    let nodes: Api<Node> = Api::all(client.clone());
    for name in names {
        match nodes.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => eprintln!("deleting node {name}: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cleanup.

fn admin(env: &StackEnv) -> AdminClient<DefaultClientContext> {
    clients::kafka_config(env).unwrap().create().unwrap()
}

/// Topics whose name starts with `helios.<namespace>.`.
fn topics_of(admin: &AdminClient<DefaultClientContext>, namespace: &str) -> Vec<String> {
    let prefix = format!("helios.{namespace}.");
    admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(30))
        .map(|md| {
            md.topics()
                .iter()
                .map(|t| t.name().to_string())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Delete every pipeline of the namespace through the running operator (it deletes the topics
/// and releases the finalizer); fall back to removing the finalizers, then delete leftover
/// topics and the namespace. Returns how long the operator took to finalize them all.
async fn clean_up(
    env: &StackEnv,
    client: &Client,
    namespace: &str,
    operator: Option<Operator>,
    expected: usize,
) -> Option<Duration> {
    let api: Api<AnomalyPipeline> = Api::namespaced(client.clone(), namespace);
    let started = Instant::now();
    let _ = api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await;
    let limit = Duration::from_secs(120 + expected as u64 / 2);
    // A collection delete of many objects can stop part-way (the API server's request timeout):
    // what is left without a deletion timestamp is deleted again on each poll.
    let gone = wait_until(limit, Duration::from_millis(500), || {
        let api = api.clone();
        async move {
            let Ok(left) = api.list_metadata(&ListParams::default()).await else {
                return false;
            };
            for p in left
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
            {
                let _ = api.delete(&p.name_any(), &DeleteParams::default()).await;
            }
            left.items.is_empty()
        }
    })
    .await;
    let finalized = gone.then(|| started.elapsed());
    if !gone {
        eprintln!(
            "the operator did not finalize every pipeline of {namespace} in time; removing the \
             finalizers"
        );
        for p in api
            .list_metadata(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            let _ = api
                .patch_metadata(
                    &p.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({ "metadata": { "finalizers": null } })),
                )
                .await;
        }
    }
    if let Some(op) = operator {
        op.stop();
    }
    let kafka = admin(env);
    let left = topics_of(&kafka, namespace);
    if !left.is_empty() {
        eprintln!("deleting {} leftover topics of {namespace}", left.len());
        for chunk in left.chunks(100) {
            let names: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let _ = kafka.delete_topics(&names, &AdminOptions::new()).await;
        }
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(namespace, &DeleteParams::default()).await;
    let ns_gone = wait_until(Duration::from_secs(300), Duration::from_secs(1), || {
        let namespaces = namespaces.clone();
        async move { matches!(namespaces.get_opt(namespace).await, Ok(None)) }
    })
    .await;
    if !ns_gone {
        eprintln!("namespace {namespace} is still terminating after 300 s");
    }
    finalized
}

// ---------------------------------------------------------------------------------------------
// Phase 1: apply → Ready.

struct Latency {
    apply: Vec<f64>,
    observed: Vec<f64>,
    topics: Vec<f64>,
    ready: Vec<f64>,
    timeouts: usize,
    finalize_all: Option<Duration>,
}

async fn latency_phase(
    env: &StackEnv,
    kubectl: &Kubectl,
    client: &Client,
    samples: usize,
) -> Latency {
    let namespace = create_namespace(client, "bench-op-lat").await;
    let api: Api<AnomalyPipeline> = Api::namespaced(client.clone(), &namespace);
    let tracker = Tracker::start(api.clone()).await;
    let operator = Operator::start(env, &namespace);
    let bootstrap = env.get("KAFKA_BOOTSTRAP").unwrap();
    let apply = |name: &str| {
        let manifest = serde_json::to_string(&pipeline_json(name, bootstrap)).unwrap();
        kubectl
            .ok(&["apply", "-n", &namespace, "-f", "-"], Some(&manifest))
            .unwrap_or_else(|e| panic!("{e}"));
    };

    // Warm-up (not counted): the operator takes the Lease and syncs its watches.
    let warm = Instant::now();
    apply("warmup");
    let ok = wait_until(Duration::from_secs(120), Duration::from_millis(10), || {
        let t = tracker.clone();
        async move { t.get("warmup").ready.is_some() }
    })
    .await;
    assert!(
        ok,
        "the warm-up pipeline did not become Ready in 120 s; operator log:\n{}",
        operator.log_tail(40)
    );
    println!(
        "  warm-up pipeline (operator start, Lease, first apply): Ready after {:.2} s",
        secs(warm.elapsed())
    );

    let mut out = Latency {
        apply: Vec::new(),
        observed: Vec::new(),
        topics: Vec::new(),
        ready: Vec::new(),
        timeouts: 0,
        finalize_all: None,
    };
    for i in 0..samples {
        let name = format!("lat-{i}");
        let t0 = Instant::now();
        apply(&name);
        out.apply.push(secs(t0.elapsed()));
        let ok = wait_until(Duration::from_secs(60), Duration::from_millis(5), || {
            let t = tracker.clone();
            let name = name.clone();
            async move { t.get(&name).ready.is_some() }
        })
        .await;
        let seen = tracker.get(&name);
        if !ok {
            out.timeouts += 1;
            eprintln!("  {name}: not Ready within 60 s");
            continue;
        }
        let since = |t: Option<Instant>| t.map_or(f64::NAN, |t| secs(t.duration_since(t0)));
        out.observed.push(since(seen.observed));
        out.topics.push(since(seen.topics));
        out.ready.push(since(seen.ready));
        println!(
            "  {name}: kubectl apply {:.3} s, first status {:.3} s, TopicsReady {:.3} s, \
             Ready {:.3} s",
            out.apply[i],
            since(seen.observed),
            since(seen.topics),
            since(seen.ready)
        );
    }
    tracker.stop();
    out.finalize_all = clean_up(env, client, &namespace, Some(operator), samples + 1).await;
    out
}

/// ClusterIPs still free in the cluster's service ranges (every pipeline's ingest Service takes
/// one), with the ranges; `None` when the ServiceCIDR API cannot tell.
async fn free_service_ips(client: &Client) -> Option<(u64, String)> {
    let cidrs = Api::<ServiceCIDR>::all(client.clone())
        .list(&ListParams::default())
        .await
        .ok()?;
    let ranges: Vec<String> = cidrs
        .items
        .iter()
        .filter_map(|c| c.spec.as_ref()?.cidrs.clone())
        .flatten()
        .filter(|c| !c.contains(':'))
        .collect();
    let size: u64 = ranges
        .iter()
        .filter_map(|c| c.split_once('/')?.1.parse::<u32>().ok())
        .map(|len| (1u64 << (32 - len.min(32))).saturating_sub(2))
        .sum();
    if ranges.is_empty() {
        return None;
    }
    let used = Api::<IPAddress>::all(client.clone())
        .list_metadata(&ListParams::default())
        .await
        .ok()?
        .items
        .len() as u64;
    Some((size.saturating_sub(used), ranges.join(",")))
}

/// The most frequent reconcile errors in the operator's log.
fn top_errors(log: &std::path::Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for line in text.lines().filter(|l| l.contains("reconcile failed")) {
        let Some((_, error)) = line.split_once("error=") else {
            continue;
        };
        // Strip ANSI colours and make object names generic.
        let mut clean = String::new();
        let mut chars = error.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for d in chars.by_ref() {
                    if d == 'm' {
                        break;
                    }
                }
            } else {
                clean.push(c);
            }
        }
        let clean: String = clean
            .split(' ')
            .map(|w| if w.starts_with("cold-") { "cold-N" } else { w })
            .take_while(|w| !w.starts_with("retry_in"))
            .collect::<Vec<_>>()
            .join(" ");
        *counts.entry(clean.chars().take(200).collect()).or_insert(0) += 1;
    }
    let mut top: Vec<(usize, String)> = counts.into_iter().map(|(k, v)| (v, k)).collect();
    top.sort_by_key(|t| std::cmp::Reverse(t.0));
    top.truncate(3);
    top
}

// ---------------------------------------------------------------------------------------------
// Phase 2: cold start.

struct ColdStart {
    pipelines: usize,
    detectors: usize,
    steady: Option<Steady>,
    nodes: usize,
    create: Duration,
    first_status_all: Option<Duration>,
    topics_all: Option<Duration>,
    ready_all: Option<Duration>,
    ready_count: usize,
    ready_p50: f64,
    ready_p95: f64,
    peak_rss_kib: u64,
    final_rss_kib: u64,
    cpu: Duration,
    metrics: String,
    finalize_all: Option<Duration>,
}

async fn cold_start_phase(env: &StackEnv, client: &Client, n: usize) -> ColdStart {
    if let Some((free, ranges)) = free_service_ips(client).await {
        println!("  {free} ClusterIPs free in the service range {ranges}");
        if (free as usize) < n {
            println!(
                "  WARNING: every pipeline's ingest Service needs a ClusterIP; only {free} are \
                 free, so at most ~{free} of {n} pipelines can become Ready on this stack"
            );
        }
    }
    let per_pipeline = var("HELIOS_BENCH_DETECTORS_PER_PIPELINE", 1) as usize;
    let extra_nodes = (n * (1 + per_pipeline)).div_ceil(PODS_PER_NODE);
    let t = Instant::now();
    let nodes = add_nodes(client, extra_nodes).await;
    println!(
        "  {} extra kwok nodes Ready and untainted in {:.1} s",
        nodes.len(),
        secs(t.elapsed())
    );
    let namespace = create_namespace(client, "bench-op-cold").await;
    let api: Api<AnomalyPipeline> = Api::namespaced(client.clone(), &namespace);
    let bootstrap = env.get("KAFKA_BOOTSTRAP").unwrap().to_string();

    // Create the pipelines with the operator stopped.
    let t = Instant::now();
    let results: Vec<Result<AnomalyPipeline, kube::Error>> = futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let p: AnomalyPipeline =
                serde_json::from_value(pipeline_json(&format!("cold-{i:04}"), &bootstrap)).unwrap();
            async move { api.create(&PostParams::default(), &p).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let create = t.elapsed();
    let failed = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(
        failed,
        0,
        "creating pipelines failed: {:?}",
        results.iter().find(|r| r.is_err())
    );
    println!(
        "  created {n} pipelines (operator stopped) in {:.1} s ({:.0}/s)",
        secs(create),
        n as f64 / secs(create)
    );
    let detectors: Api<Detector> = Api::namespaced(client.clone(), &namespace);
    let made: Vec<Result<Detector, kube::Error>> = futures::stream::iter(0..n * per_pipeline)
        .map(|k| {
            let api = detectors.clone();
            let (i, j) = (k / per_pipeline.max(1), k % per_pipeline.max(1));
            let d: Detector = serde_json::from_value(detector_json(
                &format!("cold-{i:04}-d{j}"),
                &format!("cold-{i:04}"),
            ))
            .unwrap();
            async move { api.create(&PostParams::default(), &d).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(
        made.iter().all(Result::is_ok),
        "creating detectors failed: {:?}",
        made.iter().find(|r| r.is_err())
    );
    println!(
        "  created {} detectors ({per_pipeline} per pipeline; a pipeline is Ready only when its \
         detectors are)",
        made.len()
    );

    let tracker = Tracker::start(api.clone()).await;
    let limit = Duration::from_secs(var(
        "HELIOS_BENCH_COLD_TIMEOUT_SECS",
        60 + (n as u64 * 6).div_ceil(10),
    ));
    let t0 = Instant::now();
    let mut operator = Operator::start(env, &namespace);
    let mut first_status_all = None;
    let mut topics_all = None;
    let mut ready_all = None;
    let mut next_report = Duration::from_secs(10);
    let mut peak_rss = 0;
    let mut last_progress = (Instant::now(), (0, 0, 0));
    let stall = Duration::from_secs(90);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let elapsed = t0.elapsed();
        let (observed, topics, ready) = tracker.counts();
        let (rss, hwm) = operator.memory();
        peak_rss = peak_rss.max(hwm);
        if observed >= n && first_status_all.is_none() {
            first_status_all = Some(elapsed);
        }
        if topics >= n && topics_all.is_none() {
            topics_all = Some(elapsed);
        }
        if ready >= n {
            ready_all = Some(elapsed);
            break;
        }
        if elapsed >= next_report {
            println!(
                "  t={:>5.0} s: status written {observed}/{n}, TopicsReady {topics}/{n}, Ready \
                 {ready}/{n}, operator RSS {:.1} MiB (peak {:.1} MiB), CPU {:.1} s, load {}",
                secs(elapsed),
                rss as f64 / 1024.0,
                hwm as f64 / 1024.0,
                secs(operator.cpu_time()),
                loadavg()
            );
            next_report += Duration::from_secs(10);
        }
        if let Some(status) = operator.exited() {
            eprintln!(
                "  the operator exited ({status}):\n{}",
                operator.log_tail(40)
            );
            break;
        }
        if (observed, topics, ready) != last_progress.1 {
            last_progress = (Instant::now(), (observed, topics, ready));
        } else if last_progress.0.elapsed() >= stall {
            eprintln!(
                "  no progress for {stall:?} (Ready {ready}/{n}); giving up. Most frequent \
                 reconcile errors: {:?}",
                top_errors(&operator.log)
            );
            break;
        }
        if elapsed >= limit {
            eprintln!(
                "  not all Ready within {limit:?}; not-ready reasons: {:?}; most frequent \
                 reconcile errors: {:?}",
                tracker.not_ready_reasons(),
                top_errors(&operator.log)
            );
            break;
        }
    }
    let (final_rss, hwm) = operator.memory();
    peak_rss = peak_rss.max(hwm);
    let cpu = operator.cpu_time();
    let metrics = metrics_summary(&operator.metrics().await);
    let steady = if ready_all.is_some() {
        Some(steady_state(client, &operator).await)
    } else {
        None
    };
    let mut ready_times: Vec<f64> = tracker
        .all()
        .iter()
        .filter_map(|s| s.ready.map(|r| secs(r.duration_since(t0))))
        .collect();
    ready_times.sort_by(f64::total_cmp);
    tracker.stop();
    println!(
        "  operator log: {} ({} lines)",
        operator.log.display(),
        std::fs::read_to_string(&operator.log)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    );

    let t = Instant::now();
    let finalize_all = clean_up(env, client, &namespace, Some(operator), n).await;
    delete_nodes(client, &nodes).await;
    println!(
        "  cleanup (finalize {n} pipelines, delete namespace and nodes) took {:.1} s",
        secs(t.elapsed())
    );
    ColdStart {
        pipelines: n,
        detectors: n * per_pipeline,
        steady,
        nodes: extra_nodes,
        create,
        first_status_all,
        topics_all,
        ready_all,
        ready_count: ready_times.len(),
        ready_p50: percentile(&ready_times, 50.0),
        ready_p95: percentile(&ready_times, 95.0),
        peak_rss_kib: peak_rss,
        final_rss_kib: final_rss,
        cpu,
        metrics,
        finalize_all,
    }
}

/// What the API server served and the operator probed while nothing changed.
struct Steady {
    window: Duration,
    requests: Vec<((String, String), f64)>,
    probed: f64,
    reused: f64,
}

/// Everything Ready and nothing changing: count the API server's requests on the operator's
/// resources and the operator's external probes over `HELIOS_BENCH_STEADY_SECS` (default 300).
async fn steady_state(client: &Client, operator: &Operator) -> Steady {
    let window = Duration::from_secs(var("HELIOS_BENCH_STEADY_SECS", 300));
    println!("  steady state: counting requests for {window:?} with nothing changing");
    let (before, m0) = (apiserver_requests(client).await, operator.metrics().await);
    tokio::time::sleep(window).await;
    let (after, m1) = (apiserver_requests(client).await, operator.metrics().await);
    let requests = after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d > 0.0)
        .collect();
    Steady {
        window,
        requests,
        probed: probes(&m1, "probed") - probes(&m0, "probed"),
        reused: probes(&m1, "reused") - probes(&m0, "reused"),
    }
}

// ---------------------------------------------------------------------------------------------

fn opt_secs(d: Option<Duration>) -> String {
    d.map_or_else(
        || "not reached".to_string(),
        |d| format!("{:.1} s", secs(d)),
    )
}

fn main() {
    let pipelines = var("HELIOS_BENCH_PIPELINES", 1000) as usize;
    let samples = var("HELIOS_BENCH_LATENCY_SAMPLES", 20) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let env = StackEnv::load().expect("the stack is not running: e2e/stack up");
        let kubectl = Kubectl::new(&env).unwrap();
        kubectl.install_crds().unwrap();
        let client = kube_client(&env).await;
        let date = k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC");
        println!("helios operator benchmark, {date}, {}", machine());
        println!("load average at start: {}", loadavg());

        println!("\n1. apply -> Ready latency ({samples} pipelines, one after another)");
        let lat = latency_phase(&env, &kubectl, &client, samples).await;

        println!("\n2. cold start ({pipelines} pipelines created with the operator stopped)");
        let cold = cold_start_phase(&env, &client, pipelines).await;

        let mut ready = lat.ready.clone();
        ready.sort_by(f64::total_cmp);
        let mut apply = lat.apply.clone();
        apply.sort_by(f64::total_cmp);
        let mut observed = lat.observed.clone();
        observed.sort_by(f64::total_cmp);
        let mut topics = lat.topics.clone();
        topics.sort_by(f64::total_cmp);
        let max = ready.last().copied().unwrap_or(f64::NAN);

        println!("\nhelios operator benchmark — {date} — {}", machine());
        println!("load average at the end: {}\n", loadavg());
        println!(
            "apply -> Ready ({} samples, `kubectl apply -f -` started -> watch sees Ready=True \
             at the current generation; 1 ingestion replica, 2 topics of 1 partition, \
             deletionPolicy Delete):",
            ready.len()
        );
        println!("| step (from just before kubectl apply) | median | p95 | max |");
        println!("|---|---|---|---|");
        for (label, v) in [
            ("kubectl apply returned", &apply),
            ("first status at current generation", &observed),
            ("TopicsReady=True", &topics),
            ("Ready=True", &ready),
        ] {
            println!(
                "| {label} | {:.3} s | {:.3} s | {:.3} s |",
                percentile(v, 50.0),
                percentile(v, 95.0),
                v.last().copied().unwrap_or(f64::NAN)
            );
        }
        if lat.timeouts > 0 {
            println!("({} samples not Ready within 60 s)", lat.timeouts);
        }
        println!(
            "finalizing (topics deleted) all {} pipelines of the phase took {}\n",
            samples + 1,
            opt_secs(lat.finalize_all)
        );

        let all_ready = cold.ready_all.map(secs);
        println!(
            "cold start ({} pipelines and {} detectors in one namespace, {} extra kwok nodes, {} \
             topics; operator started after they were created):",
            cold.pipelines,
            cold.detectors,
            cold.nodes,
            2 * cold.pipelines
        );
        println!("| figure | value |");
        println!("|---|---|");
        println!(
            "| creating the pipelines (kube client, 16 in flight) | {:.1} s |",
            secs(cold.create)
        );
        println!(
            "| operator start -> every pipeline has a status | {} |",
            opt_secs(cold.first_status_all)
        );
        println!(
            "| operator start -> every pipeline TopicsReady | {} |",
            opt_secs(cold.topics_all)
        );
        println!(
            "| operator start -> every pipeline Ready | {} ({} of {} Ready) |",
            opt_secs(cold.ready_all),
            cold.ready_count,
            cold.pipelines
        );
        println!(
            "| Ready time per pipeline, median / p95 | {:.1} s / {:.1} s |",
            cold.ready_p50, cold.ready_p95
        );
        println!(
            "| throughput | {:.1} pipelines Ready/s |",
            all_ready.map_or(f64::NAN, |t| cold.pipelines as f64 / t)
        );
        println!(
            "| operator peak RSS (VmHWM) | {:.1} MiB |",
            cold.peak_rss_kib as f64 / 1024.0
        );
        println!(
            "| operator RSS when all Ready (VmRSS) | {:.1} MiB |",
            cold.final_rss_kib as f64 / 1024.0
        );
        println!("| operator CPU time (user+sys) | {:.1} s |", secs(cold.cpu));
        println!(
            "| finalizing all (operator deletes {} topics) | {} |",
            2 * cold.pipelines,
            opt_secs(cold.finalize_all)
        );
        println!("operator metrics: {}\n", cold.metrics);
        if let Some(steady) = &cold.steady {
            println!(
                "steady state ({:.0} s, everything Ready, nothing changing; the API server's \
                 apiserver_request_total on the operator's resources, all clients — the bench's \
                 own watch included):",
                secs(steady.window)
            );
            println!("| verb | resource | requests |");
            println!("|---|---|---|");
            for ((verb, resource), n) in &steady.requests {
                println!("| {verb} | {resource} | {n:.0} |");
            }
            let writes: f64 = steady
                .requests
                .iter()
                .filter(|((v, _), _)| {
                    matches!(v.as_str(), "POST" | "PUT" | "PATCH" | "APPLY" | "DELETE")
                })
                .map(|(_, n)| n)
                .sum();
            println!(
                "writes: {writes:.0}; external probes: {:.0} probed, {:.0} reused ({:.2} probes \
                 per pipeline per 150 s TTL)\n",
                steady.probed,
                steady.reused,
                steady.probed / cold.pipelines as f64 / (secs(steady.window) / 150.0)
            );
        }

        let p95 = percentile(&ready, 95.0);
        println!("targets (from issue 4; printed, not asserted):");
        println!(
            "  apply -> Ready < 3 s: {} (median {:.2} s, p95 {p95:.2} s, max {max:.2} s)",
            met(!ready.is_empty() && lat.timeouts == 0 && max < 3.0),
            percentile(&ready, 50.0)
        );
        let time_ok = all_ready.is_some_and(|t| t < 60.0);
        let rss_ok = cold.peak_rss_kib * 1024 < 100_000_000;
        println!(
            "  {} pipelines Ready < 60 s: {}{}",
            cold.pipelines,
            met(time_ok),
            if cold.pipelines == 1000 {
                String::new()
            } else {
                " (the target is for 1,000)".to_string()
            }
        );
        println!(
            "  operator RSS < 100 MB: {} (peak {:.1} MB = {:.1} MiB)",
            met(rss_ok),
            cold.peak_rss_kib as f64 * 1024.0 / 1e6,
            cold.peak_rss_kib as f64 / 1024.0
        );
    });
}
