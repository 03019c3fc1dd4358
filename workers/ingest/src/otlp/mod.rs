//! OTLP/HTTP ingest: `POST /v1/traces` as the OpenTelemetry Collector's `otlphttp` exporter and
//! the SDKs' OTLP/HTTP exporters send it (protobuf or JSON, optionally gzip).
//!
//! ```text
//! auth ─▶ content type ─▶ size + gzip ─▶ decode ─▶ map spans ─▶ produce (shared with /v1/events)
//!      ─▶ ExportTraceServiceResponse (partialSuccess when spans were rejected)
//! ```
//!
//! Server spans (and non-client spans with HTTP semantic-convention attributes) become events;
//! other spans are skipped, not refused. A span that should become an event but cannot (no
//! `service.name`, a status code outside 100-599, an end before its start, ...) is rejected and
//! counted in `partialSuccess.rejectedSpans`; the request's other events are still produced.
//! Logs (`/v1/logs`) are not mapped: a log record has one timestamp and no duration, and the
//! semantic conventions define no latency attribute on it, so it cannot carry `latency_ms`.

pub mod decode;
pub mod map;
pub mod respond;
pub mod route;
