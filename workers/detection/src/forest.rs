//! Isolation Forest (Liu, Ting & Zhou, 2008) with a flat arena node layout.
//!
//! * Each tree is grown on `psi = min(max_samples, n)` rows drawn without replacement, up to
//!   the height limit `ceil(log2 psi)`. A split picks a random non-constant feature and a
//!   uniform split value between its min and max in the node.
//! * A leaf at depth `d` holding `n` rows stores the path length `d + c(n)`, where
//!   `c(n) = 2H(n−1) − 2(n−1)/n`, `H(i) ≈ ln i + 0.5772156649`, `c(2) = 1`, `c(1) = 0`
//!   (the same as scikit-learn).
//! * The anomaly score is `s(x) = 2^(−E[h(x)] / c(psi))` in (0, 1]; higher is more anomalous.
//!
//! **Thresholds and scikit-learn's sign convention.** scikit-learn's `score_samples` returns
//! `−s`, and `decision_function = score_samples − offset_`, negative meaning anomalous.
//! [`Threshold::ScoreSamples(t)`](Threshold::ScoreSamples) takes `t` as a bound on
//! `score_samples`: a row is anomalous iff `−s < t`, i.e. `s > −t`. So a user's threshold of
//! `−0.7` flags rows with `s > 0.7`. [`Threshold::Contamination(c)`](Threshold::Contamination)
//! flags `s` above the `(1 − c)` quantile (linear interpolation) of the training scores, and
//! [`Threshold::Auto`] uses scikit-learn's default offset `−0.5` (flag `s > 0.5`).
//!
//! All trees of a forest live in one `Vec<Node>` in preorder: the left child of node `i` is
//! `i + 1`, the right child index is stored. Scoring is a tight loop without recursion.
//! Trees use independent PRNG streams derived from `(seed, tree index)`, so fitting with
//! several threads gives the identical model.

use serde::{Deserialize, Serialize};

use crate::DetectionError;
use crate::rng::SplitMix64;
use crate::stats::quantile_linear;

/// Snapshot format version written by this library.
pub const SNAPSHOT_VERSION: u32 = 1;
const LEAF: u32 = u32::MAX;
const EULER_GAMMA: f64 = 0.577_215_664_9;

/// Average path length of an unsuccessful BST search among `n` points, `c(n)`.
pub fn c_factor(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let m = (n - 1) as f64;
            2.0 * (m.ln() + EULER_GAMMA) - 2.0 * m / n as f64
        }
    }
}

/// How the anomaly decision is made from the score `s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Threshold {
    /// scikit-learn's default: anomalous iff `s > 0.5`.
    Auto,
    /// Anomalous iff `s` exceeds the `(1 − c)` quantile of training scores; `c` in (0, 0.5].
    Contamination(f64),
    /// A bound on scikit-learn's `score_samples` (`= −s`): anomalous iff `−s < t` (`s > −t`).
    ScoreSamples(f64),
}

/// Forest hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForestConfig {
    /// Number of trees.
    pub n_trees: usize,
    /// Sub-sample size per tree (psi).
    pub max_samples: usize,
    /// PRNG seed; same seed and data give the identical model.
    pub seed: u64,
    /// Threads used by `fit` and `score_many` (1 = serial; results do not depend on it).
    pub threads: usize,
    /// Decision rule.
    pub threshold: Threshold,
}

impl Default for ForestConfig {
    fn default() -> Self {
        Self {
            n_trees: 100,
            max_samples: 256,
            seed: 0,
            threads: 1,
            threshold: Threshold::Auto,
        }
    }
}

impl ForestConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), DetectionError> {
        if self.n_trees == 0 || self.max_samples < 2 {
            return Err(DetectionError::InvalidConfig(
                "forest needs n_trees >= 1 and max_samples >= 2".into(),
            ));
        }
        if let Threshold::Contamination(c) = self.threshold
            && !(c > 0.0 && c <= 0.5)
        {
            return Err(DetectionError::InvalidConfig(format!(
                "contamination {c} not in (0, 0.5]"
            )));
        }
        Ok(())
    }
}

