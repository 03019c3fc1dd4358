//! The chart against the real API server: install, upgrade, uninstall, the RBAC it grants and
//! the admission policy that bounds the operator's writes.

use super::*;

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
pub(super) fn release<'a>(env: &StackEnv, name: &str, namespace: &str) -> Release<'a> {
    Release {
        helm: Helm::new(env).unwrap_or_else(|e| panic!("{e}")),
        name: name.to_string(),
        namespace: namespace.to_string(),
        timeout: "5m0s",
        finalizers: None,
    }
}

/// The start of the refusal by the release's admission policy (full name `policy`).
pub(super) fn refused_by(policy: &str) -> String {
    format!("ValidatingAdmissionPolicy '{policy}' with binding '{policy}' denied request")
}

/// Wait until the API server enforces the admission policy `policy` for `user` (a new policy
/// is loaded asynchronously): a server-side dry run of an unmanaged ConfigMap in `namespace`,
/// which RBAC allows the user, is refused by the policy.
pub(super) fn wait_for_policy(kubectl: &Kubectl, policy: &str, user: &str, namespace: &str) {
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
