//! Reconcile a `Detector` in stages: dereference (deletion, its pipeline from the cache) →
//! validate (the pipeline exists and is not being deleted) → build (pure: worker identity,
//! StatefulSet, headless Service) → apply (children and orphans, server-side) → status (`Ready`,
//! `observedGeneration`, `replicas`). The runtime conditions (`ModelTrained`, `DataFlowing`,
//! `AnomalyActive`) and `lastAnomaly` are written by the detector worker under its own field
//! manager; this reconciler never touches them.

use super::cache::Caches;
use super::{Context, ReconcileError, changed_failures, publish_changes};
use crate::apply::Applier;
use crate::builders::Owner;
use crate::builders::detector::{self as build, DetectorChildren};
use crate::conditions::{self, Cond};
use crate::health::{self, Rollout};
use helios_crds::conditions::READY;
use helios_crds::{AnomalyPipeline, Detector};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use std::sync::Arc;
use std::time::Instant;

/// The kind, for metrics and logs.
pub const KIND: &str = "Detector";

/// What the operator owns in a Detector's status.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnedStatus {
    /// The generation this status describes.
    pub observed_generation: Option<i64>,
    /// Only `Ready`.
    pub conditions: Vec<Condition>,
    /// Ready replicas of the StatefulSet.
    pub replicas: i32,
}

/// The operator-owned part of an existing status, for the "did anything change" check.
fn owned_part(detector: &Detector) -> Option<OwnedStatus> {
    let status = detector.status.as_ref()?;
    Some(OwnedStatus {
        observed_generation: status.observed_generation,
        conditions: status
            .conditions
            .iter()
            .filter(|c| c.type_ == READY)
            .cloned()
            .collect(),
        replicas: status.replicas,
    })
}

/// Reconcile one detector, one stage after the other.
pub async fn reconcile(
    detector: Arc<Detector>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let Some(target) = dereference(&detector, &ctx)? else {
        // Children go with the owner references; nothing external to clean up.
        return Ok(Action::await_change());
    };
    let outcome = match validate(&detector, target.pipeline.as_deref()) {
        Ok(pipeline) => {
            let children = build(&detector, pipeline, &ctx)?;
            let sts = apply(&ctx, &detector, &target, &children).await?;
            rolled_out(&detector, pipeline, &sts)
        }
        Err(not_ready) => Outcome {
            ready: not_ready,
            replicas: 0,
        },
    };
    status(&ctx, &detector, &target, outcome, started).await
}

/// A live detector as the stages after `dereference` see it.
struct Target {
    /// Its name, namespace and owner reference.
    owner: Owner,
    /// Its cache and memo key.
    key: String,
    /// The caches of the term (children).
    caches: Caches,
    /// Its pipeline, if the cache has it.
    pipeline: Option<Arc<AnomalyPipeline>>,
}

/// What a reconcile decided for the status.
struct Outcome {
    /// `Ready`.
    ready: Cond,
    /// Available replicas of the StatefulSet.
    replicas: i32,
}

/// The owner facts, the term's caches and the pipeline; `None` for a detector being deleted.
fn dereference(detector: &Detector, ctx: &Context) -> Result<Option<Target>, ReconcileError> {
    if detector.meta().deletion_timestamp.is_some() {
        return Ok(None);
    }
    let owner = Owner::of(detector)?;
    let key = super::cache::key_of(KIND, detector);
    let caches = ctx.caches()?;
    let pipeline = caches.pipeline(&owner.namespace, &detector.spec.pipeline_ref.name);
    Ok(Some(Target {
        owner,
        key,
        caches,
        pipeline,
    }))
}

/// The pipeline the children are built for, or why there is none to use (a `Ready` that is
/// False: a missing or deleted pipeline is a state to report, not a failure).
fn validate<'p>(
    detector: &Detector,
    pipeline: Option<&'p AnomalyPipeline>,
) -> Result<&'p AnomalyPipeline, Cond> {
    let name = &detector.spec.pipeline_ref.name;
    match pipeline {
        None => Err(Cond::fail(
            READY,
            "PipelineNotFound",
            format!("AnomalyPipeline {name} does not exist in this namespace"),
        )),
        Some(p) if p.meta().deletion_timestamp.is_some() => Err(Cond::fail(
            READY,
            "PipelineDeleting",
            format!("AnomalyPipeline {name} is being deleted"),
        )),
        Some(p) => Ok(p),
    }
}

