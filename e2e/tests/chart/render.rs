//! Offline checks of the chart: its CRDs, version, rules, lint, the rendered objects and the
//! values schema.

use super::*;

#[test]
fn chart_crds_are_byte_identical_to_the_generated_crds() {
    let generated = repo_root().join("crds").join("yaml");
    let packaged = chart_dir().join("crds");
    let names = |dir: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(&generated),
        names(&packaged),
        "charts/helios/crds must hold exactly the files of crds/yaml; \
         fix with: cp crds/yaml/*.yaml charts/helios/crds/"
    );
    for name in names(&generated) {
        let a = std::fs::read(generated.join(&name)).expect("read generated CRD");
        let b = std::fs::read(packaged.join(&name)).expect("read packaged CRD");
        assert!(
            a == b,
            "charts/helios/crds/{name} differs from crds/yaml/{name}; \
             fix with: cp crds/yaml/*.yaml charts/helios/crds/"
        );
    }
}

#[test]
fn chart_app_version_is_the_workspace_version() {
    let text = std::fs::read_to_string(chart_dir().join("Chart.yaml")).expect("read Chart.yaml");
    let chart: Value = serde_yaml::from_str(&text).expect("Chart.yaml parses");
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(
        chart["appVersion"].as_str(),
        Some(workspace_version().as_str()),
        "Chart.yaml appVersion must equal the workspace version in Cargo.toml"
    );
}

#[test]
fn chart_prometheus_rules_are_the_deploy_alerts() {
    let a = std::fs::read(repo_root().join("deploy/prometheus/alerts.yaml")).expect("alerts");
    let b = std::fs::read(chart_dir().join("files/alerts.yaml")).expect("chart alerts");
    assert!(
        a == b,
        "charts/helios/files/alerts.yaml differs from deploy/prometheus/alerts.yaml; \
         fix with: cp deploy/prometheus/alerts.yaml charts/helios/files/alerts.yaml"
    );
}

#[test]
fn helm_lint_strict_is_clean() {
    let env = stack();
    let chart = chart();
    for extra in [
        vec![],
        vec!["--set", "watchNamespace=shop"],
        vec![
            "--set",
            "serviceMonitor.enabled=true,podMonitor.enabled=true,prometheusRule.enabled=true",
        ],
        vec![
            "--set",
            "networkPolicy.enabled=true,networkPolicy.egressAll=false",
        ],
        vec!["--set", "replicaCount=1,rbac.workerIdentities=false"],
    ] {
        let mut args = vec!["lint", "--strict", chart.as_str()];
        args.extend_from_slice(&extra);
        let out = helm(&env, &args);
        assert!(
            out.contains("0 chart(s) failed") && !out.contains("[WARNING]"),
            "helm lint --strict {extra:?}:\n{out}"
        );
    }
}

