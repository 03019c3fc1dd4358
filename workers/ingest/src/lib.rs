//! `helios ingest`: HTTP events into Kafka.
//!
//! `POST /v1/events` takes one JSON event, a JSON array, or NDJSON (optionally gzip), validates
//! every event (all-or-nothing), and answers 2xx only once Kafka (idempotent producer,
//! `acks=all`) has acknowledged every event of the request. `POST /v1/traces` takes OTLP spans
//! (protobuf or JSON) and turns server/HTTP spans into the same events ([`otlp`]). While Kafka is unreachable a circuit
//! breaker answers 503 at once; a background probe closes it when the broker is back.
//!
//! ```text
//! client ─▶ auth ─▶ content type ─▶ admission (else 503, body drained) ─▶ size
//!        ─▶ decode/parse/validate ─▶ rate limit ─▶ breaker
//!        ─▶ in-flight bytes (backpressure) ─▶ produce + await acks ─▶ 200 {"accepted": n}
//! ```

pub mod body;
pub mod breaker;
pub mod config;
pub mod event;
pub mod http;
pub mod metrics;
pub mod otlp;
pub mod producer;
pub mod ratelimit;

pub use config::Args;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tracing::{info, warn};

/// Why the worker could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// The Kafka client could not be created or flushed.
    #[error("kafka: {0}")]
    Kafka(String),
    /// Metrics registration failed.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Listening or serving failed.
    #[error("http server: {0}")]
    Io(#[from] std::io::Error),
}

/// Run the worker until SIGTERM/SIGINT, then drain in-flight requests and flush the producer.
pub async fn run(args: Args) -> Result<(), Error> {
    let listener = TcpListener::bind(args.listen).await?;
    serve(args, listener, shutdown_signal()).await
}

/// Serve on an already bound listener until `shutdown` resolves (used by tests and benches).
pub async fn serve(
    args: Args,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let span_mapping = otlp::map::SpanMapping::from_keys(&args.otlp_attributes)
        .map_err(|e| Error::Config(e.to_string()))?;
    let metrics = metrics::Metrics::new()?;
    let producer = Arc::new(producer::EventProducer::new(&args, metrics.clone())?);
    if !producer.probe(Duration::from_secs(5)).await {
        warn!(topic = %args.topic, "Kafka not reachable at start-up: answering 503 until it is");
    }
    let probe = tokio::spawn(probe_loop(producer.clone()));
    let limiter = args.rate_limit_eps.map(|eps| {
        Mutex::new(ratelimit::TokenBucket::new(
            eps,
            args.rate_limit_burst.unwrap_or(eps),
            Instant::now(),
        ))
    });
    let permits = (args.max_inflight_bytes / 1024).clamp(1024, tokio::sync::Semaphore::MAX_PERMITS);
    let state = Arc::new(http::AppState {
        producer: producer.clone(),
        metrics,
        auth_token: args.auth_token.clone().filter(|t| !t.is_empty()),
        max_body_bytes: args.max_body_bytes,
        limiter,
        inflight: tokio::sync::Semaphore::new(permits),
        admission: tokio::sync::Semaphore::new(
            args.max_concurrent_requests
                .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
        ),
        span_mapping,
    });
    info!(addr = %listener.local_addr()?, topic = %args.topic, "ingest listening");
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    probe.abort();
    info!("draining: flushing the producer");
    producer.flush(Duration::from_secs(args.shutdown_timeout_secs))?;
    info!("ingest stopped");
    Ok(())
}

async fn probe_loop(producer: Arc<producer::EventProducer>) {
    loop {
        let open = producer.breaker_state() == breaker::State::Open;
        tokio::time::sleep(if open {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(5)
        })
        .await;
        if producer.breaker_state() == breaker::State::Open {
            producer.probe(Duration::from_secs(1)).await;
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    info!("shutdown signal received");
}
