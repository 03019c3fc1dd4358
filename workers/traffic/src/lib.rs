//! `helios traffic`: realistic synthetic traffic for demos and end-to-end tests — several
//! services with a diurnal shape, log-normal latency and background errors, plus configurable
//! incidents (latency spikes, error bursts, volume drops); reproducible by seed.
//!
//! It sends NDJSON batches to `helios ingest` (honouring 429/503 `Retry-After`), or writes them
//! to a file with `--out`.

pub mod incident;
pub mod model;
pub mod rng;

use incident::Incident;
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
    /// Event time of the first simulated second (epoch ms; default: now).
    #[arg(long)]
    pub start_ms: Option<i64>,
    /// Incident `kind:service:at=S:for=S:x=F` (kind latency|errors|volume); repeatable.
    #[arg(long = "incident")]
    pub incidents: Vec<Incident>,
    /// Simulated seconds per batch.
    #[arg(long, default_value_t = 1.0)]
    pub step_secs: f64,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
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
                totals.retries += send(&client, url, args.token.as_deref(), body).await?;
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

async fn send(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: String,
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
