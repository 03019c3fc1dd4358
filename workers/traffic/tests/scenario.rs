//! The multi-week scenario: determinism, order, daily/weekly shape, the measurable effect of
//! every incident kind inside its window (and none outside), labels, and the CLI.

#![allow(clippy::unwrap_used)]

use clap::Parser;
use helios_traffic::incident::{Incident, Kind};
use helios_traffic::scenario::{
    DAY_SECS, DEFAULT_START_MS, Event, LabelledIncident, Scenario, ScenarioConfig, ScenarioLabels,
    scenario_events, write_scenario,
};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = DAY_SECS as i64 * 1000;

/// A compact copy of an event.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ev {
    ts: i64,
    service: usize,
    endpoint: usize,
    status: u16,
    latency: f64,
}

fn cfg(days: f64, scale: f64, incidents: Option<Vec<&str>>) -> ScenarioConfig {
    ScenarioConfig {
        days,
        events_scale: scale,
        incidents: incidents.map(|l| l.iter().map(|s| s.parse().unwrap()).collect()),
        ..ScenarioConfig::default()
    }
}

fn generate(cfg: &ScenarioConfig) -> (Vec<Ev>, ScenarioLabels, Vec<Vec<String>>) {
    let scenario = Scenario::new(cfg).unwrap();
    let services = scenario.services().to_vec();
    let endpoints: Vec<Vec<String>> = services
        .iter()
        .map(|s| s.endpoints.iter().map(|e| e.path.clone()).collect())
        .collect();
    let mut out = Vec::new();
    let labels = scenario_events(cfg, |e: &Event<'_>| {
        let service = services.iter().position(|s| s.name == e.service).unwrap();
        out.push(Ev {
            ts: e.timestamp,
            service,
            endpoint: endpoints[service]
                .iter()
                .position(|p| p == e.endpoint)
                .unwrap(),
            status: e.status,
            latency: e.latency_ms,
        });
    })
    .unwrap();
    (out, labels, endpoints)
}

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    assert!(!v.is_empty());
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn select(events: &[Ev], service: usize, from: i64, to: i64) -> Vec<Ev> {
    events
        .iter()
        .filter(|e| e.service == service && e.ts >= from && e.ts < to)
        .copied()
        .collect()
}

fn error_fraction(events: &[Ev]) -> f64 {
    events.iter().filter(|e| e.status >= 500).count() as f64 / events.len().max(1) as f64
}

fn latencies(events: &[Ev]) -> Vec<f64> {
    events.iter().map(|e| e.latency).collect()
}

#[test]
fn same_seed_same_bytes_sorted_and_valid_json() {
    let c = cfg(1.0, 0.05, None);
    let (n, labels) = write_scenario(&c, Vec::new()).unwrap();
    let mut a = Vec::new();
    write_scenario(&c, &mut a).unwrap();
    let mut b = Vec::new();
    write_scenario(&c, &mut b).unwrap();
    assert_eq!(a, b, "same seed, same bytes");
    let mut other = Vec::new();
    let (_, other_labels) = write_scenario(
        &ScenarioConfig {
            seed: 43,
            ..c.clone()
        },
        &mut other,
    )
    .unwrap();
    assert_ne!(a, other, "another seed, other noise");
    assert_eq!(
        labels,
        ScenarioLabels {
            seed: 42,
            ..other_labels
        },
        "same schedule"
    );

    let text = String::from_utf8(a).unwrap();
    let mut last = i64::MIN;
    let mut lines = 0u64;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let obj = v.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "attributes",
                "endpoint",
                "latency_ms",
                "service",
                "status",
                "timestamp"
            ]
        );
        let ts = v["timestamp"].as_i64().unwrap();
        assert!(ts >= last, "timestamps must not decrease");
        assert!((labels.start_ms..labels.end_ms).contains(&ts));
        last = ts;
        assert!((100..600).contains(&v["status"].as_u64().unwrap()));
        assert!(v["latency_ms"].as_f64().unwrap() > 0.0);
        assert!(v["attributes"]["region"].is_string());
        lines += 1;
    }
    assert_eq!(lines, n);
    assert!(n > 5_000, "{n} events");
}

#[test]
fn shorter_and_narrower_runs_are_prefixes() {
    let (two_days, _, _) = generate(&cfg(2.0, 0.05, Some(vec![])));
    let (one_day, _, _) = generate(&cfg(1.0, 0.05, Some(vec![])));
    let first: Vec<Ev> = two_days
        .iter()
        .filter(|e| e.ts < DEFAULT_START_MS + DAY_MS)
        .copied()
        .collect();
    assert_eq!(first, one_day);
    let (two_services, labels, _) = generate(&ScenarioConfig {
        services: 2,
        ..cfg(1.0, 0.05, Some(vec![]))
    });
    assert_eq!(labels.services, ["checkout", "auth"]);
    let subset: Vec<Ev> = one_day.into_iter().filter(|e| e.service < 2).collect();
    assert_eq!(two_services, subset);
}

