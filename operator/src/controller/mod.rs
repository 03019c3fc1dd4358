//! The two controllers (one per kind), their shared context, errors and error policy.
//!
//! ```text
//! AnomalyPipeline ──owns──▶ ConfigMap, Deployment, Service, PodDisruptionBudget
//!        ▲   └─ Kafka topics (admin client), report hook check (Lambda, S3)
//!        │ watches (DetectorsReady)
//! Detector ──owns──▶ StatefulSet, headless Service
//!        ▲ watches (PipelineNotFound → found)
//! ```

pub mod detector;
pub mod pipeline;

use crate::apply::Change;
use crate::builders::BuildError;
use crate::conditions::{Cond, Status};
use crate::kafka::{TopicAdmin, TopicError};
use crate::metrics::Metrics;
use aws_config::SdkConfig;
use futures::StreamExt;
use helios_crds::{AnomalyPipeline, Detector};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Everything a reconcile needs, shared by both controllers.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Image of the workers.
    pub image: String,
    /// The one Event recorder.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// AWS settings for the report hook check.
    pub aws: SdkConfig,
    /// Kafka admin request timeout.
    pub kafka_timeout: Duration,
    /// How detect pods get their identity.
    pub worker_identity: crate::builders::detector::WorkerIdentity,
    admins: Mutex<HashMap<String, TopicAdmin>>,
    failures: Mutex<HashMap<String, u32>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("image", &self.image)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context for `client`.
    pub fn new(
        client: Client,
        image: String,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        aws: SdkConfig,
        kafka_timeout: Duration,
    ) -> Self {
        Self {
            client,
            image,
            recorder,
            metrics,
            aws,
            kafka_timeout,
            worker_identity: crate::builders::detector::WorkerIdentity::default(),
            admins: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The same context with `identity` for detect pods.
    pub fn with_worker_identity(
        mut self,
        identity: crate::builders::detector::WorkerIdentity,
    ) -> Self {
        self.worker_identity = identity;
        self
    }

    /// A (cached) admin client for `bootstrap` with `properties`.
    pub fn admin(
        &self,
        bootstrap: &str,
        properties: &[(String, String)],
    ) -> Result<TopicAdmin, TopicError> {
        let key = format!("{bootstrap}|{properties:?}");
        if let Ok(map) = self.admins.lock()
            && let Some(admin) = map.get(&key)
        {
            return Ok(admin.clone());
        }
        let admin = TopicAdmin::new(bootstrap, properties, self.kafka_timeout)?;
        if let Ok(mut map) = self.admins.lock() {
            map.insert(key, admin.clone());
        }
        Ok(admin)
    }

    /// Forget the failures of `key` after a successful reconcile.
    pub(crate) fn succeeded(&self, key: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(key);
        }
    }

    /// Count a failure of `key`; returns how many in a row.
    fn failed(&self, key: &str) -> u32 {
        self.failures.lock().map_or(1, |mut map| {
            let n = map.entry(key.to_string()).or_insert(0);
            *n += 1;
            *n
        })
    }
}

