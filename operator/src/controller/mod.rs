//! The two controllers (one per kind, each a staged reconcile), their shared context, errors
//! (each naming the stage that failed) and Event helpers; one leadership term's wiring and the
//! shared error policy are in `term`.
//!
//! ```text
//! AnomalyPipeline ──owns──▶ ConfigMap, Deployment, Service, PodDisruptionBudget
//!        ▲   └─ Kafka topics (admin client), report hook check (Lambda, S3)
//!        │ watches (DetectorsReady)
//! Detector ──owns──▶ StatefulSet, headless Service
//!        ▲ watches (PipelineNotFound → found)
//! ```

pub mod cache;
pub mod detector;
#[cfg(test)]
mod detector_tests;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod memo;
pub mod pipeline;
#[cfg(test)]
mod pipeline_tests;
pub mod status;
mod term;
pub mod trigger;

pub use term::run;

use crate::apply::Change;
use crate::builders::BuildError;
use crate::conditions::{Cond, Status};
use crate::kafka::{TopicAdmin, TopicError};
use crate::metrics::Metrics;
use aws_config::SdkConfig;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Client;
use kube::runtime::events::EventType;
use kube::runtime::events::Recorder;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Everything a reconcile needs, shared by both controllers.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Image of the workers.
    pub image: String,
    /// Where reconciles hand their Events (published in the background).
    pub events: crate::events::Events,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// AWS settings for the report hook check.
    pub aws: SdkConfig,
    /// Kafka admin request timeout.
    pub kafka_timeout: Duration,
    /// How detect pods get their identity.
    pub worker_identity: crate::builders::detector::WorkerIdentity,
    /// Where worker pods reach the API server (none: the kubelet's `kubernetes` Service).
    pub worker_api_server: Option<crate::builders::ApiServer>,
    /// A detect worker whose heartbeat is older than this is silent (none: never checked).
    pub worker_heartbeat_timeout: Option<Duration>,
    /// What this term wrote and probed, per object.
    pub memo: memo::Memo,
    admins: Mutex<HashMap<String, TopicAdmin>>,
    failures: Mutex<HashMap<String, u32>>,
    caches: RwLock<Option<cache::Caches>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("image", &self.image)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context for `client`; starts the Event publisher on the current Tokio runtime.
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
            events: crate::events::Events::start(recorder, Arc::clone(&metrics)),
            metrics,
            aws,
            kafka_timeout,
            worker_identity: crate::builders::detector::WorkerIdentity::default(),
            worker_api_server: None,
            worker_heartbeat_timeout: Some(detector::DEFAULT_HEARTBEAT_TIMEOUT),
            memo: memo::Memo::default(),
            admins: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            caches: RwLock::new(None),
        }
    }

    /// Start a leadership term reading `caches`; what an earlier term remembered is dropped
    /// (another replica may have written since).
    fn begin_term(&self, caches: cache::Caches) {
        self.memo.clear();
        if let Ok(mut f) = self.failures.lock() {
            f.clear();
        }
        if let Ok(mut c) = self.caches.write() {
            *c = Some(caches);
        }
    }

    /// The caches of the current term (complete: a term starts once they are).
    pub fn caches(&self) -> Result<cache::Caches, ReconcileError> {
        self.caches
            .read()
            .ok()
            .and_then(|c| c.clone())
            .ok_or(ReconcileError::CachesNotRunning)
    }

    /// Forget `key` (`Kind/namespace/name`): its object is gone.
    pub(crate) fn gone(&self, key: &str) {
        self.memo.forget(key);
        if let Ok(mut f) = self.failures.lock() {
            f.remove(key);
        }
        if key.starts_with(pipeline::KIND) {
            self.metrics.pipeline_ready(key, None);
        }
    }

    /// Keep only the `kind` entries whose key is `alive` (after a re-list).
    pub(crate) fn sweep(&self, kind: &str, alive: impl Fn(&str) -> bool) {
        let keep = |k: &str| !k.starts_with(kind) || alive(k);
        self.memo.retain(keep);
        if let Ok(mut f) = self.failures.lock() {
            f.retain(|k, _| keep(k));
        }
        if kind == pipeline::KIND {
            self.metrics.retain_pipelines(keep);
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

    /// The same context with worker pods told to reach the API server at `api_server`.
    pub fn with_worker_api_server(
        mut self,
        api_server: Option<crate::builders::ApiServer>,
    ) -> Self {
        self.worker_api_server = api_server;
        self
    }

    /// The same context with detect workers silent after `timeout` without a heartbeat
    /// (`None`: their runtime conditions are never overridden).
    pub fn with_worker_heartbeat_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.worker_heartbeat_timeout = timeout;
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

/// Why a reconcile failed. [`ReconcileError::reason`] is the `reason` label of the failure metric;
/// [`ReconcileError::stage`] names the stage that failed (in the log).
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
    /// The watch caches of this term are not running (not leading, or shutting down).
    #[error("the watch caches are not running")]
    CachesNotRunning,
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
            ReconcileError::CachesNotRunning => "CachesNotRunning",
        }
    }

    /// The stage of the reconcile that failed.
    pub fn stage(&self) -> Stage {
        match self {
            ReconcileError::InvalidSpec(BuildError::MissingMetadata(_))
            | ReconcileError::FinalizerUpdateFailed(_)
            | ReconcileError::CachesNotRunning => Stage::Dereference,
            ReconcileError::InvalidSpec(BuildError::InvalidMaxBodySize(_)) => Stage::Validate,
            ReconcileError::InvalidSpec(BuildError::Render(_)) => Stage::Build,
            ReconcileError::ApplyFailed { .. }
            | ReconcileError::ReadFailed { .. }
            | ReconcileError::OrphanCleanupFailed(_) => Stage::Apply,
            ReconcileError::StatusWriteFailed(_) => Stage::Status,
        }
    }
}

