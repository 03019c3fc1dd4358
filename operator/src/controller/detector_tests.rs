//! Reconcile tests of the Detector controller against a scripted API server (see `fixtures`).

use super::detector::reconcile;
use super::fixtures::{Kit, Step, child_meta, concurrently, stored};
use crate::builders::detector::WorkerIdentity;
use crate::builders::fixtures::{detector, pipeline};
use helios_crds::Detector;
use http::{Method, StatusCode};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ServiceAccount;
use serde_json::{Value, json};
use std::sync::Arc;

const NS: &str = "/namespaces/team-a";
const DETECTOR_UID: &str = "2222-bbbb";

fn path(group: &str, resource: &str, name: &str) -> String {
    format!("{group}{NS}/{resource}/{name}")
}

fn sts() -> String {
    path("/apis/apps/v1", "statefulsets", "auth-errors-detect")
}
fn service() -> String {
    path("/api/v1", "services", "auth-errors-detect")
}
fn service_account() -> String {
    path("/api/v1", "serviceaccounts", "auth-errors-detect")
}
fn role() -> String {
    path(
        "/apis/rbac.authorization.k8s.io/v1",
        "roles",
        "auth-errors-detect",
    )
}
fn role_binding() -> String {
    path(
        "/apis/rbac.authorization.k8s.io/v1",
        "rolebindings",
        "auth-errors-detect",
    )
}
fn status() -> String {
    path(
        "/apis/helios.dev/v1alpha1",
        "detectors",
        "auth-errors/status",
    )
}

/// The detector at generation 4, resourceVersion 10.
fn the_detector() -> Detector {
    stored(detector(), DETECTOR_UID, 4, 10)
}

fn identities(on: bool) -> WorkerIdentity {
    WorkerIdentity {
        per_detector: on,
        ..WorkerIdentity::default()
    }
}

/// A kit whose caches hold the detector's pipeline.
fn kit_with_pipeline(identities_on: bool) -> Kit {
    let mut kit = Kit::new(identities(identities_on));
    kit.cache_pipeline(&stored(pipeline(), "1111-aaaa", 3, 5));
    kit
}

fn status_step(d: &Detector) -> Step {
    Step::apply_status(
        status(),
        serde_json::to_value(d).expect("a detector serializes"),
    )
}

/// The StatefulSet apply, answered with a StatefulSet whose two pods are ready.
fn sts_ready_step() -> Step {
    Step::apply(sts()).answer_with(|body, rv| {
        let mut obj = super::fixtures::echo(body, rv);
        obj["status"] = json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 2});
        (StatusCode::OK, obj)
    })
}

fn ready(status_body: &Value) -> &Value {
    let conditions = status_body["status"]["conditions"]
        .as_array()
        .expect("the status has conditions");
    assert_eq!(conditions.len(), 1, "the operator owns only Ready");
    &conditions[0]
}

#[tokio::test]
async fn a_detector_whose_pipeline_is_missing_reports_pipeline_not_found() {
    let mut kit = Kit::new(identities(true));
    let d = the_detector();
    let (result, log) = kit
        .run(
            vec![status_step(&d)],
            reconcile(Arc::new(d), kit.ctx.clone()),
        )
        .await;

    log.assert_followed();
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(log.calls(), vec![format!("PATCH {}", status())]);
    let body = log.bodies(&Method::PATCH, &status())[0];
    let cond = ready(body);
    assert_eq!(cond["status"], "False");
    assert_eq!(cond["reason"], "PipelineNotFound");
    assert_eq!(body["status"]["observedGeneration"], 4);
    assert_eq!(body["status"]["replicas"], 0);
    assert_eq!(log.event_reasons(), vec!["PipelineNotFound"]);
}

