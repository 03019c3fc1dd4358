//! Reconcile an `AnomalyPipeline` in stages: dereference (finalizer, caches) → validate (the
//! rendered config) → build (pure: the ingestion children) → apply (children and orphans,
//! server-side) → external (Kafka topics, report hook; a healthy probe is reused) → status
//! (conditions, written only when it changed). One being deleted only has its topics finalized.

use super::cache::Caches;
use super::memo::PipelineProbe;
use super::{Context, ReconcileError, changed_failures, publish_changes};
use crate::apply::Applier;
use crate::builders::ingest::{IngestChildren, RenderedConfig};
use crate::builders::{self, Owner, ingest};
use crate::conditions::{self, Cond};
use crate::finalizer::{self, Decision, Progress};
use crate::health::{self, Rollout};
use crate::kafka::admin::TopicOutcome;
use crate::kafka::{TopicAdmin, TopicError, plan};
use crate::naming::{self, TOPICS_FINALIZER, TopicNames};
use crate::reporting;
use helios_crds::conditions::{READY, SUSPENDED};
use helios_crds::pipeline::{
    AnomalyPipelineStatus, DeletionPolicy, DetectorCounts, IngestionStatus, KafkaSpec, TopicSpec,
    TopicsStatus,
};
use helios_crds::{AnomalyPipeline, Detector};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use std::sync::Arc;
use std::time::Instant;

/// The kind, for metrics and logs.
pub const KIND: &str = "AnomalyPipeline";

/// Reconcile one pipeline, one stage after the other.
pub async fn reconcile(
    pipeline: Arc<AnomalyPipeline>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    if pipeline.meta().deletion_timestamp.is_some() {
        return delete(&pipeline, &ctx).await;
    }
    let target = dereference(&pipeline, &ctx).await?;
    let valid = validate(&pipeline, &target.owner)?;
    let children = build(&pipeline, &target.owner, &valid, &ctx)?;
    let deployment = apply(&ctx, &pipeline, &target, &children).await?;
    let probe = external(&ctx, &pipeline, &target.key, &valid.topics).await;
    let observed = Observed {
        deployment,
        probe,
        topics: valid.topics,
    };
    status(&ctx, &pipeline, &target, observed, started).await
}

/// A live pipeline as the stages after `dereference` see it.
struct Target {
    /// Its name, namespace and owner reference.
    owner: Owner,
    /// Its cache and memo key.
    key: String,
    /// The caches of the term (children, Detectors).
    caches: Caches,
}

/// The spec checked: the topic names and the rendered config the builders use.
struct Valid {
    /// The names of the events and anomalies topics.
    topics: TopicNames,
    /// The config the ingestion workers read.
    config: RenderedConfig,
}

/// What the `apply` and `external` stages observed, for the status.
struct Observed {
    /// The ingestion Deployment as applied.
    deployment: Deployment,
    /// What the external systems said (possibly a reused probe).
    probe: PipelineProbe,
    /// The topic names.
    topics: TopicNames,
}

/// A pipeline being deleted: its topics deleted (policy `Delete`) and the finalizer released,
/// its readiness forgotten.
async fn delete(pipeline: &AnomalyPipeline, ctx: &Context) -> Result<Action, ReconcileError> {
    let owner = Owner::of(pipeline)?;
    let api: Api<AnomalyPipeline> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let action = finalize(pipeline, ctx, &api, &owner.namespace).await?;
    ctx.metrics
        .pipeline_ready(&super::cache::key_of(KIND, pipeline), None);
    Ok(action)
}

/// The owner facts of a live pipeline, its finalizer synced with its deletion policy, and the
/// term's caches.
async fn dereference(pipeline: &AnomalyPipeline, ctx: &Context) -> Result<Target, ReconcileError> {
    let owner = Owner::of(pipeline)?;
    let key = super::cache::key_of(KIND, pipeline);
    let api: Api<AnomalyPipeline> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    sync_finalizer(pipeline, &api).await?;
    let caches = ctx.caches()?;
    Ok(Target { owner, key, caches })
}

