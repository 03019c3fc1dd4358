//! `helios eval multivariate`: the detector core on the `train/ test/ test_label/` layout,
//! beside baselines run in the same invocation on the same rows.
//!
//! Each series is one key. Training rows are fed to the core first (it learns them, its
//! threshold rule calibrates on them: the threshold comes from training data only), then the
//! test rows are scored online. Column `j` is the Detector feature `metrics.f<j>`; rows are
//! `hop` apart unless `timestamps/<name>.txt` gives epoch seconds per row (train then test).
//! Baselines (random, per-feature max |z|, PCA reconstruction error, and with
//! `--sklearn-python` scikit-learn's IsolationForest) fit on the training rows
//! and flag test rows above the maximum training score (no false alarm on training data, the
//! analogue of an alert budget).

use std::path::{Path, PathBuf};

use helios_detection::engine::DetectorCore;
use helios_detection::eval::baselines::{Baseline, MaxAbsZ, Pca, RandomScorer, fit_score};
use helios_detection::eval::generator::{AnomalyKind, InjectedAnomaly, read_anomalies};
use helios_detection::eval::metrics::{Prf, event_prf, point_adjust, point_prf, pr_auc, roc_auc};
use helios_detection::eval::multivariate::load_multivariate;

use crate::cmd::detector_file;
use crate::cmd::eval::Error;

/// Figures of one method on one series (or summed over series).
#[derive(Debug, Clone, Default)]
struct Figures {
    point: (usize, usize, usize),
    adjusted: (usize, usize, usize),
    events: (usize, usize, usize, usize),
    roc: Vec<f64>,
    pr: Vec<f64>,
    /// Per injected kind (generator data only): (events flagged inside their rows, events).
    kinds: [(usize, usize); AnomalyKind::ALL.len()],
}

impl Figures {
    fn of(scores: &[f64], pred: &[bool], labels: &[bool]) -> Self {
        let p = point_prf(pred, labels);
        let a = point_prf(&point_adjust(pred, labels), labels);
        let e = event_prf(pred, labels);
        Self {
            point: (p.tp, p.fp, p.fn_),
            adjusted: (a.tp, a.fp, a.fn_),
            events: (
                e.detected_events,
                e.missed_events,
                e.true_runs,
                e.false_runs,
            ),
            roc: roc_auc(scores, labels).into_iter().collect(),
            pr: pr_auc(scores, labels).into_iter().collect(),
            kinds: Default::default(),
        }
    }

    fn add(&mut self, o: &Figures) {
        let sum3 = |a: &mut (usize, usize, usize), b: (usize, usize, usize)| {
            a.0 += b.0;
            a.1 += b.1;
            a.2 += b.2;
        };
        sum3(&mut self.point, o.point);
        sum3(&mut self.adjusted, o.adjusted);
        self.events.0 += o.events.0;
        self.events.1 += o.events.1;
        self.events.2 += o.events.2;
        self.events.3 += o.events.3;
        self.roc.extend(&o.roc);
        self.pr.extend(&o.pr);
        for (a, b) in self.kinds.iter_mut().zip(o.kinds) {
            a.0 += b.0;
            a.1 += b.1;
        }
    }

    /// Counts, per kind, the injected anomalies with a flagged row inside their rows.
    fn with_kinds(mut self, pred: &[bool], injected: &[InjectedAnomaly]) -> Self {
        for a in injected {
            let k = AnomalyKind::ALL.iter().position(|&k| k == a.kind);
            let Some(slot) = k.map(|k| &mut self.kinds[k]) else {
                continue;
            };
            let hit = pred
                .get(a.start..=a.end.min(pred.len().saturating_sub(1)))
                .is_some_and(|rows| rows.iter().any(|&p| p));
            slot.0 += usize::from(hit);
            slot.1 += 1;
        }
        self
    }

    fn prf(c: (usize, usize, usize)) -> String {
        let p = Prf::from_counts(c.0, c.1, c.2);
        format!("{:.3} / {:.3} / {:.3}", p.precision, p.recall, p.f1)
    }

    fn event(&self) -> String {
        let (detected, missed, true_runs, false_runs) = self.events;
        let ratio = |a: usize, b: usize| {
            if a + b == 0 {
                0.0
            } else {
                a as f64 / (a + b) as f64
            }
        };
        let (p, r) = (ratio(true_runs, false_runs), ratio(detected, missed));
        let f1 = if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        };
        format!("{p:.3} / {r:.3} / {f1:.3}")
    }

    fn mean(v: &[f64]) -> String {
        if v.is_empty() {
            "n/a".into()
        } else {
            format!("{:.4}", v.iter().sum::<f64>() / v.len() as f64)
        }
    }
}

fn series_names(dir: &Path) -> Result<Vec<String>, Error> {
    let test = dir.join("test");
    let mut names: Vec<String> = std::fs::read_dir(&test)
        .map_err(|e| Error::Usage(format!("{}: {e}", test.display())))?
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
    Ok(names)
}

fn timestamps(dir: &Path, name: &str, rows: usize, hop_ms: i64) -> Result<Vec<i64>, Error> {
    let path: PathBuf = dir.join("timestamps").join(format!("{name}.txt"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok((0..rows as i64).map(|i| i * hop_ms).collect());
    };
    let ts: Vec<i64> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().parse::<i64>().map(|s| s * 1000))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    if ts.len() != rows {
        return Err(Error::Usage(format!(
            "{}: {} timestamps for {rows} rows",
            path.display(),
            ts.len()
        )));
    }
    Ok(ts)
}

