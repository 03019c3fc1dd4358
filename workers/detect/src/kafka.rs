//! Kafka clients: the events consumer (manual commits, rebalance generation, lag from
//! librdkafka statistics, partition-EOF events), the offsets probe that tells the watermark
//! which partitions are read to their end, and the idempotent anomalies producer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::watermark::EndOffsets;

/// A Kafka failure.
#[derive(Debug, thiserror::Error)]
pub enum KafkaFailure {
    /// A client could not be created or configured.
    #[error("kafka client: {0}")]
    Client(#[from] KafkaError),
    /// A `key=value` property is malformed.
    #[error("kafka property {0:?} is not key=value")]
    Property(String),
    /// A message was not acknowledged.
    #[error("publishing to {topic}: {error}")]
    Publish {
        /// Target topic.
        topic: String,
        /// The error.
        error: KafkaError,
    },
}

/// Consumer callbacks: counts assignments and exports lag.
pub struct DetectContext {
    generation: Arc<AtomicU64>,
    metrics: Metrics,
}

impl ClientContext for DetectContext {
    fn stats(&self, stats: Statistics) {
        for topic in stats.topics.values() {
            for (p, part) in &topic.partitions {
                if *p >= 0 && part.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[&p.to_string()])
                        .set(part.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for DetectContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.generation.fetch_add(1, Ordering::SeqCst);
                tracing::info!(partitions = tpl.count(), "partitions assigned");
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(partitions = tpl.count(), "partitions revoked")
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

/// The events consumer.
pub type EventsConsumer = StreamConsumer<DetectContext>;

/// Applies `key=value` extra properties (blank entries are ignored).
pub fn apply_properties(cfg: &mut ClientConfig, props: &[String]) -> Result<(), KafkaFailure> {
    for p in props.iter().filter(|p| !p.trim().is_empty()) {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| KafkaFailure::Property(p.clone()))?;
        cfg.set(k.trim(), v.trim());
    }
    Ok(())
}

/// Creates the consumer of `group_id` subscribed to `topic`; the returned counter increments on
/// every partition assignment.
pub fn consumer(
    bootstrap: &str,
    group_id: &str,
    topic: &str,
    props: &[String],
    metrics: Metrics,
) -> Result<(EventsConsumer, Arc<AtomicU64>), KafkaFailure> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "range,roundrobin")
        .set("statistics.interval.ms", "5000")
        // EOF events tell the watermark at once that a partition is read to its end.
        .set("enable.partition.eof", "true")
        .set("client.id", format!("helios-detect-{group_id}"));
    apply_properties(&mut cfg, props)?;
    let generation = Arc::new(AtomicU64::new(0));
    let ctx = DetectContext {
        generation: generation.clone(),
        metrics,
    };
    let consumer: EventsConsumer = cfg.create_with_context(ctx)?;
    consumer.subscribe(&[topic])?;
    Ok((consumer, generation))
}

/// Commits `offsets` (partition → next offset to read) of `topic`.
pub fn commit(
    consumer: &EventsConsumer,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
    mode: CommitMode,
) -> Result<(), KafkaFailure> {
    if offsets.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for (&p, &o) in offsets {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))?;
    }
    consumer.commit(&tpl, mode)?;
    Ok(())
}

/// The latest broker offsets of every assigned partition (a newer report supersedes an
/// unread older one, losing nothing).
#[derive(Debug, Clone)]
pub struct OffsetsReport {
    /// The assignment generation they were read in (reports of older ones are stale).
    pub generation: u64,
    /// Partition → its offsets and when their query started (partitions never read yet, or
    /// whose queries failed so far, are left out).
    pub partitions: Vec<(i32, EndOffsets, Instant)>,
}

