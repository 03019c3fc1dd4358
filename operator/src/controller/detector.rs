//! Reconcile a `Detector`: find its pipeline → ServiceAccount, Role and RoleBinding of the
//! worker, StatefulSet and headless Service (server-side apply) → `Ready`,
//! `observedGeneration` and `replicas` in the status. The runtime conditions
//! (`ModelTrained`, `DataFlowing`, `AnomalyActive`) and `lastAnomaly` are written by the
//! detector worker under its own field manager; this reconciler never touches them.

use super::{Context, ReconcileError, changed_failures, publish_changes};
use crate::apply::Applier;
use crate::builders::{self, detector as build};
use crate::conditions::{self, Cond};
use crate::health::{self, Rollout};
use helios_crds::Detector;
use helios_crds::conditions::READY;
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

/// Reconcile one detector.
pub async fn reconcile(
    detector: Arc<Detector>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    if detector.meta().deletion_timestamp.is_some() {
        // Children go with the owner references; nothing external to clean up.
        return Ok(Action::await_change());
    }
    let owner = builders::Owner::of(detector.as_ref())?;
    let key = super::cache::key_of(KIND, detector.as_ref());
    let pipeline_name = &detector.spec.pipeline_ref.name;
    let caches = ctx.caches()?;
    let pipeline = caches.pipeline(&owner.namespace, pipeline_name);

    let (ready, replicas) = match pipeline {
        None => (
            Cond::fail(
                READY,
                "PipelineNotFound",
                format!("AnomalyPipeline {pipeline_name} does not exist in this namespace"),
            ),
            0,
        ),
        Some(p) if p.meta().deletion_timestamp.is_some() => (
            Cond::fail(
                READY,
                "PipelineDeleting",
                format!("AnomalyPipeline {pipeline_name} is being deleted"),
            ),
            0,
        ),
        Some(pipeline) => {
            let children =
                build::build_with(&detector, &pipeline, &ctx.image, &ctx.worker_identity)?;
            // The pods' identity first, so the StatefulSet's pods find it.
            let mut applier = Applier::new(&ctx, &caches.children, &key, &owner);
            if children.per_detector_identity {
                applier.ensure(&children.service_account).await?;
                applier.ensure(&children.role).await?;
                applier.ensure(&children.role_binding).await?;
            }
            let sts = applier.apply(&children.stateful_set).await?;
            applier.ensure(&children.service).await?;
            applier.delete_orphans::<StatefulSet>().await?;
            applier.delete_orphans::<Service>().await?;
            // With worker identities off these kinds are not watched: the applier lists them once
            // per term, so what a run with identities on created does not stay behind.
            applier.delete_orphans::<ServiceAccount>().await?;
            applier.delete_orphans::<Role>().await?;
            applier.delete_orphans::<RoleBinding>().await?;
            publish_changes(&ctx, detector.as_ref(), &applier.changes).await;
            let rollout = Rollout::of_stateful_set(&sts);
            let desired = build::desired_replicas(&detector, &pipeline);
            (
                health::detector_ready(desired, Some(rollout)),
                rollout.available,
            )
        }
    };

    let is_ready = ready.status == conditions::Status::True;
    // The status as stored (see the pipeline reconciler).
    let stored = ctx.memo.stored(
        &key,
        detector.resource_version().as_deref(),
        owned_part(&detector).and_then(|s| serde_json::to_value(s).ok()),
    );
    let previous = stored.conditions.clone();
    let decided = [ready];
    for failing in changed_failures(&decided, &previous, &[]) {
        crate::events::publish(
            &ctx.recorder,
            detector.as_ref(),
            EventType::Warning,
            &failing.reason,
            "Reconcile",
            failing.message.clone(),
        )
        .await;
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
        replicas,
    };
    super::status::finish::<Detector, _>(
        &ctx,
        super::status::Ending {
            kind: KIND,
            key: &key,
            owner: &owner,
            stored: &stored,
            status: &status,
            started,
            ready: is_ready,
        },
    )
    .await
}
