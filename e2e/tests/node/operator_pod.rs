//! The chart's operator as a pod on the real node, and the ingest pod it renders beside it.

use super::*;

/// Run the stack's `helm` (`helios_e2e::helm`); (success, stdout + stderr).
fn helm(helm: &Helm, args: &[&str]) -> (bool, String) {
    let out = helm
        .run(args)
        .unwrap_or_else(|e| panic!("cannot run helm: {e}"));
    (out.success, format!("{}{}", out.stdout, out.stderr))
}

/// The values that put the chart's operator on the real node: host network (no pod network
/// here), its taints tolerated, the API server on loopback for it and for the worker pods it
/// renders (no kube-proxy serves the `kubernetes` Service's IP), a metrics port free on this
/// machine and the image already on the node. No token volume: the API server's
/// ServiceAccount admission plugin adds the pod's (components/kube.sh), as on a real cluster.
fn operator_on_node_values(node: &Node, namespace: &str, metrics_port: u16) -> String {
    let api_port = api_server_port(node);
    format!(
        "replicaCount: 1\nwatchNamespace: {namespace}\nhostNetwork: true\n\
         admissionPolicy: {{allowHostNetwork: true}}\n\
         workers: {{apiServer: {{host: 127.0.0.1, port: {api_port}}}}}\n\
         metrics: {{port: {metrics_port}}}\nimage: {{pullPolicy: Never}}\n\
         terminationGracePeriodSeconds: 5\nlogging: {{level: info, format: json}}\n\
         nodeSelector: {{kubernetes.io/hostname: \"{node}\"}}\n\
         tolerations:\n\
         \x20 - {{key: {taint}, operator: Exists, effect: NoSchedule}}\n\
         \x20 - {{key: node.kubernetes.io/not-ready, operator: Exists, effect: NoSchedule}}\n\
         extraEnv:\n\
         \x20 - {{name: KUBERNETES_SERVICE_HOST, value: \"127.0.0.1\"}}\n\
         \x20 - {{name: KUBERNETES_SERVICE_PORT, value: \"{api_port}\"}}\n\
         \x20 - {{name: AWS_REGION, value: us-east-1}}\n\
         \x20 - {{name: AWS_EC2_METADATA_DISABLED, value: \"true\"}}\n",
        node = node.name,
        taint = node.taint_key,
    )
}

