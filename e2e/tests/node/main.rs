//! The real node and the image built here (issue #15): containerd + runc + a kubelet registered
//! as a tainted Node (`e2e/stack up-node`), the `helios` image that `make image` assembles
//! without a container engine or a registry, and the chart's operator running there as a pod.
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
