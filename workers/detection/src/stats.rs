//! Small numeric helpers: median, MAD, quantiles, mean.

/// Median of a slice (average of the two middle values for even lengths); 0 for empty input.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    let n = v.len();
    let (_, &mut upper, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        upper
    } else {
        // The lower middle is the largest value left of the upper middle.
        let lower = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lower + upper)
    }
}

/// Median absolute deviation around `center` (unscaled); 0 for empty input.
pub fn mad(values: &[f64], center: f64) -> f64 {
    let dev: Vec<f64> = values.iter().map(|x| (x - center).abs()).collect();
    median(&dev)
}

/// Quantile with linear interpolation between order statistics (numpy's default); 0 for empty.
pub fn quantile_linear(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    v[lo] + (v[hi] - v[lo]) * frac
}

/// Arithmetic mean; 0 for empty input.
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// Inverse of the covariance of `rows` (d columns) plus 0.01·I, by Gauss–Jordan elimination
/// (`None` when singular, which the ridge prevents in practice).
pub fn ridge_inverse(rows: &[Vec<f64>], d: usize) -> Option<Vec<Vec<f64>>> {
    let n = rows.len().max(1) as f64;
    let means: Vec<f64> = (0..d)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    let mut a: Vec<Vec<f64>> = (0..d)
        .map(|i| {
            let mut row: Vec<f64> = (0..d)
                .map(|j| {
                    rows.iter()
                        .map(|r| (r[i] - means[i]) * (r[j] - means[j]))
                        .sum::<f64>()
                        / n
                        + if i == j { 0.01 } else { 0.0 }
                })
                .collect();
            row.extend((0..d).map(|j| if i == j { 1.0 } else { 0.0 }));
            row
        })
        .collect();
    for col in 0..d {
        let pivot = (col..d).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
        a.swap(col, pivot);
        let p = a[col][col];
        if p.abs() < 1e-12 {
            return None;
        }
        for v in &mut a[col] {
            *v /= p;
        }
        for r in 0..d {
            if r != col {
                let f = a[r][col];
                if f != 0.0 {
                    let pivot_row = a[col].clone();
                    for (v, pv) in a[r].iter_mut().zip(&pivot_row) {
                        *v -= f * pv;
                    }
                }
            }
        }
    }
    Some(a.into_iter().map(|row| row[d..].to_vec()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(mad(&[1.0, 2.0, 3.0, 4.0, 100.0], 3.0), 1.0);
        assert_eq!(quantile_linear(&[0.0, 10.0], 0.25), 2.5);
        assert_eq!(quantile_linear(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.5), 3.0);
        assert_eq!(mean(&[]), 0.0);
        assert_eq!(mean(&[1.0, 2.0]), 1.5);
    }

    #[test]
    fn ridge_inverse_of_a_known_covariance() {
        // Columns with variances 1 and 4, uncorrelated: the inverse of diag(1.01, 4.01).
        let rows = vec![
            vec![1.0, 2.0],
            vec![-1.0, 2.0],
            vec![1.0, -2.0],
            vec![-1.0, -2.0],
        ];
        let inv = ridge_inverse(&rows, 2).expect("invertible");
        assert!((inv[0][0] - 1.0 / 1.01).abs() < 1e-12, "{inv:?}");
        assert!((inv[1][1] - 1.0 / 4.01).abs() < 1e-12, "{inv:?}");
        assert!(
            inv[0][1].abs() < 1e-12 && inv[1][0].abs() < 1e-12,
            "{inv:?}"
        );
        // Perfectly correlated columns stay invertible through the ridge.
        let rows: Vec<Vec<f64>> = (0..10).map(|i| vec![f64::from(i), f64::from(i)]).collect();
        assert!(ridge_inverse(&rows, 2).is_some());
    }
}
