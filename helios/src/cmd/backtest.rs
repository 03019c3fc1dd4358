//! `helios backtest`: replay recorded events through the detector core `helios detect` runs
//! and print what would have alerted; with ground-truth labels, how well.
//!
//! `helios backtest -f detector.yaml --events FILE|--topic T [--from TIME] [--to TIME]
//! [--labels FILE] [--windows FILE]`
//!
//! A topic (`--topic T --kafka-bootstrap HOSTS`) is read partition by partition up to the
//! offsets it had when the replay started and merged by event time, so it replays like the
//! file the events would make (see [`topic`]).
//!
//! Events (NDJSON, one [`Event`] per line, in timestamp order) are fed to
//! [`Pipeline`] exactly as the worker feeds a single partition: windows close as the watermark
//! (newest event time − allowed lateness) crosses a window end, unknown keys start with an
//! empty history, and the last windows close at the end of the file. Events older than the
//! watermark are dropped as late (counted), bad lines are counted and skipped.
//!
//! `--from` starts the *report*, not the replay: earlier events of the file still train the
//! detector (as a detector that had been running would have been), but only windows and
//! alerts from `--from` on are counted. Events at or after `--to` are skipped.
//!
//! With `--labels` (the JSON of `helios traffic --scenario weeks --labels FILE`) the replay is
//! scored by [`helios_traffic::score`], the rules the incident benchmark of `helios detect`
//! uses too: an incident applies to a key whose events come from the incident's service (and
//! endpoint, for an endpoint incident). It is *caught* when an alert of such a key begins in a
//! window that ends after the incident starts and starts at most
//! [`GRACE_WINDOWS`](helios_traffic::score::GRACE_WINDOWS) windows
//! after it ends; its delay is the number of hops from the window holding the incident start
//! to the firing window. Alerts matching no incident are false alerts. Window-wise, a window
//! is positive when it overlaps an incident of its key and predicted when the model flagged it.
//!
//! `--windows FILE` also writes every reported window as NDJSON (see [`windows`]).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use helios_detect::config::DetectorConfig;
use helios_detect::feedback::{Suppression, Suppressions};
use helios_detect::pipeline::{Closing, Ingested, Pipeline};
use helios_detection::alert::Severity;
use helios_detection::engine::Guard;
use helios_detection::engine::model::base_name;
use helios_detection::event::{Event, parse_rfc3339_ms};
use helios_detection::explain::FeatureContribution;
use helios_traffic::scenario::ScenarioLabels;
use helios_traffic::score::{Alert, KeyRun, Scorer};

use crate::cmd::detector_file::{self, DetectorFileError};

mod feedback;
mod report;
mod topic;
mod windows;
use report::{human, time};
use topic::{TopicRead, TopicSource};
use windows::{WindowLine, WindowsOut};

/// Bad lines quoted in the report.
const SHOWN_BAD_LINES: usize = 5;
/// Features shown per alert.
const TOP_FEATURES: usize = 3;
/// Progress steps over the file's bytes (every 5%).
const PROGRESS_STEPS: u64 = 20;
const DAY_MS: f64 = 86_400_000.0;

