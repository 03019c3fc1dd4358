//! Reconcile tests of the AnomalyPipeline controller against a scripted API server (see
//! `fixtures`). The external probe (Kafka topics, report hook) is pre-seeded healthy in the memo,
//! as a reconcile within its TTL finds it, so no broker or AWS endpoint is needed; tests of the
//! Kafka paths point the bootstrap servers at a missing ConfigMap, which fails before any broker.

use super::Stage;
use super::fixtures::{Kit, Log, Step, child_meta, concurrently, stored};
use super::memo::PipelineProbe;
use super::pipeline::{KIND, reconcile};
use crate::builders::detector::WorkerIdentity;
use crate::builders::fixtures::{detector, pipeline};
use crate::conditions::Cond;
use crate::naming::{DELETE_ATTEMPTS_ANNOTATION, DELETE_STARTED_ANNOTATION, TOPICS_FINALIZER};
use helios_crds::AnomalyPipeline;
use helios_crds::pipeline::DeletionPolicy;
use http::{Method, StatusCode};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::ObjectMeta;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

const NS: &str = "/namespaces/team-a";
const PIPELINE_UID: &str = "1111-aaaa";
const GENERATION: i64 = 3;

fn config_map() -> String {
    format!("/api/v1{NS}/configmaps/shop-config")
}
fn deployment() -> String {
    format!("/apis/apps/v1{NS}/deployments/shop-ingest")
}
fn service() -> String {
    format!("/api/v1{NS}/services/shop-ingest")
}
fn pdb() -> String {
    format!("/apis/policy/v1{NS}/poddisruptionbudgets/shop-ingest")
}
fn object() -> String {
    format!("/apis/helios.dev/v1alpha1{NS}/anomalypipelines/shop")
}
fn status() -> String {
    format!("{}/status", object())
}

fn the_pipeline() -> AnomalyPipeline {
    stored(pipeline(), PIPELINE_UID, GENERATION, 20)
}

fn json_of(p: &AnomalyPipeline) -> Value {
    serde_json::to_value(p).expect("a pipeline serializes")
}

/// A kit whose memo holds a healthy probe of `p` at its generation, and whose detectors cache
/// holds one (not yet Ready) detector of it.
fn kit_with_probe(p: &AnomalyPipeline) -> Kit {
    let mut kit = Kit::new(WorkerIdentity::default());
    let key = super::cache::key_of(KIND, p);
    let probe = PipelineProbe {
        topics: Cond::ok("TopicsReady", "TopicsReady", "seeded probe"),
        events_partitions: Some(6),
        report: Cond::ok("ReportHookReady", "ReportHookReady", "seeded probe"),
    };
    kit.ctx
        .memo
        .probed(&key, p.metadata.generation, Instant::now(), probe);
    kit.cache_detector(&stored(detector(), "2222-bbbb", 1, 30));
    kit
}

/// The Deployment apply, answered with a Deployment whose two replicas are available.
fn deployment_available_step() -> Step {
    Step::apply(deployment()).answer_with(|body, rv| {
        let mut obj = super::fixtures::echo(body, rv);
        obj["status"] = json!({"observedGeneration": 1, "replicas": 2, "availableReplicas": 2});
        (StatusCode::OK, obj)
    })
}

/// The ingestion children applied (at once), the Deployment answering available.
fn children_applied() -> Vec<Step> {
    concurrently(vec![
        Step::apply(config_map()),
        deployment_available_step(),
        Step::apply(service()),
        Step::apply(pdb()),
    ])
}

fn condition<'a>(status_body: &'a Value, type_: &str) -> &'a Value {
    status_body["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("condition {type_} in {status_body}"))
}

