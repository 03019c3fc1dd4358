//! The one child applier of both controllers: server-side apply with one field manager and no
//! read before it (what changed is derived from the answer and the newest known metadata of the
//! child: the shared metadata cache, or this term's last answer when the watch is behind), and
//! orphan deletion by owner uid across every child kind, found in the cache rather than listed
//! (kinds the operator does not watch, like the worker identities while they are off, are
//! listed by label once per term instead).

use crate::builders::Owner;
use crate::controller::memo::EVERY_OWNER;
use crate::controller::{Context, ReconcileError};
use crate::naming::MANAGER;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Mutex;

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

/// The annotation that carries a hash of the spec the operator last applied to a child.
pub const APPLIED_HASH: &str = "helios.dev/applied-hash";

/// FNV-1a over `bytes`: stable across builds and platforms (unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `desired` with [`APPLIED_HASH`] set to the hash of everything else in it.
pub fn hashed<K: Resource + Serialize + Clone>(desired: &K) -> K {
    let hash = serde_json::to_vec(desired).map_or(0, |b| fnv1a(&b));
    let mut out = desired.clone();
    out.meta_mut()
        .annotations
        .get_or_insert_with(Default::default)
        .insert(APPLIED_HASH.into(), format!("{hash:016x}"));
    out
}

/// Whether a cached child already is `desired`: the same applied-spec hash, and still at the
/// version this term's last apply answered (a generation bump or, for kinds without one, any
/// change since means someone else edited it, so it is applied again).
pub fn up_to_date(
    cached: &kube::api::ObjectMeta,
    desired: &kube::api::ObjectMeta,
    answered: Version,
) -> bool {
    let hash = |m: &kube::api::ObjectMeta| m.annotations.as_ref()?.get(APPLIED_HASH).cloned();
    let now = Version::of(cached);
    let same_version = match (now.generation, answered.generation) {
        (Some(n), Some(a)) => n == a,
        _ => now.revision.is_some() && now.revision == answered.revision,
    };
    hash(cached).is_some() && hash(cached) == hash(desired) && same_version
}

/// The metadata cache of one child kind.
pub type MetaStore<K> = Store<PartialObjectMeta<K>>;

/// The caches of every child kind, shared by both controllers (managed fields dropped): the
/// metadata of each, and for the workloads (whose rollout the status reports) the object
/// stripped to its metadata and rollout status (see `controller::trigger::strip_deployment`).
#[derive(Clone)]
pub struct ChildCaches {
    /// Ingest ConfigMaps.
    pub config_maps: MetaStore<ConfigMap>,
    /// Ingest Deployments (metadata and rollout status).
    pub deployments: Store<Deployment>,
    /// Ingest and detector Services.
    pub services: MetaStore<Service>,
    /// Ingest PodDisruptionBudgets.
    pub pdbs: MetaStore<PodDisruptionBudget>,
    /// Detector StatefulSets (metadata and rollout status).
    pub stateful_sets: Store<StatefulSet>,
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
    /// What its cache holds of one object: its metadata, or a stripped workload.
    type Cached: Resource<DynamicType = ()> + Clone + Send + Sync + 'static;
    /// Its cache, if the operator watches this kind.
    fn cache(caches: &ChildCaches) -> Option<&Store<Self::Cached>>;
    /// The child as the reconcile reads it, when its cache holds that much (workloads).
    fn whole(_cached: &Self::Cached) -> Option<Self> {
        None
    }
}

macro_rules! child {
    ($kind:ty, $name:literal, |$c:ident| $store:expr) => {
        impl Child for $kind {
            const KIND: &'static str = $name;
            type Cached = PartialObjectMeta<Self>;
            fn cache($c: &ChildCaches) -> Option<&MetaStore<Self>> {
                $store
            }
        }
    };
}

