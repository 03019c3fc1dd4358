#![allow(clippy::unwrap_used)]
//! `helios detect` against the real local stack (Kafka + PostgreSQL): a latency spike becomes
//! exactly one anomaly row and one anomalies-topic message; killing the worker mid-stream and
//! restarting it neither loses nor duplicates the alert; alerts of several keys raised by one
//! window close are each published once; event → alert latency is printed.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{
    SERVICES, args, count, events, events_spiking, free_port, fresh, http_get, produce, producer,
    read_all, stack, start, t0, wait_for, windows_at,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_spike_gives_one_anomaly_row_and_one_message() {
    let s = stack().await;
    let (events_topic, anomalies_topic, detector) = fresh(&s, "spike").await;
    let p = producer(&s);
    let t0 = t0();

    // Phase 1: 40 normal windows and the first spike window (not yet closed: lateness 0).
    let phase1 = events(t0, 0..41);
    produce(&p, &events_topic, &phase1).await;
    let port = free_port();
    let started = Instant::now();
    let w = start(args(
        &s,
        &detector,
        &events_topic,
        &anomalies_topic,
        port,
        "1h",
    ));
    wait_for("window 39 written", Duration::from_secs(60), || async {
        windows_at(&s.pool, &detector, t0 + 39_000).await == 3
    })
    .await;
    let took = started.elapsed();
    println!(
        "throughput: {} events (start-up, migrations and consumer-group join included) \
         windowed, scored and written in {:.2?} = {:.0} events/s",
        phase1.len(),
        took,
        phase1.len() as f64 / took.as_secs_f64()
    );
    assert!(http_get(port, "/readyz").await.contains("200 OK"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        count(
            &s.pool,
            "SELECT count(*) FROM helios.anomalies WHERE detector = $1",
            &detector
        )
        .await,
        0,
        "the spike window is still open"
    );

    // Phase 2: the first event of window 41 of every service (the watermark is the minimum over
    // partitions) moves the watermark past the spike window.
    let (first, rest): (Vec<_>, Vec<_>) = events(t0, 41..42).into_iter().partition(|(_, v)| {
        serde_json::from_slice::<serde_json::Value>(v).unwrap()["timestamp"] == t0 + 41_000
    });
    assert_eq!(first.len(), 3);
    let sent = Instant::now();
    produce(&p, &events_topic, &first).await;
    let acked = sent.elapsed();
    wait_for("the anomaly row", Duration::from_secs(30), || async {
        count(
            &s.pool,
            "SELECT count(*) FROM helios.anomalies WHERE detector = $1",
            &detector,
        )
        .await
            == 1
    })
    .await;
    let latency = sent.elapsed();
    println!(
        "event → alert latency: {latency:.2?} from producing the watermark-advancing events \
         to the anomaly row in PostgreSQL (of which produce ack {acked:.2?})"
    );
    produce(&p, &events_topic, &rest).await;

    // Phase 3: the spike continues two windows, then normal traffic resolves the episode.
    produce(&p, &events_topic, &events(t0, 42..48)).await;
    wait_for("window 46 written", Duration::from_secs(30), || async {
        windows_at(&s.pool, &detector, t0 + 46_000).await == 3
    })
    .await;
    wait_for("the anomaly notified", Duration::from_secs(30), || async {
        count(
            &s.pool,
            "SELECT count(*) FROM helios.anomalies WHERE detector = $1 AND notified AND resolved",
            &detector,
        )
        .await
            == 1
    })
    .await;
    let metrics = http_get(port, "/metrics").await;
    assert!(
        metrics.contains("helios_detect_anomalies_total{severity="),
        "{metrics}"
    );
    assert!(metrics.contains("helios_detect_scoring_latency_seconds_count"));
    // Scores as metrics: each of the three keys (fewer than the default top ten) with its score,
    // and the aggregates over every key.
    let series = |name: &str| {
        metrics
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{key=\"")))
            .count()
    };
    assert_eq!(series("helios_detect_score"), 3, "{metrics}");
    assert_eq!(series("helios_detect_model_age_seconds"), 3, "{metrics}");
    assert!(
        metrics.contains("helios_detect_keys{state=\"scored\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("helios_detect_score_max "), "{metrics}");
    w.stop().await;

    let row: (
        String,
        String,
        String,
        f64,
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
        serde_json::Value,
    ) = sqlx::query_as(
        "SELECT anomaly_id, key, severity, score, window_start, window_end, explanation \
             FROM helios.anomalies WHERE detector = $1",
    )
    .bind(&detector)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    println!(
        "anomaly: id={} key={} severity={} score={:.3}",
        row.0, row.1, row.2, row.3
    );
    assert_eq!(row.1, "checkout");
    assert_eq!(
        row.4.timestamp_millis(),
        t0 + 40_000,
        "episode starts at the first spike window"
    );
    assert_eq!(
        row.5.timestamp_millis(),
        t0 + 43_000,
        "episode ends with the last spike window"
    );
    assert_eq!(row.6[0]["feature"], "p99_latency", "{}", row.6);
    let flagged = count(
        &s.pool,
        "SELECT count(*) FROM helios.windows WHERE detector = $1 AND anomalous",
        &detector,
    )
    .await;
    assert_eq!(flagged, 3, "exactly the three spike windows are anomalous");
    let (version, forest): (i64, serde_json::Value) = sqlx::query_as(
        "SELECT model_version, forest FROM helios.models WHERE detector = $1 AND key = 'checkout'",
    )
    .bind(&detector)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    let forest = helios_detection::forest::IsolationForest::from_json(&forest.to_string());
    assert!(
        version >= 1 && forest.is_ok(),
        "model {version}: {forest:?}"
    );

    let messages = read_all(&s, &anomalies_topic).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].1["anomalyId"], row.0.as_str());
    assert_eq!(
        messages[0].0,
        messages[0].1["fingerprint"].as_str().unwrap()
    );
    assert_eq!(messages[0].1["explanation"][0]["feature"], "p99_latency");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_worker_neither_loses_nor_duplicates_the_alert() {
    let s = stack().await;
    let (events_topic, anomalies_topic, detector) = fresh(&s, "restart").await;
    let p = producer(&s);
    let t0 = t0();
    let a = |port| args(&s, &detector, &events_topic, &anomalies_topic, port, "1s");
    let anomalies = "SELECT count(*) FROM helios.anomalies WHERE detector = $1";

    // Run 1: killed while warming up.
    produce(&p, &events_topic, &events(t0, 0..30)).await;
    let w = start(a(free_port()));
    wait_for("window 25 written", Duration::from_secs(60), || async {
        windows_at(&s.pool, &detector, t0 + 25_000).await == 3
    })
    .await;
    w.kill().await;

    // Run 2: killed as soon as the anomaly row exists.
    produce(&p, &events_topic, &events(t0, 30..42)).await;
    let w = start(a(free_port()));
    wait_for("the anomaly row", Duration::from_secs(60), || async {
        count(&s.pool, anomalies, &detector).await >= 1
    })
    .await;
    w.kill().await;

    // Run 3: to the end (the last window closes on idle), then a graceful stop.
    produce(&p, &events_topic, &events(t0, 42..48)).await;
    let w = start(a(free_port()));
    wait_for("every window written", Duration::from_secs(60), || async {
        count(
            &s.pool,
            "SELECT count(*) FROM helios.windows WHERE detector = $1",
            &detector,
        )
        .await
            == 48 * 3
    })
    .await;
    wait_for(
        "the anomaly resolved and notified",
        Duration::from_secs(30),
        || async {
            count(
            &s.pool,
            "SELECT count(*) FROM helios.anomalies WHERE detector = $1 AND notified AND resolved",
            &detector,
        )
        .await
            == 1
        },
    )
    .await;
    w.stop().await;

    assert_eq!(count(&s.pool, anomalies, &detector).await, 1);
    let messages = read_all(&s, &anomalies_topic).await;
    let ids: BTreeSet<String> = messages
        .iter()
        .map(|(_, m)| m["anomalyId"].as_str().unwrap().to_string())
        .collect();
    // Counted by id: exactly one alert. Publishing is at-least-once: a kill that lands between
    // Kafka's acknowledgement and the `notified` update re-publishes the same id on restart.
    assert_eq!(ids.len(), 1, "exactly one alert id: {messages:?}");
    println!(
        "anomalies-topic messages: {} (distinct ids: {})",
        messages.len(),
        ids.len()
    );
    assert!(messages.len() <= 2, "{messages:?}");
    let key: String = sqlx::query_scalar("SELECT key FROM helios.anomalies WHERE detector = $1")
        .bind(&detector)
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(key, "checkout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_of_several_keys_in_one_close_are_each_stored_and_published_once() {
    let s = stack().await;
    let (events_topic, anomalies_topic, detector) = fresh(&s, "batch").await;
    // Every service spikes in the same windows: one close raises three alerts, published as
    // one batch and written with one statement.
    produce(
        &producer(&s),
        &events_topic,
        &events_spiking(t0(), 0..48, &SERVICES),
    )
    .await;
    let port = free_port();
    let w = start(args(
        &s,
        &detector,
        &events_topic,
        &anomalies_topic,
        port,
        "1s",
    ));
    let done =
        "SELECT count(*) FROM helios.anomalies WHERE detector = $1 AND notified AND resolved";
    wait_for(
        "three alerts notified and resolved",
        Duration::from_secs(60),
        || async { count(&s.pool, done, &detector).await == 3 },
    )
    .await;
    w.stop().await;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT anomaly_id, key FROM helios.anomalies WHERE detector = $1 ORDER BY key",
    )
    .bind(&detector)
    .fetch_all(&s.pool)
    .await
    .unwrap();
    let keys: Vec<&str> = rows.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["cart", "checkout", "search"],
        "one alert per service"
    );
    let messages = read_all(&s, &anomalies_topic).await;
    let published: BTreeSet<&str> = messages
        .iter()
        .map(|(_, m)| m["anomalyId"].as_str().unwrap())
        .collect();
    let stored: BTreeSet<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(messages.len(), 3, "each alert published once: {messages:?}");
    assert_eq!(published, stored);
}
