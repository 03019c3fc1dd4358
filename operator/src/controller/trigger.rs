//! Which watch events start a reconcile: only those that change what the reconcile reads. Each
//! trigger stream keeps a fingerprint per object of the facts its reconcile reads (identity,
//! spec generation, deletion, finalizers, labels, annotations, controller, and for workloads
//! their rollout status) and passes an event only when that fingerprint changed and the event is
//! not the echo of the operator's own apply. Status-only writes (the operator's own status
//! writes, a Deployment's progress the status does not report, a PDB's health counts) and
//! metadata-only churn (managedFields, resourceVersion) start nothing; the stores still see them.

use super::Context;
use crate::apply::Child;
use crate::health::Rollout;
use futures::{Stream, StreamExt};
use helios_crds::{AnomalyPipeline, Detector};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::api::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::{Resource, ResourceExt};
use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A digest of what a reconcile reads of one object (compared within one process only).
pub type Fingerprint = u64;

/// The annotation kubectl keeps a copy of the whole last applied manifest in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Hash the metadata a reconcile reads: uid, generation, deletion, finalizers, labels,
/// annotations (without kubectl's manifest copy) and controller references; never the
/// resourceVersion or managedFields.
fn hash_meta(meta: &ObjectMeta, h: &mut DefaultHasher) {
    meta.uid.hash(h);
    meta.generation.hash(h);
    meta.deletion_timestamp.is_some().hash(h);
    meta.finalizers.hash(h);
    meta.labels.hash(h);
    for (k, v) in meta.annotations.iter().flatten() {
        if k != LAST_APPLIED {
            (k, v).hash(h);
        }
    }
    for o in meta.owner_references.iter().flatten() {
        (&o.kind, &o.name, &o.uid, o.controller).hash(h);
    }
}

/// The fingerprint of an object its own controller reconciles (a pipeline, a Detector): its
/// metadata only, so its status (which the operator and the detect workers write) starts nothing.
pub fn primary<K: Resource>(obj: &K) -> Fingerprint {
    let mut h = DefaultHasher::new();
    hash_meta(obj.meta(), &mut h);
    h.finish()
}

/// The fingerprint of a Detector as its pipeline's reconcile reads it: which pipeline, whether
/// it is being deleted, whether it is Ready.
pub fn detector_for_pipeline(d: &Detector) -> Fingerprint {
    let mut h = DefaultHasher::new();
    d.metadata.uid.hash(&mut h);
    d.metadata.deletion_timestamp.is_some().hash(&mut h);
    d.spec.pipeline_ref.name.hash(&mut h);
    crate::health::detector_is_ready(d).hash(&mut h);
    h.finish()
}

/// The fingerprint of a pipeline as its Detectors' reconciles read it (its spec, identity and
/// deletion, never its status).
pub fn pipeline_for_detectors(p: &AnomalyPipeline) -> Fingerprint {
    primary(p)
}

/// A child kind as its trigger stream sees it.
pub trait Watched: Resource + Send + Sync + 'static {
    /// The rollout facts the owner's status reports (workloads only).
    fn rollout(&self) -> Option<Rollout> {
        None
    }
}

impl<K: Resource + Send + Sync + 'static> Watched for PartialObjectMeta<K> {}

impl Watched for Deployment {
    fn rollout(&self) -> Option<Rollout> {
        Some(Rollout::of_deployment(self))
    }
}

impl Watched for StatefulSet {
    fn rollout(&self) -> Option<Rollout> {
        Some(Rollout::of_stateful_set(self))
    }
}

/// The fingerprint of a child as its owner's reconcile reads it: its metadata, its rollout
/// facts (workloads), and for kinds without a generation (ConfigMaps, Services) the
/// resourceVersion too (an edit of their content shows nowhere else in a metadata-only watch).
pub fn child<C: Watched>(obj: &C) -> Fingerprint {
    let meta = obj.meta();
    let mut h = DefaultHasher::new();
    hash_meta(meta, &mut h);
    if meta.generation.is_none() {
        meta.resource_version.hash(&mut h);
    }
    obj.rollout().hash(&mut h);
    h.finish()
}

/// Whether an event with fingerprint `new` starts a reconcile, given the last fingerprint of the
/// object (`None`: first seen) and whether the event is the echo of the operator's own apply
/// (that reconcile already read the answer).
pub fn relevant_change(old: Option<Fingerprint>, new: Fingerprint, echo: bool) -> bool {
    old != Some(new) && !echo
}

/// The last fingerprint seen per object (namespace, name) of one trigger stream.
#[derive(Debug, Default)]
pub struct Seen(HashMap<(String, String), Fingerprint>);

