//! A seeded generator of labelled, realistic multivariate server metrics (one set per
//! "machine"), written in the SMD-style layout read by
//! [`load_multivariate`](crate::eval::multivariate::load_multivariate).
//!
//! Every machine is driven by a latent request load with daily and weekly seasonality (weekends
//! lower, a morning bump, a per-machine time-zone phase) and slow AR(1) fluctuations. The default
//! six features are derived from that load:
//!
//! | # | name           | model                                                                 |
//! |---|----------------|-----------------------------------------------------------------------|
//! | 0 | `request_rate` | load + Poisson-like noise (sd grows with the level)                    |
//! | 1 | `cpu_pct`      | idle + a·load, noise growing with load, clipped to [0, 100]            |
//! | 2 | `memory_mb`    | base + EMA(load, 90 min) + slow Ornstein–Uhlenbeck wander + noise      |
//! | 3 | `latency_ms`   | l0·(1 + k·ρ²/(1−ρ)) with ρ the CPU utilisation, log-normal noise       |
//! | 4 | `queue_depth`  | q·ρ²/(1−ρ) with multiplicative noise                                   |
//! | 5 | `kpi_orders`   | conversion·load, slightly degraded at high utilisation, Poisson noise  |
//!
//! Further features (when `features > 6`) cycle through network throughput, disk IOPS and a
//! thread count, all load-driven. With `features < 6` the first `features` columns are kept.
//!
//! Anomalies ([`AnomalyKind`]) are injected into the test part only; rows outside the injected
//! ranges are bit-identical to the anomaly-free series. Values are rounded to 4 decimals so that
//! the text files round-trip exactly.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::eval::error::{EvalError, read_to_string};
use crate::rng::SplitMix64;
use crate::stats::{mad, median};

mod inject;
mod series;

use inject::*;
use series::*;

/// Parameters of [`generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    /// Number of machines (one [`GeneratedSet`] each).
    pub machines: usize,
    /// Number of feature columns (at least 1; 6 gives the documented base set).
    pub features: usize,
    /// Seconds between rows (values ≤ 0 are treated as 1).
    pub step_secs: i64,
    /// Length of the clean training part in days.
    pub train_days: f64,
    /// Length of the test part (where anomalies are injected) in days.
    pub test_days: f64,
    /// Seed; the output is a pure function of the configuration.
    pub seed: u64,
    /// Epoch seconds (UTC) of the first training row.
    pub start_epoch_secs: i64,
}

impl Default for GeneratorConfig {
    /// Four machines, six features, 5-minute rows, 14 training and 7 test days from 2024-01-01.
    fn default() -> Self {
        Self {
            machines: 4,
            features: 6,
            step_secs: 300,
            train_days: 14.0,
            test_days: 7.0,
            seed: 42,
            start_epoch_secs: 1_704_067_200,
        }
    }
}

/// Kind of an injected anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AnomalyKind {
    /// One or two features jump by 1.5–3 training robust σ for 0.5–1.5 h.
    LevelShift,
    /// For 1.5–2.5 h the daily pattern is broken: all features follow the load of 12 h later
    /// (night load at noon, or day load at night), every value inside the training range.
    SeasonalBreak,
    /// A linear ramp of 1.5–3 σ over 1.5–3 h on one feature (memory leak, latency creep).
    Drift,
    /// For 1–1.5 h a group of features (CPU/latency/queue, or request rate/KPI) follows the
    /// load of 12 h later while the rest follow the actual load (e.g. CPU high while load is
    /// normal); every value inside the training range.
    CorrelationBreak,
    /// 1–3 rows where one or two features jump by 6–12 σ, beyond their training maximum.
    Spike,
}

impl AnomalyKind {
    /// All kinds, in declaration order.
    pub const ALL: [AnomalyKind; 5] = [
        AnomalyKind::LevelShift,
        AnomalyKind::SeasonalBreak,
        AnomalyKind::Drift,
        AnomalyKind::CorrelationBreak,
        AnomalyKind::Spike,
    ];
}

