//! Measures Isolation Forest fit and score throughput (single thread).
//!
//! `cargo run --release -p helios-detection --example score_bench`

use std::time::Instant;

use helios_detection::forest::{ForestConfig, IsolationForest};
use helios_detection::rng::SplitMix64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut r = SplitMix64::new(1);
    let d = 8;
    let rows: Vec<Vec<f64>> = (0..100_000)
        .map(|_| (0..d).map(|_| r.next_f64()).collect())
        .collect();
    let start = Instant::now();
    let forest = IsolationForest::fit(&rows, ForestConfig::default())?;
    let fit = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut checksum = 0.0;
    for _ in 0..5 {
        checksum += forest.score_many(&rows)?.iter().sum::<f64>();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "fit 100 trees x 256 samples: {:.1} ms; score: {:.0} rows/s (100 trees, {d} features, 1 thread; checksum {checksum:.3})",
        fit * 1e3,
        5.0 * rows.len() as f64 / secs
    );
    Ok(())
}
