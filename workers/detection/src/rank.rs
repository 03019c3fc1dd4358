//! A rank-encoded scoring layout for the forest: each feature's distinct split thresholds are
//! sorted once, every row is encoded once as per-feature ranks (the number of thresholds
//! `<= x`), and `x >= t` becomes an integer compare against the threshold's index. A split is
//! one `u32` (`index << 16 | feature`) compared directly with the row's rank shifted left by 16;
//! trees are 1-based perfect heaps (`i = 2i + right`), so a step is a load, a load and an
//! add-with-carry. Scores are bit-identical to the pointer layout (same leaves, same order).

use crate::dense::Dense;

/// Widest row compiled (one row's ranks fill one 64-byte line).
pub const MAX_FEATURES: usize = 16;
/// Rows walked in lockstep through one tree.
pub const LANES: usize = 8;
/// A padding split: its index is above every rank, so it always routes left.
const PAD: u32 = u32::MAX << 16;

/// [`LANES`] encoded rows, each feature's rank shifted left by 16.
pub type Group = [[u32; MAX_FEATURES]; LANES];

/// The rank-encoded form of a whole forest.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    height: u32,
    /// Per feature, the sorted distinct thresholds of its splits.
    cuts: Vec<Vec<f64>>,
    /// Per tree, `2^height` packed splits (slot 0 unused).
    nodes: Vec<u32>,
    /// Per tree, `2^height` leaf path lengths.
    leaves: Vec<f64>,
}

impl Ranked {
    /// Compiles the dense layout; `None` when rows are wider than [`MAX_FEATURES`] or a feature
    /// has more than 65535 distinct thresholds.
    pub fn build(dense: &Dense, d: usize) -> Option<Self> {
        if d == 0 || d > MAX_FEATURES {
            return None;
        }
        let mut cuts = vec![Vec::new(); d];
        for (feats, thr, _) in dense.trees() {
            for (&f, &t) in feats.iter().zip(thr) {
                if t.is_finite() {
                    cuts.get_mut(f as usize)?.push(t);
                }
            }
        }
        for c in &mut cuts {
            c.sort_by(f64::total_cmp);
            c.dedup();
            if c.len() >= 1 << 16 {
                return None;
            }
        }
        let width = 1usize << dense.height();
        let (mut nodes, mut leaves) = (Vec::new(), Vec::new());
        for (feats, thr, lv) in dense.trees() {
            nodes.push(PAD);
            for (&f, &t) in feats.iter().zip(thr) {
                nodes.push(
                    match cuts[f as usize].binary_search_by(|c| c.total_cmp(&t)) {
                        Ok(k) if t.is_finite() => ((k as u32) << 16) | f,
                        _ => PAD,
                    },
                );
            }
            nodes.resize(nodes.len().next_multiple_of(width), PAD);
            leaves.extend_from_slice(lv);
        }
        Some(Self {
            height: dense.height(),
            cuts,
            nodes,
            leaves,
        })
    }

    /// The number of thresholds of feature `f` that are `<= x` (all of them for NaN, which
    /// goes right at every split).
    #[inline]
    fn rank(&self, f: usize, x: f64) -> u32 {
        let cuts = &self.cuts[f];
        let r = if x.is_nan() {
            cuts.len()
        } else {
            cuts.partition_point(|&c| c <= x)
        };
        r as u32
    }

    /// Encodes `rows` (each as wide as the forest's rows) into `out`, the last group padded.
    pub fn encode(&self, rows: &[Vec<f64>], out: &mut Vec<Group>) {
        out.clear();
        for chunk in rows.chunks(LANES) {
            let mut g = [[0; MAX_FEATURES]; LANES];
            for (enc, row) in g.iter_mut().zip(chunk) {
                for (f, (e, &x)) in enc.iter_mut().zip(row).enumerate() {
                    *e = self.rank(f, x) << 16;
                }
            }
            out.push(g);
        }
    }