/// One injected anomaly of a test series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjectedAnomaly {
    /// What was injected.
    pub kind: AnomalyKind,
    /// First affected test row (0-based, relative to the test part).
    pub start: usize,
    /// Last affected test row (inclusive).
    pub end: usize,
    /// Feature columns that were manipulated.
    pub features: Vec<usize>,
}

/// The generated data of one machine.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedSet {
    /// File stem, e.g. `machine-01`.
    pub name: String,
    /// Clean training rows.
    pub train: Vec<Vec<f64>>,
    /// Test rows (with anomalies).
    pub test: Vec<Vec<f64>>,
    /// One label per test row: true inside an injected anomaly.
    pub labels: Vec<bool>,
    /// Epoch seconds of each training row.
    pub timestamps_train: Vec<i64>,
    /// Epoch seconds of each test row (continuing the training timestamps).
    pub timestamps_test: Vec<i64>,
    /// The injected anomalies, sorted by start row.
    pub anomalies: Vec<InjectedAnomaly>,
}

/// Contents of `anomalies/<name>.json` written by [`write_dataset`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyFile {
    /// Set name.
    pub name: String,
    /// Column names, see [`feature_names`].
    pub feature_names: Vec<String>,
    /// Seconds between rows.
    pub step_secs: i64,
    /// Number of training rows (test row `i` is overall row `train_rows + i`).
    pub train_rows: usize,
    /// The injected anomalies (test-relative inclusive row ranges).
    pub anomalies: Vec<InjectedAnomaly>,
}

/// Names of the first `n` generated feature columns (see the module table; extras are
/// `net_mbps_<j>`, `disk_iops_<j>`, `threads_<j>`).
pub fn feature_names(n: usize) -> Vec<String> {
    const BASE: [&str; 6] = [
        "request_rate",
        "cpu_pct",
        "memory_mb",
        "latency_ms",
        "queue_depth",
        "kpi_orders",
    ];
    (0..n)
        .map(|i| match BASE.get(i) {
            Some(s) => (*s).to_string(),
            None => {
                let j = i - BASE.len();
                let kind = ["net_mbps", "disk_iops", "threads"][j % 3];
                format!("{kind}_{}", j / 3)
            }
        })
        .collect()
}