/// The stages of a reconcile, in order. External systems (Kafka topics, the report hook) have
/// no stage here: their failures are conditions, never a failed reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The object's metadata, deletion and finalizer, and what it refers to (from the caches).
    Dereference,
    /// The spec checked (what only a spec change can fix).
    Validate,
    /// The children rendered from the spec (pure).
    Build,
    /// The children applied and the orphans deleted.
    Apply,
    /// The status written.
    Status,
}

impl Stage {
    /// A static name for logs (`dereference`, `validate`, `build`, `apply`, `status`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Dereference => "dereference",
            Stage::Validate => "validate",
            Stage::Build => "build",
            Stage::Apply => "apply",
            Stage::Status => "status",
        }
    }
}

/// Delay after the `n`th consecutive failure: 5 s doubling up to 5 min.
pub fn backoff(n: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << n.saturating_sub(1).min(6));
    Duration::from_secs(secs.min(300))
}

/// Hand over a Normal Event for every child that was created, updated or deleted.
pub(crate) fn publish_changes<K: kube::Resource<DynamicType = ()>>(
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
        ctx.events.publish_related(
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
        );
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
    fn every_error_keeps_its_reason_and_names_its_stage() {
        let api = || kube::Error::LinesCodecMaxLineLengthExceeded;
        let cases = [
            (
                ReconcileError::InvalidSpec(BuildError::MissingMetadata("uid")),
                "InvalidSpec",
                Stage::Dereference,
            ),
            (
                ReconcileError::InvalidSpec(BuildError::InvalidMaxBodySize("5Ti".into())),
                "InvalidSpec",
                Stage::Validate,
            ),
            (
                ReconcileError::InvalidSpec(BuildError::Render("x".into())),
                "InvalidSpec",
                Stage::Build,
            ),
            (
                ReconcileError::FinalizerUpdateFailed(api()),
                "FinalizerUpdateFailed",
                Stage::Dereference,
            ),
            (
                ReconcileError::CachesNotRunning,
                "CachesNotRunning",
                Stage::Dereference,
            ),
            (
                ReconcileError::ApplyFailed {
                    kind: "ConfigMap",
                    name: "c".into(),
                    source: api(),
                },
                "ApplyFailed",
                Stage::Apply,
            ),
            (
                ReconcileError::ReadFailed {
                    what: "Deployment",
                    source: api(),
                },
                "ReadFailed",
                Stage::Apply,
            ),
            (
                ReconcileError::OrphanCleanupFailed(api()),
                "OrphanCleanupFailed",
                Stage::Apply,
            ),
            (
                ReconcileError::StatusWriteFailed(api()),
                "StatusWriteFailed",
                Stage::Status,
            ),
        ];
        for (error, reason, stage) in cases {
            assert_eq!(error.reason(), reason, "{error}");
            assert_eq!(error.stage(), stage, "{error}");
        }
        assert_eq!(Stage::Dereference.as_str(), "dereference");
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
