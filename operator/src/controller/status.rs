//! The one status writer of both controllers: server-side apply of the status subresource with
//! the operator's field manager, only when it differs from the stored status (timestamps aside),
//! remembered for the term so the next reconcile compares against it.

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

/// Write `status` to object `name` of kind `K` (known as `key`) unless `stored` already says it.
pub async fn write_if_changed<K, S>(
    ctx: &Context,
    key: &str,
    namespace: &str,
    name: &str,
    stored: &StoredStatus,
    status: &S,
) -> Result<(), ReconcileError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned,
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