#[test]
fn helm_template_defaults_render_a_hardened_operator_with_cluster_rbac() {
    let env = stack();
    let docs = render(&env, &[]);
    let deploy = must(&docs, "Deployment", "rel-helios");
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(deploy["metadata"]["namespace"], "helios-system");
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "rel-helios");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = &pod["containers"][0];
    let image = format!("ghcr.io/helios-dev/helios:{}", workspace_version());
    assert_eq!(c["image"].as_str(), Some(image.as_str()));
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args.first(), Some(&"operator"), "{args:?}");
    for want in [
        format!("--worker-image={image}"),
        "--metrics-addr=0.0.0.0:8080".into(),
        "--leader-election-namespace=helios-system".into(),
        "--lease-name=helios-operator".into(),
    ] {
        assert!(args.contains(&want.as_str()), "{want} not in {args:?}");
    }
    assert!(
        !args.iter().any(|a| a.starts_with("--namespace")),
        "{args:?}"
    );
    let env_var = |name: &str| {
        c["env"]
            .as_array()
            .and_then(|e| e.iter().find(|v| v["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("env {name} missing in {}", c["env"]))
    };
    assert_eq!(
        env_var("POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        env_var("POD_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"][0], "ALL");
    assert!(c["resources"]["requests"]["cpu"].is_string());

    let role = must(&docs, "ClusterRole", "rel-helios");
    let binding = must(&docs, "ClusterRoleBinding", "rel-helios");
    assert_eq!(binding["subjects"][0]["name"], "rel-helios");
    assert_eq!(binding["subjects"][0]["namespace"], "helios-system");
    let crud = sorted(&[
        "get", "list", "watch", "create", "patch", "update", "delete",
    ]);
    assert_eq!(
        verbs(role, "helios.dev", "anomalypipelines"),
        sorted(&["get", "list", "watch", "patch", "update"])
    );
    assert_eq!(
        verbs(role, "helios.dev", "detectors/status"),
        sorted(&["get", "patch", "update"])
    );
    assert_eq!(
        verbs(role, "helios.dev", "anomalypipelines/finalizers"),
        ["update"]
    );
    assert_eq!(verbs(role, "apps", "statefulsets"), crud);
    assert_eq!(verbs(role, "", "configmaps"), crud);
    assert_eq!(verbs(role, "policy", "poddisruptionbudgets"), crud);
    assert_eq!(
        verbs(role, "", "secrets"),
        ["get"],
        "Secrets are read by name only"
    );
    assert_eq!(
        verbs(role, "events.k8s.io", "events"),
        sorted(&["create", "patch"])
    );
    assert_eq!(verbs(role, "rbac.authorization.k8s.io", "roles"), crud);
    for escalating in ["bind", "escalate", "impersonate", "*"] {
        let text = role["rules"].to_string();
        assert!(!text.contains(&format!("\"{escalating}\"")), "{text}");
    }
    assert!(verbs(role, "coordination.k8s.io", "leases").is_empty());
    let lease = must(&docs, "Role", "rel-helios-leader-election");
    assert_eq!(lease["metadata"]["namespace"], "helios-system");
    assert_eq!(
        verbs(lease, "coordination.k8s.io", "leases"),
        sorted(&["create", "get", "patch", "update"])
    );
    must(&docs, "RoleBinding", "rel-helios-leader-election");
    must(&docs, "ServiceAccount", "rel-helios");
    let svc = must(&docs, "Service", "rel-helios-metrics");
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
    let pdb = must(&docs, "PodDisruptionBudget", "rel-helios");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let k = kinds(&docs);
    for absent in [
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "NetworkPolicy",
    ] {
        assert!(
            !k.iter().any(|x| x == absent),
            "{absent} rendered by default"
        );
    }

    // Without worker identities, ServiceAccounts/Roles/RoleBindings may only be listed and
    // deleted (what an install with them left behind); one replica has no PDB.
    let docs = render(
        &env,
        &["--set", "rbac.workerIdentities=false,replicaCount=1"],
    );
    let role = must(&docs, "ClusterRole", "rel-helios");
    for (group, kind) in [
        ("", "serviceaccounts"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "rolebindings"),
    ] {
        assert_eq!(verbs(role, group, kind), ["delete", "list"], "{kind}");
    }
    assert!(find(&docs, "PodDisruptionBudget", "rel-helios").is_none());
}

#[test]
fn helm_template_with_watch_namespace_renders_namespaced_rbac() {
    let env = stack();
    let docs = render(
        &env,
        &[
            "--set",
            "watchNamespace=shop,image.tag=1.2.3,workerImage=registry.example/helios-worker:9",
        ],
    );
    let k = kinds(&docs);
    assert!(
        !k.iter()
            .any(|x| x == "ClusterRole" || x == "ClusterRoleBinding"),
        "{k:?}"
    );
    let role = must(&docs, "Role", "rel-helios");
    assert_eq!(role["metadata"]["namespace"], "shop");
    assert_eq!(verbs(role, "apps", "deployments").len(), 7);
    let binding = must(&docs, "RoleBinding", "rel-helios");
    assert_eq!(binding["metadata"]["namespace"], "shop");
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["subjects"][0]["namespace"], "helios-system");
    let c = &must(&docs, "Deployment", "rel-helios")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "ghcr.io/helios-dev/helios:1.2.3");
    let args = c["args"].to_string();
    assert!(args.contains("\"--namespace=shop\""), "{args}");
    assert!(
        args.contains("\"--worker-image=registry.example/helios-worker:9\""),
        "{args}"
    );
}

/// hostNetwork (the operator on a node without a pod network, as on the stack's real node):
/// the metrics server listens on the pod's IP (the node's address), not on every interface of
/// the node, and cluster DNS still resolves; extra volumes and mounts follow the chart's own.
#[test]
fn helm_template_with_host_network_listens_on_the_pod_ip() {
    let env = stack();
    let docs = render(
        &env,
        &[
            "--set",
            "hostNetwork=true,metrics.port=9471",
            "--set-json",
            r#"extraVolumes=[{"name":"ca","configMap":{"name":"ca-bundle"}}]"#,
            "--set-json",
            r#"extraVolumeMounts=[{"name":"ca","mountPath":"/etc/ca","readOnly":true}]"#,
        ],
    );
    let pod = &must(&docs, "Deployment", "rel-helios")["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet");
    let c = &pod["containers"][0];
    let args = c["args"].to_string();
    assert!(args.contains("\"--metrics-addr=$(POD_IP):9471\""), "{args}");
    let pod_ip = c["env"]
        .as_array()
        .and_then(|e| e.iter().find(|v| v["name"] == "POD_IP"))
        .unwrap_or_else(|| panic!("env POD_IP missing in {}", c["env"]));
    assert_eq!(pod_ip["valueFrom"]["fieldRef"]["fieldPath"], "status.podIP");
    assert_eq!(c["ports"][0]["containerPort"], 9471);
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(names(&pod["volumes"]), ["tmp", "ca"]);
    assert_eq!(names(&c["volumeMounts"]), ["tmp", "ca"]);
    assert_eq!(c["volumeMounts"][1]["mountPath"], "/etc/ca");

    // Off by default: no host network, metrics on every interface of the pod's own network.
    let docs = render(&env, &[]);
    let pod = &must(&docs, "Deployment", "rel-helios")["spec"]["template"]["spec"];
    assert!(pod.get("hostNetwork").is_none(), "{pod}");
    assert!(
        pod["containers"][0]["args"]
            .to_string()
            .contains("\"--metrics-addr=0.0.0.0:8080\""),
        "{}",
        pod["containers"][0]["args"]
    );
}

/// `workers.apiServer` (a cluster without kube-proxy): the operator is told the API server's
/// host and port for the worker pods it renders; an empty host (the default) passes nothing.
#[test]
fn helm_template_passes_the_worker_api_server_only_when_set() {
    let env = stack();
    let worker_api_args = |extra: &[&str]| -> Vec<String> {
        let docs = render(&env, extra);
        must(&docs, "Deployment", "rel-helios")["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|a| a.starts_with("--worker-api-server-"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        worker_api_args(&["--set", "workers.apiServer.host=10.0.0.1"]),
        [
            "--worker-api-server-host=10.0.0.1",
            "--worker-api-server-port=443"
        ]
    );
    assert_eq!(
        worker_api_args(&[
            "--set",
            "workers.apiServer.host=api.internal,workers.apiServer.port=6443"
        ]),
        [
            "--worker-api-server-host=api.internal",
            "--worker-api-server-port=6443"
        ]
    );
    assert_eq!(worker_api_args(&[]), Vec::<String>::new());
}

/// The CEL expressions of a rendered policy's validations, joined, and their messages.
fn validations(policy: &Value) -> (String, Vec<String>) {
    let list = policy["spec"]["validations"]
        .as_array()
        .unwrap_or_else(|| panic!("no validations in {policy}"));
    let expressions = list
        .iter()
        .filter_map(|v| v["expression"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let messages = list
        .iter()
        .map(|v| v["message"].as_str().unwrap_or_default().to_string())
        .collect();
    (expressions, messages)
}

#[test]
fn helm_template_renders_the_admission_policy_for_the_operator_identity_only() {
    let env = stack();
    let docs = render(&env, &[]);
    let policy = must(&docs, "ValidatingAdmissionPolicy", "rel-helios");
    assert_eq!(policy["apiVersion"], "admissionregistration.k8s.io/v1");
    assert_eq!(policy["spec"]["failurePolicy"], "Fail");
    let binding = must(&docs, "ValidatingAdmissionPolicyBinding", "rel-helios");
    assert_eq!(binding["spec"]["policyName"], "rel-helios");
    assert_eq!(
        binding["spec"]["validationActions"],
        serde_json::json!(["Deny"])
    );
    assert!(
        binding["spec"]["matchResources"].is_null() && binding["spec"]["paramRef"].is_null(),
        "the binding narrows nothing (the policy's matchConditions do): {binding}"
    );

    // Only the operator's ServiceAccount, named by the chart's helper.
    let conditions = policy["spec"]["matchConditions"]
        .as_array()
        .expect("matchConditions");
    assert_eq!(conditions.len(), 1, "{conditions:?}");
    assert_eq!(
        conditions[0]["expression"],
        "request.userInfo.username == 'system:serviceaccount:helios-system:rel-helios'"
    );

    // Exactly the child kinds, every write, no subresource (status, Events, the Lease and the
    // CRs' finalizers stay RBAC's alone).
    let mut matched: Vec<String> = Vec::new();
    for rule in policy["spec"]["matchConstraints"]["resourceRules"]
        .as_array()
        .expect("resourceRules")
    {
        assert_eq!(
            rule["operations"],
            serde_json::json!(["CREATE", "UPDATE", "DELETE"]),
            "{rule}"
        );
        assert_eq!(rule["apiVersions"], serde_json::json!(["*"]), "{rule}");
        let groups = rule["apiGroups"].as_array().expect("apiGroups");
        assert_eq!(groups.len(), 1, "{rule}");
        for resource in rule["resources"].as_array().expect("resources") {
            let group = groups[0].as_str().unwrap_or_default();
            matched.push(format!("{group}/{}", resource.as_str().unwrap_or_default()));
        }
    }
    matched.sort();
    assert_eq!(
        matched,
        sorted(&[
            "/configmaps",
            "/serviceaccounts",
            "/services",
            "apps/deployments",
            "apps/statefulsets",
            "policy/poddisruptionbudgets",
            "rbac.authorization.k8s.io/rolebindings",
            "rbac.authorization.k8s.io/roles",
        ])
    );

    // The rules, each with a message naming the field it refuses.
    let (cel, messages) = validations(policy);
    for want in [
        "'app.kubernetes.io/managed-by'",
        "== 'helios-operator'",
        "startsWith('helios.dev/')",
        "r.controller == true",
        "request.operation == 'DELETE' ? oldObject : object",
        "serviceAccountName == object.metadata.name",
        "endsWith('-detect')",
        "automountServiceAccountToken == false",
    ] {
        assert!(
            cel.contains(want) || policy["spec"]["variables"].to_string().contains(want),
            "{want} not in the policy"
        );
    }
    for field in [
        "metadata.labels:",
        "metadata.ownerReferences:",
        "spec.template.spec.serviceAccountName",
        "spec.template.spec.volumes:",
        "spec.template.spec.hostNetwork:",
        "rules:",
        "roleRef/subjects:",
    ] {
        assert!(
            messages.iter().any(|m| m.starts_with(field)),
            "no message names {field}: {messages:#?}"
        );
    }
    assert!(
        !cel.contains("request.namespace =="),
        "a cluster-wide install is not limited to one namespace"
    );

    // A named ServiceAccount and a watched namespace follow the chart's helper and RBAC.
    let docs = render(
        &env,
        &["--set", "serviceAccount.name=ops,watchNamespace=shop"],
    );
    let policy = must(&docs, "ValidatingAdmissionPolicy", "rel-helios");
    assert_eq!(
        policy["spec"]["matchConditions"][0]["expression"],
        "request.userInfo.username == 'system:serviceaccount:helios-system:ops'"
    );
    let (cel, messages) = validations(policy);
    assert!(cel.contains("request.namespace == 'shop'"), "{cel}");
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("metadata.namespace:") && m.contains("shop")),
        "{messages:#?}"
    );

    let docs = render(&env, &["--set", "admissionPolicy.allowHostNetwork=true"]);
    let (_, messages) = validations(must(&docs, "ValidatingAdmissionPolicy", "rel-helios"));
    assert!(
        !messages
            .iter()
            .any(|m| m.starts_with("spec.template.spec.hostNetwork:")),
        "allowHostNetwork=true still refuses the host network: {messages:#?}"
    );

    let docs = render(&env, &["--set", "admissionPolicy.enabled=false"]);
    let k = kinds(&docs);
    assert!(
        !k.iter().any(|x| x.starts_with("ValidatingAdmissionPolicy")),
        "rendered with admissionPolicy.enabled=false: {k:?}"
    );
}

#[test]
fn helm_template_renders_monitoring_only_when_the_api_exists() {
    let env = stack();
    let on = "serviceMonitor.enabled=true,podMonitor.enabled=true,prometheusRule.enabled=true";
    let without = render(&env, &["--set", on]);
    let k = kinds(&without);
    assert!(
        !k.iter()
            .any(|x| x == "ServiceMonitor" || x == "PrometheusRule"),
        "monitoring objects rendered although monitoring.coreos.com/v1 is not served: {k:?}"
    );
    let with = render(
        &env,
        &["--set", on, "--api-versions", "monitoring.coreos.com/v1"],
    );
    let sm = must(&with, "ServiceMonitor", "rel-helios");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    must(&with, "PodMonitor", "rel-helios-workers");
    let rule = must(&with, "PrometheusRule", "rel-helios");
    let alerts: Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/prometheus/alerts.yaml"))
            .expect("alerts.yaml"),
    )
    .expect("alerts.yaml parses");
    assert_eq!(
        rule["spec"], alerts,
        "PrometheusRule spec is not alerts.yaml"
    );
}

#[test]
fn values_schema_refuses_bad_values_naming_the_field() {
    let env = stack();
    let chart = chart();
    for (set, field) in [
        ("replicaCount=two", "replicaCount"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        (
            "leaderElection.leaseDurationSeconds=0",
            "leaseDurationSeconds",
        ),
        ("metrics.port=70000", "port"),
        ("watchNamespace=Not_A_Namespace", "watchNamespace"),
        ("replicaCont=2", "replicaCont"),
        ("admissionPolicy.enabled=maybe", "admissionPolicy"),
        ("workers.apiServer.port=0", "apiServer"),
        ("workers.apiServer.host=a b", "apiServer"),
    ] {
        let out = helm_run(&env, &["template", "rel", chart.as_str(), "--set", set]);
        assert!(!out.success, "--set {set} was accepted:\n{}", out.stdout);
        assert!(
            out.stderr
                .contains("values don't meet the specifications of the schema")
                && out.stderr.contains(field),
            "--set {set}: the error does not name {field}:\n{}",
            out.stderr
        );
    }
    // `--set replicaCount=2` is an integer; a quoted string in a values file is not.
    let dir = TempDir::new("schema");
    let file = dir.path.join("bad.yaml");
    std::fs::write(&file, "replicaCount: \"two\"\n").expect("write values");
    let file = file.to_string_lossy().into_owned();
    let out = helm_run(&env, &["template", "rel", chart.as_str(), "-f", &file]);
    assert!(!out.success, "replicaCount: \"two\" was accepted");
    assert!(out.stderr.contains("/replicaCount"), "{}", out.stderr);
}
