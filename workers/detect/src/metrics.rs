//! Prometheus metrics of the detector worker, served on `/metrics`.

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric the worker exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Events consumed, by outcome (`accepted`, `filtered`, `late`, `invalid`).
    pub events: IntCounterVec,
    /// Consumer lag per partition (from librdkafka statistics).
    pub consumer_lag: IntGaugeVec,
    /// Windows written, by state (`warming_up`, `scored`).
    pub windows: IntCounterVec,
    /// Windows not re-emitted because they were written before (replay, idle close).
    pub windows_skipped: IntCounter,
    /// Anomalies (new alert episodes) by severity.
    pub anomalies: IntCounterVec,
    /// Notifications by outcome (`published`, `report`, `report_skipped`, `error`).
    pub notifications: IntCounterVec,
    /// Time to score one window (model, explanation, policy).
    pub scoring_latency: Histogram,
    /// Time from a batch of windows closing to its results being committed in PostgreSQL.
    pub write_latency: Histogram,
    /// Event-time watermark (ms since the epoch).
    pub watermark: IntGauge,
    /// Writes of the runtime status to the Detector, by outcome (`applied`, `unchanged`, `error`).
    pub status_writes: IntCounterVec,
    /// Latest score of each of the top keys by recent score (see `score_board`).
    pub score: GaugeVec,
    /// Threshold in force for each of the top keys.
    pub threshold: GaugeVec,
    /// Event time the current model of each top key has been scoring (seconds).
    pub model_age: GaugeVec,
    /// Windows in the training history of each top key.
    pub training_windows: IntGaugeVec,
    /// Highest latest score over every key.
    pub score_max: Gauge,
    /// Keys by state (`scored`, `warming_up`).
    pub keys: IntGaugeVec,
    /// Alerts posted to Alertmanager, by outcome (`posted`, `too_old`, `unreachable`,
    /// `refused`, `config`).
    pub alertmanager_posts: IntCounterVec,
    /// Alerts this worker keeps firing in Alertmanager.
    pub alertmanager_firing: IntGauge,
    /// Feedback labels on this detector's anomalies, by label.
    pub feedback_labels: IntGaugeVec,
    /// Anomalies a false-positive label kept from alerting.
    pub anomalies_suppressed: IntCounter,
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let events = IntCounterVec::new(
            Opts::new("helios_detect_events_total", "Events consumed, by outcome"),
            &["outcome"],
        )?;
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                "helios_detect_consumer_lag",
                "Consumer lag in messages per partition",
            ),
            &["partition"],
        )?;
        let windows = IntCounterVec::new(
            Opts::new("helios_detect_windows_total", "Windows written, by state"),
            &["state"],
        )?;
        let windows_skipped = IntCounter::new(
            "helios_detect_windows_skipped_total",
            "Windows emitted again after a replay or idle close and skipped",
        )?;
        let anomalies = IntCounterVec::new(
            Opts::new("helios_detect_anomalies_total", "New anomalies by severity"),
            &["severity"],
        )?;
        let notifications = IntCounterVec::new(
            Opts::new(
                "helios_detect_notifications_total",
                "Notifications by outcome",
            ),
            &["outcome"],
        )?;
        let buckets = vec![
            0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0,
        ];
        let scoring_latency = Histogram::with_opts(
            HistogramOpts::new(
                "helios_detect_scoring_latency_seconds",
                "Time to score one window",
            )
            .buckets(buckets.clone()),
        )?;
        let write_latency = Histogram::with_opts(
            HistogramOpts::new(
                "helios_detect_close_to_durable_seconds",
                "Window close to results committed in PostgreSQL",
            )
            .buckets(buckets.into_iter().chain([2.5, 5.0, 10.0]).collect()),
        )?;
        let watermark = IntGauge::new("helios_detect_watermark_ms", "Event-time watermark")?;
        let status_writes = IntCounterVec::new(
            Opts::new(
                "helios_detect_status_writes_total",
                "Writes of the runtime status to the Detector object, by outcome",
            ),
            &["outcome"],
        )?;
        let score = GaugeVec::new(
            Opts::new(
                "helios_detect_score",
                "Latest window score of the top keys by recent score",
            ),
            &["key"],
        )?;
        let threshold = GaugeVec::new(
            Opts::new(
                "helios_detect_threshold",
                "Score threshold in force for the top keys",
            ),
            &["key"],
        )?;
        let model_age = GaugeVec::new(
            Opts::new(
                "helios_detect_model_age_seconds",
                "Event time the current model of a top key has been scoring",
            ),
            &["key"],
        )?;
        let training_windows = IntGaugeVec::new(
            Opts::new(
                "helios_detect_model_training_windows",
                "Windows in the training history of a top key",
            ),
            &["key"],
        )?;
        let score_max = Gauge::new(
            "helios_detect_score_max",
            "Highest latest window score over every key",
        )?;
        let keys = IntGaugeVec::new(Opts::new("helios_detect_keys", "Keys by state"), &["state"])?;
        let alertmanager_posts = IntCounterVec::new(
            Opts::new(
                "helios_detect_alertmanager_posts_total",
                "Alerts posted to Alertmanager, by outcome",
            ),
            &["outcome"],
        )?;
        let alertmanager_firing = IntGauge::new(
            "helios_detect_alertmanager_firing",
            "Alerts this worker keeps firing in Alertmanager",
        )?;
        let feedback_labels = IntGaugeVec::new(
            Opts::new(
                "helios_detect_feedback_labels",
                "Feedback labels on this detector's anomalies, by label",
            ),
            &["label"],
        )?;
        let anomalies_suppressed = IntCounter::new(
            "helios_detect_anomalies_suppressed_total",
            "Anomalies a false-positive label kept from alerting",
        )?;
        registry.register(Box::new(feedback_labels.clone()))?;
        registry.register(Box::new(anomalies_suppressed.clone()))?;
        registry.register(Box::new(alertmanager_posts.clone()))?;
        registry.register(Box::new(alertmanager_firing.clone()))?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(consumer_lag.clone()))?;
        registry.register(Box::new(windows.clone()))?;
        registry.register(Box::new(windows_skipped.clone()))?;
        registry.register(Box::new(anomalies.clone()))?;
        registry.register(Box::new(notifications.clone()))?;
        registry.register(Box::new(scoring_latency.clone()))?;
        registry.register(Box::new(write_latency.clone()))?;
        registry.register(Box::new(watermark.clone()))?;
        registry.register(Box::new(status_writes.clone()))?;
        registry.register(Box::new(score.clone()))?;
        registry.register(Box::new(threshold.clone()))?;
        registry.register(Box::new(model_age.clone()))?;
        registry.register(Box::new(training_windows.clone()))?;
        registry.register(Box::new(score_max.clone()))?;
        registry.register(Box::new(keys.clone()))?;
        Ok(Self {
            feedback_labels,
            anomalies_suppressed,
            alertmanager_posts,
            alertmanager_firing,
            registry,
            events,
            consumer_lag,
            windows,
            windows_skipped,
            anomalies,
            notifications,
            scoring_latency,
            write_latency,
            watermark,
            status_writes,
            score,
            threshold,
            model_age,
            training_windows,
            score_max,
            keys,
        })
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_registered_metrics() {
        let m = Metrics::new().unwrap();
        m.events.with_label_values(&["accepted"]).inc();
        m.anomalies.with_label_values(&["Critical"]).inc();
        m.scoring_latency.observe(0.001);
        let text = m.render();
        assert!(text.contains("helios_detect_events_total{outcome=\"accepted\"} 1"));
        assert!(text.contains("helios_detect_anomalies_total{severity=\"Critical\"} 1"));
        assert!(text.contains("helios_detect_scoring_latency_seconds_bucket"));
    }
}
