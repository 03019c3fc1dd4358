//! Prometheus metrics of the ingestion worker, served on `/metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Every metric the worker exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests by HTTP status.
    pub requests: IntCounterVec,
    /// Events acknowledged by Kafka.
    pub events_accepted: prometheus::IntCounter,
    /// Events refused, by reason.
    pub events_refused: IntCounterVec,
    /// Time from enqueue to Kafka acknowledgement of a whole request.
    pub produce_latency: Histogram,
    /// Messages in the producer queue (not yet acknowledged).
    pub queue_depth: IntGauge,
    /// 1 while the circuit breaker is open.
    pub breaker_open: IntGauge,
    /// OTLP spans received, by outcome (`event`, `skipped`, `rejected`).
    pub otlp_spans: IntCounterVec,
    /// Requests shed (503) because every admission slot was taken.
    pub requests_shed: prometheus::IntCounter,
}

impl Metrics {
    /// Register every metric in a fresh registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "helios_ingest_requests_total",
                "HTTP requests to /v1/events and /v1/traces by status code",
            ),
            &["status"],
        )?;
        let events_accepted = prometheus::IntCounter::new(
            "helios_ingest_events_accepted_total",
            "Events acknowledged by Kafka",
        )?;
        let events_refused = IntCounterVec::new(
            Opts::new(
                "helios_ingest_events_refused_total",
                "Events refused, by reason",
            ),
            &["reason"],
        )?;
        let produce_latency = Histogram::with_opts(
            HistogramOpts::new(
                "helios_ingest_produce_latency_seconds",
                "Enqueue to Kafka acknowledgement of every event of a request",
            )
            .buckets(vec![
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )?;
        let queue_depth = IntGauge::new(
            "helios_ingest_producer_queue_depth",
            "Messages awaiting acknowledgement",
        )?;
        let breaker_open = IntGauge::new(
            "helios_ingest_breaker_open",
            "1 while the Kafka circuit breaker is open",
        )?;
        let otlp_spans = IntCounterVec::new(
            Opts::new(
                "helios_ingest_otlp_spans_total",
                "OTLP spans received on /v1/traces, by outcome (event, skipped, rejected)",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(otlp_spans.clone()))?;
        let requests_shed = prometheus::IntCounter::new(
            "helios_ingest_requests_shed_total",
            "Requests answered 503 at once because --max-concurrent-requests were in progress",
        )?;
        registry.register(Box::new(requests_shed.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(events_accepted.clone()))?;
        registry.register(Box::new(events_refused.clone()))?;
        registry.register(Box::new(produce_latency.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(breaker_open.clone()))?;
        Ok(Self {
            registry,
            requests,
            events_accepted,
            events_refused,
            produce_latency,
            queue_depth,
            breaker_open,
            otlp_spans,
            requests_shed,
        })
    }

    /// The text exposition format of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}
