//! Logging and tracing set-up shared by every subcommand: `RUST_LOG`-style filtering, text or
//! JSON log lines, and OpenTelemetry span export over OTLP/HTTP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

/// How log lines are written.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Flushes exported spans when dropped (at the end of `main`).
pub struct Guard(Option<SdkTracerProvider>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(Err(e)) = self.0.take().map(|p| p.shutdown()) {
            eprintln!("helios: flushing OpenTelemetry spans failed: {e}");
        }
    }
}

/// Whether the environment asks for span export.
fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()))
}

fn tracer_provider(service: &str) -> Option<SdkTracerProvider> {
    if !otlp_configured() {
        return None;
    }
    match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(exporter) => Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    Resource::builder()
                        .with_service_name(service.to_string())
                        .build(),
                )
                .build(),
        ),
        Err(e) => {
            eprintln!("helios: OpenTelemetry export disabled: {e}");
            None
        }
    }
}

/// Install the global subscriber (filter from `RUST_LOG`, default `info`); `service` names the
/// OpenTelemetry resource (e.g. `helios-ingest`).
pub fn init(format: LogFormat, service: &str) -> Guard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match format {
        LogFormat::Text => fmt::layer().with_writer(std::io::stderr).boxed(),
        LogFormat::Json => fmt::layer().json().with_writer(std::io::stderr).boxed(),
    };
    let provider = tracer_provider(service);
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("helios")));
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(otel)
        .init();
    Guard(provider)
}
