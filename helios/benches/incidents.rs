//! Incident benchmark (prints figures, asserts nothing about quality or speed): the realistic
//! `weeks` scenario (`helios traffic --scenario weeks`: 14 days, 5 services, 13 labelled
//! incidents) replayed through a real `helios detect` process against the local stack's Kafka
//! and PostgreSQL, for the default Detector and every `examples/detector-*.yaml`, in one run:
//!  1. the scenario is generated in-process and produced to a fresh 3-partition events topic,
//!     keyed by service as `helios ingest` keys it (the produce rate is printed);
//!  2. per Detector, the backtest replay (`helios backtest`'s code, in-process) runs on the same
//!     events; a Detector whose selector matches none of the scenario's events is skipped with
//!     the reason printed;
//!  3. a `helios detect` child consumes the topic from the start; the bench waits (one overall
//!     timeout) until PostgreSQL holds, for every key, the newest window the replay reported,
//!     then kills the worker;
//!  4. the worker's windows and anomalies are read from PostgreSQL and scored with
//!     [`helios_traffic::score`] exactly as `helios backtest --labels` scores its replay, and the
//!     two are printed side by side: per incident caught or missed and the delay in windows,
//!     false alerts per key per day, window precision/recall/F1, the worker's elapsed time and
//!     events/s, and a README-ready line per Detector.
//!
//! Scoring the worker needs, per key, where its events came from (which incidents concern it)
//! and the reported time span: both are properties of the events, taken from the replay of the
//! same events (a worker key the replay does not know is reported).
//!
//! Run: `e2e/stack up && cargo bench -p helios --bench incidents`
//! (env: HELIOS_STACK_ENV (the stack's env file, default `e2e/.stack/env`),
//! HELIOS_BENCH_TIMEOUT_SECS (the wait per worker, default 1200), HELIOS_BENCH_RUST_LOG (the
//! worker's RUST_LOG, default `info`)).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kit;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use helios::cmd::backtest::{Backtest, Replayed};
use helios::cmd::detector_file;
use helios_e2e::StackEnv;
use helios_e2e::topics;
use helios_traffic::scenario::{Scenario, ScenarioConfig, ScenarioLabels};
use helios_traffic::score::{Alert, Confusion, KeyEvents, KeyRun, Scorecard, Scorer};
use kit::{Worker, unique, var};
use rdkafka::producer::Producer;
use sqlx::PgPool;

/// The default Detector of the issue (what a team gets without tuning).
const DEFAULT_DETECTOR: &str = "pipelineRef: {name: demo}\n\
    features: [event_count, error_rate, avg_latency, p95_latency, p99_latency]\n";
/// Partitions of the events topic.
const PARTITIONS: i32 = 3;
/// How often the bench polls PostgreSQL while a worker runs.
const POLL: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------------
// The scenario in memory: NDJSON lines as `helios ingest` writes them, with their Kafka keys.

struct Events {
    /// Every line, back to back (each ends with `\n`).
    buf: Vec<u8>,
    /// Per event: offset in `buf`, length, index of its service in `services`.
    index: Vec<(usize, u32, u16)>,
    services: Vec<String>,
}