/// Check the spec by rendering the config the ingestion workers read.
fn validate(pipeline: &AnomalyPipeline, owner: &Owner) -> Result<Valid, ReconcileError> {
    let topics = naming::topic_names(&owner.namespace, &owner.name);
    let config = ingest::render_config(owner, pipeline, &topics)?;
    Ok(Valid { topics, config })
}

/// The ingestion children of the validated spec (pure).
fn build(
    pipeline: &AnomalyPipeline,
    owner: &Owner,
    valid: &Valid,
    ctx: &Context,
) -> Result<IngestChildren, ReconcileError> {
    Ok(ingest::build_rendered(
        owner,
        pipeline,
        &valid.topics,
        &valid.config,
        &ctx.image,
        ctx.worker_api_server.as_ref(),
    )?)
}

/// Apply the children (all at once: none needs another to exist; the first failure in the
/// order ConfigMap, Deployment, Service, PDB is the error), delete the ones the pipeline no
/// longer has, publish what changed; the Deployment as applied (with its status).
async fn apply(
    ctx: &Context,
    pipeline: &AnomalyPipeline,
    target: &Target,
    children: &IngestChildren,
) -> Result<Deployment, ReconcileError> {
    let applier = Applier::new(ctx, &target.caches.children, &target.key, &target.owner);
    // Made in step order: each takes its place among the changes when it is made.
    let config_map = applier.ensure(&children.config_map);
    let deployment = applier.apply(&children.deployment);
    let service = applier.ensure(&children.service);
    let pdb = children.pdb.as_ref().map(|pdb| applier.ensure(pdb));
    let pdb = async {
        match pdb {
            Some(ensured) => ensured.await.map(drop),
            None => Ok(()),
        }
    };
    let (config_map, deployment, service, pdb) =
        futures::join!(config_map, deployment, service, pdb);
    config_map?;
    let deployment = deployment?;
    service?;
    pdb?;
    applier.delete_orphans::<ConfigMap>().await?;
    applier.delete_orphans::<Deployment>().await?;
    applier.delete_orphans::<Service>().await?;
    applier.delete_orphans::<PodDisruptionBudget>().await?;
    publish_changes(ctx, pipeline, &applier.changes());
    Ok(deployment)
}

/// Probe the external systems (topics and report hook, at once); a healthy probe of this
/// generation is reused within its TTL. Failures are conditions, never errors.
async fn external(
    ctx: &Context,
    pipeline: &AnomalyPipeline,
    key: &str,
    names: &TopicNames,
) -> PipelineProbe {
    let generation = pipeline.metadata.generation;
    let cached = ctx.memo.probe(key, generation, Instant::now());
    ctx.metrics.probe(cached.is_some());
    if let Some(probe) = cached {
        return probe;
    }
    let ((topics, events_partitions), report) = futures::join!(
        ensure_topics(ctx, pipeline, names),
        reporting::check(pipeline.spec.reporting.as_ref(), &ctx.aws),
    );
    let probe = PipelineProbe {
        topics,
        events_partitions,
        report,
    };
    ctx.memo
        .probed(key, generation, Instant::now(), probe.clone());
    probe
}

/// The conditions a reconcile decided and the counts the status reports.
struct Decided {
    /// Every condition the operator owns, `Ready` first.
    conditions: Vec<Cond>,
    /// Whether `Ready` is True.
    ready: bool,
    /// The pipeline's Detectors by readiness.
    counts: DetectorCounts,
    /// Available ingestion replicas.
    replicas: i32,
}

/// Decide the conditions from what was observed and the pipeline's Detectors (from the cache).
fn decide(pipeline: &AnomalyPipeline, target: &Target, observed: &Observed) -> Decided {
    let mine = target
        .caches
        .detectors_of(&target.owner.namespace, &target.owner.name);
    let mine: Vec<&Detector> = mine.iter().map(AsRef::as_ref).collect();
    let (detectors_cond, counts) = health::detectors_ready(&mine);

    let rollout = Rollout::of_deployment(&observed.deployment);
    let desired = ingest::desired_replicas(pipeline);
    let ingestion_cond = health::ingestion_available(desired, Some(rollout));
    let suspended_cond = health::suspended(pipeline.spec.suspend, &[Some(rollout)]);

    let probe = &observed.probe;
    let details = [
        probe.topics.clone(),
        ingestion_cond,
        detectors_cond,
        probe.report.clone(),
    ];
    let ready = conditions::ready(&details);
    let is_ready = ready.status == conditions::Status::True;
    let mut decided = vec![ready];
    decided.extend(details);
    decided.push(suspended_cond);
    Decided {
        conditions: decided,
        ready: is_ready,
        counts,
        replicas: rollout.available,
    }
}

