//! The Helm chart (`charts/helios`): lint, render, schema, and install/upgrade/uninstall
//! against the real local API server; and proof that the RBAC it grants is enough for the real
//! operator binary (run with the chart's ServiceAccount token, not the admin token) and no more.
//!
//! Needs the local stack (`e2e/stack up`) and the `helios` binary of the same target directory
//! (`cargo build -p helios`;
//! `cargo test --workspace` builds it). Nothing here skips itself: a missing piece panics.

use helios_e2e::helm::{Helm, Release};
use helios_e2e::kubectl::{Kubectl, Output, TempNamespace, unique_suffix};
use helios_e2e::{StackEnv, repo_root};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CRDS: [&str; 2] = ["anomalypipelines.helios.dev", "detectors.helios.dev"];

fn stack() -> StackEnv {
    StackEnv::load().unwrap_or_else(|e| panic!("{e}"))
}

fn chart_dir() -> PathBuf {
    repo_root().join("charts").join("helios")
}

fn chart() -> String {
    chart_dir().to_string_lossy().into_owned()
}

/// Run the stack's helm (`helios_e2e::helm`); a missing helm fails the test.
fn helm_run(env: &StackEnv, args: &[&str]) -> Output {
    Helm::new(env)
        .and_then(|h| h.run(args).map_err(|e| format!("cannot run helm: {e}")))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Run helm and require success; returns stdout.
fn helm(env: &StackEnv, args: &[&str]) -> String {
    let out = helm_run(env, args);
    assert!(
        out.success,
        "helm {} failed:\n{}\n{}",
        args.join(" "),
        out.stderr,
        out.stdout
    );
    out.stdout
}

/// `helm template` with extra args, parsed into one JSON value per document.
fn render(env: &StackEnv, extra: &[&str]) -> Vec<Value> {
    let chart = chart();
    let mut args = vec![
        "template",
        "rel",
        chart.as_str(),
        "--namespace",
        "helios-system",
    ];
    args.extend_from_slice(extra);
    let text = helm(env, &args);
    parse_documents(&text)
}

fn parse_documents(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .filter_map(|doc| {
            let v = Value::deserialize(doc).unwrap_or_else(|e| panic!("bad YAML: {e}\n{text}"));
            (!v.is_null()).then_some(v)
        })
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

fn must<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    find(docs, kind, name).unwrap_or_else(|| {
        let have: Vec<String> = docs
            .iter()
            .map(|d| format!("{}/{}", d["kind"], d["metadata"]["name"]))
            .collect();
        panic!("no {kind}/{name} rendered; have {have:?}")
    })
}

fn kinds(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .filter_map(|d| d["kind"].as_str().map(str::to_string))
        .collect()
}

/// The verbs a rendered role grants on `group`/`resource` (union of its rules).
fn verbs(role: &Value, group: &str, resource: &str) -> Vec<String> {
    let mut out: Vec<String> = role["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            r["apiGroups"]
                .as_array()
                .is_some_and(|g| g.iter().any(|g| g == group))
                && r["resources"]
                    .as_array()
                    .is_some_and(|rs| rs.iter().any(|x| x == resource))
        })
        .flat_map(|r| r["verbs"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn workspace_version() -> String {
    let text = std::fs::read_to_string(repo_root().join("Cargo.toml")).expect("read Cargo.toml");
    let section = text
        .split("[workspace.package]")
        .nth(1)
        .expect("[workspace.package] in Cargo.toml");
    section
        .lines()
        .find_map(|l| {
            let l = l.trim();
            l.strip_prefix("version").map(|r| {
                r.trim_start_matches([' ', '='])
                    .trim_matches('"')
                    .to_string()
            })
        })
        .expect("version in [workspace.package]")
}

// ---- offline checks of the chart ------------------------------------------------------------

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

// ---- against the real API server ------------------------------------------------------------

fn crd_uid(kubectl: &Kubectl, name: &str) -> String {
    kubectl
        .ok(
            &["get", "crd", name, "-o", "jsonpath={.metadata.uid}"],
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Uninstalls the release `name` in `namespace` when dropped (after a failure too), with
/// helm's own uninstall timeout.
fn release<'a>(env: &StackEnv, name: &str, namespace: &str) -> Release<'a> {
    Release {
        helm: Helm::new(env).unwrap_or_else(|e| panic!("{e}")),
        name: name.to_string(),
        namespace: namespace.to_string(),
        timeout: "5m0s",
        finalizers: None,
    }
}

/// The start of the refusal by the release's admission policy (full name `policy`).
fn refused_by(policy: &str) -> String {
    format!("ValidatingAdmissionPolicy '{policy}' with binding '{policy}' denied request")
}

/// Wait until the API server enforces the admission policy `policy` for `user` (a new policy
/// is loaded asynchronously): a server-side dry run of an unmanaged ConfigMap in `namespace`,
/// which RBAC allows the user, is refused by the policy.
fn wait_for_policy(kubectl: &Kubectl, policy: &str, user: &str, namespace: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = kubectl
            .run(
                &[
                    "create",
                    "configmap",
                    "policy-probe",
                    "-n",
                    namespace,
                    "--dry-run=server",
                    "--as",
                    user,
                ],
                None,
            )
            .expect("kubectl runs");
        if !out.success && out.stderr.contains(&refused_by(policy)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the admission policy {policy} is not enforced for {user} within 60 s: \
             success={}, {}",
            out.success,
            out.stderr
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A Deployment as the operator renders one (labelled, controlled by a helios.dev resource),
/// with `pod` as its pod spec's extra fields.
fn managed_deployment(name: &str, pod: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n\
         \x20 labels: {{app.kubernetes.io/managed-by: helios-operator}}\n\
         \x20 ownerReferences: [{{apiVersion: helios.dev/v1alpha1, kind: AnomalyPipeline, \
         name: p, uid: 00000000-0000-0000-0000-000000000001, controller: true}}]\n\
         spec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n\
         \x20   metadata: {{labels: {{app: {name}}}}}\n    spec:\n\
         \x20     containers: [{{name: c, image: registry.invalid/x}}]\n\
         \x20     automountServiceAccountToken: false\n{pod}"
    )
}

#[test]
fn helm_install_upgrade_uninstall_against_the_api_server() {
    let env = stack();
    let kubectl = Kubectl::new(&env).unwrap_or_else(|e| panic!("{e}"));
    // Other suites install the same CRDs with `kubectl apply --server-side`; the chart must
    // coexist with them: Helm skips CRDs that exist and never deletes them.
    kubectl.install_crds().unwrap_or_else(|e| panic!("{e}"));
    let uids: Vec<String> = CRDS.iter().map(|c| crd_uid(&kubectl, c)).collect();
    let ns = kubectl
        .temp_namespace("chart")
        .unwrap_or_else(|e| panic!("{e}"));
    let name = format!("h{}", unique_suffix());
    let full = format!("{name}-helios");
    let chart = chart();
    let release = release(&env, &name, &ns.name);
    let out = helm(
        &env,
        &[
            "install",
            &name,
            chart.as_str(),
            "-n",
            &ns.name,
            "--wait",
            "--timeout",
            "120s",
        ],
    );
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert!(
        out.contains("kubectl -n shop wait --for=condition=Ready"),
        "NOTES: {out}"
    );

    let get = |args: &[&str]| kubectl.ok(args, None).unwrap_or_else(|e| panic!("{e}"));
    let ready = get(&[
        "get",
        "deployment",
        &full,
        "-n",
        &ns.name,
        "-o",
        "jsonpath={.status.readyReplicas}",
    ]);
    assert_eq!(ready, "2", "operator Deployment not 2/2 ready after --wait");
    for obj in [
        format!("serviceaccount/{full}"),
        format!("service/{full}-metrics"),
        format!("role/{full}-leader-election"),
        format!("rolebinding/{full}-leader-election"),
        format!("poddisruptionbudget/{full}"),
    ] {
        get(&["get", &obj, "-n", &ns.name, "-o", "name"]);
    }
    get(&["get", &format!("clusterrole/{full}"), "-o", "name"]);
    get(&["get", &format!("clusterrolebinding/{full}"), "-o", "name"]);
    for (crd, uid) in CRDS.iter().zip(&uids) {
        let established = get(&[
            "get",
            "crd",
            crd,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
        ]);
        assert_eq!(established, "True", "{crd} not Established");
        assert_eq!(
            &crd_uid(&kubectl, crd),
            uid,
            "{crd} was replaced by helm install"
        );
    }
    // The ServiceAccount's permissions as the API server evaluates them.
    let sa = format!("system:serviceaccount:{}:{full}", ns.name);
    let can = |args: &[&str]| {
        let mut a = vec!["auth", "can-i"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--as", &sa]);
        kubectl
            .run(&a, None)
            .map(|o| o.stdout.trim().to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        can(&[
            "patch",
            "anomalypipelines.helios.dev",
            "--subresource=status",
            "-n",
            "default"
        ]),
        "yes"
    );
    assert_eq!(
        can(&["create", "statefulsets.apps", "-n", "default"]),
        "yes"
    );
    assert_eq!(can(&["get", "secrets", "-n", "default"]), "yes");
    assert_eq!(can(&["list", "secrets", "-n", "default"]), "no");
    assert_eq!(
        can(&["create", "anomalypipelines.helios.dev", "-n", "default"]),
        "no"
    );
    assert_eq!(can(&["delete", "namespaces"]), "no");
    assert_eq!(
        can(&[
            "update",
            "leases.coordination.k8s.io/helios-operator",
            "-n",
            &ns.name
        ]),
        "yes"
    );
    assert_eq!(
        can(&["update", "leases.coordination.k8s.io/other", "-n", &ns.name]),
        "no"
    );

    // RBAC alone lets the operator's identity write workloads anywhere, kube-system included;
    // the admission policy refuses whatever is not a Helios child.
    get(&["get", "validatingadmissionpolicy", &full, "-o", "name"]);
    get(&[
        "get",
        "validatingadmissionpolicybinding",
        &full,
        "-o",
        "name",
    ]);
    assert_eq!(
        can(&["create", "deployments.apps", "-n", "kube-system"]),
        "yes"
    );
    assert_eq!(can(&["delete", "configmaps", "-n", "kube-system"]), "yes");
    wait_for_policy(&kubectl, &full, &sa, &ns.name);
    let refused = refused_by(&full);
    let probe = format!("x{}", unique_suffix());
    let out = kubectl
        .run(
            &[
                "create",
                "deployment",
                &probe,
                "--image=registry.invalid/x",
                "-n",
                "kube-system",
                "--as",
                &sa,
            ],
            None,
        )
        .expect("kubectl runs");
    if out.success {
        let _ = kubectl.run(&["delete", "deployment", &probe, "-n", "kube-system"], None);
    }
    assert!(
        !out.success
            && out.stderr.contains(&refused)
            && out.stderr.contains(
                "metadata.labels: the Helios operator may only write objects labelled \
                 app.kubernetes.io/managed-by=helios-operator"
            ),
        "an unmanaged Deployment in kube-system was not refused by the policy: {}{}",
        out.stdout,
        out.stderr
    );
    // Labelled and owned like a child, but with a ServiceAccount of kube-system (dry run: the
    // identity rule, not the API server's defaults, decides).
    let apply_as_operator = |namespace: &str, manifest: &str| {
        kubectl
            .run(
                &[
                    "apply",
                    "--dry-run=server",
                    "-n",
                    namespace,
                    "--as",
                    &sa,
                    "-f",
                    "-",
                ],
                Some(manifest),
            )
            .expect("kubectl runs")
    };
    // A child whose pod spec has `extra` is refused by the policy, naming `field`.
    let refused_child = |extra: &str, field: &str, what: &str| {
        let out = apply_as_operator("kube-system", &managed_deployment(&probe, extra));
        assert!(
            !out.success && out.stderr.contains(&refused) && out.stderr.contains(field),
            "{what} was not refused: {}{}",
            out.stdout,
            out.stderr
        );
    };
    refused_child(
        "      serviceAccountName: clusterrole-aggregation-controller\n",
        "spec.template.spec.serviceAccountName",
        "a child running as a kube-system ServiceAccount",
    );
    // On the node's network: refused unless the chart allows it (admissionPolicy.allowHostNetwork).
    refused_child(
        "      hostNetwork: true\n",
        "spec.template.spec.hostNetwork",
        "a child on the host network",
    );
    let out = apply_as_operator("kube-system", &managed_deployment(&probe, ""));
    assert!(
        out.success,
        "a child as the operator renders it was refused: {}",
        out.stderr
    );
    // Update and delete: never someone else's object, not even to take it over.
    get(&["create", "configmap", "unmanaged", "-n", &ns.name]);
    let out = kubectl
        .run(
            &[
                "patch",
                "configmap",
                "unmanaged",
                "-n",
                &ns.name,
                "--as",
                &sa,
                "--type",
                "merge",
                "-p",
                r#"{"metadata":{"labels":{"app.kubernetes.io/managed-by":"helios-operator"},
                   "ownerReferences":[{"apiVersion":"helios.dev/v1alpha1",
                   "kind":"AnomalyPipeline","name":"p",
                   "uid":"00000000-0000-0000-0000-000000000001","controller":true}]}}"#,
            ],
            None,
        )
        .expect("kubectl runs");
    assert!(
        !out.success
            && out.stderr.contains(&refused)
            && out
                .stderr
                .contains("may not take over an object it does not manage"),
        "the operator's identity took over an unmanaged ConfigMap: {}{}",
        out.stdout,
        out.stderr
    );
    let out = kubectl
        .run(
            &[
                "delete",
                "configmap",
                "unmanaged",
                "-n",
                &ns.name,
                "--as",
                &sa,
            ],
            None,
        )
        .expect("kubectl runs");
    assert!(
        !out.success && out.stderr.contains(&refused) && out.stderr.contains("metadata.labels"),
        "the operator's identity deleted an unmanaged ConfigMap: {}{}",
        out.stdout,
        out.stderr
    );

    // Upgrade: one replica, the PDB goes away.
    helm(
        &env,
        &[
            "upgrade",
            &name,
            chart.as_str(),
            "-n",
            &ns.name,
            "--reuse-values",
            "--set",
            "replicaCount=1",
            "--wait",
            "--timeout",
            "120s",
        ],
    );
    let replicas = get(&[
        "get",
        "deployment",
        &full,
        "-n",
        &ns.name,
        "-o",
        "jsonpath={.spec.replicas}/{.status.readyReplicas}",
    ]);
    assert_eq!(replicas, "1/1");
    let pdb = kubectl
        .run(&["get", "pdb", &full, "-n", &ns.name], None)
        .expect("kubectl runs");
    assert!(!pdb.success, "the PDB survived replicaCount=1");

    helm(&env, &["uninstall", &name, "-n", &ns.name, "--wait"]);
    std::mem::forget(release);
    let left = get(&[
        "get",
        "deployment,serviceaccount,service,role,rolebinding,poddisruptionbudget",
        "-n",
        &ns.name,
        "-l",
        &format!("app.kubernetes.io/instance={name}"),
        "-o",
        "name",
    ]);
    assert!(left.trim().is_empty(), "left after uninstall: {left}");
    let cluster_left = get(&[
        "get",
        "clusterrole,clusterrolebinding,validatingadmissionpolicy,\
         validatingadmissionpolicybinding",
        "-l",
        &format!("app.kubernetes.io/instance={name}"),
        "-o",
        "name",
    ]);
    assert!(
        cluster_left.trim().is_empty(),
        "left after uninstall: {cluster_left}"
    );
    for (crd, uid) in CRDS.iter().zip(&uids) {
        assert_eq!(
            &crd_uid(&kubectl, crd),
            uid,
            "{crd} was deleted or replaced by helm uninstall"
        );
    }
}

// ---- the chart's RBAC runs the real operator ------------------------------------------------

/// A scratch directory removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!("helios-{prefix}-{}", unique_suffix()));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The operator process: killed on drop; then any finalizer it left on the pipelines of its
/// namespace is removed so the namespace can be deleted.
struct Operator {
    child: Child,
    log: PathBuf,
    kubectl: Kubectl,
    namespace: String,
}

impl Operator {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the operator exited ({status}); its log:\n{}", self.log());
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.kubectl.drop_finalizers("ap", &self.namespace);
    }
}

/// `helios` beside this test binary (`<target>/debug/deps/chart-*` → `<target>/debug/helios`),
/// whatever the target directory is.
fn helios_binary() -> PathBuf {
    let bin = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(|d| d.join("helios")))
        .unwrap_or_else(|| repo_root().join("target").join("debug").join("helios"));
    assert!(
        bin.is_file(),
        "{} is missing: run cargo build -p helios first (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

/// A kubeconfig for the same server and CA as the stack's, authenticating with `token`.
fn token_kubeconfig(kubectl: &Kubectl, token: &str, namespace: &str) -> String {
    let field = |path: &str| {
        kubectl
            .ok(
                &[
                    "config",
                    "view",
                    "--raw",
                    "--minify",
                    "-o",
                    &format!("jsonpath={path}"),
                ],
                None,
            )
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let server = field("{.clusters[0].cluster.server}");
    let ca = field("{.clusters[0].cluster.certificate-authority-data}");
    assert!(
        !server.is_empty() && !ca.is_empty(),
        "the stack's kubeconfig has no server or inline CA"
    );
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: stack\n  cluster:\n    server: {server}\n\
         \x20   certificate-authority-data: {ca}\nusers:\n- name: operator\n  user:\n    token: {token}\n\
         contexts:\n- name: operator\n  context:\n    cluster: stack\n    user: operator\n\
         \x20   namespace: {namespace}\ncurrent-context: operator\n"
    )
}

fn pipeline(name: &str, bootstrap: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}-token}}\n\
         stringData: {{token: t0k3n-{name}}}\n---\n\
         apiVersion: helios.dev/v1alpha1\nkind: AnomalyPipeline\nmetadata:\n  name: {name}\nspec:\n\
         \x20 kafka:\n    bootstrapServers: \"{bootstrap}\"\n    topics:\n\
         \x20     events: {{partitions: 1, replicationFactor: 1}}\n\
         \x20     anomalies: {{partitions: 1, replicationFactor: 1}}\n\
         \x20   deletionPolicy: Delete\n  ingestion:\n    replicas: 1\n\
         \x20   authTokenSecretRef: {{name: {name}-token, key: token}}\n"
    )
}

fn condition(kubectl: &Kubectl, ns: &str, obj: &str, type_: &str) -> String {
    kubectl
        .ok(
            &[
                "get",
                obj,
                "-n",
                ns,
                "-o",
                &format!("jsonpath={{.status.conditions[?(@.type==\"{type_}\")].status}}"),
            ],
            None,
        )
        .unwrap_or_default()
}

/// Install the chart scoped to one namespace (Role, not ClusterRole), with its admission
/// policy enforced for the operator's identity, then run the real operator as that
/// ServiceAccount: it elects itself, creates the topics, the ingest Deployment, the Detectors'
/// StatefulSets and pod identities (ServiceAccount, Role, RoleBinding; one hashed long name),
/// brings them to Ready, writes status, creates and deletes a PodDisruptionBudget, adds and
/// removes its finalizer, and nothing it writes is refused. And the identity cannot read
/// Secrets outside its namespace nor list them inside it, nor write there what is not a child.
#[test]
fn chart_rbac_is_enough_for_the_real_operator_and_no_more() {
    let env = stack();
    let kubectl = Kubectl::new(&env).unwrap_or_else(|e| panic!("{e}"));
    env.require_reachable("Kafka", "KAFKA_BOOTSTRAP")
        .unwrap_or_else(|e| panic!("{e}"));
    let bin = helios_binary();
    kubectl.install_crds().unwrap_or_else(|e| panic!("{e}"));
    let ns: TempNamespace = kubectl
        .temp_namespace("chart-rbac")
        .unwrap_or_else(|e| panic!("{e}"));
    let other: TempNamespace = kubectl
        .temp_namespace("chart-other")
        .unwrap_or_else(|e| panic!("{e}"));
    let name = format!("r{}", unique_suffix());
    let full = format!("{name}-helios");
    let chart = chart();
    let _release = release(&env, &name, &ns.name);
    // The chart's pods are kwok fakes; replicas 0 keeps them out of the way of the real process.
    helm(
        &env,
        &[
            "install",
            &name,
            chart.as_str(),
            "-n",
            &ns.name,
            "--set",
            &format!("watchNamespace={},replicaCount=0", ns.name),
            "--wait",
            "--timeout",
            "120s",
        ],
    );

    let token = kubectl
        .ok(
            &["create", "token", &full, "-n", &ns.name, "--duration", "1h"],
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let token = token.trim();
    let dir = TempDir::new("chart-rbac");
    let kubeconfig = dir.path.join("kubeconfig");
    std::fs::write(&kubeconfig, token_kubeconfig(&kubectl, token, &ns.name))
        .expect("write kubeconfig");
    let as_operator = |args: &[&str]| {
        let out = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Not more: Secrets elsewhere, and listing Secrets at all, are forbidden.
    kubectl
        .ok(
            &[
                "create",
                "secret",
                "generic",
                "not-yours",
                "-n",
                &other.name,
                "--from-literal=k=v",
            ],
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let (ok, err) = as_operator(&["get", "secret", "not-yours", "-n", &other.name]);
    assert!(
        !ok && err.contains("Forbidden"),
        "read a Secret elsewhere: {err}"
    );
    let (ok, err) = as_operator(&["get", "secrets", "-n", &ns.name]);
    assert!(!ok && err.contains("Forbidden"), "listed Secrets: {err}");
    let (ok, err) = as_operator(&["get", "deployments", "-n", &other.name]);
    assert!(
        !ok && err.contains("Forbidden"),
        "read another namespace: {err}"
    );
    // The admission policy is enforced before the operator writes anything: in its own
    // namespace, where RBAC lets it create Deployments, an unmanaged one is refused.
    let user = format!("system:serviceaccount:{}:{full}", ns.name);
    wait_for_policy(&kubectl, &full, &user, &ns.name);
    let (ok, err) = as_operator(&[
        "create",
        "deployment",
        "not-a-child",
        "--image=registry.invalid/x",
        "-n",
        &ns.name,
    ]);
    assert!(
        !ok && err.contains(&refused_by(&full)) && err.contains("metadata.labels"),
        "an unmanaged Deployment was not refused by the policy: {err}"
    );

    let port = helios_e2e::free_port().expect("a free port");
    let log = dir.path.join("operator.log");
    let log_file = std::fs::File::create(&log).expect("create log");
    let kubeconfig_arg = kubeconfig.to_string_lossy().into_owned();
    let child = Command::new(&bin)
        .args([
            "operator",
            "--namespace",
            &ns.name,
            "--leader-election-namespace",
            &ns.name,
            "--kubeconfig",
            &kubeconfig_arg,
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
            "--identity",
            "chart-rbac-test",
            "--worker-image",
            "registry.invalid/helios:test",
        ])
        .env_remove("KUBECONFIG")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let mut op = Operator {
        child,
        log,
        kubectl: kubectl.clone(),
        namespace: ns.name.clone(),
    };

    // It leads (the Lease in its namespace names it).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        op.assert_running();
        let holder = kubectl
            .ok(
                &[
                    "get",
                    "lease",
                    "helios-operator",
                    "-n",
                    &ns.name,
                    "-o",
                    "jsonpath={.spec.holderIdentity}",
                ],
                None,
            )
            .unwrap_or_default();
        if holder == "chart-rbac-test" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the operator did not take the Lease within 60 s (holder {holder:?}); its log:\n{}",
            op.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let bootstrap = env.get("KAFKA_BOOTSTRAP").unwrap_or_else(|e| panic!("{e}"));
    kubectl
        .ok(
            &["apply", "-n", &ns.name, "-f", "-"],
            Some(&pipeline("web", bootstrap)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        op.assert_running();
        let topics = condition(&kubectl, &ns.name, "ap/web", "TopicsReady");
        let ingest = kubectl
            .run(
                &[
                    "get",
                    "deployment",
                    "web-ingest",
                    "-n",
                    &ns.name,
                    "-o",
                    "name",
                ],
                None,
            )
            .map(|o| o.success)
            .unwrap_or(false);
        if topics == "True" && ingest {
            break;
        }
        if Instant::now() > deadline {
            let status = kubectl
                .ok(
                    &[
                        "get",
                        "ap",
                        "web",
                        "-n",
                        &ns.name,
                        "-o",
                        "jsonpath={.status}",
                    ],
                    None,
                )
                .unwrap_or_default();
            panic!(
                "within 120 s: TopicsReady={topics:?}, deployment web-ingest exists: {ingest}\n\
                 status: {status}\noperator log:\n{}",
                op.log()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Detectors: their StatefulSets, Services, and the identity of their pods (ServiceAccount,
    // Role, RoleBinding), which the operator may only grant because it holds those permissions.
    // The second name is long enough for the hashed child names (no `-detect` suffix).
    let long = "latency-of-the-checkout-service-in-every-region-p99";
    kubectl
        .ok(
            &["apply", "-n", &ns.name, "-f", "-"],
            Some(&format!(
                "apiVersion: helios.dev/v1alpha1\nkind: Detector\nmetadata: {{name: latency}}\n\
                 spec: {{pipelineRef: {{name: web}}, features: [event_count, p99_latency]}}\n\
                 ---\napiVersion: helios.dev/v1alpha1\nkind: Detector\nmetadata: {{name: {long}}}\n\
                 spec: {{pipelineRef: {{name: web}}, features: [event_count]}}\n"
            )),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        op.assert_running();
        let detector = condition(&kubectl, &ns.name, "detector/latency", "Ready");
        let long_ready = condition(&kubectl, &ns.name, &format!("detector/{long}"), "Ready");
        let pipeline = condition(&kubectl, &ns.name, "ap/web", "Ready");
        let children = kubectl
            .run(
                &[
                    "get",
                    "statefulset/latency-detect",
                    "serviceaccount/latency-detect",
                    "role/latency-detect",
                    "rolebinding/latency-detect",
                    "-n",
                    &ns.name,
                    "-o",
                    "name",
                ],
                None,
            )
            .map(|o| o.success)
            .unwrap_or(false);
        if detector == "True" && long_ready == "True" && pipeline == "True" && children {
            break;
        }
        if Instant::now() > deadline {
            let status = kubectl
                .ok(
                    &[
                        "get",
                        "ap/web",
                        "detector/latency",
                        "-n",
                        &ns.name,
                        "-o",
                        "jsonpath={range .items[*]}{.kind}: {.status.conditions}{\"\\n\"}{end}",
                    ],
                    None,
                )
                .unwrap_or_default();
            panic!(
                "within 120 s: Detector Ready={detector:?}, {long} Ready={long_ready:?}, \
                 pipeline Ready={pipeline:?}, detector children exist: {children}\n{status}\n\
                 operator log:\n{}",
                op.log()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // The long-named detector's pods run as its own ServiceAccount, under the hashed name.
    let hashed = kubectl
        .ok(
            &[
                "get",
                "statefulset",
                "-n",
                &ns.name,
                "-l",
                &format!("helios.dev/detector={long}"),
                "-o",
                "jsonpath={.items[*].metadata.name} {.items[*].spec.template.spec.serviceAccountName}",
            ],
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = hashed.split_whitespace().collect();
    assert!(
        names.len() == 2 && names[0] == names[1] && !names[0].ends_with("-detect"),
        "the long-named detector's StatefulSet/ServiceAccount: {hashed:?}"
    );
    kubectl
        .ok(
            &[
                "get",
                "serviceaccount,role,rolebinding",
                names[0],
                "-n",
                &ns.name,
            ],
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));

    // Two ingest replicas add a PodDisruptionBudget; back to one, the operator deletes it
    // (a DELETE the policy judges by the object being deleted).
    let pdb_exists = || {
        kubectl
            .run(
                &["get", "pdb", "web-ingest", "-n", &ns.name, "-o", "name"],
                None,
            )
            .map(|o| o.success)
            .unwrap_or(false)
    };
    for (replicas, want) in [(2, true), (1, false)] {
        kubectl
            .ok(
                &[
                    "patch",
                    "ap",
                    "web",
                    "-n",
                    &ns.name,
                    "--type",
                    "merge",
                    "-p",
                    &format!(r#"{{"spec":{{"ingestion":{{"replicas":{replicas}}}}}}}"#),
                ],
                None,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while pdb_exists() != want {
            op.assert_running();
            assert!(
                Instant::now() < deadline,
                "with {replicas} ingest replicas the PDB web-ingest exists={} within 60 s; \
                 operator log:\n{}",
                !want,
                op.log()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    let forbidden: Vec<String> = op
        .log()
        .lines()
        .filter(|l| l.contains("forbidden") || l.contains("Forbidden"))
        .map(str::to_string)
        .collect();
    assert!(
        forbidden.is_empty(),
        "the operator hit RBAC or admission policy denials:\n{}",
        forbidden.join("\n")
    );

    // Delete: its finalizer (deletionPolicy: Delete) runs under the same identity.
    let deleted = kubectl.run(
        &["delete", "ap", "web", "-n", &ns.name, "--timeout=60s"],
        None,
    );
    let deleted = deleted.expect("kubectl runs");
    assert!(
        deleted.success,
        "the pipeline was not deleted within 60 s: {}\noperator log:\n{}",
        deleted.stderr,
        op.log()
    );
    op.assert_running();
}
