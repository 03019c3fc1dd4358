//! A branch-free scoring layout for the forest: every tree re-laid as a perfect binary tree of
//! the height limit (leaves shallower than the limit are replicated into every leaf slot below
//! them), so a traversal is exactly `H` steps of `i = 2i + 1 + (x[f] >= t)` with no leaf test.
//! Several rows are walked in lockstep to keep independent loads in flight. Scores are
//! bit-identical to the pointer layout (same leaves, same summation order).

use crate::forest::Node;

/// Largest height limit compiled densely (2^10 leaves per tree); deeper forests use the
/// pointer layout.
pub const MAX_DENSE_HEIGHT: u32 = 10;
const LANES: usize = 16;
const LEAF: u32 = u32::MAX;

/// 0 for the left child (`x < t`), 1 for the right one (also when `x` is NaN, as in the
/// pointer layout).
#[inline(always)]
fn branch(x: f64, t: f64) -> usize {
    if x < t { 0 } else { 1 }
}

/// The dense form of a whole forest.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    height: u32,
    internal: usize,
    feats: Vec<u32>,
    thresholds: Vec<f64>,
    leaves: Vec<f64>,
}

impl Dense {
    /// Compile the pointer trees; `None` when a tree is deeper than `height` or the height is
    /// above [`MAX_DENSE_HEIGHT`].
    pub fn build(roots: &[u32], nodes: &[Node], height: u32) -> Option<Self> {
        if height > MAX_DENSE_HEIGHT {
            return None;
        }
        let internal = (1usize << height) - 1;
        let n_leaves = 1usize << height;
        let mut dense = Self {
            height,
            internal,
            feats: vec![0; internal * roots.len()],
            thresholds: vec![f64::INFINITY; internal * roots.len()],
            leaves: vec![0.0; n_leaves * roots.len()],
        };
        for (t, &root) in roots.iter().enumerate() {
            dense.fill(t, nodes, root as usize, 0, 0)?;
        }
        Some(dense)
    }

    fn fill(
        &mut self,
        tree: usize,
        nodes: &[Node],
        node: usize,
        pos: usize,
        level: u32,
    ) -> Option<()> {
        let nd = *nodes.get(node)?;
        if nd.feature == LEAF {
            self.replicate(tree, pos, level, nd.value);
            return Some(());
        }
        if level >= self.height {
            return None;
        }
        let at = tree * self.internal + pos;
        self.feats[at] = nd.feature;
        self.thresholds[at] = nd.value;
        self.fill(tree, nodes, node + 1, 2 * pos + 1, level + 1)?;
        self.fill(tree, nodes, nd.right as usize, 2 * pos + 2, level + 1)
    }

    /// Every leaf slot below `pos` gets `value` (the padded splits route anywhere below).
    fn replicate(&mut self, tree: usize, pos: usize, level: u32, value: f64) {
        let span = 1usize << (self.height - level);
        // Leftmost leaf below `pos` in heap order, then shift to the leaf array.
        let first_heap = (pos + 1) * span - 1;
        let first = first_heap - self.internal;
        let base = tree * (self.internal + 1);
        self.leaves[base + first..base + first + span].fill(value);
    }

    /// The height limit every tree is padded to.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Each tree's split features and thresholds (heap order, root first; padding splits have
    /// an infinite threshold) and its `2^height` leaf path lengths.
    pub fn trees(&self) -> impl Iterator<Item = (&[u32], &[f64], &[f64])> {
        let (internal, n_leaves) = (self.internal.max(1), self.internal + 1);
        self.feats
            .chunks(internal)
            .zip(self.thresholds.chunks(internal))
            .zip(self.leaves.chunks(n_leaves))
            .map(|((f, t), l)| (f, t, l))
    }

    /// Add each row's path-length sum over all trees to `sums` (`flat` is row-major, `d` wide).
    pub fn accumulate(&self, flat: &[f64], d: usize, sums: &mut [f64]) {
        let rows = sums.len();
        let n_leaves = self.internal + 1;
        let trees = self.feats.len() / self.internal.max(1);
        for t in 0..trees {
            let feats = &self.feats[t * self.internal..(t + 1) * self.internal];
            let thr = &self.thresholds[t * self.internal..(t + 1) * self.internal];
            let leaves = &self.leaves[t * n_leaves..(t + 1) * n_leaves];
            let mut r = 0;
            while r + LANES <= rows {
                let mut idx = [0usize; LANES];
                for _ in 0..self.height {
                    for (lane, i) in idx.iter_mut().enumerate() {
                        let x = flat[(r + lane) * d + feats[*i] as usize];
                        *i = 2 * *i + 1 + branch(x, thr[*i]);
                    }
                }
                for (lane, i) in idx.iter().enumerate() {
                    sums[r + lane] += leaves[i - self.internal];
                }
                r += LANES;
            }
            for (row, sum) in sums.iter_mut().enumerate().skip(r) {
                let mut i = 0usize;
                for _ in 0..self.height {
                    let x = flat[row * d + feats[i] as usize];
                    i = 2 * i + 1 + branch(x, thr[i]);
                }
                *sum += leaves[i - self.internal];
            }
        }
    }
}