/// Arguments of `helios backtest`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The Detector to replay (YAML: a whole Detector object or its spec).
    #[arg(short = 'f', long = "file", value_name = "DETECTOR")]
    file: PathBuf,
    /// Recorded events: NDJSON, one event per line, in timestamp order (what
    /// `helios traffic --out` writes; `timestamp` in epoch ms or RFC 3339).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "topic",
        conflicts_with = "topic"
    )]
    events: Option<PathBuf>,
    /// Read the events from this Kafka topic instead: every partition from its first to its
    /// last offset at the start, merged by event time (no consumer group, nothing committed).
    #[arg(long, value_name = "T", requires = "kafka_bootstrap")]
    topic: Option<String>,
    /// Kafka bootstrap servers for --topic (`host:port,...`).
    #[arg(long, env = "HELIOS_KAFKA_BOOTSTRAP", value_name = "HOSTS")]
    kafka_bootstrap: Option<String>,
    /// Extra librdkafka properties for --topic, `key=value` (TLS, SASL, ...); repeatable.
    #[arg(
        long = "kafka-property",
        env = "HELIOS_KAFKA_PROPERTIES",
        value_delimiter = ',',
        value_name = "KEY=VALUE"
    )]
    kafka_properties: Vec<String>,
    /// Report windows and alerts from this time on (RFC 3339, YYYY-MM-DD or epoch ms); earlier
    /// events of the file still warm the detector up.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    from: Option<i64>,
    /// Replay only events before this time (RFC 3339, YYYY-MM-DD or epoch ms).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    to: Option<i64>,
    /// Ground truth (`helios traffic --scenario weeks --labels FILE`): adds incidents caught,
    /// detection delay, false alerts per key per day and window precision/recall/F1.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// Also write every reported window to this file, one JSON object per line: key, start,
    /// end, score, anomalous, drivers, the guard that flagged it (`range`, `drop`, `errors` or
    /// null), feature values (and `incident` with --labels).
    #[arg(long, value_name = "FILE")]
    windows: Option<PathBuf>,
    /// Range guard: also flag a window when a feature's robust z reaches this (0 = off), as
    /// `helios detect --z-guard`; default: the same as `helios detect`.
    #[arg(long, value_name = "Z")]
    z_guard: Option<f64>,
    /// Range guard: windows a key must have seen before the guard acts, as
    /// `helios detect --guard-after-windows`; default: the same as `helios detect`.
    #[arg(long, value_name = "N")]
    guard_after_windows: Option<usize>,
    /// Labels on earlier alerts (one JSON object per line: `key` and `start`, or `anomalyId`,
    /// and `label`: `false-positive` or `confirmed`): a false positive suppresses its pattern on
    /// its key from when it fires, as the worker does once its Detector is annotated.
    #[arg(long, value_name = "FILE")]
    feedback: Option<PathBuf>,
    /// No progress on stderr.
    #[arg(long)]
    quiet: bool,
}