macro_rules! workload {
    ($kind:ty, $name:literal, |$c:ident| $store:expr) => {
        impl Child for $kind {
            const KIND: &'static str = $name;
            type Cached = Self;
            fn cache($c: &ChildCaches) -> Option<&Store<Self>> {
                Some($store)
            }
            fn whole(cached: &Self) -> Option<Self> {
                Some(cached.clone())
            }
        }
    };
}

child!(ConfigMap, "ConfigMap", |c| Some(&c.config_maps));
workload!(Deployment, "Deployment", |c| &c.deployments);
child!(Service, "Service", |c| Some(&c.services));
child!(PodDisruptionBudget, "PodDisruptionBudget", |c| Some(
    &c.pdbs
));
workload!(StatefulSet, "StatefulSet", |c| &c.stateful_sets);
child!(ServiceAccount, "ServiceAccount", |c| c
    .identities
    .as_ref()
    .map(|i| &i.service_accounts));
child!(Role, "Role", |c| c.identities.as_ref().map(|i| &i.roles));
child!(RoleBinding, "RoleBinding", |c| c
    .identities
    .as_ref()
    .map(|i| &i.role_bindings));

/// One change: kind, name, what happened.
pub type Record = (&'static str, String, Change);

/// Applies the children of one owner and deletes the ones it no longer has, collecting what
/// changed for the owner's Events. Its calls may run concurrently (`&self`); each reserves its
/// place in [`Applier::changes`] when it is called, so the changes keep the order of the calls
/// whatever order the answers come in.
pub struct Applier<'a> {
    ctx: &'a Context,
    caches: &'a ChildCaches,
    owner_key: &'a str,
    owner: &'a Owner,
    kept: Mutex<Vec<(&'static str, String)>>,
    slots: Mutex<Vec<Vec<Record>>>,
}

impl<'a> Applier<'a> {
    /// An applier for `owner`, known as `owner_key`.
    pub fn new(
        ctx: &'a Context,
        caches: &'a ChildCaches,
        owner_key: &'a str,
        owner: &'a Owner,
    ) -> Self {
        Self {
            ctx,
            caches,
            owner_key,
            owner,
            kept: Mutex::new(Vec::new()),
            slots: Mutex::new(Vec::new()),
        }
    }

    /// What changed, in the order of the calls that changed it.
    pub fn changes(&self) -> Vec<Record> {
        self.slots
            .lock()
            .map(|slots| slots.iter().flatten().cloned().collect())
            .unwrap_or_default()
    }

    /// A place for the changes of one call, after those of the calls made before it.
    fn reserve(&self) -> usize {
        self.slots.lock().map_or(0, |mut slots| {
            slots.push(Vec::new());
            slots.len() - 1
        })
    }

    /// Record `change` of `kind` `name` in `slot`.
    fn record(&self, slot: usize, kind: &'static str, name: String, change: Change) {
        if let Ok(mut slots) = self.slots.lock()
            && let Some(records) = slots.get_mut(slot)
        {
            records.push((kind, name, change));
        }
    }

    /// Remember that `kind` `name` belongs (it is no orphan).
    fn keep(&self, kind: &'static str, name: String) {
        if let Ok(mut kept) = self.kept.lock() {
            kept.push((kind, name));
        }
    }

    /// Make `desired` the child's spec; the object with its status (from the cache when the
    /// apply is skipped because nothing changed, see [`Applier::ensure`]; a GET when the cache
    /// holds only its metadata).
    pub fn apply<'s, K: Child>(
        &'s self,
        desired: &'s K,
    ) -> impl Future<Output = Result<K, ReconcileError>> + 's {
        let slot = self.reserve();
        async move {
            let namespace = desired.namespace().unwrap_or_default();
            if let Some(object) = self.ensure_in(slot, desired).await? {
                return Ok(object);
            }
            let name = desired.name_any();
            let cached = K::cache(self.caches)
                .and_then(|s| s.get(&ObjectRef::new(&name).within(&namespace)))
                .and_then(|c| K::whole(&c));
            if let Some(object) = cached {
                return Ok(object);
            }
            let api: Api<K> = Api::namespaced(self.ctx.client.clone(), &namespace);
            match api.get_opt(&name).await {
                Ok(Some(object)) => Ok(object),
                // Gone since the cache saw it: apply after all.
                Ok(None) => self.write(slot, &api, &hashed(desired), None).await,
                Err(source) => Err(ReconcileError::ReadFailed {
                    what: K::KIND,
                    source,
                }),
            }
        }
    }

    /// Server-side apply `desired` (force, field manager `helios-operator`) unless the cache
    /// shows the child carries the same applied-spec hash at the version this term's last apply
    /// left (nobody changed it since): then nothing is sent. The object when it was applied.
    pub fn ensure<'s, K: Child>(
        &'s self,
        desired: &'s K,
    ) -> impl Future<Output = Result<Option<K>, ReconcileError>> + 's {
        let slot = self.reserve();
        self.ensure_in(slot, desired)
    }

    /// [`Applier::ensure`], its change recorded in `slot`.
    async fn ensure_in<K: Child>(
        &self,
        slot: usize,
        desired: &K,
    ) -> Result<Option<K>, ReconcileError> {
        let namespace = desired.namespace().unwrap_or_default();
        let name = desired.name_any();
        let child_key = format!("{}/{namespace}/{name}", K::KIND);
        let desired = hashed(desired);
        let cached =
            K::cache(self.caches).and_then(|s| s.get(&ObjectRef::new(&name).within(&namespace)));
        let answered = self.ctx.memo.child(self.owner_key, &child_key);
        if let (Some(c), Some(a)) = (&cached, answered)
            && up_to_date(c.meta(), desired.meta(), a)
        {
            self.record(slot, K::KIND, name.clone(), Change::Unchanged);
            self.keep(K::KIND, name);
            return Ok(None);
        }
        let cached = cached.map(|m| Version::of(m.meta()));
        let before = match (cached, answered) {
            (Some(c), Some(a)) => Some(a.newest(c)),
            (c, a) => c.or(a),
        };
        let api: Api<K> = Api::namespaced(self.ctx.client.clone(), &namespace);
        self.write(slot, &api, &desired, before).await.map(Some)
    }

    async fn write<K: Child>(
        &self,
        slot: usize,
        api: &Api<K>,
        desired: &K,
        before: Option<Version>,
    ) -> Result<K, ReconcileError> {
        let (namespace, name) = (desired.namespace().unwrap_or_default(), desired.name_any());
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
        let child_key = format!("{}/{namespace}/{name}", K::KIND);
        self.ctx.memo.saw_child(self.owner_key, &child_key, after);
        self.record(slot, K::KIND, name.clone(), change(before, after));
        self.keep(K::KIND, name);
        Ok(object)
    }

    /// Delete the children of kind `K` controlled by the owner that this applier did not apply:
    /// found in the cache, or (a kind the operator does not watch) listed once per term.
    pub fn delete_orphans<K: Child>(
        &self,
    ) -> impl Future<Output = Result<(), ReconcileError>> + '_ {
        let slot = self.reserve();
        async move {
            let memo = &self.ctx.memo;
            let orphans = match K::cache(self.caches) {
                Some(store) => store
                    .state_filter(|m| self.is_orphan::<K>(m.meta()))
                    .iter()
                    .map(|m| m.meta().clone())
                    .collect(),
                None if memo.swept(self.owner_key, K::KIND) || memo.swept(EVERY_OWNER, K::KIND) => {
                    return Ok(());
                }
                None => self.listed_orphans::<K>().await?,
            };
            for orphan in orphans {
                let namespace = orphan.namespace.unwrap_or_default();
                let name = orphan.name.unwrap_or_default();
                let api: Api<K> = Api::namespaced(self.ctx.client.clone(), &namespace);
                match api.delete(&name, &DeleteParams::background()).await {
                    Ok(_) => self.record(slot, K::KIND, name, Change::Deleted),
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(ReconcileError::OrphanCleanupFailed(e)),
                }
            }
            if K::cache(self.caches).is_none() {
                // Nothing recreates an unwatched kind: one sweep per term is enough.
                memo.did_sweep(self.owner_key, K::KIND);
            }
            Ok(())
        }
    }

    /// Whether `meta` is controlled by the owner and was not applied by this applier.
    fn is_orphan<K: Child>(&self, meta: &ObjectMeta) -> bool {
        let name = meta.name.as_deref().unwrap_or_default();
        let kept = || {
            // A poisoned lock keeps everything: never delete what may have been applied.
            self.kept.lock().map_or(true, |kept| {
                kept.iter()
                    .any(|(kind, kept)| *kind == K::KIND && kept == name)
            })
        };
        meta.owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == self.owner.reference.uid && o.controller == Some(true))
            && !kept()
    }

    /// The orphans of a kind without a cache, listed (metadata only) by the managed-by and
    /// instance labels every child carries; none, for every owner this term, when the operator
    /// may not list the kind (its RBAC leaves the kind out, so it cannot delete them either).
    async fn listed_orphans<K: Child>(&self) -> Result<Vec<ObjectMeta>, ReconcileError> {
        let api: Api<K> = Api::namespaced(self.ctx.client.clone(), &self.owner.namespace);
        let selector = format!(
            "{},app.kubernetes.io/instance={}",
            crate::controller::cache::MANAGED_SELECTOR,
            self.owner.name
        );
        match api
            .list_metadata(&ListParams::default().labels(&selector))
            .await
        {
            Ok(list) => Ok(list
                .items
                .into_iter()
                .map(|m| m.metadata)
                .filter(|m| self.is_orphan::<K>(m))
                .collect()),
            Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => {
                // Not for any owner this term: once, not once per owner.
                tracing::warn!(
                    kind = K::KIND,
                    code = s.code,
                    "cannot list this kind of child: leftovers of it (if any) are not deleted"
                );
                self.ctx.memo.did_sweep(EVERY_OWNER, K::KIND);
                Ok(Vec::new())
            }
            Err(e) => Err(ReconcileError::OrphanCleanupFailed(e)),
        }
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
    fn a_child_is_up_to_date_only_with_the_same_hash_at_the_answered_version() {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("c".into());
        let desired = hashed(&cm);
        let mut cached = desired.metadata.clone();
        cached.resource_version = Some("7".into());
        let answered = v(7, None);
        assert!(up_to_date(&cached, &desired.metadata, answered));
        // Someone edited it since our apply.
        assert!(!up_to_date(&cached, &desired.metadata, v(6, None)));
        // A different spec hashes differently.
        cm.data = Some([("k".to_string(), "v".to_string())].into());
        assert!(!up_to_date(&cached, &hashed(&cm).metadata, answered));
        // Kinds with a generation compare it, not the resourceVersion (status changes bump that).
        let mut with_gen = cached.clone();
        with_gen.generation = Some(3);
        with_gen.resource_version = Some("99".into());
        assert!(up_to_date(&with_gen, &desired.metadata, v(7, Some(3))));
        assert!(!up_to_date(&with_gen, &desired.metadata, v(7, Some(2))));
        // No hash on the cached object (applied by an older operator): apply.
        assert!(!up_to_date(
            &ConfigMap::default().metadata,
            &desired.metadata,
            answered
        ));
    }

    #[test]
    fn the_hash_is_stable() {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("c".into());
        assert_eq!(hashed(&cm).metadata, hashed(&cm).metadata);
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn every_child_kind_has_a_stable_name() {
        assert_eq!(<ConfigMap as Child>::KIND, "ConfigMap");
        assert_eq!(<PodDisruptionBudget as Child>::KIND, "PodDisruptionBudget");
        assert_eq!(<RoleBinding as Child>::KIND, "RoleBinding");
    }
}