/// Aborts the task when dropped (so a dropped worker stops its probe, as a crash would).
#[derive(Debug)]
pub struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The offsets probe: a background task that reads the low/high watermarks (and, once per
/// assignment, the committed offsets) of the assigned partitions, each at most once per
/// `refresh` (a cache per partition); an EOF ([`OffsetsProbe::eof`]) triggers a round at once
/// for the partitions that are due. Queries run on a blocking thread, so the consume loop
/// never waits for the broker.
pub struct OffsetsProbe {
    reports: watch::Receiver<Option<OffsetsReport>>,
    wake: Arc<Notify>,
    _task: AbortOnDrop,
}

impl OffsetsProbe {
    /// Starts probing `topic` on `consumer`'s assignment; `generation` is the consumer's
    /// assignment counter (see [`consumer`]).
    pub fn spawn(
        consumer: Arc<EventsConsumer>,
        topic: &str,
        generation: Arc<AtomicU64>,
        refresh: Duration,
        timeout: Duration,
    ) -> Self {
        let (tx, reports) = watch::channel(None);
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(probe_loop(
            consumer,
            topic.to_string(),
            generation,
            refresh,
            timeout,
            tx,
            wake.clone(),
        ));
        Self {
            reports,
            wake,
            _task: AbortOnDrop(task),
        }
    }

    /// Asks for a refresh soon (a partition reached its end); cheap and rate-limited.
    pub fn eof(&self) {
        self.wake.notify_one();
    }

    /// The next report (waits until one is published; pending forever once the task ended).
    pub async fn next(&mut self) -> OffsetsReport {
        loop {
            if self.reports.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
            if let Some(r) = self.reports.borrow_and_update().clone() {
                return r;
            }
        }
    }
}

/// What the probe remembers between rounds.
#[derive(Debug, Default)]
struct ProbeCache {
    /// Generation the committed offsets were read in, and the offsets (valid ones only).
    committed: Option<(u64, BTreeMap<i32, i64>)>,
    /// Generation of `latest`.
    generation: u64,
    /// Each partition's latest offsets and when their query started.
    latest: BTreeMap<i32, (EndOffsets, Instant)>,
}

async fn probe_loop(
    consumer: Arc<EventsConsumer>,
    topic: String,
    generation: Arc<AtomicU64>,
    refresh: Duration,
    timeout: Duration,
    tx: watch::Sender<Option<OffsetsReport>>,
    wake: Arc<Notify>,
) {
    // Rounds are checked four times per refresh interval and at once on an EOF, but only query
    // the partitions whose entry is due: each partition is read at most once per `refresh`.
    let mut tick = tokio::time::interval((refresh / 4).max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cache = ProbeCache::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = wake.notified() => {}
        }
        let (consumer, topic, counter) = (consumer.clone(), topic.clone(), generation.clone());
        let round = tokio::task::spawn_blocking(move || {
            let r = probe_round(&consumer, &topic, &counter, refresh, timeout, &mut cache);
            (cache, r)
        })
        .await;
        let Ok((kept, round)) = round else { return };
        cache = kept;
        match round {
            Ok(Some(report)) => {
                if tx.send(Some(report)).is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "reading partition offsets failed"),
        }
    }
}

