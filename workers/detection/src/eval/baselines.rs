//! Simple reference scorers for multivariate rows: random scores, the maximum robust z-score
//! and PCA reconstruction error. Each fits on training rows and scores rows afterwards (higher
//! = more anomalous); all are deterministic.

use crate::eval::error::EvalError;
use crate::rng::SplitMix64;
use crate::stats::{mad, median, quantile_linear};

/// A scorer fitted on training rows that assigns each row an anomaly score (higher = more
/// anomalous).
pub trait Baseline {
    /// Short identifier used in reports, e.g. `pca`.
    fn name(&self) -> &'static str;
    /// Fits on training rows (all of the same, non-zero width).
    fn fit(&mut self, train: &[Vec<f64>]) -> Result<(), EvalError>;
    /// Scores rows of the training width; fails if not fitted or on a width mismatch.
    fn score(&self, rows: &[Vec<f64>]) -> Result<Vec<f64>, EvalError>;
}

/// Fits `model` on `train` and returns `(training scores, test scores)`.
pub fn fit_score(
    model: &mut dyn Baseline,
    train: &[Vec<f64>],
    test: &[Vec<f64>],
) -> Result<(Vec<f64>, Vec<f64>), EvalError> {
    model.fit(train)?;
    Ok((model.score(train)?, model.score(test)?))
}

/// Threshold from training scores only: their `q`-quantile (linear interpolation, `q` clamped
/// to [0, 1], non-finite scores ignored). Flag rows whose score is strictly greater. Returns
/// `f64::INFINITY` (flag nothing) when there is no finite training score.
pub fn train_quantile_threshold(train_scores: &[f64], q: f64) -> f64 {
    let finite: Vec<f64> = train_scores
        .iter()
        .copied()
        .filter(|s| s.is_finite())
        .collect();
    if finite.is_empty() {
        f64::INFINITY
    } else {
        quantile_linear(&finite, q)
    }
}

/// Checks that `rows` are non-empty (when `need_rows`), rectangular and of width `width` (when
/// given); returns the width.
fn check_rows(
    rows: &[Vec<f64>],
    width: Option<usize>,
    need_rows: bool,
) -> Result<usize, EvalError> {
    let w = match (width, rows.first()) {
        (Some(w), _) => w,
        (None, Some(r)) => r.len(),
        (None, None) => 0,
    };
    if need_rows && rows.is_empty() {
        return Err(EvalError::Inconsistent("no training rows".into()));
    }
    if need_rows && w == 0 {
        return Err(EvalError::Inconsistent(
            "training rows have no columns".into(),
        ));
    }
    if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != w) {
        return Err(EvalError::Inconsistent(format!(
            "row {i} has {} columns, expected {w}",
            r.len()
        )));
    }
    Ok(w)
}

fn not_fitted(name: &str) -> EvalError {
    EvalError::Inconsistent(format!("{name}: score called before fit"))
}

/// Uniform random scores in [0, 1) from a fixed seed (the same rows count gives the same
/// scores); the chance-level reference.
#[derive(Debug, Clone)]
pub struct RandomScorer {
    seed: u64,
    width: Option<usize>,
}

impl RandomScorer {
    /// Creates the scorer with a seed.
    pub fn new(seed: u64) -> Self {
        Self { seed, width: None }
    }
}

impl Baseline for RandomScorer {
    fn name(&self) -> &'static str {
        "random"
    }

    fn fit(&mut self, train: &[Vec<f64>]) -> Result<(), EvalError> {
        self.width = Some(check_rows(train, None, true)?);
        Ok(())
    }

    fn score(&self, rows: &[Vec<f64>]) -> Result<Vec<f64>, EvalError> {
        let w = self.width.ok_or_else(|| not_fitted(self.name()))?;
        check_rows(rows, Some(w), false)?;
        let mut rng = SplitMix64::new(self.seed);
        Ok(rows.iter().map(|_| rng.next_f64()).collect())
    }
}

/// Maximum absolute robust z-score over features: per feature `(x − median) / (1.4826·MAD)`
/// from the training rows. When the MAD is 0 the scale falls back to 1.2533 × the mean
/// absolute deviation from the median, and to 1 for a constant feature.
#[derive(Debug, Clone, Default)]
pub struct MaxAbsZ {
    center: Vec<f64>,
    scale: Vec<f64>,
}

