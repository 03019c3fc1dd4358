//! Writes the runtime status ([`crate::status`]) to `detectors/<name>/status` by server-side
//! apply with field manager `helios-detect` (forced), beside the operator's `Ready`.
//!
//! The writer runs as its own task: it derives the desired status every second, and only when
//! it changed (or every [`HEARTBEAT`], which also repairs edits) reads the object (generation,
//! current conditions, heartbeat), fills in `observedGeneration` and `lastTransitionTime`, and
//! applies it, at most every [`MIN_INTERVAL`]. Every apply carries `status.worker.heartbeatTime`
//! (and the pod name, `HOSTNAME`); when nothing else changed the object is still applied once
//! its heartbeat is [`HEARTBEAT`] old, so a live worker's heartbeat is never older than about a
//! minute (two with several replicas, which skip a beat another one just wrote) and the
//! operator can tell a dead, hung or cut-off worker (its conditions turn
//! `Unknown`, reason `WorkerSilent`) from a quiet one. Failures are logged (rate-limited), counted in
//! `helios_detect_status_writes_total{outcome="error"}` and retried with back-off; they never
//! stop or slow detection.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use helios_crds::{Detector, DetectorSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{
    InClusterError, InferConfigError, KubeConfigOptions, Kubeconfig, KubeconfigError,
};
use kube::{Client, Config};
use tokio::sync::watch;

use crate::config::DetectorId;
use crate::metrics::Metrics;
use crate::status::{self, HEARTBEAT, RuntimeStatus, StatusHandle, StatusSettings};

/// The field manager of the worker's status fields.
pub const FIELD_MANAGER: &str = "helios-detect";
/// Minimum time between two writes.
pub const MIN_INTERVAL: Duration = Duration::from_secs(2);
/// How often the desired status is derived.
const TICK: Duration = Duration::from_secs(1);
/// Longest one read-and-apply may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest back-off after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// At most one warning per this interval (the rest are counted).
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Whether the worker writes its runtime status to the Detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KubeStatusMode {
    /// On when running in a cluster or with `KUBECONFIG` set; off otherwise.
    Auto,
    /// Always; the worker fails to start without a usable Kubernetes configuration.
    On,
    /// Never.
    Off,
}

/// Why the status writer cannot start.
#[derive(Debug, thiserror::Error)]
pub enum KubeStatusError {
    /// The kubeconfig file cannot be read or used.
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] KubeconfigError),
    /// The in-cluster configuration is incomplete.
    #[error("in-cluster config: {0}")]
    InCluster(#[from] InClusterError),
    /// Neither a kubeconfig nor the in-cluster configuration is usable.
    #[error("kubernetes config: {0}")]
    Infer(#[from] InferConfigError),
    /// The client cannot be built from the configuration.
    #[error("kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// Whether a pod environment is present (`KUBERNETES_SERVICE_HOST`).
fn in_cluster() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|v| !v.is_empty())
}

