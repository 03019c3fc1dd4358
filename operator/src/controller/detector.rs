//! Reconcile a `Detector` in stages: dereference (deletion, its pipeline from the cache) →
//! validate (the pipeline exists and is not being deleted) → build (pure: worker identity,
//! StatefulSet, headless Service) → apply (children and orphans, server-side) → status (`Ready`,
//! `observedGeneration`, `replicas`). The runtime conditions (`ModelTrained`, `DataFlowing`,
//! `AnomalyActive`) and `lastAnomaly` are written by the detector worker under its own field
//! manager, with a heartbeat (`status.worker.heartbeatTime`, at least every 60 s).
//!
//! **A silent worker** (dead, hung, or cut off from the API server: its heartbeat older than
//! the timeout, default [`DEFAULT_HEARTBEAT_TIMEOUT`]) would leave its last values standing; the
//! operator then applies the three conditions itself as `Unknown`, reason [`WORKER_SILENT`], and
//! publishes one Warning Event. Ownership under server-side apply (conditions are a list map keyed
//! by `type`): the operator's forced apply takes the fields whose values it changes; the worker's
//! next forced apply carries all three conditions whole and takes every field back. The operator
//! keeps applying its `Unknown` entries until the stored conditions are no longer its own (reason
//! `WorkerSilent`): only then does the worker own every field of them, so the operator leaving
//! them out of its apply releases its share without removing a field. A fresh heartbeat is
//! re-checked just after it would go stale (a status-only write starts no reconcile). `Ready`
//! stays the workload's rollout: a silent worker whose pods run does not make it False (a
//! status write failing must not flip `Ready`, `DetectorsReady` and Argo CD health).

use super::cache::Caches;
use super::{Context, ReconcileError, changed_failures, publish_changes};
use crate::apply::Applier;
use crate::builders::Owner;
use crate::builders::detector::{self as build, DetectorChildren};
use crate::conditions::{self, Cond};
use crate::health::{self, Rollout};
use helios_crds::conditions::{ANOMALY_ACTIVE, DATA_FLOWING, MODEL_TRAINED, READY};
use helios_crds::{AnomalyPipeline, Detector, DetectorStatus};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The kind, for metrics and logs.
pub const KIND: &str = "Detector";

/// The conditions the detect worker writes (and the operator overrides while it is silent).
pub const RUNTIME_CONDITIONS: [&str; 3] = [MODEL_TRAINED, DATA_FLOWING, ANOMALY_ACTIVE];
/// The reason (and Event reason) of the runtime conditions while the worker is silent.
pub const WORKER_SILENT: &str = "WorkerSilent";
/// The worker heartbeat timeout without `--worker-heartbeat-timeout-secs`: three heartbeats.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(180);
/// A fresh heartbeat is re-checked this long after it would go stale (clock granularity).
const RECHECK_SLACK: Duration = Duration::from_secs(1);

/// What the operator owns in a Detector's status.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnedStatus {
    /// The generation this status describes.
    pub observed_generation: Option<i64>,
    /// Only `Ready`.
    pub conditions: Vec<Condition>,
    /// Ready replicas of the StatefulSet.
    pub replicas: i32,
}

/// The operator-owned part of an existing status, for the "did anything change" check: `Ready`
/// and the runtime conditions it set while the worker was silent, in [`condition_rank`] order.
fn owned_part(detector: &Detector) -> Option<OwnedStatus> {
    let status = detector.status.as_ref()?;
    let mut conditions: Vec<Condition> = status
        .conditions
        .iter()
        .filter(|c| c.type_ == READY || is_silenced(c))
        .cloned()
        .collect();
    conditions.sort_by_key(|c| condition_rank(&c.type_));
    Some(OwnedStatus {
        observed_generation: status.observed_generation,
        conditions,
        replicas: status.replicas,
    })
}

/// `Ready` first, then the runtime conditions in [`RUNTIME_CONDITIONS`] order.
fn condition_rank(type_: &str) -> usize {
    RUNTIME_CONDITIONS
        .iter()
        .position(|t| *t == type_)
        .map_or(0, |i| i + 1)
}

/// A runtime condition the operator set (only the operator writes [`WORKER_SILENT`]).
fn is_silenced(c: &Condition) -> bool {
    RUNTIME_CONDITIONS.contains(&c.type_.as_str()) && c.reason == WORKER_SILENT
}

