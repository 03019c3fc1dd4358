//! Per-anomaly explanations: which features drove the score, actual vs typical, robust z.
//!
//! Contribution of feature `j` = `s(x) − s(x with x_j replaced by the training median)`: the
//! drop in anomaly score when that feature alone is made typical. Positive means the feature
//! pushed the score up. The robust z is `|x_j − median_j| / (1.4826·MAD_j)` (the MAD scaled
//! to be comparable with a normal z). A feature that is mostly constant (an error rate that is 0
//! in most windows) has MAD 0; then the scale falls back to `1.2533·MeanAD_j` (the mean absolute
//! deviation from the median, scaled the same way), so one stray error is a small z, not an
//! infinite one. Only a feature with no spread at all gives [`Z_CAP`] for any change; a value
//! equal to the median is always 0. The z is always finite.

use serde::{Deserialize, Serialize};

use crate::DetectionError;
use crate::forest::IsolationForest;
use crate::stats::{mad, mean, median};

/// Upper bound on the robust z (keeps JSON finite).
pub const Z_CAP: f64 = 1000.0;
const MAD_SCALE: f64 = 1.4826;
/// Makes the mean absolute deviation comparable with a normal standard deviation (√(π/2)).
const MEAN_AD_SCALE: f64 = 1.2533;

/// Typical values of each feature in the training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Median per feature.
    pub medians: Vec<f64>,
    /// Unscaled median absolute deviation per feature.
    pub mads: Vec<f64>,
    /// Unscaled mean absolute deviation from the median per feature (the fallback scale).
    #[serde(default)]
    pub mean_ads: Vec<f64>,
}

impl Baseline {
    /// Computes medians and MADs column by column.
    pub fn fit(rows: &[Vec<f64>]) -> Result<Self, DetectionError> {
        let d = rows
            .first()
            .map(Vec::len)
            .ok_or(DetectionError::EmptyTrainingSet)?;
        let mut medians = Vec::with_capacity(d);
        let mut mads = Vec::with_capacity(d);
        let mut mean_ads = Vec::with_capacity(d);
        for j in 0..d {
            let col = rows
                .iter()
                .map(|r| {
                    r.get(j).copied().ok_or(DetectionError::DimensionMismatch {
                        expected: d,
                        got: r.len(),
                    })
                })
                .collect::<Result<Vec<f64>, _>>()?;
            let m = median(&col);
            medians.push(m);
            mads.push(mad(&col, m));
            mean_ads.push(mean(&col.iter().map(|x| (x - m).abs()).collect::<Vec<_>>()));
        }
        Ok(Self {
            medians,
            mads,
            mean_ads,
        })
    }

    /// Robust z of `value` for feature `j` (finite, ≤ [`Z_CAP`]).
    pub fn robust_z(&self, j: usize, value: f64) -> f64 {
        let (Some(&m), Some(&d)) = (self.medians.get(j), self.mads.get(j)) else {
            return 0.0;
        };
        let diff = (value - m).abs();
        let mean_ad = self.mean_ads.get(j).copied().unwrap_or(0.0);
        let scale = if d > 0.0 {
            MAD_SCALE * d
        } else {
            MEAN_AD_SCALE * mean_ad
        };
        if diff == 0.0 {
            0.0
        } else if scale == 0.0 {
            Z_CAP
        } else {
            (diff / scale).min(Z_CAP)
        }
    }
}

/// One feature's part in an explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureContribution {
    /// Feature name.
    pub feature: String,
    /// Observed value.
    pub actual: f64,
    /// Training median.
    pub typical: f64,
    /// Robust z (see module docs).
    pub robust_z: f64,
    /// Score drop when the feature is set to its median (higher = more responsible).
    pub contribution: f64,
}

/// Why a row scored as it did; contributions sorted by decreasing contribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// Anomaly score `s(x)`.
    pub score: f64,
    /// Per-feature parts, most responsible first.
    pub contributions: Vec<FeatureContribution>,
}

