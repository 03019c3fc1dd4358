//! The one child applier of both controllers: server-side apply with one field manager and no
//! read before it (what changed is derived from the answer and the newest known metadata of the
//! child: the shared metadata cache, or this term's last answer when the watch is behind), and
//! orphan deletion by owner uid across every child kind, found in the cache rather than listed.

use crate::controller::{Context, ReconcileError};
use crate::naming::MANAGER;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
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

/// The parts of a child's metadata that tell whether an apply changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// The resourceVersion as a number (etcd revision), if it is one.
    pub revision: Option<u64>,
    /// The generation, for kinds that have one.
    pub generation: Option<i64>,
}

impl Version {
    /// The version of an object's metadata.
    pub fn of(meta: &kube::api::ObjectMeta) -> Self {
        Self {
            revision: meta
                .resource_version
                .as_deref()
                .and_then(|r| r.parse().ok()),
            generation: meta.generation,
        }
    }

    /// The newer of two known versions (by revision; `self` when they cannot be ordered).
    pub fn newest(self, other: Self) -> Self {
        match (self.revision, other.revision) {
            (Some(a), Some(b)) if b > a => other,
            _ => self,
        }
    }
}

/// What an apply changed, from the newest version known before it and the answer.
pub fn change(before: Option<Version>, after: Version) -> Change {
    let Some(before) = before else {
        return Change::Created;
    };
    let changed = match (before.generation, after.generation) {
        (Some(o), Some(n)) => o != n,
        _ => before.revision != after.revision,
    };
    if changed {
        Change::Updated
    } else {
        Change::Unchanged
    }
}

/// The metadata cache of one child kind.
pub type MetaStore<K> = Store<PartialObjectMeta<K>>;

/// The metadata caches of every child kind, shared by both controllers (managed fields dropped).
#[derive(Clone)]
pub struct ChildCaches {
    /// Ingest ConfigMaps.
    pub config_maps: MetaStore<ConfigMap>,
    /// Ingest Deployments.
    pub deployments: MetaStore<Deployment>,
    /// Ingest and detector Services.
    pub services: MetaStore<Service>,
    /// Ingest PodDisruptionBudgets.
    pub pdbs: MetaStore<PodDisruptionBudget>,
    /// Detector StatefulSets.
    pub stateful_sets: MetaStore<StatefulSet>,
    /// Detector identities (only when the operator creates them, i.e. has the RBAC to watch).
    pub identities: Option<IdentityCaches>,
}

/// The metadata caches of the per-detector identity kinds.
#[derive(Clone)]
pub struct IdentityCaches {
    /// ServiceAccounts.
    pub service_accounts: MetaStore<ServiceAccount>,
    /// Roles.
    pub roles: MetaStore<Role>,
    /// RoleBindings.
    pub role_bindings: MetaStore<RoleBinding>,
}

impl ChildCaches {
    /// Wait until every cache holds a complete first listing.
    pub async fn ready(&self) -> bool {
        let base = self.config_maps.wait_until_ready().await.is_ok()
            && self.deployments.wait_until_ready().await.is_ok()
            && self.services.wait_until_ready().await.is_ok()
            && self.pdbs.wait_until_ready().await.is_ok()
            && self.stateful_sets.wait_until_ready().await.is_ok();
        match &self.identities {
            Some(i) => {
                base && i.service_accounts.wait_until_ready().await.is_ok()
                    && i.roles.wait_until_ready().await.is_ok()
                    && i.role_bindings.wait_until_ready().await.is_ok()
            }
            None => base,
        }
    }
}

/// A child kind the operator applies, and where its metadata is cached.
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
    /// The kind, for Events, errors and keys.
    const KIND: &'static str;
    /// Its metadata cache, if the operator watches this kind.
    fn cache(caches: &ChildCaches) -> Option<&MetaStore<Self>>;
}

macro_rules! child {
    ($kind:ty, $name:literal, |$c:ident| $store:expr) => {
        impl Child for $kind {
            const KIND: &'static str = $name;
            fn cache($c: &ChildCaches) -> Option<&MetaStore<Self>> {
                $store
            }
        }
    };
}

child!(ConfigMap, "ConfigMap", |c| Some(&c.config_maps));
child!(Deployment, "Deployment", |c| Some(&c.deployments));
child!(Service, "Service", |c| Some(&c.services));
child!(PodDisruptionBudget, "PodDisruptionBudget", |c| Some(
    &c.pdbs
));
child!(StatefulSet, "StatefulSet", |c| Some(&c.stateful_sets));
child!(ServiceAccount, "ServiceAccount", |c| c
    .identities
    .as_ref()
    .map(|i| &i.service_accounts));
