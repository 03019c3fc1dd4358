//! `helios backtest --topic`: every partition of a Kafka topic read from its low to its high
//! watermark as they were when the replay started, merged by event time (the order of the
//! events file), without a consumer group and without committing anything.
//!
//! Each partition gets its own queue, so the merge holds one event per partition and
//! librdkafka's prefetch bounds the rest. A message that is not an [`Event`] is handed on at
//! once (it is counted as a bad line). A partition that delivers nothing for
//! [`STALL`] while short of its end fails the replay, naming it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use helios_detect::kafka::apply_properties;
use helios_detection::event::Event;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

use super::Error;

/// How long a partition short of its end may deliver nothing before the replay fails.
pub const STALL: Duration = Duration::from_secs(60);
/// Metadata and watermark requests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// One wait on a partition queue.
const POLL: Duration = Duration::from_millis(200);

/// Where to read: the broker, extra librdkafka properties and the topic.
#[derive(Debug, Clone)]
pub struct TopicSource {
    /// `host:port,...`.
    pub bootstrap: String,
    /// `key=value` librdkafka properties (TLS, SASL, ...).
    pub properties: Vec<String>,
    /// The events topic.
    pub topic: String,
}

/// One partition being merged.
struct Part {
    id: i32,
    /// Offset after the last message to read (the high watermark at the start).
    end: i64,
    /// Next offset expected (at `end` or beyond once the partition is read).
    next: i64,
    queue: PartitionQueue<DefaultConsumerContext>,
    /// Messages taken from the consumer's main queue before the split (offset order).
    early: VecDeque<OwnedMessage>,
    /// The parsed head of the partition, waiting for its turn.
    head: Option<(Event, i64)>,
}

impl Part {
    /// Read to its end.
    fn done(&self) -> bool {
        self.next >= self.end
    }
}

/// What was read: messages per partition.
#[derive(Debug, Clone, Default)]
pub struct TopicRead {
    /// Partition → messages read (empty partitions are left out).
    pub messages: BTreeMap<i32, u64>,
}

impl TopicSource {
    fn error(&self, detail: impl std::fmt::Display) -> Error {
        Error::Topic {
            topic: self.topic.clone(),
            detail: detail.to_string(),
        }
    }