fn generate_machine(cfg: &GeneratorConfig, index: usize, inject: bool) -> GeneratedSet {
    let step = cfg.step_secs.max(1);
    let nf = cfg.features.max(1);
    let rows = |days: f64| (days.max(0.0) * DAY / step as f64).round() as usize;
    let (n_train, n_test) = (rows(cfg.train_days), rows(cfg.test_days));
    let base = index as u64 * 3;
    let mut prng = SplitMix64::derive(cfg.seed, base);
    let mut nrng = SplitMix64::derive(cfg.seed, base + 1);
    let mut arng = SplitMix64::derive(cfg.seed, base + 2);
    let m = Machine::new(&mut prng, nf);
    let stamps: Vec<i64> = (0..(n_train + n_test) as i64)
        .map(|i| cfg.start_epoch_secs + i * step)
        .collect();
    let times: Vec<f64> = stamps.iter().map(|&t| t as f64).collect();
    let lat = latent(&m, &mut nrng, &times, step as f64, nf);
    let clean_alt = vec![false; nf];
    let mut all: Vec<Vec<f64>> = (0..stamps.len())
        .map(|i| row(&m, &lat, i, &clean_alt))
        .collect();
    let test = all.split_off(n_train);
    let train = all;
    let mut set = GeneratedSet {
        name: format!("machine-{:02}", index + 1),
        labels: vec![false; n_test],
        timestamps_test: stamps[n_train..].to_vec(),
        timestamps_train: stamps[..n_train].to_vec(),
        train,
        test,
        anomalies: Vec::new(),
    };
    if !inject || n_test == 0 || set.train.is_empty() {
        return set;
    }
    let rows_per_hour = 3600.0 / step as f64;
    let planned = plan(&mut arng, n_test, nf, rows_per_hour);
    let test_t0 = times[n_train];
    let placed = place(&mut arng, &m, &planned, test_t0, step as f64, n_test);
    let sigma: Vec<f64> = (0..nf).map(|f| robust_sigma(&set.train, f)).collect();
    let bounds: Vec<(f64, f64)> = (0..nf)
        .map(|f| {
            set.train
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
                    (lo.min(r[f]), hi.max(r[f]))
                })
        })
        .collect();
    for (kind, start, end) in placed {
        let len = end - start + 1;
        let features = match kind {
            AnomalyKind::SeasonalBreak | AnomalyKind::CorrelationBreak => {
                let group: Vec<usize> = if kind == AnomalyKind::SeasonalBreak {
                    (0..nf).collect()
                } else if arng.below(2) == 0 {
                    [CPU, LAT, QUEUE].into_iter().filter(|&f| f < nf).collect()
                } else {
                    [RATE, KPI].into_iter().filter(|&f| f < nf).collect()
                };
                let alt: Vec<bool> = (0..nf).map(|f| group.contains(&f)).collect();
                for i in start..=end {
                    let mut r = row(&m, &lat, n_train + i, &alt);
                    for (v, &(lo, hi)) in r.iter_mut().zip(&bounds) {
                        *v = v.clamp(lo, hi);
                    }
                    set.test[i] = r;
                }
                group
            }
            AnomalyKind::LevelShift => {
                let count = 1 + arng.below(2);
                let fs = pick_features(&mut arng, &(0..nf).collect::<Vec<_>>(), nf, count);
                for &f in &fs {
                    let down = (f == RATE || f == KPI) && arng.below(2) == 0;
                    let delta =
                        uniform(&mut arng, 1.5, 3.0) * sigma[f] * if down { -1.0 } else { 1.0 };
                    for r in &mut set.test[start..=end] {
                        r[f] = round4(clip(f, r[f] + delta));
                    }
                }
                fs
            }
            AnomalyKind::Drift => {
                let fs = pick_features(&mut arng, &[MEM, LAT], nf, 1);
                for &f in &fs {
                    let amp = uniform(&mut arng, 1.5, 3.0) * sigma[f];
                    for (k, r) in set.test[start..=end].iter_mut().enumerate() {
                        let frac = (k + 1) as f64 / len as f64;
                        r[f] = round4(clip(f, r[f] + amp * frac));
                    }
                }
                fs
            }
            AnomalyKind::Spike => {
                let count = 1 + arng.below(2);
                let fs = pick_features(&mut arng, &[RATE, CPU, LAT, QUEUE], nf, count);
                for &f in &fs {
                    let k = uniform(&mut arng, 6.0, 12.0);
                    for r in &mut set.test[start..=end] {
                        let v = (r[f] + k * sigma[f]).max(bounds[f].1 + 0.25 * k * sigma[f]);
                        r[f] = round4(clip(f, v));
                    }
                }
                fs
            }
        };
        for l in &mut set.labels[start..=end] {
            *l = true;
        }
        set.anomalies.push(InjectedAnomaly {
            kind,
            start,
            end,
            features,
        });
    }
    set
}

/// Generates one labelled set per machine; deterministic for a configuration. Training rows are
/// anomaly-free, and about 3–6 % of test rows lie in injected anomalies of several kinds.
pub fn generate(cfg: &GeneratorConfig) -> Vec<GeneratedSet> {
    (0..cfg.machines)
        .map(|i| generate_machine(cfg, i, true))
        .collect()
}

fn write_file(path: &Path, body: &str) -> Result<(), EvalError> {
    std::fs::write(path, body).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn rows_text(rows: &[Vec<f64>]) -> String {
    let mut s = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().map(|v| v.to_string()).collect();
        s.push_str(&line.join(","));
        s.push('\n');
    }
    s
}

