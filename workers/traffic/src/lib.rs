//! `helios traffic`: realistic synthetic traffic for demos and end-to-end tests — several
//! services with a diurnal shape, log-normal latency and background errors, plus configurable
//! incidents (latency spikes, error bursts, volume drops); reproducible by seed.
//!
//! It sends NDJSON batches to `helios ingest` (honouring 429/503 `Retry-After`), or writes them
//! to a file with `--out`.
//!
//! With `--scenario weeks` it generates a multi-week scenario instead (real event time, daily
//! and weekly shape, a fixed schedule of labelled incidents, `--labels` for the ground truth);
//! see [`scenario`] for the model and the in-process API.

pub mod incident;
pub mod model;
pub mod rng;
pub mod scenario;
pub mod score;

use incident::Incident;
use scenario::{DEFAULT_EVENTS_SCALE, DEFAULT_START_MS, Scenario, ScenarioConfig};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Arguments of `helios traffic`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Ingest endpoint, e.g. `http://127.0.0.1:8080/v1/events`.
    #[arg(long, env = "HELIOS_TRAFFIC_URL")]
    pub url: Option<String>,
    /// Bearer token for the ingest endpoint.
    #[arg(long, env = "HELIOS_TRAFFIC_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Write NDJSON to this file instead of sending.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Simulated seconds to generate.
    #[arg(long, default_value_t = 120.0)]
    pub duration_secs: f64,
    /// Simulated seconds per real second (with --url); 0 sends as fast as possible.
    #[arg(long, default_value_t = 1.0)]
    pub speedup: f64,
    /// Length of a simulated day in seconds.
    #[arg(long, default_value_t = 600.0)]
    pub day_secs: f64,
    /// Multiplier on every service's rate.
    #[arg(long, default_value_t = 1.0)]
    pub rate_scale: f64,
    /// Event time of the first simulated second (epoch ms; default: now; with --scenario,
    /// Monday 2026-01-05 00:00 UTC).
    #[arg(long)]
    pub start_ms: Option<i64>,
    /// Incident `kind:service:at=T:for=T:x=F[:p=F][:ep=/endpoint][:ramp=T]` (kind
    /// latency|errors|volume|drop|creep|partial; T seconds or e.g. 3d12h, 45m); repeatable.
    /// With --scenario they replace the default schedule.
    #[arg(long = "incident")]
    pub incidents: Vec<Incident>,
    /// Simulated seconds per batch.
    #[arg(long, default_value_t = 1.0)]
    pub step_secs: f64,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
    /// Generate a scenario instead of the demo stream, as fast as possible, in real event time
    /// (`weeks`: --days of --services services with daily and weekly shape and a fixed
    /// schedule of incidents over days 4–14).
    #[arg(
        long,
        value_enum,
        conflicts_with_all = ["duration_secs", "day_secs", "rate_scale", "step_secs", "speedup"]
    )]
    pub scenario: Option<ScenarioName>,
    /// Scenario: simulated days (of 86,400 s of event time).
    #[arg(long, default_value_t = 14.0, requires = "scenario")]
    pub days: f64,
    /// Scenario: number of services (checkout, auth, search, catalog, notify, then variants).
    #[arg(long, default_value_t = 5, requires = "scenario")]
    pub services: usize,
    /// Scenario: multiplier on the nominal per-service rates (0.8–5 events/s); the default
    /// gives about 2.5 million events in 14 days with 5 services.
    #[arg(long, default_value_t = DEFAULT_EVENTS_SCALE, requires = "scenario")]
    pub events_per_window_scale: f64,
    /// Scenario: write the ground-truth labels (time range, services, incidents) to this JSON
    /// file.
    #[arg(long, requires = "scenario")]
    pub labels: Option<PathBuf>,
}

/// A named scenario of `--scenario`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScenarioName {
    /// Days to weeks of several services with daily/weekly shape and labelled incidents.
    Weeks,
}

/// Why the generator stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither --url nor --out was given.
    #[error("give --url (send to helios ingest) or --out (write NDJSON)")]
    NoSink,
    /// Writing the output failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The endpoint refused a batch for good (4xx other than 429) or never accepted it.
    #[error("ingest refused a batch: {0}")]
    Refused(String),
    /// The HTTP client failed.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// The scenario configuration is invalid.
    #[error(transparent)]
    Scenario(#[from] scenario::ScenarioError),
    /// The generator thread died.
    #[error("scenario generator: {0}")]
    Generator(String),
}

/// Totals of a run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Events generated.
    pub generated: u64,
    /// Events acknowledged by ingest (or written).
    pub accepted: u64,
    /// Batches retried after 429/503.
    pub retries: u64,
}

