//! Pure deciders of detail conditions from what was observed: workload rollouts, detector
//! readiness, suspension, topics and the report hook.

use crate::conditions::{Cond, Status};
use crate::kafka::TopicError;
use crate::kafka::admin::TopicOutcome;
use helios_crds::Detector;
use helios_crds::conditions::{
    DETECTORS_READY, INGESTION_AVAILABLE, READY, SUSPENDED, TOPICS_READY,
};
use helios_crds::pipeline::DetectorCounts;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};

/// Replica counts of a workload as its controller reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rollout {
    /// `metadata.generation`.
    pub generation: i64,
    /// `status.observedGeneration`.
    pub observed_generation: i64,
    /// `status.replicas` (pods that exist).
    pub replicas: i32,
    /// Available (Deployment) or ready (StatefulSet) replicas.
    pub available: i32,
}

impl Rollout {
    /// The rollout facts of a Deployment.
    pub fn of_deployment(d: &Deployment) -> Self {
        let status = d.status.clone().unwrap_or_default();
        Self {
            generation: d.metadata.generation.unwrap_or(0),
            observed_generation: status.observed_generation.unwrap_or(0),
            replicas: status.replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
        }
    }

    /// The rollout facts of a StatefulSet.
    pub fn of_stateful_set(s: &StatefulSet) -> Self {
        let status = s.status.clone().unwrap_or_default();
        Self {
            generation: s.metadata.generation.unwrap_or(0),
            observed_generation: status.observed_generation.unwrap_or(0),
            replicas: status.replicas,
            available: status.ready_replicas.unwrap_or(0),
        }
    }

    /// Whether the workload controller has seen the current spec.
    pub fn is_current(&self) -> bool {
        self.observed_generation >= self.generation && self.generation > 0
    }
}

/// `(status, reason, message)` of a workload against its desired replicas.
fn workload(desired: i32, rollout: Option<Rollout>, what: &str) -> (Status, &'static str, String) {
    match rollout {
        None => (
            Status::False,
            "WorkloadMissing",
            format!("the {what} does not exist yet"),
        ),
        Some(r) if !r.is_current() => (
            Status::False,
            "RolloutPending",
            format!(
                "the {what} controller has not observed generation {} yet",
                r.generation
            ),
        ),
        Some(r) if r.available < desired => (
            Status::False,
            "ReplicasUnavailable",
            format!("{}/{desired} replicas available", r.available),
        ),
        Some(r) => (
            Status::True,
            "ReplicasAvailable",
            format!("{}/{desired} replicas available", r.available),
        ),
    }
}

/// `IngestionAvailable`: the Deployment observed the current spec and has `desired` available.
pub fn ingestion_available(desired: i32, rollout: Option<Rollout>) -> Cond {
    let (status, reason, message) = workload(desired, rollout, "ingestion Deployment");
    Cond::new(INGESTION_AVAILABLE, status, reason, message)
}

/// A detector's `Ready`: its StatefulSet observed the current spec and has `desired` ready.
pub fn detector_ready(desired: i32, rollout: Option<Rollout>) -> Cond {
    let (status, reason, message) = workload(desired, rollout, "detector StatefulSet");
    Cond::new(READY, status, reason, message)
}

/// `Suspended`: `True` once every workload reports zero replicas while `suspend` is set.
pub fn suspended(suspend: bool, workloads: &[Option<Rollout>]) -> Cond {
    if !suspend {
        return Cond::fail(SUSPENDED, "NotSuspended", "the pipeline is running");
    }
    let remaining: i32 = workloads.iter().flatten().map(|r| r.replicas).sum();
    let pending = workloads.iter().flatten().any(|r| !r.is_current());
    if remaining == 0 && !pending {
        Cond::ok(
            SUSPENDED,
            "ScaledToZero",
            "every workload reports zero replicas",
        )
    } else {
        Cond::fail(
            SUSPENDED,
            "ScalingDown",
            format!("waiting for {remaining} pod(s) to stop"),
        )
    }
}

/// Whether `detector`'s status says `Ready=True`.
pub fn detector_is_ready(detector: &Detector) -> bool {
    detector.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == READY && c.status == "True")
    })
}

/// `DetectorsReady` and the counts shown by `kubectl get ap`.
pub fn detectors_ready(detectors: &[&Detector]) -> (Cond, DetectorCounts) {
    let total = i32::try_from(detectors.len()).unwrap_or(i32::MAX);
    let ready = detectors.iter().filter(|d| detector_is_ready(d)).count();
    let ready = i32::try_from(ready).unwrap_or(i32::MAX);
    let counts = DetectorCounts {
        total,
        ready,
        summary: format!("{ready}/{total}"),
    };
    let cond = if total == 0 {
        Cond::ok(
            DETECTORS_READY,
            "NoDetectors",
            "no Detector references this pipeline",
        )
    } else if ready == total {
        Cond::ok(
            DETECTORS_READY,
            "AllDetectorsReady",
            format!("{ready}/{total} detectors ready"),
        )
    } else {
        Cond::fail(
            DETECTORS_READY,
            "DetectorsNotReady",
            format!("{ready}/{total} detectors ready"),
        )
    };
    (cond, counts)
}

