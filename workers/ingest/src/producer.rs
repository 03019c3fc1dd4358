//! The Kafka side: an idempotent producer (`acks=all`) whose batch send resolves only when Kafka
//! has acknowledged every event, and the circuit breaker fed by its outcomes.

use crate::breaker::{Breaker, State};
use crate::config::Args;
use crate::event::Event;
use crate::metrics::Metrics;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer, ProducerContext};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Why a batch was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The breaker is open: Kafka is known to be unreachable.
    #[error("Kafka is unreachable; retry later")]
    Unavailable,
    /// Kafka did not acknowledge in time or the connection failed.
    #[error("Kafka did not acknowledge the events: {0}")]
    Failed(String),
    /// An event is larger than the broker accepts.
    #[error("an event exceeds Kafka's maximum message size")]
    TooLarge,
}

/// Shared breaker handle (the producer context trips it from librdkafka's thread).
pub type SharedBreaker = Arc<Mutex<Breaker>>;

/// librdkafka callbacks: an "all brokers down" error opens the breaker at once.
pub struct Context {
    breaker: SharedBreaker,
    metrics: Metrics,
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown)
        ) {
            let mut b = self.breaker.lock().unwrap_or_else(PoisonError::into_inner);
            b.trip(Instant::now());
            self.metrics.breaker_open.set(1);
            warn!(%reason, "all Kafka brokers are down: circuit breaker open");
        } else {
            warn!(%error, %reason, "kafka client error");
        }
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// The events producer.
pub struct EventProducer {
    /// Replaced by a fresh producer if librdkafka reports a fatal (idempotence) error.
    producer: std::sync::RwLock<FutureProducer<Context>>,
    config: ClientConfig,
    topic: String,
    breaker: SharedBreaker,
    metrics: Metrics,
    timeout: Duration,
    /// A probe closed the breaker and no send has succeeded since.
    probe_closed: std::sync::atomic::AtomicBool,
    /// Times the breaker re-opened right after a probe closed it (the broker answers metadata
    /// but this producer cannot deliver): at [`RELAPSES_BEFORE_RESET`] the producer is replaced.
    relapses: std::sync::atomic::AtomicU32,
}

/// Breaker relapses after a successful probe before the producer is replaced.
const RELAPSES_BEFORE_RESET: u32 = 2;

impl EventProducer {
    /// Create the producer from the worker's arguments.
    pub fn new(args: &Args, metrics: Metrics) -> Result<Self, crate::Error> {
        let breaker = Arc::new(Mutex::new(Breaker::new(
            args.breaker_failures,
            Duration::from_secs(args.breaker_retry_after_secs),
        )));
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &args.kafka_bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", args.linger_ms.to_string())
            .set("batch.num.messages", "10000")
            .set("batch.size", "1000000")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", args.produce_timeout_ms.to_string())
            .set("queue.buffering.max.messages", "1000000")
            .set("queue.buffering.max.kbytes", "1048576")
            .set("reconnect.backoff.ms", "50")
            .set("reconnect.backoff.max.ms", "1000");
        if let Some(user) = &args.kafka_sasl_username {
            cfg.set("sasl.username", user);
        }
        if let Some(pass) = &args.kafka_sasl_password {
            cfg.set("sasl.password", pass);
        }
        for (k, v) in args.extra_properties()? {
            cfg.set(k, v);
        }
        let producer = Self::create(&cfg, &breaker, &metrics)?;
        Ok(Self {
            producer: std::sync::RwLock::new(producer),
            config: cfg,
            topic: args.topic.clone(),
            breaker,
            metrics,
            timeout: args.produce_timeout(),
            probe_closed: std::sync::atomic::AtomicBool::new(false),
            relapses: std::sync::atomic::AtomicU32::new(0),
        })
    }

    fn create(
        cfg: &ClientConfig,
        breaker: &SharedBreaker,
        metrics: &Metrics,
    ) -> Result<FutureProducer<Context>, crate::Error> {
        let context = Context {
            breaker: breaker.clone(),
            metrics: metrics.clone(),
        };
        cfg.create_with_context(context)
            .map_err(|e| crate::Error::Kafka(e.to_string()))
    }

