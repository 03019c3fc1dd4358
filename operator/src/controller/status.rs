//! The one ending of both controllers' reconciles: the status written by server-side apply of
//! the status subresource with the operator's field manager, only when it differs from the
//! stored status (timestamps aside), remembered for the term so the next reconcile compares
//! against it; then the success recorded and the next check scheduled.

use super::memo::StoredStatus;
use super::{Context, ReconcileError};
use crate::conditions;
use crate::naming::MANAGER;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use crate::builders::Owner;
use kube::runtime::controller::Action;

/// Requeue interval while something is not ready yet.
const NOT_READY_REQUEUE: Duration = Duration::from_secs(15);
/// Requeue interval when everything is ready (topic drift, report hook re-check).
const READY_REQUEUE: Duration = Duration::from_secs(300);

/// A namespaced custom resource whose status the operator writes.
pub trait StatusOwner:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + Debug + DeserializeOwned
{
}

impl<K> StatusOwner for K where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned
{
}

/// A reconcile whose status is decided.
pub struct Ending<'a, S> {
    /// The kind, for metrics.
    pub kind: &'static str,
    /// The object's cache key.
    pub key: &'a str,
    /// The object.
    pub owner: &'a Owner,
    /// Its status as last stored.
    pub stored: &'a StoredStatus,
    /// The status decided now.
    pub status: &'a S,
    /// When the reconcile started.
    pub started: Instant,
    /// Whether the object is Ready.
    pub ready: bool,
    /// Check again no later than this (a worker heartbeat that goes stale then).
    pub recheck: Option<Duration>,
}

/// Writes the status if it changed, records the success and its duration, and requeues soon
/// while not Ready, rarely once Ready (sooner when `recheck` says so).
pub async fn finish<K, S>(ctx: &Context, end: Ending<'_, S>) -> Result<Action, ReconcileError>
where
    K: StatusOwner,
    S: Serialize,
{
    write_if_changed::<K, S>(
        ctx,
        end.key,
        &end.owner.namespace,
        &end.owner.name,
        end.stored,
        end.status,
    )
    .await?;
    ctx.succeeded(end.key);
    ctx.metrics.reconciled(end.kind, end.started.elapsed());
    Ok(Action::requeue(requeue_after(end.ready, end.recheck)))
}

/// When to reconcile again: [`NOT_READY_REQUEUE`] while not Ready, [`READY_REQUEUE`] once
/// Ready, or `recheck` if that is sooner.
pub fn requeue_after(ready: bool, recheck: Option<Duration>) -> Duration {
    let regular = if ready {
        READY_REQUEUE
    } else {
        NOT_READY_REQUEUE
    };
    recheck.map_or(regular, |r| r.min(regular))
}

/// Write `status` to object `name` of kind `K` (known as `key`) unless `stored` already says it.
async fn write_if_changed<K, S>(
    ctx: &Context,
    key: &str,
    namespace: &str,
    name: &str,
    stored: &StoredStatus,
    status: &S,
) -> Result<(), ReconcileError>
where
    K: StatusOwner,
    S: Serialize,
{
    let wanted = serde_json::to_value(status).unwrap_or_default();
    if !conditions::status_needs_write(stored.value.as_ref(), &wanted) {
        return Ok(());
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": { "name": name },
        "status": status,
    });
    let written = api
        .patch_status(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(ReconcileError::StatusWriteFailed)?;
    ctx.memo
        .wrote(key, written.resource_version().as_deref(), wanted);
    Ok(())
}