/// `TopicsReady` from the outcome of ensuring both topics.
pub fn topics_ready(results: &[(String, Result<TopicOutcome, TopicError>)]) -> Cond {
    let mut problems = Vec::new();
    let mut reason = None;
    for (name, result) in results {
        match result {
            Err(error) => {
                reason.get_or_insert(error.reason());
                problems.push(format!("{name}: {error}"));
            }
            Ok(outcome) if !outcome.plan.incompatible.is_empty() => {
                reason.get_or_insert("TopicIncompatible");
                for i in &outcome.plan.incompatible {
                    problems.push(format!("topic {name} {i}"));
                }
            }
            Ok(_) => {}
        }
    }
    match reason {
        Some(reason) => Cond::fail(TOPICS_READY, reason, problems.join("; ")),
        None => Cond::ok(
            TOPICS_READY,
            "TopicsReady",
            results
                .iter()
                .filter_map(|(n, r)| {
                    r.as_ref()
                        .ok()
                        .map(|o| format!("{n}: {} partitions", o.partitions))
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
    }
}

/// `TopicsReady=False` for an error that happened before any topic was checked.
pub fn topics_error(error: &TopicError) -> Cond {
    Cond::fail(TOPICS_READY, error.reason(), error.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::kafka::TopicPlan;
    use crate::kafka::plan::Incompatibility;

    fn rollout(generation: i64, observed: i64, replicas: i32, available: i32) -> Option<Rollout> {
        Some(Rollout {
            generation,
            observed_generation: observed,
            replicas,
            available,
        })
    }

    #[test]
    fn ingestion_needs_current_generation_and_available_replicas() {
        assert_eq!(ingestion_available(2, None).reason, "WorkloadMissing");
        assert_eq!(
            ingestion_available(2, rollout(2, 1, 2, 2)).reason,
            "RolloutPending"
        );
        let c = ingestion_available(2, rollout(2, 2, 2, 1));
        assert_eq!(
            (c.status, c.reason.as_str()),
            (Status::False, "ReplicasUnavailable")
        );
        assert_eq!(
            ingestion_available(2, rollout(2, 2, 2, 2)).status,
            Status::True
        );
        assert_eq!(
            ingestion_available(0, rollout(3, 3, 0, 0)).status,
            Status::True
        );
    }

    #[test]
    fn detector_ready_uses_the_ready_condition_type() {
        let c = detector_ready(1, rollout(1, 1, 1, 0));
        assert_eq!((c.type_.as_str(), c.status), ("Ready", Status::False));
    }

    #[test]
    fn suspended_only_once_everything_is_at_zero() {
        assert_eq!(suspended(false, &[]).status, Status::False);
        let c = suspended(true, &[rollout(2, 2, 1, 1), rollout(1, 1, 0, 0)]);
        assert_eq!(
            (c.status, c.reason.as_str()),
            (Status::False, "ScalingDown")
        );
        assert_eq!(
            suspended(true, &[rollout(2, 1, 0, 0)]).status,
            Status::False
        );
        let c = suspended(true, &[rollout(2, 2, 0, 0), None]);
        assert_eq!(
            (c.status, c.reason.as_str()),
            (Status::True, "ScaledToZero")
        );
    }

    fn detector(ready: Option<&str>) -> Detector {
        let mut d: Detector = serde_yaml::from_str(
            "apiVersion: helios.dev/v1alpha1\nkind: Detector\nmetadata: {name: d}\nspec: {pipelineRef: {name: p}, features: [event_count]}",
        )
        .unwrap();
        if let Some(status) = ready {
            let conditions = crate::conditions::materialize(
                &[Cond::new(
                    READY,
                    if status == "True" {
                        Status::True
                    } else {
                        Status::False
                    },
                    "R",
                    "",
                )],
                &[],
                None,
                &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ),
            );
            d.status = Some(helios_crds::DetectorStatus {
                conditions,
                ..Default::default()
            });
        }
        d
    }

    #[test]
    fn detectors_ready_counts() {
        let (c, n) = detectors_ready(&[]);
        assert_eq!(
            (c.status, c.reason.as_str(), n.summary.as_str()),
            (Status::True, "NoDetectors", "0/0")
        );
        let (a, b, x) = (
            detector(Some("True")),
            detector(Some("False")),
            detector(None),
        );
        let (c, n) = detectors_ready(&[&a, &b, &x]);
        assert_eq!((c.status, n.ready, n.total), (Status::False, 1, 3));
        let (c, n) = detectors_ready(&[&a]);
        assert_eq!((c.status, n.summary.as_str()), (Status::True, "1/1"));
    }

    #[test]
    fn topics_ready_reports_incompatibility_and_errors() {
        let ok = TopicOutcome {
            plan: TopicPlan::default(),
            partitions: 3,
        };
        let c = topics_ready(&[("a".into(), Ok(ok.clone())), ("b".into(), Ok(ok.clone()))]);
        assert_eq!(c.status, Status::True);
        assert!(c.message.contains("a: 3 partitions"));
        let bad = TopicOutcome {
            plan: TopicPlan {
                incompatible: vec![Incompatibility::TooManyPartitions {
                    actual: 6,
                    declared: 3,
                }],
                ..TopicPlan::default()
            },
            partitions: 6,
        };
        let c = topics_ready(&[("a".into(), Ok(ok.clone())), ("b".into(), Ok(bad))]);
        assert_eq!(
            (c.status, c.reason.as_str()),
            (Status::False, "TopicIncompatible")
        );
        let c = topics_ready(&[("a".into(), Err(TopicError::KafkaTimeout("Metadata")))]);
        assert_eq!(c.reason, "KafkaTimeout");
    }
}
