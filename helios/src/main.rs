//! `helios`: one binary for the operator and every worker; each role is a subcommand.

mod telemetry;

use helios::cmd;

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
    /// Replay recorded events through a Detector: what would have alerted, and with labels how well.
    Backtest(cmd::backtest::Args),
    /// Write the CRD YAML generated from the API types (or --check it is current).
    Crdgen(cmd::crdgen::Args),
    /// Run a detector worker: Kafka events → windows → model → anomalies (PostgreSQL, Kafka, report hook).
    Detect(Box<helios_detect::Args>),
    /// Evaluate the detection library on labelled data (NAB, scikit-learn comparison).
    Eval(cmd::eval::Args),
    /// Run the ingestion worker: HTTP events into Kafka.
    Ingest(Box<helios_ingest::Args>),
    /// Run the operator: reconcile AnomalyPipelines and Detectors into topics and workloads.
    Operator(Box<helios_operator::Args>),
    /// Run the report hook (Lambda runtime), or render one report with --local.
    Report(Box<helios_report::Args>),
    /// Send realistic synthetic traffic (with incidents) to helios ingest, or write NDJSON.
    Traffic(Box<helios_traffic::Args>),
    /// Print the version and the API group/version this build serves.
    Version,
}

/// Run an async subcommand on a multi-threaded runtime; errors become a message.
fn block_on<E: std::fmt::Display>(
    fut: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    runtime.block_on(fut).map_err(|e| e.to_string())
}

impl Command {
    /// The subcommand's name (used as the OpenTelemetry service name suffix).
    fn name(&self) -> &'static str {
        match self {
            Command::Backtest(_) => "backtest",
            Command::Crdgen(_) => "crdgen",
            Command::Detect(_) => "detect",
            Command::Eval(_) => "eval",
            Command::Ingest(_) => "ingest",
            Command::Operator(_) => "operator",
            Command::Report(_) => "report",
            Command::Traffic(_) => "traffic",
            Command::Version => "version",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let service = format!("helios-{}", cli.command.name());
    let _telemetry = telemetry::init(cli.log_format, &service);
    let result = match &cli.command {
        Command::Backtest(args) => cmd::backtest::run(args).map_err(|e| e.to_string()),
        Command::Crdgen(args) => cmd::crdgen::run(args).map_err(|e| e.to_string()),
        Command::Detect(args) => block_on(helios_detect::run((**args).clone())),
        Command::Eval(args) => cmd::eval::run(args).map_err(|e| e.to_string()),
        Command::Ingest(args) => block_on(helios_ingest::run((**args).clone())),
        Command::Operator(args) => block_on(helios_operator::run((**args).clone())),
        Command::Report(args) => block_on(helios_report::run((**args).clone())),
        Command::Traffic(args) => block_on(async {
            let totals = helios_traffic::run((**args).clone()).await?;
            println!(
                "generated {} events, accepted {}, retried batches {}",
                totals.generated, totals.accepted, totals.retries
            );
            Ok::<(), helios_traffic::Error>(())
        }),
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