    fn consumer(&self) -> Result<Arc<BaseConsumer>, Error> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.bootstrap)
            .set(
                "group.id",
                format!("helios-backtest-{}", std::process::id()),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("client.id", "helios-backtest");
        apply_properties(&mut cfg, &self.properties)
            .map_err(|e| Error::Usage(format!("--kafka-property: {e}")))?;
        cfg.create()
            .map(Arc::new)
            .map_err(|e| self.error(format!("creating a consumer: {e}")))
    }

    /// Partitions with events and their `[low, high)` offsets.
    fn ranges(&self, consumer: &BaseConsumer) -> Result<Vec<(i32, i64, i64)>, Error> {
        let md = consumer
            .fetch_metadata(Some(&self.topic), REQUEST_TIMEOUT)
            .map_err(|e| self.error(format!("metadata from {}: {e}", self.bootstrap)))?;
        let Some(t) = md.topics().iter().find(|t| t.name() == self.topic) else {
            return Err(self.error("the broker does not list the topic"));
        };
        if let Some(e) = t.error() {
            return Err(self.error(RDKafkaErrorCode::from(e)));
        }
        if t.partitions().is_empty() {
            return Err(self.error("the topic does not exist (no partitions)"));
        }
        let mut ranges = Vec::new();
        for p in t.partitions() {
            let (lo, hi) = consumer
                .fetch_watermarks(&self.topic, p.id(), REQUEST_TIMEOUT)
                .map_err(|e| self.error(format!("offsets of partition {}: {e}", p.id())))?;
            if hi > lo {
                ranges.push((p.id(), lo, hi));
            }
        }
        Ok(ranges)
    }

    /// Reads the topic and hands every message, in event-time order, to `sink` (partition,
    /// offset, and the event or the parse error of a message that is not one); `progress` gets
    /// (messages read, messages in the snapshot).
    pub fn replay(
        &self,
        mut sink: impl FnMut(i32, i64, serde_json::Result<Event>) -> Result<(), Error>,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<TopicRead, Error> {
        let consumer = self.consumer()?;
        let ranges = self.ranges(&consumer)?;
        let mut tpl = TopicPartitionList::new();
        for &(p, lo, _) in &ranges {
            tpl.add_partition_offset(&self.topic, p, Offset::Offset(lo))
                .map_err(|e| self.error(format!("partition {p}: {e}")))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| self.error(format!("assigning partitions: {e}")))?;
        let mut parts = Vec::with_capacity(ranges.len());
        for &(id, lo, end) in &ranges {
            let queue = consumer
                .split_partition_queue(&self.topic, id)
                .ok_or_else(|| self.error(format!("no queue for partition {id}")))?;
            parts.push(Part {
                id,
                end,
                next: lo,
                queue,
                early: VecDeque::new(),
                head: None,
            });
        }
        self.serve_main(&consumer, &mut parts)?;
        let total: u64 = ranges.iter().map(|&(_, lo, hi)| (hi - lo) as u64).sum();
        let mut read = TopicRead::default();
        let mut count = 0u64;
        loop {
            for i in 0..parts.len() {
                if parts[i].done() || parts[i].head.is_some() {
                    continue;
                }
                while let Some(m) = self.next_message(&consumer, &mut parts, i)? {
                    count += 1;
                    *read.messages.entry(parts[i].id).or_default() += 1;
                    progress(count, total);
                    match Event::from_json(m.payload().unwrap_or_default()) {
                        Ok(e) => {
                            parts[i].head = Some((e, m.offset()));
                            break;
                        }
                        Err(e) => sink(parts[i].id, m.offset(), Err(e))?,
                    }
                }
            }
            let oldest = parts
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.head.as_ref().map(|(e, _)| (e.timestamp_ms, i)))
                .min();
            let Some((_, i)) = oldest else {
                return Ok(read);
            };
            if let Some((e, offset)) = parts[i].head.take() {
                sink(parts[i].id, offset, Ok(e))?;
            }
        }
    }

    /// Serves the consumer's callbacks; messages fetched between the assignment and the split
    /// of a partition's queue wait there and go to that partition.
    fn serve_main(&self, consumer: &BaseConsumer, parts: &mut [Part]) -> Result<(), Error> {
        while let Some(m) = consumer.poll(Duration::ZERO) {
            let m = m.map_err(|e| self.error(e))?.detach();
            if let Some(p) = parts.iter_mut().find(|p| p.id == m.partition()) {
                p.early.push_back(m);
            }
        }
        Ok(())
    }

    /// The next message of partition `i`, or `None` once it is read to its end.
    fn next_message(
        &self,
        consumer: &BaseConsumer,
        parts: &mut [Part],
        i: usize,
    ) -> Result<Option<OwnedMessage>, Error> {
        let waited = Instant::now();
        loop {
            let (id, next, end) = (parts[i].id, parts[i].next, parts[i].end);
            if parts[i].done() {
                return Ok(None);
            }
            let polled = match parts[i].early.pop_front() {
                Some(m) => Some(m),
                None => match parts[i].queue.poll(POLL) {
                    Some(m) => Some(
                        m.map_err(|e| self.error(format!("partition {id}: {e}")))?
                            .detach(),
                    ),
                    None => None,
                },
            };
            let Some(m) = polled else {
                // Skipped offsets (transaction markers, compaction) show in the position.
                self.serve_main(consumer, parts)?;
                if parts[i].early.is_empty() && self.position(consumer, id) >= end {
                    parts[i].next = end;
                    return Ok(None);
                }
                if waited.elapsed() >= STALL {
                    return Err(self.error(format!(
                        "partition {id} delivered nothing for {}s at offset {next} of {end}",
                        STALL.as_secs()
                    )));
                }
                continue;
            };
            if m.offset() < next {
                continue;
            }
            parts[i].next = m.offset() + 1;
            return Ok((m.offset() < end).then_some(m));
        }
    }

    /// The consumer's position in `partition` (−1 when unknown).
    fn position(&self, consumer: &BaseConsumer, partition: i32) -> i64 {
        consumer
            .position()
            .ok()
            .and_then(|tpl| {
                tpl.find_partition(&self.topic, partition)
                    .and_then(|e| e.offset().to_raw())
            })
            .unwrap_or(-1)
    }
}