/// Run the generator.
pub async fn run(args: Args) -> Result<Totals, Error> {
    if args.scenario.is_some() {
        return run_scenario(&args).await;
    }
    let start_ms = args.start_ms.unwrap_or_else(now_ms);
    let mut model = model::Model::new(args.seed, start_ms);
    model.incidents = args.incidents.clone();
    model.day_secs = args.day_secs;
    model.rate_scale = args.rate_scale;
    let mut file = match &args.out {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?,
        )),
        None if args.url.is_none() => return Err(Error::NoSink),
        None => None,
    };
    let client = reqwest::Client::new();
    let began = Instant::now();
    let mut totals = Totals::default();
    let mut t = 0.0;
    while t < args.duration_secs {
        let t1 = (t + args.step_secs).min(args.duration_secs);
        let events = model.generate(t, t1);
        totals.generated += events.len() as u64;
        let body: String = events.iter().map(|e| e.to_string() + "\n").collect();
        if let (Some(f), Some(path)) = (file.as_mut(), args.out.as_ref()) {
            f.write_all(body.as_bytes()).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            totals.accepted += events.len() as u64;
        } else if let Some(url) = &args.url {
            if !events.is_empty() {
                totals.retries +=
                    send(&client, url, args.token.as_deref(), body.into_bytes()).await?;
                totals.accepted += events.len() as u64;
            }
            if args.speedup > 0.0 {
                let due = Duration::from_secs_f64(t1 / args.speedup);
                if let Some(wait) = due.checked_sub(began.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let step_no = (t1 / args.step_secs).round() as u64;
        if !args.quiet && (tty || step_no.is_multiple_of(10) || t1 >= args.duration_secs) {
            let active: Vec<String> = model
                .active_incidents(t)
                .iter()
                .map(|i| format!("{:?} {} x{}", i.kind, i.service, i.factor))
                .collect();
            eprint!(
                "{}[{:>6.0}s/{:.0}s] generated {:>9}  accepted {:>9}  {}{:<40}",
                if tty { "\r" } else { "\n" },
                t1,
                args.duration_secs,
                totals.generated,
                totals.accepted,
                if active.is_empty() { "" } else { "INCIDENT: " },
                active.join(", ")
            );
        }
        t = t1;
    }
    if let (Some(mut f), Some(path)) = (file, args.out.as_ref()) {
        f.flush().map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
    }
    if !args.quiet {
        eprintln!();
    }
    Ok(totals)
}

/// The generator thread's result, re-raising its panic.
fn joined<T>(r: Result<T, tokio::task::JoinError>) -> Result<T, Error> {
    match r {
        Ok(v) => Ok(v),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::Generator(e.to_string())),
    }
}

/// Events per request when a scenario is sent to `--url`.
const SCENARIO_BATCH: u64 = 5_000;

/// `--scenario`: generate on a blocking thread, write to `--out` or send batches to `--url`
/// as fast as ingest accepts them, then write `--labels`.
async fn run_scenario(args: &Args) -> Result<Totals, Error> {
    if args.out.is_none() && args.url.is_none() {
        return Err(Error::NoSink);
    }
    let cfg = ScenarioConfig {
        days: args.days,
        services: args.services,
        seed: args.seed,
        events_scale: args.events_per_window_scale,
        start_ms: args.start_ms.unwrap_or(DEFAULT_START_MS),
        incidents: (!args.incidents.is_empty()).then(|| args.incidents.clone()),
    };
    let scenario = Scenario::new(&cfg)?;
    let labels = scenario.labels();
    let began = Instant::now();
    let mut totals = Totals::default();
    if let Some(path) = args.out.clone() {
        let io_err = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let file = std::fs::File::create(&path).map_err(io_err)?;
        let written = tokio::task::spawn_blocking(move || scenario.write_ndjson(file)).await;
        let n = joined(written)?.map_err(io_err)?;
        totals.generated = n;
        totals.accepted = n;
    } else if let Some(url) = &args.url {
        let client = reqwest::Client::new();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(Vec<u8>, u64)>(4);
        let generator = tokio::task::spawn_blocking(move || {
            let (mut buf, mut n) = (Vec::new(), 0u64);
            let done = scenario.for_each_event(|e| {
                e.write_json(&mut buf);
                n += 1;
                if n == SCENARIO_BATCH {
                    n = 0;
                    tx.blocking_send((std::mem::take(&mut buf), SCENARIO_BATCH))
                        .map_err(|_| ())?;
                }
                Ok(())
            });
            if done.is_ok() && n > 0 {
                let _ = tx.blocking_send((buf, n));
            }
            done
        });
        while let Some((body, n)) = rx.recv().await {
            totals.retries += send(&client, url, args.token.as_deref(), body).await?;
            totals.accepted += n;
            if !args.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                eprint!("\rsent {:>10} events", totals.accepted);
            }
        }
        totals.generated = joined(generator.await)?
            .map_err(|()| Error::Generator("the sender stopped early".into()))?;
    }
    if let Some(path) = &args.labels {
        labels.save(path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
    }
    if !args.quiet {
        eprintln!(
            "\rscenario weeks: {} days, {} services, {} events in {:.1} s, {} incidents",
            args.days,
            labels.services.len(),
            totals.generated,
            began.elapsed().as_secs_f64(),
            labels.incidents.len()
        );
        for i in &labels.incidents {
            let from = i.start_ms - labels.start_ms;
            eprintln!(
                "  {} {:<8} {:<9} {:<9} day {:>2} {:02}:{:02} for {} min",
                i.id,
                i.kind,
                i.service,
                i.endpoint.as_deref().unwrap_or("*"),
                from / 86_400_000 + 1,
                from % 86_400_000 / 3_600_000,
                from % 3_600_000 / 60_000,
                (i.end_ms - i.start_ms) / 60_000
            );
        }
    }
    Ok(totals)
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> Result<u64, Error> {
    for attempt in 0..10u64 {
        let mut req = client
            .post(url)
            .header("content-type", "application/x-ndjson")
            .body(body.clone());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(attempt);
        }
        if status.as_u16() == 429 || status.as_u16() == 503 {
            let wait = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(wait.min(10))).await;
            continue;
        }
        let text = resp.text().await.unwrap_or_default();
        return Err(Error::Refused(format!("{status}: {text}")));
    }
    Err(Error::Refused(
        "still refused after 10 attempts (429/503)".into(),
    ))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
