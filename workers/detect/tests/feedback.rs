#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Feedback through the real API server (plus real Kafka and PostgreSQL): a team annotates its
//! Detector `helios.dev/feedback-<anomalyId>: false-positive`; the worker records the label on
//! the anomaly row, shows the suppression in `status.model.suppressions`, and the same pattern
//! on the same key does not alert again while another key with the same pattern still does (its
//! windows are still flagged). A `confirmed` label is recorded too.

mod common;

use std::time::Duration;

use common::{
    args, count, create_topics, events_spiking, free_port, kube_client, metric, produce, producer,
    spec_json, stack, wait_for,
};
use helios_crds::{Detector, DetectorSpec};
use helios_detect::Args;
use helios_detect::args::KubeStatusMode;
use helios_e2e::kubectl::Kubectl;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};

/// The row's feedback label.
async fn label_of(pool: &sqlx::PgPool, detector: &str, id: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT feedback FROM helios.anomalies WHERE detector = $1 AND anomaly_id = $2",
    )
    .bind(detector)
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// The anomaly rows of `detector`: (key, id), oldest first.
async fn anomalies(pool: &sqlx::PgPool, detector: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT key, anomaly_id FROM helios.anomalies WHERE detector = $1 ORDER BY window_start, key",
    )
    .bind(detector)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_false_positive_label_silences_its_pattern_on_its_key_only() {
    let s = stack().await;
    let kubectl = Kubectl::new(&s.env).expect("kube-apiserver from the stack");
    kubectl.install_crds().unwrap();
    let ns = kubectl.temp_namespace("detect-feedback").unwrap();
    let client = kube_client(&s.env).await;
    let api: Api<Detector> = Api::namespaced(client, &ns.name);
    let name = "latency";
    // The suites' spec with a 1 s cooldown: a second alert of a key is not held back by it.
    let mut spec = spec_json();
    spec["alerting"]["cooldown"] = "1s".into();
    let detector_spec: DetectorSpec = serde_json::from_value(spec.clone()).unwrap();
    let mut det = Detector::new(name, detector_spec);
    det.meta_mut().namespace = Some(ns.name.clone());
    api.create(&PostParams::default(), &det).await.unwrap();

    let suffix = helios_e2e::kubectl::unique_suffix();
    let (events_topic, anomalies_topic) = (
        format!("feedback-events-{suffix}"),
        format!("feedback-anomalies-{suffix}"),
    );
    create_topics(&s, &[(&events_topic, 1), (&anomalies_topic, 1)]).await;
    let detector = format!("{}/{name}", ns.name);
    let port = free_port();
    let args = Args {
        detector_config: spec.to_string(),
        kube_status: KubeStatusMode::On,
        kubeconfig: Some(s.env.get("KUBECONFIG").unwrap().to_string()),
        ..args(&s, &detector, &events_topic, &anomalies_topic, port, "1h")
    };
    let worker = common::start(args);
    let p = producer(&s);
    let t0 = common::t0();

    // The first incident: checkout's latency ×10 in windows 40–42.
    produce(&p, &events_topic, &events_spiking(t0, 0..48, &["checkout"])).await;
    wait_for("checkout's anomaly", Duration::from_secs(60), || async {
        anomalies(&s.pool, &detector).await.len() == 1
    })
    .await;
    let (key, first) = anomalies(&s.pool, &detector).await.remove(0);
    assert_eq!(key, "checkout");

    // The team says it was not an incident.
    let annotate = |id: &str, label: &str| {
        serde_json::json!({"metadata": {"annotations": {
            format!("helios.dev/feedback-{id}"): label
        }}})
    };
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(&annotate(&first, "false-positive")),
    )
    .await
    .unwrap();
    wait_for("the label taken in", Duration::from_secs(60), || async {
        let suppressions = api
            .get_status(name)
            .await
            .ok()
            .and_then(|d| d.status?.model?.suppressions);
        label_of(&s.pool, &detector, &first).await.as_deref() == Some("false-positive")
            && suppressions == Some(1)
    })
    .await;

    // The same pattern again, on checkout and on cart (windows 60–62).
    produce(&p, &events_topic, &events_spiking(t0, 48..60, &[])).await;
    produce(
        &p,
        &events_topic,
        &events_spiking(t0 + 20_000, 40..48, &["checkout", "cart"]),
    )
    .await;
    wait_for("cart's anomaly", Duration::from_secs(60), || async {
        anomalies(&s.pool, &detector)
            .await
            .iter()
            .any(|(k, _)| k == "cart")
    })
    .await;
    wait_for(
        "the window after the spike written",
        Duration::from_secs(30),
        || async { common::windows_at(&s.pool, &detector, t0 + 64_000).await == 3 },
    )
    .await;
    let rows = anomalies(&s.pool, &detector).await;
    let keys: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["checkout", "cart"],
        "checkout's repeat suppressed: {rows:?}"
    );
    let flagged = count(
        &s.pool,
        "SELECT count(*) FROM helios.windows WHERE detector = $1 AND key = 'checkout' AND anomalous",
        &detector,
    )
    .await;
    assert!(
        flagged >= 4,
        "the repeat is still flagged in the windows: {flagged}"
    );
    assert!(
        metric(port, "helios_detect_anomalies_suppressed_total")
            .await
            .is_some_and(|n| n >= 1.0)
    );

    // A confirmation is recorded as well.
    let cart = rows[1].1.clone();
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(&annotate(&cart, "confirmed")),
    )
    .await
    .unwrap();
    // The row first, then the gauge: both in the same read of the annotations.
    wait_for(
        "the confirmation taken in",
        Duration::from_secs(30),
        || async {
            label_of(&s.pool, &detector, &cart).await.as_deref() == Some("confirmed")
                && metric(port, "helios_detect_feedback_labels{label=\"confirmed\"}").await
                    == Some(1.0)
        },
    )
    .await;
    assert_eq!(
        metric(
            port,
            "helios_detect_feedback_labels{label=\"false-positive\"}"
        )
        .await,
        Some(1.0)
    );
    worker.stop().await;
}
