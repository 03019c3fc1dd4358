//! Run a workload's pod as a local process, from the pod template the operator wrote: there is
//! no container runtime here, so this is how the suite and the demo prove that what the
//! operator renders (command, args, env, Secret and ConfigMap references) actually runs.
//!
//! The container's `helios` command is replaced by a local `helios` binary, and every
//! `*_LISTEN` address is moved to a free loopback port (several pods share one host).

use crate::kubectl::Kubectl;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

/// The first container of a workload's pod template, resolved for running locally.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalPod {
    /// The container's command (`["helios"]`).
    pub command: Vec<String>,
    /// Its arguments (`["ingest"]`, `["detect"]`).
    pub args: Vec<String>,
    /// Every environment variable with its value resolved.
    pub env: BTreeMap<String, String>,
    /// The listen addresses that were moved to loopback, by variable name.
    pub listen: BTreeMap<String, SocketAddr>,
}

impl LocalPod {
    /// A `Command` running the pod with `helios` as its binary and only the rendered env
    /// (plus `PATH`, `HOME` and `extra`).
    pub fn command(&self, helios: &Path, extra: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(helios);
        cmd.args(&self.args).env_clear().envs(&self.env);
        for key in ["PATH", "HOME"] {
            if let Ok(v) = std::env::var(key) {
                cmd.env(key, v);
            }
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd
    }
}

/// Resolve pod `pod_name` of `kind/name` (`deployment`, `statefulset`) in `namespace`.
pub fn resolve(
    kubectl: &Kubectl,
    namespace: &str,
    kind: &str,
    name: &str,
    pod_name: &str,
) -> Result<LocalPod, String> {
    let text = kubectl.ok(&["get", "-n", namespace, kind, name, "-o", "json"], None)?;
    let workload: Value = serde_json::from_str(&text).map_err(|e| format!("{kind}/{name}: {e}"))?;
    let container = &workload["spec"]["template"]["spec"]["containers"][0];
    if container.is_null() {
        return Err(format!("{kind}/{name} has no container"));
    }
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let lookup = |what: &str, obj: &str, key: &str| -> Result<String, String> {
        let template = match what {
            "secret" => format!("{{{{index .data \"{key}\" | base64decode}}}}"),
            _ => format!("{{{{index .data \"{key}\"}}}}"),
        };
        kubectl.ok(
            &[
                "get",
                "-n",
                namespace,
                what,
                obj,
                "-o",
                &format!("go-template={template}"),
            ],
            None,
        )
    };
    let mut env = BTreeMap::new();
    for var in container["env"].as_array().into_iter().flatten() {
        let key = var["name"].as_str().unwrap_or_default().to_string();
        let value = if let Some(v) = var["value"].as_str() {
            v.to_string()
        } else if let Some(r) = var["valueFrom"]["secretKeyRef"].as_object() {
            let (obj, k) = (str_of(r, "name"), str_of(r, "key"));
            lookup("secret", &obj, &k).map_err(|e| format!("{key}: secret {obj}/{k}: {e}"))?
        } else if let Some(r) = var["valueFrom"]["configMapKeyRef"].as_object() {
            let (obj, k) = (str_of(r, "name"), str_of(r, "key"));
            lookup("configmap", &obj, &k).map_err(|e| format!("{key}: configmap {obj}/{k}: {e}"))?
        } else if let Some(path) = var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            match path {
                "metadata.name" => pod_name.to_string(),
                "metadata.namespace" => namespace.to_string(),
                other => return Err(format!("{key}: unsupported fieldRef {other}")),
            }
        } else {
            return Err(format!("{key}: unsupported env source {var}"));
        };
        env.insert(key, value);
    }
    let mut listen = BTreeMap::new();
    for (key, value) in env.iter_mut() {
        if key.ends_with("_LISTEN") {
            let addr = free_loopback()?;
            *value = addr.to_string();
            listen.insert(key.clone(), addr);
        }
    }
    Ok(LocalPod {
        command: strings(&container["command"]),
        args: strings(&container["args"]),
        env,
        listen,
    })
}

fn str_of(map: &serde_json::Map<String, Value>, key: &str) -> String {
    map.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn free_loopback() -> Result<SocketAddr, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free loopback port: {e}"))
}
