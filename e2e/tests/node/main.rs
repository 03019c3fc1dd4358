//! The real node and the image built here (issue #15): containerd + runc + a kubelet registered
//! as a tainted Node (`e2e/stack up-node`), the `helios` image that `make image` assembles
//! without a container engine or a registry, and the chart's operator running there as a pod
//! with the ingest and detect pods it renders beside it.
//!
//! `e2e/stack up` starts the node and `make test` builds the image (from the debug binary) before
//! the tests; by hand:
//!
//! ```text
//! e2e/stack up && make image
//! cargo test -p helios-e2e --test node
//! ```
//!
//! A missing node or image fails the test with the command that provides it.

use helios_e2e::helm::{Helm, Release};
use helios_e2e::kubectl::TempNamespace;
use helios_e2e::{StackEnv, kubectl::Kubectl};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

mod detect_pod;
mod image;
mod operator_pod;

const UP_NODE: &str = "start it with `e2e/stack up` (or `e2e/stack up-node` on a running stack)";
const MAKE_IMAGE: &str = "build and import it with `make image` (with the node up)";
/// The pause image containerd's CRI plugin is configured with (components/node.sh).
const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10.1";

struct Node {
    env: StackEnv,
    kubectl: Kubectl,
    name: String,
    taint_key: String,
}

/// The stack with its real node, or a panic naming the command that starts it.
fn node() -> Node {
    let env = StackEnv::load().unwrap_or_else(|e| panic!("{e}"));
    let kubectl = Kubectl::new(&env).unwrap_or_else(|e| panic!("{e}"));
    let name = env
        .get("HELIOS_NODE_NAME")
        .unwrap_or_else(|_| {
            panic!("the real node is not up (no HELIOS_NODE_NAME in the stack env); {UP_NODE}")
        })
        .to_string();
    let taint_key = env
        .get("HELIOS_NODE_TAINT")
        .unwrap_or_else(|e| panic!("{e}; {UP_NODE}"))
        .split('=')
        .next()
        .unwrap_or_default()
        .to_string();
    let found = kubectl.run(&["get", "node", &name, "-o", "name"], None);
    match found {
        Ok(out) if out.success => {}
        Ok(out) => panic!(
            "Node {name} is not registered ({}); {UP_NODE}",
            out.stderr.trim()
        ),
        Err(e) => panic!("kubectl: {e}"),
    }
    Node {
        env,
        kubectl,
        name,
        taint_key,
    }
}

impl Node {
    /// A pod pinned to the real node: hostNetwork (no pod network on this node), tolerating its
    /// taint and the not-ready taint (the runtime reports no CNI network).
    fn pod(&self, ns: &str, name: &str, image: &str, restart: &str, args: &[&str]) -> String {
        let args = serde_json::to_string(args).unwrap_or_default();
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n\
             \x20 restartPolicy: {restart}\n  hostNetwork: true\n\
             \x20 nodeSelector: {{kubernetes.io/hostname: \"{node}\"}}\n\
             \x20 tolerations:\n\
             \x20   - {{key: {taint}, operator: Exists, effect: NoSchedule}}\n\
             \x20   - {{key: node.kubernetes.io/not-ready, operator: Exists, effect: NoSchedule}}\n\
             \x20 terminationGracePeriodSeconds: 1\n\
             \x20 containers:\n\
             \x20   - name: main\n      image: {image}\n      imagePullPolicy: Never\n\
             \x20     args: {args}\n\
             \x20     securityContext: {{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, \
             runAsNonRoot: true, capabilities: {{drop: [ALL]}}}}\n",
            node = self.name,
            taint = self.taint_key,
        )
    }

    /// Applies [`Node::pod`] in a new namespace `prefix-…` (deleted when the guard drops),
    /// after the namespace's `default` ServiceAccount exists: the ServiceAccount admission
    /// plugin refuses a bare Pod until then.
    fn start_pod(
        &self,
        prefix: &str,
        name: &str,
        image: &str,
        restart: &str,
        args: &[&str],
    ) -> TempNamespace {
        let ns = self
            .kubectl
            .temp_namespace(prefix)
            .unwrap_or_else(|e| panic!("{e}"));
        self.kubectl
            .wait_default_service_account(&ns.name, 30)
            .unwrap_or_else(|e| panic!("{e}"));
        let applied = self
            .kubectl
            .apply(&self.pod(&ns.name, name, image, restart, args))
            .expect("kubectl runs");
        assert!(applied.success, "kubectl apply: {}", applied.stderr);
        ns
    }

    fn pod_json(&self, ns: &str, name: &str) -> Value {
        let text = self
            .kubectl
            .ok(&["get", "pod", "-n", ns, name, "-o", "json"], None)
            .unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("pod {ns}/{name}: {e}"))
    }

    /// `kubectl wait` (bounded by `timeout`) for `condition`; on failure the panic shows the
    /// pod's status and, for an image that is not on the node, the command that puts it there.
    fn wait_pod(&self, ns: &str, name: &str, condition: &str, timeout: &str) {
        let waited = self.kubectl.run(
            &[
                "wait",
                "-n",
                ns,
                &format!("pod/{name}"),
                &format!("--for={condition}"),
                &format!("--timeout={timeout}"),
            ],
            None,
        );
        if matches!(&waited, Ok(out) if out.success) {
            return;
        }
        let pod = self.pod_json(ns, name);
        let waiting = &pod["status"]["containerStatuses"][0]["state"]["waiting"];
        let hint = if waiting["reason"] == "ErrImageNeverPull" {
            format!("; the image is not in the node's containerd: {MAKE_IMAGE}")
        } else {
            String::new()
        };
        panic!(
            "pod {ns}/{name} did not reach {condition} within {timeout}{hint}\nstatus: {}",
            serde_json::to_string_pretty(&pod["status"]).unwrap_or_default()
        );
    }
}