/// The children of the detector in `pipeline` (pure).
fn build(
    detector: &Detector,
    pipeline: &AnomalyPipeline,
    ctx: &Context,
) -> Result<DetectorChildren, ReconcileError> {
    Ok(build::build_with(
        detector,
        pipeline,
        &ctx.image,
        &ctx.worker_identity,
        ctx.worker_api_server.as_ref(),
    )?)
}

/// Apply the children (the pods' identity before the StatefulSet, so its pods find it; the
/// three identity objects together, the Service alongside all of them; the first failure in the
/// order identity, StatefulSet, Service is the error), delete the ones the detector no longer
/// has (every kind at once), publish what changed; the StatefulSet as applied.
async fn apply(
    ctx: &Context,
    detector: &Detector,
    target: &Target,
    children: &DetectorChildren,
) -> Result<StatefulSet, ReconcileError> {
    let applier = Applier::new(ctx, &target.caches.children, &target.key, &target.owner);
    // Made in step order: each takes its place among the changes when it is made.
    let identity = children.per_detector_identity.then(|| {
        (
            applier.ensure(&children.service_account),
            applier.ensure(&children.role),
            applier.ensure(&children.role_binding),
        )
    });
    let sts = applier.apply(&children.stateful_set);
    let service = applier.ensure(&children.service);
    let workload = async {
        if let Some((account, role, binding)) = identity {
            let (account, role, binding) = futures::join!(account, role, binding);
            account?;
            role?;
            binding?;
        }
        sts.await
    };
    let (sts, service) = futures::join!(workload, service);
    let sts = sts?;
    service?;
    // Every kind at once (the first failure in this order is the error). With worker
    // identities off their kinds are not watched: the applier lists them once per term, so
    // what a run with identities on created does not stay behind.
    let (stateful_sets, services, accounts, roles, bindings) = futures::join!(
        applier.delete_orphans::<StatefulSet>(),
        applier.delete_orphans::<Service>(),
        applier.delete_orphans::<ServiceAccount>(),
        applier.delete_orphans::<Role>(),
        applier.delete_orphans::<RoleBinding>(),
    );
    stateful_sets?;
    services?;
    accounts?;
    roles?;
    bindings?;
    publish_changes(ctx, detector, &applier.changes());
    Ok(sts)
}

/// `Ready` and the replicas from the applied StatefulSet's rollout.
fn rolled_out(detector: &Detector, pipeline: &AnomalyPipeline, sts: &StatefulSet) -> Outcome {
    let rollout = Rollout::of_stateful_set(sts);
    let desired = build::desired_replicas(detector, pipeline);
    Outcome {
        ready: health::detector_ready(desired, Some(rollout)),
        replicas: rollout.available,
    }
}

/// Warn once about a new failure, write the operator-owned status if it changed.
async fn status(
    ctx: &Context,
    detector: &Detector,
    target: &Target,
    outcome: Outcome,
    started: Instant,
) -> Result<Action, ReconcileError> {
    let is_ready = outcome.ready.status == conditions::Status::True;
    // The status as stored (see the pipeline reconciler).
    let stored = ctx.memo.stored(
        &target.key,
        detector.resource_version().as_deref(),
        owned_part(detector).and_then(|s| serde_json::to_value(s).ok()),
    );
    let previous = stored.conditions.clone();
    let decided = [outcome.ready];
    for failing in changed_failures(&decided, &previous, &[]) {
        ctx.events.publish(
            detector,
            EventType::Warning,
            &failing.reason,
            "Reconcile",
            failing.message.clone(),
        );
    }
    let generation = detector.metadata.generation;
    let status = OwnedStatus {
        observed_generation: generation,
        conditions: conditions::materialize(
            &decided,
            &previous,
            generation,
            &Time(Timestamp::now()),
        ),
        replicas: outcome.replicas,
    };
    super::status::finish::<Detector, _>(
        ctx,
        super::status::Ending {
            kind: KIND,
            key: &target.key,
            owner: &target.owner,
            stored: &stored,
            status: &status,
            started,
            ready: is_ready,
        },
    )
    .await
}
