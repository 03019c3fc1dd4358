//! `helios operator` against the real stack: kube-apiserver (+ controller-manager, scheduler and
//! kwok's fake node, so workloads report real readiness), Kafka, MinIO and the Lambda emulator.
//! Each test runs its own operator binary watching only its own temporary namespace.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use helios_crds::{AnomalyPipeline, Detector};
use helios_e2e::kubectl::unique_suffix;
use helios_e2e::{StackEnv, clients};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Service};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use support::*;

fn pipeline_yaml(name: &str, env: &StackEnv, partitions: u32, extra: &str) -> String {
    format!(
        r#"apiVersion: helios.dev/v1alpha1
kind: AnomalyPipeline
metadata:
  name: {name}
spec:
  kafka:
    bootstrapServers: "{bootstrap}"
    topics:
      events: {{partitions: {partitions}, replicationFactor: 1, retention: 1h}}
      anomalies: {{partitions: 1, replicationFactor: 1}}
    deletionPolicy: Delete
  ingestion:
    replicas: 1
    authTokenSecretRef: {{name: {name}-token, key: token}}
{extra}"#,
        bootstrap = env.get("KAFKA_BOOTSTRAP").unwrap()
    )
}

fn token_secret(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}-token}}\nstringData: {{token: t0k3n-{name}}}\n"
    )
}

