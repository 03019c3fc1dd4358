//! Status conditions: small builders, the `Ready` summary, transition-time bookkeeping and the
//! "does this status need a write" decision.
//!
//! Reconcilers describe conditions without timestamps ([`Cond`]); [`materialize`] turns them into
//! `metav1.Condition`s, keeping the previous `lastTransitionTime` when the status did not change,
//! so a reconcile that observes nothing new produces an identical status and no write.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::Serialize;

/// The status of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known (yet).
    Unknown,
}

impl Status {
    /// The wire form (`True`, `False`, `Unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }

    /// `True` when `ok`, else `False`.
    pub fn from_bool(ok: bool) -> Self {
        if ok { Status::True } else { Status::False }
    }
}

/// A condition as a reconciler decides it: no timestamp, no generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    /// Condition type (`Ready`, `TopicsReady`, …).
    pub type_: String,
    /// Its status.
    pub status: Status,
    /// A CamelCase reason, stable enough for alerts.
    pub reason: String,
    /// A human-readable message.
    pub message: String,
}

impl Cond {
    /// A condition of `type_` with `status`, `reason` and `message`.
    pub fn new(type_: &str, status: Status, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A `True` condition.
    pub fn ok(type_: &str, reason: &str, message: impl Into<String>) -> Self {
        Self::new(type_, Status::True, reason, message)
    }

    /// A `False` condition.
    pub fn fail(type_: &str, reason: &str, message: impl Into<String>) -> Self {
        Self::new(type_, Status::False, reason, message)
    }

    /// An `Unknown` condition.
    pub fn unknown(type_: &str, reason: &str, message: impl Into<String>) -> Self {
        Self::new(type_, Status::Unknown, reason, message)
    }
}

/// The summary `Ready` condition: `True` only when every part is `True`; otherwise `False` with
/// the reason of the first part that is not, and a message naming every such part.
pub fn ready(parts: &[Cond]) -> Cond {
    let failing: Vec<&Cond> = parts.iter().filter(|c| c.status != Status::True).collect();
    match failing.first() {
        None => Cond::ok(
            helios_crds::conditions::READY,
            "AllConditionsReady",
            "every detail condition is True",
        ),
        Some(first) => Cond::fail(
            helios_crds::conditions::READY,
            &first.reason,
            failing
                .iter()
                .map(|c| format!("{}: {}", c.type_, c.message))
                .collect::<Vec<_>>()
                .join("; "),
        ),
    }
}

/// Turn decided conditions into `metav1.Condition`s with `observedGeneration`; the previous
/// `lastTransitionTime` is kept when the status of that type did not change.
pub fn materialize(
    decided: &[Cond],
    previous: &[Condition],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    decided
        .iter()
        .map(|c| {
            let last = previous
                .iter()
                .find(|p| p.type_ == c.type_ && p.status == c.status.as_str())
                .map_or_else(|| now.clone(), |p| p.last_transition_time.clone());
            Condition {
                type_: c.type_.clone(),
                status: c.status.as_str().into(),
                reason: c.reason.clone(),
                message: truncate_message(&c.message),
                observed_generation: generation,
                last_transition_time: last,
            }
        })
        .collect()
}

/// The API server caps condition messages at 32768 bytes.
fn truncate_message(message: &str) -> String {
    const MAX: usize = 4096;
    if message.len() <= MAX {
        return message.to_string();
    }
    let mut end = MAX;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// The condition of `type_` in `conditions`.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether writing `desired` over `current` changes anything but timestamps.
pub fn status_needs_write<S: Serialize>(current: Option<&S>, desired: &S) -> bool {
    let Some(current) = current else {
        return true;
    };
    match (serde_json::to_value(current), serde_json::to_value(desired)) {
        (Ok(mut a), Ok(mut b)) => {
            strip_timestamps(&mut a);
            strip_timestamps(&mut b);
            a != b
        }
        _ => true,
    }
}

fn strip_timestamps(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("lastTransitionTime");
            map.values_mut().for_each(strip_timestamps);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_timestamps),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use helios_crds::conditions::*;
    use k8s_openapi::jiff::Timestamp;

    fn t(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    #[test]
    fn ready_is_true_only_when_all_parts_are() {
        let parts = [
            Cond::ok(TOPICS_READY, "TopicsCreated", "ok"),
            Cond::ok(DETECTORS_READY, "AllDetectorsReady", "2/2"),
        ];
        assert_eq!(ready(&parts).status, Status::True);
        let parts = [
            Cond::ok(TOPICS_READY, "TopicsCreated", "ok"),
            Cond::fail(INGESTION_AVAILABLE, "ReplicasUnavailable", "0/2 available"),
            Cond::unknown(DETECTORS_READY, "Pending", "not checked"),
        ];
        let r = ready(&parts);
        assert_eq!(r.status, Status::False);
        assert_eq!(r.reason, "ReplicasUnavailable");
        assert!(r.message.contains("IngestionAvailable: 0/2 available"));
        assert!(r.message.contains("DetectorsReady: not checked"));
    }

    #[test]
    fn transition_time_is_kept_while_status_is_unchanged() {
        let first = materialize(
            &[Cond::fail(TOPICS_READY, "KafkaUnreachable", "down")],
            &[],
            Some(1),
            &t(100),
        );
        assert_eq!(first[0].last_transition_time, t(100));
        assert_eq!(first[0].observed_generation, Some(1));
        // Same status, new reason and generation: time kept.
        let second = materialize(
            &[Cond::fail(TOPICS_READY, "Timeout", "slow")],
            &first,
            Some(2),
            &t(200),
        );
        assert_eq!(second[0].last_transition_time, t(100));
        assert_eq!(second[0].observed_generation, Some(2));
        // Status flips: new time.
        let third = materialize(
            &[Cond::ok(TOPICS_READY, "TopicsReady", "ok")],
            &second,
            Some(2),
            &t(300),
        );
        assert_eq!(third[0].last_transition_time, t(300));
        assert_eq!(third[0].status, "True");
    }

    #[test]
    fn no_write_when_only_timestamps_differ() {
        let a = materialize(&[Cond::ok(READY, "R", "m")], &[], Some(1), &t(1));
        let b = materialize(&[Cond::ok(READY, "R", "m")], &[], Some(1), &t(2));
        assert!(!status_needs_write(Some(&a), &b));
        let c = materialize(&[Cond::ok(READY, "R", "other")], &[], Some(1), &t(1));
        assert!(status_needs_write(Some(&a), &c));
        let d = materialize(&[Cond::ok(READY, "R", "m")], &[], Some(2), &t(1));
        assert!(status_needs_write(Some(&a), &d), "generation counts");
        assert!(status_needs_write(None, &a));
    }

    #[test]
    fn long_messages_are_truncated() {
        let c = materialize(
            &[Cond::fail(READY, "R", "x".repeat(10_000))],
            &[],
            None,
            &t(1),
        );
        assert!(c[0].message.len() < 4200);
    }
}