#[test]
fn night_is_quiet_and_services_differ() {
    let (events, labels, _) = generate(&cfg(1.0, 0.3, Some(vec![])));
    let start = labels.start_ms;
    let mut night_ratio = Vec::new();
    for (s, name) in labels.services.iter().enumerate() {
        let night = select(&events, s, start + HOUR_MS, start + 5 * HOUR_MS).len() as f64;
        let midday = select(&events, s, start + 11 * HOUR_MS, start + 15 * HOUR_MS).len() as f64;
        assert!(
            night < 0.6 * midday,
            "{name}: night {night}, midday {midday}"
        );
        night_ratio.push(night / midday);
        // The morning ramps up.
        let hourly: Vec<usize> = (5..10)
            .map(|h| select(&events, s, start + h * HOUR_MS, start + (h + 1) * HOUR_MS).len())
            .collect();
        assert!(
            hourly[4] as f64 > 1.5 * hourly[0] as f64,
            "{name}: {hourly:?}"
        );
    }
    // notify (nightly jobs) runs a much higher night floor than checkout.
    assert!(night_ratio[4] > 2.0 * night_ratio[0], "{night_ratio:?}");
    // Services have different volumes and latencies.
    let count = |s| events.iter().filter(|e| e.service == s).count();
    assert!(count(2) > 4 * count(4), "search busier than notify");
    let median = |s| quantile(latencies(&select(&events, s, start, start + DAY_MS)), 0.5);
    assert!(median(0) > 2.0 * median(3), "checkout slower than catalog");
}

#[test]
fn weekends_are_lower_per_service() {
    let (events, labels, _) = generate(&cfg(7.0, 0.04, Some(vec![])));
    let start = labels.start_ms;
    let mut ratios = Vec::new();
    for (s, name) in labels.services.iter().enumerate() {
        let per_day: Vec<f64> = (0..7)
            .map(|d| select(&events, s, start + d * DAY_MS, start + (d + 1) * DAY_MS).len() as f64)
            .collect();
        let weekday = per_day[..5].iter().sum::<f64>() / 5.0;
        let weekend = per_day[5..].iter().sum::<f64>() / 2.0;
        assert!(weekend < 0.9 * weekday, "{name}: {per_day:?}");
        ratios.push(weekend / weekday);
    }
    // auth (work logins) drops more at the weekend than search.
    assert!(ratios[1] < ratios[2] - 0.15, "{ratios:?}");
}

/// One incident of every kind on day 1 (a Monday), each on its own service or time.
const INCIDENTS: [&str; 6] = [
    "drop:checkout:at=12h30m:for=45m:x=0.3",
    "errors:auth:at=10h:for=20m:x=0.3",
    "latency:search:at=14h:for=20m:x=10:p=0.07",
    "creep:catalog:at=7h:for=5h:x=3:ramp=4h",
    "partial:checkout:at=19h:for=30m:x=0.85:ep=/pay",
    "volume:notify:at=11h:for=30m:x=3",
];