fn owned_by<K: Resource>(child: &K, owner_uid: &str) -> bool {
    child.meta().owner_references.as_ref().is_some_and(|refs| {
        refs.iter()
            .any(|r| r.uid == owner_uid && r.controller == Some(true))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_gets_topics_children_truthful_status_and_is_cleaned_up() {
    let (env, kubectl) = stack();
    let ns = kubectl.temp_namespace("op-life").unwrap();
    let client = kube_client(&env).await;
    let mut op = start_operator(&env, &ns.name);
    let name = "shop";
    apply(&kubectl, &ns, &token_secret(name));
    apply(&kubectl, &ns, &pipeline_yaml(name, &env, 2, ""));
    let pipelines: Api<AnomalyPipeline> = Api::namespaced(client.clone(), &ns.name);

    // Topics exist with the declared partitions and retention before TopicsReady says so.
    let topics = pipeline_condition(&mut op, &pipelines, name, "TopicsReady", "True", None).await;
    let events = format!("helios.{}.{name}.events", ns.name);
    let anomalies = format!("helios.{}.{name}.anomalies", ns.name);
    let kafka = admin(&env);
    assert_eq!(partitions(&kafka, &events), Some(2), "{}", topics.message);
    assert_eq!(partitions(&kafka, &anomalies), Some(1));
    assert_eq!(
        topic_config(&kafka, &events, "retention.ms")
            .await
            .as_deref(),
        Some("3600000")
    );

    // Children carry a controller owner reference to the pipeline.
    let p = pipelines.get(name).await.unwrap();
    let uid = p.uid().unwrap();
    assert!(
        p.finalizers().iter().any(|f| f == "helios.dev/topics"),
        "Delete policy adds the finalizer"
    );
    let deployment = Api::<Deployment>::namespaced(client.clone(), &ns.name)
        .get(&format!("{name}-ingest"))
        .await
        .unwrap();
    assert!(owned_by(&deployment, &uid));
    let pod = deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .clone()
        .unwrap();
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some("helios:e2e"));
    assert!(
        container.args.iter().flatten().any(|a| a == "ingest"),
        "{:?}",
        container.args
    );
    let sc = container.security_context.clone().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let env_names: Vec<&str> = container
        .env
        .iter()
        .flatten()
        .map(|e| e.name.as_str())
        .collect();
    for wanted in [
        "HELIOS_KAFKA_BOOTSTRAP",
        "HELIOS_EVENTS_TOPIC",
        "HELIOS_INGEST_TOKEN",
    ] {
        assert!(
            env_names.contains(&wanted),
            "{wanted} missing from {env_names:?}"
        );
    }
    let service = Api::<Service>::namespaced(client.clone(), &ns.name)
        .get(&format!("{name}-ingest"))
        .await
        .unwrap();
    assert!(owned_by(&service, &uid));
    let config = Api::<ConfigMap>::namespaced(client.clone(), &ns.name)
        .get(&format!("{name}-config"))
        .await
        .unwrap();
    assert!(owned_by(&config, &uid));

    // The Deployment's pod really becomes available (kwok), so the summary turns Ready.
    let ready = pipeline_condition(&mut op, &pipelines, name, "Ready", "True", None).await;
    let p = pipelines.get(name).await.unwrap();
    let status = p.status.clone().unwrap();
    for c in &status.conditions {
        assert_eq!(
            c.observed_generation,
            p.metadata.generation,
            "{}",
            describe(&status.conditions)
        );
    }
    for t in [
        "TopicsReady",
        "IngestionAvailable",
        "DetectorsReady",
        "ReportHookReady",
    ] {
        let c = condition(&status.conditions, t).unwrap_or_else(|| panic!("{t} missing"));
        assert_eq!(c.status, "True", "{}", describe(&status.conditions));
    }
    assert_eq!(
        status.topics.as_ref().map(|t| t.events.as_str()),
        Some(events.as_str())
    );
    assert_eq!(status.ingestion.as_ref().map(|i| i.replicas), Some(1));
    let ready_since = ready.last_transition_time.clone();

    // Growing the partitions grows the topic; Ready stays True (no flap on a spec change).
    pipelines
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"spec": {"kafka": {"topics": {"events": {"partitions": 4}}}}}),
            ),
        )
        .await
        .unwrap();
    eventually(&mut op, "events topic grown to 4 partitions", || async {
        let p = pipelines.get(name).await.map_err(|e| e.to_string())?;
        let s = p.status.clone().unwrap_or_default();
        let observed = s.topics.as_ref().and_then(|t| t.events_partitions);
        match (
            partitions(&kafka, &events),
            observed,
            s.observed_generation == p.metadata.generation,
        ) {
            (Some(4), Some(4), true) => Ok(()),
            other => Err(format!("kafka/status/current: {other:?}")),
        }
    })
    .await;
    let after = pipeline_condition(&mut op, &pipelines, name, "Ready", "True", None).await;
    assert_eq!(
        after.last_transition_time, ready_since,
        "Ready did not flap"
    );

    // Deleting the pipeline deletes the topics (deletionPolicy Delete), releases the finalizer,
    // and the garbage collector removes the children.
    pipelines.delete(name, &Default::default()).await.unwrap();
    eventually(&mut op, "pipeline and topics gone", || async {
        let gone = pipelines
            .get_opt(name)
            .await
            .map_err(|e| e.to_string())?
            .is_none();
        match (
            gone,
            partitions(&kafka, &events),
            partitions(&kafka, &anomalies),
        ) {
            (true, None, None) => Ok(()),
            other => Err(format!("pipeline gone / events / anomalies: {other:?}")),
        }
    })
    .await;
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns.name);
    eventually(
        &mut op,
        "the ingestion Deployment is garbage collected",
        || async {
            match deployments.get_opt(&format!("{name}-ingest")).await {
                Ok(None) => Ok(()),
                other => Err(format!("{:?}", other.map(|d| d.map(|d| d.name_any())))),
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detector_waits_for_its_pipeline_then_runs() {
    let (env, kubectl) = stack();
    let ns = kubectl.temp_namespace("op-det").unwrap();
    let client = kube_client(&env).await;
    let mut op = start_operator(&env, &ns.name);
    let detectors: Api<Detector> = Api::namespaced(client.clone(), &ns.name);
    let pipelines: Api<AnomalyPipeline> = Api::namespaced(client.clone(), &ns.name);
    apply(
        &kubectl,
        &ns,
        "apiVersion: helios.dev/v1alpha1\nkind: Detector\nmetadata: {name: latency}\n\
         spec: {pipelineRef: {name: web}, features: [event_count, p99_latency]}\n",
    );
    let waiting = detector_condition(
        &mut op,
        &detectors,
        "latency",
        "Ready",
        "False",
        Some("PipelineNotFound"),
    )
    .await;
    assert!(waiting.message.contains("web"), "{}", waiting.message);

    apply(&kubectl, &ns, &token_secret("web"));
    apply(&kubectl, &ns, &pipeline_yaml("web", &env, 2, ""));
    // The pipeline's appearance alone (no Detector change) brings the StatefulSet and Ready.
    detector_condition(&mut op, &detectors, "latency", "Ready", "True", None).await;
    let d = detectors.get("latency").await.unwrap();
    let sts = Api::<StatefulSet>::namespaced(client.clone(), &ns.name)
        .get("latency-detect")
        .await
        .unwrap();
    assert!(owned_by(&sts, &d.uid().unwrap()));
    let container = &sts
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    assert!(
        container.args.iter().flatten().any(|a| a == "detect"),
        "{:?}",
        container.args
    );
    let env_value = |key: &str| {
        container
            .env
            .iter()
            .flatten()
            .find(|e| e.name == key)
            .and_then(|e| e.value.clone())
    };
    assert_eq!(
        env_value("HELIOS_EVENTS_TOPIC"),
        Some(format!("helios.{}.web.events", ns.name))
    );
    assert_eq!(
        env_value("HELIOS_DETECTOR"),
        Some(format!("{}/latency", ns.name))
    );
    let spec: serde_json::Value =
        serde_json::from_str(&env_value("HELIOS_DETECTOR_CONFIG").unwrap()).unwrap();
    assert_eq!(
        spec["features"],
        serde_json::json!(["event_count", "p99_latency"])
    );
    let headless = Api::<Service>::namespaced(client.clone(), &ns.name)
        .get("latency-detect")
        .await
        .unwrap();
    assert_eq!(headless.spec.unwrap().cluster_ip.as_deref(), Some("None"));

    // The pipeline counts the ready detector.
    pipeline_condition(
        &mut op,
        &pipelines,
        "web",
        "DetectorsReady",
        "True",
        Some("AllDetectorsReady"),
    )
    .await;
    let p = pipelines.get("web").await.unwrap();
    assert_eq!(
        p.status.unwrap().detectors.map(|d| d.summary),
        Some("1/1".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_topics_and_report_hooks_are_conditions_and_events_not_crashes() {
    let (env, kubectl) = stack();
    let ns = kubectl.temp_namespace("op-bad").unwrap();
    let client = kube_client(&env).await;
    let kafka = admin(&env);
    // Someone already made the events topic with more partitions than declared.
    let events = format!("helios.{}.legacy.events", ns.name);
    for r in kafka
        .create_topics(
            &[NewTopic::new(&events, 6, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap()
    {
        r.unwrap();
    }
    let mut op = start_operator(&env, &ns.name);
    let bucket = format!("missing-{}", unique_suffix());
    // The emulator's always-running `echo` function stands in for the report hook.
    let reporting = |function: &str| {
        format!(
            "  reporting:\n    lambda: {{functionName: {function}, endpoint: \"{}\"}}\n    s3: {{bucket: {bucket}, endpoint: \"{}\"}}\n",
            env.get("LAMBDA_ENDPOINT").unwrap(),
            env.get("S3_ENDPOINT").unwrap()
        )
    };
    apply(&kubectl, &ns, &token_secret("legacy"));
    apply(
        &kubectl,
        &ns,
        &pipeline_yaml("legacy", &env, 3, &reporting("echo")),
    );
    let pipelines: Api<AnomalyPipeline> = Api::namespaced(client.clone(), &ns.name);

    let topics = pipeline_condition(
        &mut op,
        &pipelines,
        "legacy",
        "TopicsReady",
        "False",
        Some("TopicIncompatible"),
    )
    .await;
    assert!(
        topics.message.contains("6 partitions"),
        "{}",
        topics.message
    );
    assert_eq!(
        partitions(&kafka, &events),
        Some(6),
        "an incompatible topic is never recreated"
    );
    let hook = pipeline_condition(
        &mut op,
        &pipelines,
        "legacy",
        "ReportHookReady",
        "False",
        Some("BucketNotFound"),
    )
    .await;
    assert!(hook.message.contains(&bucket), "{}", hook.message);
    let ready = pipeline_condition(&mut op, &pipelines, "legacy", "Ready", "False", None).await;
    assert_ne!(ready.reason, "", "Ready=False names a reason");

    // Each failure is one Warning event with its reason.
    let events_api: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    eventually(&mut op, "Warning events for both failures", || async {
        let list = events_api
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let warnings: Vec<String> = list
            .items
            .iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .filter_map(|e| e.reason.clone())
            .collect();
        if warnings.iter().any(|r| r == "TopicIncompatible")
            && warnings.iter().any(|r| r == "BucketNotFound")
        {
            Ok(())
        } else {
            Err(format!("{warnings:?}"))
        }
    })
    .await;

    // Fixing the spec (declare what exists, create the bucket) makes both conditions True.
    clients::s3_client(&env)
        .unwrap()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    apply(
        &kubectl,
        &ns,
        &pipeline_yaml("legacy", &env, 6, &reporting("echo")),
    );
    pipeline_condition(&mut op, &pipelines, "legacy", "TopicsReady", "True", None).await;
    pipeline_condition(
        &mut op,
        &pipelines,
        "legacy",
        "ReportHookReady",
        "True",
        None,
    )
    .await;

    // A function the Lambda endpoint does not serve is named as such.
    apply(
        &kubectl,
        &ns,
        &pipeline_yaml("legacy", &env, 6, &reporting("no-such-function")),
    );
    let missing = pipeline_condition(
        &mut op,
        &pipelines,
        "legacy",
        "ReportHookReady",
        "False",
        Some("LambdaFunctionNotFound"),
    )
    .await;
    assert!(
        missing.message.contains("no-such-function"),
        "{}",
        missing.message
    );
    op.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_pipeline_scales_to_zero_and_says_so() {
    let (env, kubectl) = stack();
    let ns = kubectl.temp_namespace("op-susp").unwrap();
    let client = kube_client(&env).await;
    let mut op = start_operator(&env, &ns.name);
    apply(&kubectl, &ns, &token_secret("quiet"));
    apply(
        &kubectl,
        &ns,
        &pipeline_yaml("quiet", &env, 1, "  suspend: true\n"),
    );
    let pipelines: Api<AnomalyPipeline> = Api::namespaced(client.clone(), &ns.name);
    pipeline_condition(
        &mut op,
        &pipelines,
        "quiet",
        "Suspended",
        "True",
        Some("ScaledToZero"),
    )
    .await;
    let deployment = Api::<Deployment>::namespaced(client.clone(), &ns.name)
        .get("quiet-ingest")
        .await
        .unwrap();
    assert_eq!(deployment.spec.unwrap().replicas, Some(0));
    // Retain is the default elsewhere; here Delete, and the topics still exist while suspended.
    let kafka = admin(&env);
    assert_eq!(
        partitions(&kafka, &format!("helios.{}.quiet.events", ns.name)),
        Some(1)
    );
}

/// The operator skips the apply of a child whose applied-spec hash and version are unchanged;
/// a child someone else edits (a generation bump, or any change to a kind without one) is applied
/// again and restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_edited_by_someone_else_are_restored() {
    let (env, kubectl) = stack();
    let ns = kubectl.temp_namespace("op-drift").unwrap();
    let client = kube_client(&env).await;
    let mut op = start_operator(&env, &ns.name);
    apply(&kubectl, &ns, &token_secret("drift"));
    apply(&kubectl, &ns, &pipeline_yaml("drift", &env, 1, ""));
    let pipelines: Api<AnomalyPipeline> = Api::namespaced(client.clone(), &ns.name);
    pipeline_condition(&mut op, &pipelines, "drift", "Ready", "True", None).await;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let original = maps.get("drift-config").await.unwrap().data.unwrap();
    let (key, _) = original.iter().next().unwrap();
    let someone = PatchParams::default();
    deployments
        .patch(
            "drift-ingest",
            &someone,
            &Patch::Merge(serde_json::json!({ "spec": { "replicas": 3 } })),
        )
        .await
        .unwrap();
    maps.patch(
        "drift-config",
        &someone,
        &Patch::Merge(serde_json::json!({ "data": { key: "edited by hand" } })),
    )
    .await
    .unwrap();
    eventually(&mut op, "the edited children restored", || async {
        let replicas = deployments
            .get("drift-ingest")
            .await
            .map_err(|e| e.to_string())?
            .spec
            .and_then(|s| s.replicas);
        let data = maps
            .get("drift-config")
            .await
            .map_err(|e| e.to_string())?
            .data;
        let restored_map = original
            .iter()
            .all(|(k, v)| data.as_ref().and_then(|d| d.get(k)) == Some(v));
        if replicas == Some(1) && restored_map {
            Ok(())
        } else {
            Err(format!("replicas {replicas:?}, config {data:?}"))
        }
    })
    .await;
}

/// Wait (watching it, within [`CONVERGE`]) until `cond` holds for Detector `name`; the error
/// shows its status then.
async fn await_detector(
    api: &Api<Detector>,
    name: &str,
    what: &str,
    cond: impl Fn(&Detector) -> bool,
) -> Detector {
    let waited = tokio::time::timeout(
        CONVERGE,
        kube::runtime::wait::await_condition(api.clone(), name, move |d: Option<&Detector>| {
            d.is_some_and(&cond)
        }),
    )
    .await;
    match waited {
        Ok(Ok(Some(d))) => d,
        other => {
            let now = api.get(name).await.ok().and_then(|d| d.status);
            panic!("{what}: {other:?}; the status now: {now:?}")
        }
    }
}

/// The status a detect worker applies (field manager `helios-detect`, forced): its three
/// runtime conditions at `status` and a heartbeat at `beat`.
fn worker_status(
    name: &str,
    generation: Option<i64>,
    status: &str,
    beat: &str,
) -> serde_json::Value {
    let c = |type_: &str, reason: &str| {
        serde_json::json!({"type": type_, "status": status, "reason": reason,
            "message": "written by the test as the worker", "observedGeneration": generation,
            "lastTransitionTime": beat})
    };
    serde_json::json!({
        "apiVersion": "helios.dev/v1alpha1", "kind": "Detector",
        "metadata": {"name": name},
        "status": {
            "conditions": [c("ModelTrained", "Trained"), c("DataFlowing", "EventsArriving"),
                           c("AnomalyActive", "NoAnomaly")],
            "model": {"version": 1},
            "worker": {"heartbeatTime": beat, "pod": format!("{name}-detect-0")},
        }
    })
}

fn runtime_all(d: &Detector, status: &str, reason: Option<&str>) -> bool {
    let conditions = d
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    ["ModelTrained", "DataFlowing", "AnomalyActive"]
        .iter()
        .all(|t| {
            condition(conditions, t)
                .is_some_and(|c| c.status == status && reason.is_none_or(|r| c.reason == r))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_detect_worker_turns_its_conditions_unknown_until_it_writes_again() {
    let (env, kubectl) = stack();
    let ns = kubectl.temp_namespace("op-heartbeat").unwrap();
    let client = kube_client(&env).await;
    let mut op = start_operator_with_env(
        &env,
        &ns.name,
        &[("HELIOS_WORKER_HEARTBEAT_TIMEOUT_SECS", "5")],
    );
    let detectors: Api<Detector> = Api::namespaced(client.clone(), &ns.name);
    apply(
        &kubectl,
        &ns,
        "apiVersion: helios.dev/v1alpha1\nkind: Detector\nmetadata: {name: quiet}\n\
         spec: {pipelineRef: {name: absent}, features: [event_count]}\n",
    );
    detector_condition(
        &mut op,
        &detectors,
        "quiet",
        "Ready",
        "False",
        Some("PipelineNotFound"),
    )
    .await;
    let generation = detectors.get("quiet").await.unwrap().metadata.generation;
    let worker = PatchParams::apply("helios-detect").force();

    // A worker that wrote True conditions an hour ago and nothing since.
    let old = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    detectors
        .patch_status(
            "quiet",
            &worker,
            &Patch::Apply(&worker_status("quiet", generation, "True", &old)),
        )
        .await
        .unwrap();
    let silent = await_detector(
        &detectors,
        "quiet",
        "runtime conditions Unknown/WorkerSilent",
        |d| runtime_all(d, "Unknown", Some("WorkerSilent")),
    )
    .await;
    let status = silent.status.clone().unwrap();
    let c = condition(&status.conditions, "DataFlowing").unwrap();
    assert_eq!(
        c.message,
        format!("no heartbeat from the detect worker since {old} (timeout 5s)")
    );
    assert_eq!(
        condition(&status.conditions, "Ready").map(|c| c.reason.as_str()),
        Some("PipelineNotFound"),
        "Ready keeps its meaning"
    );
    assert_eq!(
        status.worker.and_then(|w| w.heartbeat_time).as_deref(),
        Some(old.as_str()),
        "the heartbeat stays the worker's"
    );
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    let event = eventually(&mut op, "a WorkerSilent Event", || async {
        let list = events
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        list.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("WorkerSilent"))
            .ok_or_else(|| "none yet".to_string())
    })
    .await;
    // Its pipeline is missing, so no worker should run (0 desired replicas): a Normal Event;
    // with pods that should run it is a Warning (the reconcile tests check that branch).
    assert_eq!(event.type_.as_deref(), Some("Normal"));
    assert!(
        event.message.as_deref().is_some_and(|m| m.contains(&old)),
        "{event:?}"
    );

    // The worker is back: its forced apply wins at once.
    let returned = std::time::Instant::now();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    detectors
        .patch_status(
            "quiet",
            &worker,
            &Patch::Apply(&worker_status("quiet", generation, "True", &now)),
        )
        .await
        .unwrap();
    // A barrier: a spec change makes the operator reconcile and write observedGeneration after
    // the worker's write. Its apply leaves the runtime conditions out; every field of them stays.
    detectors
        .patch(
            "quiet",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 2}})),
        )
        .await
        .unwrap();
    let next = generation.map(|g| g + 1);
    let back = await_detector(
        &detectors,
        "quiet",
        "observedGeneration after the worker's return",
        |d| {
            d.status
                .as_ref()
                .is_some_and(|s| s.observed_generation == next)
        },
    )
    .await;
    assert!(
        runtime_all(&back, "True", None),
        "the worker's conditions stand: {:?}",
        back.status
    );
    for t in ["ModelTrained", "DataFlowing", "AnomalyActive"] {
        let c = condition(&back.status.as_ref().unwrap().conditions, t).unwrap();
        assert_eq!(c.message, "written by the test as the worker", "{t}: {c:?}");
    }
    let operator_fields: Vec<String> = back
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some("helios-operator"))
        .filter_map(|m| m.fields_v1.as_ref().map(|f| f.0.to_string()))
        .collect();
    assert!(
        operator_fields.iter().all(|f| !f.contains("ModelTrained")),
        "the operator owns none of the runtime conditions any more: {operator_fields:?}"
    );

    // Silent again, with no event to start a reconcile: the one after the worker's return
    // requeued itself for just after the heartbeat goes stale (~6 s here), well before the
    // 15 s requeue of a detector that is not Ready.
    await_detector(
        &detectors,
        "quiet",
        "Unknown again without any event",
        |d| runtime_all(d, "Unknown", Some("WorkerSilent")),
    )
    .await;
    let after = returned.elapsed();
    assert!(
        after < std::time::Duration::from_secs(13),
        "noticed {after:?} after the last heartbeat"
    );
    op.assert_running();
}
