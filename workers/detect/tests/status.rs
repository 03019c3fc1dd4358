#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `helios detect` writes its runtime status to its Detector on the real API server (plus real
//! Kafka and PostgreSQL): `ModelTrained` False with warm-up progress, then True with a model
//! version; `DataFlowing` True; after a latency spike `AnomalyActive` True and `lastAnomaly`
//! with the key, score, severity and top features, then `AnomalyActive` False once the windows
//! are normal again. The operator's `Ready` (another field manager) survives beside them.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    create_topics, events, free_port, kube_client, produce, producer, spec_json as spec, stack,
};
use helios_crds::{Detector, DetectorSpec};
use helios_detect::Args;
use helios_detect::args::KubeStatusMode;
use helios_e2e::kubectl::Kubectl;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::sync::oneshot;

/// The status as a test failure shows it.
fn describe(d: &Detector) -> String {
    let managers: Vec<String> = d
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| {
            format!(
                "{}({})",
                m.manager.clone().unwrap_or_default(),
                m.subresource.clone().unwrap_or_default()
            )
        })
        .collect();
    format!(
        "generation {:?}, managers {managers:?}\nstatus: {}",
        d.metadata.generation,
        serde_json::to_string_pretty(&d.status).unwrap()
    )
}

fn condition<'a>(d: &'a Detector, t: &str) -> Option<&'a Condition> {
    d.status.as_ref()?.conditions.iter().find(|c| c.type_ == t)
}

fn is(d: &Detector, t: &str, status: &str) -> bool {
    condition(d, t).is_some_and(|c| c.status == status)
}

/// Every distinct version of the object's status, polled every 100 ms in the background.
#[derive(Clone, Default)]
struct History(Arc<Mutex<Vec<Detector>>>);

