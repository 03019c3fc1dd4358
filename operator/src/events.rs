//! Kubernetes Events through one shared [`Recorder`]; a failed publish is logged, never fatal.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

/// Publish an Event about `obj`.
pub async fn publish<K: Resource<DynamicType = ()>>(
    recorder: &Recorder,
    obj: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: impl Into<String>,
) {
    publish_related(recorder, obj, None, type_, reason, action, note).await;
}

/// A reference to `kind/name` (a child object, or a Kafka topic) for [`publish_related`].
pub fn related(kind: &str, name: &str, namespace: Option<String>) -> ObjectReference {
    ObjectReference {
        kind: Some(kind.into()),
        name: Some(name.into()),
        namespace,
        ..Default::default()
    }
}

/// Publish an Event about `obj` concerning `related`. Events with the same type, reason and
/// action on the same object are merged into one series; the related object keeps Events about
/// different children (or topics) apart.
pub async fn publish_related<K: Resource<DynamicType = ()>>(
    recorder: &Recorder,
    obj: &K,
    related: Option<ObjectReference>,
    type_: EventType,
    reason: &str,
    action: &str,
    note: impl Into<String>,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(truncate(note.into())),
        action: action.into(),
        secondary: related,
    };
    if let Err(e) = recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "cannot publish an Event");
    }
}

fn truncate(mut note: String) -> String {
    const MAX: usize = 1000;
    if note.len() > MAX {
        let mut end = MAX;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
    }
    note
}