#[tokio::test]
async fn a_pipeline_with_a_healthy_probe_applies_its_ingestion_children_and_writes_its_status() {
    let p = the_pipeline();
    let mut kit = kit_with_probe(&p);
    let mut steps = children_applied();
    steps.push(Step::apply_status(status(), json_of(&p)));
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(p), kit.ctx.clone()))
        .await;

    log.assert_followed();
    assert!(result.is_ok(), "{result:?}");
    let applied = log.bodies(&Method::PATCH, &deployment())[0];
    assert_eq!(
        applied["metadata"]["ownerReferences"][0]["uid"],
        PIPELINE_UID
    );
    let body = log.bodies(&Method::PATCH, &status())[0];
    assert_eq!(body["status"]["observedGeneration"], GENERATION);
    assert_eq!(body["status"]["topics"]["eventsPartitions"], 6);
    assert_eq!(body["status"]["ingestion"]["replicas"], 2);
    assert_eq!(body["status"]["detectors"]["summary"], "0/1");
    assert_eq!(condition(body, "TopicsReady")["message"], "seeded probe");
    assert_eq!(condition(body, "IngestionAvailable")["status"], "True");
    assert_eq!(condition(body, "DetectorsReady")["status"], "False");
    assert_eq!(condition(body, "Ready")["status"], "False");
    assert_eq!(
        log.event_reasons()
            .iter()
            .filter(|r| *r == "Created")
            .count(),
        4
    );
}

#[tokio::test]
async fn a_pipeline_that_deletes_its_topics_gets_the_finalizer_before_its_children() {
    let mut p = the_pipeline();
    p.spec.kafka.deletion_policy = DeletionPolicy::Delete;
    let mut kit = kit_with_probe(&p);
    let answer = json_of(&p);
    let steps = [
        vec![Step::new(Method::PATCH, object()).answer(200, answer)],
        children_applied(),
        vec![Step::apply_status(status(), json_of(&p))],
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(p), kit.ctx.clone()))
        .await;

    log.assert_followed();
    assert!(result.is_ok(), "{result:?}");
    let patch = log.bodies(&Method::PATCH, &object())[0];
    assert_eq!(
        patch["metadata"]["finalizers"],
        json!(["helios.dev/topics"])
    );
    assert_eq!(
        patch["metadata"]["resourceVersion"], "20",
        "guarded by the version read"
    );
}

#[tokio::test]
async fn a_suspended_pipeline_drops_its_disruption_budget() {
    let mut p = the_pipeline();
    p.spec.suspend = true;
    let mut kit = kit_with_probe(&p);
    kit.cache_child::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(child_meta(
        "team-a",
        "shop-ingest",
        ("AnomalyPipeline", PIPELINE_UID),
        "shop",
    ));
    // Someone else's ConfigMap with the operator's labels stays.
    kit.cache_child::<ConfigMap>(child_meta(
        "team-a",
        "other-config",
        ("AnomalyPipeline", "9999"),
        "other",
    ));
    let mut steps = concurrently(vec![
        Step::apply(config_map()),
        Step::apply(deployment()),
        Step::apply(service()),
    ]);
    steps.push(Step::delete(pdb()));
    steps.push(Step::apply_status(status(), json_of(&p)));
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(p), kit.ctx.clone()))
        .await;

    log.assert_followed();
    assert!(result.is_ok(), "{result:?}");
    let applied = log.bodies(&Method::PATCH, &deployment())[0];
    assert_eq!(applied["spec"]["replicas"], 0);
}

/// `p` with its bootstrap servers in a ConfigMap that does not exist (a Kafka connection error
/// found without a broker) and no reporting section (no AWS endpoint to reach).
fn with_missing_bootstrap_config_map(mut p: AnomalyPipeline) -> AnomalyPipeline {
    p.spec.kafka.bootstrap_servers = None;
    p.spec.kafka.bootstrap_config_map_ref = Some(helios_crds::pipeline::ConfigMapKeyRef {
        name: "kafka-bootstrap".into(),
        key: "servers".into(),
    });
    p.spec.reporting = None;
    p
}

/// The GET of the missing bootstrap ConfigMap, answered 404.
fn missing_bootstrap_step() -> Step {
    Step::new(
        Method::GET,
        format!("/api/v1{NS}/configmaps/kafka-bootstrap"),
    )
    .fail(404, "NotFound")
}

/// `p` being deleted, with the topics finalizer and `annotations`.
fn being_deleted(mut p: AnomalyPipeline, annotations: &[(&str, String)]) -> AnomalyPipeline {
    p.spec.kafka.deletion_policy = DeletionPolicy::Delete;
    p.metadata.finalizers = Some(vec![TOPICS_FINALIZER.into()]);
    p.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    p.metadata.annotations = Some(
        annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    );
    p
}

