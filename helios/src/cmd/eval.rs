//! `helios eval`: score the detection library on labelled data and print tables.
//!
//! - `helios eval nab --dir DATASET [--detector FILE]` — NAB scored through the detector core
//!   a Detector runs (default Detector settings unless a file is given), on the fixed tuning
//!   half, the held-out half (at the tuning half's thresholds) and the whole corpus, for three
//!   seeds, with window precision/recall of the alerts.
//! - `helios eval compare-sklearn` — our Isolation Forest beside scikit-learn's on identical
//!   inputs, in the same run: fit time, score throughput (one thread each), ROC-AUC.

use crate::cmd::detector_file::{self, DetectorFileError};
use helios_detection::eval::metrics::roc_auc;
use helios_detection::eval::nab::{NabConfig, NabReport, NabRun, run_nab};
use helios_detection::forest::{ForestConfig, IsolationForest};
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
    /// NAB score (standard, reward_low_FP, reward_low_FN) of the detector core on the tuning
    /// half, the held-out half and the whole corpus, and window P/R/F1 of its alerts.
    Nab {
        /// The NAB directory (`data/`, `labels/`).
        #[arg(long)]
        dir: PathBuf,
        /// A Detector (YAML, whole object or spec) whose single feature is `metrics.value`;
        /// default: the default Detector.
        #[arg(long)]
        detector: Option<PathBuf>,
        /// Overrides `spec.model.algorithm` (`RobustForest` or `IsolationForest`).
        #[arg(long)]
        algorithm: Option<String>,
        /// Forest seeds to run (mean ± half-range is reported).
        #[arg(long, value_delimiter = ',', default_value = "42,43,44")]
        seeds: Vec<i64>,
        /// Only these files (`category/name.csv`), comma-separated.
        #[arg(long, value_delimiter = ',')]
        files: Vec<String>,
        /// Threads over files (results do not depend on it).
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Also print, per file and seed, where in each labelled window the first alert fell
        /// and how many alerts fell outside the windows.
        #[arg(long)]
        per_file: bool,
    },
    /// Any dataset in the layout `train/<name>.txt`, `test/<name>.txt`, `test_label/<name>.txt`:
    /// point-wise and point-adjusted P/R/F1 and ROC-AUC per series and overall.
    Multivariate {
        /// The dataset directory.
        #[arg(long)]
        dir: PathBuf,
        /// A Detector (YAML) whose features are `metrics.f0 … metrics.f<d-1>`; default: the
        /// default Detector over those features.
        #[arg(long)]
        detector: Option<PathBuf>,
        /// Python with scikit-learn: adds its IsolationForest (defaults, random_state 42) as a
        /// baseline of the same run (`e2e/stack` installs one: HELIOS_PYTHON in e2e/.stack/env).
        #[arg(long, value_name = "PYTHON")]
        sklearn_python: Option<PathBuf>,
    },
    /// Writes the labelled server-metric data set (train/ test/ test_label/ timestamps/
    /// anomalies/) the multivariate evaluation is developed on.
    GenMultivariate {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Machines (series).
        #[arg(long, default_value_t = 4)]
        machines: usize,
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
    /// The Detector file is unusable.
    #[error(transparent)]
    Detector(#[from] DetectorFileError),
    /// Writing the data for scikit-learn or running it failed.
    #[error("scikit-learn comparison: {0}")]
    Sklearn(String),
}

/// Run the subcommand, printing the table to stdout.
pub fn run(args: &Args) -> Result<(), Error> {
    match &args.what {
        What::Nab {
            dir,
            detector,
            algorithm,
            seeds,
            files,
            threads,
            per_file,
        } => nab(
            dir,
            detector.as_deref(),
            algorithm.as_deref(),
            seeds,
            files,
            *threads,
            *per_file,
        ),
        What::Multivariate {
            dir,
            detector,
            sklearn_python,
        } => {
            crate::cmd::eval_multivariate::run(dir, detector.as_deref(), sklearn_python.as_deref())
        }
        What::GenMultivariate {
            out,
            seed,
            machines,
        } => {
            use helios_detection::eval::generator::{GeneratorConfig, generate, write_dataset};
            let cfg = GeneratorConfig {
                seed: *seed,
                machines: *machines,
                ..GeneratorConfig::default()
            };
            write_dataset(out, &generate(&cfg))?;
            println!("wrote {} series to {}", machines, out.display());
            Ok(())
        }
        What::CompareSklearn {
            python,
            train_rows,
            test_rows,
            dims,
        } => compare_sklearn(python, *train_rows, *test_rows, *dims),
    }
}

/// The NAB runs of one Detector over several seeds.
pub fn nab_runs(
    dir: &Path,
    detector: Option<&Path>,
    algorithm: Option<&str>,
    seeds: &[i64],
    files: &[String],
    threads: usize,
) -> Result<Vec<(i64, NabRun)>, Error> {
    let (mut spec, path) =
        detector_file::read_or_default(detector, &["metrics.value".to_string()])?;
    if spec.features.len() != 1 || spec.features[0].as_str() != "metrics.value" {
        return Err(Error::Usage(format!(
            "{path}: a NAB Detector has exactly one feature, metrics.value"
        )));
    }
    if let Some(a) = algorithm {
        spec.model.algorithm = match a {
            "RobustForest" => helios_crds::detector::Algorithm::RobustForest,
            "IsolationForest" => helios_crds::detector::Algorithm::IsolationForest,
            other => {
                return Err(Error::Usage(format!(
                    "unknown algorithm {other:?}: RobustForest or IsolationForest"
                )));
            }
        };
    }
    let mut out = Vec::new();
    for &seed in seeds {
        spec.model.seed = seed;
        let cfg = detector_file::detector_config(&spec, "nab", &path)?;
        let nab = NabConfig {
            core: cfg.core,
            files: (!files.is_empty()).then(|| files.to_vec()),
            threads,
        };
        out.push((seed, run_nab(dir, &nab)?));
    }
    Ok(out)
}

/// Picks one subset's report out of a run.
type Subset = fn(&NabRun) -> &NabReport;

fn mean_spread(values: &[f64]) -> String {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let (lo, hi) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    format!("{mean:.2} ± {:.2}", (hi - lo).max(0.0) / 2.0)
}

fn nab(
    dir: &Path,
    detector: Option<&Path>,
    algorithm: Option<&str>,
    seeds: &[i64],
    files: &[String],
    threads: usize,
    per_file: bool,
) -> Result<(), Error> {
    let started = Instant::now();
    let runs = nab_runs(dir, detector, algorithm, seeds, files, threads)?;
    for (seed, run) in &runs {
        if per_file {
            println!(
                "## seed {seed}\n\n{:#}\n\n{:#}\n\n{:#}\n",
                run.tuning, run.held_out, run.corpus
            );
        } else {
            println!(
                "## seed {seed}\n\n{}\n\n{}\n\n{}\n",
                run.tuning, run.held_out, run.corpus
            );
        }
    }
    println!("## NAB summary over seeds {seeds:?} (mean ± half-range)\n");
    println!(
        "| subset | files | standard | reward_low_FP_rate | reward_low_FN_rate | alerts | windows detected |"
    );
    println!("|---|---|---|---|---|---|---|");
    let pick: [(&str, Subset); 3] = [
        ("tuning (thresholds chosen on it)", |r| &r.tuning),
        ("held-out (at the tuning thresholds)", |r| &r.held_out),
        ("corpus (thresholds chosen on it, NAB protocol)", |r| {
            &r.corpus
        }),
    ];
    for (label, get) in pick {
        let reports: Vec<&NabReport> = runs.iter().map(|(_, r)| get(r)).collect();
        let Some(first) = reports.first() else {
            continue;
        };
        let cols: Vec<String> = ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]
            .iter()
            .map(|p| {
                let v: Vec<f64> = reports.iter().filter_map(|r| r.score(p)).collect();
                mean_spread(&v)
            })
            .collect();
        let alerts: Vec<f64> = reports.iter().map(|r| r.alerts as f64).collect();
        println!(
            "| {label} | {} | {} | {} | {} | {} | {}/{} |",
            first.files,
            cols[0],
            cols[1],
            cols[2],
            mean_spread(&alerts),
            first.window_prf.tp,
            first.windows
        );
    }
    println!("\nevaluated in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Deterministic data: a mixture of Gaussian clusters with 2% scattered anomalies in the test set.
pub fn synthetic(
    rows: usize,
    dims: usize,
    anomalies: bool,
    seed: u64,
) -> (Vec<Vec<f64>>, Vec<bool>) {
    mixture(rows, dims, anomalies, seed, |gauss, _, _| {
        gauss() * 6.0 + 1.0
    })
}

/// Harder deterministic data: the same clusters, but each anomaly (2% of the test set) is an
/// ordinary member of its cluster except on two features, which sit 2.5–3σ away in opposite
/// directions (close to the cluster along every single axis; only the pair is unusual).
pub fn synthetic_subtle(
    rows: usize,
    dims: usize,
    anomalies: bool,
    seed: u64,
) -> (Vec<Vec<f64>>, Vec<bool>) {
    mixture(rows, dims, anomalies, seed, |gauss, centre, feature| {
        let away = 2.5 + 0.5 * (gauss().abs() / 3.0).min(1.0);
        match feature {
            0 => centre + away,
            1 => centre - away,
            _ => centre + gauss(),
        }
    })
}

/// Three unit Gaussian clusters (centres 0, 5, −4, rows assigned round-robin); when
/// `anomalies`, every 50th row's features come from `anomaly(gauss, centre, feature)`.
fn mixture(
    rows: usize,
    dims: usize,
    anomalies: bool,
    seed: u64,
    anomaly: impl Fn(&mut dyn FnMut() -> f64, f64, usize) -> f64,
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
            .map(|f| {
                if outlier {
                    anomaly(&mut gauss, c, f)
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

/// Runs `e2e/tools/sklearn_iforest.py` with `flags`, then one CSV file per table of `tables`
/// (written to a temp dir removed afterwards), and parses the JSON it prints.
fn run_sklearn(
    python: &Path,
    flags: &[&str],
    tables: &[&[Vec<f64>]],
) -> Result<serde_json::Value, Error> {
    let dir = std::env::temp_dir().join(format!(
        "helios-sklearn-{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).map_err(|e| Error::Sklearn(e.to_string()))?;
    let mut files = Vec::with_capacity(tables.len());
    for (k, rows) in tables.iter().enumerate() {
        let path = dir.join(format!("t{k}.csv"));
        write_csv(&path, rows)?;
        files.push(path);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/tools/sklearn_iforest.py");
    let out = Command::new(python)
        .arg(&script)
        .args(flags)
        .args(&files)
        .output()
        .map_err(|e| Error::Sklearn(format!("running {}: {e}", python.display())));
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    if !out.status.success() {
        return Err(Error::Sklearn(format!(
            "{} failed (is scikit-learn installed? `e2e/stack install` puts one in HELIOS_PYTHON): {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| Error::Sklearn(format!("bad output: {e}")))
}

/// scikit-learn's IsolationForest (its defaults, random_state 42) fitted on `train`:
/// `(training scores, test scores)`, higher = more anomalous.
pub fn sklearn_scores(
    python: &Path,
    train: &[Vec<f64>],
    test: &[Vec<f64>],
) -> Result<(Vec<f64>, Vec<f64>), Error> {
    let v = run_sklearn(python, &["--scores"], &[train, test])?;
    let column = |name: &str, len: usize| -> Result<Vec<f64>, Error> {
        let scores: Vec<f64> = v[name]
            .as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
            .unwrap_or_default();
        if scores.len() == len {
            Ok(scores)
        } else {
            Err(Error::Sklearn(format!(
                "{} {name} scores for {len} rows",
                scores.len()
            )))
        }
    };
    Ok((column("train", train.len())?, column("test", test.len())?))
}

/// One data shape of `compare-sklearn`: its name and its generator.
type Shape = (
    &'static str,
    fn(usize, usize, bool, u64) -> (Vec<Vec<f64>>, Vec<bool>),
);

fn compare_sklearn(
    python: &Path,
    train_rows: usize,
    test_rows: usize,
    dims: usize,
) -> Result<(), Error> {
    let shapes: [Shape; 2] = [
        ("wide outliers (6σ, all features)", synthetic),
        ("subtle (2.5–3σ on 2 features)", synthetic_subtle),
    ];
    let cfg = ForestConfig {
        n_trees: 100,
        max_samples: 256,
        seed: 42,
        threads: 1,
        ..ForestConfig::default()
    };
    let mut table = Vec::new();
    let mut ratios = Vec::new();
    for (name, generate) in shapes {
        let (train, _) = generate(train_rows, dims, false, 1);
        let (test, labels) = generate(test_rows, dims, true, 2);
        let t0 = Instant::now();
        let forest = IsolationForest::fit(&train, cfg)?;
        let fit_s = t0.elapsed().as_secs_f64();
        forest.score_many(&test[..1000.min(test.len())])?;
        let t0 = Instant::now();
        let scores = forest.score_many(&test)?;
        let ours_rate = test.len() as f64 / t0.elapsed().as_secs_f64();
        let ours_auc = roc_auc(&scores, &labels).unwrap_or(f64::NAN);

        let label_rows: Vec<Vec<f64>> = labels
            .iter()
            .map(|l| vec![if *l { 1.0 } else { 0.0 }])
            .collect();
        let sk = run_sklearn(python, &[], &[&train, &test, &label_rows])?;
        let sk_rate = sk["score_rows_per_s"].as_f64().unwrap_or(f64::NAN);
        let sk_auc = sk["roc_auc"].as_f64().unwrap_or(f64::NAN);
        let sk_fit = sk["fit_s"].as_f64().unwrap_or(f64::NAN);
        table.push(format!(
            "| {name} | helios (Rust) | {:.1} ms | {:.0} rows/s | {:.4} |",
            fit_s * 1e3,
            ours_rate,
            ours_auc
        ));
        table.push(format!(
            "| {name} | scikit-learn {} | {:.1} ms | {:.0} rows/s | {:.4} |",
            sk["version"].as_str().unwrap_or("?"),
            sk_fit * 1e3,
            sk_rate,
            sk_auc
        ));
        ratios.push(format!(
            "ratio, {name}: score throughput {:.1}x scikit-learn; ROC-AUC difference {:+.4}",
            ours_rate / sk_rate,
            ours_auc - sk_auc
        ));
    }
    println!(
        "Isolation Forest, 100 trees, psi 256, {dims} features; train {train_rows} rows, test {test_rows} rows (2% anomalies); one thread each"
    );
    println!("| data | implementation | fit | score throughput | ROC-AUC |");
    println!("|---|---|---|---|---|");
    println!("{}\n\n{}", table.join("\n"), ratios.join("\n"));
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
        let (c, lc) = synthetic_subtle(500, 4, true, 9);
        assert_eq!(lc, la);
        // An anomaly's first two features sit 2.5–3 above and below its cluster's centre.
        assert!(
            c.iter()
                .zip(&lc)
                .filter(|(_, l)| **l)
                .all(|(r, _)| (5.0..=6.0).contains(&(r[0] - r[1])))
        );
    }
}
