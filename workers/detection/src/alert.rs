//! Alerting policy: severity bands, minimum consecutive windows, cooldown per fingerprint,
//! absolute floors, enforce/dry-run, stable fingerprints and deterministic alert ids.
//!
//! A window *qualifies* when the model flagged it and, if any floors are configured, at least
//! one driving feature is at or above its floor (drivers without a floor always pass). After
//! `min_consecutive` qualifying windows in a row an episode fires (unless the fingerprint is
//! in cooldown); further qualifying windows continue it, and the first non-qualifying window
//! resolves it. The cooldown only holds back alerts of the same or lower severity than the one
//! that started it: a Critical episode after a resolved Info one still pages. The alert id is `fnv1a64(fingerprint, episode start)`, so replaying the same
//! windows yields the same ids and never a duplicate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hash::fnv1a64_hex;

/// Alert severity, ordered Info < Warning < Critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// Informational.
    Info,
    /// Needs attention.
    Warning,
    /// Needs action now.
    Critical,
}

/// Scores at or above `min_score` get `severity` (the highest matching band wins).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeverityBand {
    /// Lower bound on the anomaly score.
    pub min_score: f64,
    /// Severity for scores in the band.
    pub severity: Severity,
}

/// Whether alerts notify anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Alerts are recorded and notify.
    Enforce,
    /// Alerts are recorded with `notify = false`.
    DryRun,
}

/// The alerting policy of one detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertPolicy {
    /// Detector id (part of the fingerprint).
    pub detector_id: String,
    /// Severity bands; below every band the severity is `Info`.
    pub bands: Vec<SeverityBand>,
    /// Qualifying windows in a row needed before firing (>= 1).
    pub min_consecutive: u32,
    /// Minimum time between the end of one episode's firing and the next firing (ms).
    pub cooldown_ms: i64,
    /// Absolute floors per feature name.
    pub floors: BTreeMap<String, f64>,
    /// Enforce or dry-run.
    pub mode: Mode,
}

impl AlertPolicy {
    /// Severity for a score.
    pub fn severity(&self, score: f64) -> Severity {
        self.bands
            .iter()
            .filter(|b| score >= b.min_score)
            .map(|b| b.severity)
            .max()
            .unwrap_or(Severity::Info)
    }

    fn passes_floors(&self, v: &WindowVerdict) -> bool {
        if self.floors.is_empty() {
            return true;
        }
        v.drivers.iter().any(|d| match self.floors.get(d) {
            None => true,
            Some(&floor) => v.values.get(d).is_some_and(|&x| x >= floor),
        })
    }
}

/// Whether a score is above a threshold, with a margin that absorbs float noise (a constant
/// series scores 0.5 ± 1e-15 and must never be "above" a 0.5 threshold).
pub fn exceeds(score: f64, threshold: f64) -> bool {
    score > threshold + 1e-9
}

/// One window of a single key as the alert-policy replay sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayWindow {
    /// Window start (ms).
    pub start_ms: i64,
    /// Final anomaly score of the window.
    pub score: f64,
    /// Flagged whatever the threshold (a guard fired).
    pub forced: bool,
    /// Whether the window passes the floors when flagged.
    pub floor_ok: bool,
}

impl AlertPolicy {
    /// Indices of the windows of one key that would fire an alert if windows scoring above
    /// `threshold` (or forced) were flagged: the same state machine as [`AlertState`]
    /// (consecutive windows, cooldown broken only by a higher severity), without hashing, for
    /// threshold sweeps and alert budgets.
    pub fn replay_fires(&self, windows: &[ReplayWindow], threshold: f64) -> Vec<usize> {
        let min_consecutive = self.min_consecutive.max(1);
        let (mut consecutive, mut active) = (0u32, None::<Severity>);
        let mut last_fired: Option<(i64, Severity)> = None;
        let mut fires = Vec::new();
        for (i, w) in windows.iter().enumerate() {
            let qualifies = (w.forced || exceeds(w.score, threshold)) && w.floor_ok;
            if !qualifies {
                consecutive = 0;
                active = None;
                continue;
            }
            consecutive = consecutive.saturating_add(1);
            let severity = self.severity(w.score);
            if let Some(a) = &mut active {
                *a = (*a).max(severity);
                continue;
            }
            if consecutive < min_consecutive {
                continue;
            }
            if let Some((last, last_severity)) = last_fired
                && w.start_ms - last < self.cooldown_ms
                && severity <= last_severity
            {
                continue;
            }
            active = Some(severity);
            last_fired = Some((w.start_ms, severity));
            fires.push(i);
        }
        fires
    }
}

