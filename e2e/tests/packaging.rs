//! The packaging around the chart: the Argo CD health checks (run with a real Lua interpreter on
//! sample objects), the Grafana dashboard and Prometheus alerts (every expression parses as
//! PromQL and names only metrics the code registers), the Flux/Argo CD examples (their values
//! pass the chart's schema), the Dockerfile, and the Terraform (parsed; every variable, local,
//! module input and module output referenced is declared).
//!
//! Needs `lua5.4` (installed by `e2e/stack up`) and, for the values checks, the stack's helm.

use helios_e2e::kubectl::unique_suffix;
use helios_e2e::{StackEnv, repo_root};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn read(rel: &str) -> String {
    let path = repo_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---- Argo CD health checks ------------------------------------------------------------------

const LUA: &str = "lua5.4";

/// A Lua table constructor for a JSON value (`null` members are left out, as Argo CD does).
fn lua_literal(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(lua_literal).collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_literal(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Run `script` as Argo CD does (the object in the global `obj`); returns (status, message).
fn health(script: &Path, obj: &Value) -> (String, String) {
    let harness = format!(
        "obj = {}\nlocal hs = dofile({})\nio.write(tostring(hs.status), \"\\n\", tostring(hs.message))\n",
        lua_literal(obj),
        lua_string(&script.to_string_lossy())
    );
    let mut child = Command::new(LUA)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {LUA}: {e}; install it with `apt-get install lua5.4` (e2e/stack up does)")
        });
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(harness.as_bytes()).expect("write harness");
    }
    let out = child.wait_with_output().expect("lua runs");
    assert!(
        out.status.success(),
        "{} failed on {obj}:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, message) = text.split_once('\n').unwrap_or((&text, ""));
    (status.to_string(), message.to_string())
}

fn cond(type_: &str, status: &str, reason: &str, message: &str, generation: i64) -> Value {
    json!({
        "type": type_, "status": status, "reason": reason, "message": message,
        "observedGeneration": generation, "lastTransitionTime": "2026-11-24T10:00:00Z"
    })
}

fn object(kind: &str, generation: i64, status: Option<Value>) -> Value {
    json!({
        "apiVersion": "helios.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "shop", "namespace": "team", "generation": generation},
        "spec": {},
        "status": status,
    })
}

/// (case, object, expected status, text the message must contain)
fn samples(kind: &str) -> Vec<(&'static str, Value, &'static str, &'static str)> {
    let ready = cond(
        "Ready",
        "True",
        "AllConditionsReady",
        "every detail condition is True",
        3,
    );
    vec![
        (
            "no status yet",
            object(kind, 1, None),
            "Progressing",
            "Waiting for the operator",
        ),
        (
            "Ready=True for the current generation",
            object(
                kind,
                3,
                Some(json!({"observedGeneration": 3, "conditions": [
                    cond("TopicsReady", "True", "TopicsReady", "ok", 3), ready.clone()]})),
            ),
            "Healthy",
            "every detail condition is True",
        ),
        (
            "status.observedGeneration behind metadata.generation",
            object(
                kind,
                4,
                Some(json!({"observedGeneration": 3, "conditions": [ready.clone()]})),
            ),
            "Progressing",
            "generation 4",
        ),
        (
            "Ready condition stale although status is current",
            object(
                kind,
                4,
                Some(json!({"observedGeneration": 4, "conditions": [ready.clone()]})),
            ),
            "Progressing",
            "generation 3",
        ),
        (
            "Ready=False names the failing condition",
            object(
                kind,
                3,
                Some(json!({"observedGeneration": 3, "conditions": [cond(
                    "Ready",
                    "False",
                    "KafkaUnreachable",
                    "TopicsReady: cannot reach Kafka at kafka:9092: timed out",
                    3,
                )]})),
            ),
            "Degraded",
            "KafkaUnreachable: TopicsReady: cannot reach Kafka at kafka:9092: timed out",
        ),
        (
            "Ready=Unknown",
            object(
                kind,
                3,
                Some(json!({"observedGeneration": 3, "conditions": [
                    cond("Ready", "Unknown", "Pending", "waiting for detectors", 3)]})),
            ),
            "Progressing",
            "Pending: waiting for detectors",
        ),
        (
            "no Ready condition",
            object(kind, 2, Some(json!({"observedGeneration": 2}))),
            "Progressing",
            "Ready",
        ),
        (
            "suspended",
            object(
                kind,
                5,
                Some(json!({"observedGeneration": 5, "conditions": [
                    cond("Ready", "True", "AllConditionsReady", "ok", 5),
                    cond("Suspended", "True", "Suspended", "scaled to zero by spec.suspend", 5)]})),
            ),
            "Suspended",
            "scaled to zero by spec.suspend",
        ),
        (
            "Suspended=False does not hide Ready",
            object(
                kind,
                5,
                Some(json!({"observedGeneration": 5, "conditions": [
                    cond("Suspended", "False", "NotSuspended", "running", 5),
                    cond("Ready", "True", "AllConditionsReady", "ok", 5)]})),
            ),
            "Healthy",
            "ok",
        ),
    ]
}

#[test]
fn argocd_health_checks_give_the_expected_status_and_message() {
    for (kind, file) in [
        ("AnomalyPipeline", "health-anomalypipeline.lua"),
        ("Detector", "health-detector.lua"),
    ] {
        let script = repo_root().join("deploy").join("argocd").join(file);
        for (case, obj, want, message) in samples(kind) {
            let (status, got) = health(&script, &obj);
            assert_eq!(status, want, "{kind}: {case}: message {got:?}");
            assert!(
                got.contains(message),
                "{kind}: {case}: message {got:?} does not contain {message:?}"
            );
        }
    }
}

#[test]
fn argocd_cm_patch_embeds_the_health_checks_verbatim() {
    let cm: Value =
        serde_yaml::from_str(&read("deploy/argocd/argocd-cm-patch.yaml")).expect("YAML");
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    for (kind, file) in [
        ("AnomalyPipeline", "health-anomalypipeline.lua"),
        ("Detector", "health-detector.lua"),
    ] {
        let key = format!("resource.customizations.health.helios.dev_{kind}");
        let embedded = cm["data"][&key]
            .as_str()
            .unwrap_or_else(|| panic!("argocd-cm-patch.yaml has no {key}"));
        assert_eq!(
            embedded,
            read(&format!("deploy/argocd/{file}")),
            "{key} differs from deploy/argocd/{file}"
        );
    }
}

// ---- Grafana and Prometheus -----------------------------------------------------------------

/// Every metric name registered in the operator's and the workers' metrics modules.
fn registered_metrics() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for rel in [
        "operator/src/metrics.rs",
        "workers/ingest/src/metrics.rs",
        "workers/detect/src/metrics.rs",
    ] {
        let text = read(rel);
        let prefix = text
            .split("new_custom(Some(\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(|p| format!("{p}_"))
            .unwrap_or_default();
        for piece in text.split("new(").skip(1) {
            let rest = piece.trim_start();
            let Some(rest) = rest.strip_prefix('"') else {
                continue;
            };
            let Some(name) = rest.split('"').next() else {
                continue;
            };
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                names.insert(format!("{prefix}{name}"));
            }
        }
    }
    assert!(
        names.len() > 15,
        "too few metrics found in the sources: {names:?}"
    );
    names
}

