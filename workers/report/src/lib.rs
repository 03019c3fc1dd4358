//! The Helios report hook: takes one anomaly, writes an incident report (Markdown, JSON facts,
//! SVG chart) to S3 at a deterministic key, and answers where it is.
//!
//! It runs as an AWS Lambda function (the `helios-report` binary, or `helios report`), or
//! renders one report from a file (`helios report --local FILE`). The narrative comes from an
//! OpenAI-compatible chat API when configured, else from a deterministic template; the report
//! is complete either way.

pub mod chart;
pub mod error;
pub mod example;
pub mod facts;
pub mod format;
pub mod handler;
pub mod history;
pub mod keys;
pub mod llm;
pub mod markdown;
pub mod narrative;
pub mod prompt;
pub mod request;
pub mod runtime;
pub mod steps;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;

pub use error::Error;
pub use handler::{Handler, HandlerOptions, ReportResponse};
pub use request::ReportRequest;

/// Options of `helios report` (and of the `helios-report` binary).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Render one report from this JSON file (a ReportRequest) instead of serving the Lambda Runtime API.
    #[arg(long, value_name = "FILE")]
    pub local: Option<PathBuf>,
    /// With --local: write the objects under this directory instead of S3.
    #[arg(long, value_name = "DIR", requires = "local")]
    pub out_dir: Option<PathBuf>,
    /// S3 endpoint used when a request names none (MinIO, LocalStack); path-style addressing.
    #[arg(long, env = "HELIOS_REPORT_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// PostgreSQL URL for similar past anomalies (skipped when unset).
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// Serve the Lambda Runtime API forever, or with `--local` render one report and print the response.
pub async fn run(args: Args) -> Result<(), Error> {
    let handler = Handler::new(HandlerOptions {
        s3_endpoint: args.s3_endpoint,
        s3_credentials: None,
        database_url: args.database_url,
        out_dir: args.out_dir,
    })?;
    match args.local {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
                action: "cannot read",
                path: path.clone(),
                source,
            })?;
            let req = ReportRequest::from_json(&text)?;
            let resp = handler.handle(&req).await?;
            println!("{}", serde_json::to_string_pretty(&resp)?);
            Ok(())
        }
        None => runtime::serve(Arc::new(handler)).await,
    }
}