/// `helm install` of charts/helios runs the operator as a container on the real node: with the
/// host network, tolerating the node's taints, authenticated by its own ServiceAccount token
/// (the volume the ServiceAccount admission plugin adds, projected by the kubelet), Ready by
/// its real readiness probe (/readyz on loopback), leading through the Lease, and reconciling
/// an AnomalyPipeline and a Detector to their children and status — the pipeline's ingest pod
/// and the Detector's detect pod, placed on the real node, run there as containers: the ingest
/// pod takes events, the detect pod scores them (`detect_pod`) —
/// with the chart's admission policy on; `kubectl logs` shows its log; `helm uninstall` stops
/// the container and removes what the chart installed.
#[test]
fn the_charts_operator_runs_as_a_pod_on_the_real_node() {
    let t0 = std::time::Instant::now();
    let node = node();
    node.env
        .require_reachable("Kafka", "KAFKA_BOOTSTRAP")
        .unwrap_or_else(|e| panic!("{e}"));
    node.kubectl
        .install_crds()
        .unwrap_or_else(|e| panic!("{e}"));
    let ns = node
        .kubectl
        .temp_namespace("node-operator")
        .unwrap_or_else(|e| panic!("{e}"));
    let name = format!("o{}", helios_e2e::kubectl::unique_suffix());
    let full = format!("{name}-helios");
    let port = helios_e2e::free_port().expect("a free port");
    let values = tempfile_path("operator-values.yaml");
    std::fs::write(&values, operator_on_node_values(&node, &ns.name, port)).expect("values");
    let chart = helios_e2e::repo_root().join("charts").join("helios");
    let chart = chart.to_string_lossy().into_owned();
    let values_arg = values.to_string_lossy().into_owned();
    let helm_bin = Helm::new(&node.env).unwrap_or_else(|e| panic!("{e}"));
    let _release = Release {
        helm: helm_bin.clone(),
        name: name.clone(),
        namespace: ns.name.clone(),
        timeout: "60s",
        finalizers: Some(&node.kubectl),
    };
    let (ok, out) = helm(
        &helm_bin,
        &["install", &name, &chart, "-n", &ns.name, "-f", &values_arg],
    );
    let _ = std::fs::remove_file(&values);
    assert!(ok, "helm install: {out}");

    // Ready: the kubelet ran the container and its readiness probe answered.
    let get = |args: &[&str]| {
        node.kubectl
            .ok(args, None)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let selector = format!("app.kubernetes.io/instance={name}");
    let rolled = node.kubectl.run(
        &[
            "rollout",
            "status",
            "-n",
            &ns.name,
            &format!("deployment/{full}"),
            "--timeout=120s",
        ],
        None,
    );
    if !matches!(&rolled, Ok(out) if out.success) {
        let pods = node
            .kubectl
            .ok(
                &["get", "pods", "-n", &ns.name, "-l", &selector, "-o", "json"],
                None,
            )
            .unwrap_or_default();
        let logs = node
            .kubectl
            .ok(
                &["logs", "-n", &ns.name, "-l", &selector, "--tail=50"],
                None,
            )
            .unwrap_or_default();
        panic!(
            "the operator Deployment did not become available within 120 s: {rolled:?}\n\
             pods: {pods}\nlogs:\n{logs}"
        );
    }
    let pod_name = node.only_pod(&ns.name, &selector);
    node.wait_pod(&ns.name, &pod_name, "condition=Ready", "60s");
    let hex = node.assert_runs_here(&ns.name, &pod_name);
    let pod = node.pod_json(&ns.name, &pod_name);
    assert_service_account_token(&pod, &full);
    assert_eq!(pod["status"]["podIP"], "127.0.0.1");
    // What the probe asked: /readyz on the pod's IP, here loopback.
    let readyz = http_get(port, "/readyz");
    assert!(
        readyz.lines().next().is_some_and(|l| l.contains(" 200 ")),
        "/readyz on 127.0.0.1:{port}: {readyz}"
    );

    // It leads: the Lease in the release namespace names the pod (a ready replica may still be
    // standing by: first the Lease appears, then its holder). The pod holds no credential but
    // its ServiceAccount token, so every write it makes is as that account.
    let operator_log = || {
        let log = node
            .kubectl
            .ok(&["logs", "-n", &ns.name, &pod_name, "--tail=80"], None)
            .unwrap_or_default();
        format!("operator log:\n{log}")
    };
    for condition in [
        "create".to_string(),
        format!("jsonpath={{.spec.holderIdentity}}={pod_name}"),
    ] {
        node.wait_object(
            &ns.name,
            "lease/helios-operator",
            &condition,
            "60s",
            operator_log,
        );
    }

    // It reconciles: a pipeline and a detector get their children and their status; both
    // workloads are placed on the real node.
    let stack = |key| node.env.get(key).unwrap_or_else(|e| panic!("{e}"));
    let manifest = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: web-token}}\n\
         stringData: {{token: {INGEST_TOKEN}}}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{name: web-postgres}}\n\
         stringData: {{url: \"{database}\"}}\n---\n\
         apiVersion: helios.dev/v1alpha1\nkind: AnomalyPipeline\nmetadata:\n  name: web\nspec:\n\
         \x20 kafka:\n    bootstrapServers: \"{bootstrap}\"\n    topics:\n\
         \x20     events: {{partitions: 1, replicationFactor: 1}}\n\
         \x20     anomalies: {{partitions: 1, replicationFactor: 1}}\n\
         \x20   deletionPolicy: Delete\n  ingestion:\n    replicas: 1\n\
         \x20   authTokenSecretRef: {{name: web-token, key: token}}\n\
         \x20   placement: {placement}\n\
         \x20 storage:\n    postgresSecretRef: {{name: web-postgres, key: url}}\n---\n\
         {detector}",
        database = stack("DATABASE_URL"),
        bootstrap = stack("KAFKA_BOOTSTRAP"),
        placement = node.placement(),
        detector = detect_pod::detector(&node, "web"),
    );
    let applied = node
        .kubectl
        .run(&["apply", "-n", &ns.name, "-f", "-"], Some(&manifest))
        .expect("kubectl runs");
    assert!(applied.success, "kubectl apply: {}", applied.stderr);
    for (obj, condition) in [
        ("ap/web", "jsonpath={.status.observedGeneration}=1"),
        (
            "detector/latency",
            "jsonpath={.status.observedGeneration}=1",
        ),
        ("ap/web", "condition=Ready"),
        ("detector/latency", "condition=Ready"),
    ] {
        node.wait_object(&ns.name, obj, condition, "120s", operator_log);
    }
    get(&[
        "get",
        "deployment/web-ingest",
        "statefulset/latency-detect",
        "serviceaccount/latency-detect",
        "role/latency-detect",
        "rolebinding/latency-detect",
        "-n",
        &ns.name,
        "-o",
        "name",
    ]);

    // The ingest pod the operator rendered runs as a container on the real node (its placement:
    // the node's selector, taints and network), Ready by its own /readyz; the detect pod runs
    // there too, and scores the events the ingest pod takes.
    let ingest = node.only_pod(&ns.name, "app.kubernetes.io/component=ingest");
    node.assert_runs_here(&ns.name, &ingest);
    detect_pod::scores_the_ingested_events(&node, &ns.name, operator_log);

    // kubectl logs: the kubelet serves the container's log; nothing was refused.
    let logs = get(&["logs", "-n", &ns.name, &pod_name]);
    assert!(
        logs.lines().any(|l| l.starts_with('{')),
        "no JSON log lines from the operator pod:\n{logs}"
    );
    let denied: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("forbidden") || l.contains("Forbidden"))
        .collect();
    assert!(
        denied.is_empty(),
        "the operator hit RBAC or admission policy denials:\n{}",
        denied.join("\n")
    );

    // Deleting: the finalizer runs in the pod; then the release goes, and the container stops.
    let deleted = node
        .kubectl
        .run(
            &[
                "delete",
                "-n",
                &ns.name,
                "detector/latency",
                "ap/web",
                "--timeout=60s",
            ],
            None,
        )
        .expect("kubectl runs");
    assert!(
        deleted.success,
        "the pipeline and detector were not deleted within 60 s: {}\noperator log:\n{}",
        deleted.stderr,
        operator_log()
    );
    let (ok, out) = helm(
        &helm_bin,
        &[
            "uninstall",
            &name,
            "-n",
            &ns.name,
            "--wait",
            "--timeout",
            "60s",
        ],
    );
    assert!(ok, "helm uninstall: {out}");
    let gone = node
        .kubectl
        .run(
            &[
                "wait",
                "-n",
                &ns.name,
                &format!("pod/{pod_name}"),
                "--for=delete",
                "--timeout=60s",
            ],
            None,
        )
        .expect("kubectl runs");
    assert!(
        gone.success,
        "the operator pod was not deleted within 60 s: {}",
        gone.stderr
    );
    let left = get(&[
        "get",
        "deployment,serviceaccount,role,rolebinding,service",
        "-n",
        &ns.name,
        "-l",
        &selector,
        "-o",
        "name",
    ]);
    assert!(left.trim().is_empty(), "left by helm uninstall: {left}");
    let policy = node
        .kubectl
        .run(
            &["get", "validatingadmissionpolicy", &full, "-o", "name"],
            None,
        )
        .expect("kubectl runs");
    assert!(
        !policy.success && policy.stderr.contains("NotFound"),
        "the admission policy {full} is left: {} {}",
        policy.stdout,
        policy.stderr
    );
    let sock = node
        .env
        .get("CONTAINERD_ADDRESS")
        .unwrap_or_else(|e| panic!("{e}"));
    let tasks = Command::new("ctr")
        .args(["--address", sock, "--namespace", "k8s.io", "tasks", "ls"])
        .output()
        .expect("ctr runs");
    let tasks = String::from_utf8_lossy(&tasks.stdout).into_owned();
    assert!(
        !tasks
            .lines()
            .any(|l| l.starts_with(&hex) && l.contains("RUNNING")),
        "the operator's container {hex} still runs in containerd:\n{tasks}"
    );
    eprintln!(
        "the chart's operator on the real node: install to uninstall in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}
