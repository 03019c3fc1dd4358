//! The topic finalizer's bounded retry: after a few failed attempts or a deadline, the
//! finalizer is released with a Warning Event so a dead broker never wedges a namespace.

use crate::naming::{DELETE_ATTEMPTS_ANNOTATION, DELETE_STARTED_ANNOTATION};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;
use std::time::Duration;

/// Attempts before giving up.
pub const MAX_ATTEMPTS: u32 = 3;
/// Time since the first attempt before giving up.
pub const MAX_ELAPSED: Duration = Duration::from_secs(60);
/// Wait between attempts.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Progress of topic deletion, kept in annotations so it survives operator restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Failed attempts so far.
    pub attempts: u32,
    /// When the first attempt started.
    pub started: Timestamp,
}

impl Progress {
    /// Read the progress from the annotations (`started` defaults to `now`).
    pub fn from_annotations(
        annotations: Option<&BTreeMap<String, String>>,
        now: Timestamp,
    ) -> Self {
        let get = |k: &str| annotations.and_then(|a| a.get(k));
        Self {
            attempts: get(DELETE_ATTEMPTS_ANNOTATION)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            started: get(DELETE_STARTED_ANNOTATION)
                .and_then(|v| v.parse().ok())
                .unwrap_or(now),
        }
    }

    /// The annotations that record this progress.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                DELETE_ATTEMPTS_ANNOTATION.to_string(),
                self.attempts.to_string(),
            ),
            (
                DELETE_STARTED_ANNOTATION.to_string(),
                self.started.to_string(),
            ),
        ])
    }
}

/// What to do after an attempt to delete the topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The topics are gone: release the finalizer.
    Done,
    /// Record the failed attempt and try again after [`RETRY_AFTER`].
    Retry(Progress),
    /// Give up: release the finalizer with a Warning (the topics may remain).
    GiveUp(Progress),
}

/// Decide after an attempt that `succeeded` (or not), given the progress before it.
pub fn decide(before: Progress, succeeded: bool, now: Timestamp) -> Decision {
    if succeeded {
        return Decision::Done;
    }
    let after = Progress {
        attempts: before.attempts + 1,
        started: before.started,
    };
    let elapsed = now.duration_since(before.started);
    let limit = SignedDuration::try_from(MAX_ELAPSED).unwrap_or(SignedDuration::MAX);
    if after.attempts >= MAX_ATTEMPTS || elapsed >= limit {
        Decision::GiveUp(after)
    } else {
        Decision::Retry(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn success_releases() {
        let p = Progress {
            attempts: 2,
            started: ts(0),
        };
        assert_eq!(decide(p, true, ts(10)), Decision::Done);
    }

    #[test]
    fn retries_then_gives_up_after_three_attempts() {
        let p0 = Progress::from_annotations(None, ts(100));
        assert_eq!(
            p0,
            Progress {
                attempts: 0,
                started: ts(100)
            }
        );
        let Decision::Retry(p1) = decide(p0, false, ts(105)) else {
            panic!("expected a retry")
        };
        let Decision::Retry(p2) = decide(p1, false, ts(110)) else {
            panic!("expected a retry")
        };
        assert_eq!(
            decide(p2, false, ts(115)),
            Decision::GiveUp(Progress {
                attempts: 3,
                started: ts(100)
            })
        );
    }

    #[test]
    fn gives_up_after_the_deadline() {
        let p = Progress {
            attempts: 1,
            started: ts(0),
        };
        assert!(matches!(decide(p, false, ts(61)), Decision::GiveUp(_)));
    }

    #[test]
    fn progress_round_trips_through_annotations() {
        let p = Progress {
            attempts: 2,
            started: ts(1_700_000_000),
        };
        let back = Progress::from_annotations(Some(&p.annotations()), ts(0));
        assert_eq!(back, p);
    }
}