#[test]
fn every_incident_kind_shows_inside_its_window_and_nowhere_else() {
    let (with, labels, endpoints) = generate(&cfg(1.0, 0.5, Some(INCIDENTS.to_vec())));
    let (base, base_labels, _) = generate(&cfg(1.0, 0.5, Some(vec![])));
    assert!(base_labels.incidents.is_empty());
    assert_eq!(labels.incidents.len(), INCIDENTS.len());
    let window = |id: usize| {
        let i: &LabelledIncident = &labels.incidents[id];
        (i.start_ms, i.end_ms)
    };
    let s = |name: &str| labels.services.iter().position(|n| n == name).unwrap();

    // drop: the count falls to ~30%, no errors, normal latency.
    let (a, b) = window(0);
    let (inc, normal) = (
        select(&with, s("checkout"), a, b),
        select(&base, s("checkout"), a, b),
    );
    let ratio = inc.len() as f64 / normal.len() as f64;
    assert!((0.2..0.4).contains(&ratio), "drop: count x{ratio}");
    assert!(error_fraction(&inc) < 0.02);
    let m = quantile(latencies(&inc), 0.5) / quantile(latencies(&normal), 0.5);
    assert!((0.85..1.15).contains(&m), "drop: median x{m}");

    // errors: 20–40% 5xx, the count unchanged.
    let (a, b) = window(1);
    let (inc, normal) = (
        select(&with, s("auth"), a, b),
        select(&base, s("auth"), a, b),
    );
    let f = error_fraction(&inc);
    assert!((0.2..0.4).contains(&f), "errors: {f}");
    assert!(error_fraction(&normal) < 0.02);
    assert_eq!(inc.len(), normal.len());

    // latency: p99 ×4 and more, the median barely moves.
    let (a, b) = window(2);
    let (inc, normal) = (
        select(&with, s("search"), a, b),
        select(&base, s("search"), a, b),
    );
    let p99 = quantile(latencies(&inc), 0.99) / quantile(latencies(&normal), 0.99);
    assert!(p99 > 4.0, "latency: p99 x{p99}");
    let m = quantile(latencies(&inc), 0.5) / quantile(latencies(&normal), 0.5);
    assert!((0.9..1.2).contains(&m), "latency: median x{m}");
    assert_eq!(error_fraction(&inc), error_fraction(&normal));

    // creep: the median ×3 at the peak (start + 4 h), ×1–1.3 in the first 20 min, recovering.
    let (a, b) = window(3);
    let median_ratio = |from: i64, to: i64| {
        quantile(latencies(&select(&with, s("catalog"), from, to)), 0.5)
            / quantile(latencies(&select(&base, s("catalog"), from, to)), 0.5)
    };
    let peak = a + 4 * HOUR_MS;
    let at_peak = median_ratio(peak - 600_000, peak + 600_000);
    assert!(
        (2.5..3.5).contains(&at_peak),
        "creep: peak median x{at_peak}"
    );
    let early = median_ratio(a, a + 1_200_000);
    assert!((0.95..1.3).contains(&early), "creep: early x{early}");
    let midway = median_ratio(a + 2 * HOUR_MS - 600_000, a + 2 * HOUR_MS + 600_000);
    assert!((1.4..2.2).contains(&midway), "creep: halfway x{midway}");
    let late = median_ratio(b - 600_000, b);
    assert!(late < 1.4, "creep: recovered x{late}");

    // partial: /pay answers 503 for most requests, the other endpoints are normal.
    let (a, b) = window(4);
    let pay = endpoints[s("checkout")]
        .iter()
        .position(|e| e == "/pay")
        .unwrap();
    let inc = select(&with, s("checkout"), a, b);
    let (inc_pay, inc_rest): (Vec<Ev>, Vec<Ev>) = inc.iter().partition(|e| e.endpoint == pay);
    let f = inc_pay.iter().filter(|e| e.status == 503).count() as f64 / inc_pay.len() as f64;
    assert!(f > 0.75, "partial: /pay 503 fraction {f}");
    assert!(error_fraction(&inc_rest) < 0.02, "partial: others");
    assert_eq!(inc.len(), select(&base, s("checkout"), a, b).len());

    // volume surge: ×3 the count, only inside the window.
    let (a, b) = window(5);
    let ratio = select(&with, s("notify"), a, b).len() as f64
        / select(&base, s("notify"), a, b).len() as f64;
    assert!((2.5..3.5).contains(&ratio), "volume: x{ratio}");

    // Outside its service's windows every event is exactly the baseline's.
    let outside = |events: &[Ev]| -> Vec<Ev> {
        events
            .iter()
            .filter(|e| {
                !labels
                    .active(&labels.services[e.service], e.ts)
                    .any(|_| true)
            })
            .copied()
            .collect()
    };
    let (o_with, o_base) = (outside(&with), outside(&base));
    assert!(o_base.len() > base.len() * 8 / 10);
    assert_eq!(o_with, o_base);
    // And the whole run stays sorted with the surge's extra events merged in.
    assert!(with.windows(2).all(|w| w[0].ts <= w[1].ts));
}

