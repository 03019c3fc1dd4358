//! NAB corpus loading and the end-to-end NAB run (each series scored independently, online).
//!
//! Layout: `<dir>/data/<category>/<name>.csv` (`timestamp,value`, `YYYY-MM-DD HH:MM:SS`) and
//! `<dir>/labels/combined_windows.json` (`"category/name.csv"` → `[[start, end], …]`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::eval::error::{EvalError, read_to_string};
use crate::eval::metrics::{Prf, window_prf};
use crate::eval::nab_score::{
    PROFILES, ScoredFile, normalize, null_score, optimize_threshold, perfect_score, probation_rows,
};
use crate::metric::{MetricConfig, MetricDetector};

/// One NAB series with its ground-truth windows.
#[derive(Debug, Clone, PartialEq)]
pub struct NabSeries {
    /// Relative name, e.g. `realKnownCause/nyc_taxi.csv`.
    pub name: String,
    /// Timestamps in seconds since the Unix epoch (UTC assumed).
    pub timestamps: Vec<i64>,
    /// Values.
    pub values: Vec<f64>,
    /// Windows as inclusive row ranges.
    pub windows: Vec<(usize, usize)>,
}

/// Parses `YYYY-MM-DD HH:MM:SS` with an optional fractional part into epoch seconds.
pub fn parse_nab_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s.split('.').next()?;
    let (date, time) = s.split_once(' ').or_else(|| s.split_once('T'))?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn parse_csv(path: &Path) -> Result<(Vec<i64>, Vec<f64>), EvalError> {
    let text = read_to_string(path)?;
    let (mut ts, mut vs) = (Vec::new(), Vec::new());
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let err = |m: &str| EvalError::Parse {
            path: path.into(),
            line: n + 1,
            message: m.into(),
        };
        let (t, v) = line
            .split_once(',')
            .ok_or_else(|| err("expected timestamp,value"))?;
        ts.push(parse_nab_timestamp(t).ok_or_else(|| err("bad timestamp"))?);
        vs.push(v.trim().parse::<f64>().map_err(|_| err("bad value"))?);
    }
    Ok((ts, vs))
}

/// Converts `[start, end]` timestamps to an inclusive row range (first row equal to the start,
/// or else the first row after it; first row equal to the end, or else the last row before).
fn window_rows(ts: &[i64], start: i64, end: i64) -> Option<(usize, usize)> {
    let l = ts
        .iter()
        .position(|&t| t == start)
        .or_else(|| ts.iter().position(|&t| t >= start))?;
    let r = ts
        .iter()
        .position(|&t| t == end)
        .or_else(|| ts.iter().rposition(|&t| t <= end))?;
    (l <= r).then_some((l, r))
}

/// Loads the NAB corpus; `only` restricts it to the named files (e.g. `realTraffic/x.csv`).
pub fn load_nab(dir: &Path, only: Option<&[String]>) -> Result<Vec<NabSeries>, EvalError> {
    let label_path = dir.join("labels").join("combined_windows.json");
    let labels: BTreeMap<String, Vec<[String; 2]>> =
        serde_json::from_str(&read_to_string(&label_path)?).map_err(|source| EvalError::Json {
            path: label_path.clone(),
            source,
        })?;
    let mut out = Vec::new();
    for (name, windows) in &labels {
        if only.is_some_and(|o| !o.iter().any(|n| n == name)) {
            continue;
        }
        let path: PathBuf = dir.join("data").join(name);
        let (timestamps, values) = parse_csv(&path)?;
        let mut rows = Vec::new();
        for [s, e] in windows {
            let bad = || EvalError::Inconsistent(format!("{name}: bad window [{s}, {e}]"));
            let s = parse_nab_timestamp(s).ok_or_else(bad)?;
            let e = parse_nab_timestamp(e).ok_or_else(bad)?;
            rows.extend(window_rows(&timestamps, s, e));
        }
        out.push(NabSeries {
            name: name.clone(),
            timestamps,
            values,
            windows: rows,
        });
    }
    if let Some(o) = only
        && out.len() != o.len()
    {
        return Err(EvalError::Inconsistent(format!(
            "asked for {} files, found {}",
            o.len(),
            out.len()
        )));
    }
    Ok(out)
}

/// What to run on NAB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NabConfig {
    /// Detector configuration.
    pub metric: MetricConfig,
    /// Restrict to these files (`category/name.csv`); `None` = all.
    pub files: Option<Vec<String>>,
    /// Threads over files (results do not depend on it).
    pub threads: usize,
}

impl Default for NabConfig {
    fn default() -> Self {
        Self {
            metric: MetricConfig::default(),
            files: None,
            threads: 2,
        }
    }
}

/// Result for one profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileResult {
    /// Profile name.
    pub profile: String,
    /// Corpus-wide threshold chosen by the sweep.
    pub threshold: f64,
    /// Raw score at that threshold.
    pub raw: f64,
    /// Null detector's raw score.
    pub null: f64,
    /// Perfect detector's raw score.
    pub perfect: f64,
    /// Normalised NAB score (100 perfect, 0 null).
    pub score: f64,
}

/// The outcome of a NAB run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NabReport {
    /// Number of series.
    pub files: usize,
    /// Number of rows.
    pub rows: usize,
    /// Number of ground-truth windows.
    pub windows: usize,
    /// One entry per profile.
    pub profiles: Vec<ProfileResult>,
    /// Window P/R/F1 at the standard profile's threshold (probation excluded).
    pub window_prf: Prf,
    /// Detector configuration used.
    pub config: MetricConfig,
}

impl NabReport {
    /// Score of the named profile.
    pub fn score(&self, profile: &str) -> Option<f64> {
        self.profiles
            .iter()
            .find(|p| p.profile == profile)
            .map(|p| p.score)
    }
}

