//! The consume loop: events in, closed windows scored and written, offsets committed only for
//! messages whose windows are durable, new anomalies handed to the notifier.
//!
//! Windows close by the event-time watermark: the minimum over the assigned partitions of the
//! newest event time, minus the allowed lateness (see [`crate::watermark`]). A partition silent
//! for `idle_close` of wall-clock time (default window size + allowed lateness) stops holding
//! the watermark back; when every partition is silent, every window holding an event is closed
//! ("idle close"), so the last window of a burst is not stuck. Events that later arrive for a
//! closed window are dropped as late (the window was written already).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use helios_detection::event::Event;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer};
use tokio::sync::mpsc;

use crate::Error;
use crate::config::DetectorConfig;
use crate::kafka::{EventsConsumer, commit};
use crate::metrics::Metrics;
use crate::offsets::OffsetTracker;
use crate::pipeline::{Closing, Ingested, Pipeline};
use crate::records::AnomalyMessage;
use crate::status::{StatusHandle, StatusSettings};
use crate::store::Store;
use crate::watermark::{Bound, PartitionClocks};

/// Attempts at writing one batch before the worker gives up (and restarts from Kafka).
const WRITE_ATTEMPTS: u32 = 6;
/// Minimum time between two offset commits without new results.
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// How often the monthly partitions are topped up.
const PARTITIONS_EVERY: Duration = Duration::from_secs(6 * 3600);

/// The loop's collaborators and state.
pub struct Worker {
    /// Detector configuration.
    pub cfg: DetectorConfig,
    /// Events consumer.
    pub consumer: EventsConsumer,
    /// Events topic.
    pub topic: String,
    /// Incremented by the consumer on every assignment.
    pub generation: Arc<AtomicU64>,
    /// Database.
    pub store: Store,
    /// New anomalies for the notifier (`None` in dry-run mode).
    pub notify: Option<mpsc::UnboundedSender<AnomalyMessage>>,
    /// Metrics.
    pub metrics: Metrics,
    /// Wall-clock idle time after which open windows are closed.
    pub idle_close: Duration,
    /// Windows per key replayed from storage on first sight of a key.
    pub restore_limit: usize,
    /// Runtime status shared with the status writer.
    pub status: StatusHandle,
}

struct LoopState {
    pipeline: Pipeline,
    tracker: OffsetTracker,
    clocks: PartitionClocks,
    generation: u64,
    started: Instant,
    last_commit: Instant,
}

impl LoopState {
    fn now_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }
}

