//! Anomalies as Prometheus Alertmanager alerts: each new anomaly is posted at once (before the
//! anomalies topic and the report hook), re-posted every `resend` while its episode lasts so it
//! stays firing, updated with its report link, and resolved (`endsAt`) when the episode ends.
//! Alertmanager's grouping, inhibition, silences and routing to Slack/PagerDuty/Opsgenie then
//! apply. The labels are stable per episode, so a restarted worker that re-posts the anomalies
//! still open in PostgreSQL continues the same alerts (no second notification). Anomalies whose
//! firing window ended longer than `max_age` ago (a replay of history) are recorded, not paged.

pub mod alert;
pub mod client;

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

pub use alert::{PostableAlert, Tracker};
pub use client::{AlertmanagerClient, AlertmanagerError, Auth};

use crate::metrics::Metrics;
use crate::records::AnomalyMessage;

/// Events posted together at most.
const MAX_BATCH: usize = 256;

/// What happened to an anomaly, for its alert.
#[derive(Debug, Clone)]
pub enum AlertEvent {
    /// A new anomaly (or one still open at start-up).
    Fired(Box<AnomalyMessage>),
    /// Its report was written at `uri`.
    Reported {
        /// The anomaly.
        anomaly_id: String,
        /// Its report's S3 URI.
        uri: String,
    },
    /// Its episode ended.
    Resolved {
        /// The anomaly.
        anomaly_id: String,
    },
}

/// Alertmanager settings of a worker.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// Interval between re-posts of the firing alerts.
    pub resend: Duration,
    /// Oldest firing window (wall clock) that still pages.
    pub max_age: Duration,
}

impl AlertSettings {
    /// How long a posted firing alert lives without a re-post: four re-sends, as Prometheus
    /// does, so a missed post or two does not resolve it.
    pub fn lifetime(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.resend * 4).unwrap_or(chrono::Duration::minutes(4))
    }

    /// Whether an anomaly is recent enough to page at `now`.
    pub fn pages(&self, m: &AnomalyMessage, now: DateTime<Utc>) -> bool {
        let age = chrono::Duration::from_std(self.max_age).unwrap_or(chrono::Duration::MAX);
        m.window_end + age >= now
    }
}

/// The task that keeps Alertmanager in step with the anomalies.
pub struct AlertSink {
    /// Alertmanager(s).
    pub client: AlertmanagerClient,
    /// Re-send and age settings.
    pub settings: AlertSettings,
    /// `helios_detect_alertmanager_*` metrics.
    pub metrics: Metrics,
}

impl AlertSink {
    /// Applies events until the channel closes; re-posts the firing alerts every `resend`.
    /// On shutdown the firing alerts are left to live out their `endsAt` (a restart re-posts
    /// them before then).
    pub async fn run(self, mut rx: mpsc::UnboundedReceiver<AlertEvent>) {
        let mut tracker = Tracker::new(self.settings.lifetime());
        let mut tick = tokio::time::interval(self.settings.resend);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut batch = Vec::new();
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, MAX_BATCH) => {
                    if n == 0 {
                        break;
                    }
                    let now = Utc::now();
                    let alerts: Vec<PostableAlert> = batch
                        .drain(..)
                        .filter_map(|e| self.apply(&mut tracker, e, now))
                        .collect();
                    self.send(&mut tracker, alerts).await;
                }
                _ = tick.tick() => {
                    let alerts = tracker.due(Utc::now());
                    self.send(&mut tracker, alerts).await;
                }
            }
        }
    }

    /// The alert to post for `event`, if any.
    fn apply(
        &self,
        t: &mut Tracker,
        event: AlertEvent,
        now: DateTime<Utc>,
    ) -> Option<PostableAlert> {
        match event {
            AlertEvent::Fired(m) if self.settings.pages(&m, now) => Some(t.fire(&m, now)),
            AlertEvent::Fired(m) => {
                tracing::debug!(id = %m.anomaly_id, end = %m.window_end, "anomaly too old to page");
                self.metrics
                    .alertmanager_posts
                    .with_label_values(&["too_old"])
                    .inc();
                None
            }
            AlertEvent::Reported { anomaly_id, uri } => t.reported(&anomaly_id, &uri, now),
            AlertEvent::Resolved { anomaly_id } => t.resolve(&anomaly_id, now),
        }
    }

    async fn send(&self, t: &mut Tracker, alerts: Vec<PostableAlert>) {
        self.metrics.alertmanager_firing.set(t.firing() as i64);
        if alerts.is_empty() {
            return;
        }
        match self.client.post(&alerts).await {
            Ok(()) => {
                self.metrics
                    .alertmanager_posts
                    .with_label_values(&["posted"])
                    .inc_by(alerts.len() as u64);
                t.delivered(&alerts);
            }
            Err(e) => {
                self.metrics
                    .alertmanager_posts
                    .with_label_values(&[e.name()])
                    .inc_by(alerts.len() as u64);
                tracing::warn!(error = %e, alerts = alerts.len(),
                               "alerts not delivered; re-posted on the next re-send");
            }
        }
    }
}
