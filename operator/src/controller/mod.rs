//! The two controllers (one per kind), their shared context, errors and error policy.
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
pub mod memo;
pub mod pipeline;
pub mod status;

use crate::apply::{Change, ChildCaches, IdentityCaches};
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
use kube::core::PartialObjectMeta;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::ReflectHandle;
use kube::{Api, Client, ResourceExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
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
}

/// Delay after the `n`th consecutive failure: 5 s doubling up to 5 min.
pub fn backoff(n: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << n.saturating_sub(1).min(6));
    Duration::from_secs(secs.min(300))
}

fn error_policy<K: ResourceExt>(
    kind: &'static str,
    obj: &K,
    error: &ReconcileError,
    ctx: &Context,
) -> Action {
    ctx.metrics.failed(kind, error.reason());
    let key = cache::key_of(kind, obj);
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

/// Run both controllers until `stop` resolves (then no new reconcile starts and the ones in flight
/// finish) or the future is dropped. Both read
/// and are triggered by one shared reflector per custom resource kind, and own their children
/// through shared metadata-only reflectors that the child applier reads.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    stop: futures::future::Shared<futures::future::BoxFuture<'static, ()>>,
) {
    let ns = namespace.as_deref();
    let Some(term) = start_term(&ctx, ns) else {
        tracing::error!("cannot subscribe to the shared watch streams");
        return;
    };
    let Term {
        pipes,
        dets,
        mut services,
        config_maps,
        deployments,
        pdbs,
        stateful_sets,
        pipeline_triggers,
        detector_triggers,
        roots,
        caches,
    } = term;
    // The root streams run as tasks of this term (aborted with it); the controllers start once
    // every cache holds a complete listing. (Waiting here, once, rather than in each reconcile:
    // a store's readiness wakes only its most recent waiter.)
    let mut tasks = tokio::task::JoinSet::new();
    for root in roots {
        tasks.spawn(root);
    }
    if !caches.ready().await {
        tracing::error!("the watch caches stopped before their first listing");
        return;
    }
    ctx.begin_term(caches);
    let (Some(ingest_services), Some(detector_services)) = (services.pop(), services.pop()) else {
        return;
    };

    let pipelines = Controller::for_shared_stream(pipes.own, pipes.store.clone())
        .with_config(controller_config())
        .graceful_shutdown_on(stop.clone())
        .owns_shared_stream(deployments)
        .owns_shared_stream(ingest_services)
        .owns_shared_stream(config_maps)
        .owns_shared_stream(pdbs)
        .reconcile_on(pipeline_triggers)
        .watches_shared_stream(dets.other, |d: Arc<Detector>| {
            d.namespace()
                .map(|ns| ObjectRef::new(&d.spec.pipeline_ref.name).within(&ns))
        })
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

    let store = dets.store.clone();
    let detectors = Controller::for_shared_stream(dets.own, dets.store.clone())
        .with_config(controller_config())
        .graceful_shutdown_on(stop)
        .owns_shared_stream(stateful_sets)
        .owns_shared_stream(detector_services)
        .reconcile_on(detector_triggers)
        .watches_shared_stream(pipes.other, move |p: Arc<AnomalyPipeline>| {
            let (ns, name) = (p.namespace().unwrap_or_default(), p.name_any());
            cache::detectors_in(&store, &ns, &name)
                .iter()
                .map(|d| ObjectRef::from_obj(d.as_ref()))
                .collect::<Vec<_>>()
        })
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
    tasks.abort_all();
}

/// The watch streams of one leadership term.
struct Term {
    pipes: cache::SharedKind<AnomalyPipeline>,
    dets: cache::SharedKind<Detector>,
    services: Vec<ReflectHandle<PartialObjectMeta<Service>>>,
    config_maps: ReflectHandle<PartialObjectMeta<ConfigMap>>,
    deployments: ReflectHandle<PartialObjectMeta<Deployment>>,
    pdbs: ReflectHandle<PartialObjectMeta<PodDisruptionBudget>>,
    stateful_sets: ReflectHandle<PartialObjectMeta<StatefulSet>>,
    pipeline_triggers: futures::channel::mpsc::UnboundedReceiver<ObjectRef<AnomalyPipeline>>,
    detector_triggers: futures::channel::mpsc::UnboundedReceiver<ObjectRef<Detector>>,
    roots: Vec<cache::Root>,
    caches: cache::Caches,
}