impl MaxAbsZ {
    /// Creates an unfitted scorer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Per-feature `(median, scale)` after fitting.
    pub fn params(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.center.iter().copied().zip(self.scale.iter().copied())
    }
}

impl Baseline for MaxAbsZ {
    fn name(&self) -> &'static str {
        "max_abs_z"
    }

    fn fit(&mut self, train: &[Vec<f64>]) -> Result<(), EvalError> {
        let w = check_rows(train, None, true)?;
        self.center.clear();
        self.scale.clear();
        for f in 0..w {
            let col: Vec<f64> = train.iter().map(|r| r[f]).collect();
            let med = median(&col);
            let mut s = 1.4826 * mad(&col, med);
            if !(s > 0.0 && s.is_finite()) {
                let mean_ad = col.iter().map(|x| (x - med).abs()).sum::<f64>() / col.len() as f64;
                s = 1.2533 * mean_ad;
            }
            if !(s > 0.0 && s.is_finite()) {
                s = 1.0;
            }
            self.center.push(med);
            self.scale.push(s);
        }
        Ok(())
    }

    fn score(&self, rows: &[Vec<f64>]) -> Result<Vec<f64>, EvalError> {
        if self.center.is_empty() {
            return Err(not_fitted(self.name()));
        }
        check_rows(rows, Some(self.center.len()), false)?;
        Ok(rows
            .iter()
            .map(|r| {
                r.iter()
                    .zip(self.params())
                    .map(|(x, (c, s))| ((x - c) / s).abs())
                    .fold(0.0, f64::max)
            })
            .collect())
    }
}

/// PCA reconstruction error: features standardised with the training mean and standard
/// deviation (1 for constant features), principal components of their correlation matrix by
/// Jacobi rotations; the leading components explaining `variance` (default 90 %) of the variance
/// are kept (at least 1 and at most d − 1 when d > 1; none when d = 1, so the score is z²).
/// Score = squared distance between the standardised row and its projection.
#[derive(Debug, Clone)]
pub struct Pca {
    variance: f64,
    mean: Vec<f64>,
    std: Vec<f64>,
    /// Kept components, each a unit vector of length d.
    components: Vec<Vec<f64>>,
    eigenvalues: Vec<f64>,
}

impl Default for Pca {
    /// Keeps the components explaining 90 % of the variance.
    fn default() -> Self {
        Self::new(0.9)
    }
}

impl Pca {
    /// Creates an unfitted scorer keeping the components that explain `variance` (clamped to
    /// [0, 1]) of the total.
    pub fn new(variance: f64) -> Self {
        Self {
            variance: variance.clamp(0.0, 1.0),
            mean: Vec::new(),
            std: Vec::new(),
            components: Vec::new(),
            eigenvalues: Vec::new(),
        }
    }

    /// Number of kept components after fitting.
    pub fn n_components(&self) -> usize {
        self.components.len()
    }

    /// All eigenvalues of the training correlation matrix, descending, after fitting.
    pub fn eigenvalues(&self) -> &[f64] {
        &self.eigenvalues
    }
}

