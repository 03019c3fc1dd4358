//! `helios-report`: the Lambda bootstrap of the report hook (same as `helios report`).

use std::process::ExitCode;

use clap::Parser;

/// The Helios report hook (Lambda bootstrap).
#[derive(Debug, Parser)]
#[command(name = "helios-report", version, about)]
struct Cli {
    #[command(flatten)]
    args: helios_report::Args,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    match helios_report::run(cli.args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
