//! A pod in containerd on the real node, and the Helios image built here: it runs there, and it
//! is what the Dockerfile describes.

use super::*;

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
