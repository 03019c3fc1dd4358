//! The shared watch caches of one leadership term: one reflector per custom resource kind whose
//! events trigger both controllers and whose store the reconcilers read (a pipeline's Detectors,
//! a Detector's pipeline) instead of listing or getting them from the API server.

use super::Context;
use crate::apply::ChildCaches;
use futures::{Stream, StreamExt};
use helios_crds::{AnomalyPipeline, Detector};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, ReflectHandle, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;

/// Events a subscriber may lag behind its shared stream before the stream waits for it.
const SHARED_BUFFER: usize = 1024;
/// The label every child the operator creates carries.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=helios-operator";

/// The stores of one term (cheap to clone: handles to the same maps).
#[derive(Clone)]
pub struct Caches {
    /// Every watched AnomalyPipeline.
    pub pipelines: Store<AnomalyPipeline>,
    /// Every watched Detector.
    pub detectors: Store<Detector>,
    /// The metadata of every child.
    pub children: ChildCaches,
}

impl Caches {
    /// Wait until both stores hold a complete first listing.
    pub async fn ready(&self) -> bool {
        self.pipelines.wait_until_ready().await.is_ok()
            && self.detectors.wait_until_ready().await.is_ok()
            && self.children.ready().await
    }

    /// The Detectors of pipeline `name` in `namespace`.
    pub fn detectors_of(&self, namespace: &str, name: &str) -> Vec<Arc<Detector>> {
        detectors_in(&self.detectors, namespace, name)
    }

    /// Pipeline `name` in `namespace`, if it exists.
    pub fn pipeline(&self, namespace: &str, name: &str) -> Option<Arc<AnomalyPipeline>> {
        self.pipelines.get(&ObjectRef::new(name).within(namespace))
    }
}

/// A boxed root stream to drive.
pub type Root = futures::future::BoxFuture<'static, ()>;

/// The Detectors in `store` of pipeline `name` in `namespace`.
pub fn detectors_in(store: &Store<Detector>, namespace: &str, name: &str) -> Vec<Arc<Detector>> {
    store.state_filter(|d| {
        d.namespace().as_deref() == Some(namespace) && d.spec.pipeline_ref.name == name
    })
}

/// A shared reflector of a custom resource kind: its store and two subscribers (the kind's own
/// controller and the other controller's trigger).
pub struct SharedKind<K: Resource + Clone + 'static>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    /// The store.
    pub store: Store<K>,
    /// For the kind's own controller.
    pub own: ReflectHandle<K>,
    /// For the other controller's `watches`.
    pub other: ReflectHandle<K>,
}

/// The shared reflector of `api` (managed fields and kubectl's manifest copy dropped to save
/// memory) and its root stream.
/// Deletions (and objects that vanished across a re-list) are forgotten by `ctx` under `kind`;
/// a deletion is also passed to `on_delete` (shared streams carry no deletions to subscribers).
pub fn shared<K>(
    api: Api<K>,
    kind: &'static str,
    ctx: Arc<Context>,
    on_delete: impl Fn(&K) + Send + 'static,
) -> Option<(SharedKind<K>, Root)>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let (store, writer) = reflector::store_shared(SHARED_BUFFER);
    let own = writer.subscribe()?;
    let other = writer.subscribe()?;
    let reader = store.clone();
    let root = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(strip_custom::<K>)
        .reflect_shared(writer);
    Some((
        SharedKind { store, own, other },
        Box::pin(drive(root, kind, reader, ctx, on_delete)),
    ))
}

/// A reflector of one child kind: its store, its shared subscribers, its root.
pub struct ChildStream<W: Resource<DynamicType = ()> + Clone + 'static> {
    /// The store.
    pub store: Store<W>,
    /// The subscribers (one per controller that owns the kind).
    pub subs: Vec<ReflectHandle<W>>,
    /// The root stream (drive it to completion).
    pub root: Root,
}

/// A reflector of the operator's children (labelled as managed by it) as `api` returns them
/// (metadata only for an `Api<PartialObjectMeta<_>>`), each passed through `strip` before it
/// is stored, with `subscribers` shared subscribers (none: a plain reflector); a deleted child
/// is passed to `on_delete` (shared streams carry no deletions to subscribers).
pub fn children<W>(
    api: Api<W>,
    subscribers: usize,
    strip: impl FnMut(&mut W) + Send + 'static,
    on_delete: impl Fn(&W) + Send + 'static,
) -> Option<ChildStream<W>>
where
    W: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let config = watcher::Config::default().labels(MANAGED_SELECTOR);
    let (store, writer) = if subscribers == 0 {
        reflector::store()
    } else {
        reflector::store_shared(SHARED_BUFFER)
    };
    let subs = (0..subscribers)
        .map(|_| writer.subscribe())
        .collect::<Option<Vec<_>>>()?;
    let root = watcher::watcher(api, config)
        .default_backoff()
        .modify(strip)
        .reflect_shared(writer)
        .for_each(move |event| {
            match event {
                Ok(Event::Delete(child)) => on_delete(&child),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(kind = W::kind(&()).as_ref(), error = %e, "watch of the children failed; retrying")
                }
            }
            futures::future::ready(())
        });
    Some(ChildStream {
        store,
        subs,
        root: Box::pin(root),
    })
}

/// Drop what no reconcile reads of a cached object's metadata: managedFields.
pub fn strip_meta<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}

/// Drop what no reconcile reads of a pipeline or Detector: managedFields and kubectl's copy of
/// the last applied manifest (as large as the spec).
fn strip_custom<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(super::trigger::LAST_APPLIED);
    }
}

/// The key of `obj` as the context's per-object maps use it.
pub fn key_of<K: ResourceExt>(kind: &str, obj: &K) -> String {
    format!(
        "{kind}/{}/{}",
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

async fn drive<K, S>(
    root: S,
    kind: &'static str,
    store: Store<K>,
    ctx: Arc<Context>,
    on_delete: impl Fn(&K),
) where
    K: Resource<DynamicType = ()> + Clone + 'static,
    S: Stream<Item = watcher::Result<Event<K>>> + Send,
{
    futures::pin_mut!(root);
    while let Some(event) = root.next().await {
        match event {
            Ok(Event::Delete(obj)) => {
                ctx.gone(&key_of(kind, &obj));
                on_delete(&obj);
            }
            Ok(Event::InitDone) => {
                let alive: std::collections::HashSet<String> = store
                    .state()
                    .iter()
                    .map(|o| key_of(kind, o.as_ref()))
                    .collect();
                ctx.sweep(kind, |k| alive.contains(k));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(kind, error = %e, "watch of the custom resources failed; retrying")
            }
        }
    }
}