#[tokio::test]
async fn a_pipeline_whose_max_body_size_is_invalid_fails_validation_before_any_request() {
    let mut p = the_pipeline();
    p.spec.ingestion.max_body_size = "5Ti".into();
    let mut kit = kit_with_probe(&p);
    let (result, log) = kit
        .run(vec![], reconcile(Arc::new(p), kit.ctx.clone()))
        .await;

    log.assert_followed();
    assert!(log.requests.is_empty(), "no child, no status, no Event");
    let err = result.expect_err("the spec is invalid");
    assert_eq!(err.reason(), "InvalidSpec");
    assert_eq!(err.stage(), Stage::Validate);
}

#[tokio::test]
async fn an_invalid_pipeline_that_deletes_its_topics_still_gets_its_finalizer_first() {
    let mut p = the_pipeline();
    p.spec.ingestion.max_body_size = "5Ti".into();
    p.spec.kafka.deletion_policy = DeletionPolicy::Delete;
    let mut kit = kit_with_probe(&p);
    let steps = vec![Step::new(Method::PATCH, object()).answer(200, json_of(&p))];
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(p), kit.ctx.clone()))
        .await;

    log.assert_followed();
    let err = result.expect_err("the spec is invalid");
    assert_eq!(err.stage(), Stage::Validate, "{err}");
    assert_eq!(
        log.bodies(&Method::PATCH, &object())[0]["metadata"]["finalizers"],
        json!([TOPICS_FINALIZER])
    );
}

#[tokio::test]
async fn a_pipeline_being_deleted_without_the_finalizer_makes_no_request() {
    let mut p = the_pipeline();
    p.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    let mut kit = kit_with_probe(&p);
    let (result, log) = kit
        .run(vec![], reconcile(Arc::new(p), kit.ctx.clone()))
        .await;

    log.assert_followed();
    assert_eq!(result.ok(), Some(Action::await_change()));
    assert!(log.requests.is_empty());
}

#[tokio::test]
async fn a_pipeline_whose_topics_cannot_be_deleted_yet_records_the_attempt_and_retries() {
    let p = being_deleted(with_missing_bootstrap_config_map(the_pipeline()), &[]);
    let mut kit = kit_with_probe(&p);
    let steps = vec![
        missing_bootstrap_step(),
        Step::new(Method::PATCH, object()).answer(200, json_of(&p)),
    ];
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(p), kit.ctx.clone()))
        .await;

    log.assert_followed();
    assert_eq!(
        result.ok(),
        Some(Action::requeue(crate::finalizer::RETRY_AFTER))
    );
    let patch = log.bodies(&Method::PATCH, &object())[0];
    assert_eq!(
        patch["metadata"]["annotations"][DELETE_ATTEMPTS_ANNOTATION],
        "1"
    );
    assert_eq!(patch["metadata"]["resourceVersion"], "20");
    assert!(
        patch["metadata"].get("finalizers").is_none(),
        "the finalizer stays"
    );
    assert_eq!(log.event_reasons(), vec!["KafkaConnectionConfig"]);
}

#[tokio::test]
async fn a_pipeline_whose_topic_deletion_keeps_failing_is_released_with_a_warning() {
    let started = Timestamp::now().to_string();
    let p = being_deleted(
        with_missing_bootstrap_config_map(the_pipeline()),
        &[
            (DELETE_ATTEMPTS_ANNOTATION, "2".into()),
            (DELETE_STARTED_ANNOTATION, started),
        ],
    );
    let mut kit = kit_with_probe(&p);
    let steps = vec![
        missing_bootstrap_step(),
        Step::new(Method::PATCH, object()).answer(200, json_of(&p)),
    ];
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(p), kit.ctx.clone()))
        .await;

    log.assert_followed();
    assert_eq!(result.ok(), Some(Action::await_change()));
    let patch = log.bodies(&Method::PATCH, &object())[0];
    assert_eq!(patch["metadata"]["finalizers"], json!([]));
    assert_eq!(log.event_reasons(), vec!["TopicDeletionAbandoned"]);
}

