//! Graceful shutdown under load: every event acknowledged before SIGTERM is in Kafka.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure with a message

mod common;

use common::*;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_keeps_every_acknowledged_event() {
    let env = stack();
    let topic = create_topic(&env, 3).await;
    let server = start(args(env.get("KAFKA_BOOTSTRAP").unwrap(), &topic)).await;
    let url = server.url();
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let mut senders = Vec::new();
    for _ in 0..4 {
        let (client, url, next, acked) = (client.clone(), url.clone(), next.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let first = next.fetch_add(50, Ordering::Relaxed);
                let body: Vec<String> = (first..first + 50)
                    .map(|s| event(s, "svc").to_string())
                    .collect();
                let resp = client
                    .post(&url)
                    .header("content-type", "application/x-ndjson")
                    .body(body.join("\n"))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().is_success() => {
                        acked.lock().await.extend(first..first + 50)
                    }
                    Ok(_) => {}
                    Err(_) => break, // the listener is gone
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.shutdown().await.expect("graceful shutdown");
    for s in senders {
        let _ = s.await;
    }
    let acked = acked.lock().await;
    assert!(
        acked.len() > 100,
        "load was running: {} acknowledged",
        acked.len()
    );
    let messages = read_all(&env, &topic, usize::MAX, Duration::from_secs(5)).await;
    let counts = seq_counts(&messages);
    let missing: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|s| !counts.contains_key(s))
        .collect();
    println!(
        "shutdown under load: acknowledged {}, found {}, missing {}",
        acked.len(),
        acked.len() - missing.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "acknowledged events lost at shutdown: {}",
        missing.len()
    );
}
