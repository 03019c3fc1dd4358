//! Anomaly likelihood (as in Numenta's HTM detector): how improbable the short-term mean of a
//! raw score is under a Gaussian fitted robustly (median, 1.4826·MAD, refitted every 10
//! updates) to that mean's own recent history, so past incidents do not widen it; on a log
//! scale in [0, 1] (`ln(tail) / ln(1e-10)`: 0.5 ≈ a 1-in-100,000 event). It makes scores of
//! different keys comparable and turns "unusually high for this series" into one number.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::stats::{mad, median, quantile_linear};

/// Smallest standard deviation of the raw-score means: on a near-constant series a raw score
/// wobble of a few hundredths is noise, not a 5σ event.
pub const MIN_STD: f64 = 0.05;

/// Raw scores averaged when every feature is a request feature: each window already
/// aggregates minutes of requests, and three of them (15 min at 5-minute windows) page a drop
/// or a partial outage within 2 windows where the default 5 took 3–4.
pub const REQUEST_SHORT: usize = 3;

/// Likelihood settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LikelihoodConfig {
    /// Raw-score means kept to fit the Gaussian.
    pub window: usize,
    /// Raw scores averaged before the likelihood.
    pub short: usize,
    /// Means needed before the likelihood is non-zero.
    pub min_history: usize,
    /// Whether windows a guard flagged feed the mean (they score 1 whatever it says; left out,
    /// they do not keep the windows after a guarded spike flagged).
    #[serde(default = "yes")]
    pub learn_guarded: bool,
    /// Upper quantile `q` of the means: the standard deviation is at least the distance from
    /// the median to it over the normal's `q` quantile, so a heavy-tailed history widens the
    /// fit where the MAD would not (`None`: 1.4826·MAD alone). For bursty series: fitted to
    /// the MAD alone, the ordinary bursts of a tweet-volume series scored 1.0 (`ln(1e-10)`
    /// saturated on 659 of its windows). `spec.model.tailQuantile`.
    #[serde(default)]
    pub tail_quantile: Option<f64>,
}

fn yes() -> bool {
    true
}

impl Default for LikelihoodConfig {
    fn default() -> Self {
        Self {
            window: 3000,
            short: 5,
            min_history: 20,
            learn_guarded: true,
            tail_quantile: None,
        }
    }
}

/// Median and 1.4826·MAD (at least [`MIN_STD`]) of a sample.
fn robust_fit(values: &VecDeque<f64>, tail_quantile: Option<f64>) -> (f64, f64) {
    let v: Vec<f64> = values.iter().copied().collect();
    let m = median(&v);
    let sd = (1.4826 * mad(&v, m)).max(MIN_STD);
    let sd = match tail_quantile {
        Some(q) => sd.max((quantile_linear(&v, q) - m) / normal_quantile(q)),
        None => sd,
    };
    (m, sd)
}

