//! Deterministic names: Kafka topics, child objects, labels and annotations.
//!
//! Every name is a pure function of the CR's namespace and name, so a restarted reconciler
//! computes the same names and never creates duplicates. Names that would exceed a length limit
//! are truncated and suffixed with a hash of the full name, which keeps them collision-free.

use std::collections::BTreeMap;

/// The field manager of every server-side apply, and the `managed-by` label value.
pub const MANAGER: &str = "helios-operator";
/// The finalizer that deletes the Kafka topics (`deletionPolicy: Delete` only).
pub const TOPICS_FINALIZER: &str = "helios.dev/topics";
/// Label: the pipeline a child belongs to.
pub const PIPELINE_LABEL: &str = "helios.dev/pipeline";
/// Label: the detector a child belongs to.
pub const DETECTOR_LABEL: &str = "helios.dev/detector";
/// Annotation: how many topic deletions were attempted for a pipeline being deleted.
pub const DELETE_ATTEMPTS_ANNOTATION: &str = "helios.dev/topic-deletion-attempts";
/// Annotation: when the first topic deletion was attempted (RFC 3339).
pub const DELETE_STARTED_ANNOTATION: &str = "helios.dev/topic-deletion-started";
/// Annotation on pod templates: a hash of the rendered config, so a change rolls the pods.
pub const CONFIG_HASH_ANNOTATION: &str = "helios.dev/config-hash";

/// Kafka's limit on topic name length.
const TOPIC_MAX: usize = 249;
/// DNS-1035 label limit (Services, and a safe limit for every other child).
const DNS_LABEL_MAX: usize = 63;
/// StatefulSet names stay short enough for the `controller-revision-hash` pod label.
const STATEFULSET_MAX: usize = 52;

/// The two Kafka topics of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicNames {
    /// `helios.<namespace>.<pipeline>.events`.
    pub events: String,
    /// `helios.<namespace>.<pipeline>.anomalies`.
    pub anomalies: String,
}

/// The topic names of pipeline `name` in `namespace`. Namespaces contain no dots, so the
/// namespace/pipeline split is unambiguous and two pipelines never share a topic.
pub fn topic_names(namespace: &str, name: &str) -> TopicNames {
    TopicNames {
        events: topic_name(namespace, name, "events"),
        anomalies: topic_name(namespace, name, "anomalies"),
    }
}

fn topic_name(namespace: &str, name: &str, kind: &str) -> String {
    let full = format!("helios.{namespace}.{name}.{kind}");
    if full.len() <= TOPIC_MAX {
        return full;
    }
    let suffix = format!("-{:08x}.{kind}", fnv32(&full));
    let prefix = format!("helios.{namespace}.{name}");
    format!("{}{suffix}", truncate(&prefix, TOPIC_MAX - suffix.len()))
}

/// Name of the pipeline's ingestion Deployment, Service and PodDisruptionBudget.
pub fn ingest_name(pipeline: &str) -> String {
    bounded(&format!("{pipeline}-ingest"), DNS_LABEL_MAX)
}

/// Name of the pipeline's rendered-config ConfigMap.
pub fn config_name(pipeline: &str) -> String {
    bounded(&format!("{pipeline}-config"), DNS_LABEL_MAX)
}

/// Name of a detector's StatefulSet and headless Service.
pub fn detect_name(detector: &str) -> String {
    bounded(&format!("{detector}-detect"), STATEFULSET_MAX)
}

/// `name` if it fits in `max`, else a truncated prefix plus a hash of the whole name.
fn bounded(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let suffix = format!("-{:08x}", fnv32(name));
    let prefix = truncate(name, max - suffix.len()).trim_end_matches(['-', '.']);
    format!("{prefix}{suffix}")
}

fn truncate(text: &str, max: usize) -> &str {
    // Kubernetes names and topic names are ASCII, so byte slicing is safe; be defensive anyway.
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// 32-bit FNV-1a: a stable hash for name suffixes and config checksums.
pub fn fnv32(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The labels every child carries.
pub fn labels(component: &str, instance: &str, pipeline: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".into(),
            format!("helios-{component}"),
        ),
        ("app.kubernetes.io/instance".into(), instance.into()),
        ("app.kubernetes.io/component".into(), component.into()),
        ("app.kubernetes.io/managed-by".into(), MANAGER.into()),
        (PIPELINE_LABEL.into(), pipeline.into()),
    ])
}

/// The subset of [`labels`] that selects a workload's pods (stable across upgrades).
pub fn selector_labels(component: &str, instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".into(),
            format!("helios-{component}"),
        ),
        ("app.kubernetes.io/instance".into(), instance.into()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_the_convention() {
        let t = topic_names("team-a", "shop");
        assert_eq!(t.events, "helios.team-a.shop.events");
        assert_eq!(t.anomalies, "helios.team-a.shop.anomalies");
    }

    #[test]
    fn topic_names_do_not_collide_across_namespaces() {
        // "a" + "b.c" vs "a.b" + "c" cannot happen: namespaces have no dots.
        assert_ne!(
            topic_names("a", "b-c").events,
            topic_names("a-b", "c").events
        );
        assert_ne!(topic_names("x", "p").events, topic_names("y", "p").events);
    }

    #[test]
    fn long_topic_names_are_bounded_and_distinct() {
        let ns = "n".repeat(63);
        let a = topic_names(&ns, &"p".repeat(200));
        let b = topic_names(&ns, &format!("{}q", "p".repeat(199)));
        assert!(a.events.len() <= 249 && a.anomalies.len() <= 249);
        assert!(a.events.ends_with(".events") && a.anomalies.ends_with(".anomalies"));
        assert_ne!(a.events, b.events);
        assert_eq!(a, topic_names(&ns, &"p".repeat(200)), "deterministic");
    }

    #[test]
    fn child_names_are_bounded() {
        assert_eq!(ingest_name("shop"), "shop-ingest");
        assert_eq!(detect_name("auth-errors"), "auth-errors-detect");
        let long = "x".repeat(100);
        assert!(ingest_name(&long).len() <= 63);
        assert!(detect_name(&long).len() <= 52);
        assert_ne!(detect_name(&long), detect_name(&format!("{long}y")));
    }

    #[test]
    fn labels_carry_the_pipeline_and_manager() {
        let l = labels("ingest", "shop", "shop");
        assert_eq!(l["app.kubernetes.io/managed-by"], "helios-operator");
        assert_eq!(l[PIPELINE_LABEL], "shop");
        assert_eq!(l["app.kubernetes.io/instance"], "shop");
        assert_eq!(l["app.kubernetes.io/name"], "helios-ingest");
    }
}