/// Runs the core and the baselines over every series and prints the tables.
pub fn run(dir: &Path, detector: Option<&Path>, sklearn: Option<&Path>) -> Result<(), Error> {
    let names = series_names(dir)?;
    let first = load_multivariate(dir, &names[0])?;
    let dims = first.train.first().map_or(0, Vec::len);
    let features: Vec<String> = (0..dims).map(|j| format!("metrics.f{j}")).collect();
    let (spec, path) = detector_file::read_or_default(detector, &features)?;
    let cfg = detector_file::detector_config(&spec, "multivariate", &path)?;
    if cfg.core.features.len() != dims {
        return Err(Error::Usage(format!(
            "{path}: the data has {dims} columns, the Detector {} features",
            cfg.core.features.len()
        )));
    }
    println!(
        "Detector core ({path}): {:?}, {} features\n",
        cfg.core.model.algorithm, dims
    );
    println!(
        "| series | rows | anomalies | point P / R / F1 | point-adjusted P / R / F1 | ROC-AUC | PR-AUC | event P / R / F1 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut methods = vec!["helios core", "random", "max abs z", "PCA error"];
    if sklearn.is_some() {
        methods.push("scikit-learn IsolationForest");
    }
    let mut totals = vec![Figures::default(); methods.len()];
    for name in &names {
        let set = load_multivariate(dir, name)?;
        let n_train = set.train.len();
        let ts = timestamps(dir, name, n_train + set.test.len(), cfg.core.hop_ms)?;
        let mut core = DetectorCore::new(cfg.core.clone())?;
        for (row, &t) in set.train.iter().zip(&ts) {
            core.observe(name, t, t + cfg.core.hop_ms, row)?;
        }
        let (mut scores, mut pred) = (Vec::new(), Vec::new());
        for (row, &t) in set.test.iter().zip(&ts[n_train..]) {
            let v = core.observe(name, t, t + cfg.core.hop_ms, row)?;
            scores.push(v.score.unwrap_or(0.0));
            pred.push(v.anomalous);
        }
        // The generator's record of what it injected, when the data came from it (a file
        // that is there but unreadable is an error, not an empty record).
        let injected = if dir.join("anomalies").join(format!("{name}.json")).exists() {
            read_anomalies(dir, name)?.anomalies
        } else {
            Vec::new()
        };
        let ours = Figures::of(&scores, &pred, &set.labels).with_kinds(&pred, &injected);
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            set.test.len(),
            set.labels.iter().filter(|l| **l).count(),
            Figures::prf(ours.point),
            Figures::prf(ours.adjusted),
            Figures::mean(&ours.roc),
            Figures::mean(&ours.pr),
            ours.event()
        );
        totals[0].add(&ours);
        let mut baselines: Vec<Box<dyn Baseline>> = vec![
            Box::new(RandomScorer::new(7)),
            Box::new(MaxAbsZ::new()),
            Box::new(Pca::default()),
        ];
        let mut scored = Vec::with_capacity(methods.len() - 1);
        for b in &mut baselines {
            scored.push(fit_score(b.as_mut(), &set.train, &set.test)?);
        }
        if let Some(python) = sklearn {
            scored.push(crate::cmd::eval::sklearn_scores(
                python, &set.train, &set.test,
            )?);
        }
        for (k, (train, test)) in scored.iter().enumerate() {
            let t = train.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let flags: Vec<bool> = test.iter().map(|&s| s > t).collect();
            totals[k + 1]
                .add(&Figures::of(test, &flags, &set.labels).with_kinds(&flags, &injected));
        }
    }
    let o = &totals[0];
    println!(
        "| overall ({} series) | | | {} | {} | {} (mean) | {} (mean) | {} |",
        names.len(),
        Figures::prf(o.point),
        Figures::prf(o.adjusted),
        Figures::mean(&o.roc),
        Figures::mean(&o.pr),
        o.event()
    );
    println!("\nSame rows, same run (point-adjusted F1 is secondary: it rewards random scores):\n");
    println!(
        "| method | point P / R / F1 | event P / R / F1 | ROC-AUC | PR-AUC | point-adjusted P / R / F1 |"
    );
    println!("|---|---|---|---|---|---|");
    for (m, f) in methods.iter().zip(&totals) {
        println!(
            "| {m} | {} | {} | {} | {} | {} |",
            Figures::prf(f.point),
            f.event(),
            Figures::mean(&f.roc),
            Figures::mean(&f.pr),
            Figures::prf(f.adjusted)
        );
    }
    if totals[0].kinds.iter().any(|k| k.1 > 0) {
        println!("\nInjected anomalies caught (a flagged row inside their rows), by kind:\n");
        let head: Vec<String> = AnomalyKind::ALL.iter().map(|k| format!("{k:?}")).collect();
        println!("| method | {} |", head.join(" | "));
        println!("|---|{}", "---|".repeat(head.len()));
        for (m, f) in methods.iter().zip(&totals) {
            let cells: Vec<String> = f.kinds.iter().map(|(h, n)| format!("{h}/{n}")).collect();
            println!("| {m} | {} |", cells.join(" | "));
        }
    }
    Ok(())
}