    fn current(&self) -> FutureProducer<Context> {
        self.producer
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// After a fatal producer error (e.g. the idempotence state cannot be recovered), replace the
    /// producer; requests in flight on the old one fail (503) and are never acknowledged.
    fn reset_if_fatal(&self) {
        let current = self.current();
        if let Some((code, reason)) = current.client().fatal_error() {
            warn!(?code, %reason, "fatal Kafka producer error: creating a new producer");
            self.replace();
        }
    }

    /// Replace the producer with a fresh one (requests in flight on the old one fail with 503).
    fn replace(&self) {
        match Self::create(&self.config, &self.breaker, &self.metrics) {
            Ok(fresh) => {
                *self
                    .producer
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = fresh
            }
            Err(e) => warn!(%e, "could not create a new producer"),
        }
    }

    /// The breaker's current state.
    pub fn breaker_state(&self) -> State {
        self.breaker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .state()
    }

    /// `Retry-After` while the breaker is open.
    pub fn retry_after(&self) -> Duration {
        self.breaker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retry_after()
    }

    /// Ask a broker for the topic's metadata; closes the breaker when it answers.
    pub async fn probe(self: &Arc<Self>, timeout: Duration) -> bool {
        self.reset_if_fatal();
        let producer = self.current();
        let topic = self.topic.clone();
        let ok = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .map(|md| {
                    md.topics()
                        .iter()
                        .any(|t| t.error().is_none() && !t.partitions().is_empty())
                })
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let mut b = self.breaker.lock().unwrap_or_else(PoisonError::into_inner);
        if ok {
            if b.state() == State::Open {
                info!("Kafka reachable again: circuit breaker closed");
                self.probe_closed.store(true, Ordering::Relaxed);
            }
            b.on_probe_success();
            self.metrics.breaker_open.set(0);
        } else {
            b.trip(Instant::now());
            self.metrics.breaker_open.set(1);
        }
        ok
    }

    /// Enqueue every event (keyed by service) and wait until Kafka acknowledged all of them.
    pub async fn send_batch(&self, events: &[Event]) -> Result<(), ProduceError> {
        if self.breaker_state() == State::Open {
            return Err(ProduceError::Unavailable);
        }
        let producer = self.current();
        let started = Instant::now();
        let deadline = started + self.timeout;
        let mut pending = Vec::with_capacity(events.len());
        let mut payload = Vec::with_capacity(256);
        for event in events {
            payload.clear();
            serde_json::to_writer(&mut payload, event)
                .map_err(|e| ProduceError::Failed(e.to_string()))?;
            loop {
                let record = FutureRecord::to(&self.topic)
                    .key(event.service.as_str())
                    .payload(payload.as_slice());
                match producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        // Backpressure: the local queue is full; wait for acknowledgements.
                        if Instant::now() >= deadline {
                            return Err(self.failed("producer queue stayed full".into()));
                        }
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Err((
                        KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                        _,
                    )) => {
                        return Err(ProduceError::TooLarge);
                    }
                    Err((e, _)) => return Err(self.failed(e.to_string())),
                }
            }
        }
        self.metrics
            .queue_depth
            .set(i64::from(producer.in_flight_count()));
        for delivery in futures::future::join_all(pending).await {
            match delivery {
                Ok(Ok(_)) => {}
                Ok(Err((
                    KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                    _,
                ))) => {
                    return Err(ProduceError::TooLarge);
                }
                Ok(Err((e, _))) => return Err(self.failed(e.to_string())),
                Err(_) => return Err(self.failed("delivery canceled".into())),
            }
        }
        self.metrics
            .produce_latency
            .observe(started.elapsed().as_secs_f64());
        self.breaker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .on_success();
        self.metrics.breaker_open.set(0);
        self.probe_closed.store(false, Ordering::Relaxed);
        self.relapses.store(0, Ordering::Relaxed);
        Ok(())
    }

    fn failed(&self, reason: String) -> ProduceError {
        self.reset_if_fatal();
        let reopened = {
            let mut b = self.breaker.lock().unwrap_or_else(PoisonError::into_inner);
            let was_open = b.state() == State::Open;
            b.on_failure(Instant::now());
            let open = b.state() == State::Open;
            if open {
                self.metrics.breaker_open.set(1);
            }
            open && !was_open
        };
        if reopened && self.probe_closed.swap(false, Ordering::Relaxed) {
            let n = self.relapses.fetch_add(1, Ordering::Relaxed) + 1;
            if n >= RELAPSES_BEFORE_RESET {
                warn!(
                    relapses = n,
                    "the broker answers but this producer cannot deliver: creating a new producer"
                );
                self.relapses.store(0, Ordering::Relaxed);
                self.replace();
            }
        }
        warn!(%reason, "produce failed");
        ProduceError::Failed(reason)
    }

    /// Wait up to `timeout` for every queued message to be acknowledged.
    pub fn flush(&self, timeout: Duration) -> Result<(), crate::Error> {
        self.current()
            .flush(timeout)
            .map_err(|e| crate::Error::Kafka(e.to_string()))
    }
}
