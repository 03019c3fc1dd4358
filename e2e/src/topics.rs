//! Topics on the stack's Kafka for one test or benchmark: create them, fill them by key with a
//! bounded number of deliveries in flight, delete them.

use crate::clients::kafka_config;
use crate::env::{StackEnv, StackError};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use std::collections::VecDeque;
use std::time::Duration;

/// Deliveries awaited at most at once by [`produce`] (the producer batches the rest).
pub const MAX_IN_FLIGHT: usize = 100_000;

/// Why a topic operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The stack is not up or Kafka does not answer.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// Kafka refused an operation on a topic.
    #[error("{op} {topic}: {source}")]
    Kafka {
        /// What was attempted.
        op: &'static str,
        /// The topic.
        topic: String,
        /// Kafka's error.
        source: KafkaError,
    },
    /// The producer dropped a delivery without a result.
    #[error("producing to {0}: the delivery was cancelled")]
    Cancelled(String),
    /// The producer's local queue stayed full for 10 s with nothing in flight to await.
    #[error("producing to {0}: the producer queue stayed full")]
    QueueFull(String),
}

fn kafka<'a>(op: &'static str, topic: &'a str) -> impl FnOnce(KafkaError) -> TopicError + 'a {
    move |source| TopicError::Kafka {
        op,
        topic: topic.to_string(),
        source,
    }
}

fn admin(env: &StackEnv) -> Result<AdminClient<DefaultClientContext>, TopicError> {
    kafka_config(env)?
        .create()
        .map_err(kafka("admin client for", "the stack"))
}

/// Creates `(topic, partitions)` with replication 1.
pub async fn create_topics(env: &StackEnv, topics: &[(&str, i32)]) -> Result<(), TopicError> {
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
        .collect();
    let names = topics.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(",");
    for r in admin(env)?
        .create_topics(&new, &AdminOptions::new())
        .await
        .map_err(kafka("creating", &names))?
    {
        r.map_err(|(t, code)| TopicError::Kafka {
            op: "creating",
            topic: t,
            source: KafkaError::AdminOp(code),
        })?;
    }
    Ok(())
}

/// Deletes `topics` (best effort: a warning on stderr when Kafka refuses).
pub async fn delete_topics(env: &StackEnv, topics: &[&str]) {
    let result = match admin(env) {
        Ok(a) => a
            .delete_topics(topics, &AdminOptions::new())
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = result {
        eprintln!("warning: deleting topics {topics:?}: {e}");
    }
}

/// An idempotent producer on the stack's Kafka that batches (lz4, up to 10,000 messages, 20 ms
/// linger) and retries for two minutes.
pub fn producer(env: &StackEnv) -> Result<FutureProducer, TopicError> {
    kafka_config(env)?
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "200000")
        .set("message.timeout.ms", "120000")
        .create()
        .map_err(kafka("producer for", "the stack"))
}

async fn delivered(topic: &str, d: DeliveryFuture) -> Result<(), TopicError> {
    match d.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(kafka("producing to", topic)(e)),
        Err(_) => Err(TopicError::Cancelled(topic.to_string())),
    }
}

/// Produces `(key, payload)` pairs to `partition` of `topic` (by key when `None`), awaiting at
/// most [`MAX_IN_FLIGHT`] deliveries at once, and returns when every one is acknowledged.
pub async fn produce<K, V>(
    producer: &FutureProducer,
    topic: &str,
    partition: Option<i32>,
    batch: impl IntoIterator<Item = (K, V)>,
) -> Result<u64, TopicError>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
    let mut sent = 0u64;
    for (key, payload) in batch {
        if pending.len() >= MAX_IN_FLIGHT
            && let Some(d) = pending.pop_front()
        {
            delivered(topic, d).await?;
        }
        let mut record = FutureRecord::to(topic)
            .key(key.as_ref())
            .payload(payload.as_ref());
        if let Some(p) = partition {
            record = record.partition(p);
        }
        let mut waits = 0u32;
        loop {
            match producer.send_result(record) {
                Ok(d) => {
                    pending.push_back(d);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    match pending.pop_front() {
                        Some(d) => delivered(topic, d).await?,
                        None if waits < 10_000 => {
                            waits += 1;
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        None => return Err(TopicError::QueueFull(topic.to_string())),
                    }
                }
                Err((e, _)) => return Err(kafka("producing to", topic)(e)),
            }
        }
        sent += 1;
    }
    for d in pending {
        delivered(topic, d).await?;
    }
    Ok(sent)
}
