//! The HTTP surface: `POST /v1/events`, `POST /v1/traces` (OTLP, see [`crate::otlp`]),
//! `/healthz`, `/readyz`, `/metrics`; and the steps both POST routes share (authentication, body
//! limit and decompression, rate limit, breaker, in-flight bound, produce).

use crate::body::{self, BodyError, Format};
use crate::breaker::State;
use crate::event::Event;
use crate::metrics::Metrics;
use crate::otlp;
use crate::producer::{EventProducer, ProduceError};
use crate::ratelimit::{Decision, TokenBucket};
use axum::Router;
use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde_json::json;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Everything a request handler needs.
pub struct AppState {
    /// The Kafka producer.
    pub producer: Arc<EventProducer>,
    /// Metrics.
    pub metrics: Metrics,
    /// Expected bearer token, if any.
    pub auth_token: Option<String>,
    /// Body limit in bytes (after decompression).
    pub max_body_bytes: usize,
    /// Token bucket, if rate limited.
    pub limiter: Option<Mutex<TokenBucket>>,
    /// In-flight bytes (KiB permits): backpressure instead of unbounded memory.
    pub inflight: Semaphore,
    /// How OTLP spans become events (which attributes are copied).
    pub span_mapping: otlp::map::SpanMapping,
    /// Slots for requests holding a body (`--max-concurrent-requests`); none free means shed.
    pub admission: Semaphore,
}

/// `Retry-After` of a request shed for overload.
pub const SHED_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/events", post(post_events))
        .route("/v1/traces", post(otlp::route::post_traces))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// An error answer: status, stable code, message, and optional details.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: serde_json::Value,
    retry_after: Option<Duration>,
}

impl ApiError {
    /// An error answer without details or `Retry-After`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: json!({}),
            retry_after: None,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable error code (`rate_limited`, `kafka_unavailable`, ...).
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The `Retry-After` header value in whole seconds (at least 1), when the error is retryable.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
            .map(|after| after.as_secs_f64().ceil().max(1.0) as u64)
    }

    /// `Retry-After` on retryable errors and `WWW-Authenticate` on 401, whatever the body shape.
    pub fn add_headers(&self, headers: &mut HeaderMap) {
        if let Some(secs) = self.retry_after_secs()
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error =
            json!({"status": self.status.as_u16(), "code": self.code, "message": self.message});
        if let (Some(obj), Some(extra)) = (error.as_object_mut(), self.details.as_object()) {
            obj.extend(extra.clone());
        }
        let mut resp = (self.status, axum::Json(json!({ "error": error }))).into_response();
        self.add_headers(resp.headers_mut());
        resp
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        let message = e.to_string();
        match e {
            BodyError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message)
            }
            BodyError::UnsupportedEncoding(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                message,
            ),
            BodyError::BadGzip(_) => ApiError::new(StatusCode::BAD_REQUEST, "bad_gzip", message),
            BodyError::Empty => ApiError::new(StatusCode::BAD_REQUEST, "empty", message),
            BodyError::Malformed { index, .. } => ApiError {
                details: json!({ "index": index }),
                ..ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", message)
            },
            BodyError::Invalid { errors, invalid } => {
                let first = errors.first().cloned();
                ApiError {
                    details: json!({
                        "index": first.as_ref().map(|f| f.index),
                        "field": first.as_ref().map(|f| f.field.clone()),
                        "invalid": invalid,
                        "errors": errors,
                    }),
                    ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_event", message)
                }
            }
        }
    }
}

#[tracing::instrument(name = "POST /v1/events", skip_all, fields(events, status))]
async fn post_events(
    AxState(state): AxState<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = handle(&state, &headers, body).await;
    if let Ok(n) = &result {
        tracing::Span::current().record("events", n);
    }
    let response = match result {
        Ok(accepted) => {
            (StatusCode::OK, axum::Json(json!({ "accepted": accepted }))).into_response()
        }
        Err(e) => e.into_response(),
    };
    state
        .metrics
        .requests
        .with_label_values(&[response.status().as_str()])
        .inc();
    tracing::Span::current().record("status", response.status().as_u16());
    response
}

async fn handle(state: &AppState, headers: &HeaderMap, body: Body) -> Result<usize, ApiError> {
    authorize(state, headers)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = Format::from_content_type(content_type).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type {content_type:?} is not supported: use application/json or application/x-ndjson"),
        )
    })?;
    let (_slot, body) = admit(state, body).await?;
    let decoded = read_body(state, headers, body).await?;
    let events = body::parse(&decoded, format).inspect_err(|e| {
        let reason = if matches!(e, BodyError::Invalid { .. }) {
            "invalid"
        } else {
            "malformed"
        };
        state
            .metrics
            .events_refused
            .with_label_values(&[reason])
            .inc();
    })?;
    produce(state, &events, decoded.len()).await
}

