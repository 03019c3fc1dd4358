//! The CRDs on the real kube-apiserver: they install, the examples apply, `kubectl explain` and
//! `kubectl get helios` work, and every invalid object is refused at admission with a message
//! that names the field.

use helios_e2e::kubectl::Kubectl;
use helios_e2e::{StackEnv, repo_root};
use std::sync::OnceLock;

fn kubectl() -> Kubectl {
    static INSTALLED: OnceLock<Result<Kubectl, String>> = OnceLock::new();
    let k = INSTALLED.get_or_init(|| {
        let env = StackEnv::load().map_err(|e| e.to_string())?;
        let k = Kubectl::new(&env).map_err(|e| e.to_string())?;
        k.install_crds()?;
        Ok(k)
    });
    match k {
        Ok(k) => k.clone(),
        Err(e) => panic!("{e}"),
    }
}

const PIPELINE: &str = r#"apiVersion: helios.dev/v1alpha1
kind: AnomalyPipeline
metadata:
  name: p
spec:
  kafka:
    bootstrapServers: 127.0.0.1:9092
    topics:
      events: {partitions: 3}
"#;

const DETECTOR: &str = r#"apiVersion: helios.dev/v1alpha1
kind: Detector
metadata:
  name: d
spec:
  pipelineRef: {name: p}
  features: [event_count, p99_latency]
"#;

/// One invalid object: `base` is applied first (when set), then `bad` must be refused with
/// every string of `expect` in the error.
struct Case {
    name: &'static str,
    base: Option<String>,
    bad: String,
    expect: &'static [&'static str],
}

fn replace(doc: &str, from: &str, to: &str) -> String {
    assert!(doc.contains(from), "fixture does not contain {from:?}");
    doc.replacen(from, to, 1)
}

