//! Recognising an OTLP request's encoding and decoding its (already decompressed) body.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// The wire encoding of an OTLP/HTTP request (and so of its response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`: binary protobuf.
    Protobuf,
    /// `application/json`: OTLP/JSON (lowerCamelCase keys, hex ids, 64-bit integers as strings).
    Json,
}

impl Encoding {
    /// The encoding for a `Content-Type` header value, or `None` when OTLP/HTTP does not define it.
    pub fn from_content_type(value: &str) -> Option<Self> {
        let mime = value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Self::Protobuf),
            "application/json" => Some(Self::Json),
            _ => None,
        }
    }

    /// The `Content-Type` of a response in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// Why a body is not an `ExportTraceServiceRequest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is not a valid protobuf `ExportTraceServiceRequest`.
    #[error("body is not a protobuf ExportTraceServiceRequest: {0}")]
    Protobuf(String),
    /// The body is not valid OTLP/JSON.
    #[error("body is not an OTLP/JSON ExportTraceServiceRequest: {0}")]
    Json(String),
}

/// Decode a trace export request in `encoding`.
pub fn traces(body: &[u8], encoding: Encoding) -> Result<ExportTraceServiceRequest, DecodeError> {
    match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body)
            .map_err(|e| DecodeError::Protobuf(e.to_string())),
        Encoding::Json => {
            serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            Encoding::from_content_type("application/x-protobuf"),
            Some(Encoding::Protobuf)
        );
        assert_eq!(
            Encoding::from_content_type("Application/JSON; charset=utf-8"),
            Some(Encoding::Json)
        );
        assert_eq!(Encoding::from_content_type("application/x-ndjson"), None);
        assert_eq!(Encoding::from_content_type(""), None);
    }

    #[test]
    fn decodes_otlp_json_with_hex_ids_and_string_int64() {
        let body = br#"{"resourceSpans":[{"resource":{"attributes":[
            {"key":"service.name","value":{"stringValue":"checkout"}}]},
            "scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",
            "spanId":"eee19b7ec3c1b174","name":"GET /pay","kind":2,
            "startTimeUnixNano":"1795514400000000000","endTimeUnixNano":"1795514400012500000",
            "attributes":[{"key":"http.response.status_code","value":{"intValue":"503"}}],
            "status":{"code":2},"unknownField":true}]}]}]}"#;
        let req = traces(body, Encoding::Json).unwrap();
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(
            span.span_id,
            [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]
        );
        assert_eq!(span.start_time_unix_nano, 1_795_514_400_000_000_000);
        assert_eq!(span.kind, 2);
        // Round trip through protobuf.
        let again = traces(&req.encode_to_vec(), Encoding::Protobuf).unwrap();
        assert_eq!(again, req);
    }

    #[test]
    fn names_what_is_wrong() {
        let err = traces(b"\xff\xff\xff", Encoding::Protobuf).unwrap_err();
        assert!(matches!(err, DecodeError::Protobuf(_)), "{err}");
        let err = traces(
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"zz"}]}]}]}"#,
            Encoding::Json,
        )
        .unwrap_err();
        assert!(err.to_string().contains("OTLP/JSON"), "{err}");
        let err = traces(b"{not json", Encoding::Json).unwrap_err();
        assert!(matches!(err, DecodeError::Json(_)), "{err}");
    }
}
