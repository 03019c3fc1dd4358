#![allow(clippy::unwrap_used)]
//! The watermark against the real local stack (Kafka + PostgreSQL): a replay of old events on a
//! topic with an empty partition (and a partition whose history ends early) is written to
//! PostgreSQL as fast as the worker scores, not after the quiet wait (set to 10 minutes here,
//! so a stalled watermark fails the test); a quiet live partition holds the others' windows
//! for the quiet wait and then releases them.

mod common;

use std::time::{Duration, Instant};

use common::{
    Stack, args, count, create_topics, event, free_port, metric, produce_to, producer, stack,
    start, unique, wait_for,
};

/// `n` events per 1 s window of `key` in `windows` (relative to `t0`).
fn history(key: &str, t0: i64, windows: std::ops::Range<i64>, n: i64) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for w in windows {
        for i in 0..n {
            let latency = 40.0 + 20.0 * common::noise(w, i, key.len() as i64);
            out.push((
                key.to_string(),
                event(t0 + w * 1000 + i * (1000 / n), key, latency),
            ));
        }
    }
    out
}

/// Windows written per key, and their summed `event_count`.
async fn written(s: &Stack, detector: &str) -> Vec<(String, i64, f64)> {
    sqlx::query_as(
        "SELECT key, count(*), sum((features->>'event_count')::float8) FROM helios.windows \
         WHERE detector = $1 GROUP BY key ORDER BY key",
    )
    .bind(detector)
    .fetch_all(&s.pool)
    .await
    .unwrap()
}

