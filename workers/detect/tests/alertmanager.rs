#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `helios detect` posting anomalies to a real Prometheus Alertmanager (built by `e2e/stack up`,
//! started here with a webhook receiver this test runs): two keys' anomalies of one window close
//! reach the receiver as one grouped notification, the third key's alert is held by a silence,
//! re-posts every second and a worker restart in the middle of the incident add no
//! notification, and the episode's end arrives as one resolved notification.

mod common;

use std::time::{Duration, Instant};

use common::alertmanager::{Alertmanager, Route, request, webhook, with_alertmanager};
use common::{
    Running, args, events_spiking, fresh, metric, produce, producer, stack, start, t0, wait_for,
};
use helios_detect::Args;
use serde_json::{Value, json};

/// Keys of the alerts of a notification.
fn keys(n: &Value) -> Vec<String> {
    let mut k: Vec<String> = n["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["key"].as_str().unwrap().to_string())
        .collect();
    k.sort();
    k
}

/// Posts alerts of `port`'s worker counted as delivered.
async fn posted(port: u16) -> f64 {
    metric(
        port,
        "helios_detect_alertmanager_posts_total{outcome=\"posted\"}",
    )
    .await
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anomalies_page_through_alertmanager_grouped_silenced_and_once_across_a_restart() {
    let s = stack().await;
    let (hook, received) = webhook().await;
    let route = Route {
        group_by: "namespace, detector",
        group_wait: "500ms",
        group_interval: "1s",
    };
    let am = Alertmanager::start(&s, hook, &route).await;
    let (events_topic, anomalies_topic, detector) = fresh(&s, "alertmanager").await;
    let (namespace, name) = detector.split_once('/').unwrap();

    // A silence for the `search` key: its alert is posted, and held.
    let now = chrono::Utc::now();
    let silence = json!({
        "matchers": [{"name": "key", "value": "search", "isRegex": false, "isEqual": true}],
        "startsAt": now.to_rfc3339(),
        "endsAt": (now + chrono::Duration::hours(1)).to_rfc3339(),
        "createdBy": "helios test",
        "comment": "search is being deployed"
    });
    let (status, body) = request(am.port, "POST", "/api/v2/silences", Some(&silence))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");

    // Every service spikes in windows 40–42; window 40 is still open after phase 1.
    let p = producer(&s);
    let t0 = t0();
    let all = ["checkout", "cart", "search"];
    produce(&p, &events_topic, &events_spiking(t0, 0..41, &all)).await;
    let port = common::free_port();
    let base = args(&s, &detector, &events_topic, &anomalies_topic, port, "1h");
    let worker: Running = start(with_alertmanager(base.clone(), &am.url()));
    let sent = Instant::now();
    produce(&p, &events_topic, &events_spiking(t0, 41..43, &all)).await;
    wait_for("a firing notification", Duration::from_secs(60), || async {
        !received.lock().unwrap().is_empty()
    })
    .await;
    let first = received.lock().unwrap()[0].clone();
    println!(
        "window close → Alertmanager → webhook: {:.2?} from producing the events that close \
         the first spike window (group_wait 500 ms included)",
        first.0 - sent
    );
    // The two keys' alerts can come from two window closes (their partitions' watermarks):
    // the group's next notification then holds both.
    let both = || {
        received
            .lock()
            .unwrap()
            .iter()
            .find(|(_, n)| n["status"] == "firing" && keys(n) == ["cart", "checkout"])
            .map(|(_, n)| n.clone())
    };
    wait_for(
        "one notification with both alerts",
        Duration::from_secs(30),
        || async { both().is_some() },
    )
    .await;
    let n = &both().unwrap();
    assert_eq!(first.1["status"], "firing", "{}", first.1);
    assert_eq!(n["groupLabels"]["detector"], name);
    let alert = &n["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "HeliosAnomaly");
    assert_eq!(alert["labels"]["namespace"], namespace);
    assert_eq!(alert["labels"]["pipeline"], "shop-events");
    assert!(
        alert["labels"]["fingerprint"]
            .as_str()
            .is_some_and(|f| !f.is_empty())
    );
    assert!(
        alert["annotations"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("p99_latency")),
        "{alert}"
    );

    // Re-posted every second while the episode lasts: two more rounds of three alerts.
    wait_for("three re-post rounds", Duration::from_secs(30), || async {
        posted(port).await >= 9.0
    })
    .await;
    let (_, alerts) = request(
        am.port,
        "GET",
        "/api/v2/alerts?filter=key%3D%22search%22",
        None,
    )
    .await
    .unwrap();
    let alerts: Value = serde_json::from_str(&alerts).unwrap();
    assert_eq!(alerts[0]["status"]["state"], "suppressed", "{alerts}");
    assert!(
        !alerts[0]["status"]["silencedBy"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{alerts}"
    );

    // A restart in the middle of the incident: the new worker re-posts the three open alerts.
    worker.stop().await;
    let port = common::free_port();
    let worker = start(with_alertmanager(
        Args {
            listen: format!("127.0.0.1:{port}").parse().unwrap(),
            ..base
        },
        &am.url(),
    ));
    wait_for(
        "the open alerts re-posted",
        Duration::from_secs(30),
        || async { posted(port).await >= 3.0 },
    )
    .await;

    // Normal traffic ends the episode.
    produce(&p, &events_topic, &events_spiking(t0, 43..48, &all)).await;
    wait_for(
        "a resolved notification",
        Duration::from_secs(60),
        || async {
            received
                .lock()
                .unwrap()
                .iter()
                .any(|(_, n)| n["status"] == "resolved")
        },
    )
    .await;
    wait_for(
        "the resolution delivered",
        Duration::from_secs(30),
        || async { metric(port, "helios_detect_alertmanager_firing").await == Some(0.0) },
    )
    .await;
    worker.stop().await;

    let notifications: Vec<Value> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, n)| n.clone())
        .collect();
    let firing = notifications
        .iter()
        .filter(|n| n["status"] == "firing")
        .count();
    let resolved: Vec<&Value> = notifications
        .iter()
        .filter(|n| n["status"] == "resolved")
        .collect();
    let grouped = notifications
        .iter()
        .filter(|n| n["status"] == "firing" && keys(n) == ["cart", "checkout"])
        .count();
    assert_eq!(grouped, 1, "the group notified once: {notifications:#?}");
    assert!(
        firing <= 2,
        "at most one alert alone first, then the group; re-posts and the restart add none: \
         {notifications:#?}"
    );
    assert_eq!(resolved.len(), 1, "{notifications:#?}");
    assert_eq!(keys(resolved[0]), ["cart", "checkout"]);
    assert!(
        notifications
            .iter()
            .all(|n| !keys(n).contains(&"search".to_string())),
        "the silence holds: {notifications:#?}"
    );
}
