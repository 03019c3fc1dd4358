//! Shared by the suites that run `helios operator` against the real stack: the operator process,
//! the stack with CRDs installed, and waiting on conditions with the operator's log on failure.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use helios_crds::{AnomalyPipeline, Detector};
use helios_e2e::kubectl::{Kubectl, TempNamespace};
use helios_e2e::{StackEnv, clients};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{Api, Client};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long the operator may take to converge on anything.
pub const CONVERGE: Duration = Duration::from_secs(120);

/// An operator process; killed on drop.
pub struct Operator {
    child: Child,
    log: PathBuf,
    /// Port of its `/metrics` (on 127.0.0.1).
    metrics_port: u16,
}

impl Operator {
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    pub fn assert_running(&mut self) {
        let status = self.child.try_wait().unwrap();
        assert!(
            status.is_none(),
            "the operator exited ({status:?}):\n{}",
            self.log()
        );
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The stack, with the CRDs installed once per test binary.
pub fn stack() -> (StackEnv, Kubectl) {
    static READY: OnceLock<Result<(StackEnv, Kubectl), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let env = StackEnv::load().map_err(|e| e.to_string())?;
        let kubectl = Kubectl::new(&env).map_err(|e| e.to_string())?;
        kubectl.install_crds()?;
        Ok((env, kubectl))
    });
    match ready {
        Ok(pair) => pair.clone(),
        Err(e) => panic!("{e}"),
    }
}