/// Stable fingerprint: FNV-1a 64 hex of (detector id, partition key, sorted feature names).
pub fn fingerprint<S: AsRef<str>>(
    detector_id: &str,
    partition_key: &str,
    features: &[S],
) -> String {
    let mut names: Vec<&str> = features.iter().map(AsRef::as_ref).collect();
    names.sort_unstable();
    names.dedup();
    let joined = names.join(",");
    fnv1a64_hex(&[
        detector_id.as_bytes(),
        partition_key.as_bytes(),
        joined.as_bytes(),
    ])
}

/// Deterministic alert id: FNV-1a 64 hex of (fingerprint, episode start ms).
pub fn alert_id(fingerprint: &str, start_ms: i64) -> String {
    fnv1a64_hex(&[fingerprint.as_bytes(), start_ms.to_string().as_bytes()])
}

/// What the model said about one closed window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowVerdict {
    /// Partition key.
    pub partition_key: String,
    /// Window start (ms).
    pub window_start_ms: i64,
    /// Window end (ms).
    pub window_end_ms: i64,
    /// Anomaly score.
    pub score: f64,
    /// Whether the model flagged the window.
    pub anomalous: bool,
    /// Feature values of the window.
    pub values: BTreeMap<String, f64>,
    /// Features that drove the score, most responsible first.
    pub drivers: Vec<String>,
}

/// A fired alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Deterministic id.
    pub id: String,
    /// Stable fingerprint.
    pub fingerprint: String,
    /// Detector id.
    pub detector_id: String,
    /// Partition key.
    pub partition_key: String,
    /// Severity at firing.
    pub severity: Severity,
    /// Score of the firing window.
    pub score: f64,
    /// Start of the first window of the episode (ms).
    pub start_ms: i64,
    /// End of the firing window (ms).
    pub window_end_ms: i64,
    /// Driving features.
    pub drivers: Vec<String>,
    /// False in dry-run mode.
    pub notify: bool,
}

/// Result of feeding one window to [`AlertState`].
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// Nothing to report (normal window, no active episode).
    Quiet,
    /// Qualifying but fewer than `min_consecutive` in a row so far.
    Pending {
        /// Qualifying windows in a row.
        consecutive: u32,
        /// Needed to fire.
        needed: u32,
    },
    /// Would fire but the fingerprint is in cooldown.
    Suppressed {
        /// Fingerprint in cooldown.
        fingerprint: String,
    },
    /// A new episode started.
    Fired(Alert),
    /// The active episode goes on.
    Continuing {
        /// Id of the active alert.
        alert_id: String,
        /// Highest severity seen in the episode.
        severity: Severity,
    },
    /// The active episode ended (AnomalyActive clears).
    Resolved {
        /// Id of the ended alert.
        alert_id: String,
        /// End of the last anomalous window (ms).
        end_ms: i64,
    },
}

#[derive(Debug, Clone, Default)]
struct Episode {
    consecutive: u32,
    run_start: i64,
    last_end: i64,
    active: Option<(String, Severity)>,
    last_fired: Option<(i64, Severity)>,
}

/// Per-fingerprint episode tracking for one policy.
#[derive(Debug, Clone)]
pub struct AlertState {
    policy: AlertPolicy,
    features: Vec<String>,
    episodes: BTreeMap<String, Episode>,
}

/// A key's episode state set aside by [`AlertState::hold`].
#[derive(Debug, Clone)]
pub struct Held(Option<Episode>);

impl AlertState {
    /// Sets aside `partition_key`'s episode state, to be put back by [`AlertState::release`]
    /// (what happens in between leaves no trace).
    pub fn hold(&self, partition_key: &str) -> Held {
        let fp = fingerprint(&self.policy.detector_id, partition_key, &self.features);
        Held(self.episodes.get(&fp).cloned())
    }

    /// Puts back what [`AlertState::hold`] set aside.
    pub fn release(&mut self, partition_key: &str, held: Held) {
        let fp = fingerprint(&self.policy.detector_id, partition_key, &self.features);
        match held.0 {
            Some(e) => {
                self.episodes.insert(fp, e);
            }
            None => {
                self.episodes.remove(&fp);
            }
        }
    }

    /// Creates the state for a policy over the detector's feature set.
    pub fn new<S: AsRef<str>>(policy: AlertPolicy, features: &[S]) -> Self {
        Self {
            policy,
            features: features.iter().map(|f| f.as_ref().to_string()).collect(),
            episodes: BTreeMap::new(),
        }
    }

    /// Whether the partition has an active episode.
    pub fn is_active(&self, partition_key: &str) -> bool {
        let fp = fingerprint(&self.policy.detector_id, partition_key, &self.features);
        self.episodes.get(&fp).is_some_and(|e| e.active.is_some())
    }