child!(Role, "Role", |c| c.identities.as_ref().map(|i| &i.roles));
child!(RoleBinding, "RoleBinding", |c| c
    .identities
    .as_ref()
    .map(|i| &i.role_bindings));

/// Applies the children of one owner and deletes the ones it no longer has, collecting what
/// changed for the owner's Events.
pub struct Applier<'a> {
    ctx: &'a Context,
    caches: &'a ChildCaches,
    owner_key: &'a str,
    owner_uid: &'a str,
    kept: Vec<(&'static str, String)>,
    /// What changed: kind, name, change.
    pub changes: Vec<(&'static str, String, Change)>,
}

impl<'a> Applier<'a> {
    /// An applier for the owner known as `owner_key` with uid `owner_uid`.
    pub fn new(
        ctx: &'a Context,
        caches: &'a ChildCaches,
        owner_key: &'a str,
        owner_uid: &'a str,
    ) -> Self {
        Self {
            ctx,
            caches,
            owner_key,
            owner_uid,
            kept: Vec::new(),
            changes: Vec::new(),
        }
    }

    /// Server-side apply `desired` (force, field manager `helios-operator`); the object as the
    /// API server returned it (with status).
    pub async fn apply<K: Child>(&mut self, desired: &K) -> Result<K, ReconcileError> {
        let namespace = desired.namespace().unwrap_or_default();
        let name = desired.name_any();
        let child_key = format!("{}/{namespace}/{name}", K::KIND);
        let cached = K::cache(self.caches)
            .and_then(|s| s.get(&ObjectRef::new(&name).within(&namespace)))
            .map(|m| Version::of(&m.metadata));
        let answered = self.ctx.memo.child(self.owner_key, &child_key);
        let before = match (cached, answered) {
            (Some(c), Some(a)) => Some(a.newest(c)),
            (c, a) => c.or(a),
        };
        let api: Api<K> = Api::namespaced(self.ctx.client.clone(), &namespace);
        let object = api
            .patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(desired),
            )
            .await
            .map_err(|source| ReconcileError::ApplyFailed {
                kind: K::KIND,
                name: name.clone(),
                source,
            })?;
        let after = Version::of(object.meta());
        self.ctx.memo.saw_child(self.owner_key, &child_key, after);
        self.changes
            .push((K::KIND, name.clone(), change(before, after)));
        self.kept.push((K::KIND, name));
        Ok(object)
    }

    /// Delete the cached children of kind `K` controlled by the owner that this applier did not
    /// apply.
    pub async fn delete_orphans<K: Child>(&mut self) -> Result<(), ReconcileError> {
        let Some(store) = K::cache(self.caches) else {
            return Ok(());
        };
        let orphans = store.state_filter(|m| {
            m.owner_references()
                .iter()
                .any(|o| o.uid == self.owner_uid && o.controller == Some(true))
                && !self
                    .kept
                    .iter()
                    .any(|(kind, name)| *kind == K::KIND && *name == m.name_any())
        });
        for orphan in orphans {
            let (namespace, name) = (orphan.namespace().unwrap_or_default(), orphan.name_any());
            let api: Api<K> = Api::namespaced(self.ctx.client.clone(), &namespace);
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => self.changes.push((K::KIND, name, Change::Deleted)),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(ReconcileError::OrphanCleanupFailed(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(revision: u64, generation: Option<i64>) -> Version {
        Version {
            revision: Some(revision),
            generation,
        }
    }

    #[test]
    fn change_is_derived_from_the_newest_known_version_and_the_answer() {
        assert_eq!(change(None, v(5, Some(1))), Change::Created);
        assert_eq!(
            change(Some(v(5, Some(1))), v(9, Some(1))),
            Change::Unchanged
        );
        assert_eq!(change(Some(v(5, Some(1))), v(9, Some(2))), Change::Updated);
        assert_eq!(change(Some(v(5, None)), v(5, None)), Change::Unchanged);
        assert_eq!(change(Some(v(5, None)), v(6, None)), Change::Updated);
    }

    #[test]
    fn the_newer_revision_wins() {
        assert_eq!(v(5, Some(1)).newest(v(7, Some(2))), v(7, Some(2)));
        assert_eq!(v(7, Some(2)).newest(v(5, Some(1))), v(7, Some(2)));
        let unknown = Version {
            revision: None,
            generation: Some(3),
        };
        assert_eq!(unknown.newest(v(5, Some(1))), unknown);
    }

    #[test]
    fn every_child_kind_has_a_stable_name() {
        assert_eq!(<ConfigMap as Child>::KIND, "ConfigMap");
        assert_eq!(<PodDisruptionBudget as Child>::KIND, "PodDisruptionBudget");
        assert_eq!(<RoleBinding as Child>::KIND, "RoleBinding");
    }
}
