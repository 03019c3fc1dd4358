#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Window close → page latency of `helios detect` through a real Alertmanager, open loop.
//!
//! Three processes: this one (the load: events produced to the stack's Kafka on a fixed
//! schedule, and the webhook receiver), the detect worker (this example re-run as `worker`,
//! so it shares no runtime with the load) and Alertmanager (`group_wait: 0s`, one group per
//! key). `KEYS` keys send 6–9 events per 1 s window (one partition, no lateness); windows are
//! sent every 200 ms of wall clock; after 45 windows of warm-up, key *i* has 10× latency in
//! window 45 + 3*i*. The window closes when the next window's events arrive, so each
//! incident's latency runs from the **scheduled** send time of that next window (not when it
//! was actually sent: a late send counts against the figure) to the webhook receiver getting
//! Alertmanager's notification for the key. Prints p50/p90/p99/max and incidents missed.
//!
//! ```text
//! cargo run --release -p helios-detect --example alert_latency [-- KEYS]
//! ```
//! `KEYS` defaults to 60. Not covered: report hook and anomalies topic (they run after the
//! post), more than one detect pod, Alertmanager clustering.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::alertmanager::{Alertmanager, Route, webhook, with_alertmanager};
use common::{args, create_topics, event, free_port, noise, produce, producer, stack, unique};

/// Warm-up windows before the first incident (model, guards and their calibration).
const WARMUP: i64 = 45;
/// Windows between two incidents.
const SPACING: i64 = 3;
/// Wall-clock time per 1 s window of event time.
const PERIOD: Duration = Duration::from_millis(200);

fn key(i: usize) -> String {
    format!("svc-{i:03}")
}

/// Events of window `w` for `keys` keys (`spiking`: the key with 10× latency).
fn window(t0: i64, w: i64, keys: usize, spiking: Option<usize>) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for k in 0..keys {
        let n = 6 + (noise(w, 0, k as i64) * 4.0) as i64;
        for e in 0..n {
            let base = 40.0 + 20.0 * noise(w, e + 1, k as i64);
            let latency = if spiking == Some(k) {
                base * 10.0
            } else {
                base
            };
            let ts = t0 + w * 1000 + e * 100;
            out.push((key(k), event(ts, &key(k), latency)));
        }
    }
    out
}

/// The worker process: `worker DETECTOR EVENTS ANOMALIES PORT ALERTMANAGER`.
async fn worker(a: &[String]) {
    let s = stack().await;
    let base = args(&s, &a[0], &a[1], &a[2], a[3].parse().unwrap(), "10m");
    let cfg = with_alertmanager(base, &a[4]);
    helios_detect::serve(cfg, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .unwrap();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("worker") {
        return worker(&argv[1..]).await;
    }
    let keys: usize = argv
        .first()
        .map(|a| a.parse().expect("KEYS is a number"))
        .unwrap_or(60);
    let s = stack().await;
    let (hook, received) = webhook().await;
    let route = Route {
        group_by: "key",
        group_wait: "0s",
        group_interval: "5m",
    };
    let am = Alertmanager::start(&s, hook, &route).await;
    let (events_topic, anomalies_topic) = (unique("latency-events"), unique("latency-anomalies"));
    create_topics(&s, &[(&events_topic, 1), (&anomalies_topic, 1)]).await;
    let detector = format!("bench/{}", unique("latency"));
    let port = free_port();
    let mut child: Child = Command::new(std::env::current_exe().unwrap())
        .args(["worker", &detector, &events_topic, &anomalies_topic])
        .arg(port.to_string())
        .arg(am.url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let p = producer(&s);
    // Event time a few minutes back, so the whole run stays within the worker's max age.
    let t0 = (chrono::Utc::now().timestamp_millis() - 300_000) / 1000 * 1000;
    let windows = WARMUP + SPACING * keys as i64 + 2;
    let spike_at = |w: i64| {
        let d = w - WARMUP;
        (d >= 0 && d % SPACING == 0 && ((d / SPACING) as usize) < keys)
            .then_some((d / SPACING) as usize)
    };
    // Scheduled send time of the window that closes each incident's spike window.
    let mut closes: BTreeMap<String, Instant> = BTreeMap::new();
    let start = Instant::now() + Duration::from_secs(2);
    let mut late = Duration::ZERO;
    for w in 0..windows {
        let due = start + PERIOD * w as u32;
        tokio::time::sleep_until(due.into()).await;
        late = late.max(Instant::now() - due);
        if let Some(k) = spike_at(w - 1) {
            closes.insert(key(k), due);
        }
        produce(&p, &events_topic, &window(t0, w, keys, spike_at(w))).await;
    }
    // Every incident's notification, or 20 s after the last window.
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && received.lock().unwrap().len() < keys {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let mut latencies = Vec::new();
    let mut unexpected = 0;
    for (at, n) in received.lock().unwrap().iter() {
        for a in n["alerts"].as_array().into_iter().flatten() {
            let k = a["labels"]["key"].as_str().unwrap_or_default();
            match closes.remove(k) {
                Some(close) if a["status"] == "firing" => latencies.push(*at - close),
                _ => unexpected += 1,
            }
        }
    }
    latencies.sort();
    println!(
        "alert latency (window close → Alertmanager → webhook), open loop, {keys} incidents, \
         {} keys × 6–9 events per 1 s window, a window every {PERIOD:?}; sends at most {late:.1?} \
         behind schedule",
        keys
    );
    if latencies.is_empty() {
        println!("no incident reached the receiver");
        std::process::exit(1);
    }
    println!(
        "p50 {:.0?}  p90 {:.0?}  p99 {:.0?}  max {:.0?}  ({} paged, {} missed, {} other alerts)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
        latencies.len(),
        closes.len(),
        unexpected
    );
}