#[test]
fn labels_round_trip_and_accept_the_minimal_form() {
    let scenario = Scenario::new(&ScenarioConfig::default()).unwrap();
    let labels = scenario.labels();
    assert_eq!(labels.incidents.len(), 13);
    let json = serde_json::to_string_pretty(&labels).unwrap();
    assert_eq!(
        serde_json::from_str::<ScenarioLabels>(&json).unwrap(),
        labels
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["incidents"][0]["id"], "inc-01");
    assert_eq!(v["incidents"][0]["kind"], "drop");
    assert_eq!(v["incidents"][0]["service"], "checkout");
    assert!(v["incidents"][0]["endpoint"].is_null());
    assert_eq!(v["incidents"][4]["endpoint"], "/pay");
    // Every spec reproduces its incident.
    for (l, i) in labels.incidents.iter().zip(scenario.incidents()) {
        assert_eq!(&l.spec.parse::<Incident>().unwrap(), i);
        assert_eq!(l.kind, i.kind);
    }
    let minimal: ScenarioLabels = serde_json::from_str(
        r#"{"start_ms":0,"end_ms":10,"services":["a"],"incidents":[
            {"id":"inc-01","kind":"partial","service":"a","endpoint":"/x","start_ms":1,"end_ms":2}]}"#,
    )
    .unwrap();
    assert_eq!(minimal.incidents[0].kind, Kind::Partial);
    assert!(minimal.active("a", 1).any(|_| true) && !minimal.active("a", 2).any(|_| true));
    let dir = std::env::temp_dir().join(format!("helios-traffic-labels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("labels.json");
    labels.save(&path).unwrap();
    assert_eq!(ScenarioLabels::load(&path).unwrap(), labels);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[derive(Debug, clap::Parser)]
struct Cli {
    #[command(flatten)]
    args: helios_traffic::Args,
}

#[test]
fn cli_flags() {
    let parse = |a: &[&str]| Cli::try_parse_from([&["traffic"], a].concat()).map(|c| c.args);
    let a = parse(&[
        "--scenario",
        "weeks",
        "--days",
        "3",
        "--services",
        "4",
        "--out",
        "e.ndjson",
        "--labels",
        "l.json",
        "--events-per-window-scale",
        "0.5",
        "--incident",
        "creep:search:at=1d8h:for=6h:x=3:ramp=4h30m",
    ])
    .unwrap();
    assert_eq!(a.scenario, Some(helios_traffic::ScenarioName::Weeks));
    assert_eq!(
        (a.days, a.services, a.events_per_window_scale),
        (3.0, 4, 0.5)
    );
    assert_eq!(a.incidents[0].ramp_secs, Some(16_200.0));
    // The demo mode is unchanged.
    let old = parse(&["--out", "x", "--duration-secs", "30", "--day-secs", "600"]).unwrap();
    assert_eq!((old.scenario, old.duration_secs), (None, 30.0));
    // Demo-only flags conflict with --scenario, scenario-only flags need it.
    assert!(parse(&["--scenario", "weeks", "--duration-secs", "30"]).is_err());
    assert!(parse(&["--scenario", "weeks", "--day-secs", "600"]).is_err());
    assert!(parse(&["--days", "3"]).is_err());
    assert!(parse(&["--labels", "l.json"]).is_err());
    assert!(parse(&["--scenario", "months"]).is_err());
}

#[tokio::test]
async fn the_cli_writes_events_and_labels() {
    let dir = std::env::temp_dir().join(format!("helios-traffic-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (out, labels) = (dir.join("events.ndjson"), dir.join("labels.json"));
    let args = Cli::try_parse_from([
        "traffic",
        "--scenario",
        "weeks",
        "--days",
        "0.5",
        "--services",
        "3",
        "--events-per-window-scale",
        "0.05",
        "--start-ms",
        "1000",
        "--incident",
        "errors:search:at=2h:for=30m:x=0.3",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
    ])
    .unwrap()
    .args;
    let totals = helios_traffic::run(args).await.unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count() as u64, totals.generated);
    assert_eq!(totals.accepted, totals.generated);
    let l = ScenarioLabels::load(&labels).unwrap();
    assert_eq!((l.start_ms, l.end_ms), (1000, 1000 + DAY_MS / 2));
    assert_eq!(l.services, ["checkout", "auth", "search"]);
    assert_eq!(l.incidents.len(), 1);
    assert_eq!(
        (l.incidents[0].start_ms, l.incidents[0].end_ms),
        (1000 + 2 * HOUR_MS, 1000 + 2 * HOUR_MS + 1_800_000)
    );
    std::fs::remove_dir_all(&dir).unwrap();

    // A bad incident is a typed error before anything is written.
    let args = Cli::try_parse_from([
        "traffic",
        "--scenario",
        "weeks",
        "--services",
        "2",
        "--out",
        "/nonexistent/x",
        "--incident",
        "errors:search:at=2h:for=30m:x=0.3",
    ])
    .unwrap()
    .args;
    let err = helios_traffic::run(args).await.unwrap_err();
    assert!(matches!(err, helios_traffic::Error::Scenario(_)), "{err}");
}

/// The default 14-day run: every labelled incident is measurable against the same run without
/// incidents. Slow in debug builds: `cargo test --release -- --ignored --nocapture`.
#[test]
#[ignore]
fn default_fourteen_days() {
    let began = std::time::Instant::now();
    let (n, labels) = write_scenario(&ScenarioConfig::default(), std::io::sink()).unwrap();
    let took = began.elapsed();
    println!("default 14-day run: {n} events in {took:.2?} (written to a sink)");
    let (with, _, endpoints) = generate(&ScenarioConfig::default());
    let (base, _, _) = generate(&ScenarioConfig {
        incidents: Some(vec![]),
        ..ScenarioConfig::default()
    });
    assert_eq!(with.len() as u64, n);
    for s in 0..labels.services.len() {
        let c = with.iter().filter(|e| e.service == s).count();
        println!("  {:<9} {c:>9} events", labels.services[s]);
    }
    for i in &labels.incidents {
        let s = labels
            .services
            .iter()
            .position(|n| n == &i.service)
            .unwrap();
        let (inc, normal) = (
            select(&with, s, i.start_ms, i.end_ms),
            select(&base, s, i.start_ms, i.end_ms),
        );
        let effect = match i.kind {
            Kind::Drop => inc.len() as f64 / normal.len() as f64,
            Kind::Errors => error_fraction(&inc),
            Kind::Latency => quantile(latencies(&inc), 0.99) / quantile(latencies(&normal), 0.99),
            Kind::Creep => {
                let spec: Incident = i.spec.parse().unwrap();
                let peak = i.start_ms + (spec.ramp() * 1000.0) as i64;
                let (a, b) = (peak - 900_000, peak + 900_000);
                quantile(latencies(&select(&with, s, a, b)), 0.5)
                    / quantile(latencies(&select(&base, s, a, b)), 0.5)
            }
            Kind::Partial => {
                let ep = endpoints[s]
                    .iter()
                    .position(|e| Some(e) == i.endpoint.as_ref())
                    .unwrap();
                let on: Vec<Ev> = inc.into_iter().filter(|e| e.endpoint == ep).collect();
                error_fraction(&on)
            }
            Kind::Volume => inc.len() as f64 / normal.len() as f64,
        };
        println!(
            "  {} {:<8} {:<9} {:>6} events (baseline {:>6}): effect {effect:.2}",
            i.id,
            i.kind.to_string(),
            i.service,
            select(&with, s, i.start_ms, i.end_ms).len(),
            normal.len()
        );
        let ok = match i.kind {
            Kind::Drop => (0.15..0.45).contains(&effect),
            Kind::Errors => (0.15..0.45).contains(&effect),
            Kind::Latency => effect > 3.0,
            Kind::Creep => (2.4..3.6).contains(&effect),
            Kind::Partial => effect > 0.7,
            Kind::Volume => true,
        };
        assert!(ok, "{} {}: effect {effect}", i.id, i.kind);
    }
}

/// `--scenario` with `--url`: batches reach a (minimal, in-test) ingest endpoint, a 429 is
/// retried, and every event arrives once, in order.
#[tokio::test]
async fn the_cli_sends_a_scenario_to_ingest() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/events", listener.local_addr().unwrap());
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let sink = received.clone();
    tokio::spawn(async move {
        let mut requests = 0;
        loop {
            let (conn, _) = listener.accept().await.unwrap();
            let mut conn = BufReader::new(conn);
            loop {
                let mut len = None;
                let mut line = String::new();
                loop {
                    line.clear();
                    if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                        break;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        len = v.trim().parse::<usize>().ok();
                    }
                }
                let Some(len) = len else { break };
                let mut body = vec![0; len];
                conn.read_exact(&mut body).await.unwrap();
                requests += 1;
                let reply: &[u8] = if requests == 2 {
                    b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 0\r\ncontent-length: 0\r\n\r\n"
                } else {
                    sink.lock().unwrap().extend_from_slice(&body);
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                };
                conn.get_mut().write_all(reply).await.unwrap();
            }
        }
    });
    let args = Cli::try_parse_from([
        "traffic",
        "--scenario",
        "weeks",
        "--days",
        "0.5",
        "--events-per-window-scale",
        "0.1",
        "--quiet",
        "--url",
        &url,
    ])
    .unwrap()
    .args;
    let totals = helios_traffic::run(args).await.unwrap();
    assert_eq!(totals.retries, 1);
    assert!(totals.generated > 10_000, "{totals:?}");
    assert_eq!(totals.accepted, totals.generated);
    let mut expected = Vec::new();
    let (n, _) = write_scenario(&cfg(0.5, 0.1, None), &mut expected).unwrap();
    assert_eq!(n, totals.generated);
    assert!(
        *received.lock().unwrap() == expected,
        "the same bytes as --out"
    );
}