/// Warn about new failures, write the status if it changed, record readiness.
async fn status(
    ctx: &Context,
    pipeline: &AnomalyPipeline,
    target: &Target,
    observed: Observed,
    started: Instant,
) -> Result<Action, ReconcileError> {
    let decided = decide(pipeline, target, &observed);
    // The status as stored: the watched one, or the one this term wrote if the watch has not
    // delivered it yet (an older one must not reset lastTransitionTime: a false flap).
    let stored = ctx.memo.stored(
        &target.key,
        pipeline.resource_version().as_deref(),
        pipeline
            .status
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok()),
    );
    let previous = stored.conditions.clone();
    warn_new_failures(ctx, pipeline, &decided.conditions, &previous);
    let generation = pipeline.metadata.generation;
    let (owner, names) = (&target.owner, &observed.topics);
    let status = AnomalyPipelineStatus {
        observed_generation: generation,
        conditions: conditions::materialize(
            &decided.conditions,
            &previous,
            generation,
            &Time(Timestamp::now()),
        ),
        topics: Some(TopicsStatus {
            events: names.events.clone(),
            anomalies: names.anomalies.clone(),
            events_partitions: observed.probe.events_partitions,
        }),
        ingestion: Some(IngestionStatus {
            endpoint: Some(ingest::endpoint(&owner.namespace, &owner.name)),
            replicas: decided.replicas,
        }),
        detectors: Some(decided.counts),
    };
    let action = super::status::finish::<AnomalyPipeline, _>(
        ctx,
        super::status::Ending {
            kind: KIND,
            key: &target.key,
            owner,
            stored: &stored,
            status: &status,
            started,
            ready: decided.ready,
            recheck: None,
        },
    )
    .await?;
    ctx.metrics.pipeline_ready(&target.key, Some(decided.ready));
    Ok(action)
}

/// One Warning Event per condition that newly failed (not for `Ready`/`Suspended`, summaries).
fn warn_new_failures(
    ctx: &Context,
    pipeline: &AnomalyPipeline,
    decided: &[Cond],
    previous: &[Condition],
) {
    for failing in changed_failures(decided, previous, &[READY, SUSPENDED]) {
        ctx.events.publish(
            pipeline,
            EventType::Warning,
            &failing.reason,
            "Reconcile",
            format!("{}: {}", failing.type_, failing.message),
        );
    }
}

/// Add the topics finalizer for `deletionPolicy: Delete`, remove it for `Retain`.
async fn sync_finalizer(
    pipeline: &AnomalyPipeline,
    api: &Api<AnomalyPipeline>,
) -> Result<(), ReconcileError> {
    let wants = pipeline.spec.kafka.deletion_policy == DeletionPolicy::Delete;
    let has = pipeline.finalizers().iter().any(|f| f == TOPICS_FINALIZER);
    if wants == has {
        return Ok(());
    }
    let mut finalizers: Vec<String> = pipeline
        .finalizers()
        .iter()
        .filter(|f| *f != TOPICS_FINALIZER)
        .cloned()
        .collect();
    if wants {
        finalizers.push(TOPICS_FINALIZER.into());
    }
    patch_metadata(
        api,
        pipeline,
        serde_json::json!({ "finalizers": finalizers }),
    )
    .await
    .map_err(ReconcileError::FinalizerUpdateFailed)
}