/// One node: a split (`feature`, split `value`, `right` child) or a leaf (`feature == u32::MAX`,
/// `value` = path length `depth + c(size)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Split value, or the leaf's path length.
    #[serde(rename = "v")]
    pub value: f64,
    /// Split feature, or `u32::MAX` for a leaf.
    #[serde(rename = "f")]
    pub feature: u32,
    /// Index of the right child (the left child is the next node).
    #[serde(rename = "r")]
    pub right: u32,
}

/// A trained Isolation Forest.
#[derive(Debug, Clone, PartialEq)]
pub struct IsolationForest {
    config: ForestConfig,
    n_features: usize,
    psi: usize,
    c_psi: f64,
    roots: Vec<u32>,
    nodes: Vec<Node>,
    threshold_s: f64,
    dense: Option<crate::dense::Dense>,
    ranked: Option<crate::rank::Ranked>,
}

/// Serializable, versioned form of a forest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForestSnapshot {
    /// Format version; must equal [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// Hyper-parameters used to train.
    pub config: ForestConfig,
    /// Number of features per row.
    pub n_features: usize,
    /// Sub-sample size actually used.
    pub psi: usize,
    /// Decision threshold on `s`.
    pub threshold_s: f64,
    /// Index of each tree's root in `nodes`.
    pub roots: Vec<u32>,
    /// All nodes of all trees.
    pub nodes: Vec<Node>,
}

fn check_rows(rows: &[Vec<f64>]) -> Result<usize, DetectionError> {
    let d = rows
        .first()
        .map(Vec::len)
        .ok_or(DetectionError::EmptyTrainingSet)?;
    if d == 0 || d >= LEAF as usize {
        return Err(DetectionError::InvalidConfig(
            "rows need at least one feature".into(),
        ));
    }
    for r in rows {
        if r.len() != d {
            return Err(DetectionError::DimensionMismatch {
                expected: d,
                got: r.len(),
            });
        }
        if let Some(i) = r.iter().position(|v| !v.is_finite()) {
            return Err(DetectionError::NonFinite { feature: i });
        }
    }
    Ok(d)
}

/// The height limit `ceil(log2 psi)` of a tree grown on `psi` samples.
pub fn height_limit(psi: usize) -> u32 {
    (psi.max(2) as f64).log2().ceil() as u32
}

fn build_tree(data: &[f64], n: usize, d: usize, psi: usize, rng: &mut SplitMix64) -> Vec<Node> {
    // Sample psi distinct rows (partial Fisher-Yates).
    let mut all: Vec<usize> = (0..n).collect();
    for i in 0..psi {
        let j = i + rng.below(n - i);
        all.swap(i, j);
    }
    let mut idx: Vec<usize> = all[..psi].to_vec();
    let limit = height_limit(psi) as usize;
    let mut feats: Vec<usize> = (0..d).collect();
    let mut nodes: Vec<Node> = Vec::with_capacity(2 * psi);
    // (start, end, depth, parent whose `right` must point here)
    let mut stack: Vec<(usize, usize, usize, Option<usize>)> = vec![(0, psi, 0, None)];
    while let Some((start, end, depth, parent)) = stack.pop() {
        let me = nodes.len();
        if let Some(p) = parent {
            nodes[p].right = me as u32;
        }
        let size = end - start;
        let leaf = Node {
            value: depth as f64 + c_factor(size),
            feature: LEAF,
            right: 0,
        };
        if depth >= limit || size <= 1 {
            nodes.push(leaf);
            continue;
        }
        let mut chosen = None;
        for j in 0..d {
            let k = j + rng.below(d - j);
            feats.swap(j, k);
            let f = feats[j];
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for &r in &idx[start..end] {
                let v = data[r * d + f];
                lo = lo.min(v);
                hi = hi.max(v);
            }
            if hi > lo {
                chosen = Some((f, lo, hi));
                break;
            }
        }
        let Some((f, lo, hi)) = chosen else {
            nodes.push(leaf);
            continue;
        };
        let mut split = lo + rng.next_f64() * (hi - lo);
        if split <= lo {
            split = hi;
        }
        // Partition idx[start..end] into (< split) then (>= split).
        let mut mid = start;
        for i in start..end {
            if data[idx[i] * d + f] < split {
                idx.swap(i, mid);
                mid += 1;
            }
        }
        nodes.push(Node {
            value: split,
            feature: f as u32,
            right: 0,
        });
        stack.push((mid, end, depth + 1, Some(me)));
        stack.push((start, mid, depth + 1, None));
    }
    nodes
}