#[tokio::test]
async fn a_detector_with_its_pipeline_applies_identity_workload_and_service_then_its_status() {
    let mut kit = kit_with_pipeline(true);
    let d = the_detector();
    let mut steps = concurrently(vec![
        Step::apply(service_account()),
        Step::apply(role()),
        Step::apply(role_binding()),
        sts_ready_step(),
        Step::apply(service()),
    ]);
    steps.push(status_step(&d));
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(d), kit.ctx.clone()))
        .await;

    log.assert_followed();
    assert!(result.is_ok(), "{result:?}");
    let calls = log.calls();
    let at = |path: String| calls.iter().position(|c| *c == format!("PATCH {path}"));
    for identity in [service_account(), role(), role_binding()] {
        assert!(
            at(identity.clone()) < at(sts()),
            "{identity} before the StatefulSet: {calls:?}"
        );
    }
    let applied = log.bodies(&Method::PATCH, &sts())[0];
    assert_eq!(applied["kind"], "StatefulSet");
    assert_eq!(
        applied["metadata"]["ownerReferences"][0]["uid"],
        DETECTOR_UID
    );
    assert_eq!(
        applied["spec"]["template"]["spec"]["serviceAccountName"],
        "auth-errors-detect"
    );
    let body = log.bodies(&Method::PATCH, &status())[0];
    assert_eq!(body["status"]["observedGeneration"], 4);
    assert_eq!(body["status"]["replicas"], 2);
    assert_eq!(ready(body)["status"], "True");
    assert_eq!(
        log.event_reasons(),
        vec!["Created"; 5],
        "one Created Event per new child"
    );
}

#[tokio::test]
async fn a_detector_whose_status_already_says_it_writes_nothing() {
    let mut kit = Kit::new(identities(true));
    let mut d = the_detector();
    // The watch delivers what a first reconcile wrote: the object is newer than that write.
    let d0 = d.clone();
    let (_, first) = kit
        .run(
            vec![status_step(&d0)],
            reconcile(Arc::new(d0), kit.ctx.clone()),
        )
        .await;
    first.assert_followed();
    let written = first.bodies(&Method::PATCH, &status())[0]["status"].clone();
    d.status = Some(serde_json::from_value(written).expect("the written status parses"));
    d.metadata.resource_version = Some("500".into());

    let (result, log) = kit
        .run(vec![], reconcile(Arc::new(d), kit.ctx.clone()))
        .await;

    log.assert_followed();
    assert!(result.is_ok(), "{result:?}");
    assert!(
        log.requests.is_empty(),
        "no status write, no repeated Warning"
    );
}

