//! What this replica last wrote and probed, per object, for the current leadership term: the
//! status it wrote (so a reconcile that runs before the watch delivered that write neither resets
//! `lastTransitionTime` nor writes the same status again, without a GET) and the external probes
//! (Kafka topics, report hook) it ran, reused until a TTL passes or the generation changes; and
//! which unwatched child kinds it already swept for orphans.

use crate::apply::Version;
use crate::conditions::{Cond, Status};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A healthy external probe is reused for this long (a failing one never is): child events and
/// Detector changes in between do not reach Kafka, Lambda or S3 again.
pub const PROBE_TTL: Duration = Duration::from_secs(150);

/// A status this replica wrote, with the resourceVersion the API server answered.
#[derive(Debug, Clone, PartialEq)]
struct Written {
    resource_version: u64,
    status: serde_json::Value,
}

/// The status a reconcile should treat as stored: the newer of the watched object's and the one
/// this replica last wrote.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredStatus {
    /// The status as JSON (`None`: none yet).
    pub value: Option<serde_json::Value>,
    /// Its conditions (for `lastTransitionTime` and "warn once").
    pub conditions: Vec<Condition>,
}

/// What one probe of a pipeline's external systems found.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineProbe {
    /// `TopicsReady`.
    pub topics: Cond,
    /// Partitions of the events topic.
    pub events_partitions: Option<i32>,
    /// `ReportHookReady`.
    pub report: Cond,
}

impl PipelineProbe {
    fn healthy(&self) -> bool {
        self.topics.status == Status::True && self.report.status == Status::True
    }
}

#[derive(Debug, Clone)]
struct Probed {
    generation: Option<i64>,
    at: Instant,
    probe: PipelineProbe,
}

/// Per-object memory of one leadership term, keyed by `Kind/namespace/name`.
#[derive(Debug, Default)]
pub struct Memo {
    written: Mutex<HashMap<String, Written>>,
    probes: Mutex<HashMap<String, Probed>>,
    children: Mutex<HashMap<String, HashMap<String, Version>>>,
    swept: Mutex<HashMap<String, HashSet<&'static str>>>,
}

/// The owner key of a sweep that holds for every owner (the kind may not be listed this term).
pub const EVERY_OWNER: &str = "*";

/// A resourceVersion as a number (the API server's are etcd revisions; anything else is "unknown").
fn revision(rv: Option<&str>) -> Option<u64> {
    rv.and_then(|s| s.parse().ok())
}

impl Memo {
    /// The stored status of `key`: the watched object's (`object_rv`, `object_status`) unless this
    /// replica wrote a newer one that the watch has not delivered yet.
    pub fn stored(
        &self,
        key: &str,
        object_rv: Option<&str>,
        object_status: Option<serde_json::Value>,
    ) -> StoredStatus {
        let mine = self
            .written
            .lock()
            .ok()
            .and_then(|m| m.get(key).cloned())
            .filter(|w| revision(object_rv).is_none_or(|rv| w.resource_version > rv));
        let value = match mine {
            Some(w) => Some(w.status),
            None => object_status,
        };
        let conditions = value
            .as_ref()
            .and_then(|v| v.get("conditions"))
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or_default();
        StoredStatus { value, conditions }
    }

    /// Remember that `status` was written to `key` and the object is now at `rv`.
    pub fn wrote(&self, key: &str, rv: Option<&str>, status: serde_json::Value) {
        let Some(resource_version) = revision(rv) else {
            return;
        };
        if let Ok(mut m) = self.written.lock() {
            m.insert(
                key.to_string(),
                Written {
                    resource_version,
                    status,
                },
            );
        }
    }

    /// The last probe of `key` if it was healthy, for this `generation` and younger than the TTL.
    pub fn probe(&self, key: &str, generation: Option<i64>, now: Instant) -> Option<PipelineProbe> {
        let m = self.probes.lock().ok()?;
        let p = m.get(key)?;
        (p.generation == generation
            && now.saturating_duration_since(p.at) < PROBE_TTL
            && p.probe.healthy())
        .then(|| p.probe.clone())
    }

    /// Remember a probe of `key` at `generation` made at `now`.
    pub fn probed(&self, key: &str, generation: Option<i64>, now: Instant, probe: PipelineProbe) {
        if let Ok(mut m) = self.probes.lock() {
            m.insert(
                key.to_string(),
                Probed {
                    generation,
                    at: now,
                    probe,
                },
            );
        }
    }

    /// The version of child `child_key` of `owner_key` in the last apply answer of this term.
    pub fn child(&self, owner_key: &str, child_key: &str) -> Option<Version> {
        let m = self.children.lock().ok()?;
        m.get(owner_key)?.get(child_key).copied()
    }

    /// Remember the version of child `child_key` of `owner_key` an apply answered.
    pub fn saw_child(&self, owner_key: &str, child_key: &str, version: Version) {
        if let Ok(mut m) = self.children.lock() {
            m.entry(owner_key.to_string())
                .or_default()
                .insert(child_key.to_string(), version);
        }
    }

