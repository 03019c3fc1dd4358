//! The chart's RBAC runs the real operator: the operator binary under the chart's
//! ServiceAccount token does all its work, and no more is granted.

use super::cluster::{refused_by, release, wait_for_policy};
use super::*;

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