/// The API client for the mode: `None` when off (or `auto` without a cluster, or `auto` with
/// an unusable configuration, which is logged); an error only in mode `on`.
pub async fn client(
    mode: KubeStatusMode,
    kubeconfig: Option<&str>,
) -> Result<Option<Client>, KubeStatusError> {
    let kubeconfig = kubeconfig.filter(|k| !k.trim().is_empty());
    match mode {
        KubeStatusMode::Off => return Ok(None),
        KubeStatusMode::Auto if kubeconfig.is_none() && !in_cluster() => {
            tracing::info!("no cluster configuration: the runtime status is not written");
            return Ok(None);
        }
        KubeStatusMode::Auto | KubeStatusMode::On => {}
    }
    match build_client(kubeconfig).await {
        Ok(c) => Ok(Some(c)),
        Err(e) if mode == KubeStatusMode::Auto => {
            tracing::warn!(error = %e, "cannot configure a Kubernetes client: the runtime status is not written");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

async fn build_client(kubeconfig: Option<&str>) -> Result<Client, KubeStatusError> {
    let config = match kubeconfig {
        Some(paths) => {
            let mut merged: Option<Kubeconfig> = None;
            for path in std::env::split_paths(paths).filter(|p| !p.as_os_str().is_empty()) {
                let next = Kubeconfig::read_from(PathBuf::from(&path))?;
                merged = Some(match merged {
                    Some(m) => m.merge(next)?,
                    None => next,
                });
            }
            let kc = merged.unwrap_or_default();
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?
        }
        None if in_cluster() => Config::incluster()?,
        None => Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}

/// At most one warning per [`WARN_EVERY`]; the others are counted into the next one.
#[derive(Debug, Default)]
struct WarnLimiter {
    last: Option<Instant>,
    suppressed: u64,
}

impl WarnLimiter {
    fn warn(&mut self, error: &str) {
        if self.last.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            error,
            suppressed = self.suppressed,
            "writing the detector status failed"
        );
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

/// Why one write failed.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("reading the Detector: {0}")]
    Read(#[source] kube::Error),
    #[error("applying the status: {0}")]
    Apply(#[source] kube::Error),
    #[error("encoding the status: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the runtime state is unavailable (poisoned lock)")]
    State,
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

/// The task that keeps the Detector's runtime status current.
pub struct StatusWriter {
    api: Api<Detector>,
    name: String,
    spec: Option<DetectorSpec>,
    handle: StatusHandle,
    settings: StatusSettings,
    metrics: Metrics,
    generation: Option<i64>,
    seeded: bool,
    warn: WarnLimiter,
    /// This pod's name (`HOSTNAME`), written beside the heartbeat.
    pod: Option<String>,
}

impl StatusWriter {
    /// A writer for detector `id` running `spec_json` (the spec decides which generation the
    /// worker may claim: a spec that no longer matches the object keeps the previous one).
    pub fn new(
        client: Client,
        id: &DetectorId,
        spec_json: &str,
        handle: StatusHandle,
        settings: StatusSettings,
        metrics: Metrics,
    ) -> Self {
        Self {
            api: Api::namespaced(client, &id.namespace),
            name: id.name.clone(),
            spec: serde_json::from_str(spec_json).ok(),
            handle,
            settings,
            metrics,
            generation: None,
            seeded: false,
            warn: WarnLimiter::default(),
            pod: std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.trim().is_empty()),
        }
    }

    /// Writes until `stop` turns true (or its sender is dropped), then makes one last attempt.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut applied: Option<RuntimeStatus> = None;
        let mut checked: Option<Instant> = None;
        let mut attempted: Option<Instant> = None;
        let mut failures: u32 = 0;
        loop {
            let last = tokio::select! {
                _ = tick.tick() => false,
                r = stop.changed() => r.is_err() || *stop.borrow(),
            };
            let desired = self.handle.derive(&self.settings, Utc::now());
            let due = desired.is_none()
                || applied != desired
                || checked.is_none_or(|t| t.elapsed() >= HEARTBEAT);
            let wait = backoff(failures);
            let spaced = attempted.is_none_or(|t| t.elapsed() >= wait);
            if due && (spaced || last) {
                attempted = Some(Instant::now());
                let outcome = tokio::time::timeout(WRITE_TIMEOUT, self.write())
                    .await
                    .unwrap_or(Err(WriteError::Timeout(WRITE_TIMEOUT)));
                match outcome {
                    Ok((written, changed)) => {
                        let label = if changed { "applied" } else { "unchanged" };
                        self.metrics.status_writes.with_label_values(&[label]).inc();
                        applied = Some(written);
                        checked = Some(Instant::now());
                        failures = 0;
                    }
                    Err(e) => {
                        self.metrics
                            .status_writes
                            .with_label_values(&["error"])
                            .inc();
                        self.warn.warn(&e.to_string());
                        failures = failures.saturating_add(1);
                    }
                }
            }
            if last {
                break;
            }
        }
    }

    /// Reads the object, applies the status if it differs or its heartbeat is due; returns
    /// what was written and whether an apply was sent.
    async fn write(&mut self) -> Result<(RuntimeStatus, bool), WriteError> {
        let current = self.api.get(&self.name).await.map_err(WriteError::Read)?;
        if !self.seeded {
            self.handle.update(|s| s.seed(current.status.as_ref()));
            self.seeded = true;
        }
        let now = Utc::now();
        let desired = self
            .handle
            .derive(&self.settings, now)
            .ok_or(WriteError::State)?;
        let generation = match &self.spec {
            Some(spec) if *spec != current.spec => self.generation.or(current.metadata.generation),
            _ => current.metadata.generation,
        };
        self.generation = generation;
        let previous = current
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default();
        let stamp =
            Time(Timestamp::from_second(now.timestamp()).unwrap_or_else(|_| Timestamp::now()));
        let conditions = status::materialize(&desired.conditions, &previous, generation, &stamp);
        if !status::needs_apply(current.status.as_ref(), &conditions, &desired, now) {
            return Ok((desired, false));
        }
        let beat = status::heartbeat(now, self.pod.as_deref());
        let body = status::apply_body(&self.name, &conditions, &desired, &beat)?;
        self.api
            .patch_status(
                &self.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(WriteError::Apply)?;
        tracing::debug!(detector = %self.name, "runtime status written");
        Ok((desired, true))
    }
}

/// Delay before the next attempt after `failures` failures in a row.
fn backoff(failures: u32) -> Duration {
    match failures {
        0 => MIN_INTERVAL,
        n => (MIN_INTERVAL * 2u32.saturating_pow(n.min(6))).min(MAX_BACKOFF),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_cap() {
        assert_eq!(backoff(0), MIN_INTERVAL);
        assert_eq!(backoff(1), Duration::from_secs(4));
        assert_eq!(backoff(3), Duration::from_secs(16));
        assert_eq!(backoff(20), MAX_BACKOFF);
    }

    #[tokio::test]
    async fn off_and_auto_without_a_cluster_give_no_client() {
        assert!(
            client(KubeStatusMode::Off, Some("/nonexistent"))
                .await
                .unwrap_or(None)
                .is_none()
        );
        if !in_cluster() {
            assert!(
                client(KubeStatusMode::Auto, None)
                    .await
                    .unwrap_or(None)
                    .is_none()
            );
        }
        // `auto` with an unreadable kubeconfig logs and carries on; `on` fails.
        assert!(matches!(
            client(KubeStatusMode::Auto, Some("/nonexistent/kubeconfig")).await,
            Ok(None)
        ));
        assert!(
            client(KubeStatusMode::On, Some("/nonexistent/kubeconfig"))
                .await
                .is_err()
        );
    }
}
