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

#[test]
fn real_node_runs_a_pod_in_containerd() {
    let node = node();
    let info: Value = serde_json::from_str(
        &node
            .kubectl
            .ok(&["get", "node", &node.name, "-o", "json"], None)
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .expect("node json");
    let kube_version = node.env.get("KUBE_VERSION").expect("KUBE_VERSION");
    assert_eq!(
        info["status"]["nodeInfo"]["kubeletVersion"],
        format!("v{kube_version}"),
        "the node's kubelet is not the one built from k8s.io/kubernetes v{kube_version}"
    );
    let runtime = info["status"]["nodeInfo"]["containerRuntimeVersion"]
        .as_str()
        .unwrap_or_default();
    assert!(runtime.starts_with("containerd://"), "runtime: {runtime}");
    let taints = info["spec"]["taints"].to_string();
    assert!(
        taints.contains(&node.taint_key),
        "the real node must keep its taint {} so that only tolerating pods land there: {taints}",
        node.taint_key
    );

    let ns = node.start_pod("node-pause", "pause", PAUSE_IMAGE, "Always", &[]);
    node.wait_pod(&ns.name, "pause", "condition=Ready", "120s");

    let pod = node.pod_json(&ns.name, "pause");
    assert_eq!(pod["spec"]["nodeName"], node.name.as_str());
    let status = &pod["status"]["containerStatuses"][0];
    let id = status["containerID"].as_str().unwrap_or_default();
    let hex = id.strip_prefix("containerd://").unwrap_or_default();
    assert!(
        hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "not a containerd container ID: {id:?}"
    );
    assert!(
        status["state"]["running"]["startedAt"].is_string(),
        "{status}"
    );
    assert_eq!(
        pod["status"]["hostIP"], "127.0.0.1",
        "the node must stay on loopback"
    );
}

#[test]
fn helios_image_runs_on_the_real_node() {
    let node = node();
    let (image, tag) = chart_image();
    let ns = node.start_pod("node-helios", "version", &image, "Never", &["version"]);
    node.wait_pod(
        &ns.name,
        "version",
        "jsonpath={.status.phase}=Succeeded",
        "120s",
    );
    let pod = node.pod_json(&ns.name, "version");
    let terminated = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 0, "{terminated}");
    assert!(
        terminated["containerID"]
            .as_str()
            .is_some_and(|id| id.starts_with("containerd://")),
        "{terminated}"
    );
    let logs = node
        .kubectl
        .ok(&["logs", "-n", &ns.name, "version"], None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        logs.trim(),
        format!("helios {tag} (API helios.dev/v1alpha1)"),
        "`helios version` in the image"
    );
}

/// The last stage of the Dockerfile: instruction name → its arguments, in order.
fn dockerfile_runtime_stage() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(helios_e2e::repo_root().join("Dockerfile")).expect("Dockerfile");
    let lines: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (op, rest) = l.split_once(' ')?;
            Some((op.to_ascii_uppercase(), rest.trim().to_string()))
        })
        .collect();
    let last_from = lines
        .iter()
        .rposition(|(op, _)| op == "FROM")
        .expect("a FROM");
    lines[last_from..].to_vec()
}

fn image_archive(env: &StackEnv, tag: &str) -> PathBuf {
    let cache = env.get("HELIOS_CACHE").unwrap_or_else(|e| panic!("{e}"));
    let tar = Path::new(cache)
        .join("images")
        .join(format!("helios-{tag}.tar"));
    assert!(tar.exists(), "{} is missing; {MAKE_IMAGE}", tar.display());
    tar
}