/// `GET path` on 127.0.0.1:port; the status line and body.
fn http_get(port: u16, path: &str) -> String {
    http(port, "GET", path, "", "")
}

/// One HTTP/1.1 request to 127.0.0.1:`port` (`headers`: extra lines, each ending in CRLF);
/// the whole response as text.
fn http(port: u16, method: &str, path: &str, headers: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect 127.0.0.1:{port}: {e}"));
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("read timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write request");
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out
}

impl Node {
    /// A workload's `placement` (flow style) that puts its pods here: the node's selector, its
    /// taints tolerated, its network.
    fn placement(&self) -> String {
        format!(
            "{{nodeSelector: {{kubernetes.io/hostname: \"{node}\"}}, tolerations: [\
             {{key: {taint}, operator: Exists, effect: NoSchedule}}, \
             {{key: node.kubernetes.io/not-ready, operator: Exists, effect: NoSchedule}}], \
             hostNetwork: true}}",
            node = self.name,
            taint = self.taint_key,
        )
    }

    /// The name of the one pod in `ns` matching `selector` (a panic if there are none or more).
    fn only_pod(&self, ns: &str, selector: &str) -> String {
        let names = self
            .kubectl
            .ok(
                &[
                    "get",
                    "pods",
                    "-n",
                    ns,
                    "-l",
                    selector,
                    "-o",
                    "jsonpath={.items[*].metadata.name}",
                ],
                None,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !names.is_empty() && !names.contains(' '),
            "one pod {selector} in {ns}: {names:?}"
        );
        names
    }

    /// Asserts that pod `ns/name` runs on this node, on its network, as a Ready container of
    /// its containerd; the container's ID (64 hex digits).
    fn assert_runs_here(&self, ns: &str, name: &str) -> String {
        let pod = self.pod_json(ns, name);
        assert_eq!(pod["spec"]["nodeName"], self.name.as_str(), "{ns}/{name}");
        assert_eq!(pod["spec"]["hostNetwork"], true, "{ns}/{name}");
        let status = &pod["status"]["containerStatuses"][0];
        assert_eq!(status["ready"], true, "{ns}/{name}: {status}");
        let id = status["containerID"].as_str().unwrap_or_default();
        let hex = id.strip_prefix("containerd://").unwrap_or_default();
        assert!(
            hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "{ns}/{name}: not a containerd container ID: {id:?}"
        );
        hex.to_string()
    }

    /// `kubectl wait --for=condition` on `object` in `ns` (a watch, bounded by `timeout`); on
    /// failure the panic shows the object's status and `context()` (e.g. a log).
    fn wait_object(
        &self,
        ns: &str,
        object: &str,
        condition: &str,
        timeout: &str,
        context: impl Fn() -> String,
    ) {
        let waited = self
            .kubectl
            .run(
                &[
                    "wait",
                    "-n",
                    ns,
                    object,
                    &format!("--for={condition}"),
                    &format!("--timeout={timeout}"),
                ],
                None,
            )
            .expect("kubectl runs");
        if waited.success {
            return;
        }
        let status = self
            .kubectl
            .ok(&["get", object, "-n", ns, "-o", "jsonpath={.status}"], None)
            .unwrap_or_default();
        panic!(
            "{object} did not reach {condition} within {timeout}: {}\nstatus: {status}\n{}",
            waited.stderr,
            context()
        );
    }
}

/// Asserts that `pod` runs as ServiceAccount `account` with the token the ServiceAccount
/// admission plugin mounted (a `kube-api-access-*` projected volume), not one mounted by hand.
fn assert_service_account_token(pod: &Value, account: &str) {
    assert_eq!(pod["spec"]["serviceAccountName"], account);
    let volumes = pod["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        volumes.iter().any(|v| v["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("kube-api-access-"))
            && v["projected"]["sources"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["serviceAccountToken"].is_object()))),
        "no ServiceAccount token volume from the admission plugin: {}",
        pod["spec"]["volumes"]
    );
}

/// The port of the stack's API server (on loopback), which pods on this node reach it at.
fn api_server_port(node: &Node) -> String {
    let server = node
        .env
        .get("KUBE_APISERVER")
        .unwrap_or_else(|e| panic!("{e}"));
    server.rsplit(':').next().unwrap_or_default().to_string()
}

/// The bearer token of the test pipeline's ingest pods.
const INGEST_TOKEN: &str = "t0k3n-web";

/// `<image.repository>:<appVersion>`, the image the chart runs by default.
fn chart_image() -> (String, String) {
    let chart = helios_e2e::repo_root().join("charts").join("helios");
    let read = |f: &str| -> serde_yaml::Value {
        let text = std::fs::read_to_string(chart.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{f}: {e}"))
    };
    let repo = read("values.yaml")["image"]["repository"]
        .as_str()
        .map(str::to_string)
        .expect("image.repository in values.yaml");
    let tag = read("Chart.yaml")["appVersion"]
        .as_str()
        .map(str::to_string)
        .expect("appVersion in Chart.yaml");
    (format!("{repo}:{tag}"), tag)
}

fn tempfile_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}-{name}", helios_e2e::kubectl::unique_suffix()))
}