impl Seen {
    /// Record `fp` for `obj`; the fingerprint it had before.
    fn record<K: ResourceExt>(&mut self, obj: &K, fp: Fingerprint) -> Option<Fingerprint> {
        self.0
            .insert((obj.namespace().unwrap_or_default(), obj.name_any()), fp)
    }
}

/// `stream` passing only the objects whose `fingerprint` changed and that `echo` does not call
/// the echo of the operator's own write.
pub fn only_relevant<K, S>(
    stream: S,
    fingerprint: impl Fn(&K) -> Fingerprint + Send + 'static,
    echo: impl Fn(&K) -> bool + Send + 'static,
) -> impl Stream<Item = Arc<K>> + Send + 'static
where
    K: Resource + Send + Sync + 'static,
    S: Stream<Item = Arc<K>> + Send + 'static,
{
    let mut seen = Seen::default();
    stream.filter(move |obj| {
        let fp = fingerprint(obj);
        let old = seen.record(obj.as_ref(), fp);
        futures::future::ready(relevant_change(old, fp, echo(obj)))
    })
}

/// Whether `child` is, at its current resourceVersion, exactly what the operator's last apply of
/// it this term answered (so the owner's reconcile that applied it already read it).
pub fn is_echo<C: Child>(ctx: &Context, child: &C::Cached) -> bool {
    let meta = child.meta();
    let Some(revision) = meta
        .resource_version
        .as_deref()
        .and_then(|r| r.parse().ok())
    else {
        return false;
    };
    let namespace = meta.namespace.clone().unwrap_or_default();
    let child_key = format!(
        "{}/{namespace}/{}",
        C::KIND,
        meta.name.as_deref().unwrap_or_default()
    );
    meta.owner_references
        .iter()
        .flatten()
        .filter(|o| o.controller == Some(true))
        .any(|o| {
            let owner_key = format!("{}/{namespace}/{}", o.kind, o.name);
            ctx.memo
                .child(&owner_key, &child_key)
                .is_some_and(|v| v.revision == Some(revision))
        })
}

/// The trigger stream of child kind `C` for its owner's controller.
pub fn children<C, S>(stream: S, ctx: Arc<Context>) -> impl Stream<Item = Arc<C::Cached>> + Send
where
    C: Child,
    C::Cached: Watched,
    S: Stream<Item = Arc<C::Cached>> + Send + 'static,
{
    only_relevant(
        stream,
        |c: &C::Cached| child(c),
        move |c| is_echo::<C>(&ctx, c),
    )
}

/// Strip a workload for its cache: no managedFields, no spec (the applied-spec hash annotation
/// says what was applied), no status conditions; what `Rollout` reads stays.
pub fn strip_deployment(d: &mut Deployment) {
    d.metadata.managed_fields = None;
    d.spec = Default::default();
    if let Some(s) = d.status.as_mut() {
        s.conditions = None;
    }
}