#[tokio::test]
async fn a_failing_external_probe_is_a_condition_after_the_children_not_an_error() {
    let p = with_missing_bootstrap_config_map(the_pipeline());
    // No seeded probe: the external stage runs.
    let mut kit = Kit::new(WorkerIdentity::default());
    let steps = [
        children_applied(),
        vec![
            missing_bootstrap_step(),
            Step::apply_status(status(), json_of(&p)),
        ],
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(p), kit.ctx.clone()))
        .await;

    log.assert_followed();
    assert!(result.is_ok(), "{result:?}");
    let body = log.bodies(&Method::PATCH, &status())[0];
    let topics = condition(body, "TopicsReady");
    assert_eq!(topics["status"], "False");
    assert_eq!(topics["reason"], "KafkaConnectionConfig");
    assert_eq!(
        condition(body, "ReportHookReady")["reason"],
        "NotConfigured"
    );
    assert_eq!(condition(body, "Ready")["reason"], "KafkaConnectionConfig");
    assert!(body["status"]["topics"]["eventsPartitions"].is_null());
    assert!(
        log.event_reasons()
            .contains(&"KafkaConnectionConfig".to_string()),
        "{:?}",
        log.event_reasons()
    );
}

/// The metadata of the child at `path` as `log` shows it was applied, at the version the apply
/// answered (what the child's cache holds once the watch delivered the apply).
fn applied_meta(kit: &Kit, log: &Log, path: &str, child_key: &str) -> ObjectMeta {
    let body = log.bodies(&Method::PATCH, path)[0];
    let mut meta: ObjectMeta =
        serde_json::from_value(body["metadata"].clone()).expect("applied metadata");
    let owner_key = super::cache::key_of(KIND, &the_pipeline());
    let answered = kit
        .ctx
        .memo
        .child(&owner_key, child_key)
        .expect("the apply was answered");
    meta.resource_version = answered.revision.map(|r| r.to_string());
    meta.generation = answered.generation;
    meta
}

#[tokio::test]
async fn a_deployment_that_became_available_in_the_cache_flips_ingestion_without_a_request() {
    let p = the_pipeline();
    let mut kit = kit_with_probe(&p);
    // First reconcile: the Deployment answers without a status (its rollout is pending).
    let mut steps = vec![
        Step::apply(config_map()),
        Step::apply(deployment()),
        Step::apply(service()),
        Step::apply(pdb()),
    ];
    steps.push(Step::apply_status(status(), json_of(&p)));
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(p.clone()), kit.ctx.clone()))
        .await;
    log.assert_followed();
    assert!(result.is_ok(), "{result:?}");
    let body = log.bodies(&Method::PATCH, &status())[0];
    assert_eq!(condition(body, "IngestionAvailable")["status"], "False");

    // The watches deliver the applies, then the Deployment's rollout status.
    let key = |kind: &str, name: &str| format!("{kind}/team-a/{name}");
    let cm = applied_meta(&kit, &log, &config_map(), &key("ConfigMap", "shop-config"));
    let svc = applied_meta(&kit, &log, &service(), &key("Service", "shop-ingest"));
    let budget = applied_meta(
        &kit,
        &log,
        &pdb(),
        &key("PodDisruptionBudget", "shop-ingest"),
    );
    let mut dep = applied_meta(&kit, &log, &deployment(), &key("Deployment", "shop-ingest"));
    kit.cache_child::<ConfigMap>(cm);
    kit.cache_child::<Service>(svc);
    kit.cache_child::<PodDisruptionBudget>(budget);
    dep.resource_version = Some("900".into());
    kit.cache_object::<Deployment>(Deployment {
        metadata: dep,
        status: Some(DeploymentStatus {
            observed_generation: Some(1),
            replicas: Some(2),
            available_replicas: Some(2),
            ..Default::default()
        }),
        ..Default::default()
    });

    // Second reconcile: nothing to apply, no GET of the Deployment; only the status changes.
    let steps = vec![Step::apply_status(status(), json_of(&p))];
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(p), kit.ctx.clone()))
        .await;
    log.assert_followed();
    assert!(result.is_ok(), "{result:?}");
    let body = log.bodies(&Method::PATCH, &status())[0];
    assert_eq!(condition(body, "IngestionAvailable")["status"], "True");
    assert_eq!(body["status"]["ingestion"]["replicas"], 2);
}
