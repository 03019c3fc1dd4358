//! Prometheus metrics: reconciles, errors by reason, reconcile duration, pipelines by readiness,
//! leadership, detect workers found silent.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// The operator's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    reconciles: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    pipelines: IntGaugeVec,
    probes: IntCounterVec,
    events_dropped: IntCounter,
    leader: IntGauge,
    overrides: IntCounterVec,
    readiness: Mutex<BTreeMap<String, bool>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Metric registration failed (a programming error: duplicate or invalid names).
#[derive(Debug, thiserror::Error)]
#[error("cannot register metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    /// Create and register every metric.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new_custom(Some("helios_operator".into()), None)?;
        let reconciles = IntCounterVec::new(
            Opts::new("reconciles_total", "Reconciles started, by kind"),
            &["kind"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "reconcile_errors_total",
                "Failed reconciles, by kind and reason",
            ),
            &["kind", "reason"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("reconcile_duration_seconds", "Reconcile duration, by kind")
                .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["kind"],
        )?;
        let pipelines = IntGaugeVec::new(
            Opts::new("pipelines", "Pipelines by their Ready condition"),
            &["ready"],
        )?;
        let probes = IntCounterVec::new(
            Opts::new(
                "external_probes_total",
                "Probes of a pipeline's external systems (Kafka topics and the report hook \
                 together), by outcome: probed, or reused within the TTL",
            ),
            &["outcome"],
        )?;
        let events_dropped = IntCounter::new(
            "events_dropped_total",
            "Kubernetes Events dropped because the background publisher's queue was full",
        )?;
        let leader = IntGauge::new("leader", "1 while this replica holds the Lease")?;
        let overrides = IntCounterVec::new(
            Opts::new(
                "runtime_condition_overrides_total",
                "Detectors whose runtime conditions the operator set to Unknown, by reason \
                 (WorkerSilent: no worker heartbeat within the timeout); one per transition",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(pipelines.clone()))?;
        registry.register(Box::new(probes.clone()))?;
        registry.register(Box::new(events_dropped.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        registry.register(Box::new(overrides.clone()))?;
        Ok(Self {
            registry,
            reconciles,
            errors,
            duration,
            pipelines,
            probes,
            events_dropped,
            leader,
            overrides,
            readiness: Mutex::new(BTreeMap::new()),
        })
    }

    /// Count a reconcile of `kind` that took `elapsed`.
    pub fn reconciled(&self, kind: &str, elapsed: Duration) {
        self.reconciles.with_label_values(&[kind]).inc();
        self.duration
            .with_label_values(&[kind])
            .observe(elapsed.as_secs_f64());
    }

    /// Count a failed reconcile.
    pub fn failed(&self, kind: &str, reason: &str) {
        self.errors.with_label_values(&[kind, reason]).inc();
    }

    /// Count a probe of external systems (`reused`: a healthy earlier one within its TTL).
    pub fn probe(&self, reused: bool) {
        let outcome = if reused { "reused" } else { "probed" };
        self.probes.with_label_values(&[outcome]).inc();
    }

    /// Count a Detector whose runtime conditions turned `Unknown` for `reason` (the condition
    /// reason, e.g. `WorkerSilent`).
    pub fn runtime_override(&self, reason: &str) {
        self.overrides.with_label_values(&[reason]).inc();
    }

    /// Count an Event dropped because its publisher's queue was full.
    pub fn event_dropped(&self) {
        self.events_dropped.inc();
    }

    /// Record the readiness of pipeline `key` (`None` when it is gone).
    pub fn pipeline_ready(&self, key: &str, ready: Option<bool>) {
        let Ok(mut map) = self.readiness.lock() else {
            return;
        };
        match ready {
            Some(r) => map.insert(key.to_string(), r),
            None => map.remove(key),
        };
        self.set_pipeline_gauges(&map);
    }

    /// Keep only the pipelines whose key is `alive` (the others were deleted).
    pub fn retain_pipelines(&self, alive: impl Fn(&str) -> bool) {
        let Ok(mut map) = self.readiness.lock() else {
            return;
        };
        map.retain(|k, _| alive(k));
        self.set_pipeline_gauges(&map);
    }

    fn set_pipeline_gauges(&self, map: &BTreeMap<String, bool>) {
        let ready = map.values().filter(|r| **r).count();
        let total = map.len();
        self.pipelines
            .with_label_values(&["true"])
            .set(i64::try_from(ready).unwrap_or(i64::MAX));
        self.pipelines
            .with_label_values(&["false"])
            .set(i64::try_from(total - ready).unwrap_or(i64::MAX));
    }

    /// Record whether this replica leads.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if encoder.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_readiness() -> Result<(), MetricsError> {
        let m = Metrics::new()?;
        m.reconciled("AnomalyPipeline", Duration::from_millis(20));
        m.failed("AnomalyPipeline", "ApplyFailed");
        m.pipeline_ready("ns/a", Some(true));
        m.pipeline_ready("ns/b", Some(false));
        m.pipeline_ready("ns/c", Some(false));
        m.pipeline_ready("ns/c", None);
        m.runtime_override("WorkerSilent");
        let text = m.render();
        assert!(text.contains(
            "helios_operator_runtime_condition_overrides_total{reason=\"WorkerSilent\"} 1"
        ));
        assert!(text.contains("helios_operator_reconciles_total{kind=\"AnomalyPipeline\"} 1"));
        assert!(text.contains("reason=\"ApplyFailed\""));
        assert!(text.contains("helios_operator_pipelines{ready=\"true\"} 1"));
        assert!(text.contains("helios_operator_pipelines{ready=\"false\"} 1"));
        assert!(text.contains("helios_operator_reconcile_duration_seconds_bucket"));
        Ok(())
    }
}
