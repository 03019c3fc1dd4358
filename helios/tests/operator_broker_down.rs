//! `deletionPolicy: Delete` with the Kafka broker stopped: the topic finalizer retries a bounded
//! number of times, gives up with a Warning Event, and neither the pipeline nor its namespace is
//! wedged. Alone in its test binary because it stops the stack's broker, and marked
//! `helios-test-lane: exclusive` so `e2e/tools/test_lanes.py` runs it while no other suite runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use helios_crds::AnomalyPipeline;
use helios_e2e::StackEnv;
use k8s_openapi::api::core::v1::{Event, Namespace};
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use rdkafka::admin::AdminOptions;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

/// Run `e2e/stack <action> kafka` against the stack of `env`.
fn stack_kafka(env: &StackEnv, action: &str) -> Result<(), String> {
    let script = helios_e2e::repo_root().join("e2e/stack");
    let mut cmd = Command::new(&script);
    cmd.args([action, "kafka"]);
    if let Ok(dir) = env.get("STACK_DIR") {
        cmd.env("STACK_DIR", dir);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "e2e/stack {action} kafka: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Stops the broker; starts it again when dropped (also when the test fails).
struct BrokerDown {
    env: StackEnv,
    started: bool,
}

impl BrokerDown {
    fn stop(env: &StackEnv) -> Self {
        stack_kafka(env, "stop").unwrap();
        Self {
            env: env.clone(),
            started: false,
        }
    }

    fn start(&mut self) {
        if !self.started {
            self.started = true;
            stack_kafka(&self.env, "start").unwrap();
        }
    }
}

impl Drop for BrokerDown {
    fn drop(&mut self) {
        if !self.started {
            self.started = true;
            if let Err(e) = stack_kafka(&self.env, "start") {
                eprintln!("could not restart the broker: {e}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_down_the_finalizer_gives_up_and_nothing_is_wedged() {
    let (env, kubectl) = stack();
    let ns = kubectl.temp_namespace("op-down").unwrap();
    let client = kube_client(&env).await;
    let mut op = start_operator(&env, &ns.name);
    let name = "doomed";
    apply(
        &kubectl,
        &ns,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}-token}}\nstringData: {{token: t0k3n}}\n"
        ),
    );
    apply(
        &kubectl,
        &ns,
        &format!(
            r#"apiVersion: helios.dev/v1alpha1
kind: AnomalyPipeline
metadata:
  name: {name}
spec:
  kafka:
    bootstrapServers: "{bootstrap}"
    topics:
      events: {{partitions: 2, replicationFactor: 1}}
      anomalies: {{partitions: 1, replicationFactor: 1}}
    deletionPolicy: Delete
  ingestion:
    replicas: 1
    authTokenSecretRef: {{name: {name}-token, key: token}}
"#,
            bootstrap = env.get("KAFKA_BOOTSTRAP").unwrap()
        ),
    );
    let pipelines: Api<AnomalyPipeline> = Api::namespaced(client.clone(), &ns.name);
    pipeline_condition(&mut op, &pipelines, name, "Ready", "True", None).await;
    let p = pipelines.get(name).await.unwrap();
    assert!(
        p.finalizers().iter().any(|f| f == "helios.dev/topics"),
        "Delete adds the finalizer: {:?}",
        p.finalizers()
    );
    let events_topic = format!("helios.{}.{name}.events", ns.name);
    let anomalies_topic = format!("helios.{}.{name}.anomalies", ns.name);
    let kafka = admin(&env);
    assert_eq!(partitions(&kafka, &events_topic), Some(2));
    assert_eq!(partitions(&kafka, &anomalies_topic), Some(1));

    let mut broker = BrokerDown::stop(&env);
    let deleted = Instant::now();
    pipelines.delete(name, &Default::default()).await.unwrap();

    // The finalizer stays while it retries, then is released: within MAX_ELAPSED (60 s)
    // plus one attempt (the Kafka timeout, 10 s + 2 s) and slack.
    let bound = Duration::from_secs(60 + 12 + 18);
    let mut seen_finalizing = false;
    loop {
        let current = pipelines.get_opt(name).await.unwrap();
        match current {
            None => break,
            Some(p) => {
                seen_finalizing |= p.metadata.deletion_timestamp.is_some()
                    && p.finalizers().iter().any(|f| f == "helios.dev/topics");
            }
        }
        op.assert_running();
        assert!(
            deleted.elapsed() < bound,
            "the pipeline was not finalized within {bound:?}\noperator log:\n{}",
            op.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let took = deleted.elapsed();
    eprintln!("finalizer released {took:?} after the delete (broker down)");
    assert!(
        seen_finalizing,
        "the pipeline was held by its finalizer while retrying"
    );

    // The Warning Events: failed attempts, then one giving up that says the topics remain.
    let events_api: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    let events = poll(
        "the TopicDeletionAbandoned Event",
        Duration::from_secs(10),
        || async {
            let list = events_api
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            let mine: Vec<(String, String, String)> = list
                .items
                .into_iter()
                .filter(|e| {
                    e.involved_object.kind.as_deref() == Some("AnomalyPipeline")
                        && e.involved_object.name.as_deref() == Some(name)
                })
                .map(|e| {
                    (
                        e.type_.unwrap_or_default(),
                        e.reason.unwrap_or_default(),
                        e.message.unwrap_or_default(),
                    )
                })
                .collect();
            if mine.iter().any(|(_, r, _)| r == "TopicDeletionAbandoned") {
                Ok(mine)
            } else {
                Err(format!("{mine:?}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\noperator log:\n{}", op.log()));
    let abandoned: Vec<&(String, String, String)> = events
        .iter()
        .filter(|(_, r, _)| r == "TopicDeletionAbandoned")
        .collect();
    for (type_, _, message) in &abandoned {
        assert_eq!(type_, "Warning", "{message}");
        assert!(
            message.contains(&events_topic)
                && message.contains(&anomalies_topic)
                && message.contains("retained"),
            "{message}"
        );
    }
    let retries: Vec<&str> = events
        .iter()
        .filter(|(t, r, m)| {
            t == "Warning" && r != "TopicDeletionAbandoned" && m.contains("attempt")
        })
        .map(|(_, r, _)| r.as_str())
        .collect();
    assert!(
        !retries.is_empty(),
        "failed attempts are Warning Events: {events:?}"
    );
    assert!(
        !events.iter().any(|(_, r, _)| r == "TopicsDeleted"),
        "{events:?}"
    );
    eprintln!("events: {events:?}");

    // Deleting the namespace completes (nothing holds it), broker still down.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete(&ns.name, &Default::default())
        .await
        .unwrap();
    let ns_deleted = Instant::now();
    let ns_gone = poll("namespace deleted", Duration::from_secs(60), || async {
        match namespaces
            .get_opt(&ns.name)
            .await
            .map_err(|e| e.to_string())?
        {
            None => Ok(()),
            Some(n) => Err(format!(
                "phase {:?}, conditions {:?}",
                n.status.as_ref().and_then(|s| s.phase.clone()),
                n.status.and_then(|s| s.conditions).map(|c| c
                    .into_iter()
                    .map(|c| format!("{}={} {}", c.type_, c.status, c.message.unwrap_or_default()))
                    .collect::<Vec<_>>())
            )),
        }
    })
    .await;
    if let Err(e) = ns_gone {
        panic!("{e}\noperator log:\n{}", op.log());
    }
    eprintln!("namespace gone {:?} after its delete", ns_deleted.elapsed());
    op.assert_running();

    // With the broker back, the topics are still there (given up, not deleted); clean up.
    broker.start();
    let kafka = admin(&env);
    let retained = poll("topics visible again", Duration::from_secs(60), || async {
        match (
            partitions(&kafka, &events_topic),
            partitions(&kafka, &anomalies_topic),
        ) {
            (Some(2), Some(1)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let _ = kafka
        .delete_topics(
            &[&events_topic, &anomalies_topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await;
    retained.unwrap();
}