pub async fn kube_client(env: &StackEnv) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(env.get("KUBECONFIG").unwrap()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// Start `helios operator` for one namespace.
pub fn start_operator(env: &StackEnv, namespace: &str) -> Operator {
    spawn_operator(
        env,
        namespace,
        &format!("test-{namespace}"),
        "info,helios_operator=debug",
        &format!("helios-operator-{namespace}.log"),
        &[],
    )
}

/// Start `helios operator` for one namespace with `extra_env` (e.g. a short
/// `HELIOS_WORKER_HEARTBEAT_TIMEOUT_SECS`).
pub fn start_operator_with_env(
    env: &StackEnv,
    namespace: &str,
    extra_env: &[(&str, &str)],
) -> Operator {
    spawn_operator(
        env,
        namespace,
        &format!("test-{namespace}"),
        "info,helios_operator=debug",
        &format!("helios-operator-{namespace}.log"),
        extra_env,
    )
}

/// `helios operator` for `namespace` (its Lease there too) as `identity`, logging at `rust_log`
/// to `log_name` in the temp dir, its metrics on a free port, with `extra_env` set.
fn spawn_operator(
    env: &StackEnv,
    namespace: &str,
    identity: &str,
    rust_log: &str,
    log_name: &str,
    extra_env: &[(&str, &str)],
) -> Operator {
    let log = std::env::temp_dir().join(log_name);
    let metrics_port = helios_e2e::free_port().expect("a free port");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_helios"));
    cmd.arg("operator")
        .arg("--kubeconfig")
        .arg(env.get("KUBECONFIG").unwrap())
        .args(["--namespace", namespace])
        .args(["--leader-election-namespace", namespace])
        .args(["--identity", identity])
        .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
        .args(["--worker-image", "helios:e2e"])
        .args(["--lease-duration-secs", "6", "--lease-renew-secs", "2"])
        .env("RUST_LOG", rust_log)
        .env("NO_COLOR", "1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for k in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
        cmd.env(k, env.get(k).unwrap());
    }
    cmd.envs(extra_env.iter().copied());
    Operator {
        child: cmd.spawn().unwrap(),
        log,
        metrics_port,
    }
}

/// Poll `probe` until it returns `Some`, or fail with `what`, the last observation and the log.
pub async fn eventually<T, F, Fut>(op: &mut Operator, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + CONVERGE;
    loop {
        let last = match probe().await {
            Ok(value) => return value,
            Err(last) => last,
        };
        op.assert_running();
        assert!(
            Instant::now() < deadline,
            "{what}: not within {CONVERGE:?}; last seen: {last}\noperator log:\n{}",
            op.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

pub fn describe(conditions: &[Condition]) -> String {
    conditions
        .iter()
        .map(|c| format!("{}={} ({}: {})", c.type_, c.status, c.reason, c.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The pipeline's conditions, once its status describes the current generation.
pub async fn current_conditions(
    api: &Api<AnomalyPipeline>,
    name: &str,
) -> Result<Vec<Condition>, String> {
    let p = api.get(name).await.map_err(|e| e.to_string())?;
    let status = p.status.clone().unwrap_or_default();
    if status.observed_generation != p.metadata.generation {
        return Err(format!(
            "observedGeneration {:?} != generation {:?}",
            status.observed_generation, p.metadata.generation
        ));
    }
    Ok(status.conditions)
}

/// Wait until condition `type_` of the pipeline has `status` (and `reason`, when given).
pub async fn pipeline_condition(
    op: &mut Operator,
    api: &Api<AnomalyPipeline>,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> Condition {
    eventually(
        op,
        &format!("pipeline {name} {type_}={status} {reason:?}"),
        || async {
            let conditions = current_conditions(api, name).await?;
            match condition(&conditions, type_) {
                Some(c) if c.status == status && reason.is_none_or(|r| r == c.reason) => {
                    Ok(c.clone())
                }
                _ => Err(describe(&conditions)),
            }
        },
    )
    .await
}

/// Wait until the detector's `type_` condition has `status` (and `reason`, when given).
pub async fn detector_condition(
    op: &mut Operator,
    api: &Api<Detector>,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> Condition {
    eventually(
        op,
        &format!("detector {name} {type_}={status} {reason:?}"),
        || async {
            let d = api.get(name).await.map_err(|e| e.to_string())?;
            let s = d.status.clone().unwrap_or_default();
            if s.observed_generation != d.metadata.generation {
                return Err(format!("observedGeneration {:?}", s.observed_generation));
            }
            match condition(&s.conditions, type_) {
                Some(c) if c.status == status && reason.is_none_or(|r| r == c.reason) => {
                    Ok(c.clone())
                }
                _ => Err(describe(&s.conditions)),
            }
        },
    )
    .await
}

pub fn admin(env: &StackEnv) -> AdminClient<DefaultClientContext> {
    clients::kafka_config(env).unwrap().create().unwrap()
}

/// Partitions of `topic` in Kafka, `None` when it does not exist.
pub fn partitions(admin: &AdminClient<DefaultClientContext>, topic: &str) -> Option<usize> {
    let md = admin
        .inner()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    (t.error().is_none()).then(|| t.partitions().len())
}

/// A topic config value as the broker reports it.
pub async fn topic_config(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    key: &str,
) -> Option<String> {
    let out = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .ok()?;
    let resource = out.into_iter().next()?.ok()?;
    resource.get(key).and_then(|e| e.value.clone())
}

pub fn apply(kubectl: &Kubectl, ns: &TempNamespace, manifest: &str) {
    kubectl
        .ok(&["apply", "-n", &ns.name, "-f", "-"], Some(manifest))
        .unwrap_or_else(|e| panic!("kubectl apply failed: {e}\n{manifest}"));
}

impl Operator {
    /// The whole log (not only its tail).
    pub fn full_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The sum of every sample of metric `name` whose labels contain `labels` (e.g.
    /// `kind="AnomalyPipeline"`; empty: all), read from the process's `/metrics`; 0 when absent.
    pub async fn metric(&self, name: &str, labels: &str) -> f64 {
        let url = format!("http://127.0.0.1:{}/metrics", self.metrics_port);
        let text = match reqwest::get(&url).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => panic!("GET {url}: {e}\n{}", self.log()),
        };
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter(|(series, _)| {
                let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
                metric == name && rest.contains(labels)
            })
            .filter_map(|(_, v)| v.parse::<f64>().ok())
            .sum()
    }

    /// SIGKILL the process (no chance to release the Lease) and reap it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// Start `helios operator` for one namespace as `identity` (Lease `helios-operator` in that
/// namespace, as [`start_operator`]).
pub fn start_operator_as(env: &StackEnv, namespace: &str, identity: &str) -> Operator {
    spawn_operator(
        env,
        namespace,
        identity,
        "info,helios_operator=debug",
        &format!("helios-operator-{namespace}-{identity}.log"),
        &[],
    )
}

/// The holder of Lease `helios-operator` in `namespace`, `None` when there is none.
pub async fn lease_holder(client: &Client, namespace: &str) -> Option<String> {
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), namespace);
    leases
        .get_opt("helios-operator")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

/// Wait (watching it, within [`CONVERGE`]) until Lease `helios-operator` in `namespace` was
/// renewed `n` times: a barrier of `n` renew periods of its holder, instead of a sleep.
pub async fn lease_renewals(client: &Client, namespace: &str, n: usize) {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), namespace);
    let cfg = watcher::Config::default().fields("metadata.name=helios-operator");
    let mut seen: Vec<String> = Vec::new();
    let stream = watcher(leases, cfg).applied_objects();
    futures::pin_mut!(stream);
    let waited = tokio::time::timeout(CONVERGE, async {
        while let Some(Ok(lease)) = stream.next().await {
            let renewed = lease
                .spec
                .and_then(|s| s.renew_time)
                .map(|t| format!("{t:?}"))
                .unwrap_or_default();
            if !seen.contains(&renewed) {
                seen.push(renewed);
            }
            // The first value is the state before the wait.
            if seen.len() > n {
                return;
            }
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "Lease helios-operator renewed {} of {n} times within {CONVERGE:?}",
        seen.len().saturating_sub(1)
    );
}

/// Poll `probe` (no operator involved) until it returns `Some` or `within` passes; the error
/// names `what` and the last observation.
pub async fn poll<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        let last = match probe().await {
            Ok(value) => return Ok(value),
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            return Err(format!("{what}: not within {within:?}; last seen: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