/// What a Detector's worker heartbeat says at one reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// Nothing to vouch for: no runtime condition (no worker wrote yet, or workers write no
    /// status), or the check is off.
    Unwatched,
    /// The heartbeat is fresh; it goes stale in `stale_in` unless the worker writes again.
    Fresh {
        /// Time left until the timeout.
        stale_in: Duration,
    },
    /// No heartbeat within the timeout: `last` is the last one (`None`: the worker never wrote
    /// one, e.g. a worker older than the heartbeat).
    Silent {
        /// The last heartbeat (RFC 3339), as written.
        last: Option<String>,
    },
}

/// The liveness of the worker of a Detector with `status` at `now`, with heartbeat `timeout`
/// (`None`: off). A heartbeat ahead of `now` (clock skew) counts as just written (pure).
pub fn liveness(
    status: Option<&DetectorStatus>,
    now: Timestamp,
    timeout: Option<Duration>,
) -> Liveness {
    let (Some(status), Some(timeout)) = (status, timeout) else {
        return Liveness::Unwatched;
    };
    let written = status
        .conditions
        .iter()
        .any(|c| RUNTIME_CONDITIONS.contains(&c.type_.as_str()));
    if !written {
        return Liveness::Unwatched;
    }
    let last = status
        .worker
        .as_ref()
        .and_then(|w| w.heartbeat_time.clone());
    let Some(beat) = last.as_deref().and_then(|t| t.parse::<Timestamp>().ok()) else {
        return Liveness::Silent { last };
    };
    let age_ms = now.as_millisecond().saturating_sub(beat.as_millisecond());
    let age = Duration::from_millis(u64::try_from(age_ms).unwrap_or(0));
    if age >= timeout {
        Liveness::Silent { last }
    } else {
        Liveness::Fresh {
            stale_in: recheck_after(age, timeout),
        }
    }
}

/// When to look again at a heartbeat `age` old: just after it reaches `timeout` (pure).
pub fn recheck_after(age: Duration, timeout: Duration) -> Duration {
    timeout.saturating_sub(age) + RECHECK_SLACK
}

/// The runtime conditions as the operator decides them while the worker is silent.
fn silenced(last: Option<&str>, timeout: Option<Duration>) -> Vec<Cond> {
    let limit = timeout.map_or_else(String::new, |t| format!(" (timeout {}s)", t.as_secs()));
    let message = match last {
        Some(t) => format!("no heartbeat from the detect worker since {t}{limit}"),
        None => format!("the detect worker wrote no heartbeat{limit}"),
    };
    RUNTIME_CONDITIONS
        .iter()
        .map(|t| Cond::unknown(t, WORKER_SILENT, message.clone()))
        .collect()
}

/// The operator's share of the runtime conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeOverride {
    /// The conditions the operator applies (empty: none, the worker's stand).
    pub conditions: Vec<Cond>,
    /// Whether this reconcile turned them `Unknown` (one Warning Event).
    pub transition: bool,
    /// Check again no later than this.
    pub recheck: Option<Duration>,
}

/// What the operator applies of the runtime conditions, given the worker's `liveness` and the
/// conditions it applied before (`previous`, its stored share): the `Unknown` ones while the
/// worker is silent; its earlier ones, unchanged, until the worker has applied its own again
/// (see the module documentation); nothing otherwise (pure).
pub fn runtime_override(
    liveness: &Liveness,
    previous: &[Condition],
    timeout: Option<Duration>,
) -> RuntimeOverride {
    let held: Vec<Cond> = previous
        .iter()
        .filter(|c| is_silenced(c))
        .map(|c| {
            let status = match c.status.as_str() {
                "True" => conditions::Status::True,
                "False" => conditions::Status::False,
                _ => conditions::Status::Unknown,
            };
            Cond::new(&c.type_, status, &c.reason, c.message.clone())
        })
        .collect();
    match liveness {
        Liveness::Silent { last } => RuntimeOverride {
            conditions: silenced(last.as_deref(), timeout),
            transition: held.is_empty(),
            recheck: None,
        },
        Liveness::Fresh { stale_in } => RuntimeOverride {
            conditions: held,
            transition: false,
            recheck: Some(*stale_in),
        },
        Liveness::Unwatched => RuntimeOverride {
            conditions: held,
            transition: false,
            recheck: None,
        },
    }
}

/// Reconcile one detector, one stage after the other.
pub async fn reconcile(
    detector: Arc<Detector>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let Some(target) = dereference(&detector, &ctx)? else {
        // Children go with the owner references; nothing external to clean up.
        return Ok(Action::await_change());
    };
    let outcome = match validate(&detector, target.pipeline.as_deref()) {
        Ok(pipeline) => {
            let children = build(&detector, pipeline, &ctx)?;
            let sts = apply(&ctx, &detector, &target, &children).await?;
            rolled_out(&detector, pipeline, &sts)
        }
        Err(not_ready) => Outcome {
            ready: not_ready,
            replicas: 0,
            desired: 0,
        },
    };
    status(&ctx, &detector, &target, outcome, started).await
}

