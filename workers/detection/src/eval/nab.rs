//! NAB corpus loading and the end-to-end NAB run (each series scored independently, online).
//!
//! Layout: `<dir>/data/<category>/<name>.csv` (`timestamp,value`, `YYYY-MM-DD HH:MM:SS`) and
//! `<dir>/labels/combined_windows.json` (`"category/name.csv"` → `[[start, end], …]`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::alert::{AlertPolicy, ReplayWindow};
use crate::engine::{CoreConfig, DetectorCore};
use crate::eval::error::{EvalError, read_to_string};
use crate::eval::metrics::{Prf, window_prf};
use crate::eval::nab_score::{
    PROFILES, ProfileWeights, ScoredFile, normalize, null_score, perfect_score, probation_rows,
};
use crate::hash::fnv1a64;

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

/// What to run on NAB: the detector core every series is scored by (one key per series, one
/// window per row, the row's timestamp as the window start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NabConfig {
    /// The detector core (built from a Detector spec by the caller).
    pub core: CoreConfig,
    /// Restrict to these files (`category/name.csv`); `None` = all.
    pub files: Option<Vec<String>>,
    /// Threads over files (results do not depend on it).
    pub threads: usize,
}

/// Which half of the fixed NAB split a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Split {
    /// Settings may be tuned on it.
    Tuning,
    /// Only ever reported.
    HeldOut,
}

/// The fixed split: FNV-1a 64 of the relative file name, even = tuning, odd = held out. It
/// was fixed before any tuning and does not depend on the data.
pub fn split_of(name: &str) -> Split {
    if fnv1a64(&[name.as_bytes()]).is_multiple_of(2) {
        Split::Tuning
    } else {
        Split::HeldOut
    }
}

/// One series after the core scored it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredSeries {
    /// Relative file name.
    pub name: String,
    /// One replay window per row (warm-up rows score 0).
    pub windows: Vec<ReplayWindow>,
    /// Ground truth (scores unused) for the NAB scorer.
    pub truth: ScoredFile,
}

/// Result for one profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileResult {
    /// Profile name.
    pub profile: String,
    /// Threshold (`spec.model.threshold`) the detections were made at.
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

/// The outcome of scoring a set of series under NAB rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NabReport {
    /// Which files: `tuning`, `held-out` or `corpus`.
    pub subset: String,
    /// Number of series.
    pub files: usize,
    /// Number of rows.
    pub rows: usize,
    /// Number of ground-truth windows.
    pub windows: usize,
    /// One entry per profile.
    pub profiles: Vec<ProfileResult>,
    /// Window P/R/F1 of the alerts at the standard profile's threshold (probation excluded).
    pub window_prf: Prf,
    /// Alerts fired at the standard profile's threshold.
    pub alerts: usize,
    /// Per file, what those alerts did (in the order of the series).
    pub per_file: Vec<FileOutcome>,
}

/// One file's alerts at the standard threshold, window by window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileOutcome {
    /// Relative file name.
    pub name: String,
    /// Per labelled window: where in it the first alert fell (0 = its first row, 1 = its last),
    /// `None` when no alert fell inside it.
    pub first_alert: Vec<Option<f64>>,
    /// Alerts outside every window (probation excluded).
    pub outside: usize,
}

impl fmt::Display for FileOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let windows: Vec<String> = self
            .first_alert
            .iter()
            .map(|w| w.map_or("missed".to_string(), |p| format!("{p:.2}")))
            .collect();
        write!(
            f,
            "| {} | {} | {} |",
            self.name,
            windows.join(", "),
            self.outside
        )
    }
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
            "NAB {}: {} files, {} rows, {} windows",
            self.subset, self.files, self.rows, self.windows
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
        if f.alternate() {
            writeln!(
                f,
                "| file | first alert in each window (0 = start) | alerts outside |"
            )?;
            writeln!(f, "|---|---|---|")?;
            for o in &self.per_file {
                writeln!(f, "{o}")?;
            }
        }
        write!(
            f,
            "alerts at the standard threshold: {}; windows detected {}/{}, alerts outside windows {}, precision {:.3}, recall {:.3}, F1 {:.3}",
            self.alerts,
            w.tp,
            w.tp + w.fn_,
            w.fp,
            w.precision,
            w.recall,
            w.f1
        )
    }
}