/// One round over the due partitions of the current assignment (`None`: nothing new).
fn probe_round(
    consumer: &EventsConsumer,
    topic: &str,
    generation: &AtomicU64,
    refresh: Duration,
    timeout: Duration,
    cache: &mut ProbeCache,
) -> Result<Option<OffsetsReport>, KafkaFailure> {
    let current = generation.load(Ordering::SeqCst);
    if cache.generation != current {
        cache.generation = current;
        cache.latest.clear();
    }
    let started = Instant::now();
    let assignment = consumer.assignment()?;
    let parts: Vec<i32> = assignment
        .elements_for_topic(topic)
        .iter()
        .map(|e| e.partition())
        .collect();
    cache.latest.retain(|p, _| parts.contains(p));
    let due: Vec<i32> = parts
        .iter()
        .copied()
        .filter(|p| {
            cache
                .latest
                .get(p)
                .is_none_or(|(_, t)| started.duration_since(*t) >= refresh)
        })
        .collect();
    if due.is_empty() {
        return Ok(None);
    }
    let positions = valid_offsets(&consumer.position()?, topic);
    if cache.committed.as_ref().is_none_or(|(g, _)| *g != current) {
        match consumer.committed(timeout) {
            Ok(tpl) => cache.committed = Some((current, valid_offsets(&tpl, topic))),
            Err(e) => tracing::debug!(error = %e, "reading committed offsets failed"),
        }
    }
    let committed = cache
        .committed
        .as_ref()
        .filter(|(g, _)| *g == current)
        .map(|(_, c)| c);
    let mut fresh = false;
    for p in due {
        let taken_at = Instant::now();
        match consumer.fetch_watermarks(topic, p, timeout) {
            Ok((low, high)) => {
                let resume = positions
                    .get(&p)
                    .or_else(|| committed.and_then(|c| c.get(&p)))
                    .copied();
                cache
                    .latest
                    .insert(p, (EndOffsets { low, high, resume }, taken_at));
                fresh = true;
            }
            Err(e) => tracing::debug!(partition = p, error = %e, "reading watermarks failed"),
        }
    }
    Ok(fresh.then(|| OffsetsReport {
        generation: current,
        partitions: cache.latest.iter().map(|(&p, &(o, t))| (p, o, t)).collect(),
    }))
}

/// Partition → offset for the entries of `topic` that hold a concrete offset.
fn valid_offsets(tpl: &TopicPartitionList, topic: &str) -> BTreeMap<i32, i64> {
    tpl.elements_for_topic(topic)
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// The anomalies producer (idempotent, `acks=all`).
#[derive(Clone)]
pub struct AnomalyProducer {
    producer: FutureProducer,
    topic: String,
}

impl AnomalyProducer {
    /// Creates the producer for `topic`.
    pub fn new(bootstrap: &str, topic: &str, props: &[String]) -> Result<Self, KafkaFailure> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Alerts are few and each one is waited for: no batching delay to speak of.
            .set("linger.ms", "1")
            .set("message.timeout.ms", "30000");
        apply_properties(&mut cfg, props)?;
        Ok(Self {
            producer: cfg.create()?,
            topic: topic.to_string(),
        })
    }

    /// Publishes every `(key, payload)` at once (in order: idempotence keeps it) and waits for
    /// each acknowledgement, so a batch costs one round trip instead of one per message.
    pub async fn publish_all(&self, messages: &[(&str, &[u8])]) -> Vec<Result<(), KafkaFailure>> {
        let failure = |error| KafkaFailure::Publish {
            topic: self.topic.clone(),
            error,
        };
        let pending: Vec<_> = messages
            .iter()
            .map(|(key, payload)| {
                self.producer
                    .send_result(FutureRecord::to(&self.topic).key(*key).payload(*payload))
                    .map_err(|(error, _)| error)
            })
            .collect();
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            out.push(match p {
                Ok(delivery) => match delivery.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((error, _))) => Err(failure(error)),
                    Err(_) => Err(failure(KafkaError::Canceled)),
                },
                Err(error) => Err(failure(error)),
            });
        }
        out
    }

    /// Publishes one message and waits for the acknowledgement.
    pub async fn publish(&self, key: &str, payload: &[u8]) -> Result<(), KafkaFailure> {
        self.producer
            .send(
                FutureRecord::to(&self.topic).key(key).payload(payload),
                Duration::from_secs(30),
            )
            .await
            .map(|_| ())
            .map_err(|(error, _)| KafkaFailure::Publish {
                topic: self.topic.clone(),
                error,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_must_be_key_value() {
        let mut cfg = ClientConfig::new();
        apply_properties(&mut cfg, &["security.protocol=SSL".into(), " ".into()]).unwrap();
        assert_eq!(cfg.get("security.protocol"), Some("SSL"));
        assert!(apply_properties(&mut cfg, &["nope".into()]).is_err());
    }
}
