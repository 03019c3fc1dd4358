//! How a detector turns scores into "anomalous": an explicit threshold, a contamination
//! quantile, or — the default — an **alert budget**: the lowest threshold at which the key's
//! recently scored windows would have raised at most [`BUDGET_AIM`] × `false_alerts_per_week`
//! alerts per week after the alert policy (consecutive windows, cooldown, floors) on top of
//! what the guards flag at any threshold (rounded down: a history too short for one whole
//! alert allows none), and never below the tail extrapolation of those scores (peaks over
//! threshold, an exponential tail fitted to the top 10 %) at the per-window rate the budget
//! allows. Scores are out-of-sample: each was computed by a model that had not seen its window.

use serde::{Deserialize, Serialize};

use crate::alert::{AlertPolicy, ReplayWindow};
use crate::engine::seasonal::WEEK_MS;
use crate::stats::quantile_linear;

/// Threshold rule of a detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ThresholdRule {
    /// Anomalous when the score exceeds this value (0–1).
    Score(f64),
    /// Anomalous when the score exceeds the `(1 − c)` quantile of recent scores.
    Contamination(f64),
    /// At most this many alerts per key per week on the scored history.
    Budget {
        /// Alerts per key per week the history may produce.
        false_alerts_per_week: f64,
    },
}

impl ThresholdRule {
    /// Stable name of the rule (status messages, metric labels).
    pub fn name(&self) -> &'static str {
        match self {
            ThresholdRule::Score(_) => "threshold",
            ThresholdRule::Contamination(_) => "contamination",
            ThresholdRule::Budget { .. } => "alertBudget",
        }
    }
}

/// Scored windows needed before the contamination or budget rule is trusted.
pub const MIN_CALIBRATION: usize = 100;
/// Threshold while a contamination or budget rule is still calibrating.
pub const CALIBRATING_THRESHOLD: f64 = 0.9;
/// Highest threshold a rule may derive (a guard still flags beyond it).
pub const MAX_THRESHOLD: f64 = 0.995;
/// Share of the alert budget the derived threshold aims at: a threshold estimated from a week
/// or two of scores is noisy, and the budget is a ceiling on healthy traffic, not a target.
pub const BUDGET_AIM: f64 = 0.5;

/// A derived threshold and why it has that value.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdDecision {
    /// Threshold on the final score (anomalous iff `score >` it).
    pub value: f64,
    /// Human-readable reason (goes into the `ModelTrained` message).
    pub reason: String,
}

/// Derives the threshold for one key from its recent out-of-sample windows.
pub fn decide(
    rule: ThresholdRule,
    recent: &[ReplayWindow],
    policy: &AlertPolicy,
    hop_ms: i64,
    min_threshold: f64,
) -> ThresholdDecision {
    match rule {
        ThresholdRule::Score(t) => ThresholdDecision {
            value: t,
            reason: format!("threshold {t:.3} set explicitly (spec.model.threshold)"),
        },
        _ if recent.len() < MIN_CALIBRATION => ThresholdDecision {
            value: CALIBRATING_THRESHOLD,
            reason: format!(
                "{} calibrating ({} of {MIN_CALIBRATION} windows scored): threshold {CALIBRATING_THRESHOLD}",
                rule.name(),
                recent.len()
            ),
        },
        ThresholdRule::Contamination(c) => {
            let scores: Vec<f64> = recent.iter().map(|w| w.score).collect();
            let t = quantile_linear(&scores, 1.0 - c).clamp(min_threshold, MAX_THRESHOLD);
            ThresholdDecision {
                value: t,
                reason: format!(
                    "contamination {c}: threshold {t:.3} = the {:.1}% quantile of {} recent scores",
                    100.0 * (1.0 - c),
                    scores.len()
                ),
            }
        }
        ThresholdRule::Budget {
            false_alerts_per_week,
        } => budget(false_alerts_per_week, recent, policy, hop_ms, min_threshold),
    }
}