#[tokio::test]
async fn switched_off_worker_identities_leave_no_service_account_role_or_binding_behind() {
    let mut kit = kit_with_pipeline(false);
    let d = the_detector();
    let mine = |name: &str| child_meta("team-a", name, ("Detector", DETECTOR_UID), "auth-errors");
    let foreign = child_meta(
        "team-a",
        "other-detect",
        ("Detector", "9999"),
        "auth-errors",
    );
    let listed = "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dhelios-operator%2Capp.kubernetes.io%2Finstance%3Dauth-errors";
    // The three kinds are listed at once; each delete follows its own list.
    let steps = [
        concurrently(vec![Step::apply(sts()), Step::apply(service())]),
        concurrently(vec![
            Step::list_metadata(
                format!("/api/v1{NS}/serviceaccounts"),
                vec![mine("auth-errors-detect"), foreign],
            )
            .query(listed),
            Step::delete(service_account()),
            Step::list_metadata(
                format!("/apis/rbac.authorization.k8s.io/v1{NS}/roles"),
                vec![mine("auth-errors-detect")],
            ),
            Step::delete(role()),
            Step::list_metadata(
                format!("/apis/rbac.authorization.k8s.io/v1{NS}/rolebindings"),
                vec![],
            ),
        ]),
        vec![status_step(&d)],
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(d.clone()), kit.ctx.clone()))
        .await;
    log.assert_followed();
    assert!(result.is_ok(), "{result:?}");
    let applied = log.bodies(&Method::PATCH, &sts())[0];
    assert_eq!(
        applied["spec"]["template"]["spec"]["automountServiceAccountToken"],
        false
    );

    // Nothing recreates them: the next reconcile of this term does not list again.
    let steps = concurrently(vec![Step::apply(sts()), Step::apply(service())]);
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(d), kit.ctx.clone()))
        .await;
    log.assert_followed();
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn identity_kinds_the_operator_may_not_list_are_skipped_for_every_detector_of_the_term() {
    let mut kit = kit_with_pipeline(false);
    let d = the_detector();
    let forbidden = |path: String| Step::new(Method::GET, path).fail(403, "Forbidden");
    let mut steps = concurrently(vec![Step::apply(sts()), Step::apply(service())]);
    steps.extend(concurrently(vec![
        forbidden(format!("/api/v1{NS}/serviceaccounts")),
        forbidden(format!("/apis/rbac.authorization.k8s.io/v1{NS}/roles")),
        forbidden(format!(
            "/apis/rbac.authorization.k8s.io/v1{NS}/rolebindings"
        )),
    ]));
    steps.push(status_step(&d));
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(d), kit.ctx.clone()))
        .await;
    log.assert_followed();
    assert!(result.is_ok(), "{result:?}");

    // Another detector in the same term: no more forbidden lists.
    let mut other = stored(detector(), "3333-cccc", 1, 11);
    other.metadata.name = Some("latency".into());
    let mut steps = concurrently(vec![
        Step::apply(path("/apis/apps/v1", "statefulsets", "latency-detect")),
        Step::apply(path("/api/v1", "services", "latency-detect")),
    ]);
    steps.push(Step::apply_status(
        path("/apis/helios.dev/v1alpha1", "detectors", "latency/status"),
        serde_json::to_value(&other).expect("a detector serializes"),
    ));
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(other), kit.ctx.clone()))
        .await;
    log.assert_followed();
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn a_cached_child_the_detector_no_longer_renders_is_deleted_and_others_are_kept() {
    let mut kit = kit_with_pipeline(true);
    let d = the_detector();
    let old = "auth-errors-old-detect";
    kit.cache_child::<StatefulSet>(child_meta(
        "team-a",
        old,
        ("Detector", DETECTOR_UID),
        "auth-errors",
    ));
    kit.cache_child::<ServiceAccount>(child_meta(
        "team-a",
        "someone-else",
        ("Detector", "9999"),
        "someone-else",
    ));
    let mut steps = concurrently(vec![
        Step::apply(service_account()),
        Step::apply(role()),
        Step::apply(role_binding()),
        Step::apply(sts()),
        Step::apply(service()),
    ]);
    steps.push(Step::delete(path("/apis/apps/v1", "statefulsets", old)));
    steps.push(status_step(&d));
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(d), kit.ctx.clone()))
        .await;
    log.assert_followed();
    assert!(result.is_ok(), "{result:?}");
    assert!(log.event_reasons().contains(&"Deleted".to_string()));
}

#[tokio::test]
async fn a_failed_apply_is_an_apply_failed_error() {
    for code in [500, 409] {
        let mut kit = kit_with_pipeline(false);
        let d = the_detector();
        // The Service is applied alongside the StatefulSet; the StatefulSet's failure decides.
        let steps = concurrently(vec![
            Step::apply(sts()).fail(code, "Scripted"),
            Step::apply(service()),
        ]);
        let (result, log) = kit
            .run(steps, reconcile(Arc::new(d), kit.ctx.clone()))
            .await;
        log.assert_followed();
        let err = result.expect_err("the apply failed");
        assert_eq!(err.reason(), "ApplyFailed", "{code}: {err}");
    }
}

#[tokio::test]
async fn a_failed_status_write_is_a_status_write_failed_error() {
    let mut kit = Kit::new(identities(true));
    let steps = vec![Step::apply(status()).fail(409, "Conflict")];
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(the_detector()), kit.ctx.clone()))
        .await;
    log.assert_followed();
    let err = result.expect_err("the status write failed");
    assert_eq!(err.reason(), "StatusWriteFailed");
}

