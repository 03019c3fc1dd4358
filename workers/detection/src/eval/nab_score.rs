//! The NAB v1.1 scorer (see `SCOREBOARD.md`): probation, scaled sigmoid, profiles, one
//! corpus-wide threshold per profile, and normalisation against null and perfect detectors.
//!
//! Windows are inclusive row-index ranges `(left, right)`. Inside a window, row `i` is
//! weighted `A_TP·σ(y)/σ(−1)` with `y = −(right − i + 1)/width`; only the best (earliest)
//! detection counts and an undetected window costs `−A_FN`. Outside windows, a detection
//! costs `A_FP·σ(y)` with `y = |i − right_prev|/(width_prev − 1)` (or `−A_FP` before the
//! first window). Rows in the probationary period (`min(⌊0.15·n⌋, 750)`) are not scored, and
//! a window none of whose rows is scorable is ignored. Detections are rows with
//! `score >= threshold`.

use serde::Serialize;

/// A NAB cost profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Profile {
    /// Profile name as in NAB.
    pub name: &'static str,
    /// Weight of a true positive.
    pub a_tp: f64,
    /// Weight of a false positive.
    pub a_fp: f64,
    /// Weight of a missed window.
    pub a_fn: f64,
}

/// The three NAB profiles (standard, reward_low_FP_rate, reward_low_FN_rate).
pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "standard",
        a_tp: 1.0,
        a_fp: 0.11,
        a_fn: 1.0,
    },
    Profile {
        name: "reward_low_FP_rate",
        a_tp: 1.0,
        a_fp: 0.22,
        a_fn: 1.0,
    },
    Profile {
        name: "reward_low_FN_rate",
        a_tp: 1.0,
        a_fp: 0.11,
        a_fn: 2.0,
    },
];

/// NAB's scaled sigmoid: `2/(1 + e^{5y}) − 1`, and −1 for `y > 3`.
pub fn scaled_sigmoid(y: f64) -> f64 {
    if y > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

/// Number of leading rows that are not scored: `min(⌊0.15·n⌋, 750)`.
pub fn probation_rows(n: usize) -> usize {
    (n * 15 / 100).min(750)
}

/// One file's detector output and ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredFile {
    /// Detector score per row.
    pub scores: Vec<f64>,
    /// Anomaly windows as inclusive, sorted, non-overlapping row ranges.
    pub windows: Vec<(usize, usize)>,
}

/// A scorable row: detector score, NAB weight if detected, window id (global) if inside one.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    score: f64,
    weight: f64,
    window: Option<usize>,
}

/// Rows of one file after probation, with their weights; `first_window` is the global id of
/// the file's first window. Returns the rows and the ids of windows that have a scorable row.
fn weigh(file: &ScoredFile, p: &Profile, first_window: usize) -> (Vec<Row>, Vec<usize>) {
    let n = file.scores.len();
    let probation = probation_rows(n);
    let max_tp = scaled_sigmoid(-1.0);
    let mut rows = Vec::with_capacity(n.saturating_sub(probation));
    let mut live = Vec::new();
    let mut prev: Option<(usize, usize)> = None; // (right, width)
    let mut w = 0;
    for i in 0..n {
        while w < file.windows.len() && file.windows[w].1 < i {
            let (l, r) = file.windows[w];
            prev = Some((r, r + 1 - l));
            w += 1;
        }
        let inside = file.windows.get(w).filter(|&&(l, r)| l <= i && i <= r);
        let (weight, window) = match inside {
            Some(&(l, r)) => {
                let width = (r + 1 - l) as f64;
                let y = -((r + 1 - i) as f64) / width;
                (scaled_sigmoid(y) * p.a_tp / max_tp, Some(first_window + w))
            }
            None => {
                let u = match prev {
                    None => -1.0,
                    Some((_, width)) if width <= 1 => -1.0,
                    Some((r, width)) => scaled_sigmoid((i - r) as f64 / (width - 1) as f64),
                };
                (u * p.a_fp, None)
            }
        };
        if i >= probation {
            if let Some(id) = window
                && live.last() != Some(&id)
            {
                live.push(id);
            }
            rows.push(Row {
                score: file.scores[i],
                weight,
                window,
            });
        }
    }
    (rows, live)
}

/// Raw score of a set of files at a threshold.
pub fn raw_score(files: &[ScoredFile], p: &Profile, threshold: f64) -> f64 {
    let mut total = 0.0;
    let mut offset = 0;
    for f in files {
        let (rows, live) = weigh(f, p, offset);
        let mut best: std::collections::BTreeMap<usize, f64> =
            live.iter().map(|&id| (id, -p.a_fn)).collect();
        for r in rows.iter().filter(|r| r.score >= threshold) {
            match r.window {
                Some(id) => {
                    let b = best.entry(id).or_insert(-p.a_fn);
                    *b = b.max(r.weight);
                }
                None => total += r.weight,
            }
        }
        total += best.values().sum::<f64>();
        offset += f.windows.len();
    }
    total
}

/// A profile's row weights over a set of files, precomputed so that scoring a sparse set of
/// detections (alert firings) costs O(detections).
#[derive(Debug, Clone)]
pub struct ProfileWeights {
    a_fn: f64,
    files: Vec<(usize, Vec<Row>, Vec<usize>)>,
}

