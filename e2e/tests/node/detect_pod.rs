//! The Detector's detect pod as a container on the real node: the operator renders its
//! StatefulSet with the Detector's placement and the API server the chart names
//! (`workers.apiServer`, as on a cluster without kube-proxy); the kubelet runs it; it consumes
//! the pipeline's events topic from the stack's Kafka, keeps its windows in PostgreSQL, trains,
//! and writes the Detector's runtime status with its own ServiceAccount token.

use super::*;

/// Window size of the test Detector, in seconds.
const WINDOW_SECS: u64 = 5;
/// Warm-up windows before its first model (the API allows 2 at least).
const WARMUP_WINDOWS: u64 = 5;
/// Windows of event time sent: the warm-up, a few to score, and the newest, which closes when
/// the partition goes quiet.
const WINDOWS: u64 = 12;
/// Events per window.
const PER_WINDOW: u64 = 4;
/// The port every ingest pod listens on (operator::builders::ingest::INGEST_PORT), here on the
/// node's loopback.
const INGEST_PORT: u16 = 8080;

/// The Detector `latency` of `pipeline`, placed on the real node, with 5 s windows and a short
/// warm-up, so that a minute of event time trains it.
pub(super) fn detector(node: &Node, pipeline: &str) -> String {
    format!(
        "apiVersion: helios.dev/v1alpha1\nkind: Detector\nmetadata: {{name: latency}}\nspec:\n\
         \x20 pipelineRef: {{name: {pipeline}}}\n\
         \x20 features: [event_count, p99_latency]\n\
         \x20 window: {{size: {WINDOW_SECS}s, allowedLateness: 0s}}\n\
         \x20 training: {{warmupWindows: {WARMUP_WINDOWS}, historyWindows: 50}}\n\
         \x20 placement: {placement}\n",
        placement = node.placement(),
    )
}

/// A JSON batch of `WINDOWS` windows of event time ending before now, `PER_WINDOW` events each
/// with varying latency; and its length.
fn events() -> (String, u64) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
    let window_ms = WINDOW_SECS * 1000;
    let start = (now_ms / window_ms - WINDOWS - 1) * window_ms;
    let count = WINDOWS * PER_WINDOW;
    let events: Vec<Value> = (0..count)
        .map(|i| {
            serde_json::json!({
                "timestamp": start + i * window_ms / PER_WINDOW,
                "service": "web",
                "endpoint": "/",
                "status": 200,
                "latency_ms": 10 + i * 7 % 13,
            })
        })
        .collect();
    (Value::Array(events).to_string(), count)
}

/// The detect pod of Detector `latency` in `ns` runs here as a Ready container, as the
/// Detector's own ServiceAccount (its token the only credential) and with the API server the
/// operator rendered; the events then posted to the ingest pod reach it through Kafka, and it
/// trains and writes the Detector's runtime status itself. `context()` goes into failures.
pub(super) fn scores_the_ingested_events(node: &Node, ns: &str, context: impl Fn() -> String) {
    let pod_name = node.only_pod(ns, "app.kubernetes.io/component=detect");
    node.assert_runs_here(ns, &pod_name);
    let pod = node.pod_json(ns, &pod_name);
    assert_service_account_token(&pod, "latency-detect");
    let env = &pod["spec"]["containers"][0]["env"];
    let value = |name: &str| {
        env.as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .map(str::to_string)
    };
    assert_eq!(
        (
            value("KUBERNETES_SERVICE_HOST"),
            value("KUBERNETES_SERVICE_PORT")
        ),
        (Some("127.0.0.1".into()), Some(api_server_port(node))),
        "the API server the chart's workers.apiServer names: {env}"
    );
    assert_eq!(
        value("KUBECONFIG"),
        None,
        "no credential but the token: {env}"
    );

    let (body, count) = events();
    let posted = http(
        INGEST_PORT,
        "POST",
        "/v1/events",
        &format!("Authorization: Bearer {INGEST_TOKEN}\r\nContent-Type: application/json\r\n"),
        &body,
    );
    assert!(
        posted.lines().next().is_some_and(|l| l.contains(" 200 "))
            && posted.contains(&format!("\"accepted\":{count}")),
        "POST /v1/events to the ingest pod on 127.0.0.1:{INGEST_PORT}: {posted}"
    );

    // Only the detect pod writes ModelTrained: it read the windows from Kafka, trained a model
    // and reached the API server at the address the operator gave it, with its own token.
    let logs = || {
        let log = node
            .kubectl
            .ok(&["logs", "-n", ns, &pod_name, "--tail=40"], None)
            .unwrap_or_default();
        format!("detect log:\n{log}\n{}", context())
    };
    node.wait_object(
        ns,
        "detector/latency",
        "condition=ModelTrained",
        "120s",
        logs,
    );
    let text = node
        .kubectl
        .ok(
            &[
                "get",
                "detector/latency",
                "-n",
                ns,
                "-o",
                "json",
                "--show-managed-fields",
            ],
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let detector: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let model = &detector["status"]["model"];
    assert!(
        model["version"].as_i64().is_some_and(|v| v >= 1) && model["trainedAt"].is_string(),
        "a trained model in the status: {model}"
    );
    let trained = detector["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "ModelTrained")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        trained["observedGeneration"], detector["metadata"]["generation"],
        "{trained}"
    );
    // The worker writes a batch's windows and model snapshots in one transaction before it
    // updates its status, so the store already holds what the status reports.
    let version = model["version"].as_i64().unwrap_or_default();
    let (windows, models) = stored(node, &format!("{ns}/latency"), version);
    assert!(
        windows >= i64::try_from(WARMUP_WINDOWS).unwrap_or(i64::MAX) && models == 1,
        "PostgreSQL holds {windows} windows (want >= {WARMUP_WINDOWS}) and {models} snapshots \
         of model v{version} (want 1) of the detector"
    );
    eprintln!(
        "the detect pod on the real node ({pod_name}): {windows} windows in PostgreSQL, \
         ModelTrained: {}",
        trained["message"]
    );
    let by_worker = detector["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| {
            m["manager"] == "helios-detect"
                && m["subresource"] == "status"
                && m["fieldsV1"]["f:status"]["f:model"].is_object()
        });
    assert!(
        by_worker,
        "the status' model is not the detect worker's (field manager helios-detect): {}",
        detector["metadata"]["managedFields"]
    );
}

/// Rows of `detector` in the stack's PostgreSQL: its windows, and its model snapshots at
/// `version`.
fn stored(node: &Node, detector: &str, version: i64) -> (i64, i64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(async {
        let pool = helios_e2e::clients::postgres_pool(&node.env)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM helios.windows WHERE detector = $1), \
                    (SELECT count(*) FROM helios.models WHERE detector = $1 AND model_version = $2)",
        )
        .bind(detector)
        .bind(version)
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| panic!("reading helios.windows and helios.models: {e}"))
    })
}