#[tokio::test]
async fn a_failed_orphan_delete_is_an_orphan_cleanup_failed_error() {
    let mut kit = kit_with_pipeline(false);
    let old = "auth-errors-old-detect";
    kit.cache_child::<StatefulSet>(child_meta(
        "team-a",
        old,
        ("Detector", DETECTOR_UID),
        "auth-errors",
    ));
    // The unwatched identity kinds are listed alongside; the StatefulSet's failure decides.
    let mut steps = concurrently(vec![Step::apply(sts()), Step::apply(service())]);
    steps.extend(concurrently(vec![
        Step::delete(path("/apis/apps/v1", "statefulsets", old)).fail(500, "InternalError"),
        Step::list_metadata(format!("/api/v1{NS}/serviceaccounts"), vec![]),
        Step::list_metadata(
            format!("/apis/rbac.authorization.k8s.io/v1{NS}/roles"),
            vec![],
        ),
        Step::list_metadata(
            format!("/apis/rbac.authorization.k8s.io/v1{NS}/rolebindings"),
            vec![],
        ),
    ]));
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(the_detector()), kit.ctx.clone()))
        .await;
    log.assert_followed();
    let err = result.expect_err("the delete failed");
    assert_eq!(err.reason(), "OrphanCleanupFailed");
}

#[tokio::test]
async fn a_detector_being_deleted_makes_no_request() {
    let mut kit = kit_with_pipeline(true);
    let mut d = the_detector();
    d.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    ));
    let (result, log) = kit
        .run(vec![], reconcile(Arc::new(d), kit.ctx.clone()))
        .await;
    log.assert_followed();
    assert!(result.is_ok(), "{result:?}");
    assert!(log.requests.is_empty());
}

#[tokio::test]
async fn a_detector_whose_pipeline_is_being_deleted_reports_pipeline_deleting() {
    let mut kit = Kit::new(identities(true));
    let mut p = stored(pipeline(), "1111-aaaa", 3, 5);
    p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    ));
    kit.cache_pipeline(&p);
    let d = the_detector();
    let (result, log) = kit
        .run(
            vec![status_step(&d)],
            reconcile(Arc::new(d), kit.ctx.clone()),
        )
        .await;

    log.assert_followed();
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(
        log.calls(),
        vec![format!("PATCH {}", status())],
        "no child is applied"
    );
    let body = log.bodies(&Method::PATCH, &status())[0];
    let cond = ready(body);
    assert_eq!(cond["status"], "False");
    assert_eq!(cond["reason"], "PipelineDeleting");
    assert_eq!(body["status"]["replicas"], 0);
    assert_eq!(log.event_reasons(), vec!["PipelineDeleting"]);
}

#[tokio::test]
async fn a_detector_without_a_uid_fails_in_dereference_before_any_request() {
    let mut kit = kit_with_pipeline(true);
    let mut d = the_detector();
    d.metadata.uid = None;
    let (result, log) = kit
        .run(vec![], reconcile(Arc::new(d), kit.ctx.clone()))
        .await;

    log.assert_followed();
    assert!(log.requests.is_empty());
    let err = result.expect_err("an owner reference needs the uid");
    assert_eq!(err.reason(), "InvalidSpec");
    assert_eq!(err.stage(), super::Stage::Dereference);
}

#[tokio::test]
async fn each_failing_stage_is_named_by_the_error() {
    let mut kit = kit_with_pipeline(false);
    let steps = concurrently(vec![
        Step::apply(sts()).fail(500, "Scripted"),
        Step::apply(service()),
    ]);
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(the_detector()), kit.ctx.clone()))
        .await;
    log.assert_followed();
    let err = result.expect_err("the apply failed");
    assert_eq!(err.stage(), super::Stage::Apply);

    let mut kit = Kit::new(identities(true));
    let steps = vec![Step::apply(status()).fail(409, "Conflict")];
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(the_detector()), kit.ctx.clone()))
        .await;
    log.assert_followed();
    let err = result.expect_err("the status write failed");
    assert_eq!(err.stage(), super::Stage::Status);
}

/// The children of a detector with identities on, its StatefulSet answered ready.
fn children_ready() -> Vec<Step> {
    concurrently(vec![
        Step::apply(service_account()),
        Step::apply(role()),
        Step::apply(role_binding()),
        sts_ready_step(),
        Step::apply(service()),
    ])
}

