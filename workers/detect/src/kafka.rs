//! Kafka clients: the events consumer (manual commits, rebalance generation, lag from
//! librdkafka statistics) and the idempotent anomalies producer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};

use crate::metrics::Metrics;

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

/// Applies `key=value` extra properties.
fn apply_properties(cfg: &mut ClientConfig, props: &[String]) -> Result<(), KafkaFailure> {
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
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000");
        apply_properties(&mut cfg, props)?;
        Ok(Self {
            producer: cfg.create()?,
            topic: topic.to_string(),
        })
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