impl Baseline for Pca {
    fn name(&self) -> &'static str {
        "pca"
    }

    fn fit(&mut self, train: &[Vec<f64>]) -> Result<(), EvalError> {
        let d = check_rows(train, None, true)?;
        let n = train.len() as f64;
        self.mean = (0..d)
            .map(|f| train.iter().map(|r| r[f]).sum::<f64>() / n)
            .collect();
        self.std = (0..d)
            .map(|f| {
                let m = self.mean[f];
                let var = train.iter().map(|r| (r[f] - m).powi(2)).sum::<f64>() / n;
                let s = var.sqrt();
                if s > 1e-12 * m.abs().max(1.0) && s.is_finite() {
                    s
                } else {
                    1.0
                }
            })
            .collect();
        let mut cov = vec![vec![0.0; d]; d];
        for r in train {
            let z: Vec<f64> = (0..d)
                .map(|f| (r[f] - self.mean[f]) / self.std[f])
                .collect();
            for (row, zi) in cov.iter_mut().zip(&z) {
                for (c, zj) in row.iter_mut().zip(&z) {
                    *c += zi * zj;
                }
            }
        }
        cov.iter_mut().flatten().for_each(|v| *v /= n);
        if cov.iter().flatten().any(|v| !v.is_finite()) {
            return Err(EvalError::Inconsistent(
                "pca: non-finite training values".into(),
            ));
        }
        let (values, vectors) = jacobi_eigen(cov);
        let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
        let mut k = 0;
        let mut acc = 0.0;
        while k < d && (acc < self.variance * total || k == 0) {
            acc += values[k].max(0.0);
            k += 1;
        }
        let k = if d == 1 { 0 } else { k.clamp(1, d - 1) };
        self.components = (0..k)
            .map(|c| (0..d).map(|i| vectors[i][c]).collect())
            .collect();
        self.eigenvalues = values;
        Ok(())
    }

    fn score(&self, rows: &[Vec<f64>]) -> Result<Vec<f64>, EvalError> {
        if self.mean.is_empty() {
            return Err(not_fitted(self.name()));
        }
        let d = self.mean.len();
        check_rows(rows, Some(d), false)?;
        Ok(rows
            .iter()
            .map(|r| {
                let z: Vec<f64> = (0..d)
                    .map(|f| (r[f] - self.mean[f]) / self.std[f])
                    .collect();
                let mut resid = z.clone();
                for c in &self.components {
                    let p: f64 = z.iter().zip(c).map(|(a, b)| a * b).sum();
                    for (x, v) in resid.iter_mut().zip(c) {
                        *x -= p * v;
                    }
                }
                resid.iter().map(|x| x * x).sum()
            })
            .collect())
    }
}