/// The detector with the worker's three runtime conditions and a heartbeat `age` old.
fn with_worker_status(age: std::time::Duration) -> Detector {
    let mut d = the_detector();
    let beat = k8s_openapi::jiff::Timestamp::now()
        - k8s_openapi::jiff::SignedDuration::try_from(age).expect("a small age");
    // As the worker writes it: whole seconds.
    let beat = k8s_openapi::jiff::Timestamp::from_second(beat.as_second()).expect("a valid time");
    let worker_condition = |type_: &str, status: &str, reason: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": "by the worker",
               "observedGeneration": 4, "lastTransitionTime": "2026-12-01T00:00:00Z"})
    };
    d.status = Some(
        serde_json::from_value(json!({
            "conditions": [
                worker_condition("ModelTrained", "True", "Trained"),
                worker_condition("DataFlowing", "True", "EventsArriving"),
                worker_condition("AnomalyActive", "False", "NoAnomaly"),
            ],
            "model": {"version": 3},
            "worker": {"heartbeatTime": beat.to_string(), "pod": "auth-errors-detect-0"},
        }))
        .expect("a worker status parses"),
    );
    d
}

/// The requeue of `action` if it lies within `range` (whole milliseconds).
fn requeued_within(
    action: &kube::runtime::controller::Action,
    range: std::ops::RangeInclusive<u64>,
) -> bool {
    range.into_iter().any(|ms| {
        *action == kube::runtime::controller::Action::requeue(std::time::Duration::from_millis(ms))
    })
}

fn condition<'a>(body: &'a Value, type_: &str) -> Option<&'a Value> {
    body["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

#[tokio::test]
async fn a_fresh_heartbeat_leaves_the_runtime_conditions_to_the_worker_and_is_checked_again_when_it_would_go_stale()
 {
    let mut kit = kit_with_pipeline(true);
    let d = with_worker_status(std::time::Duration::from_secs(30));
    let mut steps = children_ready();
    steps.push(status_step(&d));
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(d), kit.ctx.clone()))
        .await;

    log.assert_followed();
    let action = result.expect("the reconcile succeeds");
    let body = log.bodies(&Method::PATCH, &status())[0];
    assert_eq!(ready(body)["status"], "True", "only Ready: {body}");
    assert!(!log.event_reasons().contains(&"WorkerSilent".to_string()));
    // 180 s timeout − a heartbeat 30 s old (whole seconds, so up to 31 s) + 1 s: ~150 s, well
    // before the 300 s of a Ready detector.
    assert!(
        requeued_within(&action, 149_000..=152_000),
        "requeued when the heartbeat goes stale: {action:?}"
    );
}

