//! Kubernetes Events through one shared [`Recorder`]; a failed publish is logged, never fatal.

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
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(truncate(note.into())),
        action: action.into(),
        secondary: None,
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