/// A slot for a request that will hold its body, or, when every slot is taken, 503 with
/// `Retry-After` after draining the body frame by frame (nothing buffered: the sender gets a
/// clean answer, not a reset, and a shed request holds no memory). Stops draining past the body
/// limit (the connection is then closed).
pub async fn admit(state: &AppState, body: Body) -> Result<(SemaphorePermit<'_>, Body), ApiError> {
    if let Ok(slot) = state.admission.try_acquire() {
        return Ok((slot, body));
    }
    state.metrics.requests_shed.inc();
    let mut drained = 0usize;
    let mut frames = body.into_data_stream();
    while let Some(Ok(chunk)) = frames.next().await {
        drained += chunk.len();
        if drained > state.max_body_bytes {
            break;
        }
    }
    Err(ApiError {
        retry_after: Some(SHED_RETRY_AFTER),
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many requests in progress; retry later",
        )
    })
}

/// The request body, size-checked (declared length, then read, then decompressed) and with its
/// `Content-Encoding` undone.
pub async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > state.max_body_bytes) {
        return Err(BodyError::TooLarge {
            limit: state.max_body_bytes,
        }
        .into());
    }
    let raw = axum::body::to_bytes(body, state.max_body_bytes)
        .await
        .map_err(|_| {
            ApiError::from(BodyError::TooLarge {
                limit: state.max_body_bytes,
            })
        })?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    Ok(body::decode(&raw, encoding, state.max_body_bytes)?)
}

/// Rate limit, breaker, in-flight bound (`body_bytes` worth of permits), then produce every
/// event and wait for Kafka's acknowledgements: `Ok(n)` only once all `n` are in Kafka.
pub async fn produce(
    state: &AppState,
    events: &[Event],
    body_bytes: usize,
) -> Result<usize, ApiError> {
    rate_limit(state, events.len())?;
    if state.producer.breaker_state() == State::Open {
        state
            .metrics
            .events_refused
            .with_label_values(&["unavailable"])
            .inc_by(events.len() as u64);
        return Err(unavailable(state));
    }
    let kib = u32::try_from(body_bytes / 1024 + 1).unwrap_or(u32::MAX);
    let permit = tokio::time::timeout(Duration::from_secs(5), state.inflight.acquire_many(kib))
        .await
        .map_err(|_| unavailable(state))?
        .map_err(|_| unavailable(state))?;
    let sent = state.producer.send_batch(events).await;
    drop(permit);
    match sent {
        Ok(()) => {
            state.metrics.events_accepted.inc_by(events.len() as u64);
            Ok(events.len())
        }
        Err(e) => {
            state
                .metrics
                .events_refused
                .with_label_values(&["kafka"])
                .inc_by(events.len() as u64);
            Err(match e {
                ProduceError::TooLarge => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "event_too_large",
                    e.to_string(),
                ),
                ProduceError::Unavailable | ProduceError::Failed(_) => ApiError {
                    retry_after: Some(state.producer.retry_after()),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "kafka_unavailable",
                        e.to_string(),
                    )
                },
            })
        }
    }
}

fn unavailable(state: &AppState) -> ApiError {
    ApiError {
        retry_after: Some(state.producer.retry_after()),
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "kafka_unavailable",
            "Kafka is unreachable; retry later",
        )
    }
}

/// Check the bearer token (constant-time) when one is configured.
pub fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &state.auth_token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(token) if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the bearer token is not valid",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing `Authorization: Bearer <token>` header",
        )),
    }
}

fn rate_limit(state: &AppState, events: usize) -> Result<(), ApiError> {
    let Some(limiter) = &state.limiter else {
        return Ok(());
    };
    let decision = limiter
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take(events as u64, Instant::now());
    match decision {
        Decision::Allow => Ok(()),
        Decision::RetryAfter(after) => {
            state
                .metrics
                .events_refused
                .with_label_values(&["rate_limited"])
                .inc_by(events as u64);
            Err(ApiError {
                retry_after: Some(after),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "rate limit exceeded; retry later",
                )
            })
        }
        Decision::TooBig { burst } => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_exceeds_burst",
            format!(
                "a batch of {events} events exceeds the rate limit's burst of {burst}: split it"
            ),
        )),
    }
}

async fn readyz(AxState(state): AxState<Arc<AppState>>) -> Response {
    match state.producer.breaker_state() {
        State::Closed => (StatusCode::OK, "ok").into_response(),
        State::Open => (StatusCode::SERVICE_UNAVAILABLE, "kafka unreachable").into_response(),
    }
}

async fn metrics(AxState(state): AxState<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
