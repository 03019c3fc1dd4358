//! Window-level and point-level precision/recall/F1, point adjustment and ROC-AUC.

use serde::Serialize;

/// Precision, recall and F1 with the counts behind them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prf {
    /// True positives (windows detected, or points).
    pub tp: usize,
    /// False positives.
    pub fp: usize,
    /// False negatives.
    pub fn_: usize,
    /// tp / (tp + fp), 0 if undefined.
    pub precision: f64,
    /// tp / (tp + fn), 0 if undefined.
    pub recall: f64,
    /// Harmonic mean of precision and recall, 0 if undefined.
    pub f1: f64,
}

impl Prf {
    /// Builds the ratios from counts.
    pub fn from_counts(tp: usize, fp: usize, fn_: usize) -> Self {
        let ratio = |a: usize, b: usize| {
            if a + b == 0 {
                0.0
            } else {
                a as f64 / (a + b) as f64
            }
        };
        let precision = ratio(tp, fp);
        let recall = ratio(tp, fn_);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Self {
            tp,
            fp,
            fn_,
            precision,
            recall,
            f1,
        }
    }
}

/// Window P/R/F1: a window is detected if any detection falls inside it; every detection
/// outside all windows is a false positive. Windows are inclusive row ranges.
pub fn window_prf(detections: &[bool], windows: &[(usize, usize)]) -> Prf {
    let inside = |i: usize| windows.iter().any(|&(l, r)| l <= i && i <= r);
    let tp = windows
        .iter()
        .filter(|&&(l, r)| (l..=r).any(|i| detections.get(i).copied().unwrap_or(false)))
        .count();
    let fp = detections
        .iter()
        .enumerate()
        .filter(|&(i, &d)| d && !inside(i))
        .count();
    Prf::from_counts(tp, fp, windows.len() - tp)
}

/// Point-wise P/R/F1.
pub fn point_prf(pred: &[bool], labels: &[bool]) -> Prf {
    let mut c = (0, 0, 0);
    for (&p, &l) in pred.iter().zip(labels) {
        match (p, l) {
            (true, true) => c.0 += 1,
            (true, false) => c.1 += 1,
            (false, true) => c.2 += 1,
            (false, false) => {}
        }
    }
    Prf::from_counts(c.0, c.1, c.2)
}

/// Point adjustment: if any point of a labelled segment is predicted, the whole segment is.
pub fn point_adjust(pred: &[bool], labels: &[bool]) -> Vec<bool> {
    let mut out = pred.to_vec();
    let mut i = 0;
    while i < labels.len() {
        if !labels[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < labels.len() && labels[i] {
            i += 1;
        }
        if pred[start..i.min(pred.len())].iter().any(|&p| p) {
            for o in out.iter_mut().take(i).skip(start) {
                *o = true;
            }
        }
    }
    out
}

/// ROC-AUC by the Mann–Whitney statistic (ties count one half); `None` if one class is empty.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let mut idx: Vec<usize> = (0..scores.len().min(labels.len())).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut pos) = (0.0, 0usize);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j < idx.len() && scores[idx[j]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j + 1) as f64 / 2.0; // 1-based average rank of the tie group
        for &k in &idx[i..j] {
            if labels[k] {
                rank_sum += avg_rank;
                pos += 1;
            }
        }
        i = j;
    }
    let neg = idx.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let p = pos as f64;
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * neg as f64))
}

/// Best point-adjusted F1 over all thresholds (the usual SMD protocol) and its threshold.
pub fn best_point_adjusted_f1(scores: &[f64], labels: &[bool]) -> (f64, Prf) {
    let mut cands: Vec<f64> = scores.to_vec();
    cands.sort_by(f64::total_cmp);
    cands.dedup();
    let step = (cands.len() / 200).max(1);
    let mut best = (f64::INFINITY, Prf::from_counts(0, 0, 0));
    for &t in cands.iter().step_by(step) {
        let pred: Vec<bool> = scores.iter().map(|&s| s >= t).collect();
        let prf = point_prf(&point_adjust(&pred, labels), labels);
        if prf.f1 > best.1.f1 {
            best = (t, prf);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts() {
        let mut d = vec![false; 20];
        d[3] = true; // inside (2,4)
        d[4] = true; // same window, no extra credit
        d[10] = true; // FP
        let p = window_prf(&d, &[(2, 4), (12, 15)]);
        assert_eq!((p.tp, p.fp, p.fn_), (1, 1, 1));
        assert_eq!(p.precision, 0.5);
        assert_eq!(p.recall, 0.5);
        assert_eq!(p.f1, 0.5);
    }

    #[test]
    fn point_and_adjusted() {
        let labels = [false, true, true, true, false, false];
        let pred = [false, false, true, false, false, true];
        let p = point_prf(&pred, &labels);
        assert_eq!((p.tp, p.fp, p.fn_), (1, 1, 2));
        let adj = point_adjust(&pred, &labels);
        assert_eq!(adj, vec![false, true, true, true, false, true]);
        let pa = point_prf(&adj, &labels);
        assert_eq!((pa.tp, pa.fp, pa.fn_), (3, 1, 0));
        assert!((pa.f1 - 2.0 * 0.75 / 1.75).abs() < 1e-12);
    }

    #[test]
    fn auc_hand_computed() {
        assert_eq!(
            roc_auc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]),
            Some(1.0)
        );
        assert_eq!(roc_auc(&[0.5, 0.5], &[false, true]), Some(0.5));
        // pos {0.4, 0.8}, neg {0.2, 0.6}: pairs won 3 of 4.
        assert_eq!(
            roc_auc(&[0.4, 0.8, 0.2, 0.6], &[true, true, false, false]),
            Some(0.75)
        );
        assert_eq!(roc_auc(&[0.1], &[true]), None);
        let (_, prf) = best_point_adjusted_f1(&[0.1, 0.9, 0.2, 0.1], &[false, true, true, false]);
        assert_eq!(prf.f1, 1.0);
    }
}
