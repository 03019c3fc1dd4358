//! `helios operator` lifecycle against the real stack: a pipeline with two detectors end to end
//! (topics, children, conditions, Events), removing a detector, `deletionPolicy: Retain`, an
//! operator SIGKILLed mid-reconcile, and two operators competing for one Lease.
//! Each test runs its own operator(s) watching only its own temporary namespace.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use helios_crds::{AnomalyPipeline, Detector};
use helios_e2e::StackEnv;
use helios_e2e::kubectl::{Kubectl, TempNamespace};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ListParams;
use kube::{Api, Client, Resource, ResourceExt};
use rdkafka::admin::AdminOptions;
use std::time::{Duration, Instant};
use support::*;

fn pipeline_yaml(name: &str, env: &StackEnv, policy: &str) -> String {
    format!(
        r#"apiVersion: helios.dev/v1alpha1
kind: AnomalyPipeline
metadata:
  name: {name}
spec:
  kafka:
    bootstrapServers: "{bootstrap}"
    topics:
      events: {{partitions: 3, replicationFactor: 1, retention: 1h}}
      anomalies: {{partitions: 2, replicationFactor: 1}}
    deletionPolicy: {policy}
  ingestion:
    replicas: 2
    authTokenSecretRef: {{name: {name}-token, key: token}}
"#,
        bootstrap = env.get("KAFKA_BOOTSTRAP").unwrap()
    )
}

fn token_secret(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}-token}}\nstringData: {{token: t0k3n-{name}}}\n"
    )
}

fn detector_yaml(name: &str, pipeline: &str, replicas: i32, features: &str) -> String {
    format!(
        "apiVersion: helios.dev/v1alpha1\nkind: Detector\nmetadata: {{name: {name}}}\n\
         spec: {{pipelineRef: {{name: {pipeline}}}, replicas: {replicas}, features: [{features}]}}\n"
    )
}

fn topic_names(ns: &str, pipeline: &str) -> [String; 2] {
    [
        format!("helios.{ns}.{pipeline}.events"),
        format!("helios.{ns}.{pipeline}.anomalies"),
    ]
}

/// Deletes Kafka topics when dropped (pipelines with `Retain` leave them behind).
struct DropTopics {
    env: StackEnv,
    topics: Vec<String>,
}

impl DropTopics {
    fn of(env: &StackEnv, ns: &str, pipeline: &str) -> Self {
        Self {
            env: env.clone(),
            topics: topic_names(ns, pipeline).to_vec(),
        }
    }
}

impl Drop for DropTopics {
    fn drop(&mut self) {
        let env = self.env.clone();
        let topics = std::mem::take(&mut self.topics);
        // Its own runtime on its own thread: this may run inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let kafka = admin(&env);
                let names: Vec<&str> = topics.iter().map(String::as_str).collect();
                let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
                let _ = kafka.delete_topics(&names, &opts).await;
            });
        })
        .join();
    }
}

fn owned_by<K: Resource>(child: &K, owner_uid: &str) -> bool {
    child.meta().owner_references.as_ref().is_some_and(|refs| {
        refs.iter()
            .any(|r| r.uid == owner_uid && r.controller == Some(true))
    })
}

/// core/v1 Events about object `kind`/`name`: (type, reason, message, reportingInstance).
async fn events_about(
    client: &Client,
    ns: &str,
    kind: &str,
    name: &str,
) -> Result<Vec<(String, String, String, String)>, String> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok(list
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some(kind)
                && e.involved_object.name.as_deref() == Some(name)
        })
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default(),
                e.reporting_instance.unwrap_or_default(),
            )
        })
        .collect())
}