/// Why a backtest failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Detector file is unusable (names the path and the field).
    #[error(transparent)]
    Detector(#[from] DetectorFileError),
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// The events file cannot be read.
    #[error("--events {path}: {source}")]
    Events {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The events file or topic holds no usable event.
    #[error("{source_name}: {detail}")]
    NoEvents {
        /// `--events FILE` or `--topic T`.
        source_name: String,
        /// What was found instead.
        detail: String,
    },
    /// The events topic cannot be read (names the topic, partition and Kafka's error).
    #[error("--topic {topic}: {detail}")]
    Topic {
        /// The topic.
        topic: String,
        /// What failed.
        detail: String,
    },
    /// The labels file cannot be read or parsed.
    #[error("--labels {path}: {source}")]
    Labels {
        /// The file.
        path: String,
        /// The I/O or JSON error.
        source: std::io::Error,
    },
    /// The --windows file cannot be written.
    #[error("--windows {path}: {source}")]
    Windows {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The detector core failed while scoring.
    #[error("scoring: {0}")]
    Detection(#[from] helios_detection::DetectionError),
}

/// Parses `--from`/`--to`: epoch milliseconds, RFC 3339, or a UTC date `YYYY-MM-DD`.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let text = if s.len() == 10 && s.as_bytes().get(4) == Some(&b'-') {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    parse_rfc3339_ms(&text)
        .map_err(|_| format!("{s:?} is not a time (RFC 3339, YYYY-MM-DD or epoch milliseconds)"))
}

/// Run the subcommand: replay, then print the report to stdout.
pub fn run(args: &Args) -> Result<(), Error> {
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from >= to
    {
        return Err(Error::Usage(format!(
            "--from {} is not before --to {}",
            time(from),
            time(to)
        )));
    }
    let det_path = args.file.display().to_string();
    let spec = detector_file::read_spec(&args.file)?;
    let name = args.file.file_stem().map_or_else(
        || "backtest".to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let mut cfg = detector_file::detector_config(&spec, &name, &det_path)?;
    // The worker-level tunables `helios detect` applies on top of the spec.
    if let Some(z) = args.z_guard {
        cfg.core.model.z_guard = z.max(0.0);
    }
    if let Some(n) = args.guard_after_windows {
        cfg.apply_guard_wait(n);
    }
    let pipeline = Pipeline::new(cfg).map_err(|e| Error::Usage(format!("{det_path}: {e}")))?;
    let labels = match &args.labels {
        Some(p) => Some(ScenarioLabels::load(p).map_err(|source| Error::Labels {
            path: p.display().to_string(),
            source,
        })?),
        None => None,
    };
    let mut replay = Replay::new(pipeline, labels, args.from, args.to);
    if let Some(path) = &args.feedback {
        replay.feedback = Some(feedback::Feedback::load(path)?);
    }
    if let Some(path) = &args.windows {
        replay.windows_out = Some(WindowsOut::create(path)?);
    }
    let source = match (&args.events, &args.topic, &args.kafka_bootstrap) {
        (Some(events), _, _) => {
            replay.read_file(events, !args.quiet)?;
            events.display().to_string()
        }
        (None, Some(topic), Some(bootstrap)) => {
            let source = TopicSource {
                bootstrap: bootstrap.clone(),
                properties: args.kafka_properties.clone(),
                topic: topic.clone(),
            };
            let read = replay.read_topic(&source, !args.quiet)?;
            format!(
                "topic {topic} ({} messages from {} partitions)",
                read.messages.values().sum::<u64>(),
                read.messages.len()
            )
        }
        (None, Some(_), None) => {
            return Err(Error::Usage(
                "--topic needs --kafka-bootstrap (or HELIOS_KAFKA_BOOTSTRAP)".into(),
            ));
        }
        (None, None, _) => {
            return Err(Error::Usage(
                "--events FILE or --topic T is required".into(),
            ));
        }
    };
    if let Some(out) = replay.windows_out.as_mut() {
        out.flush()?;
    }
    let report = replay.report(&det_path, &source);
    print!("{report}");
    Ok(())
}

/// What a replay reported, for scoring with [`helios_traffic::score`] outside the CLI (the
/// incident benchmark sets it beside what `helios detect` stored).
#[derive(Debug, Clone)]
pub struct Replayed {
    /// The reported keys (with windows in the reported time), in key order.
    pub keys: Vec<(String, KeyRun)>,
    /// Start of each reported key's newest window, epoch ms.
    pub last_window_start_ms: BTreeMap<String, i64>,
    /// Every alert that would have fired, in firing order.
    pub alerts: Vec<Alert>,
    /// The reported event time `(first, last)`.
    pub span: (i64, i64),
    /// Window size, ms.
    pub size_ms: i64,
    /// Window hop, ms.
    pub hop_ms: i64,
    /// Events added to windows.
    pub accepted: u64,
    /// Events the selector does not match.
    pub filtered: u64,
    /// Events older than the watermark (dropped).
    pub late: u64,
    /// Windows scored.
    pub windows: u64,
    /// Windows flagged anomalous.
    pub anomalous: u64,
}

/// A replay fed one NDJSON line at a time, exactly as `helios backtest --events` replays a
/// file (without `--from`/`--to`).
pub struct Backtest {
    replay: Replay,
    line_no: u64,
}

impl Backtest {
    /// A replay of `cfg`; with `labels` the windows are counted against them.
    pub fn new(cfg: DetectorConfig, labels: Option<ScenarioLabels>) -> Result<Self, Error> {
        let pipeline = Pipeline::new(cfg).map_err(|e| Error::Usage(e.to_string()))?;
        Ok(Self {
            replay: Replay::new(pipeline, labels, None, None),
            line_no: 0,
        })
    }

    /// Feeds one NDJSON line (bad lines are counted and skipped).
    pub fn line(&mut self, raw: &[u8]) -> Result<(), Error> {
        self.line_no += 1;
        self.replay.line(self.line_no, raw)
    }

    /// Closes the last windows and returns what the replay reported.
    pub fn finish(mut self) -> Result<Replayed, Error> {
        self.replay.finish()?;
        let r = &self.replay;
        Ok(Replayed {
            keys: r
                .reported()
                .map(|(k, ks)| (k.clone(), ks.run.clone()))
                .collect(),
            last_window_start_ms: r
                .reported()
                .map(|(k, ks)| (k.clone(), ks.last_start_ms))
                .collect(),
            alerts: r.alerts.iter().map(|a| a.alert.clone()).collect(),
            span: r.span(),
            size_ms: r.size_ms,
            hop_ms: r.hop_ms,
            accepted: r.counts.accepted,
            filtered: r.counts.filtered,
            late: r.counts.late,
            windows: r.counts.windows,
            anomalous: r.keys.values().map(|k| k.anomalous).sum(),
        })
    }
}

/// Counts of what happened to the lines of the file.
#[derive(Debug, Clone, Default)]
struct Counts {
    /// Non-empty lines.
    lines: u64,
    /// Lines that are not an event.
    bad: u64,
    /// The first few bad lines: (line number, error).
    bad_shown: Vec<(String, String)>,
    /// Events at or after --to (skipped).
    after_to: u64,
    /// Accepted events before --from (they only train the detector).
    before_from: u64,
    /// Events the selector does not match.
    filtered: u64,
    /// Events older than the watermark (dropped).
    late: u64,
    /// Events added to windows.
    accepted: u64,
    /// Windows scored.
    windows: u64,
}

/// What one key saw.
#[derive(Debug, Clone, Default)]
struct KeyStats {
    /// Where its events came from and its window counts against the labels.
    run: KeyRun,
    windows: u64,
    warmup: u64,
    anomalous: u64,
    alerts: u64,
    /// Start of its newest reported window, epoch ms.
    last_start_ms: i64,
}

/// One alert that would have fired.
#[derive(Debug, Clone)]
struct AlertRow {
    /// The key, episode start and firing window, as scored.
    alert: Alert,
    severity: Severity,
    score: f64,
    /// The guard that flagged the firing window (`None`: the threshold).
    guard: Option<Guard>,
    top: Vec<FeatureContribution>,
}

/// The replay state.
struct Replay {
    pipeline: Pipeline,
    labels: Option<ScenarioLabels>,
    from: Option<i64>,
    to: Option<i64>,
    size_ms: i64,
    hop_ms: i64,
    lateness_ms: i64,
    /// Index of the last window end the watermark crossed.
    closed_index: Option<i64>,
    min_ts: Option<i64>,
    max_ts: Option<i64>,
    keys: BTreeMap<String, KeyStats>,
    alerts: Vec<AlertRow>,
    counts: Counts,
    /// Feature names, in the order of a window's values.
    feature_names: Vec<String>,
    /// Where `--windows` goes.
    windows_out: Option<WindowsOut>,
    /// `--feedback`.
    feedback: Option<feedback::Feedback>,
    /// The suppressions the pipeline scores with (added as labelled alerts fire).
    suppressions: Suppressions,
    /// False positives applied, and the alerts they suppressed.
    feedback_applied: (u64, u64),
}

impl Replay {
    fn new(
        pipeline: Pipeline,
        labels: Option<ScenarioLabels>,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Self {
        let w = pipeline.config().window;
        let feature_names = pipeline.config().feature_names();
        let suppressions = Suppressions::default();
        Self {
            pipeline: pipeline.with_suppressions(suppressions.clone()),
            feedback: None,
            suppressions,
            feedback_applied: (0, 0),
            labels,
            from,
            to,
            size_ms: w.size_ms,
            hop_ms: w.hop_ms,
            lateness_ms: w.allowed_lateness_ms,
            closed_index: None,
            min_ts: None,
            max_ts: None,
            keys: BTreeMap::new(),
            alerts: Vec::new(),
            counts: Counts::default(),
            feature_names,
            windows_out: None,
        }
    }

    /// Replays an NDJSON file, with progress on stderr every 5% of its bytes.
    fn read_file(&mut self, path: &Path, progress: bool) -> Result<(), Error> {
        let name = path.display().to_string();
        let io_err = |source| Error::Events {
            path: name.clone(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io_err)?;
        let total = file.metadata().map_err(io_err)?.len();
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let gz_name = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        if gz_name
            || reader
                .fill_buf()
                .map_err(io_err)?
                .starts_with(&[0x1f, 0x8b])
        {
            return Err(Error::Usage(format!(
                "--events {name}: gzip input is not supported (flate2 is not a dependency of \
                 helios): decompress it first, e.g. `gunzip -k {name}`"
            )));
        }
        let mut line = Vec::with_capacity(512);
        let (mut read, mut line_no, mut step) = (0u64, 0u64, 0u64);
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(io_err)?;
            if n == 0 {
                break;
            }
            read += n as u64;
            line_no += 1;
            self.line(line_no, &line)?;
            if progress && total > 0 {
                let now = read.saturating_mul(PROGRESS_STEPS) / total;
                if now > step {
                    step = now;
                    eprintln!(
                        "replayed {}% ({} events, {} windows)",
                        now * 100 / PROGRESS_STEPS,
                        human(self.counts.accepted),
                        human(self.counts.windows)
                    );
                }
            }
        }
        self.finish()?;
        self.check_replayed(format!("--events {name}"))
    }

    /// Replays every partition of a topic, merged by event time, with progress on stderr
    /// every 5% of its messages.
    fn read_topic(&mut self, source: &TopicSource, progress: bool) -> Result<TopicRead, Error> {
        let mut step = 0u64;
        let read = source.replay(
            |partition, offset, parsed| {
                self.parsed(|| format!("partition {partition} offset {offset}"), parsed)
            },
            |read, total| {
                let now = read.saturating_mul(PROGRESS_STEPS) / total.max(1);
                if progress && now > step {
                    step = now;
                    eprintln!(
                        "read {}% of the topic ({} messages)",
                        now * 100 / PROGRESS_STEPS,
                        human(read)
                    );
                }
            },
        )?;
        self.finish()?;
        self.check_replayed(format!("--topic {}", source.topic))?;
        Ok(read)
    }

    /// Fails when nothing of the source was replayed, saying why.
    fn check_replayed(&self, source_name: String) -> Result<(), Error> {
        if self.counts.lines == self.counts.bad {
            let detail = match self.counts.bad_shown.first() {
                Some((at, e)) => {
                    format!("no valid event ({} bad lines; {at}: {e})", self.counts.bad)
                }
                None => "no valid event (no event at all)".to_string(),
            };
            return Err(Error::NoEvents {
                source_name,
                detail,
            });
        }
        if self.counts.accepted == 0 {
            let c = &self.counts;
            return Err(Error::NoEvents {
                source_name,
                detail: format!(
                    "none of its {} events was replayed ({} at or after --to, {} not \
                     matched by the detector's selector, {} late)",
                    c.lines - c.bad,
                    c.after_to,
                    c.filtered,
                    c.late
                ),
            });
        }
        Ok(())
    }

    /// One line of the file.
    fn line(&mut self, line_no: u64, raw: &[u8]) -> Result<(), Error> {
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        self.parsed(|| format!("line {line_no}"), Event::from_json(raw))
    }

    /// One parsed line (or message): an event, or a bad one counted and skipped.
    fn parsed(
        &mut self,
        at: impl FnOnce() -> String,
        parsed: serde_json::Result<Event>,
    ) -> Result<(), Error> {
        self.counts.lines += 1;
        match parsed {
            Ok(e) => self.event(&e),
            Err(err) => {
                self.counts.bad += 1;
                if self.counts.bad_shown.len() < SHOWN_BAD_LINES {
                    self.counts.bad_shown.push((at(), err.to_string()));
                }
                Ok(())
            }
        }
    }

    /// Feeds one event and closes what the watermark allows.
    fn event(&mut self, e: &Event) -> Result<(), Error> {
        let t = e.timestamp_ms;
        if self.to.is_some_and(|to| t >= to) {
            self.counts.after_to += 1;
            return Ok(());
        }
        let key = match self.pipeline.ingest(e) {
            Ingested::Filtered => {
                self.counts.filtered += 1;
                return Ok(());
            }
            Ingested::Late => {
                self.counts.late += 1;
                return Ok(());
            }
            Ingested::Accepted { key, .. } => key,
        };
        self.counts.accepted += 1;
        self.counts.before_from += u64::from(self.from.is_some_and(|f| t < f));
        let endpoint = e
            .endpoint
            .as_deref()
            .unwrap_or(helios_detect::partition::MISSING);
        self.keys
            .entry(key)
            .or_default()
            .run
            .events
            .add(&e.service, endpoint);
        self.min_ts = Some(self.min_ts.map_or(t, |m| m.min(t)));
        let max = self.max_ts.map_or(t, |m| m.max(t));
        self.max_ts = Some(max);
        let bound = max.saturating_sub(self.lateness_ms);
        let index = bound.saturating_sub(self.size_ms).div_euclid(self.hop_ms);
        if self.closed_index.is_none_or(|c| index > c) {
            self.closed_index = Some(index);
            let closing = self.pipeline.close(bound);
            self.process(closing)?;
        }
        Ok(())
    }

    /// Closes every window still holding an event (end of the file).
    fn finish(&mut self) -> Result<(), Error> {
        if let Some(bound) = self.pipeline.flush_bound() {
            let closing = self.pipeline.close(bound);
            self.process(closing)?;
        }
        Ok(())
    }

    /// Scores closed windows and records windows and alerts.
    fn process(&mut self, closing: Closing) -> Result<(), Error> {
        if closing.windows.is_empty() {
            return Ok(());
        }
        for key in self.pipeline.unknown_keys(&closing.windows) {
            self.pipeline.restore(&key, &[])?;
        }
        let scored = self.pipeline.score(closing.windows)?;
        let from = self.from.unwrap_or(i64::MIN);
        let scorer = self
            .labels
            .as_ref()
            .map(|l| Scorer::new(l, self.size_ms, self.hop_ms));
        for w in scored.windows.iter().filter(|w| w.window.start_ms >= from) {
            self.counts.windows += 1;
            let ks = self.keys.entry(w.key.clone()).or_default();
            ks.windows += 1;
            ks.last_start_ms = ks.last_start_ms.max(w.window.start_ms);
            ks.warmup += u64::from(w.window.score.is_none());
            let predicted = w.window.anomalous;
            ks.anomalous += u64::from(predicted);
            let positive = scorer.as_ref().map(|scorer| {
                let positive = scorer.positive(&ks.run.events, w.window.start_ms, w.window.end_ms);
                ks.run.windows.add(positive, predicted);
                positive
            });
            if let Some(out) = self.windows_out.as_mut() {
                out.write(&WindowLine {
                    key: &w.key,
                    start: time(w.window.start_ms),
                    end: time(w.window.end_ms),
                    score: w.window.score,
                    anomalous: predicted,
                    drivers: &w.window.drivers,
                    guard: w.guard,
                    values: windows::values(&self.feature_names, &w.window.values),
                    incident: positive,
                })?;
            }
        }
        self.feedback_applied.1 += scored.suppressed.len() as u64;
        for f in &scored.fired {
            let Some(fb) = &self.feedback else { break };
            let key = &f.alert.partition_key;
            if fb.false_positive(&f.alert.id, key, f.alert.start_ms)
                && let Some(lead) = f.explanation.contributions.first()
                && self.suppressions.add(Suppression::new(
                    &f.alert.id,
                    key,
                    (&lead.feature, lead.actual, lead.typical),
                ))
            {
                self.feedback_applied.0 += 1;
            }
        }
        for f in scored
            .fired
            .into_iter()
            .filter(|f| f.fired_window_start_ms >= from)
        {
            if let Some(ks) = self.keys.get_mut(&f.alert.partition_key) {
                ks.alerts += 1;
            }
            self.alerts.push(AlertRow {
                alert: Alert {
                    key: f.alert.partition_key,
                    start_ms: f.alert.start_ms,
                    fired_start_ms: f.fired_window_start_ms,
                    fired_end_ms: f.alert.window_end_ms,
                },
                severity: f.alert.severity,
                score: f.alert.score,
                guard: f.guard,
                top: top_features(&f.alert.drivers, &f.explanation.contributions),
            });
        }
        Ok(())
    }

    /// Keys with windows in the reported time.
    fn reported(&self) -> impl Iterator<Item = (&String, &KeyStats)> {
        self.keys.iter().filter(|(_, ks)| ks.windows > 0)
    }
}

/// The alert's top base features, most responsible first (the alert's drivers, then the
/// rest of the explanation), each with its own value and training median: derived model
/// inputs (`p99_latency@season`, `@t-1`, …) count for their base feature.
fn top_features(
    drivers: &[String],
    contributions: &[FeatureContribution],
) -> Vec<FeatureContribution> {
    let mut bases: Vec<&str> = Vec::new();
    let names = drivers
        .iter()
        .map(String::as_str)
        .chain(contributions.iter().map(|c| c.feature.as_str()));
    for name in names {
        let base = base_name(name);
        if !bases.contains(&base) {
            bases.push(base);
        }
    }
    bases
        .into_iter()
        .filter_map(|b| {
            contributions
                .iter()
                .find(|c| c.feature == b)
                .or_else(|| contributions.iter().find(|c| base_name(&c.feature) == b))
                .map(|c| FeatureContribution {
                    feature: b.to_string(),
                    ..c.clone()
                })
        })
        .take(TOP_FEATURES)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_three_forms() {
        assert_eq!(parse_time("1500"), Ok(1500));
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z"), Ok(1500));
        assert_eq!(parse_time("1970-01-02"), Ok(86_400_000));
        assert!(parse_time("yesterday").is_err());
    }
}