fn cases() -> Vec<Case> {
    let det_model = |model: &str| format!("{DETECTOR}  model: {model}\n");
    vec![
        Case {
            name: "contamination 0",
            base: None,
            bad: det_model("{contamination: 0}"),
            expect: &["spec.model.contamination", "(0, 0.5]"],
        },
        Case {
            name: "contamination 0.6",
            base: None,
            bad: det_model("{contamination: 0.6}"),
            expect: &["spec.model.contamination"],
        },
        Case {
            name: "threshold above 0",
            base: None,
            bad: det_model("{threshold: 0.5}"),
            expect: &["spec.model.threshold"],
        },
        Case {
            name: "tail quantile 1",
            base: None,
            bad: det_model("{tailQuantile: 1}"),
            expect: &["spec.model.tailQuantile"],
        },
        Case {
            name: "score smoothing 0",
            base: None,
            bad: det_model("{scoreSmoothing: 0}"),
            expect: &["spec.model.scoreSmoothing"],
        },
        Case {
            name: "placement host network as text",
            base: None,
            bad: format!("{PIPELINE}  ingestion:\n    placement: {{hostNetwork: \"yes\"}}\n"),
            expect: &["spec.ingestion.placement.hostNetwork"],
        },
        Case {
            name: "detector toleration seconds as text",
            base: None,
            bad: format!("{DETECTOR}  placement: {{tolerations: [{{tolerationSeconds: soon}}]}}\n"),
            expect: &["spec.placement.tolerations[0].tolerationSeconds"],
        },
        Case {
            name: "alertmanager url without a scheme",
            base: None,
            bad: format!(
                "{DETECTOR}  alerting:\n    alertmanager: {{url: \"alertmanager:9093\"}}\n"
            ),
            expect: &["spec.alerting.alertmanager.url"],
        },
        Case {
            name: "alertmanager with two kinds of credentials",
            base: None,
            bad: format!(
                "{DETECTOR}  alerting:\n    alertmanager:\n      url: http://am:9093\n      \
                 bearerTokenSecretRef: {{name: am, key: token}}\n      basicAuth:\n        \
                 usernameSecretRef: {{name: am, key: user}}\n        \
                 passwordSecretRef: {{name: am, key: pass}}\n"
            ),
            expect: &["spec.alerting.alertmanager.basicAuth", "not both"],
        },
        Case {
            name: "maintenance window in both forms",
            base: None,
            bad: format!(
                "{DETECTOR}  alerting:\n    maintenance:\n    - {{start: \"2026-12-12T02:00:00Z\", \
                 end: \"2026-12-12T04:00:00Z\", from: \"01:00\", to: \"02:00\"}}\n"
            ),
            expect: &["spec.alerting.maintenance[0].start", "either start and end"],
        },
        Case {
            name: "maintenance time of day not HH:MM",
            base: None,
            bad: format!(
                "{DETECTOR}  alerting:\n    maintenance:\n    - {{from: 2am, to: \"03:00\"}}\n"
            ),
            expect: &["spec.alerting.maintenance[0].from"],
        },
        Case {
            name: "hop > size",
            base: None,
            bad: format!("{DETECTOR}  window: {{size: 5m, hop: 10m}}\n"),
            expect: &["spec.window.hop", "must not exceed window.size"],
        },
        Case {
            name: "bad duration",
            base: None,
            bad: format!("{DETECTOR}  window: {{size: 5 minutes}}\n"),
            expect: &["spec.window.size"],
        },
        Case {
            name: "days are not a duration unit",
            base: None,
            bad: format!("{DETECTOR}  training: {{retrainInterval: 1d}}\n"),
            expect: &["spec.training.retrainInterval"],
        },
        Case {
            name: "unknown feature",
            base: None,
            bad: replace(DETECTOR, "p99_latency", "p50_latency"),
            expect: &["spec.features[1]", "p50_latency"],
        },
        Case {
            name: "no features",
            base: None,
            bad: replace(DETECTOR, "[event_count, p99_latency]", "[]"),
            expect: &["spec.features"],
        },
        Case {
            name: "floor on an unlisted feature",
            base: None,
            bad: format!("{DETECTOR}  alerting: {{floors: {{error_rate: 0.1}}}}\n"),
            expect: &["spec.alerting.floors"],
        },
        Case {
            name: "bad partition key",
            base: None,
            bad: format!("{DETECTOR}  partitionBy: [host]\n"),
            expect: &["spec.partitionBy[0]"],
        },
        Case {
            name: "pipelineRef changed",
            base: Some(DETECTOR.to_string()),
            bad: replace(DETECTOR, "{name: p}", "{name: other}"),
            expect: &["spec.pipelineRef", "immutable"],
        },
        Case {
            name: "partitions 0",
            base: None,
            bad: replace(PIPELINE, "partitions: 3", "partitions: 0"),
            expect: &["spec.kafka.topics.events.partitions"],
        },
        Case {
            name: "partitions decreased",
            base: Some(PIPELINE.to_string()),
            bad: replace(PIPELINE, "partitions: 3", "partitions: 2"),
            expect: &["spec.kafka.topics.events.partitions", "cannot be decreased"],
        },
        Case {
            name: "deletionPolicy unknown",
            base: None,
            bad: format!(
                "{}    deletionPolicy: Destroy\n",
                PIPELINE.trim_end_matches('\n').to_string() + "\n"
            ),
            expect: &["spec.kafka.deletionPolicy", "Destroy"],
        },
        Case {
            name: "rate limit zero",
            base: None,
            bad: format!("{PIPELINE}  ingestion:\n    rateLimit: {{eventsPerSecond: 0}}\n"),
            expect: &["spec.ingestion.rateLimit.eventsPerSecond"],
        },
        Case {
            name: "inline secret value",
            base: None,
            bad: format!("{PIPELINE}  ingestion:\n    authToken: s3cr3t\n"),
            expect: &["spec.ingestion.authToken"],
        },
        Case {
            name: "secret ref without key",
            base: None,
            bad: format!("{PIPELINE}  ingestion:\n    authTokenSecretRef: {{name: tok}}\n"),
            expect: &["spec.ingestion.authTokenSecretRef.key"],
        },
        Case {
            name: "secret ref with a value",
            base: None,
            bad: format!(
                "{PIPELINE}  ingestion:\n    authTokenSecretRef: {{name: tok, key: t, value: s3cr3t}}\n"
            ),
            expect: &["spec.ingestion.authTokenSecretRef.value"],
        },
        Case {
            name: "no bootstrap servers",
            base: None,
            bad: replace(PIPELINE, "    bootstrapServers: 127.0.0.1:9092\n", ""),
            expect: &["spec.kafka", "bootstrapServers"],
        },
        Case {
            name: "bad body size",
            base: None,
            bad: format!("{PIPELINE}  ingestion:\n    maxBodySize: lots\n"),
            expect: &["spec.ingestion.maxBodySize"],
        },
    ]
}