    /// Adds each encoded row's path-length sum over all trees (tree 0 first) to `sums`.
    pub fn accumulate(&self, groups: &[Group], sums: &mut [[f64; LANES]]) {
        match self.height {
            1 => self.each_tree::<1, 2>(groups, sums),
            2 => self.each_tree::<2, 4>(groups, sums),
            3 => self.each_tree::<3, 8>(groups, sums),
            4 => self.each_tree::<4, 16>(groups, sums),
            5 => self.each_tree::<5, 32>(groups, sums),
            6 => self.each_tree::<6, 64>(groups, sums),
            7 => self.each_tree::<7, 128>(groups, sums),
            8 => self.each_tree::<8, 256>(groups, sums),
            9 => self.each_tree::<9, 512>(groups, sums),
            _ => self.each_tree::<10, 1024>(groups, sums),
        }
    }

    fn each_tree<const H: usize, const N: usize>(
        &self,
        groups: &[Group],
        sums: &mut [[f64; LANES]],
    ) {
        let (nodes, _) = self.nodes.as_chunks::<N>();
        let (leaves, _) = self.leaves.as_chunks::<N>();
        for (nodes, leaves) in nodes.iter().zip(leaves) {
            for (g, s) in groups.iter().zip(sums.iter_mut()) {
                walk::<H, N>(nodes, leaves, g, s);
            }
        }
    }
}

/// Walks a group through one tree of height `H` (`N = 2^H` slots) and adds its leaves.
#[inline(always)]
fn walk<const H: usize, const N: usize>(
    nodes: &[u32; N],
    leaves: &[f64; N],
    g: &Group,
    sums: &mut [f64; LANES],
) {
    let mut idx = [1usize; LANES];
    for _ in 0..H {
        for (i, row) in idx.iter_mut().zip(g) {
            let nd = nodes[*i & (N - 1)];
            *i = 2 * *i + usize::from(row[nd as usize & (MAX_FEATURES - 1)] > nd);
        }
    }
    for (s, i) in sums.iter_mut().zip(idx) {
        *s += leaves[i & (N - 1)];
    }
}

#[cfg(test)]
mod tests {
    use crate::forest::{ForestConfig, IsolationForest};
    use crate::rng::SplitMix64;

    /// Rows of `d` features, then probes on and around every kind of edge: NaN, ±inf, huge.
    fn data(d: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let mut r = SplitMix64::new(seed);
        let rows: Vec<Vec<f64>> = (0..2000)
            .map(|_| (0..d).map(|_| (r.next_f64() - 0.5) * 8.0).collect())
            .collect();
        let mut probe = rows[..777].to_vec();
        let specials = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
            -1e300,
            0.0,
        ];
        for (k, &v) in specials.iter().enumerate() {
            probe.push(
                (0..d)
                    .map(|f| if f % 2 == k % 2 { v } else { 0.5 })
                    .collect(),
            );
            probe.push(vec![v; d]);
        }
        (rows, probe)
    }

    #[test]
    fn ranked_layout_scores_bit_identically() {
        for (d, psi) in [(1, 256), (3, 2), (6, 3), (8, 256), (16, 200), (5, 1000)] {
            let (rows, mut probe) = data(d, d as u64);
            let cfg = ForestConfig {
                n_trees: 23,
                max_samples: psi,
                seed: 3,
                ..ForestConfig::default()
            };
            let f = IsolationForest::fit(&rows, cfg).expect("fit");
            assert_eq!(f.layout(), "ranked", "d {d} psi {psi}");
            // Values exactly on split thresholds go right (`x < t` is false).
            let snap = f.snapshot();
            let on: Vec<Vec<f64>> = snap
                .nodes
                .iter()
                .filter(|n| n.feature != u32::MAX)
                .take(50)
                .map(|n| vec![n.value; d])
                .collect();
            probe.extend(on);
            let fast = f.score_many(&probe).expect("score");
            for (x, s) in probe.iter().zip(&fast) {
                let slow = f.score(x).expect("score one");
                assert_eq!(s.to_bits(), slow.to_bits(), "d {d} psi {psi} x {x:?}");
            }
        }
    }

    #[test]
    fn wide_rows_fall_back_to_the_dense_layout_identically() {
        let (rows, probe) = data(17, 4);
        let f = IsolationForest::fit(&rows, ForestConfig::default()).expect("fit");
        assert_eq!(f.layout(), "dense");
        let fast = f.score_many(&probe).expect("score");
        for (x, s) in probe.iter().zip(&fast) {
            assert_eq!(s.to_bits(), f.score(x).expect("score one").to_bits());
        }
    }
}