/// The `helios_*` metric names an expression uses, with histogram suffixes removed.
fn metric_names(expr: &str) -> Vec<String> {
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("helios_") {
        let start = i + pos;
        let boundary = start == 0 || {
            let c = bytes[start - 1];
            !(c.is_ascii_alphanumeric() || c == b'_')
        };
        let end = expr[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(expr.len(), |e| start + e);
        if boundary {
            out.push(expr[start..end].to_string());
        }
        i = end;
    }
    out
}

fn check_expr(expr: &str, known: &BTreeSet<String>, whose: &str) -> Vec<String> {
    let concrete = expr
        .replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$namespace", "x");
    if let Err(e) = promql_parser::parser::parse(&concrete) {
        panic!("{whose}: {expr:?} is not valid PromQL: {e}");
    }
    let used = metric_names(expr);
    assert!(!used.is_empty(), "{whose}: {expr:?} names no helios metric");
    for name in &used {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|b| known.contains(*b)))
            .unwrap_or(name);
        assert!(
            known.contains(base),
            "{whose}: {expr:?} uses {name}, which no metrics.rs registers (known: {known:?})"
        );
    }
    used
}

fn panels(v: &Value, out: &mut Vec<Value>) {
    for p in v["panels"].as_array().into_iter().flatten() {
        out.push(p.clone());
        panels(p, out);
    }
}