/// Writes `train/`, `test/`, `test_label/` (0/1 per row), `timestamps/` (epoch seconds, training
/// rows then test rows) as `<name>.txt`, and `anomalies/<name>.json` ([`AnomalyFile`]) under `dir`.
pub fn write_dataset(dir: &Path, sets: &[GeneratedSet]) -> Result<(), EvalError> {
    for sub in ["train", "test", "test_label", "timestamps", "anomalies"] {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).map_err(|source| EvalError::Io { path: p, source })?;
    }
    for set in sets {
        let file = format!("{}.txt", set.name);
        write_file(&dir.join("train").join(&file), &rows_text(&set.train))?;
        write_file(&dir.join("test").join(&file), &rows_text(&set.test))?;
        let labels: String = set
            .labels
            .iter()
            .map(|&l| if l { "1\n" } else { "0\n" })
            .collect();
        write_file(&dir.join("test_label").join(&file), &labels)?;
        let stamps: String = set
            .timestamps_train
            .iter()
            .chain(&set.timestamps_test)
            .map(|t| format!("{t}\n"))
            .collect();
        write_file(&dir.join("timestamps").join(&file), &stamps)?;
        let width = set.train.first().or(set.test.first()).map_or(0, Vec::len);
        let step = match (
            set.timestamps_train.as_slice(),
            set.timestamps_test.as_slice(),
        ) {
            ([a, b, ..], _) | ([], [a, b, ..]) => b - a,
            _ => 0,
        };
        let meta = AnomalyFile {
            name: set.name.clone(),
            feature_names: feature_names(width),
            step_secs: step,
            train_rows: set.train.len(),
            anomalies: set.anomalies.clone(),
        };
        let path = dir.join("anomalies").join(format!("{}.json", set.name));
        let json = serde_json::to_string_pretty(&meta).map_err(|source| EvalError::Json {
            path: path.clone(),
            source,
        })?;
        write_file(&path, &json)?;
    }
    Ok(())
}

