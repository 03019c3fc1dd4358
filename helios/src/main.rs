//! `helios`: one binary for the operator and every worker; each role is a subcommand.

mod cmd;
mod telemetry;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Helios: anomaly-detection pipelines on Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "helios", version, about, long_about = None)]
struct Cli {
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, env = "HELIOS_LOG_FORMAT", default_value = "text", global = true)]
    log_format: telemetry::LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// The roles of the binary.
#[derive(Debug, Subcommand)]
enum Command {
    /// Write the CRD YAML generated from the API types (or --check it is current).
    Crdgen(cmd::crdgen::Args),
    /// Print the version and the API group/version this build serves.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let result = match &cli.command {
        Command::Crdgen(args) => cmd::crdgen::run(args).map_err(|e| e.to_string()),
        Command::Version => {
            println!(
                "helios {} (API {}/{})",
                env!("CARGO_PKG_VERSION"),
                helios_crds::GROUP,
                helios_crds::VERSION
            );
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}