/// A merge patch of `metadata`, guarded by the resourceVersion that was read.
async fn patch_metadata(
    api: &Api<AnomalyPipeline>,
    pipeline: &AnomalyPipeline,
    metadata: serde_json::Value,
) -> Result<(), kube::Error> {
    let mut metadata = metadata;
    if let (Some(map), Some(rv)) = (
        metadata.as_object_mut(),
        pipeline.resource_version().as_ref(),
    ) {
        map.insert("resourceVersion".into(), rv.clone().into());
    }
    let patch = serde_json::json!({ "metadata": metadata });
    match api
        .patch(
            &pipeline.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Already gone: nothing left to finalize.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Delete the topics (policy `Delete`) with a bounded retry, then release the finalizer.
async fn finalize(
    pipeline: &AnomalyPipeline,
    ctx: &Context,
    api: &Api<AnomalyPipeline>,
    namespace: &str,
) -> Result<Action, ReconcileError> {
    if !pipeline.finalizers().iter().any(|f| f == TOPICS_FINALIZER) {
        return Ok(Action::await_change());
    }
    let names = naming::topic_names(namespace, &pipeline.name_any());
    let now = Timestamp::now();
    let before = Progress::from_annotations(pipeline.metadata.annotations.as_ref(), now);
    let result = match admin_for(ctx, pipeline).await {
        Ok(admin) => admin.delete(&[&names.events, &names.anomalies]).await,
        Err(e) => Err(e),
    };
    let error = result.as_ref().err().map(ToString::to_string);
    match finalizer::decide(before, result.is_ok(), now) {
        Decision::Done => {
            ctx.events.publish(
                pipeline,
                EventType::Normal,
                "TopicsDeleted",
                "Delete",
                format!("deleted topics {} and {}", names.events, names.anomalies),
            );
            release(pipeline, api).await?;
            Ok(Action::await_change())
        }
        Decision::Retry(progress) => {
            let reason = result.err().map_or("TopicDeletionFailed", |e| e.reason());
            ctx.events.publish(
                pipeline,
                EventType::Warning,
                reason,
                "Delete",
                // One series: the Event's count is the number of failed attempts so far.
                format!(
                    "deleting topics {} and {} failed (retrying: at most {} attempts within {:?}): {}",
                    names.events,
                    names.anomalies,
                    finalizer::MAX_ATTEMPTS,
                    finalizer::MAX_ELAPSED,
                    error.unwrap_or_default()
                ),
            );
            let annotations = serde_json::to_value(progress.annotations()).unwrap_or_default();
            patch_metadata(
                api,
                pipeline,
                serde_json::json!({ "annotations": annotations }),
            )
            .await
            .map_err(ReconcileError::FinalizerUpdateFailed)?;
            Ok(Action::requeue(finalizer::RETRY_AFTER))
        }
        Decision::GiveUp(progress) => {
            ctx.events.publish(
                pipeline,
                EventType::Warning,
                "TopicDeletionAbandoned",
                "Delete",
                format!(
                    "gave up deleting topics {} and {} after {} attempts (they are retained): {}",
                    names.events,
                    names.anomalies,
                    progress.attempts,
                    error.unwrap_or_default()
                ),
            );
            release(pipeline, api).await?;
            Ok(Action::await_change())
        }
    }
}

async fn release(
    pipeline: &AnomalyPipeline,
    api: &Api<AnomalyPipeline>,
) -> Result<(), ReconcileError> {
    let finalizers: Vec<String> = pipeline
        .finalizers()
        .iter()
        .filter(|f| *f != TOPICS_FINALIZER)
        .cloned()
        .collect();
    patch_metadata(
        api,
        pipeline,
        serde_json::json!({ "finalizers": finalizers }),
    )
    .await
    .map_err(ReconcileError::FinalizerUpdateFailed)
}

/// The bootstrap servers (a value or a ConfigMap key) and client properties, with SASL
/// credentials read from their Secrets.
async fn connection(
    ctx: &Context,
    namespace: &str,
    kafka: &KafkaSpec,
) -> Result<(String, Vec<(String, String)>), TopicError> {
    let bootstrap = match (&kafka.bootstrap_servers, &kafka.bootstrap_config_map_ref) {
        (Some(servers), _) => servers.clone(),
        (None, Some(r)) => {
            let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
            let map = maps.get_opt(&r.name).await.map_err(|e| {
                TopicError::Connection(format!("cannot read ConfigMap {}: {e}", r.name))
            })?;
            map.and_then(|m| m.data)
                .and_then(|d| d.get(&r.key).cloned())
                .ok_or_else(|| {
                    TopicError::Connection(format!(
                        "ConfigMap {} has no key {} (kafka.bootstrapConfigMapRef)",
                        r.name, r.key
                    ))
                })?
        }
        (None, None) => {
            return Err(TopicError::Connection(
                "neither kafka.bootstrapServers nor kafka.bootstrapConfigMapRef is set".into(),
            ));
        }
    };
    let mut props = builders::kafka_env::client_properties(kafka);
    if let Some(sasl) = &kafka.sasl {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
        for (prop, r) in [
            ("sasl.username", &sasl.username_secret_ref),
            ("sasl.password", &sasl.password_secret_ref),
        ] {
            let value = secrets
                .get_opt(&r.name)
                .await
                .map_err(|e| TopicError::Connection(format!("cannot read Secret {}: {e}", r.name)))?
                .and_then(|s| s.data)
                .and_then(|d| d.get(&r.key).cloned())
                .and_then(|b| String::from_utf8(b.0).ok())
                .ok_or_else(|| {
                    TopicError::Connection(format!("Secret {} has no key {}", r.name, r.key))
                })?;
            props.push((prop.into(), value));
        }
    }
    Ok((bootstrap, props))
}

async fn admin_for(ctx: &Context, pipeline: &AnomalyPipeline) -> Result<TopicAdmin, TopicError> {
    let namespace = pipeline.namespace().unwrap_or_default();
    let (bootstrap, props) = connection(ctx, &namespace, &pipeline.spec.kafka).await?;
    ctx.admin(&bootstrap, &props)
}

/// Ensure both topics; the condition and the events topic's partition count.
async fn ensure_topics(
    ctx: &Context,
    pipeline: &AnomalyPipeline,
    names: &naming::TopicNames,
) -> (Cond, Option<i32>) {
    let admin = match admin_for(ctx, pipeline).await {
        Ok(a) => a,
        Err(e) => return (health::topics_error(&e), None),
    };
    let topics = &pipeline.spec.kafka.topics;
    // Both topics at once; their Events and results in the order events, anomalies.
    let (events, anomalies) = futures::join!(
        ensure_topic(&admin, &names.events, &topics.events),
        ensure_topic(&admin, &names.anomalies, &topics.anomalies),
    );
    let mut results = Vec::new();
    for (name, result) in [(&names.events, events), (&names.anomalies, anomalies)] {
        if let Ok(outcome) = &result {
            let what = if outcome.plan.create {
                Some(format!(
                    "created topic {name} with {} partitions",
                    outcome.partitions
                ))
            } else if let Some(n) = outcome.plan.grow_to {
                Some(format!("grew topic {name} to {n} partitions"))
            } else if outcome.plan.set_config.is_some() {
                Some(format!("corrected the config of topic {name}"))
            } else {
                None
            };
            if let Some(note) = what {
                ctx.events.publish_related(
                    pipeline,
                    Some(crate::events::related("KafkaTopic", name, None)),
                    EventType::Normal,
                    "TopicReconciled",
                    "Reconcile",
                    note,
                );
            }
        }
        results.push((name.clone(), result));
    }
    let partitions = results
        .first()
        .and_then(|(_, r)| r.as_ref().ok())
        .map(|o| o.partitions);
    (health::topics_ready(&results), partitions)
}

/// Ensure one topic as `spec` declares it (an invalid retention is a connection-config error).
async fn ensure_topic(
    admin: &TopicAdmin,
    name: &str,
    spec: &TopicSpec,
) -> Result<TopicOutcome, TopicError> {
    match plan::desired(name, spec) {
        Ok(desired) => admin.ensure(&desired).await,
        Err(e) => Err(TopicError::Connection(format!("invalid retention: {e}"))),
    }
}