/// Wait (briefly: they are published before the status that was awaited) until the Normal
/// `Created` Events about `kind`/`name` name every one of `children`; the error lists what is
/// missing and what was recorded.
async fn created_events(
    client: &Client,
    ns: &str,
    kind: &str,
    name: &str,
    children: &[&str],
) -> Result<(), String> {
    poll(
        &format!("Created Events of {kind} {name}"),
        Duration::from_secs(20),
        || async {
            let events = events_about(client, ns, kind, name).await?;
            let created: Vec<&str> = events
                .iter()
                .filter(|(t, r, _, _)| t == "Normal" && r == "Created")
                .map(|(_, _, m, _)| m.as_str())
                .collect();
            let missing: Vec<&&str> = children
                .iter()
                .filter(|c| !created.iter().any(|m| m.contains(**c)))
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("missing {missing:?}; Created Events: {created:?}"))
            }
        },
    )
    .await
}

/// Apply the secret, pipeline `name` (`deletionPolicy: policy`) and detectors `latency`
/// (1 replica) and `errors` (2 replicas).
fn apply_pipeline_with_two_detectors(
    kubectl: &Kubectl,
    ns: &TempNamespace,
    env: &StackEnv,
    name: &str,
) {
    apply(kubectl, ns, &token_secret(name));
    apply(kubectl, ns, &pipeline_yaml(name, env, "Retain"));
    apply(
        kubectl,
        ns,
        &detector_yaml("latency", name, 1, "event_count, p99_latency"),
    );
    apply(kubectl, ns, &detector_yaml("errors", name, 2, "error_rate"));
}

/// Wait until the pipeline is Ready with `summary` detectors ready, and return its status.
async fn ready_with_detectors(
    op: &mut Operator,
    pipelines: &Api<AnomalyPipeline>,
    name: &str,
    summary: &str,
) -> helios_crds::pipeline::AnomalyPipelineStatus {
    eventually(
        op,
        &format!("pipeline {name} Ready with detectors {summary}"),
        || async {
            let p = pipelines.get(name).await.map_err(|e| e.to_string())?;
            let s = p.status.clone().unwrap_or_default();
            let seen = s.detectors.as_ref().map(|d| d.summary.clone());
            let ready = condition(&s.conditions, "Ready").map(|c| c.status.clone());
            let detectors = condition(&s.conditions, "DetectorsReady").map(|c| c.status.clone());
            if s.observed_generation == p.metadata.generation
                && seen.as_deref() == Some(summary)
                && ready.as_deref() == Some("True")
                && detectors.as_deref() == Some("True")
            {
                Ok(s)
            } else {
                Err(format!("detectors {seen:?}; {}", describe(&s.conditions)))
            }
        },
    )
    .await
}