#[tokio::test]
async fn a_stale_heartbeat_turns_the_runtime_conditions_unknown_with_one_warning() {
    let mut kit = kit_with_pipeline(true);
    let mut d = with_worker_status(std::time::Duration::from_secs(600));
    let beat = d
        .status
        .as_ref()
        .and_then(|s| s.worker.clone())
        .and_then(|w| w.heartbeat_time);
    let beat = beat.expect("a heartbeat");
    let mut steps = children_ready();
    steps.push(status_step(&d));
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(d.clone()), kit.ctx.clone()))
        .await;

    log.assert_followed();
    let action = result.expect("the reconcile succeeds");
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(300)),
        "silent: nothing to wait for but the regular check"
    );
    let body = log.bodies(&Method::PATCH, &status())[0];
    assert_eq!(
        condition(body, "Ready").expect("Ready")["status"],
        "True",
        "Ready unchanged"
    );
    for t in ["ModelTrained", "DataFlowing", "AnomalyActive"] {
        let c = condition(body, t).unwrap_or_else(|| panic!("{t} applied: {body}"));
        assert_eq!(c["status"], "Unknown", "{t}");
        assert_eq!(c["reason"], "WorkerSilent", "{t}");
        assert_eq!(
            c["message"],
            format!("no heartbeat from the detect worker since {beat} (timeout 180s)")
        );
        assert_eq!(c["observedGeneration"], 4);
    }
    assert!(
        body["status"].get("worker").is_none(),
        "the heartbeat stays the worker's"
    );
    let warnings: Vec<&Value> = log
        .requests
        .iter()
        .filter(|s| s.body["reason"] == "WorkerSilent")
        .map(|s| &s.body)
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", log.event_reasons());
    assert_eq!(warnings[0]["type"], "Warning");
    assert!(
        warnings[0]["note"]
            .as_str()
            .is_some_and(|n| n.contains(&beat)),
        "{}",
        warnings[0]
    );

    let overrides = "helios_operator_runtime_condition_overrides_total{reason=\"WorkerSilent\"} 1";
    assert!(kit.ctx.metrics.render().contains(overrides));

    // The watch delivers the merged status (the worker's heartbeat and model, the operator's
    // conditions): still silent, nothing to write, no second Warning.
    let mut merged: helios_crds::DetectorStatus =
        serde_json::from_value(body["status"].clone()).expect("the written status parses");
    let worker = d.status.take().expect("the worker's status");
    merged.worker = worker.worker;
    merged.model = worker.model;
    d.status = Some(merged.clone());
    d.metadata.resource_version = Some("500".into());
    let steps = children_ready();
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(d.clone()), kit.ctx.clone()))
        .await;
    log.assert_followed();
    assert!(result.is_ok(), "{result:?}");
    assert!(log.event_reasons().iter().all(|r| r != "WorkerSilent"));
    assert!(kit.ctx.metrics.render().contains(overrides), "counted once");

    // The worker is back: its forced apply took its conditions and a fresh heartbeat. The
    // operator no longer applies them (no write: its own part is only Ready).
    let back = with_worker_status(std::time::Duration::from_secs(5));
    let mut status = back.status.expect("the worker's status");
    status.conditions.extend(
        merged
            .conditions
            .iter()
            .filter(|c| c.type_ == "Ready")
            .cloned(),
    );
    status.observed_generation = merged.observed_generation;
    status.replicas = merged.replicas;
    d.status = Some(status);
    d.metadata.resource_version = Some("600".into());
    let steps = children_ready();
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(d), kit.ctx.clone()))
        .await;
    log.assert_followed();
    let action = result.expect("the reconcile succeeds");
    assert!(requeued_within(&action, 174_000..=177_000), "{action:?}");
}

#[tokio::test]
async fn a_race_with_a_returning_worker_keeps_the_unknown_conditions_until_it_applies_again() {
    // The operator's Unknown landed after the worker's fresh heartbeat: the stored conditions
    // are the operator's. Leaving them out now would delete the fields only it owns; it keeps
    // them (no write) until the worker's next apply takes them back.
    let mut kit = kit_with_pipeline(true);
    let mut d = with_worker_status(std::time::Duration::from_secs(5));
    let silenced = |type_: &str| {
        json!({"type": type_, "status": "Unknown", "reason": "WorkerSilent",
               "message": "no heartbeat from the detect worker since 2026-12-01T00:00:00Z (timeout 180s)",
               "observedGeneration": 4, "lastTransitionTime": "2026-12-01T00:03:00Z"})
    };
    let stored = d.status.as_mut().expect("a status");
    stored.conditions = serde_json::from_value(json!([
        {"type": "Ready", "status": "True", "reason": "ReplicasAvailable",
         "message": "2/2 replicas available",
         "observedGeneration": 4, "lastTransitionTime": "2026-12-01T00:00:00Z"},
        silenced("ModelTrained"), silenced("DataFlowing"), silenced("AnomalyActive"),
    ]))
    .expect("conditions parse");
    stored.observed_generation = Some(4);
    stored.replicas = 2;
    let steps = children_ready();
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(d), kit.ctx.clone()))
        .await;
    log.assert_followed();
    let action = result.expect("the reconcile succeeds");
    assert!(
        log.event_reasons().iter().all(|r| r != "WorkerSilent"),
        "no Warning again"
    );
    assert!(requeued_within(&action, 174_000..=177_000), "{action:?}");
}
