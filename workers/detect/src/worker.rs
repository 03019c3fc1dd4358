//! The consume loop: events in, closed windows scored and written, offsets committed only for
//! messages whose windows are durable, new anomalies handed to the notifier.
//!
//! Windows close by the event-time watermark (see [`crate::watermark`] for the rules): the
//! minimum over the assigned partitions that still hold it of their newest event time, minus
//! the allowed lateness. Partitions read to their end do not hold a replay back: an empty
//! partition never holds the watermark, and one that is caught up holds it at most at
//! wall-clock now − `idle_close`, which the [`crate::kafka::OffsetsProbe`] (low/high watermarks
//! and committed offsets, each partition at most once per [`OFFSETS_REFRESH`]) and
//! librdkafka's partition-EOF events tell. A partition silent for `idle_close` of wall-clock
//! time (the *quiet wait*, `--idle-close`; default window size + allowed lateness) stops
//! holding the watermark back whatever its state; when no partition holds it, every window
//! holding an event is closed ("idle close"), so the last window of a burst is not stuck.
//! Events that later arrive for a closed window are dropped as late (the window was written
//! already).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use helios_detection::event::Event;
use prometheus::IntCounter;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use tokio::sync::mpsc;

use crate::Error;
use crate::alertmanager::AlertEvent;
use crate::config::DetectorConfig;
use crate::feedback::Suppressions;
use crate::kafka::{EventsConsumer, OffsetsProbe, OffsetsReport, commit};
use crate::metrics::Metrics;
use crate::offsets::OffsetTracker;
use crate::pipeline::{Closing, Ingested, Pipeline};
use crate::records::AnomalyMessage;
use crate::score_board::{Observation, ScoreBoard};
use crate::status::{StatusHandle, StatusSettings};
use crate::store::Store;
use crate::watermark::{Bound, Now, PartitionClocks, Rules};

/// Attempts at writing one batch before the worker gives up (and restarts from Kafka).
const WRITE_ATTEMPTS: u32 = 6;
/// Minimum time between two offset commits without new results.
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// How often the monthly partitions are topped up.
const PARTITIONS_EVERY: Duration = Duration::from_secs(6 * 3600);
/// Each partition's broker offsets are read at most this often (and its cache entry is then
/// refreshed; an EOF triggers the check at once).
pub const OFFSETS_REFRESH: Duration = Duration::from_secs(1);
/// Broker offsets older than this no longer count (the partition is then treated as active).
const OFFSETS_TTL: Duration = Duration::from_secs(10);
/// Longest wait for one broker offsets query.
const OFFSETS_TIMEOUT: Duration = Duration::from_secs(2);
/// While a partition is known to have unread messages (a replay, a lag), windows the watermark
/// allows are closed at most this often, so one write batch holds many windows instead of one
/// transaction per window end. Caught up, windows close as soon as the watermark allows.
const BEHIND_CLOSE_EVERY: Duration = Duration::from_millis(100);

/// The loop's collaborators and state.
pub struct Worker {
    /// Detector configuration.
    pub cfg: DetectorConfig,
    /// Events consumer (shared with the offsets probe).
    pub consumer: Arc<EventsConsumer>,
    /// Events topic.
    pub topic: String,
    /// Incremented by the consumer on every assignment.
    pub generation: Arc<AtomicU64>,
    /// Database.
    pub store: Store,
    /// New anomalies for the notifier (`None` in dry-run mode).
    pub notify: Option<mpsc::UnboundedSender<AnomalyMessage>>,
    /// Anomalies' alerts for Alertmanager (`None`: none configured, or dry-run).
    pub alerts: Option<mpsc::UnboundedSender<AlertEvent>>,
    /// Metrics.
    pub metrics: Metrics,
    /// The quiet wait: wall-clock silence after which a partition no longer holds the
    /// watermark (and the cap on how far a caught-up partition holds it behind wall-clock now).
    pub idle_close: Duration,
    /// Windows per key replayed from storage on first sight of a key.
    pub restore_limit: usize,
    /// Runtime status shared with the status writer.
    pub status: StatusHandle,
    /// Keys exported with a `key` label on the score metrics.
    pub score_keys: usize,
    /// False-positive suppressions (kept in step with the Detector's feedback annotations).
    pub suppressions: Suppressions,
}