/// The standard normal quantile of `p` in [0.5, 1), by bisection on [`normal_tail`].
fn normal_quantile(p: f64) -> f64 {
    let mut lo = 0.0f64;
    let mut hi = 10.0f64;
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if normal_tail(mid) > 1.0 - p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// `ln(tail)/ln(1e-10)` of `x` under a Gaussian `(mean, sd)`, in [0, 1].
fn log_tail(x: f64, (mean, sd): (f64, f64)) -> f64 {
    let tail = normal_tail((x - mean) / sd);
    ((tail + 1e-10).ln() / 1e-10f64.ln()).clamp(0.0, 1.0)
}

/// Upper tail probability of the standard normal, `Q(z) = P(Z > z)`.
pub fn normal_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Rolling likelihood state of one key.
#[derive(Debug, Clone, PartialEq)]
pub struct Likelihood {
    cfg: LikelihoodConfig,
    means: VecDeque<f64>,
    short: VecDeque<f64>,
    fit: Option<(f64, f64)>,
    since_fit: usize,
}

/// Updates between two refits of the robust Gaussian (median, 1.4826·MAD).
const REFIT_EVERY: usize = 10;

impl Likelihood {
    /// Empty state.
    pub fn new(cfg: LikelihoodConfig) -> Self {
        Self {
            cfg,
            means: VecDeque::new(),
            short: VecDeque::new(),
            fit: None,
            since_fit: 0,
        }
    }

    /// Scores the next raw score and learns it.
    pub fn update(&mut self, raw: f64) -> f64 {
        self.short.push_back(raw);
        if self.short.len() > self.cfg.short.max(1) {
            self.short.pop_front();
        }
        let avg = self.short.iter().sum::<f64>() / self.short.len() as f64;
        let n = self.means.len();
        if n >= self.cfg.min_history.max(2) && (self.fit.is_none() || self.since_fit >= REFIT_EVERY)
        {
            self.fit = Some(robust_fit(&self.means, self.cfg.tail_quantile));
            self.since_fit = 0;
        }
        let out = match self.fit {
            Some(fit) if n >= self.cfg.min_history.max(2) => log_tail(avg, fit),
            _ => 0.0,
        };
        self.since_fit += 1;
        self.means.push_back(avg);
        if self.means.len() > self.cfg.window {
            self.means.pop_front();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn tail_probability() {
        assert!((normal_tail(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_tail(1.959_964) - 0.025).abs() < 1e-6);
        assert!((normal_tail(-1.959_964) - 0.975).abs() < 1e-6);
        assert!(normal_tail(8.0) > 0.0 && normal_tail(8.0) < 1e-14);
    }

    #[test]
    fn ordinary_scores_are_low_and_a_jump_is_high() {
        let mut l = Likelihood::new(LikelihoodConfig::default());
        let mut r = SplitMix64::new(4);
        let mut max_normal: f64 = 0.0;
        for i in 0..2000 {
            let s = l.update(0.4 + 0.05 * r.next_f64());
            if i < 20 {
                assert_eq!(s, 0.0);
            }
            max_normal = max_normal.max(s);
        }
        assert!(max_normal < 0.4, "{max_normal}");
        let mut peak: f64 = 0.0;
        for _ in 0..5 {
            peak = peak.max(l.update(0.9));
        }
        assert!(peak > 0.9, "{peak}");
    }

    #[test]
    fn the_normal_quantile_inverts_the_tail() {
        // As exact as the erfc fit behind `normal_tail` (relative error < 1.2e-7).
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-5);
        assert!((normal_quantile(0.995) - 2.575_829).abs() < 1e-5);
        assert!(normal_quantile(0.5).abs() < 1e-6);
    }

    /// A bursty history: calm raw scores with a burst of 0.9 every 100 windows.
    fn bursty(l: &mut Likelihood, windows: usize) -> f64 {
        let mut r = SplitMix64::new(9);
        let mut last_burst = 0.0;
        for i in 0..windows {
            let burst = i % 100 >= 95;
            let s = l.update(if burst {
                0.9
            } else {
                0.3 + 0.02 * r.next_f64()
            });
            if burst {
                last_burst = s;
            }
        }
        last_burst
    }

    #[test]
    fn a_heavy_tailed_history_widens_the_fit_so_its_ordinary_bursts_do_not_saturate() {
        let tail = LikelihoodConfig {
            tail_quantile: Some(0.995),
            ..LikelihoodConfig::default()
        };
        let (mut mad_only, mut widened) = (
            Likelihood::new(LikelihoodConfig::default()),
            Likelihood::new(tail),
        );
        let (a, b) = (bursty(&mut mad_only, 3000), bursty(&mut widened, 3000));
        assert!(
            a > 0.99,
            "the MAD alone calls every burst a 1-in-10^10 event: {a}"
        );
        assert!(
            b < 0.5,
            "its own history makes a burst of that size ordinary: {b}"
        );
        // A burst far beyond the history's still stands out.
        let mut peak: f64 = 0.0;
        for _ in 0..5 {
            peak = peak.max(widened.update(3.0));
        }
        assert!(peak > 0.9, "{peak}");
    }
}