#[test]
fn grafana_dashboard_is_valid_and_uses_real_metrics() {
    let known = registered_metrics();
    let dash: Value =
        serde_json::from_str(&read("deploy/grafana/helios-dashboard.json")).expect("JSON");
    assert_eq!(dash["uid"], "helios-overview");
    assert!(dash["title"].is_string());
    let mut all = Vec::new();
    panels(&dash, &mut all);
    let mut ids = BTreeSet::new();
    let mut used = BTreeSet::new();
    let mut exprs = 0;
    for p in &all {
        let id = p["id"].as_i64().expect("every panel has an id");
        assert!(ids.insert(id), "duplicate panel id {id}");
        assert!(
            p["gridPos"]["w"].as_i64().is_some(),
            "panel {id} has no gridPos"
        );
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {} has no query", p["title"]);
        assert_eq!(p["datasource"]["uid"], "${datasource}");
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            let whose = format!("panel {:?}", p["title"]);
            used.extend(check_expr(expr, &known, &whose));
            exprs += 1;
        }
    }
    for v in dash["templating"]["list"].as_array().expect("templating") {
        if let Some(q) = v["query"]["query"].as_str() {
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.split(',').next())
                .unwrap_or(q);
            check_expr(inner, &known, "variable");
        }
    }
    assert!(exprs >= 20, "only {exprs} queries");
    for needed in [
        "helios_ingest_events_accepted_total",
        "helios_ingest_requests_total",
        "helios_ingest_produce_latency_seconds_bucket",
        "helios_detect_consumer_lag",
        "helios_detect_anomalies_total",
        "helios_detect_score",
        "helios_detect_threshold",
        "helios_detect_model_age_seconds",
        "helios_operator_reconcile_errors_total",
        "helios_operator_leader",
    ] {
        assert!(
            used.contains(needed),
            "the dashboard does not show {needed}"
        );
    }
}