/// Keep the root of a child reflector in `roots`; its store and first subscriber.
fn split<K: kube::Resource<DynamicType = ()> + Clone + 'static>(
    roots: &mut Vec<cache::Root>,
    stream: cache::ChildStream<K>,
) -> (
    crate::apply::MetaStore<K>,
    Option<ReflectHandle<PartialObjectMeta<K>>>,
) {
    let cache::ChildStream {
        store,
        mut subs,
        root,
    } = stream;
    roots.push(root);
    (store, subs.pop())
}

/// The caches of a term and their streams (nothing runs until the roots are driven).
fn start_term(ctx: &Arc<Context>, ns: Option<&str>) -> Option<Term> {
    let client = &ctx.client;
    // A deleted Detector changes its pipeline's count; a deleted pipeline its Detectors' Ready.
    let (to_pipelines, pipeline_triggers) =
        futures::channel::mpsc::unbounded::<ObjectRef<AnomalyPipeline>>();
    let (to_detectors, detector_triggers) =
        futures::channel::mpsc::unbounded::<ObjectRef<Detector>>();
    let pipelines_on_delete = to_pipelines.clone();
    let (dets, dets_root) = cache::shared(
        api::<Detector>(client, ns),
        detector::KIND,
        Arc::clone(ctx),
        move |d: &Detector| {
            if let Some(ns) = d.namespace() {
                let _ = pipelines_on_delete
                    .unbounded_send(ObjectRef::new(&d.spec.pipeline_ref.name).within(&ns));
            }
        },
    )?;
    let detectors = dets.store.clone();
    let detectors_on_delete = to_detectors.clone();
    let (pipes, pipes_root) = cache::shared(
        api::<AnomalyPipeline>(client, ns),
        pipeline::KIND,
        Arc::clone(ctx),
        move |p: &AnomalyPipeline| {
            let (ns, name) = (p.namespace().unwrap_or_default(), p.name_any());
            for d in cache::detectors_in(&detectors, &ns, &name) {
                let _ = detectors_on_delete.unbounded_send(ObjectRef::from_obj(d.as_ref()));
            }
        },
    )?;
    let mut roots = vec![pipes_root, dets_root];
    // A deleted child is re-applied by its owner's next reconcile.
    let owner_of = {
        let (to_pipelines, to_detectors) = (to_pipelines.clone(), to_detectors.clone());
        move |meta: &kube::api::ObjectMeta| {
            let ns = meta.namespace.clone().unwrap_or_default();
            for o in meta.owner_references.iter().flatten() {
                if o.controller != Some(true) {
                    continue;
                }
                // A closed channel means the term is ending: nothing left to trigger.
                match o.kind.as_str() {
                    "AnomalyPipeline" => {
                        drop(to_pipelines.unbounded_send(ObjectRef::new(&o.name).within(&ns)));
                    }
                    "Detector" => {
                        drop(to_detectors.unbounded_send(ObjectRef::new(&o.name).within(&ns)));
                    }
                    _ => {}
                }
            }
        }
    };
    macro_rules! children {
        ($subs:expr) => {{
            let owner_of = owner_of.clone();
            cache::children(api(client, ns), $subs, move |m| owner_of(&m.metadata))?
        }};
    }
    let (config_maps, cm_sub) = split(&mut roots, children!(1));
    let (deployments, dep_sub) = split(&mut roots, children!(1));
    let (pdbs, pdb_sub) = split(&mut roots, children!(1));
    let (stateful_sets, sts_sub) = split(&mut roots, children!(1));
    let cache::ChildStream {
        store: services,
        subs: service_subs,
        root: service_root,
    } = children!(2);
    roots.push(service_root);
    let identities = if ctx.worker_identity.per_detector {
        let (service_accounts, _) = split(&mut roots, children!(0));
        let (roles, _) = split(&mut roots, children!(0));
        let (role_bindings, _) = split(&mut roots, children!(0));
        Some(IdentityCaches {
            service_accounts,
            roles,
            role_bindings,
        })
    } else {
        None
    };
    let caches = cache::Caches {
        pipelines: pipes.store.clone(),
        detectors: dets.store.clone(),
        children: ChildCaches {
            config_maps,
            deployments,
            services,
            pdbs,
            stateful_sets,
            identities,
        },
    };
    Some(Term {
        pipes,
        dets,
        services: service_subs,
        config_maps: cm_sub?,
        deployments: dep_sub?,
        pdbs: pdb_sub?,
        stateful_sets: sts_sub?,
        pipeline_triggers,
        detector_triggers,
        roots,
        caches,
    })
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
