//! Reconcile tests of the AnomalyPipeline controller against a scripted API server (see
//! `fixtures`). The external probe (Kafka topics, report hook) is pre-seeded healthy in the memo,
//! as a reconcile within its TTL finds it, so no broker or AWS endpoint is needed.

use super::fixtures::{Kit, Step, child_meta, stored};
use super::memo::PipelineProbe;
use super::pipeline::{KIND, reconcile};
use crate::builders::detector::WorkerIdentity;
use crate::builders::fixtures::{detector, pipeline};
use crate::conditions::Cond;
use helios_crds::AnomalyPipeline;
use helios_crds::pipeline::DeletionPolicy;
use http::{Method, StatusCode};
use k8s_openapi::api::core::v1::ConfigMap;
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
    let steps = vec![
        Step::apply(config_map()),
        deployment_available_step(),
        Step::apply(service()),
        Step::apply(pdb()),
        Step::apply_status(status(), json_of(&p)),
    ];
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
    let steps = vec![
        Step::new(Method::PATCH, object()).answer(200, answer),
        Step::apply(config_map()),
        deployment_available_step(),
        Step::apply(service()),
        Step::apply(pdb()),
        Step::apply_status(status(), json_of(&p)),
    ];
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
    let steps = vec![
        Step::apply(config_map()),
        Step::apply(deployment()),
        Step::apply(service()),
        Step::delete(pdb()),
        Step::apply_status(status(), json_of(&p)),
    ];
    let (result, log) = kit
        .run(steps, reconcile(Arc::new(p), kit.ctx.clone()))
        .await;

    log.assert_followed();
    assert!(result.is_ok(), "{result:?}");
    let applied = log.bodies(&Method::PATCH, &deployment())[0];
    assert_eq!(applied["spec"]["replicas"], 0);
}