/// A live detector as the stages after `dereference` see it.
struct Target {
    /// Its name, namespace and owner reference.
    owner: Owner,
    /// Its cache and memo key.
    key: String,
    /// The caches of the term (children).
    caches: Caches,
    /// Its pipeline, if the cache has it.
    pipeline: Option<Arc<AnomalyPipeline>>,
}

/// What a reconcile decided for the status.
struct Outcome {
    /// `Ready`.
    ready: Cond,
    /// Available replicas of the StatefulSet.
    replicas: i32,
    /// Replicas the StatefulSet should have (0: suspended, or no pipeline to run in).
    desired: i32,
}

/// The owner facts, the term's caches and the pipeline; `None` for a detector being deleted.
fn dereference(detector: &Detector, ctx: &Context) -> Result<Option<Target>, ReconcileError> {
    if detector.meta().deletion_timestamp.is_some() {
        return Ok(None);
    }
    let owner = Owner::of(detector)?;
    let key = super::cache::key_of(KIND, detector);
    let caches = ctx.caches()?;
    let pipeline = caches.pipeline(&owner.namespace, &detector.spec.pipeline_ref.name);
    Ok(Some(Target {
        owner,
        key,
        caches,
        pipeline,
    }))
}

/// The pipeline the children are built for, or why there is none to use (a `Ready` that is
/// False: a missing or deleted pipeline is a state to report, not a failure).
fn validate<'p>(
    detector: &Detector,
    pipeline: Option<&'p AnomalyPipeline>,
) -> Result<&'p AnomalyPipeline, Cond> {
    let name = &detector.spec.pipeline_ref.name;
    match pipeline {
        None => Err(Cond::fail(
            READY,
            "PipelineNotFound",
            format!("AnomalyPipeline {name} does not exist in this namespace"),
        )),
        Some(p) if p.meta().deletion_timestamp.is_some() => Err(Cond::fail(
            READY,
            "PipelineDeleting",
            format!("AnomalyPipeline {name} is being deleted"),
        )),
        Some(p) => Ok(p),
    }
}

/// The children of the detector in `pipeline` (pure).
fn build(
    detector: &Detector,
    pipeline: &AnomalyPipeline,
    ctx: &Context,
) -> Result<DetectorChildren, ReconcileError> {
    Ok(build::build_with(
        detector,
        pipeline,
        &ctx.image,
        &ctx.worker_identity,
        ctx.worker_api_server.as_ref(),
    )?)
}

/// Apply the children (the pods' identity before the StatefulSet, so its pods find it; the
/// three identity objects together, the Service alongside all of them; the first failure in the
/// order identity, StatefulSet, Service is the error), delete the ones the detector no longer
/// has (every kind at once), publish what changed; the StatefulSet as applied.
async fn apply(
    ctx: &Context,
    detector: &Detector,
    target: &Target,
    children: &DetectorChildren,
) -> Result<StatefulSet, ReconcileError> {
    let applier = Applier::new(ctx, &target.caches.children, &target.key, &target.owner);
    // Made in step order: each takes its place among the changes when it is made.
    let identity = children.per_detector_identity.then(|| {
        (
            applier.ensure(&children.service_account),
            applier.ensure(&children.role),
            applier.ensure(&children.role_binding),
        )
    });
    let sts = applier.apply(&children.stateful_set);
    let service = applier.ensure(&children.service);
    let workload = async {
        if let Some((account, role, binding)) = identity {
            let (account, role, binding) = futures::join!(account, role, binding);
            account?;
            role?;
            binding?;
        }
        sts.await
    };
    let (sts, service) = futures::join!(workload, service);
    let sts = sts?;
    service?;
    // Every kind at once (the first failure in this order is the error). With worker
    // identities off their kinds are not watched: the applier lists them once per term, so
    // what a run with identities on created does not stay behind.
    let (stateful_sets, services, accounts, roles, bindings) = futures::join!(
        applier.delete_orphans::<StatefulSet>(),
        applier.delete_orphans::<Service>(),
        applier.delete_orphans::<ServiceAccount>(),
        applier.delete_orphans::<Role>(),
        applier.delete_orphans::<RoleBinding>(),
    );
    stateful_sets?;
    services?;
    accounts?;
    roles?;
    bindings?;
    publish_changes(ctx, detector, &applier.changes());
    Ok(sts)
}