fn tar_member(archive: &Path, member: &str) -> Vec<u8> {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(archive)
        .arg(member)
        .output()
        .expect("tar runs");
    assert!(
        out.status.success(),
        "tar -xOf {} {member}: {}",
        archive.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn blob(archive: &Path, digest: &Value) -> Vec<u8> {
    let digest = digest.as_str().expect("a digest");
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    tar_member(archive, &format!("blobs/sha256/{hex}"))
}

/// The Dockerfile cannot be built here (no engine, no registry); the image `make image` builds
/// must have the entrypoint, command, user, port and file layout it describes.
#[test]
fn image_built_here_matches_the_dockerfile() {
    let env = StackEnv::load().unwrap_or_else(|e| panic!("{e}"));
    let (image, tag) = chart_image();
    let archive = image_archive(&env, &tag);
    let index: Value = serde_json::from_slice(&tar_member(&archive, "index.json")).expect("index");
    let entry = &index["manifests"][0];
    assert_eq!(
        entry["annotations"]["io.containerd.image.name"],
        image.as_str()
    );
    let manifest: Value =
        serde_json::from_slice(&blob(&archive, &entry["digest"])).expect("manifest");
    let config: Value =
        serde_json::from_slice(&blob(&archive, &manifest["config"]["digest"])).expect("config");
    let config = &config["config"];

    let stage = dockerfile_runtime_stage();
    let arg = |op: &str| -> Option<&str> {
        stage
            .iter()
            .rfind(|(o, _)| o == op)
            .map(|(_, rest)| rest.as_str())
    };
    let json = |op: &str| -> Value {
        serde_json::from_str(arg(op).unwrap_or_else(|| panic!("Dockerfile has no {op}")))
            .unwrap_or_else(|e| panic!("{op}: {e}"))
    };
    assert_eq!(config["Entrypoint"], json("ENTRYPOINT"), "ENTRYPOINT");
    assert_eq!(config["Cmd"], json("CMD"), "CMD");
    assert_eq!(config["User"], arg("USER").unwrap_or_default(), "USER");
    let port = format!("{}/tcp", arg("EXPOSE").unwrap_or_default());
    assert!(
        config["ExposedPorts"].get(&port).is_some(),
        "EXPOSE {port}: {}",
        config["ExposedPorts"]
    );
    // The base image is distroless/cc-debian12:nonroot: its working directory and user.
    assert!(arg("FROM").is_some_and(|f| f.contains("distroless/cc") && f.ends_with(":nonroot")));
    assert_eq!(config["WorkingDir"], "/home/nonroot");

    // The layer's files: what the COPY lines put there, and what distroless/cc provides.
    let layer = tempfile_path("helios-layer.tar");
    std::fs::write(&layer, blob(&archive, &manifest["layers"][0]["digest"])).expect("layer");
    let listing = Command::new("tar")
        .arg("-tvf")
        .arg(&layer)
        .arg("--numeric-owner")
        .output()
        .expect("tar runs");
    let _ = std::fs::remove_file(&layer);
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let entry_of = |path: &str| -> &str {
        listing
            .lines()
            .find(|l| {
                l.split_whitespace()
                    .nth(5)
                    .is_some_and(|p| p.trim_end_matches('/') == path)
            })
            .unwrap_or_else(|| panic!("{path} is not in the image:\n{listing}"))
    };
    for (op, rest) in &stage {
        if op == "COPY" {
            let dest = rest.split_whitespace().last().unwrap_or_default();
            let dest = dest.trim_start_matches('/');
            if dest.ends_with('/') {
                // COPY --from=build /out/lib/ /usr/lib/: the Dockerfile's build stage puts libz there.
                entry_of(&format!("{dest}libz.so.1"));
            } else {
                assert!(
                    entry_of(dest).starts_with("-rwxr-xr-x"),
                    "{dest} executable"
                );
            }
        }
    }
    let bin = config["Entrypoint"][0].as_str().unwrap_or_default();
    assert!(
        config["Env"].as_array().into_iter().flatten().any(|e| e
            .as_str()
            .is_some_and(|e| e.starts_with("PATH=") && e.contains("/usr/local/bin"))),
        "ENTRYPOINT [\"{bin}\"] needs /usr/local/bin on PATH: {}",
        config["Env"]
    );
    for path in [
        "etc/ssl/certs/ca-certificates.crt",
        "etc/passwd",
        "etc/group",
        "lib64/ld-linux-x86-64.so.2",
        "lib/x86_64-linux-gnu/libc.so.6",
        "lib/x86_64-linux-gnu/libssl.so.3",
        "lib/x86_64-linux-gnu/libcrypto.so.3",
        "lib/x86_64-linux-gnu/libgcc_s.so.1",
    ] {
        entry_of(path);
    }
    assert!(
        entry_of("home/nonroot").contains("65532/65532"),
        "home/nonroot belongs to nonroot"
    );
    let passwd = String::from_utf8_lossy(&tar_member_of_layer(&archive, &manifest, "etc/passwd"))
        .into_owned();
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("nonroot:x:65532:65532:")),
        "{passwd}"
    );
}

