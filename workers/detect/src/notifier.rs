//! Notifications from the anomalies table used as an outbox: each recorded, not yet notified
//! anomaly is published to the anomalies topic (key = fingerprint), sent to the report hook
//! when it qualifies, and then marked `notified` with the report's URI. Rows left unnotified by
//! a crash are picked up again at start-up, so no alert is lost; the window for a duplicate
//! message is a crash between Kafka's acknowledgement and the `notified` update.

use std::time::Duration;

use chrono::Utc;
use helios_report::ReportRequest;
use tokio::sync::mpsc;

use crate::alertmanager::AlertEvent;
use crate::config::DetectorConfig;
use crate::kafka::AnomalyProducer;
use crate::metrics::Metrics;
use crate::records::AnomalyMessage;
use crate::report::{Decision, ReportClient, ReportLimiter};
use crate::status::StatusHandle;
use crate::store::Store;

/// Windows of context sent with a report.
const REPORT_WINDOWS: i64 = 15;
/// Publish attempts before an anomaly is left in the outbox for the next start.
const PUBLISH_ATTEMPTS: u32 = 5;
/// Anomalies published together at most.
const MAX_BATCH: usize = 256;

/// What the notifier needs.
pub struct Notifier {
    /// Detector configuration.
    pub cfg: DetectorConfig,
    /// Database.
    pub store: Store,
    /// Anomalies topic.
    pub producer: AnomalyProducer,
    /// Report hook, when configured.
    pub reports: Option<(ReportClient, ReportLimiter)>,
    /// Metrics.
    pub metrics: Metrics,
    /// Runtime status (`lastAnomaly.reportUri`).
    pub status: StatusHandle,
    /// The Alertmanager sink (the report link of a firing alert), when configured.
    pub alerts: Option<mpsc::UnboundedSender<AlertEvent>>,
}

impl Notifier {
    /// Notifies every anomaly received until the channel closes, a batch at a time: what one
    /// window close raised (an incident often touches many keys at once) is published together.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<AnomalyMessage>) {
        let mut batch = Vec::new();
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            self.notify(&batch).await;
            batch.clear();
        }
    }

    /// Publishes a batch (retrying what failed), then reports and marks each published one.
    async fn notify(&mut self, batch: &[AnomalyMessage]) {
        let encoded: Vec<(&AnomalyMessage, Vec<u8>)> = batch
            .iter()
            .filter_map(|a| match serde_json::to_vec(a) {
                Ok(p) => Some((a, p)),
                Err(e) => {
                    tracing::error!(error = %e, id = %a.anomaly_id, "cannot encode anomaly");
                    None
                }
            })
            .collect();
        let messages: Vec<(&str, &[u8])> = encoded
            .iter()
            .map(|(a, p)| (a.fingerprint.as_str(), p.as_slice()))
            .collect();
        let first = self.producer.publish_all(&messages).await;
        for ((a, payload), result) in encoded.iter().zip(first) {
            let published = match result {
                Ok(()) => true,
                Err(e) => self.publish_retrying(a, payload, e).await,
            };
            if !published {
                continue;
            }
            self.metrics
                .notifications
                .with_label_values(&["published"])
                .inc();
            let uri = self.report(a).await;
            if let (Some(alerts), Some(uri)) = (&self.alerts, &uri) {
                let _ = alerts.send(AlertEvent::Reported {
                    anomaly_id: a.anomaly_id.clone(),
                    uri: uri.clone(),
                });
            }
            if let Err(e) = self
                .store
                .mark_notified(&a.anomaly_id, a.window_start, uri.as_deref())
                .await
            {
                tracing::error!(error = %e, id = %a.anomaly_id, "cannot mark the anomaly notified");
            }
            tracing::info!(id = %a.anomaly_id, key = %a.key, severity = %a.severity,
                           report = uri.as_deref().unwrap_or("-"), "anomaly notified");
        }
    }

    /// Retries a publication that failed once with `error`; false when it stays in the outbox.
    async fn publish_retrying(
        &self,
        a: &AnomalyMessage,
        payload: &[u8],
        mut error: crate::kafka::KafkaFailure,
    ) -> bool {
        for attempt in 2..=PUBLISH_ATTEMPTS {
            tracing::warn!(error = %error, attempt, id = %a.anomaly_id, "publish failed; retrying");
            tokio::time::sleep(Duration::from_millis(200 << (attempt - 1))).await;
            match self.producer.publish(&a.fingerprint, payload).await {
                Ok(()) => return true,
                Err(e) => error = e,
            }
        }
        self.metrics
            .notifications
            .with_label_values(&["error"])
            .inc();
        tracing::error!(error = %error, id = %a.anomaly_id, "publish failed; left in the outbox");
        false
    }

    async fn report(&mut self, a: &AnomalyMessage) -> Option<String> {
        let (_, limiter) = self.reports.as_mut()?;
        match limiter.check(&a.fingerprint, a.severity(), Utc::now().timestamp_millis()) {
            Decision::Report => {}
            other => {
                self.metrics
                    .notifications
                    .with_label_values(&["report_skipped"])
                    .inc();
                tracing::debug!(id = %a.anomaly_id, decision = ?other, "no report");
                return None;
            }
        }
        let (client, _) = self.reports.as_ref()?;
        let req = self.request(a, client).await?;
        match client.invoke(&req).await {
            Ok(uri) => {
                self.metrics
                    .notifications
                    .with_label_values(&["report"])
                    .inc();
                self.status
                    .update(|s| s.report(&a.fingerprint, a.window_start, &uri));
                Some(uri)
            }
            Err(e) => {
                self.metrics
                    .notifications
                    .with_label_values(&["error"])
                    .inc();
                tracing::warn!(error = %e, id = %a.anomaly_id, "report hook failed");
                None
            }
        }
    }

    async fn request(&self, a: &AnomalyMessage, client: &ReportClient) -> Option<ReportRequest> {
        let recent = self
            .store
            .recent_windows(&a.key, a.window_end, REPORT_WINDOWS)
            .await
            .map_err(|e| tracing::warn!(error = %e, "recent windows unavailable"))
            .unwrap_or_default();
        let related = self
            .store
            .related_keys(&a.key, a.window_start, a.window_end)
            .await
            .map_err(|e| tracing::warn!(error = %e, "related keys unavailable"))
            .unwrap_or_default();
        let severity =
            serde_json::from_value(serde_json::Value::String(a.severity.clone())).ok()?;
        let req = ReportRequest {
            namespace: self.cfg.id.namespace.clone(),
            pipeline: self.cfg.pipeline.clone(),
            detector: self.cfg.id.name.clone(),
            key: a.key.clone(),
            anomaly_id: a.anomaly_id.clone(),
            window_start: a.window_start,
            window_end: a.window_end,
            score: a.score.clamp(0.0, 1.0),
            severity,
            fingerprint: a.fingerprint.clone(),
            explanation: a.explanation.clone(),
            recent_windows: recent,
            related_keys: related,
            report: client.report_config().clone(),
        };
        match req.validate() {
            Ok(()) => Some(req),
            Err(e) => {
                tracing::warn!(error = %e, id = %a.anomaly_id, "report request invalid");
                None
            }
        }
    }
}