fn env_of(sts_or_deploy_env: &[k8s_openapi::api::core::v1::EnvVar], key: &str) -> Option<String> {
    sts_or_deploy_env
        .iter()
        .find(|e| e.name == key)
        .and_then(|e| e.value.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_with_two_detectors_gets_topics_children_conditions_and_events() {
    let (env, kubectl) = stack();
    let ns = kubectl.temp_namespace("op-two").unwrap();
    let _topics = DropTopics::of(&env, &ns.name, "shop");
    let client = kube_client(&env).await;
    let mut op = start_operator(&env, &ns.name);
    let name = "shop";
    apply_pipeline_with_two_detectors(&kubectl, &ns, &env, name);
    let pipelines: Api<AnomalyPipeline> = Api::namespaced(client.clone(), &ns.name);
    let detectors: Api<Detector> = Api::namespaced(client.clone(), &ns.name);

    let status = ready_with_detectors(&mut op, &pipelines, name, "2/2").await;
    for t in [
        "Ready",
        "TopicsReady",
        "IngestionAvailable",
        "DetectorsReady",
        "ReportHookReady",
    ] {
        let c = condition(&status.conditions, t).unwrap_or_else(|| panic!("{t} missing"));
        assert_eq!(
            c.status,
            "True",
            "{t}: {}\n{}",
            describe(&status.conditions),
            op.log()
        );
    }
    let suspended = condition(&status.conditions, "Suspended").expect("Suspended missing");
    assert_eq!(
        suspended.status,
        "False",
        "{}",
        describe(&status.conditions)
    );
    let counts = status.detectors.clone().unwrap();
    assert_eq!((counts.total, counts.ready), (2, 2));
    assert_eq!(status.ingestion.as_ref().map(|i| i.replicas), Some(2));

    // Topics with the declared partitions.
    let kafka = admin(&env);
    let [events, anomalies] = topic_names(&ns.name, name);
    assert_eq!(partitions(&kafka, &events), Some(3), "{}", op.log());
    assert_eq!(partitions(&kafka, &anomalies), Some(2), "{}", op.log());
    assert_eq!(
        status
            .topics
            .as_ref()
            .map(|t| (t.events.clone(), t.events_partitions)),
        Some((events.clone(), Some(3)))
    );

    // The ingestion children, owned by the pipeline, with the pipeline's config.
    let p = pipelines.get(name).await.unwrap();
    let uid = p.uid().unwrap();
    assert!(p.finalizers().is_empty(), "Retain: no finalizer");
    let deployment = Api::<Deployment>::namespaced(client.clone(), &ns.name)
        .get("shop-ingest")
        .await
        .unwrap();
    assert!(owned_by(&deployment, &uid));
    let spec = deployment.spec.clone().unwrap();
    assert_eq!(spec.replicas, Some(2));
    let container = &spec.template.spec.clone().unwrap().containers[0];
    assert_eq!(container.image.as_deref(), Some("helios:e2e"));
    assert!(
        container.args.iter().flatten().any(|a| a == "ingest"),
        "{:?}",
        container.args
    );
    let ingest_env = container.env.clone().unwrap_or_default();
    assert_eq!(
        env_of(&ingest_env, "HELIOS_EVENTS_TOPIC").as_deref(),
        Some(events.as_str())
    );
    assert_eq!(
        env_of(&ingest_env, "HELIOS_KAFKA_BOOTSTRAP").as_deref(),
        Some(env.get("KAFKA_BOOTSTRAP").unwrap())
    );
    let service = Api::<Service>::namespaced(client.clone(), &ns.name)
        .get("shop-ingest")
        .await
        .unwrap();
    assert!(owned_by(&service, &uid));
    assert!(
        !service.spec.unwrap().ports.unwrap_or_default().is_empty(),
        "the ingest Service has ports"
    );
    let config = Api::<ConfigMap>::namespaced(client.clone(), &ns.name)
        .get("shop-config")
        .await
        .unwrap();
    assert!(owned_by(&config, &uid));
    let rendered = config.data.unwrap_or_default();
    let rendered: serde_json::Value =
        serde_json::from_str(rendered.get("pipeline.json").expect("pipeline.json")).unwrap();
    assert!(rendered.is_object(), "{rendered}");
    let pdb = Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns.name)
        .get("shop-ingest")
        .await
        .unwrap();
    assert!(owned_by(&pdb, &uid));
    assert_eq!(pdb.spec.unwrap().max_unavailable, Some(IntOrString::Int(1)));

    // One StatefulSet (+ headless Service) per detector, owned by it, with its config.
    for (detector, replicas, features) in [
        (
            "latency",
            1,
            serde_json::json!(["event_count", "p99_latency"]),
        ),
        ("errors", 2, serde_json::json!(["error_rate"])),
    ] {
        let d = detectors.get(detector).await.unwrap();
        let d_uid = d.uid().unwrap();
        let child = format!("{detector}-detect");
        let sts = Api::<StatefulSet>::namespaced(client.clone(), &ns.name)
            .get(&child)
            .await
            .unwrap();
        assert!(owned_by(&sts, &d_uid), "{child} owned by {detector}");
        assert_eq!(
            sts.labels().get("helios.dev/pipeline").map(String::as_str),
            Some(name)
        );
        let spec = sts.spec.clone().unwrap();
        assert_eq!(spec.replicas, Some(replicas), "{child}");
        assert_eq!(spec.service_name.as_deref(), Some(child.as_str()));
        let container = &spec.template.spec.clone().unwrap().containers[0];
        assert_eq!(container.image.as_deref(), Some("helios:e2e"));
        assert!(
            container.args.iter().flatten().any(|a| a == "detect"),
            "{:?}",
            container.args
        );
        let detect_env = container.env.clone().unwrap_or_default();
        assert_eq!(
            env_of(&detect_env, "HELIOS_DETECTOR"),
            Some(format!("{}/{detector}", ns.name))
        );
        assert_eq!(
            env_of(&detect_env, "HELIOS_EVENTS_TOPIC").as_deref(),
            Some(events.as_str())
        );
        assert_eq!(
            env_of(&detect_env, "HELIOS_ANOMALIES_TOPIC").as_deref(),
            Some(anomalies.as_str())
        );
        let config: serde_json::Value =
            serde_json::from_str(&env_of(&detect_env, "HELIOS_DETECTOR_CONFIG").unwrap()).unwrap();
        assert_eq!(config["features"], features, "{child}");
        let headless = Api::<Service>::namespaced(client.clone(), &ns.name)
            .get(&child)
            .await
            .unwrap();
        assert!(owned_by(&headless, &d_uid));
        assert_eq!(headless.spec.unwrap().cluster_ip.as_deref(), Some("None"));
        let ready = detector_condition(&mut op, &detectors, detector, "Ready", "True", None).await;
        assert_eq!(ready.observed_generation, d.metadata.generation);
    }

    // Kubernetes Events: Normal `Created` naming each child, on its owner; topics reported.
    let mut failures = Vec::new();
    for (kind, owner, children) in [
        (
            "AnomalyPipeline",
            name,
            &[
                "ConfigMap shop-config",
                "Deployment shop-ingest",
                "Service shop-ingest",
                "PodDisruptionBudget shop-ingest",
            ][..],
        ),
        (
            "Detector",
            "latency",
            &["StatefulSet latency-detect", "Service latency-detect"][..],
        ),
        (
            "Detector",
            "errors",
            &["StatefulSet errors-detect", "Service errors-detect"][..],
        ),
    ] {
        if let Err(e) = created_events(&client, &ns.name, kind, owner, children).await {
            failures.push(e);
        }
    }
    let events_seen = events_about(&client, &ns.name, "AnomalyPipeline", name)
        .await
        .unwrap();
    if !events_seen.iter().any(|(t, r, m, _)| {
        t == "Normal" && r == "TopicReconciled" && m.contains("created topic helios.")
    }) {
        failures.push(format!("no Event for the created topics: {events_seen:?}"));
    }
    assert!(
        failures.is_empty(),
        "Events:\n{}\noperator log:\n{}",
        failures.join("\n"),
        op.log()
    );
    op.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_detector_removes_its_statefulset_and_the_count() {
    let (env, kubectl) = stack();
    let ns = kubectl.temp_namespace("op-rmdet").unwrap();
    let _topics = DropTopics::of(&env, &ns.name, "shop");
    let client = kube_client(&env).await;
    let mut op = start_operator(&env, &ns.name);
    let name = "shop";
    apply_pipeline_with_two_detectors(&kubectl, &ns, &env, name);
    let pipelines: Api<AnomalyPipeline> = Api::namespaced(client.clone(), &ns.name);
    let detectors: Api<Detector> = Api::namespaced(client.clone(), &ns.name);
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns.name);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    ready_with_detectors(&mut op, &pipelines, name, "2/2").await;
    assert!(
        statefulsets
            .get_opt("errors-detect")
            .await
            .unwrap()
            .is_some()
    );

    detectors
        .delete("errors", &Default::default())
        .await
        .unwrap();
    eventually(
        &mut op,
        "errors-detect StatefulSet and Service garbage collected",
        || async {
            let sts = statefulsets
                .get_opt("errors-detect")
                .await
                .map_err(|e| e.to_string())?;
            let svc = services
                .get_opt("errors-detect")
                .await
                .map_err(|e| e.to_string())?;
            match (sts, svc) {
                (None, None) => Ok(()),
                (s, v) => Err(format!(
                    "StatefulSet present: {}, Service present: {}",
                    s.is_some(),
                    v.is_some()
                )),
            }
        },
    )
    .await;
    let status = ready_with_detectors(&mut op, &pipelines, name, "1/1").await;
    let counts = status.detectors.unwrap();
    assert_eq!((counts.total, counts.ready), (1, 1));
    // The other detector is untouched.
    assert!(
        statefulsets
            .get_opt("latency-detect")
            .await
            .unwrap()
            .is_some(),
        "latency-detect must remain\n{}",
        op.log()
    );
    detector_condition(&mut op, &detectors, "latency", "Ready", "True", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_deletes_the_pipeline_at_once_and_keeps_the_topics() {
    let (env, kubectl) = stack();
    let ns = kubectl.temp_namespace("op-retain").unwrap();
    let _topics = DropTopics::of(&env, &ns.name, "keep");
    let client = kube_client(&env).await;
    let mut op = start_operator(&env, &ns.name);
    let name = "keep";
    apply(&kubectl, &ns, &token_secret(name));
    apply(&kubectl, &ns, &pipeline_yaml(name, &env, "Retain"));
    let pipelines: Api<AnomalyPipeline> = Api::namespaced(client.clone(), &ns.name);
    pipeline_condition(&mut op, &pipelines, name, "Ready", "True", None).await;
    let p = pipelines.get(name).await.unwrap();
    assert!(
        p.finalizers().is_empty(),
        "Retain adds no finalizer: {:?}",
        p.finalizers()
    );
    let kafka = admin(&env);
    let [events, anomalies] = topic_names(&ns.name, name);
    assert_eq!(partitions(&kafka, &events), Some(3));
    assert_eq!(partitions(&kafka, &anomalies), Some(2));

    let deleted = Instant::now();
    pipelines.delete(name, &Default::default()).await.unwrap();
    let gone = poll("pipeline gone at once", Duration::from_secs(3), || async {
        match pipelines.get_opt(name).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(p) => Err(format!(
                "still there: deletionTimestamp {:?}, finalizers {:?}",
                p.metadata.deletion_timestamp,
                p.finalizers()
            )),
        }
    })
    .await;
    if let Err(e) = gone {
        panic!("{e}\noperator log:\n{}", op.log());
    }
    let took = deleted.elapsed();
    eprintln!("Retain: pipeline gone {took:?} after delete");

    // The children are garbage-collected; the topics stay (also a while later, when any
    // reconcile the deletion triggered has run).
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    eventually(&mut op, "shop-ingest garbage collected", || async {
        match deployments.get_opt("keep-ingest").await {
            Ok(None) => Ok(()),
            other => Err(format!("{:?}", other.map(|d| d.map(|d| d.name_any())))),
        }
    })
    .await;
    // Two renewals of the operator's Lease: any reconcile the deletion triggered has had time.
    lease_renewals(&client, &ns.name, 2).await;
    assert_eq!(
        partitions(&kafka, &events),
        Some(3),
        "events topic retained\n{}",
        op.log()
    );
    assert_eq!(
        partitions(&kafka, &anomalies),
        Some(2),
        "anomalies topic retained\n{}",
        op.log()
    );
    let events_seen = events_about(&client, &ns.name, "AnomalyPipeline", name)
        .await
        .unwrap();
    assert!(
        !events_seen.iter().any(|(_, r, _, _)| r == "TopicsDeleted"),
        "{events_seen:?}"
    );
    op.assert_running();
}

/// The children of pipeline `name`, by kind, sorted: (Deployments, StatefulSets, Services,
/// ConfigMaps), each with its controller-owner count.
async fn children_of(
    client: &Client,
    ns: &str,
    pipeline: &str,
) -> Result<[Vec<(String, usize)>; 4], String> {
    let lp = ListParams::default().labels(&format!("helios.dev/pipeline={pipeline}"));
    fn names(metas: Vec<&ObjectMeta>) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = metas
            .into_iter()
            .map(|m| {
                let controllers = m
                    .owner_references
                    .iter()
                    .flatten()
                    .filter(|r| r.controller == Some(true))
                    .count();
                (m.name.clone().unwrap_or_default(), controllers)
            })
            .collect();
        out.sort();
        out
    }
    let err = |e: kube::Error| e.to_string();
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .map_err(err)?;
    let sets = Api::<StatefulSet>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .map_err(err)?;
    let services = Api::<Service>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .map_err(err)?;
    let maps = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .map_err(err)?;
    Ok([
        names(deployments.items.iter().map(|o| &o.metadata).collect()),
        names(sets.items.iter().map(|o| &o.metadata).collect()),
        names(services.items.iter().map(|o| &o.metadata).collect()),
        names(maps.items.iter().map(|o| &o.metadata).collect()),
    ])
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_mid_reconcile_is_replaced_without_duplicates() {
    let (env, kubectl) = stack();
    let ns = kubectl.temp_namespace("op-kill").unwrap();
    let _topics = DropTopics::of(&env, &ns.name, "web");
    let client = kube_client(&env).await;
    let pipelines: Api<AnomalyPipeline> = Api::namespaced(client.clone(), &ns.name);
    let detectors: Api<Detector> = Api::namespaced(client.clone(), &ns.name);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    // SIGKILL as soon as the first reconcile has started writing children. The watch for the
    // first child runs before the operator starts, and the operator starts only once every
    // object is applied, so neither a slow `kubectl apply` nor a late watch lets the reconcile
    // finish before the kill (both happened with three test binaries running side by side).
    let created = tokio::spawn(kube::runtime::wait::await_condition(
        deployments.clone(),
        "web-ingest",
        |d: Option<&Deployment>| d.is_some(),
    ));
    let name = "web";
    apply(&kubectl, &ns, &token_secret(name));
    apply(&kubectl, &ns, &pipeline_yaml(name, &env, "Retain"));
    apply(
        &kubectl,
        &ns,
        &detector_yaml("latency", name, 1, "event_count, p99_latency"),
    );
    let mut first = start_operator_as(&env, &ns.name, "first");
    match tokio::time::timeout(Duration::from_secs(30), created).await {
        Ok(Ok(Ok(_))) => {}
        other => panic!(
            "the first child: not within 30 s ({other:?})\noperator log:\n{}",
            first.log()
        ),
    }
    first.kill();
    let p = pipelines.get(name).await.unwrap();
    let ready_at_kill = p
        .status
        .as_ref()
        .and_then(|s| condition(&s.conditions, "Ready"))
        .map(|c| c.status.clone());
    assert_ne!(
        ready_at_kill.as_deref(),
        Some("True"),
        "the kill came too late to be mid-reconcile"
    );
    let before = children_of(&client, &ns.name, name).await.unwrap();
    eprintln!("children at kill: {before:?}; Ready at kill: {ready_at_kill:?}");

    // A new replica (new identity: it waits out the dead one's Lease) finishes the job.
    let restarted = Instant::now();
    let mut second = start_operator_as(&env, &ns.name, "second");
    let status = ready_with_detectors(&mut second, &pipelines, name, "1/1").await;
    eprintln!("converged {:?} after the restart", restarted.elapsed());
    for c in &status.conditions {
        let want = if c.type_ == "Suspended" {
            "False"
        } else {
            "True"
        };
        assert_eq!(
            c.status,
            want,
            "{}\n{}",
            describe(&status.conditions),
            second.log()
        );
    }
    detector_condition(&mut second, &detectors, "latency", "Ready", "True", None).await;
    let kafka = admin(&env);
    let [events, anomalies] = topic_names(&ns.name, name);
    assert_eq!(partitions(&kafka, &events), Some(3));
    assert_eq!(partitions(&kafka, &anomalies), Some(2));

    // Exactly one of each child, each with one controller owner.
    let [deploys, sets, svcs, cms] = children_of(&client, &ns.name, name).await.unwrap();
    let one = |n: &str| (n.to_string(), 1usize);
    assert_eq!(deploys, vec![one("web-ingest")], "{}", second.log());
    assert_eq!(sets, vec![one("latency-detect")], "{}", second.log());
    assert_eq!(
        svcs,
        vec![one("latency-detect"), one("web-ingest")],
        "{}",
        second.log()
    );
    assert_eq!(cms, vec![one("web-config")], "{}", second.log());
    // The Lease moved to the new replica.
    assert_eq!(
        lease_holder(&client, &ns.name).await.as_deref(),
        Some("second")
    );
    second.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_reconciles_and_a_follower_takes_over_when_it_dies() {
    let (env, kubectl) = stack();
    let ns = kubectl.temp_namespace("op-lead").unwrap();
    let _topics_a = DropTopics::of(&env, &ns.name, "one");
    let _topics_b = DropTopics::of(&env, &ns.name, "two");
    let client = kube_client(&env).await;
    let pipelines: Api<AnomalyPipeline> = Api::namespaced(client.clone(), &ns.name);

    let mut alpha = start_operator_as(&env, &ns.name, "alpha");
    let holder = poll("alpha holds the Lease", Duration::from_secs(30), || async {
        match lease_holder(&client, &ns.name).await {
            Some(h) if h == "alpha" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    if let Err(e) = holder {
        panic!("{e}\nalpha log:\n{}", alpha.log());
    }
    let mut beta = start_operator_as(&env, &ns.name, "beta");

    apply(&kubectl, &ns, &token_secret("one"));
    apply(&kubectl, &ns, &pipeline_yaml("one", &env, "Retain"));
    pipeline_condition(&mut alpha, &pipelines, "one", "Ready", "True", None).await;
    // Three renewals of alpha's Lease: several renew periods for the follower to (wrongly) act.
    lease_renewals(&client, &ns.name, 3).await;
    beta.assert_running();
    alpha.assert_running();
    assert_eq!(
        lease_holder(&client, &ns.name).await.as_deref(),
        Some("alpha")
    );
    let pipeline_kind = r#"kind="AnomalyPipeline""#;
    assert_eq!(alpha.metric("helios_operator_leader", "").await, 1.0);
    assert_eq!(beta.metric("helios_operator_leader", "").await, 0.0);
    assert!(
        alpha
            .metric("helios_operator_reconciles_total", pipeline_kind)
            .await
            >= 1.0,
        "alpha reconciled `one`:\n{}",
        alpha.log()
    );
    assert_eq!(
        beta.metric("helios_operator_reconciles_total", "").await,
        0.0,
        "the follower reconciled:\n{}",
        beta.log()
    );
    // Every Event about the pipeline came from the leader.
    let events = events_about(&client, &ns.name, "AnomalyPipeline", "one")
        .await
        .unwrap();
    assert!(!events.is_empty(), "the leader recorded Events");
    assert!(
        events.iter().all(|(_, _, _, instance)| instance == "alpha"),
        "{events:?}"
    );

    // SIGKILL the leader: its Lease is not released; beta takes over once it expires.
    alpha.kill();
    let killed = Instant::now();
    apply(&kubectl, &ns, &token_secret("two"));
    apply(&kubectl, &ns, &pipeline_yaml("two", &env, "Retain"));
    // Lease duration 6 s, renew/retry every 2 s, plus slack for a loaded machine.
    let bound = Duration::from_secs(6 + 2 + 4);
    let takeover = poll("beta holds the Lease", bound, || async {
        match lease_holder(&client, &ns.name).await {
            Some(h) if h == "beta" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    if let Err(e) = takeover {
        panic!("{e}\nbeta log:\n{}", beta.log());
    }
    let took = killed.elapsed();
    eprintln!("beta took over {took:?} after alpha was killed");
    let ready = pipeline_condition(&mut beta, &pipelines, "two", "Ready", "True", None).await;
    eprintln!("`two` Ready {:?} after the kill", killed.elapsed());
    assert_eq!(ready.status, "True");
    assert_eq!(beta.metric("helios_operator_leader", "").await, 1.0);
    assert!(
        beta.metric("helios_operator_reconciles_total", pipeline_kind)
            .await
            >= 1.0,
        "beta reconciled `two`:\n{}",
        beta.log()
    );
    let events = events_about(&client, &ns.name, "AnomalyPipeline", "two")
        .await
        .unwrap();
    assert!(
        !events.is_empty() && events.iter().all(|(_, _, _, instance)| instance == "beta"),
        "{events:?}"
    );
    beta.assert_running();
}