/// See [`strip_deployment`].
pub fn strip_stateful_set(s: &mut StatefulSet) {
    s.metadata.managed_fields = None;
    s.spec = Default::default();
    if let Some(st) = s.status.as_mut() {
        st.conditions = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentStatus, StatefulSetStatus};
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    fn deployment() -> Deployment {
        let mut d = Deployment::default();
        d.metadata.name = Some("d".into());
        d.metadata.namespace = Some("ns".into());
        d.metadata.uid = Some("u".into());
        d.metadata.generation = Some(1);
        d.metadata.resource_version = Some("10".into());
        d.status = Some(DeploymentStatus {
            observed_generation: Some(1),
            replicas: Some(2),
            available_replicas: Some(1),
            ..Default::default()
        });
        d
    }

    fn managed_fields_touched<K: Resource>(mut obj: K) -> K {
        obj.meta_mut().managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some("kube-controller-manager".into()),
            ..Default::default()
        }]);
        obj.meta_mut().resource_version = Some("11".into());
        obj
    }

    #[test]
    fn a_deployment_change_counts_only_when_its_rollout_or_spec_side_metadata_changes() {
        let before = deployment();
        let fp = child(&before);
        assert_eq!(child(&managed_fields_touched(before.clone())), fp);

        let mut available = before.clone();
        if let Some(s) = available.status.as_mut() {
            s.available_replicas = Some(2);
        }
        assert_ne!(child(&available), fp);

        // Progress the status does not report (conditions, updatedReplicas) counts for nothing.
        let mut progress = managed_fields_touched(before.clone());
        if let Some(s) = progress.status.as_mut() {
            s.updated_replicas = Some(2);
            s.conditions = Some(vec![Default::default()]);
        }
        assert_eq!(child(&progress), fp);

        let mut respec = before.clone();
        respec.metadata.generation = Some(2);
        assert_ne!(child(&respec), fp);
        let mut deleting = before;
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert_ne!(child(&deleting), fp);
    }

    #[test]
    fn a_stateful_set_counts_when_its_ready_replicas_change() {
        let mut s = StatefulSet::default();
        s.metadata.generation = Some(1);
        s.status = Some(StatefulSetStatus {
            observed_generation: Some(1),
            replicas: 1,
            ..Default::default()
        });
        let fp = child(&s);
        let mut ready = s.clone();
        if let Some(st) = ready.status.as_mut() {
            st.ready_replicas = Some(1);
        }
        assert_ne!(child(&ready), fp);
    }

    #[test]
    fn a_kind_without_a_generation_counts_every_new_version() {
        let mut cm = PartialObjectMeta::<ConfigMap>::default();
        cm.metadata.resource_version = Some("5".into());
        let fp = child(&cm);
        let mut edited = cm.clone();
        edited.metadata.resource_version = Some("6".into());
        assert_ne!(child(&edited), fp);
        // The same version again (a re-list) is no change.
        assert_eq!(child(&cm.clone()), fp);
    }

    fn detector() -> Detector {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "helios.dev/v1alpha1", "kind": "Detector",
            "metadata": {"name": "d", "namespace": "ns", "uid": "u", "generation": 3},
            "spec": {"pipelineRef": {"name": "p"}, "features": ["event_count"]},
        }))
        .expect("a minimal detector")
    }

    fn with_ready(mut d: Detector, status: &str) -> Detector {
        d.status = serde_json::from_value(serde_json::json!({"conditions": [{
            "type": "Ready", "status": status, "reason": "R", "message": "",
            "lastTransitionTime": "2026-12-07T00:00:00Z"
        }]}))
        .expect("a detector status");
        d
    }

    #[test]
    fn a_status_write_on_a_primary_object_counts_for_nothing() {
        let d = detector();
        let fp = primary(&d);
        let written = with_ready(managed_fields_touched(d.clone()), "True");
        assert_eq!(primary(&written), fp);

        let mut labelled = d.clone();
        labelled.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
        assert_ne!(primary(&labelled), fp);
        let mut finalized = d.clone();
        finalized.metadata.finalizers = Some(vec!["helios.dev/topics".into()]);
        assert_ne!(primary(&finalized), fp);

        // kubectl's manifest copy changes with every `kubectl apply`, but only with the spec.
        let mut applied = d;
        applied.metadata.annotations = Some([(LAST_APPLIED.to_string(), "{}".to_string())].into());
        assert_eq!(primary(&applied), fp);
    }

    #[test]
    fn only_a_detector_becoming_ready_or_not_counts_for_its_pipeline() {
        let not_ready = with_ready(detector(), "False");
        let fp = detector_for_pipeline(&not_ready);
        assert_eq!(detector_for_pipeline(&detector()), fp);
        let mut other_conditions = managed_fields_touched(not_ready.clone());
        if let Some(s) = other_conditions.status.as_mut() {
            s.conditions[0].message = "still training".into();
        }
        assert_eq!(detector_for_pipeline(&other_conditions), fp);
        assert_ne!(detector_for_pipeline(&with_ready(detector(), "True")), fp);
    }

    #[test]
    fn only_changes_that_are_not_echoes_are_relevant() {
        assert!(relevant_change(None, 1, false));
        assert!(!relevant_change(None, 1, true));
        assert!(!relevant_change(Some(1), 1, false));
        assert!(relevant_change(Some(1), 2, false));
        assert!(!relevant_change(Some(1), 2, true));
    }

    #[tokio::test]
    async fn the_filter_passes_first_sights_and_changes_only() {
        let first = deployment();
        let echo_of_nothing = managed_fields_touched(first.clone());
        let mut ready = first.clone();
        if let Some(s) = ready.status.as_mut() {
            s.available_replicas = Some(2);
        }
        let events = futures::stream::iter(
            [first, echo_of_nothing, ready.clone(), ready]
                .into_iter()
                .map(Arc::new),
        );
        let passed: Vec<_> = only_relevant(events, |d: &Deployment| child(d), |_| false)
            .map(|d| d.status.as_ref().and_then(|s| s.available_replicas))
            .collect()
            .await;
        assert_eq!(passed, vec![Some(1), Some(2)]);
    }

    #[test]
    fn a_stripped_workload_keeps_its_rollout() {
        let mut d = managed_fields_touched(deployment());
        d.spec = Some(Default::default());
        let rollout = Rollout::of_deployment(&d);
        strip_deployment(&mut d);
        assert_eq!(Rollout::of_deployment(&d), rollout);
        assert!(d.spec.is_none() && d.metadata.managed_fields.is_none());
    }
}