impl Events {
    fn generate(scenario: &Scenario, labels: &ScenarioLabels) -> Self {
        let services = labels.services.clone();
        let mut buf = Vec::with_capacity(360 << 20);
        let mut index = Vec::with_capacity(2_600_000);
        let n = scenario
            .for_each_event(|e| {
                let at = buf.len();
                e.write_json(&mut buf);
                let service = services
                    .iter()
                    .position(|s| s == e.service)
                    .expect("an event of a labelled service");
                index.push((at, (buf.len() - at) as u32, service as u16));
                Ok::<(), ()>(())
            })
            .expect("the scenario generates");
        assert_eq!(n as usize, index.len());
        Self {
            buf,
            index,
            services,
        }
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    /// Every event: (Kafka key = service, line without its `\n`).
    fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.index.iter().map(|&(at, len, s)| {
            let line = &self.buf[at..at + len as usize];
            (
                self.services[usize::from(s)].as_str(),
                line.strip_suffix(b"\n").unwrap_or(line),
            )
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Kafka.

/// Produces every event keyed by its service with the kit's batching producer; returns the
/// time it took.
async fn produce(env: &StackEnv, topic: &str, events: &Events) -> Duration {
    let producer = topics::producer(env).expect("a Kafka producer (e2e/stack up)");
    let started = Instant::now();
    let sent = topics::produce(&producer, topic, None, events.iter())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sent as usize, events.len(), "every event produced");
    producer
        .flush(Duration::from_secs(60))
        .expect("flushing the producer");
    started.elapsed()
}

/// Per key, the start of the newest window the worker stored, epoch ms.
async fn newest_windows(pool: &PgPool, detector: &str) -> BTreeMap<String, i64> {
    let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT key, max(window_start) FROM helios.windows WHERE detector = $1 GROUP BY key",
    )
    .bind(detector)
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    rows.into_iter()
        .map(|(k, t)| (k, t.timestamp_millis()))
        .collect()
}

/// What the worker stored, scored like the replay: keys (events from the replay) and alerts.
struct Stored {
    keys: Vec<(String, KeyRun)>,
    alerts: Vec<Alert>,
    windows: u64,
    anomalous: u64,
    unknown_keys: Vec<String>,
}

async fn read_stored(
    pool: &PgPool,
    detector: &str,
    scorer: &Scorer<'_>,
    replay: &Replayed,
) -> Stored {
    let events: BTreeMap<&str, &KeyEvents> = replay
        .keys
        .iter()
        .map(|(k, r)| (k.as_str(), &r.events))
        .collect();
    let windows: Vec<(String, DateTime<Utc>, DateTime<Utc>, bool)> = sqlx::query_as(
        "SELECT key, window_start, window_end, anomalous FROM helios.windows \
         WHERE detector = $1 ORDER BY key, window_start",
    )
    .bind(detector)
    .fetch_all(pool)
    .await
    .expect("reading helios.windows");
    let mut keys: BTreeMap<String, KeyRun> = BTreeMap::new();
    let mut unknown_keys = Vec::new();
    let (mut n, mut anomalous) = (0u64, 0u64);
    for (key, start, end, flagged) in windows {
        let run = keys.entry(key.clone()).or_insert_with(|| {
            let ev = events.get(key.as_str()).map(|e| (*e).clone());
            if ev.is_none() {
                unknown_keys.push(key.clone());
            }
            KeyRun {
                events: ev.unwrap_or_default(),
                windows: Confusion::default(),
            }
        });
        let positive = scorer.positive(
            &run.events,
            start.timestamp_millis(),
            end.timestamp_millis(),
        );
        run.windows.add(positive, flagged);
        n += 1;
        anomalous += u64::from(flagged);
    }
    let rows: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT key, window_start, fired_window_start FROM helios.anomalies \
         WHERE detector = $1 ORDER BY fired_window_start, key",
    )
    .bind(detector)
    .fetch_all(pool)
    .await
    .expect("reading helios.anomalies");
    let alerts = rows
        .into_iter()
        .map(|(key, start, fired)| Alert {
            key,
            start_ms: start.timestamp_millis(),
            fired_start_ms: fired.timestamp_millis(),
            fired_end_ms: fired.timestamp_millis() + replay.size_ms,
        })
        .collect();
    Stored {
        keys: keys.into_iter().collect(),
        alerts,
        windows: n,
        anomalous,
        unknown_keys,
    }
}

async fn delete_rows(pool: &PgPool, detector: &str) {
    for sql in [
        "DELETE FROM helios.windows WHERE detector = $1",
        "DELETE FROM helios.anomalies WHERE detector = $1",
        "DELETE FROM helios.models WHERE detector = $1",
    ] {
        if let Err(e) = sqlx::query(sql).bind(detector).execute(pool).await {
            eprintln!("warning: {sql} ({detector}): {e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reporting.

fn score<'a>(
    scorer: &Scorer<'a>,
    keys: &[(String, KeyRun)],
    alerts: &[Alert],
    span: (i64, i64),
) -> Scorecard<'a> {
    scorer.score(keys.iter().map(|(k, r)| (k.as_str(), r)), alerts, span)
}

fn outcome(card: &Scorecard<'_>, i: usize) -> (String, String) {
    let o = &card.incidents[i];
    match (o.relevant, &o.first_alert) {
        (false, _) => ("not replayed".into(), "–".into()),
        (true, None) => ("missed".into(), "–".into()),
        (true, Some(_)) => ("caught".into(), o.delay_windows.unwrap_or(0).to_string()),
    }
}

fn median_delay(card: &Scorecard<'_>) -> Option<f64> {
    let mut d: Vec<i64> = card
        .incidents
        .iter()
        .filter_map(|o| o.delay_windows)
        .collect();
    if d.is_empty() {
        return None;
    }
    d.sort_unstable();
    let m = d.len() / 2;
    Some(if d.len().is_multiple_of(2) {
        (d[m - 1] + d[m]) as f64 / 2.0
    } else {
        d[m] as f64
    })
}

fn side_by_side(worker: &Scorecard<'_>, library: &Scorecard<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| id | kind | service | start | worker | delay (windows) | backtest | delay (windows) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for (i, o) in worker.incidents.iter().enumerate() {
        let inc = o.incident;
        let service = match &inc.endpoint {
            Some(ep) => format!("{} {ep}", inc.service),
            None => inc.service.clone(),
        };
        let (wc, wd) = outcome(worker, i);
        let (lc, ld) = outcome(library, i);
        let mark = if (wc.as_str(), wd.as_str()) == (lc.as_str(), ld.as_str()) {
            ""
        } else {
            " ≠"
        };
        let _ = writeln!(
            out,
            "| {} | {} | {service} | {} | {wc} | {wd} | {lc} | {ld}{mark} |",
            inc.id,
            inc.kind,
            helios_traffic::score::rfc3339(inc.start_ms)
        );
    }
    out
}

fn readme_line(name: &str, how: &str, card: &Scorecard<'_>, speed: Option<(f64, f64)>) -> String {
    let (p, r, f) = card.windows.text();
    let median = median_delay(card).map_or_else(|| "–".to_string(), |m| format!("{m}"));
    let mut line = format!(
        "{name} ({how}): {}/{} incidents caught (median delay {median} windows, {} within 2 \
         windows), {:.2} false alerts per key per day ({:.1} per week), windows P/R/F1 \
         {p}/{r}/{f}",
        card.caught(),
        card.relevant(),
        card.caught_within(2),
        card.false_alerts_per_key_day(),
        7.0 * card.false_alerts_per_key_day()
    );
    if let Some((secs, rate)) = speed {
        let _ = write!(line, "; {secs:.1} s, {rate:.0} events/s");
    }
    line
}

// ---------------------------------------------------------------------------------------------
// One Detector.

struct DetectorFile {
    name: String,
    path: String,
    text: String,
}

fn detector_files() -> Vec<DetectorFile> {
    let mut out = vec![DetectorFile {
        name: "default".into(),
        path: "<default Detector>".into(),
        text: DEFAULT_DETECTOR.into(),
    }];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("detector-") && n.ends_with(".yaml"))
        })
        .collect();
    paths.sort();
    for p in paths {
        let text =
            std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
        let name = p
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("detector")
            .trim_start_matches("detector-")
            .to_string();
        out.push(DetectorFile {
            name,
            path: format!(
                "examples/{}",
                p.file_name().and_then(|n| n.to_str()).unwrap_or("")
            ),
            text,
        });
    }
    out
}

