//! Server-side apply of children with one field manager, and removal of orphans by label.

use crate::naming::MANAGER;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// What an apply changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The object did not exist.
    Created,
    /// The object's spec (generation) or, for objects without one, its content changed.
    Updated,
    /// Nothing changed.
    Unchanged,
    /// The object no longer belonged and was deleted.
    Deleted,
}

/// The result of applying one child.
#[derive(Debug, Clone)]
pub struct Applied<K> {
    /// The object as the API server returned it (with status).
    pub object: K,
    /// What changed.
    pub change: Change,
}

/// A child kind the operator applies.
pub trait Child:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Child for K where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// Server-side apply `desired` (force, field manager `helios-operator`).
pub async fn apply<K: Child>(client: &Client, desired: &K) -> Result<Applied<K>, kube::Error> {
    let namespace = desired.namespace().unwrap_or_default();
    let name = desired.name_any();
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    let before = api.get_opt(&name).await?;
    let params = PatchParams::apply(MANAGER).force();
    let object = api.patch(&name, &params, &Patch::Apply(desired)).await?;
    let change = match before {
        None => Change::Created,
        Some(b) => {
            let (old, new) = (b.meta(), object.meta());
            let changed = match (old.generation, new.generation) {
                (Some(o), Some(n)) => o != n,
                _ => old.resource_version != new.resource_version,
            };
            if changed {
                Change::Updated
            } else {
                Change::Unchanged
            }
        }
    };
    Ok(Applied { object, change })
}

/// Delete objects of kind `K` in `namespace` matching `selector`, controlled by `owner_uid`,
/// whose names are not in `keep`. Returns the deleted names.
pub async fn delete_orphans<K: Child>(
    client: &Client,
    namespace: &str,
    selector: &str,
    owner_uid: &str,
    keep: &[String],
) -> Result<Vec<String>, kube::Error> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let list = api.list(&ListParams::default().labels(selector)).await?;
    let mut deleted = Vec::new();
    for obj in list {
        let name = obj.name_any();
        let owned = obj
            .owner_references()
            .iter()
            .any(|o| o.uid == owner_uid && o.controller == Some(true));
        if owned && !keep.contains(&name) {
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => deleted.push(name),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(deleted)
}
