//! The `POST /v1/traces` handler: OTLP steps around the steps shared with `/v1/events`.

use super::decode::{self, Encoding};
use super::map::{self, Mapped};
use super::respond;
use crate::http::{ApiError, AppState, admit, authorize, produce, read_body};
use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use std::sync::Arc;
use tracing::debug;

/// `POST /v1/traces`: decode, map, produce the events, answer in the request's encoding.
#[tracing::instrument(
    name = "POST /v1/traces",
    skip_all,
    fields(spans, events, rejected, status)
)]
pub async fn post_traces(
    AxState(state): AxState<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let encoding = Encoding::from_content_type(content_type);
    // An unknown content type is answered in JSON (the sender's encoding is unknown).
    let answer_in = encoding.unwrap_or(Encoding::Json);
    let response = match handle(&state, &headers, body, encoding, content_type).await {
        Ok(mapped) => {
            let span = tracing::Span::current();
            span.record("spans", mapped.spans());
            span.record("events", mapped.events.len());
            span.record("rejected", mapped.rejected);
            respond::export(answer_in, &mapped)
        }
        Err(e) => {
            debug!(
                code = e.code(),
                message = e.message(),
                "OTLP request refused"
            );
            respond::error(answer_in, &e)
        }
    };
    state
        .metrics
        .requests
        .with_label_values(&[response.status().as_str()])
        .inc();
    tracing::Span::current().record("status", response.status().as_u16());
    response
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    encoding: Option<Encoding>,
    content_type: &str,
) -> Result<Mapped, ApiError> {
    authorize(state, headers)?;
    let encoding = encoding.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type {content_type:?} is not supported: use application/x-protobuf or application/json"
            ),
        )
    })?;
    let (_slot, body) = admit(state, body).await?;
    let decoded = read_body(state, headers, body).await?;
    let request = decode::traces(&decoded, encoding).map_err(|e| {
        state
            .metrics
            .events_refused
            .with_label_values(&["malformed"])
            .inc();
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_otlp", e.to_string())
    })?;
    let mapped = map::request(&request, &state.span_mapping);
    let outcomes = [
        ("event", mapped.events.len()),
        ("skipped", mapped.skipped),
        ("rejected", mapped.rejected),
    ];
    for (outcome, n) in outcomes {
        state
            .metrics
            .otlp_spans
            .with_label_values(&[outcome])
            .inc_by(n as u64);
    }
    if mapped.rejected > 0 {
        state
            .metrics
            .events_refused
            .with_label_values(&["invalid"])
            .inc_by(mapped.rejected as u64);
    }
    if !mapped.events.is_empty() {
        produce(state, &mapped.events, decoded.len()).await?;
    }
    Ok(mapped)
}