#[test]
fn invalid_objects_are_refused_naming_the_field() {
    let k = kubectl();
    let table = cases();
    assert!(table.len() >= 12);
    let mut failures = Vec::new();
    for case in table {
        let ns = k
            .temp_namespace("crd-invalid")
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(base) = &case.base {
            let out = k
                .run(&["apply", "-n", &ns.name, "-f", "-"], Some(base))
                .expect("kubectl runs");
            assert!(
                out.success,
                "{}: the valid base object was refused: {}",
                case.name, out.stderr
            );
        }
        let out = k
            .run(&["apply", "-n", &ns.name, "-f", "-"], Some(&case.bad))
            .expect("kubectl runs");
        if out.success {
            failures.push(format!("{}: accepted, but must be refused", case.name));
            continue;
        }
        for needle in case.expect {
            if !out.stderr.contains(needle) {
                failures.push(format!(
                    "{}: error does not mention {needle:?}: {}",
                    case.name,
                    out.stderr.trim()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn examples_apply_and_show_in_kubectl_get_helios() {
    let k = kubectl();
    let ns = k
        .temp_namespace("crd-examples")
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = repo_root().join("examples");
    let dir = dir.to_string_lossy();
    k.ok(&["apply", "-n", &ns.name, "-f", &dir], None)
        .unwrap_or_else(|e| panic!("{e}"));
    let listed = k
        .ok(&["get", "helios", "-n", &ns.name, "-o", "name"], None)
        .unwrap_or_else(|e| panic!("{e}"));
    for expected in [
        "anomalypipeline.helios.dev/shop",
        "detector.helios.dev/checkout-latency",
        "detector.helios.dev/auth-errors",
        "detector.helios.dev/batch-volume",
    ] {
        assert!(
            listed.contains(expected),
            "`kubectl get helios` misses {expected}: {listed}"
        );
    }
    // Defaults are applied by the API server.
    let mode = k
        .ok(
            &[
                "get",
                "det",
                "auth-errors",
                "-n",
                &ns.name,
                "-o",
                "jsonpath={.spec.model.trees}/{.spec.window.allowedLateness}",
            ],
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mode, "100/30s");
    let table = k
        .ok(&["get", "det", "-n", &ns.name], None)
        .unwrap_or_else(|e| panic!("{e}"));
    let header = table.lines().next().unwrap_or_default();
    for column in [
        "PIPELINE",
        "MODE",
        "READY",
        "ANOMALY",
        "LAST ANOMALY",
        "AGE",
    ] {
        assert!(
            header.contains(column),
            "detector column {column} missing: {header}"
        );
    }
    let table = k
        .ok(&["get", "ap", "-n", &ns.name], None)
        .unwrap_or_else(|e| panic!("{e}"));
    let header = table.lines().next().unwrap_or_default();
    for column in ["READY", "TOPIC", "DETECTORS", "AGE"] {
        assert!(
            header.contains(column),
            "pipeline column {column} missing: {header}"
        );
    }
}

#[test]
fn kubectl_explain_teaches_the_api() {
    let k = kubectl();
    let out = k
        .ok(&["explain", "anomalypipeline.spec.kafka"], None)
        .unwrap_or_else(|e| panic!("{e}"));
    for needle in ["bootstrapServers", "deletionPolicy", "topics", "Retain"] {
        assert!(
            out.contains(needle),
            "explain spec.kafka lacks {needle}: {out}"
        );
    }
    let out = k
        .ok(&["explain", "detector.spec.model.threshold"], None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.contains("score_samples"),
        "explain threshold lacks its meaning: {out}"
    );
}