impl ProfileWeights {
    /// Weights of `files` under `p` (only the scores' lengths and the windows are used).
    pub fn new(files: &[ScoredFile], p: &Profile) -> Self {
        let mut offset = 0;
        let files = files
            .iter()
            .map(|f| {
                let (rows, live) = weigh(f, p, offset);
                offset += f.windows.len();
                (probation_rows(f.scores.len()), rows, live)
            })
            .collect();
        Self {
            a_fn: p.a_fn,
            files,
        }
    }

    /// Raw score when `detections[k]` are the detected row indices of file `k`.
    pub fn raw(&self, detections: &[Vec<usize>]) -> f64 {
        let mut total = 0.0;
        for ((probation, rows, live), det) in self.files.iter().zip(detections) {
            let mut best: std::collections::BTreeMap<usize, f64> =
                live.iter().map(|&id| (id, -self.a_fn)).collect();
            for &i in det {
                let Some(r) = i.checked_sub(*probation).and_then(|k| rows.get(k)) else {
                    continue;
                };
                match r.window {
                    Some(id) => {
                        let b = best.entry(id).or_insert(-self.a_fn);
                        *b = b.max(r.weight);
                    }
                    None => total += r.weight,
                }
            }
            total += best.values().sum::<f64>();
        }
        total
    }
}

/// Score of the null detector (every scorable window missed).
pub fn null_score(files: &[ScoredFile], p: &Profile) -> f64 {
    raw_score(files, p, f64::INFINITY)
}

/// Score of the perfect detector: `A_TP` times the number of windows.
pub fn perfect_score(files: &[ScoredFile], p: &Profile) -> f64 {
    p.a_tp * files.iter().map(|f| f.windows.len()).sum::<usize>() as f64
}

/// `100·(raw − null)/(perfect − null)`; 0 when perfect equals null.
pub fn normalize(raw: f64, null: f64, perfect: f64) -> f64 {
    if perfect == null {
        0.0
    } else {
        100.0 * (raw - null) / (perfect - null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STD: Profile = PROFILES[0];

    /// 100 rows (probation 15), windows at rows 40..=49 and 70..=79.
    fn file(detect: &[usize]) -> ScoredFile {
        let mut scores = vec![0.0; 100];
        for &i in detect {
            scores[i] = 1.0;
        }
        ScoredFile {
            scores,
            windows: vec![(40, 49), (70, 79)],
        }
    }

    #[test]
    fn sigmoid_and_probation() {
        assert!((scaled_sigmoid(-1.0) - 0.986_614_298_151_430_2).abs() < 1e-12);
        assert_eq!(scaled_sigmoid(0.0), 0.0);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
        assert_eq!(probation_rows(100), 15);
        assert_eq!(probation_rows(10_000), 750);
    }

    #[test]
    fn perfect_is_100_and_null_is_0() {
        let files = vec![file(&[40, 70])];
        for p in PROFILES {
            let null = null_score(&files, &p);
            assert_eq!(null, -2.0 * p.a_fn);
            let perfect = perfect_score(&files, &p);
            let raw = raw_score(&files, &p, 0.5);
            assert!((raw - perfect).abs() < 1e-12);
            assert!((normalize(raw, null, perfect) - 100.0).abs() < 1e-9);
            let none = vec![file(&[])];
            assert_eq!(normalize(raw_score(&none, &p, 0.5), null, perfect), 0.0);
        }
    }

    #[test]
    fn hand_computed_intermediate_case() {
        // Detection at row 45 (window 1, width 10): y = -(49-45+1)/10 = -0.5.
        // FP at row 20 before any window: -0.11. FP at row 59 after window 1:
        // y = (59-49)/(10-1) = 10/9. Window 2 missed: -1. Probation row 5 ignored.
        let files = vec![file(&[5, 20, 45, 59])];
        let tp = scaled_sigmoid(-0.5) / scaled_sigmoid(-1.0);
        let fp_after = 0.11 * scaled_sigmoid(10.0 / 9.0);
        let expected = tp - 0.11 + fp_after - 1.0;
        let raw = raw_score(&files, &STD, 0.5);
        assert!((raw - expected).abs() < 1e-12, "{raw} vs {expected}");
        // tp = 0.98661/... : sigma(-0.5) = 2/(1+e^-2.5) - 1 = 0.848283639957513
        assert!((tp - 0.848_283_639_957_513 / 0.986_614_298_151_430_2).abs() < 1e-12);
        let score = normalize(raw, -2.0, 2.0);
        assert!((score - 100.0 * (expected + 2.0) / 4.0).abs() < 1e-9);
        assert!(score > 0.0 && score < 100.0);
    }

    #[test]
    fn sparse_detections_score_like_the_threshold_form() {
        let files = vec![file(&[20, 41, 45, 72]), file(&[16, 90])];
        let w = ProfileWeights::new(&files, &STD);
        let det: Vec<Vec<usize>> = files
            .iter()
            .map(|f| {
                (0..f.scores.len())
                    .filter(|&i| f.scores[i] >= 0.5)
                    .collect()
            })
            .collect();
        assert!((w.raw(&det) - raw_score(&files, &STD, 0.5)).abs() < 1e-12);
        assert!((w.raw(&[vec![], vec![]]) - null_score(&files, &STD)).abs() < 1e-12);
    }

    #[test]
    fn window_inside_probation_is_ignored() {
        let f = ScoredFile {
            scores: vec![0.0; 100],
            windows: vec![(2, 5)],
        };
        assert_eq!(null_score(&[f], &STD), 0.0);
    }
}