impl Explanation {
    /// Names of features with a positive contribution, most responsible first.
    pub fn drivers(&self) -> Vec<&str> {
        self.contributions
            .iter()
            .filter(|c| c.contribution > 0.0)
            .map(|c| c.feature.as_str())
            .collect()
    }
}

/// Explains the score of `x` under `forest`, naming features with `names`.
pub fn explain(
    forest: &IsolationForest,
    baseline: &Baseline,
    x: &[f64],
    names: &[String],
) -> Result<Explanation, DetectionError> {
    if names.len() != x.len() || baseline.medians.len() != x.len() {
        return Err(DetectionError::DimensionMismatch {
            expected: x.len(),
            got: names.len(),
        });
    }
    let score = forest.score(x)?;
    let mut probe = x.to_vec();
    let mut contributions = Vec::with_capacity(x.len());
    for (j, name) in names.iter().enumerate() {
        let typical = baseline.medians[j];
        probe[j] = typical;
        let contribution = score - forest.score(&probe)?;
        probe[j] = x[j];
        contributions.push(FeatureContribution {
            feature: name.clone(),
            actual: x[j],
            typical,
            robust_z: baseline.robust_z(j, x[j]),
            contribution,
        });
    }
    contributions.sort_by(|a, b| {
        b.contribution
            .total_cmp(&a.contribution)
            .then_with(|| b.robust_z.total_cmp(&a.robust_z))
            .then_with(|| a.feature.cmp(&b.feature))
    });
    Ok(Explanation {
        score,
        contributions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::ForestConfig;
    use crate::rng::SplitMix64;

    #[test]
    fn perturbed_feature_ranks_first() {
        let mut r = SplitMix64::new(9);
        let rows: Vec<Vec<f64>> = (0..800)
            .map(|_| {
                vec![
                    100.0 + 10.0 * r.next_f64(),
                    0.01 * r.next_f64(),
                    50.0 + 5.0 * r.next_f64(),
                    80.0 + 8.0 * r.next_f64(),
                ]
            })
            .collect();
        let f = IsolationForest::fit(&rows, ForestConfig::default()).unwrap();
        let b = Baseline::fit(&rows).unwrap();
        let names: Vec<String> = ["event_count", "error_rate", "avg_latency", "p99_latency"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for j in 0..4 {
            let mut x = b.medians.clone();
            x[j] += 20.0 * (b.mads[j] + 1e-3);
            let e = explain(&f, &b, &x, &names).unwrap();
            assert_eq!(e.contributions[0].feature, names[j], "perturbed {j}: {e:?}");
            assert!(e.contributions[0].robust_z > 5.0);
            assert_eq!(e.drivers()[0], names[j]);
        }
    }

    #[test]
    fn robust_z_hand_computed_and_finite() {
        let b = Baseline::fit(&[vec![1.0, 5.0], vec![2.0, 5.0], vec![3.0, 5.0]]).unwrap();
        assert_eq!(b.medians, vec![2.0, 5.0]);
        assert_eq!(b.mads, vec![1.0, 0.0]);
        assert!((b.robust_z(0, 5.0) - 3.0 / 1.4826).abs() < 1e-12);
        assert_eq!(b.robust_z(1, 5.0), 0.0);
        assert_eq!(b.robust_z(1, 6.0), Z_CAP);
    }

    #[test]
    fn a_mostly_zero_feature_uses_the_mean_absolute_deviation() {
        // An error rate that is 0 in 7 of 10 windows: MAD 0, MeanAD 0.3·0.006.
        let rows: Vec<Vec<f64>> = (0..10)
            .map(|i| vec![if i % 3 == 0 { 0.006 } else { 0.0 }])
            .collect();
        let b = Baseline::fit(&rows).unwrap();
        assert_eq!(b.mads, vec![0.0]);
        let stray = b.robust_z(0, 0.008);
        assert!(
            stray > 1.0 && stray < 8.0,
            "one stray error is a small z: {stray}"
        );
        let burst = b.robust_z(0, 0.3);
        assert!(burst > 50.0, "an error burst is a large z: {burst}");
    }
}
