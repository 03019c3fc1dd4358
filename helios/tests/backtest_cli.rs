//! `helios backtest` as a process: a five-day scenario from `helios traffic` replayed through
//! a Detector with its labels; the default Detector's quality pins on 14 days (tuning and
//! held-out schedules); the same replay from a Kafka topic of the stack; bad detector, missing
//! and partly bad events files, a missing topic.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "fixtures/schedules.rs"]
mod schedules;

use schedules::{
    HELD_OUT, HELD_OUT_2, HELD_OUT_3, HELD_OUT_4, HELD_OUT_5, HELD_OUT_6, HELD_OUT_7, HELD_OUT_8,
    HELD_OUT_9, HELD_OUT_10, HELD_OUT_11, HELD_OUT_12, HELD_OUT_13, HELD_OUT_14, HELD_OUT_15,
    HELD_OUT_16, HELD_OUT_17, HELD_OUT_18, HELD_OUT_19, HELD_OUT_20, HELD_OUT_21, HELD_OUT_22,
    HELD_OUT_23, HELD_OUT_24, HELD_OUT_25, HELD_OUT_26, HELD_OUT_27, HELD_OUT_28, HELD_OUT_29,
    HELD_OUT_30, HELD_OUT_31, Schedule, TUNING,
};

/// The Detector of the scenario test: three request features, 5m windows, default model.
const DETECTOR: &str = "\
apiVersion: helios.dev/v1alpha1
kind: Detector
metadata:
  name: backtest-shop
spec:
  pipelineRef:
    name: shop
  window:
    size: 5m
  features: [event_count, error_rate, p99_latency]
";

/// Most false alerts per key per day the scenario may produce (observed: 0.60 on checkout,
/// 0.40 on auth with seed 42).
const MAX_FALSE_ALERTS_PER_KEY_DAY: f64 = 2.0;

/// A fresh directory under the system temp dir.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("helios-backtest-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn helios(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_helios"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The Markdown table whose header starts with `| first |`: header cells and rows of cells.
fn table(report: &str, first: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let cells = |l: &str| -> Vec<String> {
        l.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let mut lines = report
        .lines()
        .skip_while(|l| !l.starts_with(&format!("| {first} |")));
    let header = cells(
        lines
            .next()
            .unwrap_or_else(|| panic!("no table `{first}`:\n{report}")),
    );
    let rows = lines
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .map(cells)
        .collect();
    (header, rows)
}

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name:?} in {header:?}"))
}

/// Writes `detector` to `dir/det.yaml` and backtests it on `dir`'s `events.ndjson` with
/// `labels.json` (and `extra` arguments), quietly; fails unless it succeeds. Returns (stdout
/// report, stderr).
fn backtest_labelled(dir: &Path, detector: &str, extra: &[&str]) -> (String, String) {
    std::fs::write(dir.join("det.yaml"), detector).unwrap();
    let mut args = vec![
        "backtest",
        "-f",
        "det.yaml",
        "--events",
        "events.ndjson",
        "--labels",
        "labels.json",
        "--quiet",
    ];
    args.extend(extra);
    let out = helios(dir, &args);
    let (report, stderr) = text(&out);
    assert!(out.status.success(), "{report}\n{stderr}");
    (report, stderr)
}

/// Events of two services, one each per 10 s for `minutes` from a 5m boundary.
fn small_events(minutes: i64) -> String {
    let mut out = String::new();
    for i in 0..minutes * 6 {
        for (service, latency) in [("checkout", 120.0), ("auth", 40.0)] {
            let ts = 1_700_000_100_000 + i * 10_000;
            let status = if i % 17 == 0 { 503 } else { 200 };
            out.push_str(&format!(
                "{{\"timestamp\":{ts},\"service\":\"{service}\",\"status\":{status},\
                 \"latency_ms\":{}}}\n",
                latency + (i % 7) as f64
            ));
        }
    }
    out
}