    /// Feeds one window (in window order per key) and returns the transition.
    pub fn observe(&mut self, v: &WindowVerdict) -> Transition {
        let fp = fingerprint(&self.policy.detector_id, &v.partition_key, &self.features);
        let qualifies = v.anomalous && self.policy.passes_floors(v);
        let severity = self.policy.severity(v.score);
        let min_consecutive = self.policy.min_consecutive.max(1);
        let ep = self.episodes.entry(fp.clone()).or_default();
        if !qualifies {
            ep.consecutive = 0;
            return match ep.active.take() {
                Some((alert_id, _)) => Transition::Resolved {
                    alert_id,
                    end_ms: ep.last_end,
                },
                None => Transition::Quiet,
            };
        }
        if ep.consecutive == 0 {
            ep.run_start = v.window_start_ms;
        }
        ep.consecutive = ep.consecutive.saturating_add(1);
        ep.last_end = v.window_end_ms;
        if let Some((id, sev)) = &mut ep.active {
            *sev = (*sev).max(severity);
            return Transition::Continuing {
                alert_id: id.clone(),
                severity: *sev,
            };
        }
        if ep.consecutive < min_consecutive {
            return Transition::Pending {
                consecutive: ep.consecutive,
                needed: min_consecutive,
            };
        }
        if let Some((last, last_severity)) = ep.last_fired
            && v.window_start_ms - last < self.policy.cooldown_ms
            && severity <= last_severity
        {
            return Transition::Suppressed { fingerprint: fp };
        }
        let id = alert_id(&fp, ep.run_start);
        ep.active = Some((id.clone(), severity));
        ep.last_fired = Some((v.window_start_ms, severity));
        Transition::Fired(Alert {
            id,
            fingerprint: fp,
            detector_id: self.policy.detector_id.clone(),
            partition_key: v.partition_key.clone(),
            severity,
            score: v.score,
            start_ms: ep.run_start,
            window_end_ms: v.window_end_ms,
            drivers: v.drivers.clone(),
            notify: self.policy.mode == Mode::Enforce,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> AlertPolicy {
        AlertPolicy {
            detector_id: "det".into(),
            bands: vec![
                SeverityBand {
                    min_score: 0.6,
                    severity: Severity::Warning,
                },
                SeverityBand {
                    min_score: 0.8,
                    severity: Severity::Critical,
                },
            ],
            min_consecutive: 2,
            cooldown_ms: 1000,
            floors: BTreeMap::from([("p99_latency".to_string(), 200.0)]),
            mode: Mode::Enforce,
        }
    }

    fn verdict(start: i64, anomalous: bool, p99: f64) -> WindowVerdict {
        WindowVerdict {
            partition_key: "svc-a".into(),
            window_start_ms: start,
            window_end_ms: start + 100,
            score: 0.85,
            anomalous,
            values: BTreeMap::from([("p99_latency".to_string(), p99)]),
            drivers: vec!["p99_latency".to_string()],
        }
    }

    fn state(p: AlertPolicy) -> AlertState {
        AlertState::new(p, &["p99_latency", "event_count"])
    }

    #[test]
    fn min_consecutive_then_fire_continue_resolve() {
        let mut s = state(policy());
        assert_eq!(
            s.observe(&verdict(0, true, 300.0)),
            Transition::Pending {
                consecutive: 1,
                needed: 2
            }
        );
        let Transition::Fired(a) = s.observe(&verdict(100, true, 300.0)) else {
            panic!()
        };
        assert_eq!(a.start_ms, 0);
        assert_eq!(a.severity, Severity::Critical);
        assert!(a.notify);
        assert_eq!(a.id, alert_id(&a.fingerprint, 0));
        assert!(s.is_active("svc-a"));
        assert!(matches!(
            s.observe(&verdict(200, true, 300.0)),
            Transition::Continuing { .. }
        ));
        assert_eq!(
            s.observe(&verdict(300, false, 300.0)),
            Transition::Resolved {
                alert_id: a.id,
                end_ms: 300
            }
        );
        assert!(!s.is_active("svc-a"));
        assert_eq!(s.observe(&verdict(400, false, 300.0)), Transition::Quiet);
    }

    #[test]
    fn cooldown_suppresses_refire() {
        let mut s = state(policy());
        s.observe(&verdict(0, true, 300.0));
        assert!(matches!(
            s.observe(&verdict(100, true, 300.0)),
            Transition::Fired(_)
        ));
        s.observe(&verdict(200, false, 300.0));
        s.observe(&verdict(300, true, 300.0));
        assert!(matches!(
            s.observe(&verdict(400, true, 300.0)),
            Transition::Suppressed { .. }
        ));
        // Still the same run of qualifying windows; 1000 ms after the last firing it fires.
        let Transition::Fired(a) = s.observe(&verdict(1100, true, 300.0)) else {
            panic!()
        };
        assert_eq!(a.start_ms, 300);
    }

    #[test]
    fn a_higher_severity_breaks_through_the_cooldown() {
        let mut s = state(AlertPolicy {
            min_consecutive: 1,
            ..policy()
        });
        let mut low = verdict(0, true, 300.0);
        low.score = 0.65;
        let Transition::Fired(first) = s.observe(&low) else {
            panic!("the first anomaly fires")
        };
        s.observe(&verdict(100, false, 300.0));
        let mut same = verdict(200, true, 300.0);
        same.score = 0.65;
        assert!(matches!(s.observe(&same), Transition::Suppressed { .. }));
        s.observe(&verdict(300, false, 300.0));
        let mut high = verdict(400, true, 300.0);
        high.score = 0.99;
        let Transition::Fired(second) = s.observe(&high) else {
            panic!("an escalation inside the cooldown fires")
        };
        assert!(
            second.severity > first.severity,
            "{first:?} then {second:?}"
        );
    }

    #[test]
    fn floors_block_small_anomalies() {
        let mut s = state(AlertPolicy {
            min_consecutive: 1,
            ..policy()
        });
        assert_eq!(s.observe(&verdict(0, true, 150.0)), Transition::Quiet);
        assert!(matches!(
            s.observe(&verdict(100, true, 200.0)),
            Transition::Fired(_)
        ));
        // A driver without a floor passes.
        let mut s = state(AlertPolicy {
            min_consecutive: 1,
            ..policy()
        });
        let mut v = verdict(0, true, 10.0);
        v.drivers = vec!["event_count".to_string()];
        assert!(matches!(s.observe(&v), Transition::Fired(_)));
    }

    #[test]
    fn dry_run_records_without_notify_and_replay_is_identical() {
        let p = AlertPolicy {
            mode: Mode::DryRun,
            min_consecutive: 1,
            ..policy()
        };
        let run = || {
            let mut s = state(p.clone());
            match s.observe(&verdict(500, true, 300.0)) {
                Transition::Fired(a) => a,
                other => panic!("{other:?}"),
            }
        };
        let (a, b) = (run(), run());
        assert!(!a.notify);
        assert_eq!(a.id, b.id);
    }

    #[test]
    fn replay_matches_the_alert_state_machine() {
        let p = AlertPolicy {
            floors: BTreeMap::new(),
            ..policy()
        };
        let mut rng = crate::rng::SplitMix64::new(9);
        let windows: Vec<ReplayWindow> = (0..2000)
            .map(|i| ReplayWindow {
                start_ms: i * 100,
                score: rng.next_f64(),
                forced: rng.next_f64() < 0.02,
                floor_ok: rng.next_f64() < 0.9,
            })
            .collect();
        for threshold in [0.3, 0.6, 0.9] {
            let mut s = state(p.clone());
            let expected: Vec<usize> = windows
                .iter()
                .enumerate()
                .filter(|(_, w)| {
                    let v = WindowVerdict {
                        partition_key: "svc-a".into(),
                        window_start_ms: w.start_ms,
                        window_end_ms: w.start_ms + 100,
                        score: w.score,
                        anomalous: (w.forced || exceeds(w.score, threshold)) && w.floor_ok,
                        values: BTreeMap::new(),
                        drivers: vec![],
                    };
                    matches!(s.observe(&v), Transition::Fired(_))
                })
                .map(|(i, _)| i)
                .collect();
            assert!(!expected.is_empty());
            assert_eq!(p.replay_fires(&windows, threshold), expected, "{threshold}");
        }
    }

    #[test]
    fn fingerprint_stable_and_order_independent() {
        let a = fingerprint("det", "k", &["p99_latency", "error_rate"]);
        let b = fingerprint("det", "k", &["error_rate", "p99_latency"]);
        assert_eq!(a, b);
        assert_eq!(a.len(), 16);
        assert_ne!(a, fingerprint("det", "k2", &["error_rate", "p99_latency"]));
        assert_ne!(a, fingerprint("det2", "k", &["error_rate", "p99_latency"]));
        // Pinned value: changing the hash would break dedup across releases.
        assert_eq!(
            a,
            crate::hash::fnv1a64_hex(&[b"det", b"k", b"error_rate,p99_latency"])
        );
        assert_ne!(alert_id(&a, 0), alert_id(&a, 1));
    }
}