async fn windows_from(s: &Stack, detector: &str, key: &str, start_ms: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM helios.windows WHERE detector = $1 AND key = $2 \
         AND window_start >= to_timestamp($3::float8 / 1000)",
    )
    .bind(detector)
    .bind(key)
    .bind(start_ms as f64)
    .fetch_one(&s.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_is_not_held_back_by_an_empty_or_fully_read_partition() {
    let s = stack().await;
    let (events_topic, anomalies_topic) = (unique("wm-events"), unique("wm-anomalies"));
    // Three partitions, two keys: partition 2 stays empty.
    create_topics(&s, &[(&events_topic, 3), (&anomalies_topic, 1)]).await;
    let detector = format!("test/{}", unique("replay"));
    let p = producer(&s);
    // Two weeks ago, whole seconds.
    let t0 = (chrono::Utc::now().timestamp_millis() - 14 * 86_400_000) / 1000 * 1000;
    let (alpha_windows, beta_windows, per_window) = (300, 200, 8);
    // `beta`'s history ends 100 windows earlier: its partition is read to its end while
    // `alpha`'s still has a backlog.
    produce_to(
        &p,
        &events_topic,
        Some(0),
        &history("alpha", t0, 0..alpha_windows, per_window),
    )
    .await;
    produce_to(
        &p,
        &events_topic,
        Some(1),
        &history("beta", t0, 0..beta_windows, per_window),
    )
    .await;

    let port = free_port();
    // A 10-minute quiet wait: if an empty or fully read partition held the watermark, nothing
    // would be written within the 30 s below.
    let w = start(args(
        &s,
        &detector,
        &events_topic,
        &anomalies_topic,
        port,
        "10m",
    ));
    let total = "SELECT count(*) FROM helios.windows WHERE detector = $1";
    // Every window of both keys: `beta`'s last 100 are empty (gap windows up to the last
    // window holding an event).
    let expected = 2 * alpha_windows;
    let took = wait_for(
        "every replayed window written",
        Duration::from_secs(30),
        || async { count(&s.pool, total, &detector).await == expected },
    )
    .await;
    println!(
        "replay: {} events in {} windows on 3 partitions (one empty) written {took:.2?} after \
         the worker started (quiet wait 10 min)",
        (alpha_windows + beta_windows) * per_window,
        expected
    );
    let rows = written(&s, &detector).await;
    assert_eq!(
        rows,
        vec![
            (
                "alpha".to_string(),
                alpha_windows,
                (alpha_windows * per_window) as f64
            ),
            (
                "beta".to_string(),
                alpha_windows,
                (beta_windows * per_window) as f64
            ),
        ],
        "every event in its window, none dropped"
    );
    assert_eq!(
        metric(port, r#"helios_detect_events_total{outcome="late"}"#)
            .await
            .unwrap_or(0.0),
        0.0,
        "no event was late"
    );
    assert_eq!(
        metric(port, r#"helios_detect_events_total{outcome="accepted"}"#).await,
        Some(((alpha_windows + beta_windows) * per_window) as f64)
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_live_partition_releases_the_watermark_after_the_quiet_wait() {
    let s = stack().await;
    let (events_topic, anomalies_topic) = (unique("wm-live"), unique("wm-anomalies"));
    create_topics(&s, &[(&events_topic, 2), (&anomalies_topic, 1)]).await;
    let detector = format!("test/{}", unique("quiet"));
    let p = producer(&s);
    let quiet = Duration::from_secs(4);
    let port = free_port();
    let w = start(args(
        &s,
        &detector,
        &events_topic,
        &anomalies_topic,
        port,
        "4s",
    ));
    // Live traffic (event time = now): a first event of each key, once the worker consumes.
    let now = || chrono::Utc::now().timestamp_millis();
    let live = |key: &str| vec![(key.to_string(), event(now(), key, 50.0))];
    produce_to(&p, &events_topic, Some(0), &live("alpha")).await;
    produce_to(&p, &events_topic, Some(1), &live("beta")).await;
    wait_for("the worker consuming", Duration::from_secs(60), || async {
        metric(port, r#"helios_detect_events_total{outcome="accepted"}"#).await == Some(2.0)
    })
    .await;

    // `beta`'s last event; from now on only `alpha` is live (an event every 100 ms).
    produce_to(&p, &events_topic, Some(1), &live("beta")).await;
    let beta_last = now();
    let quiet_since = Instant::now();
    let beta_window = beta_last / 1000 * 1000;
    let feeder = {
        let p = p.clone();
        let topic = events_topic.clone();
        tokio::spawn(async move {
            loop {
                let e = vec![("alpha".to_string(), event(now(), "alpha", 50.0))];
                produce_to(&p, &topic, Some(0), &e).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    // Two seconds later `alpha`'s window after `beta`'s last has ended, but `beta` still holds
    // the watermark at its last event: none of `alpha`'s windows from `beta`'s on is written.
    let check_at = quiet_since + Duration::from_millis(2_500);
    tokio::time::sleep_until(check_at.into()).await;
    let held = windows_from(&s, &detector, "alpha", beta_window).await;
    assert!(
        quiet_since.elapsed() < quiet,
        "the check ran too late to tell"
    );
    assert_eq!(
        held, 0,
        "within the quiet wait beta holds alpha's windows back"
    );
    // After the quiet wait the watermark follows alpha alone.
    let released = wait_for(
        "alpha's window after beta's last written",
        Duration::from_secs(20),
        || async { windows_from(&s, &detector, "alpha", beta_window + 1000).await >= 1 },
    )
    .await;
    let waited = quiet_since.elapsed();
    feeder.abort();
    println!(
        "quiet partition: alpha's windows released {waited:.2?} after beta's last event \
         (quiet wait {quiet:?}; polled {released:.2?} after the check)"
    );
    assert!(
        waited >= quiet - Duration::from_millis(200),
        "released before the quiet wait: {waited:?}"
    );
    // beta comes back: its new event is on time (not late), in a window of its own.
    produce_to(&p, &events_topic, Some(1), &live("beta")).await;
    let back = now() / 1000 * 1000;
    wait_for(
        "beta's new window written (idle close)",
        Duration::from_secs(30),
        || async {
            sqlx::query_scalar::<_, f64>(
                "SELECT coalesce(sum((features->>'event_count')::float8), 0) FROM helios.windows \
                 WHERE detector = $1 AND key = 'beta' AND window_start >= to_timestamp($2::float8 / 1000)",
            )
            .bind(&detector)
            .bind((back - 1000) as f64)
            .fetch_one(&s.pool)
            .await
            .unwrap_or(0.0)
                >= 1.0
        },
    )
    .await;
    assert_eq!(
        metric(port, r#"helios_detect_events_total{outcome="late"}"#)
            .await
            .unwrap_or(0.0),
        0.0,
        "no event was late"
    );
    w.stop().await;
}