/// Scores every series with a fresh core (online: each row is scored before it is learnt).
pub fn score_corpus(series: &[NabSeries], cfg: &NabConfig) -> Result<Vec<ScoredSeries>, EvalError> {
    let run = |s: &NabSeries| -> Result<ScoredSeries, EvalError> {
        let mut core = DetectorCore::new(cfg.core.clone())?;
        let feature = cfg.core.features.first().cloned().unwrap_or_default();
        let floor = cfg.core.policy.floors.get(&feature).copied();
        let mut windows = Vec::with_capacity(s.values.len());
        for (&t, &x) in s.timestamps.iter().zip(&s.values) {
            let start = t * 1000;
            let x = if x.is_finite() { x } else { 0.0 };
            let v = core.observe(&s.name, start, start + cfg.core.hop_ms, &[x])?;
            windows.push(ReplayWindow {
                start_ms: start,
                score: v.score.unwrap_or(0.0),
                forced: v.forced(),
                floor_ok: floor.is_none_or(|f| x >= f),
            });
        }
        Ok(ScoredSeries {
            name: s.name.clone(),
            truth: ScoredFile {
                scores: vec![0.0; windows.len()],
                windows: s.windows.clone(),
            },
            windows,
        })
    };
    let threads = cfg.threads.max(1);
    let results: Vec<Result<ScoredSeries, EvalError>> = std::thread::scope(|sc| {
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
        let mut all = Vec::new();
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

/// Candidate thresholds: the distinct unforced scores at geometrically spaced ranks from the
/// top, a 0.01 grid, and 1.0 (only guards fire).
pub fn candidate_thresholds(series: &[&ScoredSeries]) -> Vec<f64> {
    let mut scores: Vec<f64> = series
        .iter()
        .flat_map(|s| s.windows.iter().filter(|w| !w.forced).map(|w| w.score))
        .filter(|&s| s > 0.0)
        .collect();
    scores.sort_by(|a, b| b.total_cmp(a));
    let mut out: Vec<f64> = (1..=100).map(|i| i as f64 / 100.0).collect();
    let mut rank = 1.0f64;
    while (rank as usize) <= scores.len() {
        out.push(scores[rank as usize - 1]);
        rank = (rank * 1.03).max(rank + 1.0);
    }
    out.sort_by(f64::total_cmp);
    out.dedup();
    out
}

/// Alert firings of every series at one threshold (row indices).
pub fn detections(series: &[&ScoredSeries], policy: &AlertPolicy, t: f64) -> Vec<Vec<usize>> {
    series
        .iter()
        .map(|s| policy.replay_fires(&s.windows, t))
        .collect()
}

/// Scores a subset: per profile at the given thresholds, or at the best candidate threshold
/// when `fixed` is `None` (NAB's own protocol: one threshold per profile over the set).
pub fn evaluate(
    subset: &str,
    series: &[&ScoredSeries],
    policy: &AlertPolicy,
    fixed: Option<&[f64]>,
) -> NabReport {
    let truth: Vec<ScoredFile> = series.iter().map(|s| s.truth.clone()).collect();
    let weights: Vec<ProfileWeights> = PROFILES
        .iter()
        .map(|p| ProfileWeights::new(&truth, p))
        .collect();
    let candidates = match fixed {
        Some(_) => Vec::new(),
        None => candidate_thresholds(series),
    };
    let mut best: Vec<(f64, f64)> = vec![(f64::INFINITY, f64::NEG_INFINITY); PROFILES.len()];
    match fixed {
        Some(ts) => {
            for (k, w) in weights.iter().enumerate() {
                let t = ts.get(k).copied().unwrap_or(1.0);
                best[k] = (t, w.raw(&detections(series, policy, t)));
            }
        }
        None => {
            for &t in &candidates {
                let det = detections(series, policy, t);
                for (k, w) in weights.iter().enumerate() {
                    let raw = w.raw(&det);
                    if raw > best[k].1 + 1e-12 {
                        best[k] = (t, raw);
                    }
                }
            }
        }
    }
    let profiles: Vec<ProfileResult> = PROFILES
        .iter()
        .zip(&best)
        .map(|(p, &(threshold, raw))| {
            let null = null_score(&truth, p);
            let perfect = perfect_score(&truth, p);
            ProfileResult {
                profile: p.name.to_string(),
                threshold,
                raw,
                null,
                perfect,
                score: normalize(raw, null, perfect),
            }
        })
        .collect();
    let t = best.first().map_or(1.0, |b| b.0);
    let det = detections(series, policy, t);
    let (mut tp, mut fp, mut total, mut alerts) = (0, 0, 0, 0);
    let mut per_file = Vec::with_capacity(series.len());
    for (s, d) in series.iter().zip(&det) {
        let n = s.windows.len();
        let probation = probation_rows(n);
        let mut flags = vec![false; n];
        for &i in d.iter().filter(|&&i| i >= probation) {
            flags[i] = true;
            alerts += 1;
        }
        let w = window_prf(&flags, &s.truth.windows);
        per_file.push(FileOutcome {
            name: s.name.clone(),
            first_alert: s
                .truth
                .windows
                .iter()
                .map(|&(l, r)| {
                    (l..=r)
                        .find(|&i| flags[i])
                        .map(|i| (i - l) as f64 / (r - l).max(1) as f64)
                })
                .collect(),
            outside: w.fp,
        });
        tp += w.tp;
        fp += w.fp;
        total += s.truth.windows.len();
    }
    NabReport {
        subset: subset.to_string(),
        files: series.len(),
        rows: series.iter().map(|s| s.windows.len()).sum(),
        windows: total,
        profiles,
        window_prf: Prf::from_counts(tp, fp, total - tp),
        alerts,
        per_file,
    }
}

/// The three NAB figures of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NabRun {
    /// Tuning half, thresholds chosen on it.
    pub tuning: NabReport,
    /// Held-out half at the tuning half's thresholds (the honest figure).
    pub held_out: NabReport,
    /// Whole corpus, thresholds chosen on it (NAB's protocol, comparable to the scoreboard).
    pub corpus: NabReport,
}

/// Loads NAB, scores it with the core and reports the tuning half, the held-out half and the
/// whole corpus.
pub fn run_nab(dir: &Path, cfg: &NabConfig) -> Result<NabRun, EvalError> {
    let series = load_nab(dir, cfg.files.as_deref())?;
    let scored = score_corpus(&series, cfg)?;
    let policy = &cfg.core.policy;
    let pick = |split: Split| -> Vec<&ScoredSeries> {
        scored
            .iter()
            .filter(|s| split_of(&s.name) == split)
            .collect()
    };
    let (tuning_set, held_set) = (pick(Split::Tuning), pick(Split::HeldOut));
    let tuning = evaluate("tuning", &tuning_set, policy, None);
    let thresholds: Vec<f64> = tuning.profiles.iter().map(|p| p.threshold).collect();
    let held_out = evaluate("held-out", &held_set, policy, Some(&thresholds));
    let all: Vec<&ScoredSeries> = scored.iter().collect();
    let corpus = evaluate("corpus", &all, policy, None);
    Ok(NabRun {
        tuning,
        held_out,
        corpus,
    })
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

    #[test]
    fn the_split_is_fixed_and_about_half() {
        // Pinned: changing the hash would silently move files between the halves.
        assert_eq!(
            split_of("realKnownCause/nyc_taxi.csv"),
            split_of("realKnownCause/nyc_taxi.csv")
        );
        let names: Vec<String> = (0..200).map(|i| format!("cat/file-{i}.csv")).collect();
        let tuning = names
            .iter()
            .filter(|n| split_of(n) == Split::Tuning)
            .count();
        assert!((70..=130).contains(&tuning), "{tuning}");
    }
}