impl History {
    fn start(api: Api<Detector>, name: String) -> (Self, tokio::task::JoinHandle<()>) {
        let h = Self::default();
        let seen = h.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(d) = api.get(&name).await {
                    let mut all = seen.0.lock().unwrap();
                    if all.last().is_none_or(|l| l.status != d.status) {
                        all.push(d);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        (h, task)
    }

    fn latest(&self) -> Option<Detector> {
        self.0.lock().unwrap().last().cloned()
    }

    fn any(&self, f: impl Fn(&Detector) -> bool) -> Option<Detector> {
        self.0.lock().unwrap().iter().find(|d| f(d)).cloned()
    }

    /// Waits until some recorded version satisfies `f` (and returns the first that does).
    async fn wait(&self, what: &str, timeout: Duration, f: impl Fn(&Detector) -> bool) -> Detector {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Some(d) = self.any(&f) {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let now = self
            .latest()
            .map_or_else(|| "no object read".into(), |d| describe(&d));
        panic!("timed out after {timeout:?} waiting for {what}; the Detector now:\n{now}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_writes_its_runtime_status_beside_the_operator() {
    let stack = stack().await;
    let env = &stack.env;
    let kubectl = Kubectl::new(env).expect("kube-apiserver from the stack");
    kubectl.install_crds().unwrap();
    let ns = kubectl.temp_namespace("detect-status").unwrap();
    let client = kube_client(env).await;
    let api: Api<Detector> = Api::namespaced(client.clone(), &ns.name);
    let name = "latency";

    // The Detector, and the operator's part of its status (another field manager).
    let detector_spec: DetectorSpec = serde_json::from_value(spec()).unwrap();
    let mut det = Detector::new(name, detector_spec);
    det.meta_mut().namespace = Some(ns.name.clone());
    let created = api.create(&PostParams::default(), &det).await.unwrap();
    let generation = created.metadata.generation;
    let operator_status = serde_json::json!({
        "apiVersion": "helios.dev/v1alpha1", "kind": "Detector",
        "metadata": {"name": name},
        "status": {
            "observedGeneration": generation,
            "replicas": 1,
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "Available",
                "message": "1/1 replicas ready", "observedGeneration": generation,
                "lastTransitionTime": "2025-01-01T00:00:00Z"
            }]
        }
    });
    api.patch_status(
        name,
        &PatchParams::apply("helios-operator").force(),
        &Patch::Apply(&operator_status),
    )
    .await
    .unwrap();
    let (history, poller) = History::start(api.clone(), name.to_string());

    // Kafka topics and the worker (status writer on, with the stack's kubeconfig).
    let suffix = helios_e2e::kubectl::unique_suffix();
    let (events_topic, anomalies_topic) = (
        format!("status-events-{suffix}"),
        format!("status-anomalies-{suffix}"),
    );
    create_topics(&stack, &[(&events_topic, 1), (&anomalies_topic, 1)]).await;
    let producer = producer(&stack);
    let args = Args {
        kube_status: KubeStatusMode::On,
        kubeconfig: Some(env.get("KUBECONFIG").unwrap().to_string()),
        ..common::args(
            &stack,
            &format!("{}/{name}", ns.name),
            &events_topic,
            &anomalies_topic,
            free_port(),
            "1h",
        )
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = tokio::spawn(helios_detect::serve(args, async move {
        let _ = stopped.await;
    }));
    let t0 = (chrono::Utc::now().timestamp_millis() - 600_000) / 1000 * 1000;
    let long = Duration::from_secs(90);

    // Warm-up: 12 windows (11 closed) of normal traffic.
    produce(&producer, &events_topic, &events(t0, 0..12)).await;
    let warming = history
        .wait("ModelTrained=False with warm-up progress", long, |d| {
            condition(d, "ModelTrained").is_some_and(|c| {
                c.status == "False"
                    && c.reason == "WarmingUp"
                    && c.message == "11/20 warm-up windows"
            })
        })
        .await;
    let model = warming.status.as_ref().unwrap().model.clone().unwrap();
    assert_eq!(
        (model.version, model.warmup.as_deref()),
        (0, Some("11/20")),
        "{}",
        describe(&warming)
    );
    history
        .wait("DataFlowing=True", long, |d| is(d, "DataFlowing", "True"))
        .await;

    // Trained: normal traffic up to the first spike window (still open).
    produce(&producer, &events_topic, &events(t0, 12..41)).await;
    let trained = history
        .wait("ModelTrained=True with a model version", long, |d| {
            is(d, "ModelTrained", "True")
                && d.status
                    .as_ref()
                    .and_then(|s| s.model.as_ref())
                    .is_some_and(|m| m.version >= 1)
        })
        .await;
    let trained_since = condition(&trained, "ModelTrained")
        .unwrap()
        .last_transition_time
        .clone();
    let model = trained.status.as_ref().unwrap().model.clone().unwrap();
    assert!(model.trained_at.is_some(), "{}", describe(&trained));
    assert_eq!(
        model.effective_threshold,
        Some(0.7),
        "{}",
        describe(&trained)
    );
    assert!(model.warmup.is_none(), "{}", describe(&trained));
    assert!(
        condition(&trained, "ModelTrained")
            .unwrap()
            .message
            .starts_with("model v1 scoring 3/3 keys"),
        "{}",
        describe(&trained)
    );
    assert!(
        !is(&trained, "AnomalyActive", "True"),
        "{}",
        describe(&trained)
    );

    // The spike: the first events of window 41 close the first spike window.
    let later = events(t0, 41..48);
    let (first, rest): (Vec<_>, Vec<_>) = later.into_iter().partition(|(_, v)| {
        serde_json::from_slice::<serde_json::Value>(v).unwrap()["timestamp"] == t0 + 41_000
    });
    produce(&producer, &events_topic, &first).await;
    let active = history
        .wait("AnomalyActive=True with lastAnomaly", long, |d| {
            is(d, "AnomalyActive", "True")
                && d.status.as_ref().is_some_and(|s| s.last_anomaly.is_some())
        })
        .await;
    let a = condition(&active, "AnomalyActive").unwrap();
    assert!(
        a.message.contains("checkout"),
        "the message names the key: {}",
        describe(&active)
    );
    assert!(
        a.message.contains("p99_latency"),
        "and the top feature: {}",
        describe(&active)
    );
    assert_eq!(a.reason, "AnomalousP99Latency", "{}", describe(&active));
    let last = active
        .status
        .as_ref()
        .unwrap()
        .last_anomaly
        .clone()
        .unwrap();
    assert_eq!(
        last.key.as_deref(),
        Some("checkout"),
        "{}",
        describe(&active)
    );
    assert!(
        last.score > 0.0 && last.score <= 1.0,
        "{}",
        describe(&active)
    );
    assert!(!last.fingerprint.is_empty());
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(&last.time)
            .unwrap()
            .timestamp_millis(),
        t0 + 40_000,
        "the anomaly starts with the first spike window"
    );
    let top = last.top_features.first().expect("top features");
    assert_eq!(top.feature, "p99_latency", "{}", describe(&active));
    assert!(top.actual > 3.0 * top.typical, "actual vs typical: {top:?}");
    println!("lastAnomaly: {}", serde_json::to_string(&last).unwrap());

    // Normal again: AnomalyActive clears; lastAnomaly stays.
    produce(&producer, &events_topic, &rest).await;
    let cleared = history
        .wait("AnomalyActive=False after the spike", long, |d| {
            is(d, "AnomalyActive", "False")
                && d.status.as_ref().is_some_and(|s| s.last_anomaly.is_some())
        })
        .await;
    assert_eq!(
        cleared
            .status
            .as_ref()
            .unwrap()
            .last_anomaly
            .as_ref()
            .unwrap()
            .fingerprint,
        last.fingerprint
    );

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), worker)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    poller.abort();

    // Both managers' fields coexist: the operator's Ready is untouched.
    let d = api.get(name).await.unwrap();
    let ready = condition(&d, "Ready").unwrap_or_else(|| panic!("Ready is gone: {}", describe(&d)));
    assert_eq!(
        (
            ready.status.as_str(),
            ready.reason.as_str(),
            ready.message.as_str()
        ),
        ("True", "Available", "1/1 replicas ready"),
        "{}",
        describe(&d)
    );
    let status = d.status.as_ref().unwrap();
    assert_eq!(status.replicas, 1, "{}", describe(&d));
    assert_eq!(status.observed_generation, generation);
    for t in ["ModelTrained", "DataFlowing", "AnomalyActive"] {
        let c = condition(&d, t).unwrap_or_else(|| panic!("{t} missing: {}", describe(&d)));
        assert_eq!(c.observed_generation, generation, "{t}: {}", describe(&d));
    }
    assert_eq!(
        condition(&d, "ModelTrained").unwrap().last_transition_time,
        trained_since,
        "ModelTrained stayed True: its lastTransitionTime is kept"
    );
    let managers: Vec<(String, String)> = d
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.subresource.clone().unwrap_or_default(),
            )
        })
        .collect();
    for m in ["helios-operator", "helios-detect"] {
        assert!(
            managers.contains(&(m.to_string(), "status".to_string())),
            "{m} manages part of the status: {managers:?}"
        );
    }
    println!(
        "status versions seen: {}; final status:\n{}",
        history.0.lock().unwrap().len(),
        describe(&d)
    );
}