/// Why a reconcile failed. Variant names are metric labels and Event reasons.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The spec cannot be turned into children (waits for a spec change).
    #[error("invalid spec: {0}")]
    InvalidSpec(#[from] BuildError),
    /// Server-side apply of a child failed.
    #[error("cannot apply {kind} {name}: {source}")]
    ApplyFailed {
        /// Kind of the child.
        kind: &'static str,
        /// Name of the child.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// Reading related objects failed.
    #[error("cannot read {what}: {source}")]
    ReadFailed {
        /// What was read.
        what: &'static str,
        /// The API error.
        source: kube::Error,
    },
    /// Writing the status failed.
    #[error("cannot write the status: {0}")]
    StatusWriteFailed(#[source] kube::Error),
    /// Adding or removing the finalizer failed.
    #[error("cannot update the finalizer: {0}")]
    FinalizerUpdateFailed(#[source] kube::Error),
    /// Deleting orphaned children failed.
    #[error("cannot delete orphaned children: {0}")]
    OrphanCleanupFailed(#[source] kube::Error),
}

impl ReconcileError {
    /// The variant name.
    pub fn reason(&self) -> &'static str {
        match self {
            ReconcileError::InvalidSpec(_) => "InvalidSpec",
            ReconcileError::ApplyFailed { .. } => "ApplyFailed",
            ReconcileError::ReadFailed { .. } => "ReadFailed",
            ReconcileError::StatusWriteFailed(_) => "StatusWriteFailed",
            ReconcileError::FinalizerUpdateFailed(_) => "FinalizerUpdateFailed",
            ReconcileError::OrphanCleanupFailed(_) => "OrphanCleanupFailed",
        }
    }
}

/// Delay after the `n`th consecutive failure: 5 s doubling up to 5 min.
pub fn backoff(n: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << n.saturating_sub(1).min(6));
    Duration::from_secs(secs.min(300))
}

fn key_of<K: ResourceExt>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

fn error_policy<K: ResourceExt>(
    kind: &'static str,
    obj: &K,
    error: &ReconcileError,
    ctx: &Context,
) -> Action {
    ctx.metrics.failed(kind, error.reason());
    let key = format!("{kind}/{}", key_of(obj));
    let n = ctx.failed(&key);
    match error {
        // Only a spec change can fix it; the watch brings that change.
        ReconcileError::InvalidSpec(_) => {
            tracing::warn!(%key, error = %error, "invalid spec; waiting for a change");
            Action::await_change()
        }
        _ => {
            let delay = backoff(n);
            tracing::warn!(%key, error = %error, retry_in = ?delay, "reconcile failed");
            Action::requeue(delay)
        }
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Reconciles in flight per controller: bounds memory and the burst on the API server and the
/// broker when thousands of objects arrive at once (a cold start).
const CONCURRENCY: u16 = 32;

fn controller_config() -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(CONCURRENCY)
}

/// Run both controllers until the future is dropped (losing leadership aborts it).
pub async fn run(ctx: Arc<Context>, namespace: Option<String>) {
    let ns = namespace.as_deref();
    let client = &ctx.client;
    let children =
        watcher::Config::default().labels("app.kubernetes.io/managed-by=helios-operator");

    let pipelines = Controller::new(
        api::<AnomalyPipeline>(client, ns),
        watcher::Config::default(),
    )
    .with_config(controller_config())
    .owns(api::<Deployment>(client, ns), children.clone())
    .owns(api::<Service>(client, ns), children.clone())
    .owns(api::<ConfigMap>(client, ns), children.clone())
    .owns(api::<PodDisruptionBudget>(client, ns), children.clone())
    .watches(
        api::<Detector>(client, ns),
        watcher::Config::default(),
        |d: Detector| {
            d.namespace()
                .map(|ns| ObjectRef::new(&d.spec.pipeline_ref.name).within(&ns))
        },
    )
    .run(
        pipeline::reconcile,
        |obj, err, ctx| error_policy(pipeline::KIND, obj.as_ref(), err, &ctx),
        Arc::clone(&ctx),
    )
    .for_each(|result| async move {
        if let Err(e) = result {
            tracing::debug!(error = %e, "pipeline controller event");
        }
    });

    let detector_controller =
        Controller::new(api::<Detector>(client, ns), watcher::Config::default());
    let store = detector_controller.store();
    let detectors = detector_controller
        .with_config(controller_config())
        .owns(api::<StatefulSet>(client, ns), children.clone())
        .owns(api::<Service>(client, ns), children)
        .watches(
            api::<AnomalyPipeline>(client, ns),
            watcher::Config::default(),
            move |p: AnomalyPipeline| {
                let (ns, name) = (p.namespace(), p.name_any());
                store
                    .state()
                    .iter()
                    .filter(|d| d.namespace() == ns && d.spec.pipeline_ref.name == name)
                    .map(|d| ObjectRef::from_obj(d.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .run(
            detector::reconcile,
            |obj, err, ctx| error_policy(detector::KIND, obj.as_ref(), err, &ctx),
            Arc::clone(&ctx),
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "detector controller event");
            }
        });

    futures::join!(pipelines, detectors);
}

/// Publish a Normal Event for every child that was created, updated or deleted.
pub(crate) async fn publish_changes<K: kube::Resource<DynamicType = ()>>(
    ctx: &Context,
    owner: &K,
    changes: &[(&'static str, String, Change)],
) {
    for (kind, name, change) in changes {
        let (reason, verb) = match change {
            Change::Created => ("Created", "created"),
            Change::Updated => ("Updated", "updated"),
            Change::Deleted => ("Deleted", "deleted"),
            Change::Unchanged => continue,
        };
        crate::events::publish_related(
            &ctx.recorder,
            owner,
            Some(crate::events::related(
                kind,
                name,
                owner.meta().namespace.clone(),
            )),
            EventType::Normal,
            reason,
            "Reconcile",
            format!("{verb} {kind} {name}"),
        )
        .await;
    }
}

/// Reasons that are normal steps of a rollout, not failures: no Warning for them.
const TRANSIENT_REASONS: &[&str] = &[
    "RolloutPending",
    "WorkloadMissing",
    "NotSuspended",
    "ScalingDown",
];

/// The decided conditions that are not True and were not already in that state with that
/// reason: each gets one Warning Event (not one per requeue).
/// Types in `skip` (a summary that repeats a detail) get none.
pub(crate) fn changed_failures<'a>(
    decided: &'a [Cond],
    previous: &[Condition],
    skip: &[&str],
) -> Vec<&'a Cond> {
    decided
        .iter()
        .filter(|c| c.status == Status::False && !skip.contains(&c.type_.as_str()))
        .filter(|c| !TRANSIENT_REASONS.contains(&c.reason.as_str()))
        .filter(|c| {
            !previous
                .iter()
                .any(|p| p.type_ == c.type_ && p.status == "False" && p.reason == c.reason)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use helios_crds::conditions::{READY, SUSPENDED};

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(4), Duration::from_secs(40));
        assert_eq!(backoff(30), Duration::from_secs(300));
    }

    #[test]
    fn a_failure_warns_once_per_reason() {
        let decided = [
            Cond::fail("TopicsReady", "KafkaUnreachable", "down"),
            Cond::fail("IngestionAvailable", "ReplicasUnavailable", "0/2"),
            Cond::ok("DetectorsReady", "AllDetectorsReady", "1/1"),
            Cond::fail("IngestionAvailable", "RolloutPending", "not observed yet"),
        ];
        let previous = [Condition {
            type_: "TopicsReady".into(),
            status: "False".into(),
            reason: "KafkaUnreachable".into(),
            message: "down".into(),
            observed_generation: Some(1),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
        }];
        let warn: Vec<&str> = changed_failures(&decided, &previous, &[READY, SUSPENDED])
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(warn, vec!["IngestionAvailable"]);
    }
}