fn budget(
    per_week: f64,
    recent: &[ReplayWindow],
    policy: &AlertPolicy,
    hop_ms: i64,
    min_threshold: f64,
) -> ThresholdDecision {
    let hop = hop_ms.max(1) as f64;
    let span_ms = recent.len() as f64 * hop;
    let weeks = span_ms / WEEK_MS as f64;
    let aim = per_week * BUDGET_AIM;
    let allowed = (aim * weeks).floor() as usize;
    // Unforced windows only: a guard flags at any threshold, so it cannot be budgeted.
    let mut candidates: Vec<f64> = recent
        .iter()
        .filter(|w| !w.forced)
        .map(|w| w.score)
        .collect();
    candidates.sort_by(f64::total_cmp);
    candidates.dedup();
    // Fires are monotone non-increasing in the threshold: binary search the lowest candidate
    // whose replay stays within the allowance. The guards' own fires happen at any threshold,
    // so only the fires the threshold adds to them are counted against it.
    let fires = |t: f64| policy.replay_fires(recent, t).len();
    let forced_only = fires(f64::INFINITY);
    let (mut lo, mut hi) = (0usize, candidates.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fires(candidates[mid]).saturating_sub(forced_only) <= allowed {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let empirical = candidates
        .get(lo)
        .copied()
        .unwrap_or(min_threshold)
        .max(min_threshold);
    let windows_per_week = WEEK_MS as f64 / hop;
    let tail = tail_quantile(&candidates_unsorted(recent), aim / windows_per_week);
    // The history must stay within the allowance and the tail's extrapolation: while the
    // history is too short for a whole alert (allowed 0) the threshold is above every score
    // that did not come from a guard, so a daily hot spot the tail's fit misses no longer
    // pages every day.
    let t = empirical
        .max(tail.unwrap_or(min_threshold))
        .clamp(min_threshold, MAX_THRESHOLD);
    ThresholdDecision {
        value: t,
        reason: format!(
            "alert budget {per_week}/week (aiming at {aim}): threshold {t:.3} (would have raised {} alerts in the last {:.1} days)",
            fires(t),
            span_ms / 86_400_000.0
        ),
    }
}

fn candidates_unsorted(recent: &[ReplayWindow]) -> Vec<f64> {
    recent
        .iter()
        .filter(|w| !w.forced)
        .map(|w| w.score)
        .collect()
}

/// The `(1 − p)` quantile of `scores` extrapolated with an exponential tail fitted to the
/// exceedances over the 90 % quantile (`None` with fewer than 10 exceedances).
pub fn tail_quantile(scores: &[f64], p: f64) -> Option<f64> {
    if scores.is_empty() || p <= 0.0 {
        return None;
    }
    let u = quantile_linear(scores, 0.9);
    let excess: Vec<f64> = scores.iter().filter(|&&s| s > u).map(|s| s - u).collect();
    if excess.len() < 10 {
        return None;
    }
    let p_u = excess.len() as f64 / scores.len() as f64;
    if p >= p_u {
        return Some(quantile_linear(scores, 1.0 - p));
    }
    let sigma = excess.iter().sum::<f64>() / excess.len() as f64;
    Some(u + sigma * (p_u / p).ln())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Mode;
    use crate::rng::SplitMix64;
    use std::collections::BTreeMap;

    fn policy(min_consecutive: u32, cooldown_ms: i64) -> AlertPolicy {
        AlertPolicy {
            detector_id: "d".into(),
            bands: vec![],
            min_consecutive,
            cooldown_ms,
            floors: BTreeMap::new(),
            mode: Mode::Enforce,
        }
    }

    fn windows(n: usize, seed: u64) -> Vec<ReplayWindow> {
        let mut r = SplitMix64::new(seed);
        (0..n)
            .map(|i| ReplayWindow {
                start_ms: i as i64 * 300_000,
                score: 0.3 * r.next_f64(),
                forced: false,
                floor_ok: true,
            })
            .collect()
    }

    #[test]
    fn budget_keeps_the_history_within_the_allowance() {
        // Two weeks of 5-minute windows with 2% of them noisy bumps.
        let mut w = windows(4032, 1);
        let mut r = SplitMix64::new(2);
        for x in w.iter_mut() {
            if r.next_f64() < 0.02 {
                x.score = 0.4 + 0.3 * r.next_f64();
            }
        }
        let p = policy(1, 900_000);
        for per_week in [1.0, 5.0] {
            let d = decide(
                ThresholdRule::Budget {
                    false_alerts_per_week: per_week,
                },
                &w,
                &p,
                300_000,
                0.1,
            );
            let fired = p.replay_fires(&w, d.value).len() as f64;
            // Two weeks at half the budget.
            assert!(fired <= per_week, "{per_week}: {fired} {}", d.reason);
            assert!(d.reason.contains("alert budget"), "{}", d.reason);
        }
        // Contamination flags that fraction of windows, whatever the policy.
        let c = decide(ThresholdRule::Contamination(0.05), &w, &p, 300_000, 0.0);
        let flagged = w
            .iter()
            .filter(|x| crate::alert::exceeds(x.score, c.value))
            .count() as f64;
        assert!((flagged / w.len() as f64 - 0.05).abs() < 0.01);
        assert!(p.replay_fires(&w, c.value).len() > 50);
    }

    #[test]
    fn short_history_extrapolates_the_tail() {
        // One day of uniform(0, 0.3) scores: the budget of 1/week needs the 1/2016 quantile.
        let w = windows(288, 3);
        let d = decide(
            ThresholdRule::Budget {
                false_alerts_per_week: 1.0,
            },
            &w,
            &policy(1, 0),
            300_000,
            0.0,
        );
        let max = w.iter().map(|x| x.score).fold(0.0, f64::max);
        assert!(d.value > max, "{} vs max {max}", d.value);
        let few = decide(
            ThresholdRule::Budget {
                false_alerts_per_week: 1.0,
            },
            &w[..50],
            &policy(1, 0),
            300_000,
            0.0,
        );
        assert_eq!(few.value, CALIBRATING_THRESHOLD);
        assert!(few.reason.contains("calibrating"), "{}", few.reason);
    }

    #[test]
    fn a_daily_hot_spot_the_tail_misses_does_not_page_from_a_week_of_history() {
        // A week of uniform(0, 0.3) scores with one window a day at 0.55–0.61: the tail fitted
        // to the top 10 % extrapolates below 0.5, and with less than two weeks no whole alert
        // is allowed, so the threshold must clear every one of them.
        let mut w = windows(2016, 4);
        for day in 0..7 {
            w[day * 288 + 276].score = 0.55 + 0.01 * day as f64;
        }
        let p = policy(1, 900_000);
        let d = decide(
            ThresholdRule::Budget {
                false_alerts_per_week: 1.0,
            },
            &w,
            &p,
            300_000,
            0.5,
        );
        assert!(d.value >= 0.61, "{}", d.reason);
        assert_eq!(p.replay_fires(&w, d.value).len(), 0, "{}", d.reason);
    }

    #[test]
    fn guard_fires_do_not_spend_the_threshold_s_allowance() {
        // Two weeks (one alert allowed at half of 1/week) with five bumps at 0.70–0.78, once
        // without and once with three windows a guard forced: the threshold lets the highest
        // bump through either way (before, the forced fires used up the allowance and the
        // threshold fell to the tail's 0.4, letting all five page).
        let mut w = windows(4032, 6);
        for (k, i) in [400, 1200, 2000, 2800, 3600].into_iter().enumerate() {
            w[i].score = 0.70 + 0.02 * k as f64;
        }
        let p = policy(1, 900_000);
        let rule = ThresholdRule::Budget {
            false_alerts_per_week: 1.0,
        };
        let clean = decide(rule, &w, &p, 300_000, 0.0);
        for i in [500, 1500, 3000] {
            w[i].forced = true;
            w[i].score = 1.0;
        }
        let guarded = decide(rule, &w, &p, 300_000, 0.0);
        assert_eq!(
            clean.value, guarded.value,
            "{} / {}",
            clean.reason, guarded.reason
        );
        assert_eq!(
            p.replay_fires(&w, guarded.value).len(),
            3 + 1,
            "{}",
            guarded.reason
        );
    }

    #[test]
    fn explicit_threshold_is_kept() {
        let d = decide(ThresholdRule::Score(0.7), &[], &policy(1, 0), 300_000, 0.5);
        assert_eq!(d.value, 0.7);
    }

    #[test]
    fn tail_quantile_of_an_exponential() {
        let mut r = SplitMix64::new(5);
        let xs: Vec<f64> = (0..20_000).map(|_| -(1.0 - r.next_f64()).ln()).collect();
        // True 1e-4 upper quantile of Exp(1) is ln(1e4) ≈ 9.21.
        let q = tail_quantile(&xs, 1e-4).unwrap();
        assert!((q - 9.21).abs() < 0.6, "{q}");
        assert_eq!(tail_quantile(&xs[..20], 1e-4), None);
    }
}