#[test]
fn prometheus_alerts_are_valid_and_use_real_metrics() {
    let known = registered_metrics();
    let rules: Value = serde_yaml::from_str(&read("deploy/prometheus/alerts.yaml")).expect("YAML");
    let mut names = BTreeSet::new();
    let mut groups = BTreeSet::new();
    for g in rules["groups"].as_array().expect("groups") {
        groups.insert(g["name"].as_str().expect("group name").to_string());
        for r in g["rules"].as_array().expect("rules") {
            let alert = r["alert"].as_str().expect("alert name");
            assert!(names.insert(alert.to_string()), "duplicate alert {alert}");
            check_expr(r["expr"].as_str().expect("expr"), &known, alert);
            let severity = r["labels"]["severity"].as_str().unwrap_or_default();
            assert!(
                ["critical", "warning", "info"].contains(&severity),
                "{alert}: severity {severity:?}"
            );
            assert!(
                r["annotations"]["summary"].is_string(),
                "{alert}: no summary"
            );
            assert!(
                r["annotations"]["description"].is_string(),
                "{alert}: no description"
            );
            let duration = r["for"].as_str().unwrap_or("0s");
            assert!(
                duration.ends_with('m') || duration.ends_with('s'),
                "{alert}: for {duration}"
            );
        }
    }
    assert_eq!(
        groups,
        ["helios-detect", "helios-ingest", "helios-operator"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}

// ---- GitOps examples and the Dockerfile -----------------------------------------------------

fn helm_template_with(values: &Value, what: &str) {
    let env = StackEnv::load().unwrap_or_else(|e| panic!("{e}"));
    let helm = env.get("HELM").unwrap_or_else(|e| panic!("{e}"));
    let file = std::env::temp_dir().join(format!("helios-values-{}.yaml", unique_suffix()));
    std::fs::write(&file, serde_yaml::to_string(values).expect("YAML")).expect("write values");
    let out = Command::new(helm)
        .args(["template", "rel"])
        .arg(repo_root().join("charts").join("helios"))
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {helm}: {e}"));
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "the values of {what} do not render: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn documents(rel: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(&read(rel))
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

#[test]
fn flux_and_argocd_examples_pass_the_chart_schema() {
    let flux = documents("deploy/flux/helmrelease.yaml");
    let release = flux
        .iter()
        .find(|d| d["kind"] == "HelmRelease")
        .expect("a HelmRelease");
    assert_eq!(release["spec"]["chart"]["spec"]["chart"], "./charts/helios");
    assert_eq!(release["spec"]["upgrade"]["crds"], "CreateReplace");
    helm_template_with(&release["spec"]["values"], "deploy/flux/helmrelease.yaml");

    let app = documents("deploy/argocd/application.yaml");
    let app = app
        .iter()
        .find(|d| d["kind"] == "Application")
        .expect("an Application");
    assert_eq!(app["spec"]["source"]["path"], "charts/helios");
    helm_template_with(
        &app["spec"]["source"]["helm"]["valuesObject"],
        "deploy/argocd/application.yaml",
    );
}

#[test]
fn dockerfile_builds_the_pinned_toolchain_into_a_nonroot_distroless_image() {
    let docker = read("Dockerfile");
    let toolchain = read("rust-toolchain.toml");
    let channel = toolchain
        .lines()
        .find_map(|l| l.trim().strip_prefix("channel = "))
        .map(|c| c.trim_matches('"').to_string())
        .expect("channel in rust-toolchain.toml");
    assert!(
        docker.contains(&format!("ARG RUST_VERSION={channel}")),
        "the Dockerfile's RUST_VERSION is not the pinned toolchain {channel}"
    );
    assert!(docker.contains("FROM gcr.io/distroless/cc-debian12:nonroot"));
    assert!(docker.contains("USER 65532:65532"));
    assert!(docker.contains("ENTRYPOINT [\"helios\"]"));
    assert!(docker.contains("cargo build --release --locked -p helios"));
    let ignore = read(".dockerignore");
    assert!(
        ignore.lines().any(|l| l.trim() == "target/"),
        ".dockerignore keeps target/"
    );
}

// ---- Terraform ------------------------------------------------------------------------------

/// One Terraform directory (module or environment), parsed.
#[derive(Default)]
struct TfModule {
    variables: BTreeMap<String, bool>, // name -> has a default
    outputs: BTreeSet<String>,
    locals: BTreeSet<String>,
    calls: Vec<(String, String, Vec<String>)>, // name, source, argument keys
    text: String,
}

fn tf_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut has_tf = false;
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let p = e.expect("dir entry").path();
            if p.is_dir() && !p.ends_with(".terraform") {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "tf") {
                has_tf = true;
            }
        }
        if has_tf {
            dirs.push(dir);
        }
    }
    dirs.sort();
    dirs
}

