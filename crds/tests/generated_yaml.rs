//! The checked-in CRD YAML under `crds/yaml/` is exactly what the Rust types generate.

use std::path::Path;

#[test]
fn checked_in_crds_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("yaml");
    let files = helios_crds::generate::crd_files().expect("CRDs render");
    assert_eq!(files.len(), 2, "one file per CRD");
    for (name, generated) in files {
        let path = dir.join(&name);
        let current = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run `cargo run -p helios -- crdgen`",
                path.display()
            )
        });
        assert!(
            current == generated,
            "{} is out of date with the Rust types: run `cargo run -p helios -- crdgen`",
            path.display()
        );
    }
}

#[test]
fn every_field_has_a_description() {
    // `kubectl explain` teaches the API only if every property is described.
    for (name, yaml) in helios_crds::generate::crd_files().expect("CRDs render") {
        let doc: serde_json::Value = serde_yaml::from_str(&yaml).expect("valid YAML");
        let schema = &doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let mut missing = Vec::new();
        walk(schema, "spec", &mut missing);
        assert!(
            missing.is_empty(),
            "{name}: fields without description: {missing:?}"
        );
    }
}

fn walk(node: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
    if let Some(props) = node.get("properties").and_then(|p| p.as_object()) {
        for (key, child) in props {
            let child_path = format!("{path}.{key}");
            let described = child
                .get("description")
                .and_then(|d| d.as_str())
                .is_some_and(|d| !d.is_empty());
            // k8s-openapi types (resources) carry upstream descriptions; ours must too.
            if !described {
                missing.push(child_path.clone());
            }
            walk(child, &child_path, missing);
        }
    }
    if let Some(items) = node.get("items") {
        walk(items, &format!("{path}[]"), missing);
    }
    if let Some(extra) = node.get("additionalProperties").filter(|v| v.is_object()) {
        walk(extra, &format!("{path}{{}}"), missing);
    }
}