/// Writes the five-day scenario of two services (an error burst on checkout, a latency spike
/// on auth) to `dir`'s `events.ndjson` and `labels.json`.
fn five_day_scenario(dir: &Path) {
    let out = helios(
        dir,
        &[
            "traffic",
            "--scenario",
            "weeks",
            "--days",
            "5",
            "--services",
            "2",
            "--out",
            "events.ndjson",
            "--labels",
            "labels.json",
            "--incident",
            "errors:checkout:at=3d14h:for=30m:x=0.3",
            "--incident",
            "latency:auth:at=3d10h:for=20m:x=6",
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{:?}", text(&out));
}

#[test]
fn five_day_scenario_catches_the_error_burst_with_few_false_alerts() {
    let dir = temp_dir("scenario");
    five_day_scenario(&dir);
    let (report, stderr) = backtest_labelled(&dir, DETECTOR, &[]);
    assert!(
        !stderr.contains("replayed"),
        "--quiet prints no progress: {stderr}"
    );
    println!("{report}");

    let (header, incidents) = table(&report, "id");
    let (kind, caught, delay) = (
        column(&header, "kind"),
        column(&header, "caught"),
        column(&header, "delay (windows)"),
    );
    let burst = incidents
        .iter()
        .find(|r| r[kind] == "errors")
        .unwrap_or_else(|| panic!("no errors incident:\n{report}"));
    assert_eq!(burst[caught], "caught", "{report}");
    assert!(burst[delay].parse::<i64>().unwrap() <= 2, "{report}");

    let (header, keys) = table(&report, "key");
    let (key, per_day) = (column(&header, "key"), column(&header, "false alerts/day"));
    let names: Vec<&str> = keys.iter().map(|r| r[key].as_str()).collect();
    assert_eq!(names, ["auth", "checkout"], "{report}");
    for row in &keys {
        let v: f64 = row[per_day].parse().unwrap();
        assert!(
            v <= MAX_FALSE_ALERTS_PER_KEY_DAY,
            "{}: {v} false alerts/day > {MAX_FALSE_ALERTS_PER_KEY_DAY}\n{report}",
            row[key]
        );
    }
    assert!(
        report.contains("\noverall: 2 keys, 2880 windows"),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--windows` writes every reported window with its score, flag, guard, values and ground
/// truth: as many lines as the report counts windows, as many flagged as it counts anomalous,
/// and the error burst's windows flagged by a guard on the error rate.
#[test]
fn the_windows_export_holds_every_reported_window() {
    let dir = temp_dir("windows");
    five_day_scenario(&dir);
    let (report, _) = backtest_labelled(&dir, DETECTOR, &["--windows", "windows.ndjson"]);
    let overall = report
        .lines()
        .find_map(|l| l.strip_prefix("overall: 2 keys, "))
        .unwrap_or_else(|| panic!("no overall line:\n{report}"));
    let count = |unit: &str| -> usize {
        overall
            .split(", ")
            .find_map(|p| p.strip_suffix(unit))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {unit} in {overall}"))
    };
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("windows.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), count(" windows"), "{report}");
    let flagged = lines.iter().filter(|w| w["anomalous"] == true).count();
    assert_eq!(flagged, count(" anomalous"), "{report}");
    let burst: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|w| w["key"] == "checkout" && w["incident"] == true)
        .collect();
    assert!(!burst.is_empty(), "no checkout incident window");
    assert!(
        burst.iter().any(|w| w["anomalous"] == true
            && w["values"]["error_rate"].as_f64().is_some_and(|e| e > 0.2)),
        "{burst:?}"
    );
    // What flagged a window is named, and only flagged windows name one.
    for w in &lines {
        match w["guard"].as_str() {
            Some(g) => assert!(
                w["anomalous"] == true && ["range", "drop", "errors"].contains(&g),
                "{w}"
            ),
            None => assert!(w["guard"].is_null(), "{w}"),
        }
    }
    assert!(
        burst
            .iter()
            .any(|w| !w["guard"].is_null() && w["drivers"][0] == "error_rate"),
        "a guard flags the error burst on its error rate: {burst:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--topic` replays the events of a 3-partition topic (one partition empty, one message that
/// is not an event) exactly as the file they came from, and a missing topic is named.
#[test]
fn a_topic_replays_like_the_file_it_was_filled_from() {
    let env = helios_e2e::StackEnv::load().unwrap();
    let bootstrap = env.get("KAFKA_BOOTSTRAP").unwrap().to_string();
    let dir = temp_dir("topic");
    five_day_scenario(&dir);
    let (file_report, _) = backtest_labelled(&dir, DETECTOR, &[]);
    let lines = std::fs::read_to_string(dir.join("events.ndjson")).unwrap();
    let mut messages: Vec<(String, String)> = lines
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["service"].as_str().unwrap().to_string(), l.to_string())
        })
        .collect();
    messages.insert(
        messages.len() / 2,
        ("checkout".into(), "not an event".into()),
    );
    let topic = format!("backtest-{}", helios_e2e::kubectl::unique_suffix());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use helios_e2e::topics;
        topics::create_topics(&env, &[(&topic, 3)]).await.unwrap();
        let producer = topics::producer(&env).unwrap();
        // Two keys on three partitions: at least one stays empty.
        let sent = topics::produce(
            &producer,
            &topic,
            None,
            messages.iter().map(|(k, v)| (k, v)),
        )
        .await
        .unwrap();
        assert_eq!(sent as usize, messages.len());
    });
    let replay = |topic: &str| {
        helios(
            &dir,
            &[
                "backtest",
                "-f",
                "det.yaml",
                "--topic",
                topic,
                "--kafka-bootstrap",
                &bootstrap,
                "--labels",
                "labels.json",
            ],
        )
    };
    let out = replay(&topic);
    let (topic_report, stderr) = text(&out);
    assert!(out.status.success(), "{topic_report}\n{stderr}");
    assert!(stderr.contains("read 100% of the topic"), "{stderr}");
    assert!(
        topic_report.contains(&format!(
            "on topic {topic} ({} messages from ",
            messages.len()
        )),
        "{topic_report}"
    );
    assert!(
        topic_report.contains("Skipped: 1 bad lines"),
        "{topic_report}"
    );
    assert!(
        topic_report.contains("Bad lines (first 1 of 1):\n- partition "),
        "{topic_report}"
    );
    let body = |r: &str| -> Vec<String> {
        let source = ["# Backtest of", "Skipped:", "Bad lines", "- partition "];
        r.lines()
            .filter(|l| !l.is_empty() && !source.iter().any(|s| l.starts_with(s)))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(body(&topic_report), body(&file_report));

    let missing = format!("{topic}-missing");
    let out = replay(&missing);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains(&format!("--topic {missing}: ")), "{stderr}");
    rt.block_on(helios_e2e::topics::delete_topics(&env, &[&topic]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_feature_is_named() {
    let dir = temp_dir("bad-detector");
    std::fs::write(
        dir.join("det.yaml"),
        DETECTOR.replace("p99_latency", "p50_latency"),
    )
    .unwrap();
    std::fs::write(dir.join("events.ndjson"), small_events(10)).unwrap();
    let out = helios(
        &dir,
        &["backtest", "-f", "det.yaml", "--events", "events.ndjson"],
    );
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains("p50_latency"), "{stderr}");
    assert!(stderr.contains("det.yaml"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_events_file_is_named() {
    let dir = temp_dir("missing-events");
    std::fs::write(dir.join("det.yaml"), DETECTOR).unwrap();
    let out = helios(
        &dir,
        &[
            "backtest",
            "-f",
            "det.yaml",
            "--events",
            "no-such-events.ndjson",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains("no-such-events.ndjson"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_lines_are_counted_and_skipped_and_progress_goes_to_stderr() {
    let dir = temp_dir("bad-lines");
    std::fs::write(dir.join("det.yaml"), DETECTOR).unwrap();
    let mut events = small_events(120);
    events.insert_str(0, "not json\n");
    events.push_str("{\"timestamp\":\"yesterday\",\"service\":\"auth\"}\n");
    std::fs::write(dir.join("events.ndjson"), events).unwrap();
    let out = helios(
        &dir,
        &["backtest", "-f", "det.yaml", "--events", "events.ndjson"],
    );
    let (report, stderr) = text(&out);
    assert!(out.status.success(), "{report}\n{stderr}");
    assert!(report.contains("2 bad lines"), "{report}");
    assert!(report.contains("- line 1: "), "{report}");
    assert!(report.contains("- line 1442: "), "{report}");
    assert!(stderr.contains("replayed 100%"), "{stderr}");
    let (header, keys) = table(&report, "key");
    let windows = column(&header, "windows");
    assert_eq!(keys.len(), 2, "{report}");
    assert!(keys.iter().all(|r| r[windows] == "24"), "{report}");

    // A file without a single event is an error.
    std::fs::write(dir.join("junk.ndjson"), "junk\n{}\n").unwrap();
    let out = helios(
        &dir,
        &["backtest", "-f", "det.yaml", "--events", "junk.ndjson"],
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("junk.ndjson: no valid event"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// 1 s windows of services `a` and `b` (15–24 events each) for `windows`; `spiking` services
/// have 10× latency in the windows of `spike`.
fn spiking_events(windows: std::ops::Range<i64>, spikes: &[(i64, &[&str])]) -> String {
    let mut out = String::new();
    for w in windows {
        for (si, service) in ["a", "b"].iter().enumerate() {
            let n = 15 + (w * 7 + si as i64 * 3) % 10;
            for i in 0..n {
                let base = 40.0 + ((w * 31 + i * 17 + si as i64 * 13) % 20) as f64;
                let hit = spikes
                    .iter()
                    .any(|(at, who)| *at == w && who.contains(service));
                let latency = if hit { base * 10.0 } else { base };
                let ts = 1_700_000_000_000 + w * 1000 + i * 30;
                out.push_str(&format!(
                    "{{\"timestamp\":{ts},\"service\":\"{service}\",\"latency_ms\":{latency}}}\n"
                ));
            }
        }
    }
    out
}

#[test]
fn a_false_positive_label_suppresses_its_pattern_on_its_key_in_the_replay() {
    let dir = temp_dir("feedback");
    std::fs::write(
        dir.join("det.yaml"),
        "pipelineRef: {name: p}\n\
         window: {size: 1s, allowedLateness: 0s}\n\
         features: [event_count, p99_latency]\n\
         model: {trees: 50, threshold: -0.7, seed: 1}\n\
         training: {warmupWindows: 20, retrainInterval: 1h, historyWindows: 100}\n\
         alerting: {cooldown: 0s}\n",
    )
    .unwrap();
    let spikes: [(i64, &[&str]); 6] = [
        (40, &["a"]),
        (41, &["a"]),
        (42, &["a"]),
        (60, &["a", "b"]),
        (61, &["a", "b"]),
        (62, &["a", "b"]),
    ];
    std::fs::write(dir.join("events.ndjson"), spiking_events(0..70, &spikes)).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "backtest",
            "-f",
            "det.yaml",
            "--events",
            "events.ndjson",
            "--guard-after-windows",
            "20",
            "--quiet",
        ];
        args.extend(extra);
        let out = helios(&dir, &args);
        let (report, stderr) = text(&out);
        assert!(out.status.success(), "{report}\n{stderr}");
        let (header, rows) = table(&report, "fired");
        let (key, start) = (column(&header, "key"), column(&header, "episode start"));
        let alerts: Vec<(String, String)> = rows
            .iter()
            .map(|r| (r[key].clone(), r[start].clone()))
            .collect();
        (report, alerts)
    };
    // Without feedback: a at 40, then a and b at 60.
    let (_, before) = run(&[]);
    let keys: Vec<&str> = before.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys.iter().filter(|k| **k == "a").count(), 2, "{before:?}");
    assert_eq!(keys.iter().filter(|k| **k == "b").count(), 1, "{before:?}");
    // The first alert of a labelled a false positive: a's repeat is gone, b's stays.
    let first = &before[0];
    assert_eq!(first.0, "a");
    std::fs::write(
        dir.join("feedback.jsonl"),
        format!(
            "{{\"key\":\"a\",\"start\":\"{}\",\"label\":\"false-positive\"}}\n",
            first.1
        ),
    )
    .unwrap();
    let (report, after) = run(&["--feedback", "feedback.jsonl"]);
    let keys: Vec<&str> = after.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["a", "b"], "{report}");
    assert!(
        report.contains("1 false positives applied when they fired, 1 later alerts"),
        "{report}"
    );
    // A bad label is named.
    std::fs::write(
        dir.join("bad.jsonl"),
        "{\"key\":\"a\",\"label\":\"nope\"}\n",
    )
    .unwrap();
    let out = helios(
        &dir,
        &[
            "backtest",
            "-f",
            "det.yaml",
            "--events",
            "events.ndjson",
            "--feedback",
            "bad.jsonl",
        ],
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("bad.jsonl: line 1"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Detector a team gets by default: five request features, nothing else set.
const DEFAULT_DETECTOR: &str = "\
pipelineRef: {name: shop}
features: [event_count, error_rate, avg_latency, p95_latency, p99_latency]
";

/// Replays 14 days of 5 services through the default Detector: (caught, incidents, caught
/// within 2 windows, false alerts per key per day).
fn fourteen_days(schedule: &Schedule) -> (usize, usize, usize, f64) {
    let dir = temp_dir(schedule.name);
    let mut args = vec![
        "traffic",
        "--scenario",
        "weeks",
        "--seed",
        schedule.seed,
        "--out",
        "events.ndjson",
        "--labels",
        "labels.json",
        "--quiet",
    ];
    for i in schedule.incidents {
        args.extend(["--incident", i]);
    }
    let out = helios(&dir, &args);
    assert!(out.status.success(), "{:?}", text(&out));
    let (report, _) = backtest_labelled(&dir, DEFAULT_DETECTOR, &[]);
    let (header, rows) = table(&report, "id");
    let (caught, delay) = (
        column(&header, "caught"),
        column(&header, "delay (windows)"),
    );
    let hit: Vec<&Vec<String>> = rows.iter().filter(|r| r[caught] == "caught").collect();
    let fast = hit
        .iter()
        .filter(|r| r[delay].parse::<i64>().is_ok_and(|d| d <= 2))
        .count();
    let per_day: f64 = report
        .lines()
        .find_map(|l| l.strip_prefix("overall: "))
        .and_then(|l| l.split(" (").nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no overall false alerts per key per day:\n{report}"));
    println!("{report}");
    let _ = std::fs::remove_dir_all(&dir);
    (hit.len(), rows.len(), fast, per_day)
}

/// Asserts a [`fourteen_days`] result: caught/all exactly, caught within 2 windows in `fast`,
/// false alerts per key per day within 0.05 of `per_day`.
fn pinned(
    got: (usize, usize, usize, f64),
    caught_all: (usize, usize),
    fast: std::ops::RangeInclusive<usize>,
    per_day: f64,
) {
    assert_eq!((got.0, got.1), caught_all, "{got:?}");
    assert!(fast.contains(&got.2), "{got:?}");
    assert!((got.3 - per_day).abs() <= 0.05, "{got:?}");
}

// Quality pins of the default Detector, measured 2026-12-07 with the range guard of request
// features acting after a day of scored windows (was a week) on top of the alert budget's
// empirical bound (development split: TUNING, HELD_OUT … HELD_OUT_19; HELD_OUT_20 …
// HELD_OUT_22 were judged once on the bound and are development since; held-out:
// HELD_OUT_23 … HELD_OUT_25, drawn before the one-day wait was judged on them, and
// HELD_OUT_26 … HELD_OUT_28, drawn before a pooled error guard (not kept) was, and
// HELD_OUT_29 … HELD_OUT_31, drawn before the likelihood's tail quantile for request detectors
// (not kept as a default) was; see the fixtures). The creeps (a 4-hour ramp) are the incidents slower than 2 windows everywhere.
// Each pin is its own test, so they run in parallel and fail by name.

/// One pinned schedule: `(caught, incidents)` exactly, caught within 2 windows in a range,
/// false alerts per key per day within 0.05.
macro_rules! pin {
    ($($(#[$doc:meta])* $name:ident: $schedule:ident, $caught:expr, $fast:expr, $per_day:expr;)*) => {
        $(
            $(#[$doc])*
            #[test]
            fn $name() {
                pinned(fourteen_days(&$schedule), $caught, $fast, $per_day);
            }
        )*
    };
}

pin! {
    /// Tuning schedule: 13/13 caught, 11 within 2 windows, 0.09 false alerts per key per day.
    default_detector_on_the_tuning_fourteen_days_is_pinned: TUNING, (13, 13), 10..=12, 0.09;
    /// First held-out schedule (development): 10/10, 9 within 2, 0.07 per key per day.
    default_detector_on_the_held_out_fourteen_days_is_pinned: HELD_OUT, (10, 10), 8..=10, 0.07;
    /// Second (development): 10/10, 9 within 2, 0.07.
    default_detector_on_the_second_held_out_fourteen_days_is_pinned: HELD_OUT_2, (10, 10), 8..=10, 0.07;
    /// Third (development): 10/10, 9 within 2, 0.06.
    default_detector_on_the_third_held_out_fourteen_days_is_pinned: HELD_OUT_3, (10, 10), 8..=10, 0.06;
    /// Fourth (development): 10/10, 9 within 2, 0.06.
    default_detector_on_the_fourth_held_out_fourteen_days_is_pinned: HELD_OUT_4, (10, 10), 8..=10, 0.06;
    /// Fifth (development): 10/10, 9 within 2, 0.09.
    default_detector_on_the_fifth_held_out_fourteen_days_is_pinned: HELD_OUT_5, (10, 10), 8..=10, 0.09;
    /// Sixth (development): 10/10, 9 within 2, 0.07.
    default_detector_on_the_sixth_held_out_fourteen_days_is_pinned: HELD_OUT_6, (10, 10), 8..=10, 0.07;
    /// Seventh (development): 10/10, 9 within 2, 0.06.
    default_detector_on_the_seventh_held_out_fourteen_days_is_pinned: HELD_OUT_7, (10, 10), 8..=10, 0.06;
    /// Eighth (development): 10/10, 8 within 2 — the catalog latency spike at 03:00 on day 4
    /// (missed while the range guard waited a week) in 4 windows —, 0.10.
    default_detector_on_the_eighth_held_out_fourteen_days_is_pinned: HELD_OUT_8, (10, 10), 7..=9, 0.1;
    /// Ninth (development): 10/10, 9 within 2, 0.06.
    default_detector_on_the_ninth_held_out_fourteen_days_is_pinned: HELD_OUT_9, (10, 10), 8..=10, 0.06;
    /// Tenth (development): 8/10 — two notify latency spikes over a dozen requests each are
    /// missed, at 22:00 on day 12 and at 03:00 on the last Sunday —, 7 within 2, 0.09.
    default_detector_on_the_tenth_held_out_fourteen_days_is_pinned: HELD_OUT_10, (8, 10), 6..=8, 0.09;
    /// Eleventh (development): 10/10, 9 within 2, 0.06.
    default_detector_on_the_eleventh_held_out_fourteen_days_is_pinned: HELD_OUT_11, (10, 10), 8..=10, 0.06;
    /// Twelfth (development): 10/10, 9 within 2, 0.06.
    default_detector_on_the_twelfth_held_out_fourteen_days_is_pinned: HELD_OUT_12, (10, 10), 8..=10, 0.06;
    /// Thirteenth (development): 10/10, 9 within 2, 0.06.
    default_detector_on_the_thirteenth_held_out_fourteen_days_is_pinned: HELD_OUT_13, (10, 10), 8..=10, 0.06;
    /// Fourteenth (development): 10/10, 9 within 2, 0.09.
    default_detector_on_the_fourteenth_held_out_fourteen_days_is_pinned: HELD_OUT_14, (10, 10), 8..=10, 0.09;
    /// Fifteenth (development): 10/10, 9 within 2, 0.06.
    default_detector_on_the_fifteenth_held_out_fourteen_days_is_pinned: HELD_OUT_15, (10, 10), 8..=10, 0.06;
    /// Sixteenth (development): 10/10, 9 within 2, 0.07.
    default_detector_on_the_sixteenth_held_out_fourteen_days_is_pinned: HELD_OUT_16, (10, 10), 8..=10, 0.07;
    /// Seventeenth (development): 10/10, 9 within 2, 0.11.
    default_detector_on_the_seventeenth_held_out_fourteen_days_is_pinned: HELD_OUT_17, (10, 10), 8..=10, 0.11;
    /// Eighteenth (development): 9/10 — the checkout creep from 02:00 on day 3 is missed —, 9
    /// within 2, 0.04.
    default_detector_on_the_eighteenth_held_out_fourteen_days_is_pinned: HELD_OUT_18, (9, 10), 8..=10, 0.04;
    /// Nineteenth (development): 10/10, 9 within 2, 0.04.
    default_detector_on_the_nineteenth_held_out_fourteen_days_is_pinned: HELD_OUT_19, (10, 10), 8..=10, 0.04;
    /// Twentieth (development): 10/10, 9 within 2, 0.04.
    default_detector_on_the_twentieth_held_out_fourteen_days_is_pinned: HELD_OUT_20, (10, 10), 8..=10, 0.04;
    /// Twenty-first (development): 10/10, 9 within 2, 0.07.
    default_detector_on_the_twenty_first_held_out_fourteen_days_is_pinned: HELD_OUT_21, (10, 10), 8..=10, 0.07;
    /// Twenty-second (development): 9/10 — the notify error burst at 05:00 on the last day is
    /// missed —, 8 within 2, 0.06.
    default_detector_on_the_twenty_second_held_out_fourteen_days_is_pinned: HELD_OUT_22, (9, 10), 7..=9, 0.06;
    /// Twenty-third (held out, judged once on the one-day wait): 10/10, 9 within 2, 0.10.
    default_detector_on_the_twenty_third_held_out_fourteen_days_is_pinned: HELD_OUT_23, (10, 10), 8..=10, 0.1;
    /// Twenty-fourth (as the twenty-third): 10/10, 9 within 2, 0.01.
    default_detector_on_the_twenty_fourth_held_out_fourteen_days_is_pinned: HELD_OUT_24, (10, 10), 8..=10, 0.01;
    /// Twenty-fifth (as the twenty-third): 10/10, 9 within 2, 0.07.
    default_detector_on_the_twenty_fifth_held_out_fourteen_days_is_pinned: HELD_OUT_25, (10, 10), 8..=10, 0.07;
    /// Twenty-sixth (held out, judged once on an error guard that was not kept): 10/10, 9
    /// within 2, 0.01.
    default_detector_on_the_twenty_sixth_held_out_fourteen_days_is_pinned: HELD_OUT_26, (10, 10), 8..=10, 0.01;
    /// Twenty-seventh (as the twenty-sixth): 10/10, 9 within 2, 0.07.
    default_detector_on_the_twenty_seventh_held_out_fourteen_days_is_pinned: HELD_OUT_27, (10, 10), 8..=10, 0.07;
    /// Twenty-eighth (as the twenty-sixth): 10/10, 9 within 2, 0.06.
    default_detector_on_the_twenty_eighth_held_out_fourteen_days_is_pinned: HELD_OUT_28, (10, 10), 8..=10, 0.06;
    /// Twenty-ninth (held out, judged once on a tail quantile for request detectors that was
    /// not made the default): 10/10, 9 within 2, 0.06.
    default_detector_on_the_twenty_ninth_held_out_fourteen_days_is_pinned: HELD_OUT_29, (10, 10), 8..=10, 0.06;
    /// Thirtieth (as the twenty-ninth): 10/10, 9 within 2, 0.06.
    default_detector_on_the_thirtieth_held_out_fourteen_days_is_pinned: HELD_OUT_30, (10, 10), 8..=10, 0.06;
    /// Thirty-first (as the twenty-ninth): 10/10, 9 within 2, 0.03.
    default_detector_on_the_thirty_first_held_out_fourteen_days_is_pinned: HELD_OUT_31, (10, 10), 8..=10, 0.03;
}