/// Eigendecomposition of a symmetric matrix by cyclic Jacobi rotations. Returns eigenvalues in
/// descending order and the matrix whose column `k` is the unit eigenvector of value `k`.
pub fn jacobi_eigen(mut a: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let d = a.len();
    let mut v: Vec<Vec<f64>> = (0..d)
        .map(|i| (0..d).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    let scale: f64 = a
        .iter()
        .flatten()
        .map(|x| x * x)
        .sum::<f64>()
        .max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|p| ((p + 1)..d).map(move |q| (p, q)))
            .map(|(p, q)| a[p][q] * a[p][q])
            .sum();
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..d {
            for q in (p + 1)..d {
                let apq = a[p][q];
                if apq.abs() <= f64::MIN_POSITIVE {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (kp, kq) = (row[p], row[q]);
                    row[p] = c * kp - s * kq;
                    row[q] = s * kp + c * kq;
                }
                let (lo, hi) = a.split_at_mut(q);
                for (xp, xq) in lo[p].iter_mut().zip(hi[0].iter_mut()) {
                    let (pk, qk) = (*xp, *xq);
                    *xp = c * pk - s * qk;
                    *xq = s * pk + c * qk;
                }
                for row in v.iter_mut() {
                    let (kp, kq) = (row[p], row[q]);
                    row[p] = c * kp - s * kq;
                    row[q] = s * kp + c * kq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&i, &j| a[j][j].total_cmp(&a[i][i]));
    let values = order.iter().map(|&i| a[i][i]).collect();
    let vectors = (0..d)
        .map(|r| order.iter().map(|&c| v[r][c]).collect())
        .collect();
    (values, vectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaussian(rng: &mut SplitMix64) -> f64 {
        let u1 = 1.0 - rng.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * rng.next_f64()).cos()
    }

    #[test]
    fn jacobi_reconstructs_a_symmetric_matrix() {
        let a = vec![
            vec![4.0, 1.0, 0.5, 0.0],
            vec![1.0, 3.0, 0.2, 0.1],
            vec![0.5, 0.2, 2.0, 0.7],
            vec![0.0, 0.1, 0.7, 1.0],
        ];
        let (vals, vecs) = jacobi_eigen(a.clone());
        assert!(vals.windows(2).all(|w| w[0] >= w[1]));
        for i in 0..4 {
            for j in 0..4 {
                let r: f64 = (0..4).map(|k| vecs[i][k] * vals[k] * vecs[j][k]).sum();
                assert!((r - a[i][j]).abs() < 1e-10, "({i},{j}) {r} vs {}", a[i][j]);
                let dot: f64 = (0..4).map(|k| vecs[k][i] * vecs[k][j]).sum();
                assert!((dot - if i == j { 1.0 } else { 0.0 }).abs() < 1e-10);
            }
        }
        assert!((vals.iter().sum::<f64>() - 10.0).abs() < 1e-10);
    }

    #[test]
    fn pca_separates_on_and_off_plane() {
        // Points on the plane spanned by u and w in 4-D, plus tiny noise.
        let mut rng = SplitMix64::new(3);
        let (u, w) = ([1.0, 2.0, 0.0, -1.0], [0.0, 1.0, 3.0, 1.0]);
        let on_plane = |a: f64, b: f64| (0..4).map(|i| a * u[i] + b * w[i]).collect::<Vec<f64>>();
        let train: Vec<Vec<f64>> = (0..500)
            .map(|_| {
                let mut r = on_plane(gaussian(&mut rng), gaussian(&mut rng));
                r.iter_mut().for_each(|x| *x += 1e-4 * gaussian(&mut rng));
                r
            })
            .collect();
        let mut pca = Pca::default();
        pca.fit(&train).unwrap();
        assert_eq!(pca.n_components(), 2);
        // The plane's normal (orthogonal to u and w).
        let normal = [3.0, -1.0, 0.0, 1.0];
        let mut off = on_plane(0.5, -0.3);
        off.iter_mut().zip(normal).for_each(|(x, n)| *x += n);
        let s = pca
            .score(&[on_plane(0.5, -0.3), on_plane(-1.0, 2.0), off])
            .unwrap();
        assert!(s[0] < 1e-6 && s[1] < 1e-6, "{s:?}");
        assert!(s[2] > 0.1, "{s:?}");
        let train_scores = pca.score(&train).unwrap();
        assert!(s[2] > 1e3 * train_quantile_threshold(&train_scores, 1.0));
    }

    #[test]
    fn max_abs_z_flags_outlier_and_all_finite() {
        let mut rng = SplitMix64::new(9);
        let train: Vec<Vec<f64>> = (0..1000)
            .map(|_| vec![gaussian(&mut rng), 5.0 + 2.0 * gaussian(&mut rng), 7.0])
            .collect();
        let mut z = MaxAbsZ::new();
        let (tr, te) =
            fit_score(&mut z, &train, &[vec![0.0, 25.0, 7.0], vec![0.1, 5.0, 7.0]]).unwrap();
        let t = train_quantile_threshold(&tr, 0.999);
        assert!(te[0] > 8.0 && te[0] > t, "{te:?} thr {t}");
        assert!(te[1] < t);
        // The constant third column got the fallback scale of 1.
        assert_eq!(z.params().nth(2), Some((7.0, 1.0)));
        let (tr, te) = fit_score(&mut Pca::default(), &train, &[vec![0.0, 25.0, 7.0]]).unwrap();
        assert!(tr.iter().chain(&te).all(|s| s.is_finite()));
    }

    #[test]
    fn random_is_deterministic_and_errors_are_reported() {
        let train = vec![vec![1.0, 2.0], vec![2.0, 3.0], vec![0.0, 1.0]];
        let mut r = RandomScorer::new(5);
        assert!(r.score(&train).is_err());
        r.fit(&train).unwrap();
        let a = r.score(&train).unwrap();
        assert_eq!(a, r.score(&train).unwrap());
        assert!(a.iter().all(|s| (0.0..1.0).contains(s)));
        assert!(r.score(&[vec![1.0]]).is_err());
        assert!(MaxAbsZ::new().fit(&[]).is_err());
        assert!(Pca::default().fit(&[vec![1.0], vec![1.0, 2.0]]).is_err());
        // One column: no component kept, the score is the squared z.
        let mut p = Pca::default();
        p.fit(&[vec![1.0], vec![3.0]]).unwrap();
        assert_eq!(p.n_components(), 0);
        assert_eq!(p.score(&[vec![4.0]]).unwrap(), vec![4.0]);
        for b in [
            &Pca::default() as &dyn Baseline,
            &MaxAbsZ::new(),
            &RandomScorer::new(1),
        ] {
            assert!(!b.name().is_empty());
        }
        assert_eq!(train_quantile_threshold(&[], 0.5), f64::INFINITY);
        assert_eq!(train_quantile_threshold(&[1.0, f64::NAN, 3.0], 0.5), 2.0);
    }
}
