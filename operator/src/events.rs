//! Kubernetes Events published off the reconcile's path: a reconcile hands each Event to
//! [`Events`], which never waits; background lanes publish them through one shared [`Recorder`].
//! Events are best-effort, as in Kubernetes: a failed publish is logged, and an Event whose lane
//! is full is dropped (counted and logged), never waited for. All Events about one object go
//! through the same lane, so they are published in the order they were handed over.

use crate::metrics::Metrics;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// How many Events are published at the same time (one per lane).
const LANES: usize = 8;
/// How many Events each lane holds before new ones are dropped.
const LANE_CAPACITY: usize = 2048;

/// What a lane is handed: an Event to publish, or a marker answered once everything before it
/// was published.
enum Job {
    /// Publish `event` about `reference`.
    Publish {
        /// The Event.
        event: Box<Event>,
        /// The object it is about.
        reference: Box<ObjectReference>,
    },
    /// Answer once the Events handed over before this one are published.
    Flush(oneshot::Sender<()>),
}

/// The handle reconciles publish Events through (cheap to share; the lanes stop once every
/// handle is gone).
#[derive(Clone)]
pub struct Events {
    lanes: Arc<Vec<mpsc::Sender<Job>>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("lanes", &self.lanes.len())
            .finish_non_exhaustive()
    }
}

impl Events {
    /// Start the publishing lanes on the current Tokio runtime, all publishing with `recorder`.
    pub fn start(recorder: Recorder, metrics: Arc<Metrics>) -> Self {
        let lanes = (0..LANES)
            .map(|_| {
                let (tx, rx) = mpsc::channel(LANE_CAPACITY);
                tokio::spawn(lane(recorder.clone(), rx));
                tx
            })
            .collect();
        Self {
            lanes: Arc::new(lanes),
            metrics,
        }
    }

    /// Hand over an Event about `obj` (see [`Events::publish_related`]).
    pub fn publish<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: impl Into<String>,
    ) {
        self.publish_related(obj, None, type_, reason, action, note);
    }

    /// Hand over an Event about `obj` concerning `related`, without waiting. Events with the
    /// same type, reason and action on the same object are merged into one series; the related
    /// object keeps Events about different children (or topics) apart.
    pub fn publish_related<K: Resource<DynamicType = ()>>(
        &self,
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
        let reference = obj.object_ref(&());
        let Some(lane) = self.lanes.get(lane_of(&reference, self.lanes.len())) else {
            return;
        };
        let job = Job::Publish {
            event: Box::new(event),
            reference: Box::new(reference),
        };
        match lane.try_send(job) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics.event_dropped();
                tracing::warn!(reason, "the Event queue is full: Event dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::warn!(reason, "the Event publisher has stopped: Event dropped");
            }
        }
    }

    /// Wait until every Event handed over before this call was published (or failed).
    pub async fn flush(&self) {
        let mut answers = Vec::with_capacity(self.lanes.len());
        for lane in self.lanes.iter() {
            let (tx, rx) = oneshot::channel();
            if lane.send(Job::Flush(tx)).await.is_ok() {
                answers.push(rx);
            }
        }
        for answer in answers {
            let _ = answer.await;
        }
    }
}

/// The lane of the object `reference` names: the same for every Event about it.
fn lane_of(reference: &ObjectReference, lanes: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    (&reference.kind, &reference.namespace, &reference.name).hash(&mut hasher);
    usize::try_from(hasher.finish() % u64::try_from(lanes.max(1)).unwrap_or(1)).unwrap_or(0)
}

/// Publish the Events of one lane in order until every sender is gone.
async fn lane(recorder: Recorder, mut jobs: mpsc::Receiver<Job>) {
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Publish { event, reference } => {
                if let Err(e) = recorder.publish(&event, &reference).await {
                    tracing::warn!(error = %e, reason = %event.reason, "cannot publish an Event");
                }
            }
            Job::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// A reference to `kind/name` (a child object, or a Kafka topic) for
/// [`Events::publish_related`].
pub fn related(kind: &str, name: &str, namespace: Option<String>) -> ObjectReference {
    ObjectReference {
        kind: Some(kind.into()),
        name: Some(name.into()),
        namespace,
        ..Default::default()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_about_one_object_goes_to_one_lane() {
        let a = related("AnomalyPipeline", "shop", Some("team-a".into()));
        let b = related("AnomalyPipeline", "shop", Some("team-a".into()));
        assert_eq!(lane_of(&a, LANES), lane_of(&b, LANES));
        assert!(lane_of(&a, LANES) < LANES);
        assert_eq!(lane_of(&a, 0), 0);
    }
}
