//! A mergeable quantile sketch: exact for small counts, DDSketch-style log buckets beyond.
//!
//! Up to [`EXACT_LIMIT`] values are kept verbatim and quantiles are exact. Beyond that, values
//! go into logarithmic buckets with relative accuracy [`RELATIVE_ACCURACY`] (1%): for any
//! quantile the returned value `v̂` satisfies `|v̂ − v| ≤ 0.01·v` where `v` is the exact
//! nearest-rank quantile. Values ≤ 0 (and negative latencies) are counted in a zero bucket
//! and reported as 0.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Number of values kept exactly before switching to buckets.
pub const EXACT_LIMIT: usize = 128;
/// Relative accuracy of the bucketed representation.
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// Mergeable quantile sketch over non-negative values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuantileSketch {
    exact: Vec<f64>,
    buckets: BTreeMap<i32, u64>,
    zeros: u64,
    bucketed: bool,
}

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

impl QuantileSketch {
    /// Total number of values inserted.
    pub fn count(&self) -> u64 {
        if self.bucketed {
            self.zeros + self.buckets.values().sum::<u64>()
        } else {
            self.exact.len() as u64
        }
    }

    /// Inserts one value; NaN is ignored.
    pub fn insert(&mut self, v: f64) {
        if v.is_nan() {
            return;
        }
        if self.bucketed {
            self.insert_bucket(v, 1);
        } else {
            self.exact.push(v);
            if self.exact.len() > EXACT_LIMIT {
                self.switch_to_buckets();
            }
        }
    }

    fn insert_bucket(&mut self, v: f64, n: u64) {
        if v <= 0.0 {
            self.zeros += n;
        } else {
            let v = if v.is_finite() { v } else { f64::MAX };
            let idx = (v.ln() / gamma().ln()).ceil() as i32;
            *self.buckets.entry(idx).or_insert(0) += n;
        }
    }

    fn switch_to_buckets(&mut self) {
        self.bucketed = true;
        for v in std::mem::take(&mut self.exact) {
            self.insert_bucket(v, 1);
        }
    }

    /// Merges another sketch into this one.
    pub fn merge(&mut self, other: &QuantileSketch) {
        if !self.bucketed && !other.bucketed && self.exact.len() + other.exact.len() <= EXACT_LIMIT
        {
            self.exact.extend_from_slice(&other.exact);
            return;
        }
        if !self.bucketed {
            self.switch_to_buckets();
        }
        for &v in &other.exact {
            self.insert_bucket(v, 1);
        }
        self.zeros += other.zeros;
        for (&k, &n) in &other.buckets {
            *self.buckets.entry(k).or_insert(0) += n;
        }
    }

    /// Nearest-rank quantile (`q` in [0, 1]): the value of rank `ceil(q·n)` (1-based).
    /// Returns `None` for an empty sketch.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        if !self.bucketed {
            let mut v = self.exact.clone();
            v.sort_by(f64::total_cmp);
            return v.get(rank as usize - 1).map(|x| x.max(0.0));
        }
        let mut seen = self.zeros;
        if seen >= rank {
            return Some(0.0);
        }
        let g = gamma();
        for (&idx, &c) in &self.buckets {
            seen += c;
            if seen >= rank {
                return Some(2.0 * g.powi(idx) / (g + 1.0));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_q(v: &[f64], q: f64) -> f64 {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let rank = ((q * s.len() as f64).ceil() as usize).max(1);
        s[rank - 1]
    }

    #[test]
    fn exact_for_small_counts() {
        let mut s = QuantileSketch::default();
        for v in [5.0, 1.0, 3.0, 2.0, 4.0] {
            s.insert(v);
        }
        assert_eq!(s.quantile(0.5), Some(3.0));
        assert_eq!(s.quantile(0.95), Some(5.0));
        assert_eq!(s.quantile(0.0), Some(1.0));
        assert_eq!(QuantileSketch::default().quantile(0.5), None);
    }

    #[test]
    fn bucketed_within_one_percent_and_mergeable() {
        let values: Vec<f64> = (1..=10_000)
            .map(|i| (i as f64 * 0.37).powf(1.3) + 1.0)
            .collect();
        let mut a = QuantileSketch::default();
        let mut b = QuantileSketch::default();
        for (i, &v) in values.iter().enumerate() {
            if i % 3 == 0 { a.insert(v) } else { b.insert(v) }
        }
        a.merge(&b);
        assert_eq!(a.count(), 10_000);
        for q in [0.5, 0.9, 0.95, 0.99] {
            let e = exact_q(&values, q);
            let got = a.quantile(q).unwrap();
            assert!(
                (got - e).abs() <= 0.01 * e + 1e-9,
                "q={q} got={got} exact={e}"
            );
        }
    }

    #[test]
    fn zeros_and_nan() {
        let mut s = QuantileSketch::default();
        for i in 0..300 {
            s.insert(if i < 200 { 0.0 } else { 10.0 });
        }
        s.insert(f64::NAN);
        assert_eq!(s.count(), 300);
        assert_eq!(s.quantile(0.5), Some(0.0));
        let p99 = s.quantile(0.99).unwrap();
        assert!((p99 - 10.0).abs() <= 0.1);
    }
}
