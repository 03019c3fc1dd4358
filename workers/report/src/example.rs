//! A complete example request: documentation, tests and the benchmark share it.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

/// An example anomaly: `checkout` p99 latency 1,240 ms vs 180 ms, Critical, 14 one-minute
/// windows around it (the anomalous one at 10:05 UTC), one related key, no LLM.
pub fn example_value() -> Value {
    let p99 = [
        175.0, 182.0, 179.0, 185.0, 171.0, 180.0, 178.0, 183.0, 176.0, 181.0, 620.0, 1240.0, 410.0,
        190.0,
    ];
    let err = [
        0.004, 0.003, 0.005, 0.004, 0.004, 0.003, 0.004, 0.005, 0.004, 0.004, 0.012, 0.042, 0.02,
        0.006,
    ];
    let count = [
        1190.0, 1210.0, 1185.0, 1202.0, 1195.0, 1220.0, 1199.0, 1204.0, 1188.0, 1210.0, 1260.0,
        1320.0, 1240.0, 1205.0,
    ];
    let windows: Vec<Value> = (0..14)
        .map(|i| {
            json!({
                "start": start(i),
                "features": {"p99_latency": p99[i], "error_rate": err[i], "event_count": count[i]}
            })
        })
        .collect();
    json!({
        "namespace": "shop",
        "pipeline": "checkout-events",
        "detector": "latency",
        "key": "checkout",
        "anomalyId": "7f3a9c21d4e8b650",
        "windowStart": "2026-11-24T10:05:00Z",
        "windowEnd": "2026-11-24T10:06:00Z",
        "score": 0.91,
        "severity": "Critical",
        "fingerprint": "c0ffee12ab34cd56",
        "explanation": [
            {"feature": "p99_latency", "actual": 1240.0, "typical": 180.0, "contribution": 0.72, "robustZ": 35.2},
            {"feature": "error_rate", "actual": 0.042, "typical": 0.004, "contribution": 0.18},
            {"feature": "event_count", "actual": 1320.0, "typical": 1200.0, "contribution": 0.02}
        ],
        "recentWindows": windows,
        "relatedKeys": ["payments", "checkout /api/cart"],
        "report": {"bucket": "helios-reports", "prefix": "reports"}
    })
}

fn start(i: usize) -> String {
    let base: DateTime<Utc> = DateTime::from_timestamp(1_795_514_040, 0).unwrap_or_default();
    let minutes = i64::try_from(i).unwrap_or_default();
    (base + Duration::minutes(minutes)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