impl fmt::Display for NabReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "NAB: {} files, {} rows, {} windows ({:?})",
            self.files, self.rows, self.windows, self.config.algorithm
        )?;
        writeln!(f, "| profile | score | threshold | raw | null | perfect |")?;
        writeln!(f, "|---|---|---|---|---|---|")?;
        for p in &self.profiles {
            writeln!(
                f,
                "| {} | {:.2} | {:.4} | {:.3} | {:.3} | {:.3} |",
                p.profile, p.score, p.threshold, p.raw, p.null, p.perfect
            )?;
        }
        let w = &self.window_prf;
        write!(
            f,
            "windows (standard threshold): detected {}/{}, false positives {}, precision {:.3}, recall {:.3}, F1 {:.3}",
            w.tp,
            w.tp + w.fn_,
            w.fp,
            w.precision,
            w.recall,
            w.f1
        )
    }
}

fn score_all(series: &[NabSeries], cfg: &NabConfig) -> Result<Vec<ScoredFile>, EvalError> {
    let run = |s: &NabSeries| -> Result<ScoredFile, EvalError> {
        let scores = MetricDetector::score_series(cfg.metric, &s.values)?;
        Ok(ScoredFile {
            scores,
            windows: s.windows.clone(),
        })
    };
    let threads = cfg.threads.max(1);
    if threads == 1 {
        return series.iter().map(run).collect();
    }
    let results: Vec<Result<ScoredFile, EvalError>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let run = &run;
                sc.spawn(move || {
                    series
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % threads == t)
                        .map(|(i, s)| (i, run(s)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, Result<ScoredFile, EvalError>)> = Vec::new();
        for h in handles {
            match h.join() {
                Ok(v) => all.extend(v),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, r)| r).collect()
    });
    results.into_iter().collect()
}

/// Scores already-computed detector output (one [`ScoredFile`] per series) under NAB rules.
pub fn evaluate(files: &[ScoredFile], config: MetricConfig) -> NabReport {
    let profiles: Vec<ProfileResult> = PROFILES
        .iter()
        .map(|p| {
            let sweep = optimize_threshold(files, p);
            let null = null_score(files, p);
            let perfect = perfect_score(files, p);
            ProfileResult {
                profile: p.name.to_string(),
                threshold: sweep.threshold,
                raw: sweep.raw,
                null,
                perfect,
                score: normalize(sweep.raw, null, perfect),
            }
        })
        .collect();
    let t = profiles.first().map_or(f64::INFINITY, |p| p.threshold);
    let (mut tp, mut fp, mut total) = (0, 0, 0);
    for f in files {
        let probation = probation_rows(f.scores.len());
        let det: Vec<bool> = f
            .scores
            .iter()
            .enumerate()
            .map(|(i, &s)| i >= probation && s >= t)
            .collect();
        let w = window_prf(&det, &f.windows);
        tp += w.tp;
        fp += w.fp;
        total += f.windows.len();
    }
    NabReport {
        files: files.len(),
        rows: files.iter().map(|f| f.scores.len()).sum(),
        windows: total,
        profiles,
        window_prf: Prf::from_counts(tp, fp, total - tp),
        config,
    }
}

/// Runs the metric-mode detector over every NAB series (online) and scores it.
pub fn run_nab(dir: &Path, cfg: &NabConfig) -> Result<NabReport, EvalError> {
    let series = load_nab(dir, cfg.files.as_deref())?;
    let files = score_all(&series, cfg)?;
    Ok(evaluate(&files, cfg.metric))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_nab_timestamp("1970-01-01 00:00:00"), Some(0));
        assert_eq!(
            parse_nab_timestamp("2014-04-10 07:15:00.000000"),
            Some(1_397_114_100)
        );
        assert_eq!(
            parse_nab_timestamp("2000-03-01 00:00:01"),
            Some(951_868_801)
        );
        assert_eq!(parse_nab_timestamp("2014-13-10 07:15:00"), None);
        assert_eq!(parse_nab_timestamp("garbage"), None);
    }

    #[test]
    fn window_rows_exact_and_nearest() {
        let ts = [0, 10, 20, 20, 30, 40];
        assert_eq!(window_rows(&ts, 10, 30), Some((1, 4)));
        assert_eq!(window_rows(&ts, 15, 35), Some((2, 4)));
        assert_eq!(window_rows(&ts, 50, 60), None);
    }

    /// Runs the whole pipeline on a small slice of NAB in debug mode.
    #[test]
    fn nab_slice_end_to_end() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/nab");
        let dir = if dir.exists() {
            dir
        } else {
            PathBuf::from("/work/shared/datasets/nab")
        };
        if !dir.exists() {
            eprintln!("NAB not found, skipping");
            return;
        }
        let files = vec![
            "realAdExchange/exchange-2_cpc_results.csv".to_string(),
            "realAdExchange/exchange-3_cpc_results.csv".to_string(),
            "artificialNoAnomaly/art_daily_no_noise.csv".to_string(),
        ];
        let mut metric = MetricConfig::default();
        metric.forest.n_trees = 20;
        let cfg = NabConfig {
            metric,
            files: Some(files),
            threads: 2,
        };
        let r = run_nab(&dir, &cfg).unwrap();
        assert_eq!(r.files, 3);
        assert!(r.windows >= 2);
        assert_eq!(r.profiles.len(), 3);
        for p in &r.profiles {
            assert!(
                p.score.is_finite() && p.score <= 100.0 && p.score >= 0.0,
                "{p:?}"
            );
            assert!(p.null < 0.0 && p.perfect > 0.0);
        }
        assert!(r.to_string().contains("reward_low_FN_rate"));
    }
}