/// `Ready` and the replicas from the applied StatefulSet's rollout.
fn rolled_out(detector: &Detector, pipeline: &AnomalyPipeline, sts: &StatefulSet) -> Outcome {
    let rollout = Rollout::of_stateful_set(sts);
    let desired = build::desired_replicas(detector, pipeline);
    Outcome {
        ready: health::detector_ready(desired, Some(rollout)),
        replicas: rollout.available,
        desired,
    }
}

/// Warn once about a new failure and once about a worker gone silent, write the
/// operator-owned status if it changed, and look again when a fresh heartbeat would go stale.
async fn status(
    ctx: &Context,
    detector: &Detector,
    target: &Target,
    outcome: Outcome,
    started: Instant,
) -> Result<Action, ReconcileError> {
    let is_ready = outcome.ready.status == conditions::Status::True;
    // The status as stored (see the pipeline reconciler).
    let stored = ctx.memo.stored(
        &target.key,
        detector.resource_version().as_deref(),
        owned_part(detector).and_then(|s| serde_json::to_value(s).ok()),
    );
    let previous = stored.conditions.clone();
    let now = Timestamp::now();
    let timeout = ctx.worker_heartbeat_timeout;
    let liveness = liveness(detector.status.as_ref(), now, timeout);
    let runtime = runtime_override(&liveness, &previous, timeout);
    if runtime.transition {
        let message = runtime
            .conditions
            .first()
            .map(|c| c.message.clone())
            .unwrap_or_default();
        ctx.metrics.runtime_override(WORKER_SILENT);
        tracing::warn!(detector = %target.key, %message, "detect worker silent: runtime conditions set to Unknown");
        // Expected while the detector is scaled to zero: worth a note, not a warning.
        let kind = if outcome.desired > 0 {
            EventType::Warning
        } else {
            EventType::Normal
        };
        ctx.events.publish(
            detector,
            kind,
            WORKER_SILENT,
            "Reconcile",
            format!("ModelTrained, DataFlowing and AnomalyActive set to Unknown: {message}"),
        );
    }
    let decided: Vec<Cond> = std::iter::once(outcome.ready)
        .chain(runtime.conditions)
        .collect();
    for failing in changed_failures(&decided, &previous, &[]) {
        ctx.events.publish(
            detector,
            EventType::Warning,
            &failing.reason,
            "Reconcile",
            failing.message.clone(),
        );
    }
    // Transition times: the operator's own, then the worker's (Unknown → Unknown keeps its time).
    let mut transitions = previous.clone();
    transitions.extend(
        detector
            .status
            .iter()
            .flat_map(|s| s.conditions.iter())
            .filter(|c| RUNTIME_CONDITIONS.contains(&c.type_.as_str()))
            .cloned(),
    );
    let generation = detector.metadata.generation;
    let status = OwnedStatus {
        observed_generation: generation,
        conditions: conditions::materialize(&decided, &transitions, generation, &Time(now)),
        replicas: outcome.replicas,
    };
    super::status::finish::<Detector, _>(
        ctx,
        super::status::Ending {
            kind: KIND,
            key: &target.key,
            owner: &target.owner,
            stored: &stored,
            status: &status,
            started,
            ready: is_ready,
            recheck: runtime.recheck,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use helios_crds::detector::WorkerStatus;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn condition(type_: &str, status: &str, reason: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: "m".into(),
            observed_generation: Some(1),
            last_transition_time: Time(at(0)),
        }
    }

    /// A status with the worker's three conditions and a heartbeat at `beat` (`None`: none).
    fn written(beat: Option<i64>) -> DetectorStatus {
        DetectorStatus {
            conditions: vec![
                condition(READY, "True", "Available"),
                condition(MODEL_TRAINED, "True", "Trained"),
                condition(DATA_FLOWING, "True", "EventsArriving"),
                condition(ANOMALY_ACTIVE, "False", "NoAnomaly"),
            ],
            worker: beat.map(|s| WorkerStatus {
                heartbeat_time: Some(at(s).to_string()),
                pod: Some("d-detect-0".into()),
            }),
            ..DetectorStatus::default()
        }
    }

    const TIMEOUT: Option<Duration> = Some(DEFAULT_HEARTBEAT_TIMEOUT);

    #[test]
    fn the_recheck_is_just_after_the_heartbeat_goes_stale() {
        let t = Duration::from_secs(180);
        assert_eq!(recheck_after(Duration::ZERO, t), Duration::from_secs(181));
        assert_eq!(
            recheck_after(Duration::from_millis(59_500), t),
            Duration::from_millis(121_500)
        );
        assert_eq!(recheck_after(t, t), RECHECK_SLACK);
        assert_eq!(recheck_after(t * 2, t), RECHECK_SLACK, "never negative");
    }

    #[test]
    fn liveness_follows_the_heartbeat_age() {
        let s = written(Some(100));
        assert_eq!(
            liveness(Some(&s), at(130), TIMEOUT),
            Liveness::Fresh {
                stale_in: Duration::from_secs(151)
            }
        );
        assert_eq!(
            liveness(Some(&s), at(279), TIMEOUT),
            Liveness::Fresh {
                stale_in: Duration::from_secs(2)
            }
        );
        assert_eq!(
            liveness(Some(&s), at(280), TIMEOUT),
            Liveness::Silent {
                last: Some(at(100).to_string())
            }
        );
        assert_eq!(
            liveness(Some(&s), at(90), TIMEOUT),
            Liveness::Fresh {
                stale_in: Duration::from_secs(181)
            },
            "a heartbeat ahead of the operator's clock is just written"
        );
        assert_eq!(liveness(Some(&s), at(9_999), None), Liveness::Unwatched);
        // Conditions but no heartbeat (a worker older than the heartbeat): silent.
        assert_eq!(
            liveness(Some(&written(None)), at(0), TIMEOUT),
            Liveness::Silent { last: None }
        );
        // No runtime condition: nothing to vouch for, whatever the heartbeat.
        let mut only_ready = written(None);
        only_ready.conditions.truncate(1);
        assert_eq!(
            liveness(Some(&only_ready), at(0), TIMEOUT),
            Liveness::Unwatched
        );
        assert_eq!(liveness(None, at(0), TIMEOUT), Liveness::Unwatched);
    }

    #[test]
    fn the_operator_holds_its_unknown_conditions_until_the_worker_applied_its_own() {
        let silent = Liveness::Silent {
            last: Some(at(100).to_string()),
        };
        // The transition: three Unknown conditions, one Warning, the regular requeue.
        let first = runtime_override(&silent, &[condition(READY, "True", "Available")], TIMEOUT);
        assert!(first.transition);
        assert_eq!(first.recheck, None);
        let types: Vec<&str> = first.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, RUNTIME_CONDITIONS);
        for c in &first.conditions {
            assert_eq!(
                (c.status, c.reason.as_str()),
                (conditions::Status::Unknown, WORKER_SILENT)
            );
            assert_eq!(
                c.message,
                format!(
                    "no heartbeat from the detect worker since {} (timeout 180s)",
                    at(100)
                )
            );
        }
        // Still silent: the same conditions, no second Warning.
        let previous: Vec<Condition> =
            conditions::materialize(&first.conditions, &[], Some(1), &Time(at(0)));
        let again = runtime_override(&silent, &previous, TIMEOUT);
        assert!(!again.transition);
        assert_eq!(again.conditions, first.conditions);
        // A fresh heartbeat while its Unknown ones are stored (the worker has not applied since):
        // held unchanged, so releasing them can never remove a field the worker does not own.
        let fresh = Liveness::Fresh {
            stale_in: Duration::from_secs(100),
        };
        let held = runtime_override(&fresh, &previous, TIMEOUT);
        assert_eq!(held.conditions, first.conditions);
        assert_eq!(held.recheck, Some(Duration::from_secs(100)));
        // The worker applied its own: nothing of them is the operator's any more.
        let back = runtime_override(&fresh, &[condition(READY, "True", "Available")], TIMEOUT);
        assert!(back.conditions.is_empty() && !back.transition);
        // Check switched off while holding: still held until the worker takes them back.
        assert_eq!(
            runtime_override(&Liveness::Unwatched, &previous, None).conditions,
            first.conditions
        );
        assert_eq!(
            silenced(None, TIMEOUT)[0].message,
            "the detect worker wrote no heartbeat (timeout 180s)"
        );
    }

    #[test]
    fn owned_part_takes_ready_and_the_operators_runtime_conditions_in_order() {
        let mut d = Detector::new(
            "d",
            serde_json::from_value(serde_json::json!({
                "pipelineRef": {"name": "p"}, "features": ["event_count"]
            }))
            .unwrap_or_else(|e| panic!("{e}")),
        );
        let mut status = written(Some(0));
        status.conditions = vec![
            condition(ANOMALY_ACTIVE, "Unknown", WORKER_SILENT),
            condition(DATA_FLOWING, "True", "EventsArriving"),
            condition(MODEL_TRAINED, "Unknown", WORKER_SILENT),
            condition(READY, "True", "Available"),
        ];
        d.status = Some(status);
        let owned = owned_part(&d).map(|o| o.conditions).unwrap_or_default();
        let types: Vec<&str> = owned.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, vec![READY, MODEL_TRAINED, ANOMALY_ACTIVE]);
    }
}