    /// Whether the unwatched child kind `kind` of `owner_key` was swept for orphans this term.
    pub fn swept(&self, owner_key: &str, kind: &str) -> bool {
        self.swept
            .lock()
            .is_ok_and(|m| m.get(owner_key).is_some_and(|kinds| kinds.contains(kind)))
    }

    /// Remember that the unwatched child kind `kind` of `owner_key` was swept for orphans.
    pub fn did_sweep(&self, owner_key: &str, kind: &'static str) {
        if let Ok(mut m) = self.swept.lock() {
            m.entry(owner_key.to_string()).or_default().insert(kind);
        }
    }

    /// Drop everything about `key` (the object is gone).
    pub fn forget(&self, key: &str) {
        if let Ok(mut m) = self.swept.lock() {
            m.remove(key);
        }
        if let Ok(mut m) = self.children.lock() {
            m.remove(key);
        }
        if let Ok(mut m) = self.written.lock() {
            m.remove(key);
        }
        if let Ok(mut m) = self.probes.lock() {
            m.remove(key);
        }
    }

    /// Keep only the keys for which `alive` holds (after a re-list, deletions arrive as absences).
    pub fn retain(&self, alive: impl Fn(&str) -> bool) {
        if let Ok(mut m) = self.swept.lock() {
            m.retain(|k, _| alive(k));
        }
        if let Ok(mut m) = self.children.lock() {
            m.retain(|k, _| alive(k));
        }
        if let Ok(mut m) = self.written.lock() {
            m.retain(|k, _| alive(k));
        }
        if let Ok(mut m) = self.probes.lock() {
            m.retain(|k, _| alive(k));
        }
    }

    /// Forget everything (a new leadership term: another replica may have written since).
    pub fn clear(&self) {
        self.retain(|_| false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(reason: &str) -> serde_json::Value {
        json!({"observedGeneration": 1, "conditions": [{
            "type": "Ready", "status": "False", "reason": reason, "message": "m",
            "lastTransitionTime": "2026-12-07T00:00:00Z", "observedGeneration": 1
        }]})
    }

    #[test]
    fn a_write_the_watch_has_not_delivered_wins_until_the_object_catches_up() {
        let memo = Memo::default();
        memo.wrote("P/ns/a", Some("120"), status("Mine"));
        let stale = memo.stored("P/ns/a", Some("100"), Some(status("Old")));
        assert_eq!(stale.value, Some(status("Mine")));
        assert_eq!(stale.conditions[0].reason, "Mine");
        let caught_up = memo.stored("P/ns/a", Some("120"), Some(status("Mine")));
        assert_eq!(caught_up.value, Some(status("Mine")));
        // Someone else wrote after us: the object is newer and wins.
        let newer = memo.stored("P/ns/a", Some("130"), Some(status("Theirs")));
        assert_eq!(newer.conditions[0].reason, "Theirs");
    }

    #[test]
    fn without_a_write_or_with_an_unparsable_version_the_object_is_stored() {
        let memo = Memo::default();
        let none = memo.stored("P/ns/a", Some("5"), None);
        assert_eq!(none, StoredStatus::default());
        memo.wrote("P/ns/a", Some("not-a-number"), status("Mine"));
        let kept = memo.stored("P/ns/a", Some("5"), Some(status("Old")));
        assert_eq!(kept.conditions[0].reason, "Old");
    }

    #[test]
    fn healthy_probes_are_reused_within_the_ttl_and_generation_only() {
        let memo = Memo::default();
        let ok = ok_probe();
        let t0 = Instant::now();
        memo.probed("P/ns/a", Some(2), t0, ok.clone());
        assert_eq!(memo.probe("P/ns/a", Some(2), t0), Some(ok.clone()));
        assert_eq!(memo.probe("P/ns/a", Some(3), t0), None);
        assert_eq!(memo.probe("P/ns/a", Some(2), t0 + PROBE_TTL), None);
        let failing = PipelineProbe {
            topics: Cond::fail("TopicsReady", "KafkaUnreachable", "down"),
            ..ok
        };
        memo.probed("P/ns/a", Some(2), t0, failing);
        assert_eq!(memo.probe("P/ns/a", Some(2), t0), None);
        memo.forget("P/ns/a");
        let version = Version {
            revision: Some(4),
            generation: None,
        };
        memo.saw_child("P/ns/b", "ConfigMap/ns/b", version);
        assert_eq!(memo.child("P/ns/b", "ConfigMap/ns/b"), Some(version));
        memo.probed("P/ns/b", Some(1), t0, ok_probe());
        memo.did_sweep("P/ns/b", "Role");
        assert!(memo.swept("P/ns/b", "Role"));
        assert!(!memo.swept("P/ns/b", "RoleBinding"));
        memo.retain(|k| k != "P/ns/b");
        assert!(!memo.swept("P/ns/b", "Role"));
        assert_eq!(memo.probe("P/ns/b", Some(1), t0), None);
        assert_eq!(memo.child("P/ns/b", "ConfigMap/ns/b"), None);
    }

    fn ok_probe() -> PipelineProbe {
        PipelineProbe {
            topics: Cond::ok("TopicsReady", "TopicsReady", "ok"),
            events_partitions: Some(3),
            report: Cond::ok("ReportHookReady", "Disabled", "off"),
        }
    }
}
