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

mod cluster;
mod rbac;
mod render;

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
