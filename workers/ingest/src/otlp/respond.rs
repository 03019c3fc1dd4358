//! OTLP/HTTP answers in the request's encoding: `ExportTraceServiceResponse` (with
//! `partialSuccess` when spans were rejected) on 200, a `google.rpc.Status` on errors.

use super::decode::Encoding;
use super::map::Mapped;
use crate::http::ApiError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;

/// `google.rpc.Status`, the body OTLP/HTTP prescribes for error answers (its `details` are
/// never set here, so the field is left out).
#[derive(Clone, PartialEq, Eq, prost::Message, serde::Serialize)]
pub struct RpcStatus {
    /// The gRPC status code.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// What was wrong, for the sender's logs.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// The export response for a mapped request: `partialSuccess` only when a span was rejected.
pub fn export_response(mapped: &Mapped) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: mapped
            .error_message()
            .map(|error_message| ExportTracePartialSuccess {
                rejected_spans: i64::try_from(mapped.rejected).unwrap_or(i64::MAX),
                error_message,
            }),
    }
}

/// 200 with the export response in `encoding`.
pub fn export(encoding: Encoding, mapped: &Mapped) -> Response {
    let resp = export_response(mapped);
    let body = match encoding {
        Encoding::Protobuf => resp.encode_to_vec(),
        // Full success is `{}` rather than `{"partialSuccess":null}`.
        Encoding::Json if resp.partial_success.is_none() => b"{}".to_vec(),
        Encoding::Json => serde_json::to_vec(&resp).unwrap_or_else(|_| b"{}".to_vec()),
    };
    with_body(StatusCode::OK, encoding, body)
}

/// The error `err` as a `google.rpc.Status` in `encoding`, keeping its status and headers.
pub fn error(encoding: Encoding, err: &ApiError) -> Response {
    let status = RpcStatus {
        code: grpc_code(err.status()),
        message: err.message().to_string(),
    };
    let body = match encoding {
        Encoding::Protobuf => status.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&status).unwrap_or_default(),
    };
    let mut resp = with_body(err.status(), encoding, body);
    err.add_headers(resp.headers_mut());
    resp
}

/// The gRPC code OTLP pairs with an HTTP status (retryable ones: RESOURCE_EXHAUSTED, UNAVAILABLE).
fn grpc_code(status: StatusCode) -> i32 {
    match status.as_u16() {
        400 | 413 | 415 => 3, // INVALID_ARGUMENT
        401 => 16,            // UNAUTHENTICATED
        429 => 8,             // RESOURCE_EXHAUSTED
        503 => 14,            // UNAVAILABLE
        _ => 13,              // INTERNAL
    }
}

fn with_body(status: StatusCode, encoding: Encoding, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn full_and_partial_success_in_both_encodings() {
        let full = Mapped::default();
        let resp = export(Encoding::Json, &full);
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(&body[..], b"{}");
        let resp = export(Encoding::Protobuf, &full);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/x-protobuf"
        );
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        assert!(body.is_empty(), "an empty message encodes to nothing");

        let partial = Mapped {
            rejected: 2,
            errors: Vec::new(),
            ..Default::default()
        };
        let body = axum::body::to_bytes(export(Encoding::Json, &partial).into_body(), 1 << 20)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["partialSuccess"]["rejectedSpans"], 2, "{v}");
        assert_eq!(
            v["partialSuccess"]["errorMessage"],
            "2 of 2 spans rejected: ; and 2 more"
        );
        let body = axum::body::to_bytes(export(Encoding::Protobuf, &partial).into_body(), 1 << 20)
            .await
            .unwrap();
        let decoded = ExportTraceServiceResponse::decode(&body[..]).unwrap();
        assert_eq!(decoded.partial_success.unwrap().rejected_spans, 2);
    }

    #[tokio::test]
    async fn errors_are_rpc_statuses() {
        let err = ApiError::new(StatusCode::BAD_REQUEST, "bad_otlp", "body is not protobuf");
        let resp = error(Encoding::Protobuf, &err);
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let status = RpcStatus::decode(&body[..]).unwrap();
        assert_eq!(
            (status.code, status.message.as_str()),
            (3, "body is not protobuf")
        );
        let resp = error(Encoding::Json, &err);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"code": 3, "message": "body is not protobuf"})
        );
    }
}