struct Outcome {
    lines: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
async fn run_detector(
    env: &StackEnv,
    pool: &PgPool,
    events: &Events,
    labels: &ScenarioLabels,
    topic: &str,
    file: &DetectorFile,
    timeout: Duration,
    cleanup: &mut Vec<String>,
) -> Outcome {
    println!("\n## Detector {} ({})\n", file.name, file.path);
    let spec = detector_file::parse_spec(&file.text, &file.path).unwrap_or_else(|e| panic!("{e}"));
    let cfg = detector_file::detector_config(&spec, &file.name, &file.path)
        .unwrap_or_else(|e| panic!("{e}"));

    // The backtest path on the same events.
    let began = Instant::now();
    let mut backtest =
        Backtest::new(cfg, Some(labels.clone())).unwrap_or_else(|e| panic!("{}: {e}", file.path));
    for (_, line) in events.iter() {
        backtest.line(line).expect("the backtest replay scores");
    }
    let replay = backtest.finish().expect("the backtest replay finishes");
    let replay_secs = began.elapsed().as_secs_f64();
    println!(
        "backtest replay: {} events accepted ({} not matched by the selector, {} late), {} \
         keys, {} windows, {} anomalous, {} alerts in {replay_secs:.1} s",
        replay.accepted,
        replay.filtered,
        replay.late,
        replay.keys.len(),
        replay.windows,
        replay.anomalous,
        replay.alerts.len()
    );
    if replay.accepted == 0 {
        let selected = if spec.selector.services.is_empty() {
            "every service".to_string()
        } else {
            format!("services {:?}", spec.selector.services)
        };
        let line = format!(
            "{} ({}): SKIPPED: its selector ({selected}) matches none of the scenario's \
             services {:?} ({} events filtered), so no key would have a window to score",
            file.name, file.path, labels.services, replay.filtered
        );
        println!("{line}");
        return Outcome { lines: vec![line] };
    }
    let scorer = Scorer::new(labels, replay.size_ms, replay.hop_ms);
    let library = score(&scorer, &replay.keys, &replay.alerts, replay.span);

    // The worker.
    let detector = format!("bench/{}", unique(&file.name));
    let anomalies_topic = unique("helios-bench-anomalies");
    topics::create_topics(env, &[(&anomalies_topic, 1)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    cleanup.push(anomalies_topic.clone());
    let spec_json = serde_json::to_string(&spec).expect("the spec as JSON");
    let started = Instant::now();
    let mut worker = Worker::start(env, &spec_json, &detector, topic, &anomalies_topic, &[]);
    let (mut last_report, mut polls) = (Instant::now(), 0u64);
    let max_polls = timeout.as_secs().max(1) / POLL.as_secs().max(1) + 1;
    let done = loop {
        if let Some(status) = worker.exited() {
            panic!(
                "helios detect exited early ({status}); log {}:\n{}",
                worker.log.display(),
                worker.log_tail(30)
            );
        }
        let newest = newest_windows(pool, &detector).await;
        let behind: Vec<(&String, i64)> = replay
            .last_window_start_ms
            .iter()
            .filter(|(k, last)| newest.get(*k).is_none_or(|n| *n < **last))
            .map(|(k, last)| {
                let at = newest.get(k).copied().unwrap_or(replay.span.0);
                (k, (*last - at) / replay.hop_ms.max(1))
            })
            .collect();
        if behind.is_empty() {
            break started.elapsed();
        }
        polls += 1;
        if polls >= max_polls || started.elapsed() >= timeout {
            let counts = worker.events_by_outcome().await;
            let (tail, log) = (worker.log_tail(20), worker.log.clone());
            worker.stop();
            panic!(
                "timed out after {timeout:?}: keys still behind (windows to go) {behind:?}; \
                 worker events {counts:?}; log {}:\n{tail}",
                log.display()
            );
        }
        if last_report.elapsed() >= Duration::from_secs(15) {
            last_report = Instant::now();
            eprintln!(
                "  … {:.0} s: {} keys behind, most windows to go {}",
                started.elapsed().as_secs_f64(),
                behind.len(),
                behind.iter().map(|(_, n)| *n).max().unwrap_or(0)
            );
        }
        tokio::time::sleep(POLL).await;
    };
    let consumed = worker.events_by_outcome().await;
    worker.stop();
    let secs = done.as_secs_f64();
    let rate = events.len() as f64 / secs.max(1e-9);
    println!(
        "helios detect: every key's newest window stored {secs:.1} s after start ({rate:.0} \
         events/s of the topic's {}); events by outcome {consumed:?}",
        events.len()
    );
    let stored = read_stored(pool, &detector, &scorer, &replay).await;
    delete_rows(pool, &detector).await;
    if !stored.unknown_keys.is_empty() {
        println!(
            "WARNING: worker keys the replay does not know (scored as concerning no \
             incident): {:?}",
            stored.unknown_keys
        );
    }
    let worker_card = score(&scorer, &stored.keys, &stored.alerts, replay.span);
    println!(
        "windows: worker {} ({} anomalous, {} keys), backtest {} ({} anomalous, {} keys); \
         alerts: worker {}, backtest {}\n",
        stored.windows,
        stored.anomalous,
        stored.keys.len(),
        replay.windows,
        replay.anomalous,
        replay.keys.len(),
        stored.alerts.len(),
        replay.alerts.len()
    );
    print!("{}", side_by_side(&worker_card, &library));
    println!("\nworker:   {}", worker_card.summary());
    println!("backtest: {}", library.summary());
    let worker_line = readme_line(
        &file.name,
        "helios detect",
        &worker_card,
        Some((secs, rate)),
    );
    let library_line = readme_line(
        &file.name,
        "helios backtest",
        &library,
        Some((replay_secs, events.len() as f64 / replay_secs.max(1e-9))),
    );
    let agree = worker_card.summary() == library.summary()
        && worker_card
            .incidents
            .iter()
            .zip(&library.incidents)
            .all(|(a, b)| a.delay_windows == b.delay_windows);
    println!(
        "worker and backtest {}",
        if agree {
            "agree"
        } else {
            "DISAGREE (see ≠ above)"
        }
    );
    Outcome {
        lines: vec![worker_line, library_line],
    }
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(bench());
}

async fn bench() {
    let (env, pool) = kit::stack().await;
    let timeout = Duration::from_secs(var("HELIOS_BENCH_TIMEOUT_SECS", 1200));

    println!(
        "# Incident benchmark: the weeks scenario through helios detect and helios backtest\n"
    );
    let began = Instant::now();
    let scenario = Scenario::new(&ScenarioConfig::default()).expect("the weeks scenario");
    let labels = scenario.labels();
    let events = Events::generate(&scenario, &labels);
    println!(
        "scenario weeks: {} services, {} events, {} incidents, {:.1} days (generated in {:.1} s)",
        labels.services.len(),
        events.len(),
        labels.incidents.len(),
        (labels.end_ms - labels.start_ms) as f64 / 86_400_000.0,
        began.elapsed().as_secs_f64()
    );

    let topic = unique("helios-bench-events");
    topics::create_topics(&env, &[(&topic, PARTITIONS)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut cleanup = vec![topic.clone()];
    let took = produce(&env, &topic, &events).await;
    println!(
        "produced {} events to {topic} ({PARTITIONS} partitions, keyed by service) in {:.1} s: \
         {:.0} events/s, {:.1} MB/s",
        events.len(),
        took.as_secs_f64(),
        events.len() as f64 / took.as_secs_f64().max(1e-9),
        events.buf.len() as f64 / 1e6 / took.as_secs_f64().max(1e-9)
    );

    let mut summary = Vec::new();
    for file in detector_files() {
        let o = run_detector(
            &env,
            &pool,
            &events,
            &labels,
            &topic,
            &file,
            timeout,
            &mut cleanup,
        )
        .await;
        summary.extend(o.lines);
    }
    let names: Vec<&str> = cleanup.iter().map(String::as_str).collect();
    topics::delete_topics(&env, &names).await;
    println!("\n## Summary (README-ready)\n");
    for l in summary {
        println!("- {l}");
    }
    println!("\ntotal {:.0} s", began.elapsed().as_secs_f64());
}
