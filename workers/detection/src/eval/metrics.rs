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

/// Average precision (area under the precision–recall curve, step-wise): rows are ranked by
/// descending score, rows with equal scores form one threshold step, and
/// `AP = Σ_k (R_k − R_{k−1}) · P_k` over those steps (as scikit-learn's
/// `average_precision_score`). `None` when there are no positives or no negatives.
pub fn pr_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let n = scores.len().min(labels.len());
    let pos = labels[..n].iter().filter(|&&l| l).count();
    if pos == 0 || pos == n {
        return None;
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp, mut ap, mut prev_recall) = (0usize, 0usize, 0.0, 0.0);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j < n && scores[idx[j]] == scores[idx[i]] {
            if labels[idx[j]] {
                tp += 1;
            } else {
                fp += 1;
            }
            j += 1;
        }
        let recall = tp as f64 / pos as f64;
        ap += (recall - prev_recall) * tp as f64 / (tp + fp) as f64;
        prev_recall = recall;
        i = j.max(i + 1);
    }
    Some(ap)
}

/// Event-wise (range) precision, recall and F1, see [`event_prf`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EventPrf {
    /// Events (maximal runs of true labels) containing at least one predicted row.
    pub detected_events: usize,
    /// Events without any predicted row.
    pub missed_events: usize,
    /// Predicted runs (maximal runs of true predictions) overlapping at least one event.
    pub true_runs: usize,
    /// Predicted runs overlapping no event.
    pub false_runs: usize,
    /// true_runs / (true_runs + false_runs), 0 if there is no predicted run.
    pub precision: f64,
    /// detected_events / (detected_events + missed_events), 0 if there is no event.
    pub recall: f64,
    /// Harmonic mean of precision and recall, 0 if both are 0.
    pub f1: f64,
}

impl EventPrf {
    /// As a [`Prf`] with tp = detected events, fp = false runs, fn_ = missed events and the
    /// ratios of this struct (so `precision` is over predicted runs, not tp / (tp + fp)).
    pub fn to_prf(&self) -> Prf {
        Prf {
            tp: self.detected_events,
            fp: self.false_runs,
            fn_: self.missed_events,
            precision: self.precision,
            recall: self.recall,
            f1: self.f1,
        }
    }
}

/// Maximal runs of `true` as inclusive `(start, end)` ranges.
fn runs(flags: impl Iterator<Item = bool>) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    let mut last = 0;
    for (i, f) in flags.enumerate() {
        match (f, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i - 1));
                start = None;
            }
            _ => {}
        }
        last = i;
    }
    if let Some(s) = start {
        out.push((s, last));
    }
    out
}

/// Event-wise metric over `labels.len()` rows (missing predictions count as false, predictions
/// past the labels are ignored). An event is a maximal run of true labels, a predicted run a
/// maximal run of true predictions. Recall = detected events / events, where an event is
/// detected if at least one of its rows is predicted; precision = predicted runs overlapping
/// some event / predicted runs. One run covering two events detects both; two runs inside one
/// event are both true runs.
pub fn event_prf(pred: &[bool], labels: &[bool]) -> EventPrf {
    let p = |i: usize| pred.get(i).copied().unwrap_or(false);
    let events = runs(labels.iter().copied());
    let pred_runs = runs((0..labels.len()).map(p));
    let detected = events.iter().filter(|&&(l, r)| (l..=r).any(p)).count();
    let true_runs = pred_runs
        .iter()
        .filter(|&&(l, r)| labels[l..=r].iter().any(|&x| x))
        .count();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(true_runs, pred_runs.len());
    let recall = ratio(detected, events.len());
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    EventPrf {
        detected_events: detected,
        missed_events: events.len() - detected,
        true_runs,
        false_runs: pred_runs.len() - true_runs,
        precision,
        recall,
        f1,
    }
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

    #[test]
    fn pr_auc_hand_computed() {
        // Steps: (R 0.5, P 1), (R 0.5, P 1/2), (R 1, P 2/3) → 0.5 + 0.5·2/3.
        let ap = pr_auc(&[0.9, 0.8, 0.7, 0.6], &[true, false, true, false]).unwrap();
        assert!((ap - (0.5 + 1.0 / 3.0)).abs() < 1e-12);
        // Tie group {0.5: one pos, one neg}: (R 0.5, P 0.5), then (R 1, P 2/3).
        let ap = pr_auc(&[0.5, 0.5, 0.1], &[true, false, true]).unwrap();
        assert!((ap - (0.25 + 1.0 / 3.0)).abs() < 1e-12);
        assert_eq!(pr_auc(&[0.9, 0.1], &[true, false]), Some(1.0));
        assert_eq!(pr_auc(&[0.9, 0.1], &[false, false]), None);
        assert_eq!(pr_auc(&[0.9, 0.1], &[true, true]), None);
        // All scores equal: AP = prevalence.
        assert_eq!(pr_auc(&[1.0; 4], &[true, false, false, false]), Some(0.25));
    }

    #[test]
    fn event_prf_hand_computed() {
        //            events:  [1..=3]            [7..=8]          [11]
        let labels = [
            false, true, true, true, false, false, false, true, true, false, false, true,
        ];
        // Runs: [2..=3] (hits event 1), [5] (false), [9..=10] (false, adjacent only).
        let pred = [
            false, false, true, true, false, true, false, false, false, true, true, false,
        ];
        let e = event_prf(&pred, &labels);
        assert_eq!((e.detected_events, e.missed_events), (1, 2));
        assert_eq!((e.true_runs, e.false_runs), (1, 2));
        assert!((e.precision - 1.0 / 3.0).abs() < 1e-12);
        assert!((e.recall - 1.0 / 3.0).abs() < 1e-12);
        assert!((e.f1 - 1.0 / 3.0).abs() < 1e-12);
        let p = e.to_prf();
        assert_eq!((p.tp, p.fp, p.fn_), (1, 2, 2));
        // One long run covers two events; two runs inside one event are both true.
        let labels = [true, true, false, true, false, false, true, true, true];
        let pred = [true, true, true, true, false, false, true, false, true];
        let e = event_prf(&pred, &labels);
        assert_eq!(
            (
                e.detected_events,
                e.missed_events,
                e.true_runs,
                e.false_runs
            ),
            (3, 0, 3, 0)
        );
        assert_eq!((e.precision, e.recall, e.f1), (1.0, 1.0, 1.0));
        // Short predictions count as false; nothing predicted → zeros.
        let e = event_prf(&[], &[false, true]);
        assert_eq!(
            (e.missed_events, e.precision, e.recall, e.f1),
            (1, 0.0, 0.0, 0.0)
        );
    }
}
