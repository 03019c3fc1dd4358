//! Scoring throughput of the forest as `helios eval compare-sklearn` fits it (100 trees,
//! psi 256, seed 42, one thread) on 8 features of a three-cluster mixture: 20k training rows,
//! 200k test rows (2% anomalies); best of three timed runs after a warm-up.
//!
//! `cargo run --release -p helios-detection --example score_speed`

use std::time::Instant;

use helios_detection::forest::{ForestConfig, IsolationForest};
use helios_detection::rng::SplitMix64;

/// `rows` rows of `dims` features around three centres; every 50th row (when `anomalies`) a
/// wide outlier (the data of `helios eval compare-sklearn`).
fn mixture(rows: usize, dims: usize, anomalies: bool, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = SplitMix64::new(seed);
    let mut gauss = move || {
        let (u1, u2) = (rng.next_f64().max(1e-12), rng.next_f64());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    };
    let centres = [0.0, 5.0, -4.0];
    (0..rows)
        .map(|i| {
            let outlier = anomalies && i % 50 == 7;
            let c = centres[i % centres.len()];
            (0..dims)
                .map(|_| {
                    if outlier {
                        gauss() * 6.0 + 1.0
                    } else {
                        c + gauss()
                    }
                })
                .collect()
        })
        .collect()
}

/// Nanoseconds this thread has run on a CPU (Linux; 0 elsewhere): robust to a busy machine.
fn on_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dims = 8;
    let train = mixture(20_000, dims, false, 1);
    let test = mixture(200_000, dims, true, 2);
    let cfg = ForestConfig {
        n_trees: 100,
        max_samples: 256,
        seed: 42,
        threads: 1,
        ..ForestConfig::default()
    };
    let forest = IsolationForest::fit(&train, cfg)?;
    let mut checksum = forest.score_many(&test)?.iter().sum::<f64>();
    let (mut best, mut best_cpu) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..3 {
        let (start, cpu) = (Instant::now(), on_cpu_ns());
        checksum += forest.score_many(&test)?.iter().sum::<f64>();
        best = best.min(start.elapsed().as_secs_f64());
        best_cpu = best_cpu.min((on_cpu_ns() - cpu) as f64 * 1e-9);
    }
    let n = test.len() as f64;
    println!(
        "score: {:.0} rows/s wall, {:.0} rows/s on-CPU (100 trees, psi 256, {dims} features, 1 thread, best of 3; checksum {checksum:.6})",
        n / best,
        n / best_cpu
    );
    Ok(())
}