/// Reads `anomalies/<name>.json` written by [`write_dataset`].
pub fn read_anomalies(dir: &Path, name: &str) -> Result<AnomalyFile, EvalError> {
    let path = dir.join("anomalies").join(format!("{name}.json"));
    serde_json::from_str(&read_to_string(&path)?).map_err(|source| EvalError::Json { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::multivariate::load_multivariate;

    fn small(seed: u64) -> GeneratorConfig {
        GeneratorConfig {
            machines: 3,
            seed,
            ..GeneratorConfig::default()
        }
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let a = generate(&small(7));
        assert_eq!(a, generate(&small(7)));
        assert_ne!(a, generate(&small(8)));
        assert_eq!(a.len(), 3);
        let s = &a[0];
        assert_eq!(s.train.len(), 14 * 288);
        assert_eq!(s.test.len(), 7 * 288);
        assert_eq!(s.labels.len(), s.test.len());
        assert!(s.train.iter().chain(&s.test).all(|r| r.len() == 6));
        assert!(
            s.train
                .iter()
                .chain(&s.test)
                .flatten()
                .all(|v| v.is_finite() && *v >= 0.0)
        );
        assert_eq!(s.timestamps_train[0], 1_704_067_200);
        assert_eq!(
            s.timestamps_test[0],
            s.timestamps_train[s.train.len() - 1] + 300
        );
    }

    #[test]
    fn label_fraction_kinds_and_test_only() {
        for seed in 0..6 {
            let cfg = small(seed);
            for (i, s) in generate(&cfg).iter().enumerate() {
                let frac = s.labels.iter().filter(|&&l| l).count() as f64 / s.labels.len() as f64;
                assert!(
                    (0.03..=0.06).contains(&frac),
                    "seed {seed} {}: {frac}",
                    s.name
                );
                for kind in AnomalyKind::ALL {
                    assert!(
                        s.anomalies.iter().any(|a| a.kind == kind),
                        "{kind:?} missing"
                    );
                }
                // Labels are exactly the union of the anomaly ranges (all inside the test part).
                let mut expect = vec![false; s.test.len()];
                for a in &s.anomalies {
                    assert!(a.start <= a.end && a.end < s.test.len());
                    assert!(!a.features.is_empty());
                    expect[a.start..=a.end].iter_mut().for_each(|l| *l = true);
                }
                assert_eq!(expect, s.labels);
                // Train and every unlabelled test row equal the anomaly-free series.
                let clean = generate_machine(&cfg, i, false);
                assert_eq!(clean.train, s.train);
                assert!(clean.anomalies.is_empty() && clean.labels.iter().all(|l| !l));
                let mut changed = 0;
                for (k, (a, b)) in s.test.iter().zip(&clean.test).enumerate() {
                    if !s.labels[k] {
                        assert_eq!(a, b, "unlabelled row {k} changed");
                    } else if a != b {
                        changed += 1;
                    }
                }
                assert!(changed * 2 > s.labels.iter().filter(|&&l| l).count());
            }
        }
    }

    #[test]
    fn breaks_stay_inside_training_range() {
        let mut seen = 0;
        for s in generate(&small(3)).iter().chain(&generate(&small(11))) {
            let nf = s.train[0].len();
            for a in s.anomalies.iter().filter(|a| {
                matches!(
                    a.kind,
                    AnomalyKind::SeasonalBreak | AnomalyKind::CorrelationBreak
                )
            }) {
                seen += 1;
                for r in &s.test[a.start..=a.end] {
                    for f in 0..nf {
                        let lo = s.train.iter().map(|t| t[f]).fold(f64::INFINITY, f64::min);
                        let hi = s
                            .train
                            .iter()
                            .map(|t| t[f])
                            .fold(f64::NEG_INFINITY, f64::max);
                        assert!(
                            lo <= r[f] && r[f] <= hi,
                            "{:?} f{f}={} not in [{lo},{hi}]",
                            a.kind,
                            r[f]
                        );
                    }
                }
            }
        }
        assert!(seen >= 12);
    }

    #[test]
    fn realistic_structure() {
        let s = &generate(&small(5))[0];
        let col = |f: usize| s.train.iter().map(|r| r[f]).collect::<Vec<f64>>();
        let corr = |a: &[f64], b: &[f64]| {
            let (ma, mb) = (crate::stats::mean(a), crate::stats::mean(b));
            let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
            let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
            let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
            cov / (va * vb).sqrt()
        };
        let (rate, cpu, lat) = (col(RATE), col(CPU), col(LAT));
        assert!(corr(&rate, &cpu) > 0.9);
        assert!(corr(&cpu, &lat) > 0.7);
        // Weekends (2024-01-06/07, Sat/Sun) are quieter than weekdays on average.
        let day_mean = |d: usize| crate::stats::mean(&rate[d * 288..(d + 1) * 288]);
        assert!(day_mean(5) < 0.9 * day_mean(2));
        assert!(day_mean(6) < 0.9 * day_mean(3));
    }

    #[test]
    fn feature_count_variants() {
        for nf in [1, 2, 9] {
            let cfg = GeneratorConfig {
                machines: 1,
                features: nf,
                ..GeneratorConfig::default()
            };
            let s = &generate(&cfg)[0];
            assert!(s.test.iter().all(|r| r.len() == nf));
            assert!(
                s.anomalies
                    .iter()
                    .all(|a| a.features.iter().all(|&f| f < nf))
            );
            assert!(s.labels.iter().any(|&l| l));
            assert_eq!(feature_names(nf).len(), nf);
        }
        assert_eq!(feature_names(8)[7], "disk_iops_0");
    }

    #[test]
    fn write_and_load_round_trip() {
        let cfg = GeneratorConfig {
            machines: 2,
            train_days: 2.0,
            test_days: 3.0,
            ..GeneratorConfig::default()
        };
        let sets = generate(&cfg);
        let dir = std::env::temp_dir().join(format!("helios-gen-{}", std::process::id()));
        write_dataset(&dir, &sets).unwrap();
        for s in &sets {
            let loaded = load_multivariate(&dir, &s.name).unwrap();
            assert_eq!(loaded.train, s.train);
            assert_eq!(loaded.test, s.test);
            assert_eq!(loaded.labels, s.labels);
            let stamps =
                std::fs::read_to_string(dir.join("timestamps").join(format!("{}.txt", s.name)))
                    .unwrap();
            let stamps: Vec<i64> = stamps.lines().map(|l| l.parse().unwrap()).collect();
            assert_eq!(stamps.len(), s.train.len() + s.test.len());
            assert_eq!(stamps[s.train.len()], s.timestamps_test[0]);
            let meta = read_anomalies(&dir, &s.name).unwrap();
            assert_eq!(meta.anomalies, s.anomalies);
            assert_eq!(meta.train_rows, s.train.len());
            assert_eq!(meta.step_secs, 300);
            assert_eq!(meta.feature_names, feature_names(6));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