fn parse_module(dir: &Path) -> TfModule {
    let mut m = TfModule::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "tf"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read .tf");
        let body =
            hcl::parse(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", file.display()));
        for block in body.blocks() {
            let label = block
                .labels()
                .first()
                .map(|l| l.as_str().to_string())
                .unwrap_or_default();
            match block.identifier() {
                "variable" => {
                    let has_default = block.body().attributes().any(|a| a.key() == "default");
                    assert!(
                        block.body().attributes().any(|a| a.key() == "description"),
                        "{}: variable {label} has no description",
                        file.display()
                    );
                    m.variables.insert(label, has_default);
                }
                "output" => {
                    m.outputs.insert(label);
                }
                "locals" => m
                    .locals
                    .extend(block.body().attributes().map(|a| a.key().to_string())),
                "module" => {
                    let source = block
                        .body()
                        .attributes()
                        .find(|a| a.key() == "source")
                        .and_then(|a| match a.expr() {
                            hcl::Expression::String(s) => Some(s.clone()),
                            _ => None,
                        })
                        .unwrap_or_else(|| panic!("module {label} has no literal source"));
                    let keys = block
                        .body()
                        .attributes()
                        .map(|a| a.key().to_string())
                        .collect();
                    m.calls.push((label, source, keys));
                }
                _ => {}
            }
        }
        // References are checked on the text without comments.
        for line in text.lines() {
            let code = line.split(" #").next().unwrap_or(line);
            if !code.trim_start().starts_with('#') {
                m.text.push_str(code);
                m.text.push('\n');
            }
        }
    }
    m
}

/// Every `prefix.name` (and `prefix.name.attr` as name + attr) in `text`.
fn references(text: &str, prefix: &str) -> Vec<(String, Option<String>)> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect()
    };
    let needle = format!("{prefix}.");
    let mut out = Vec::new();
    for (pos, _) in text.match_indices(&needle) {
        let before = text[..pos].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            continue;
        }
        let rest = &text[pos + needle.len()..];
        let name = ident(rest);
        let attr = rest[name.len()..]
            .strip_prefix('.')
            .map(ident)
            .filter(|a| !a.is_empty());
        if !name.is_empty() {
            out.push((name, attr));
        }
    }
    out
}

#[test]
fn terraform_parses_and_every_reference_is_declared() {
    let root = repo_root().join("infrastructure").join("terraform");
    let dirs = tf_dirs(&root);
    assert!(
        dirs.iter().any(|d| d.ends_with("modules/report-hook"))
            && dirs.iter().any(|d| d.ends_with("modules/helios"))
            && dirs.iter().any(|d| d.ends_with("envs/example")),
        "missing Terraform directories under {}: {dirs:?}",
        root.display()
    );
    let modules: BTreeMap<PathBuf, TfModule> =
        dirs.iter().map(|d| (d.clone(), parse_module(d))).collect();
    const META: [&str; 6] = [
        "source",
        "version",
        "providers",
        "depends_on",
        "count",
        "for_each",
    ];
    for (dir, m) in &modules {
        let at = dir.display();
        for (name, _) in references(&m.text, "var") {
            assert!(
                m.variables.contains_key(&name),
                "{at}: var.{name} is not declared"
            );
        }
        for (name, _) in references(&m.text, "local") {
            assert!(
                m.locals.contains(&name),
                "{at}: local.{name} is not declared"
            );
        }
        let calls: BTreeMap<&str, &(String, String, Vec<String>)> =
            m.calls.iter().map(|c| (c.0.as_str(), c)).collect();
        for (name, attr) in references(&m.text, "module") {
            let (_, source, _) = calls
                .get(name.as_str())
                .unwrap_or_else(|| panic!("{at}: module.{name} is not declared"));
            let target = dir.join(source).canonicalize().expect("module path");
            let callee = &modules[&target];
            if let Some(attr) = attr {
                assert!(
                    callee.outputs.contains(&attr),
                    "{at}: module.{name}.{attr}: {source} has no such output"
                );
            }
        }
        for (name, source, keys) in &m.calls {
            let target = dir.join(source).canonicalize().unwrap_or_else(|e| {
                panic!("{at}: module {name}: source {source} does not exist: {e}")
            });
            let callee = modules
                .get(&target)
                .unwrap_or_else(|| panic!("{at}: module {name}: {source} is not a module"));
            for key in keys.iter().filter(|k| !META.contains(&k.as_str())) {
                assert!(
                    callee.variables.contains_key(key),
                    "{at}: module {name} passes {key}, which {source} does not declare"
                );
            }
            for (var, has_default) in &callee.variables {
                assert!(
                    *has_default || keys.contains(var),
                    "{at}: module {name} does not pass the required variable {var}"
                );
            }
        }
    }
}
