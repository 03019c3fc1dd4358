//! `helios eval`: score the detection library on labelled data and print tables.
//!
//! - `helios eval nab --dir DATASET` — the NAB score for the three profiles plus
//!   precision/recall/F1 over windows.
//! - `helios eval compare-sklearn` — our Isolation Forest beside scikit-learn's on identical
//!   inputs, in the same run: fit time, score throughput (one thread each), ROC-AUC.

use helios_detection::eval::metrics::roc_auc;
use helios_detection::eval::nab::{NabConfig, run_nab};
use helios_detection::forest::{ForestConfig, IsolationForest};
use helios_detection::metric::Algorithm;
use helios_detection::rng::SplitMix64;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Arguments of `helios eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum What {
    /// NAB score (standard, reward_low_FP, reward_low_FN) and window P/R/F1.
    Nab {
        /// The NAB directory (`data/`, `labels/`).
        #[arg(long)]
        dir: PathBuf,
        /// `RobustForest` (default) or `IsolationForest` (bare forest score).
        #[arg(long, default_value = "RobustForest")]
        algorithm: String,
        /// Only these files (`category/name.csv`), comma-separated.
        #[arg(long, value_delimiter = ',')]
        files: Vec<String>,
    },
    /// Any dataset in the layout `train/<name>.txt`, `test/<name>.txt`, `test_label/<name>.txt`:
    /// point-wise and point-adjusted P/R/F1 and ROC-AUC per series and overall.
    Multivariate {
        /// The dataset directory.
        #[arg(long)]
        dir: PathBuf,
        /// Expected anomaly fraction: the threshold is this quantile of the training scores.
        #[arg(long, default_value_t = 0.05)]
        contamination: f64,
    },
    /// Our forest beside scikit-learn's IsolationForest on the same synthetic data.
    CompareSklearn {
        /// Python with scikit-learn (e2e/stack installs one; see HELIOS_PYTHON in e2e/.stack/env).
        #[arg(long, env = "HELIOS_PYTHON", default_value = "python3")]
        python: PathBuf,
        /// Training rows.
        #[arg(long, default_value_t = 20_000)]
        train_rows: usize,
        /// Test rows (2% anomalies).
        #[arg(long, default_value_t = 100_000)]
        test_rows: usize,
        /// Features per row.
        #[arg(long, default_value_t = 8)]
        dims: usize,
    },
}

/// Why evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Evaluation of the library failed.
    #[error(transparent)]
    Eval(#[from] helios_detection::eval::EvalError),
    /// The forest failed.
    #[error(transparent)]
    Detection(#[from] helios_detection::DetectionError),
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// Writing the data for scikit-learn or running it failed.
    #[error("scikit-learn comparison: {0}")]
    Sklearn(String),
}

/// Run the subcommand, printing the table to stdout.
pub fn run(args: &Args) -> Result<(), Error> {
    match &args.what {
        What::Nab {
            dir,
            algorithm,
            files,
        } => nab(dir, algorithm, files),
        What::Multivariate { dir, contamination } => multivariate(dir, *contamination),
        What::CompareSklearn {
            python,
            train_rows,
            test_rows,
            dims,
        } => compare_sklearn(python, *train_rows, *test_rows, *dims),
    }
}

fn nab(dir: &Path, algorithm: &str, files: &[String]) -> Result<(), Error> {
    let mut cfg = NabConfig::default();
    cfg.metric.algorithm = match algorithm {
        "RobustForest" => Algorithm::RobustForest,
        "IsolationForest" => Algorithm::IsolationForest,
        other => {
            return Err(Error::Usage(format!(
                "unknown algorithm {other:?}: RobustForest or IsolationForest"
            )));
        }
    };
    if !files.is_empty() {
        cfg.files = Some(files.to_vec());
    }
    let started = Instant::now();
    let report = run_nab(dir, &cfg)?;
    println!("{report}");
    println!("evaluated in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn multivariate(dir: &Path, contamination: f64) -> Result<(), Error> {
    use helios_detection::eval::metrics::{Prf, point_adjust, point_prf};
    use helios_detection::eval::multivariate::load_multivariate;
    use helios_detection::forest::Threshold;
    let mut names: Vec<String> = std::fs::read_dir(dir.join("test"))
        .map_err(|e| Error::Usage(format!("{}: {e}", dir.join("test").display())))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".txt"))
                .map(str::to_string)
        })
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(Error::Usage(format!(
            "no test/<name>.txt files under {}",
            dir.display()
        )));
    }
    println!(
        "| series | rows | anomalies | point P / R / F1 | point-adjusted P / R / F1 | ROC-AUC |"
    );
    println!("|---|---|---|---|---|---|");
    let (mut point, mut adjusted) = ((0, 0, 0), (0, 0, 0));
    let mut aucs = Vec::new();
    let fmt = |p: &Prf| format!("{:.3} / {:.3} / {:.3}", p.precision, p.recall, p.f1);
    for name in &names {
        let set = load_multivariate(dir, name)?;
        let cfg = ForestConfig {
            n_trees: 100,
            max_samples: 256,
            seed: 42,
            threshold: Threshold::Contamination(contamination),
            ..ForestConfig::default()
        };
        let forest = IsolationForest::fit(&set.train, cfg)?;
        let scores = forest.score_many(&set.test)?;
        let pred: Vec<bool> = scores.iter().map(|s| forest.is_anomalous(*s)).collect();
        let p = point_prf(&pred, &set.labels);
        let a = point_prf(&point_adjust(&pred, &set.labels), &set.labels);
        let auc = roc_auc(&scores, &set.labels);
        point = (point.0 + p.tp, point.1 + p.fp, point.2 + p.fn_);
        adjusted = (adjusted.0 + a.tp, adjusted.1 + a.fp, adjusted.2 + a.fn_);
        aucs.extend(auc);
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            set.test.len(),
            set.labels.iter().filter(|l| **l).count(),
            fmt(&p),
            fmt(&a),
            auc.map_or("n/a".into(), |v| format!("{v:.4}"))
        );
    }
    let mean_auc = aucs.iter().sum::<f64>() / aucs.len().max(1) as f64;
    println!(
        "| overall ({} series) | | | {} | {} | {mean_auc:.4} (mean) |",
        names.len(),
        fmt(&Prf::from_counts(point.0, point.1, point.2)),
        fmt(&Prf::from_counts(adjusted.0, adjusted.1, adjusted.2))
    );
    Ok(())
}

/// Deterministic data: a mixture of Gaussian clusters with 2% scattered anomalies in the test set.
pub fn synthetic(
    rows: usize,
    dims: usize,
    anomalies: bool,
    seed: u64,
) -> (Vec<Vec<f64>>, Vec<bool>) {
    let mut rng = SplitMix64::new(seed);
    let mut gauss = move || {
        let (u1, u2) = (rng.next_f64().max(1e-12), rng.next_f64());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    };
    let centres = [0.0, 5.0, -4.0];
    let mut data = Vec::with_capacity(rows);
    let mut labels = Vec::with_capacity(rows);
    for i in 0..rows {
        let outlier = anomalies && i % 50 == 7;
        let c = centres[i % centres.len()];
        let row = (0..dims)
            .map(|_| {
                if outlier {
                    gauss() * 6.0 + 1.0
                } else {
                    c + gauss()
                }
            })
            .collect();
        data.push(row);
        labels.push(outlier);
    }
    (data, labels)
}

fn write_csv(path: &Path, rows: &[Vec<f64>]) -> Result<(), Error> {
    let file = std::fs::File::create(path)
        .map_err(|e| Error::Sklearn(format!("{}: {e}", path.display())))?;
    let mut w = std::io::BufWriter::new(file);
    for row in rows {
        let line: Vec<String> = row.iter().map(|v| format!("{v:.17e}")).collect();
        writeln!(w, "{}", line.join(",")).map_err(|e| Error::Sklearn(e.to_string()))?;
    }
    w.flush().map_err(|e| Error::Sklearn(e.to_string()))
}

fn compare_sklearn(
    python: &Path,
    train_rows: usize,
    test_rows: usize,
    dims: usize,
) -> Result<(), Error> {
    let (train, _) = synthetic(train_rows, dims, false, 1);
    let (test, labels) = synthetic(test_rows, dims, true, 2);

    let cfg = ForestConfig {
        n_trees: 100,
        max_samples: 256,
        seed: 42,
        threads: 1,
        ..ForestConfig::default()
    };
    let t0 = Instant::now();
    let forest = IsolationForest::fit(&train, cfg)?;
    let fit_s = t0.elapsed().as_secs_f64();
    forest.score_many(&test[..1000.min(test.len())])?;
    let t0 = Instant::now();
    let scores = forest.score_many(&test)?;
    let ours_rate = test.len() as f64 / t0.elapsed().as_secs_f64();
    let ours_auc = roc_auc(&scores, &labels).unwrap_or(f64::NAN);

    let dir = std::env::temp_dir().join(format!("helios-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::Sklearn(e.to_string()))?;
    let (tr, te, la) = (
        dir.join("train.csv"),
        dir.join("test.csv"),
        dir.join("labels.csv"),
    );
    write_csv(&tr, &train)?;
    write_csv(&te, &test)?;
    let label_rows: Vec<Vec<f64>> = labels
        .iter()
        .map(|l| vec![if *l { 1.0 } else { 0.0 }])
        .collect();
    write_csv(&la, &label_rows)?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/tools/sklearn_iforest.py");
    let out = Command::new(python)
        .arg(&script)
        .args([&tr, &te, &la])
        .output()
        .map_err(|e| Error::Sklearn(format!("running {}: {e}", python.display())))?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        return Err(Error::Sklearn(format!(
            "{} failed (is scikit-learn installed? `e2e/stack install` puts one in HELIOS_PYTHON): {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let sk: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::Sklearn(format!("bad output: {e}")))?;
    let sk_rate = sk["score_rows_per_s"].as_f64().unwrap_or(f64::NAN);
    let sk_auc = sk["roc_auc"].as_f64().unwrap_or(f64::NAN);
    let sk_fit = sk["fit_s"].as_f64().unwrap_or(f64::NAN);
    println!(
        "Isolation Forest, 100 trees, psi 256, {dims} features; train {train_rows} rows, test {test_rows} rows (2% anomalies); one thread each"
    );
    println!("| implementation | fit | score throughput | ROC-AUC |");
    println!("|---|---|---|---|");
    println!(
        "| helios (Rust) | {:.1} ms | {:.0} rows/s | {:.4} |",
        fit_s * 1e3,
        ours_rate,
        ours_auc
    );
    println!(
        "| scikit-learn {} | {:.1} ms | {:.0} rows/s | {:.4} |",
        sk["version"].as_str().unwrap_or("?"),
        sk_fit * 1e3,
        sk_rate,
        sk_auc
    );
    println!(
        "ratio: score throughput {:.1}x scikit-learn; ROC-AUC difference {:+.4}",
        ours_rate / sk_rate,
        ours_auc - sk_auc
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_data_is_deterministic_and_labelled() {
        let (a, la) = synthetic(500, 4, true, 9);
        let (b, lb) = synthetic(500, 4, true, 9);
        assert_eq!(a, b);
        assert_eq!(la, lb);
        assert_eq!(la.iter().filter(|l| **l).count(), 10);
        assert!(
            a.iter()
                .all(|r| r.len() == 4 && r.iter().all(|v| v.is_finite()))
        );
    }
}