fn tar_member_of_layer(archive: &Path, manifest: &Value, member: &str) -> Vec<u8> {
    let layer = tempfile_path("helios-layer-member.tar");
    std::fs::write(&layer, blob(archive, &manifest["layers"][0]["digest"])).expect("layer");
    let out = tar_member(&layer, member);
    let _ = std::fs::remove_file(&layer);
    out
}

fn tempfile_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}-{name}", helios_e2e::kubectl::unique_suffix()))
}

// ---- the chart's operator as a pod on the real node -----------------------------------------

/// Run the stack's `helm` (`helios_e2e::helm`); (success, stdout + stderr).
fn helm(helm: &Helm, args: &[&str]) -> (bool, String) {
    let out = helm
        .run(args)
        .unwrap_or_else(|e| panic!("cannot run helm: {e}"));
    (out.success, format!("{}{}", out.stdout, out.stderr))
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

/// The values that put the chart's operator on the real node: host network (no pod network
/// here), its taints tolerated, the API server on loopback (no kube-proxy serves the
/// `kubernetes` Service's IP), a metrics port free on this machine and the image already on the
/// node. No token volume: the API server's ServiceAccount admission plugin adds the pod's
/// (components/kube.sh), as on a real cluster.
fn operator_on_node_values(node: &Node, namespace: &str, metrics_port: u16) -> String {
    let server = node
        .env
        .get("KUBE_APISERVER")
        .unwrap_or_else(|e| panic!("{e}"));
    let api_port = server.rsplit(':').next().unwrap_or_default();
    format!(
        "replicaCount: 1\nwatchNamespace: {namespace}\nhostNetwork: true\n\
         admissionPolicy: {{allowHostNetwork: true}}\n\
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
/// an AnomalyPipeline and a Detector to their children (which land on kwok's node) and status,
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
    let pod_name = get(&[
        "get",
        "pods",
        "-n",
        &ns.name,
        "-l",
        &selector,
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert!(
        !pod_name.is_empty() && !pod_name.contains(' '),
        "one operator pod: {pod_name:?}"
    );
    node.wait_pod(&ns.name, &pod_name, "condition=Ready", "60s");
    let pod = node.pod_json(&ns.name, &pod_name);
    assert_eq!(pod["spec"]["nodeName"], node.name.as_str());
    assert_eq!(pod["spec"]["hostNetwork"], true);
    assert_eq!(pod["spec"]["serviceAccountName"], full.as_str());
    // Its token is the one the ServiceAccount admission plugin mounted (a `kube-api-access-*`
    // projected volume), not one the test mounted by hand.
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
    assert_eq!(pod["status"]["podIP"], "127.0.0.1");
    let status = &pod["status"]["containerStatuses"][0];
    assert_eq!(status["ready"], true, "{status}");
    let id = status["containerID"].as_str().unwrap_or_default();
    let hex = id.strip_prefix("containerd://").unwrap_or_default();
    assert!(
        hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "not a containerd container ID: {id:?}"
    );
    // What the probe asked: /readyz on the pod's IP, here loopback.
    let readyz = http_get(port, "/readyz");
    assert!(
        readyz.lines().next().is_some_and(|l| l.contains(" 200 ")),
        "/readyz on 127.0.0.1:{port}: {readyz}"
    );

    // It leads: the Lease in the release namespace names the pod (a ready replica may still be
    // standing by: first the Lease appears, then its holder). The pod holds no credential but
    // its ServiceAccount token, so every write it makes is as that account.
    for condition in [
        "create".to_string(),
        format!("jsonpath={{.spec.holderIdentity}}={pod_name}"),
    ] {
        let lease = node
            .kubectl
            .run(
                &[
                    "wait",
                    "-n",
                    &ns.name,
                    "lease/helios-operator",
                    &format!("--for={condition}"),
                    "--timeout=60s",
                ],
                None,
            )
            .expect("kubectl runs");
        assert!(
            lease.success,
            "the operator pod did not take the Lease within 60 s ({condition}): {}\nlog:\n{}",
            lease.stderr,
            node.kubectl
                .ok(&["logs", "-n", &ns.name, &pod_name, "--tail=50"], None)
                .unwrap_or_default()
        );
    }

    // It reconciles: a pipeline and a detector get their children and their status.
    let bootstrap = node
        .env
        .get("KAFKA_BOOTSTRAP")
        .unwrap_or_else(|e| panic!("{e}"));
    let manifest = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: web-token}}\n\
         stringData: {{token: t0k3n-web}}\n---\n\
         apiVersion: helios.dev/v1alpha1\nkind: AnomalyPipeline\nmetadata:\n  name: web\nspec:\n\
         \x20 kafka:\n    bootstrapServers: \"{bootstrap}\"\n    topics:\n\
         \x20     events: {{partitions: 1, replicationFactor: 1}}\n\
         \x20     anomalies: {{partitions: 1, replicationFactor: 1}}\n\
         \x20   deletionPolicy: Delete\n  ingestion:\n    replicas: 1\n\
         \x20   authTokenSecretRef: {{name: web-token, key: token}}\n\
         \x20   placement:\n\
         \x20     nodeSelector: {{kubernetes.io/hostname: \"{node}\"}}\n\
         \x20     tolerations:\n\
         \x20       - {{key: {taint}, operator: Exists, effect: NoSchedule}}\n\
         \x20       - {{key: node.kubernetes.io/not-ready, operator: Exists, effect: NoSchedule}}\n\
         \x20     hostNetwork: true\n---\n\
         apiVersion: helios.dev/v1alpha1\nkind: Detector\nmetadata: {{name: latency}}\n\
         spec: {{pipelineRef: {{name: web}}, features: [event_count, p99_latency]}}\n",
        node = node.name,
        taint = node.taint_key,
    );
    let applied = node
        .kubectl
        .run(&["apply", "-n", &ns.name, "-f", "-"], Some(&manifest))
        .expect("kubectl runs");
    assert!(applied.success, "kubectl apply: {}", applied.stderr);
    let operator_log = || {
        node.kubectl
            .ok(&["logs", "-n", &ns.name, &pod_name, "--tail=80"], None)
            .unwrap_or_default()
    };
    for (obj, condition) in [
        ("ap/web", "jsonpath={.status.observedGeneration}=1"),
        (
            "detector/latency",
            "jsonpath={.status.observedGeneration}=1",
        ),
        ("ap/web", "condition=Ready"),
        ("detector/latency", "condition=Ready"),
    ] {
        let waited = node
            .kubectl
            .run(
                &[
                    "wait",
                    "-n",
                    &ns.name,
                    obj,
                    &format!("--for={condition}"),
                    "--timeout=120s",
                ],
                None,
            )
            .expect("kubectl runs");
        if !waited.success {
            let status = node
                .kubectl
                .ok(
                    &["get", obj, "-n", &ns.name, "-o", "jsonpath={.status}"],
                    None,
                )
                .unwrap_or_default();
            panic!(
                "{obj} did not reach {condition} within 120 s: {}\nstatus: {status}\n\
                 operator log:\n{}",
                waited.stderr,
                operator_log()
            );
        }
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
    // the node's selector, taints and network), Ready by its own /readyz, and takes events.
    let ingest = get(&[
        "get",
        "pods",
        "-n",
        &ns.name,
        "-l",
        "app.kubernetes.io/component=ingest",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert!(
        !ingest.is_empty() && !ingest.contains(' '),
        "one ingest pod: {ingest:?}"
    );
    let pod = node.pod_json(&ns.name, &ingest);
    assert_eq!(pod["spec"]["nodeName"], node.name.as_str());
    assert_eq!(pod["spec"]["hostNetwork"], true);
    let status = &pod["status"]["containerStatuses"][0];
    assert_eq!(status["ready"], true, "{status}");
    assert!(
        status["containerID"]
            .as_str()
            .is_some_and(|id| id.starts_with("containerd://")),
        "not a containerd container: {status}"
    );
    let event = format!(
        "{{\"timestamp\":{},\"service\":\"web\",\"endpoint\":\"/\",\"status\":200,\"latency_ms\":12.5}}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    // The port every ingest pod listens on (operator::builders::ingest::INGEST_PORT), here on
    // the node's loopback.
    let port = 8080;
    let posted = http(
        port,
        "POST",
        "/v1/events",
        "Authorization: Bearer t0k3n-web\r\nContent-Type: application/json\r\n",
        &event,
    );
    assert!(
        posted.lines().next().is_some_and(|l| l.contains(" 200 "))
            && posted.contains("\"accepted\":1"),
        "POST /v1/events to the ingest pod on 127.0.0.1:{port}: {posted}"
    );

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
            .any(|l| l.starts_with(hex) && l.contains("RUNNING")),
        "the operator's container {hex} still runs in containerd:\n{tasks}"
    );
    eprintln!(
        "the chart's operator on the real node: install to uninstall in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}
