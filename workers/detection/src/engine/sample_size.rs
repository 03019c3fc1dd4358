//! Deviations measured against the window's sample size: the latency percentiles, the mean
//! latency and the error rate of a window are statistics of its requests, and their sampling
//! noise shrinks as `1/√n`. At night a window holds a tenth of the peak's requests, so its
//! p99 is the slowest of a few dozen and wanders far more than at noon; one scale per
//! feature either pages on night-time noise or sleeps through a daytime spike. Each such
//! deviation is weighted by `√(n / n_ref)` (`n` the window's request count, `n_ref` the
//! median count of the training history) before it is compared with the feature's scale, so a
//! z means the same at every hour. The count itself, and gauges (`metrics.*`), keep weight 1.

use crate::features::Feature;
use serde::{Deserialize, Serialize};

/// Largest weight: a window far busier than usual is not trusted beyond this.
pub const MAX_WEIGHT: f64 = 4.0;

/// Requests a tail percentile must rest on before the range guard trusts it: the p99 of 90
/// requests is the slowest one, and one slow request is not an incident.
pub const MIN_TAIL_REQUESTS: f64 = 2.0;

/// Which deviations are weighted by the window's request count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleSize {
    /// Index of `event_count` among the base features.
    pub count: usize,
    /// Per base feature: whether its deviation is weighted.
    pub weighted: Vec<bool>,
    /// Per base feature: the share of requests above it when it is a tail percentile (0.01 for
    /// `p99_latency`) and `avg_latency`, which rests on every request, is a feature too.
    #[serde(default)]
    pub tails: Vec<Option<f64>>,
}

impl SampleSize {
    /// The weighting of `features` when they count requests (`None` otherwise): every
    /// statistic of the requests except the count itself.
    pub fn for_features(features: &[String]) -> Option<Self> {
        let count = features.iter().position(|f| f == "event_count")?;
        let with_mean = features.iter().any(|f| f == "avg_latency");
        Some(Self {
            count,
            weighted: features
                .iter()
                .map(|f| f != "event_count" && crate::features::per_request(f))
                .collect(),
            tails: features
                .iter()
                .map(|f| tail_share(f).filter(|_| with_mean))
                .collect(),
        })
    }

    /// Whether feature `j` of window `x` is a tail percentile resting on fewer than
    /// [`MIN_TAIL_REQUESTS`] requests (too few for the range guard to trust it alone). Only
    /// with `avg_latency` among the features, which the guard still watches: without it the
    /// tail is the only latency signal a detector has.
    pub fn thin_tail(&self, x: &[f64], j: usize) -> bool {
        let n = x.get(self.count).copied().unwrap_or(0.0);
        self.tails
            .get(j)
            .copied()
            .flatten()
            .is_some_and(|share| n * share < MIN_TAIL_REQUESTS)
    }

    /// The reference count of a history of base rows: their median count (at least 1).
    pub fn reference<'a>(&self, rows: impl Iterator<Item = &'a [f64]>) -> f64 {
        let counts: Vec<f64> = rows.filter_map(|x| x.get(self.count).copied()).collect();
        if counts.is_empty() {
            return 1.0;
        }
        crate::stats::median(&counts).max(1.0)
    }

    /// The weight of each base feature's deviation in window `x`, against `reference`.
    pub fn weights(&self, x: &[f64], reference: f64) -> Vec<f64> {
        let n = x.get(self.count).copied().unwrap_or(reference).max(0.0);
        let w = (n / reference.max(1.0)).sqrt().min(MAX_WEIGHT);
        (0..x.len())
            .map(|j| {
                if self.weighted.get(j).copied().unwrap_or(false) {
                    w
                } else {
                    1.0
                }
            })
            .collect()
    }
}

/// The share of requests above a latency percentile feature (`None` for other features).
fn tail_share(feature: &str) -> Option<f64> {
    feature
        .parse::<Feature>()
        .ok()
        .and_then(Feature::tail_share)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn weights_request_statistics_by_the_root_of_the_count() {
        let s = SampleSize::for_features(&names(&["event_count", "p99_latency", "metrics.cpu"]))
            .expect("counts requests");
        assert_eq!(s.weighted, [false, true, false]);
        assert_eq!(s.weights(&[25.0, 300.0, 0.5], 100.0), [1.0, 0.5, 1.0]);
        assert_eq!(s.weights(&[400.0, 300.0, 0.5], 100.0), [1.0, 2.0, 1.0]);
        // No requests: a percentile of nothing deviates by nothing.
        assert_eq!(s.weights(&[0.0, 0.0, 0.5], 100.0)[1], 0.0);
        assert_eq!(s.weights(&[1e9, 1.0, 0.5], 100.0)[1], MAX_WEIGHT);
    }

    #[test]
    fn a_percentile_of_few_requests_has_a_thin_tail() {
        let s = SampleSize::for_features(&names(&[
            "event_count",
            "p95_latency",
            "p99_latency",
            "avg_latency",
        ]))
        .expect("counts requests");
        // 90 requests: 0.9 above the p99 (thin), 4.5 above the p95.
        assert_eq!(
            (0..4)
                .map(|j| s.thin_tail(&[90.0, 1.0, 1.0, 1.0], j))
                .collect::<Vec<_>>(),
            [false, false, true, false]
        );
        assert!(!s.thin_tail(&[200.0, 1.0, 1.0, 1.0], 2));
        assert!(s.thin_tail(&[30.0, 1.0, 1.0, 1.0], 1));
        // Without the mean, the tail is the only latency signal: always trusted.
        let alone = SampleSize::for_features(&names(&["event_count", "p99_latency"]))
            .expect("counts requests");
        assert!(!alone.thin_tail(&[30.0, 1.0], 1));
    }

    #[test]
    fn the_reference_is_the_median_count() {
        let s = SampleSize::for_features(&names(&["error_rate", "event_count"])).expect("counts");
        let rows = [vec![0.0, 10.0], vec![0.0, 30.0], vec![0.0, 200.0]];
        assert_eq!(s.reference(rows.iter().map(Vec::as_slice)), 30.0);
        assert_eq!(s.reference(std::iter::empty()), 1.0);
    }

    #[test]
    fn gauges_alone_are_not_weighted() {
        assert!(SampleSize::for_features(&names(&["metrics.cpu", "p99_latency"])).is_none());
    }
}