fn parallel_map<T: Send, F: Fn(usize) -> T + Sync>(n: usize, threads: usize, f: F) -> Vec<T> {
    if threads <= 1 || n < 2 {
        return (0..n).map(f).collect();
    }
    let chunk = n.div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|lo| s.spawn(move || (lo..(lo + chunk).min(n)).map(f).collect::<Vec<T>>()))
            .collect();
        let mut out = Vec::with_capacity(n);
        for h in handles {
            match h.join() {
                Ok(v) => out.extend(v),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        out
    })
}

impl IsolationForest {
    /// Trains a forest on `rows` (all rows must have the same, non-zero, finite length).
    pub fn fit(rows: &[Vec<f64>], config: ForestConfig) -> Result<Self, DetectionError> {
        config.validate()?;
        let d = check_rows(rows)?;
        let n = rows.len();
        let data: Vec<f64> = rows.iter().flatten().copied().collect();
        let psi = config.max_samples.min(n);
        let trees = parallel_map(config.n_trees, config.threads, |t| {
            let mut rng = SplitMix64::derive(config.seed, t as u64);
            build_tree(&data, n, d, psi, &mut rng)
        });
        let mut roots = Vec::with_capacity(trees.len());
        let mut nodes = Vec::with_capacity(trees.iter().map(Vec::len).sum());
        for tree in trees {
            let off = nodes.len() as u32;
            roots.push(off);
            nodes.extend(tree.into_iter().map(|mut nd| {
                if nd.feature != LEAF {
                    nd.right += off;
                }
                nd
            }));
        }
        let c_psi = c_factor(psi).max(f64::MIN_POSITIVE);
        let mut forest = Self {
            config,
            n_features: d,
            psi,
            c_psi,
            dense: None,
            ranked: None,
            roots,
            nodes,
            threshold_s: 0.5,
        };
        forest.compile();
        forest.threshold_s = match config.threshold {
            Threshold::Auto => 0.5,
            Threshold::ScoreSamples(t) => -t,
            Threshold::Contamination(c) => {
                let scores: Vec<f64> = rows.iter().map(|r| forest.score_unchecked(r)).collect();
                quantile_linear(&scores, 1.0 - c)
            }
        };
        Ok(forest)
    }

    /// Builds the fast scoring layouts (rank-encoded when the rows are narrow enough, else dense).
    fn compile(&mut self) {
        self.dense = crate::dense::Dense::build(&self.roots, &self.nodes, height_limit(self.psi));
        self.ranked = self
            .dense
            .as_ref()
            .and_then(|d| crate::rank::Ranked::build(d, self.n_features));
    }

