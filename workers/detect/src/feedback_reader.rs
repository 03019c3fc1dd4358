//! Keeps the anomalies table and the suppressions in step with the feedback annotations of the
//! worker's Detector (`helios.dev/feedback-<anomalyId>`), read every `interval` with the `get`
//! the worker's Role already grants. The annotations are the truth: a removed annotation
//! withdraws its label; the suppressions are rebuilt from the labelled rows after every read.

use std::time::Duration;

use helios_crds::Detector;
use kube::Api;
use tokio::sync::watch;

use crate::feedback::{self, Suppression, Suppressions};
use crate::metrics::Metrics;
use crate::status::StatusHandle;
use crate::store::Store;

/// Reads feedback until stopped.
pub struct FeedbackReader {
    /// The worker's Detector.
    pub api: Api<Detector>,
    /// Its name.
    pub name: String,
    /// The anomalies table.
    pub store: Store,
    /// The pipeline name (anomaly rows carry it).
    pub pipeline: String,
    /// The suppressions the scoring pipeline reads.
    pub suppressions: Suppressions,
    /// `status.model.suppressions`.
    pub status: StatusHandle,
    /// `helios_detect_feedback_labels`.
    pub metrics: Metrics,
    /// Time between two reads.
    pub interval: Duration,
}

impl FeedbackReader {
    /// Reads at once, then every `interval`, until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.read().await {
                tracing::warn!(error = %e, "reading feedback failed; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = stop.changed() => break,
            }
        }
    }

    /// One read: labels into the table, suppressions rebuilt.
    pub async fn read(&self) -> Result<(), String> {
        let d = self.api.get(&self.name).await.map_err(|e| e.to_string())?;
        let annotations = d.metadata.annotations.unwrap_or_default();
        let (labels, bad) = feedback::labels(&annotations);
        for b in bad {
            tracing::warn!(annotation = %b, "ignoring feedback");
        }
        let ids: Vec<String> = labels.iter().map(|(id, _)| id.clone()).collect();
        self.store
            .clear_feedback_except(&ids)
            .await
            .map_err(|e| e.to_string())?;
        for (id, label) in &labels {
            let known = self
                .store
                .set_feedback(id, Some(label.as_str()))
                .await
                .map_err(|e| e.to_string())?;
            if !known {
                tracing::warn!(%id, "feedback names no anomaly of this detector");
            }
        }
        for label in [feedback::Label::FalsePositive, feedback::Label::Confirmed] {
            let n = labels.iter().filter(|(_, l)| *l == label).count();
            self.metrics
                .feedback_labels
                .with_label_values(&[label.as_str()])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        reload(
            &self.store,
            &self.pipeline,
            &self.suppressions,
            &self.status,
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Puts the suppressions of the stored false positives in force and shows their count in the
/// status; how many there are.
pub async fn reload(
    store: &Store,
    pipeline: &str,
    suppressions: &Suppressions,
    status: &StatusHandle,
) -> Result<usize, crate::store::StoreError> {
    let all: Vec<Suppression> = store
        .false_positives(pipeline)
        .await?
        .iter()
        .filter_map(Suppression::of)
        .collect();
    let n = all.len();
    suppressions.replace(all);
    status.update(|s| s.feedback(n));
    Ok(n)
}