impl Worker {
    /// Consumes until `shutdown` resolves, then commits what is durable.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let mut st = LoopState {
            pipeline: Pipeline::new(self.cfg.clone())?,
            tracker: OffsetTracker::new(),
            clocks: PartitionClocks::new(),
            generation: u64::MAX,
            started: Instant::now(),
            last_commit: Instant::now(),
        };
        let tick_ms = (self.cfg.window.hop_ms / 4).clamp(50, 1000);
        let mut tick = tokio::time::interval(Duration::from_millis(tick_ms.unsigned_abs()));
        let mut partitions_at = Instant::now();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                msg = self.consumer.recv() => {
                    let polled = match msg {
                        Ok(m) => Some((m.partition(), m.offset(), m.payload().map(<[u8]>::to_vec))),
                        Err(e) => {
                            tracing::warn!(error = %e, "consume failed");
                            None
                        }
                    };
                    match polled {
                        Some((partition, offset, payload)) => {
                            self.on_message(&mut st, partition, offset, payload.as_deref()).await?;
                        }
                        None => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
                _ = tick.tick() => {
                    self.on_tick(&mut st).await?;
                    if partitions_at.elapsed() >= PARTITIONS_EVERY {
                        partitions_at = Instant::now();
                        if let Err(e) = crate::store::ensure_partitions(self.store.pool(), chrono::Utc::now()).await {
                            tracing::warn!(error = %e, "creating monthly partitions failed");
                        }
                    }
                }
            }
        }
        let offsets = st.tracker.take_commit();
        if let Err(e) = commit(&self.consumer, &self.topic, &offsets, CommitMode::Sync) {
            tracing::warn!(error = %e, "final commit failed");
        }
        tracing::info!(pending = st.tracker.pending(), "consumer stopped");
        Ok(())
    }

    async fn on_message(
        &self,
        st: &mut LoopState,
        partition: i32,
        offset: i64,
        payload: Option<&[u8]>,
    ) -> Result<(), Error> {
        let generation = self.generation.load(Ordering::SeqCst);
        if generation != st.generation {
            // A new assignment restarts every partition from its committed offset: rebuild the
            // state from scratch (keys are restored lazily from PostgreSQL).
            tracing::info!(generation, "new assignment: resetting in-memory state");
            st.generation = generation;
            st.pipeline = Pipeline::new(self.cfg.clone())?;
            st.tracker = OffsetTracker::new();
            st.clocks = PartitionClocks::new();
            match self.consumer.assignment() {
                Ok(tpl) => {
                    let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                    let now = st.now_ms();
                    st.clocks.assign(&parts, now);
                }
                Err(e) => tracing::warn!(error = %e, "reading the assignment failed"),
            }
        }
        let event = payload.and_then(|p| serde_json::from_slice::<Event>(p).ok());
        let now = st.now_ms();
        st.clocks
            .observe(partition, event.as_ref().map(|e| e.timestamp_ms), now);
        let outcome = match &event {
            None => {
                self.metrics.events.with_label_values(&["invalid"]).inc();
                tracing::debug!(partition, offset, "skipping an unparsable event");
                st.tracker.record(partition, offset, None);
                return self.advance(st).await;
            }
            Some(e) => st.pipeline.ingest(e),
        };
        match outcome {
            Ingested::Filtered => {
                self.metrics.events.with_label_values(&["filtered"]).inc();
                st.tracker.record(partition, offset, None);
            }
            Ingested::Late => {
                self.metrics.events.with_label_values(&["late"]).inc();
                st.tracker.record(partition, offset, None);
            }
            Ingested::Accepted { needs, .. } => {
                self.metrics.events.with_label_values(&["accepted"]).inc();
                self.status.update(|s| s.event(chrono::Utc::now()));
                st.tracker.record(partition, offset, Some(needs));
            }
        }
        self.advance(st).await
    }

    /// Closes what the watermark (or idleness) allows and writes the results.
    async fn advance(&self, st: &mut LoopState) -> Result<(), Error> {
        let idle_ms = i64::try_from(self.idle_close.as_millis()).unwrap_or(i64::MAX);
        let bound = match st
            .clocks
            .bound(st.now_ms(), idle_ms, self.cfg.window.allowed_lateness_ms)
        {
            Bound::Hold => return Ok(()),
            Bound::Watermark(w) => {
                self.metrics.watermark.set(w);
                w
            }
            Bound::Idle => match st.pipeline.flush_bound() {
                Some(b) => b,
                None => return Ok(()),
            },
        };
        let closing = st.pipeline.close(bound);
        if !closing.windows.is_empty() {
            tracing::debug!(windows = closing.windows.len(), bound, "closing windows");
        }
        self.process(st, closing).await
    }

    async fn on_tick(&self, st: &mut LoopState) -> Result<(), Error> {
        self.advance(st).await?;
        if st.last_commit.elapsed() >= COMMIT_EVERY {
            self.commit(st);
        }
        Ok(())
    }

    fn commit(&self, st: &mut LoopState) {
        st.last_commit = Instant::now();
        let offsets = st.tracker.take_commit();
        if let Err(e) = commit(&self.consumer, &self.topic, &offsets, CommitMode::Async) {
            tracing::warn!(error = %e, "offset commit failed");
        }
    }

    async fn process(&self, st: &mut LoopState, closing: Closing) -> Result<(), Error> {
        if closing.windows.is_empty() {
            // Everything up to the bound was closed and written by earlier batches.
            st.tracker.closed_through(closing.bound);
            return Ok(());
        }
        let closed_at = Instant::now();
        for key in st.pipeline.unknown_keys(&closing.windows) {
            let history = self.store.load_history(&key, self.restore_limit).await?;
            tracing::debug!(%key, windows = history.len(), "restoring key");
            st.pipeline.restore(&key, &history)?;
        }
        let scored = st.pipeline.score(closing.windows)?;
        let messages: Vec<AnomalyMessage> = scored
            .fired
            .iter()
            .map(|f| AnomalyMessage::from_fired(&self.cfg, f))
            .collect();
        let dry_run = self.notify.is_none();
        let mut attempt = 0;
        let inserted = loop {
            attempt += 1;
            match self.store.write_batch(&scored, &messages, dry_run).await {
                Ok(ids) => break ids,
                Err(e) if attempt < WRITE_ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "writing results failed; retrying");
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        self.metrics
            .write_latency
            .observe(closed_at.elapsed().as_secs_f64());
        for s in &scored.score_seconds {
            self.metrics.scoring_latency.observe(*s);
        }
        for w in &scored.windows {
            let state = if w.window.score.is_some() {
                "scored"
            } else {
                "warming_up"
            };
            self.metrics.windows.with_label_values(&[state]).inc();
        }
        self.metrics.windows_skipped.inc_by(scored.skipped as u64);
        st.tracker.closed_through(closing.bound);
        let training = st.pipeline.training();
        let hold = StatusSettings::from_config(&self.cfg).anomaly_hold;
        let now = chrono::Utc::now();
        self.status.update(|s| {
            s.training(training, now);
            s.windows(&scored.windows, hold, now);
            if let Some(m) = messages.iter().rfind(|m| inserted.contains(&m.anomaly_id)) {
                s.anomaly(m);
            }
        });
        for m in messages {
            if !inserted.contains(&m.anomaly_id) {
                continue;
            }
            self.metrics
                .anomalies
                .with_label_values(&[&m.severity])
                .inc();
            tracing::info!(id = %m.anomaly_id, key = %m.key, severity = %m.severity,
                           score = m.score, start = %m.window_start, "anomaly");
            if let Some(tx) = &self.notify
                && tx.send(m).is_err()
            {
                tracing::warn!("notifier stopped; the anomaly stays in the outbox");
            }
        }
        for r in &scored.resolved {
            tracing::info!(id = %r.alert_id, key = %r.key, "anomaly resolved");
        }
        self.commit(st);
        Ok(())
    }
}