    /// Which scoring layout `score_many` uses: `ranked`, `dense` or `pointer`.
    pub fn layout(&self) -> &'static str {
        match (&self.ranked, &self.dense) {
            (Some(_), _) => "ranked",
            (None, Some(_)) => "dense",
            (None, None) => "pointer",
        }
    }

    #[inline]
    fn path_sum(&self, x: &[f64]) -> f64 {
        let nodes = &self.nodes[..];
        let mut total = 0.0;
        for &root in &self.roots {
            let mut i = root as usize;
            loop {
                let nd = nodes[i];
                if nd.feature == LEAF {
                    total += nd.value;
                    break;
                }
                i = if x[nd.feature as usize] < nd.value {
                    i + 1
                } else {
                    nd.right as usize
                };
            }
        }
        total
    }

    /// Scores a block of rows tree by tree (keeps one tree hot in cache) with four
    /// independent traversals in flight at a time.
    fn score_block(&self, rows: &[Vec<f64>], out: &mut Vec<f64>) {
        let denom = self.roots.len() as f64 * self.c_psi;
        if let Some(ranked) = &self.ranked {
            let mut groups = Vec::new();
            ranked.encode(rows, &mut groups);
            let mut sums = vec![[0.0; crate::rank::LANES]; groups.len()];
            ranked.accumulate(&groups, &mut sums);
            let sums = sums.as_flattened().iter().take(rows.len());
            out.extend(sums.map(|&s| (-s / denom).exp2()));
            return;
        }
        if let Some(dense) = &self.dense {
            let flat: Vec<f64> = rows.iter().flatten().copied().collect();
            let mut sums = vec![0.0; rows.len()];
            dense.accumulate(&flat, self.n_features, &mut sums);
            out.extend(sums.iter().map(|&s| (-s / denom).exp2()));
            return;
        }
        let nodes = &self.nodes[..];
        let mut sums = vec![0.0; rows.len()];
        for &root in &self.roots {
            let mut k = 0;
            while k + 4 <= rows.len() {
                let xs = [&rows[k], &rows[k + 1], &rows[k + 2], &rows[k + 3]];
                let mut idx = [root as usize; 4];
                let mut done = [false; 4];
                while !(done[0] && done[1] && done[2] && done[3]) {
                    for lane in 0..4 {
                        if done[lane] {
                            continue;
                        }
                        let nd = nodes[idx[lane]];
                        if nd.feature == LEAF {
                            sums[k + lane] += nd.value;
                            done[lane] = true;
                        } else {
                            idx[lane] = if xs[lane][nd.feature as usize] < nd.value {
                                idx[lane] + 1
                            } else {
                                nd.right as usize
                            };
                        }
                    }
                }
                k += 4;
            }
            for (j, x) in rows.iter().enumerate().skip(k) {
                let mut i = root as usize;
                loop {
                    let nd = nodes[i];
                    if nd.feature == LEAF {
                        sums[j] += nd.value;
                        break;
                    }
                    i = if x[nd.feature as usize] < nd.value {
                        i + 1
                    } else {
                        nd.right as usize
                    };
                }
            }
        }
        out.extend(sums.iter().map(|&s| (-s / denom).exp2()));
    }

    fn score_unchecked(&self, x: &[f64]) -> f64 {
        (-self.path_sum(x) / (self.roots.len() as f64 * self.c_psi)).exp2()
    }

    /// Mean path length `E[h(x)]` over the trees.
    pub fn mean_path_length(&self, x: &[f64]) -> Result<f64, DetectionError> {
        self.check(x)?;
        Ok(self.path_sum(x) / self.roots.len() as f64)
    }

    fn check(&self, x: &[f64]) -> Result<(), DetectionError> {
        if x.len() != self.n_features {
            return Err(DetectionError::DimensionMismatch {
                expected: self.n_features,
                got: x.len(),
            });
        }
        Ok(())
    }

    /// Anomaly score `s(x)` in (0, 1]; NaN features follow the right branch.
    pub fn score(&self, x: &[f64]) -> Result<f64, DetectionError> {
        self.check(x)?;
        Ok(self.score_unchecked(x))
    }

    /// Scores many rows (uses `config.threads`).
    pub fn score_many(&self, rows: &[Vec<f64>]) -> Result<Vec<f64>, DetectionError> {
        for r in rows {
            self.check(r)?;
        }
        const BLOCK: usize = 256;
        let blocks = parallel_map(rows.len().div_ceil(BLOCK), self.config.threads, |b| {
            let mut out = Vec::with_capacity(BLOCK);
            self.score_block(
                &rows[b * BLOCK..((b + 1) * BLOCK).min(rows.len())],
                &mut out,
            );
            out
        });
        Ok(blocks.into_iter().flatten().collect())
    }

    /// Whether a score is anomalous under the configured threshold.
    pub fn is_anomalous(&self, score: f64) -> bool {
        score > self.threshold_s
    }

    /// The threshold on `s` (anomalous iff `s >` this).
    pub fn threshold_s(&self) -> f64 {
        self.threshold_s
    }

    /// scikit-learn's `decision_function`: `−s − offset_` with `offset_ = −threshold_s`.
    pub fn decision_function(&self, x: &[f64]) -> Result<f64, DetectionError> {
        Ok(-self.score(x)? + self.threshold_s)
    }

    /// Number of features per row.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Sub-sample size actually used.
    pub fn psi(&self) -> usize {
        self.psi
    }

    /// Total number of nodes in the arena.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &ForestConfig {
        &self.config
    }

    /// A versioned, serializable copy.
    pub fn snapshot(&self) -> ForestSnapshot {
        ForestSnapshot {
            version: SNAPSHOT_VERSION,
            config: self.config,
            n_features: self.n_features,
            psi: self.psi,
            threshold_s: self.threshold_s,
            roots: self.roots.clone(),
            nodes: self.nodes.clone(),
        }
    }

    /// Rebuilds a forest from a snapshot, rejecting unknown versions and corrupt structure.
    pub fn from_snapshot(s: ForestSnapshot) -> Result<Self, DetectionError> {
        if s.version != SNAPSHOT_VERSION {
            return Err(DetectionError::UnsupportedSnapshotVersion {
                found: s.version,
                supported: SNAPSHOT_VERSION,
            });
        }
        let bad = |m: String| Err(DetectionError::CorruptSnapshot(m));
        let len = s.nodes.len();
        if s.roots.is_empty() || s.psi < 2 || s.n_features == 0 {
            return bad("empty forest".into());
        }
        if s.roots.iter().any(|&r| r as usize >= len) {
            return bad("root out of range".into());
        }
        for (i, nd) in s.nodes.iter().enumerate() {
            if !nd.value.is_finite() {
                return bad(format!("node {i} has a non-finite value"));
            }
            if nd.feature != LEAF
                && (nd.feature as usize >= s.n_features
                    || nd.right as usize <= i + 1
                    || nd.right as usize >= len)
            {
                return bad(format!("node {i} has invalid children or feature"));
            }
        }
        let mut forest = Self {
            config: s.config,
            n_features: s.n_features,
            psi: s.psi,
            c_psi: c_factor(s.psi),
            dense: None,
            ranked: None,
            roots: s.roots,
            nodes: s.nodes,
            threshold_s: s.threshold_s,
        };
        forest.compile();
        Ok(forest)
    }

    /// Snapshot as JSON.
    pub fn to_json(&self) -> Result<String, DetectionError> {
        Ok(serde_json::to_string(&self.snapshot())?)
    }

    /// Forest from snapshot JSON.
    pub fn from_json(s: &str) -> Result<Self, DetectionError> {
        Self::from_snapshot(serde_json::from_str(s)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_layout_scores_bit_identically() {
        let mut r = crate::rng::SplitMix64::new(5);
        let rows: Vec<Vec<f64>> = (0..3000)
            .map(|_| (0..6).map(|_| r.next_f64() * 10.0).collect())
            .collect();
        for psi in [2, 3, 64, 200, 256] {
            let cfg = ForestConfig {
                n_trees: 37,
                max_samples: psi,
                seed: 9,
                threads: 1,
                ..ForestConfig::default()
            };
            let f = IsolationForest::fit(&rows, cfg).unwrap();
            assert!(f.dense.is_some());
            let mut probe = rows[..1003].to_vec();
            probe.push(vec![f64::NAN, 1.0, 2.0, f64::INFINITY, -1e9, 5.0]);
            let fast = f.score_many(&probe).unwrap();
            for (x, s) in probe.iter().zip(&fast) {
                assert_eq!(s.to_bits(), f.score(x).unwrap().to_bits(), "psi {psi}");
            }
        }
    }

    fn gaussian_like(n: usize, d: usize, seed: u64) -> Vec<Vec<f64>> {
        let mut r = SplitMix64::new(seed);
        (0..n)
            .map(|_| {
                (0..d)
                    .map(|_| (0..6).map(|_| r.next_f64()).sum::<f64>() - 3.0)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn c_factor_values() {
        assert_eq!(c_factor(1), 0.0);
        assert_eq!(c_factor(2), 1.0);
        assert!((c_factor(256) - 10.2448).abs() < 1e-3, "{}", c_factor(256));
    }

    #[test]
    fn outliers_score_higher_than_inliers() {
        let data = gaussian_like(1000, 3, 1);
        let f = IsolationForest::fit(&data, ForestConfig::default()).unwrap();
        let inlier = f.score(&[0.0, 0.0, 0.0]).unwrap();
        let outlier = f.score(&[6.0, -6.0, 6.0]).unwrap();
        assert!(
            outlier > 0.65 && inlier < 0.5 && outlier > inlier + 0.2,
            "{inlier} {outlier}"
        );
        assert!(f.score(&[1.0]).is_err());
    }

    #[test]
    fn same_seed_identical_and_threads_irrelevant() {
        let data = gaussian_like(500, 4, 2);
        let cfg = ForestConfig {
            seed: 42,
            ..ForestConfig::default()
        };
        let a = IsolationForest::fit(&data, cfg).unwrap();
        let b = IsolationForest::fit(&data, ForestConfig { threads: 2, ..cfg }).unwrap();
        assert!(a.nodes == b.nodes);
        let sa = a.score_many(&data).unwrap();
        let sb = b.score_many(&data).unwrap();
        assert_eq!(sa, sb);
        let single: Vec<f64> = data.iter().map(|r| a.score(r).unwrap()).collect();
        assert_eq!(sa, single, "block scoring must equal row scoring");
        let c = IsolationForest::fit(&data, ForestConfig { seed: 43, ..cfg }).unwrap();
        assert_ne!(sa, c.score_many(&data).unwrap());
    }

    #[test]
    fn contamination_flags_that_fraction() {
        let data = gaussian_like(2000, 2, 3);
        let cfg = ForestConfig {
            threshold: Threshold::Contamination(0.05),
            ..Default::default()
        };
        let f = IsolationForest::fit(&data, cfg).unwrap();
        let flagged = f
            .score_many(&data)
            .unwrap()
            .iter()
            .filter(|&&s| f.is_anomalous(s))
            .count();
        assert!((90..=110).contains(&flagged), "{flagged}");
    }

    #[test]
    fn explicit_threshold_uses_sklearn_sign() {
        let data = gaussian_like(300, 2, 4);
        let cfg = ForestConfig {
            threshold: Threshold::ScoreSamples(-0.7),
            ..Default::default()
        };
        let f = IsolationForest::fit(&data, cfg).unwrap();
        assert_eq!(f.threshold_s(), 0.7);
        assert!(f.is_anomalous(0.71) && !f.is_anomalous(0.69));
        let x = [10.0, 10.0];
        let s = f.score(&x).unwrap();
        assert!((f.decision_function(&x).unwrap() - (-s + 0.7)).abs() < 1e-12);
        assert_eq!(f.decision_function(&x).unwrap() < 0.0, f.is_anomalous(s));
    }

    #[test]
    fn constant_data_and_tiny_sets() {
        let data = vec![vec![1.0, 1.0]; 10];
        let f = IsolationForest::fit(&data, ForestConfig::default()).unwrap();
        assert!(f.score(&[1.0, 1.0]).unwrap().is_finite());
        assert!(IsolationForest::fit(&[], ForestConfig::default()).is_err());
        assert!(IsolationForest::fit(&[vec![f64::NAN]], ForestConfig::default()).is_err());
    }

    #[test]
    fn snapshot_round_trip_and_version_check() {
        let data = gaussian_like(300, 3, 5);
        let f = IsolationForest::fit(&data, ForestConfig::default()).unwrap();
        let json = f.to_json().unwrap();
        let g = IsolationForest::from_json(&json).unwrap();
        assert!(f == g, "snapshot round trip changed the model");
        assert_eq!(f.score_many(&data).unwrap(), g.score_many(&data).unwrap());
        let mut snap = f.snapshot();
        snap.version = 99;
        assert!(matches!(
            IsolationForest::from_snapshot(snap),
            Err(DetectionError::UnsupportedSnapshotVersion { found: 99, .. })
        ));
        let mut snap = f.snapshot();
        snap.nodes[0].right = 0;
        assert!(IsolationForest::from_snapshot(snap).is_err());
    }
}