struct LoopState {
    pipeline: Pipeline,
    tracker: OffsetTracker,
    clocks: PartitionClocks,
    generation: u64,
    /// The highest bound windows were closed through in this generation.
    closed: Option<i64>,
    /// When windows were last closed.
    last_close: Instant,
    started: Instant,
    last_commit: Instant,
    counters: Counters,
    scores: ScoreBoard,
}

/// Per-event counters, resolved once (a label lookup per event is measurable in a replay).
struct Counters {
    invalid: IntCounter,
    filtered: IntCounter,
    late: IntCounter,
    accepted: IntCounter,
}

impl Counters {
    fn new(m: &Metrics) -> Self {
        let c = |label: &str| m.events.with_label_values(&[label]);
        Self {
            invalid: c("invalid"),
            filtered: c("filtered"),
            late: c("late"),
            accepted: c("accepted"),
        }
    }
}

/// The default quiet wait: one window size plus the allowed lateness. A live partition that
/// delivers at least once per window never turns quiet, and an idle close never cuts a window
/// of sparse live traffic short (it ended, lateness included, before it is closed).
pub fn default_quiet_wait(w: &helios_detection::window::WindowConfig) -> Duration {
    Duration::from_millis(
        w.size_ms
            .saturating_add(w.allowed_lateness_ms)
            .unsigned_abs(),
    )
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl LoopState {
    fn now_ms(&self) -> i64 {
        millis(self.started.elapsed())
    }

    fn now(&self) -> Now {
        Now {
            mono_ms: self.now_ms(),
            wall_ms: chrono::Utc::now().timestamp_millis(),
        }
    }
}

/// Whether closing through `bound` can close anything after closing through `closed`: some
/// window end `k·hop + size` lies in `(closed, bound]`.
fn crosses_window_end(closed: Option<i64>, bound: i64, size_ms: i64, hop_ms: i64) -> bool {
    let Some(closed) = closed else {
        return true;
    };
    if bound <= closed {
        return false;
    }
    let next_end = (closed.saturating_sub(size_ms).div_euclid(hop_ms) + 1)
        .saturating_mul(hop_ms)
        .saturating_add(size_ms);
    bound >= next_end
}

/// One poll of the consumer.
enum Polled {
    /// A message (its event when the payload parsed).
    Message {
        partition: i32,
        offset: i64,
        event: Option<Event>,
    },
    /// librdkafka reached the end of a partition.
    Eof(i32),
    /// Consuming failed (logged).
    Failed,
}

impl Worker {
    /// Consumes until `shutdown` resolves, then commits what is durable.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let mut st = LoopState {
            pipeline: Pipeline::new(self.cfg.clone())?.with_suppressions(self.suppressions.clone()),
            tracker: OffsetTracker::new(),
            clocks: PartitionClocks::new(self.rules()),
            generation: u64::MAX,
            closed: None,
            last_close: Instant::now(),
            started: Instant::now(),
            last_commit: Instant::now(),
            counters: Counters::new(&self.metrics),
            scores: ScoreBoard::new(self.score_keys),
        };
        let mut probe = OffsetsProbe::spawn(
            self.consumer.clone(),
            &self.topic,
            self.generation.clone(),
            OFFSETS_REFRESH,
            OFFSETS_TIMEOUT,
        );
        let tick_ms = (self.cfg.window.hop_ms / 4).clamp(50, 1000);
        let mut tick = tokio::time::interval(Duration::from_millis(tick_ms.unsigned_abs()));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut partitions_at = Instant::now();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                // Before the consumer, which is always ready during a replay.
                report = probe.next() => {
                    self.on_offsets(&mut st, &report)?;
                    self.advance(&mut st).await?;
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
                msg = self.consumer.recv() => {
                    // Parsed while the message is borrowed: no copy of the payload.
                    let polled = match msg {
                        Ok(m) => Polled::Message {
                            partition: m.partition(),
                            offset: m.offset(),
                            event: m.payload().and_then(|p| Event::from_json(p).ok()),
                        },
                        Err(KafkaError::PartitionEOF(partition)) => Polled::Eof(partition),
                        Err(e) => {
                            tracing::warn!(error = %e, "consume failed");
                            Polled::Failed
                        }
                    };
                    match polled {
                        Polled::Message { partition, offset, event } => {
                            self.on_message(&mut st, partition, offset, event).await?;
                        }
                        Polled::Eof(partition) => {
                            self.sync_generation(&mut st)?;
                            let now = st.now_ms();
                            st.clocks.observe_eof(partition, now);
                            tracing::debug!(partition, "partition read to its end");
                            probe.eof();
                            self.advance(&mut st).await?;
                        }
                        Polled::Failed => tokio::time::sleep(Duration::from_millis(200)).await,
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

    /// The watermark rules of this worker.
    fn rules(&self) -> Rules {
        Rules {
            quiet_ms: millis(self.idle_close),
            lateness_ms: self.cfg.window.allowed_lateness_ms,
            offsets_ttl_ms: millis(OFFSETS_TTL),
        }
    }

    /// A new assignment restarts every partition from its committed offset: rebuilds the
    /// state from scratch (keys are restored lazily from PostgreSQL).
    fn sync_generation(&self, st: &mut LoopState) -> Result<(), Error> {
        let generation = self.generation.load(Ordering::SeqCst);
        if generation == st.generation {
            return Ok(());
        }
        tracing::info!(generation, "new assignment: resetting in-memory state");
        st.generation = generation;
        st.pipeline = Pipeline::new(self.cfg.clone())?.with_suppressions(self.suppressions.clone());
        st.tracker = OffsetTracker::new();
        st.clocks = PartitionClocks::new(self.rules());
        st.closed = None;
        match self.consumer.assignment() {
            Ok(tpl) => {
                let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                let now = st.now_ms();
                st.clocks.assign(&parts, now);
            }
            Err(e) => tracing::warn!(error = %e, "reading the assignment failed"),
        }
        Ok(())
    }

    /// Broker offsets from the probe (ignored when they belong to an earlier assignment).
    fn on_offsets(&self, st: &mut LoopState, report: &OffsetsReport) -> Result<(), Error> {
        self.sync_generation(st)?;
        if report.generation != st.generation {
            return Ok(());
        }
        for &(partition, offsets, taken_at) in &report.partitions {
            let taken_at = millis(taken_at.saturating_duration_since(st.started));
            st.clocks.observe_offsets(partition, offsets, taken_at);
        }
        Ok(())
    }

    async fn on_message(
        &self,
        st: &mut LoopState,
        partition: i32,
        offset: i64,
        event: Option<Event>,
    ) -> Result<(), Error> {
        self.sync_generation(st)?;
        let now = st.now_ms();
        st.clocks.observe(
            partition,
            offset,
            event.as_ref().map(|e| e.timestamp_ms),
            now,
        );
        let outcome = match &event {
            None => {
                st.counters.invalid.inc();
                tracing::debug!(partition, offset, "skipping an unparsable event");
                st.tracker.record(partition, offset, None);
                return self.advance(st).await;
            }
            Some(e) => st.pipeline.ingest(e),
        };
        match outcome {
            Ingested::Filtered => {
                st.counters.filtered.inc();
                st.tracker.record(partition, offset, None);
            }
            Ingested::Late => {
                st.counters.late.inc();
                st.tracker.record(partition, offset, None);
            }
            Ingested::Accepted { needs, .. } => {
                st.counters.accepted.inc();
                self.status.update(|s| s.event(chrono::Utc::now()));
                st.tracker.record(partition, offset, Some(needs));
            }
        }
        self.advance(st).await
    }

    /// Closes what the watermark (or idleness) allows and writes the results.
    async fn advance(&self, st: &mut LoopState) -> Result<(), Error> {
        let now = st.now();
        let bound = match st.clocks.bound(now) {
            Bound::Hold => return Ok(()),
            Bound::Watermark(w) => {
                self.metrics.watermark.set(w);
                // Never past the last window holding an event: a watermark moved by the
                // wall clock would otherwise emit empty windows up to now for every key.
                match st.pipeline.flush_bound() {
                    Some(b) => w.min(b),
                    None => return Ok(()),
                }
            }
            Bound::Idle => match st.pipeline.flush_bound() {
                Some(b) => b,
                None => return Ok(()),
            },
        };
        let w = self.cfg.window;
        if !crosses_window_end(st.closed, bound, w.size_ms, w.hop_ms) {
            // No window ends in between: nothing to close, no message becomes done.
            return Ok(());
        }
        if st.last_close.elapsed() < BEHIND_CLOSE_EVERY && st.clocks.any_behind(now.mono_ms) {
            // Replaying: batch the windows of the next few milliseconds (the tick comes back).
            return Ok(());
        }
        st.last_close = Instant::now();
        st.closed = Some(st.closed.map_or(bound, |c| c.max(bound)));
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
        self.metrics
            .anomalies_suppressed
            .inc_by(scored.suppressed.len() as u64);
        st.tracker.closed_through(closing.bound);
        let training = st.pipeline.training();
        for w in &scored.windows {
            let Some(score) = w.window.score else {
                continue;
            };
            let status = st.pipeline.key_status(&w.key);
            st.scores.observe(Observation {
                key: &w.key,
                end_ms: w.window.end_ms,
                score,
                model_version: w.model_version,
                threshold: status
                    .as_ref()
                    .and_then(|s| s.threshold.as_ref())
                    .map(|t| t.value),
                training_windows: status.map_or(0, |s| s.history),
            });
        }
        st.scores
            .set_warming_up(training.keys.saturating_sub(training.trained_keys));
        st.scores.publish(&self.metrics);
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
            if let Some(alerts) = &self.alerts {
                let _ = alerts.send(AlertEvent::Fired(Box::new(m.clone())));
            }
            if let Some(tx) = &self.notify
                && tx.send(m).is_err()
            {
                tracing::warn!("notifier stopped; the anomaly stays in the outbox");
            }
        }
        for r in &scored.resolved {
            tracing::info!(id = %r.alert_id, key = %r.key, "anomaly resolved");
            if let Some(alerts) = &self.alerts {
                let _ = alerts.send(AlertEvent::Resolved {
                    anomaly_id: r.alert_id.clone(),
                });
            }
        }
        self.commit(st);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bounds_past_a_window_end_close_anything() {
        // Tumbling 1000 ms windows end at multiples of 1000.
        assert!(crosses_window_end(None, 5, 1000, 1000));
        assert!(!crosses_window_end(Some(1000), 1999, 1000, 1000));
        assert!(crosses_window_end(Some(1000), 2000, 1000, 1000));
        assert!(crosses_window_end(Some(1500), 2000, 1000, 1000));
        assert!(!crosses_window_end(Some(2000), 2000, 1000, 1000));
        assert!(!crosses_window_end(Some(2000), 1000, 1000, 1000));
        // Hopping (size 1000, hop 300): ends at 1000, 1300, 1600, ...
        assert!(!crosses_window_end(Some(1000), 1299, 1000, 300));
        assert!(crosses_window_end(Some(1000), 1300, 1000, 300));
        assert!(crosses_window_end(Some(1001), 1300, 1000, 300));
        // Negative event times and the extremes do not overflow.
        assert!(crosses_window_end(Some(-2500), -2000, 1000, 1000));
        assert!(!crosses_window_end(Some(-2500), -2001, 1000, 1000));
        assert!(crosses_window_end(Some(i64::MIN + 1), 0, 1000, 1000));
        assert!(!crosses_window_end(
            Some(i64::MAX - 1),
            i64::MAX - 1,
            1000,
            1000
        ));
    }

    #[test]
    fn the_default_quiet_wait_is_one_window_plus_lateness() {
        let w = helios_detection::window::WindowConfig {
            size_ms: 300_000,
            hop_ms: 300_000,
            allowed_lateness_ms: 30_000,
        };
        assert_eq!(default_quiet_wait(&w), Duration::from_secs(330));
    }
}
