//! Decoding a request body into validated events: content type (JSON object, JSON array or
//! NDJSON), optional gzip, size limits before and after decompression.

use crate::event::{self, Event, FieldError};
use serde::Serialize;
use serde_json::Value;
use std::io::Read;

/// Most per-event errors listed in one 400 response.
pub const MAX_REPORTED_ERRORS: usize = 20;

/// How the body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`: one event object or an array of events.
    Json,
    /// `application/x-ndjson` (also `application/ndjson`, `application/jsonl`): one event per line.
    Ndjson,
}

impl Format {
    /// The format for a `Content-Type` header value, or `None` when unsupported.
    pub fn from_content_type(value: &str) -> Option<Self> {
        let mime = value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/json" => Some(Format::Json),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines" => Some(Format::Ndjson),
            _ => None,
        }
    }
}

/// One refused event of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexedError {
    /// Zero-based position of the event in the batch (line number - 1 for NDJSON).
    pub index: usize,
    /// The offending field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Why a body was refused. Nothing of a refused body is written to Kafka.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyError {
    /// The decompressed body exceeds the limit.
    #[error("request body exceeds {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// `Content-Encoding` other than identity/gzip.
    #[error("unsupported Content-Encoding {0:?} (use gzip or none)")]
    UnsupportedEncoding(String),
    /// The gzip stream is corrupt.
    #[error("body is not valid gzip: {0}")]
    BadGzip(String),
    /// Not valid JSON.
    #[error("malformed JSON at event {index}: {message}")]
    Malformed {
        /// Event (or line) index where parsing failed.
        index: usize,
        /// The parser's message.
        message: String,
    },
    /// The body holds no event.
    #[error("the body holds no event")]
    Empty,
    /// One or more events failed validation.
    #[error("event {} is invalid: {}: {}", .errors[0].index, .errors[0].field, .errors[0].message)]
    Invalid {
        /// The first errors (at most [`MAX_REPORTED_ERRORS`]).
        errors: Vec<IndexedError>,
        /// How many events were invalid in total.
        invalid: usize,
    },
}

/// Undo `Content-Encoding`, refusing output larger than `limit` (a gzip bomb stops at the limit).
pub fn decode(raw: &[u8], encoding: Option<&str>, limit: usize) -> Result<Vec<u8>, BodyError> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()) {
        None => Ok(raw.to_vec()),
        Some(e) if e.is_empty() || e == "identity" => Ok(raw.to_vec()),
        Some(e) if e == "gzip" || e == "x-gzip" => {
            let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(limit));
            let mut reader = flate2::read::MultiGzDecoder::new(raw).take(limit as u64 + 1);
            reader
                .read_to_end(&mut out)
                .map_err(|e| BodyError::BadGzip(e.to_string()))?;
            if out.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
            Ok(out)
        }
        Some(other) => Err(BodyError::UnsupportedEncoding(other)),
    }
}

/// Parse and validate every event of a (decoded) body; all-or-nothing.
pub fn parse(body: &[u8], format: Format) -> Result<Vec<Event>, BodyError> {
    let values = match format {
        Format::Json => parse_json(body)?,
        Format::Ndjson => parse_ndjson(body)?,
    };
    if values.is_empty() {
        return Err(BodyError::Empty);
    }
    let mut events = Vec::with_capacity(values.len());
    let mut errors = Vec::new();
    let mut invalid = 0;
    for (index, value) in values.into_iter().enumerate() {
        match event::validate(value) {
            Ok(e) => events.push(e),
            Err(FieldError { field, message }) => {
                invalid += 1;
                if errors.len() < MAX_REPORTED_ERRORS {
                    errors.push(IndexedError {
                        index,
                        field,
                        message,
                    });
                }
            }
        }
    }
    if invalid > 0 {
        return Err(BodyError::Invalid { errors, invalid });
    }
    Ok(events)
}

fn parse_json(body: &[u8]) -> Result<Vec<Value>, BodyError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(single) => Ok(vec![single]),
        Err(e) => Err(BodyError::Malformed {
            index: 0,
            message: e.to_string(),
        }),
    }
}

fn parse_ndjson(body: &[u8]) -> Result<Vec<Value>, BodyError> {
    body.split(|b| *b == b'\n')
        .filter(|line| line.iter().any(|b| !b.is_ascii_whitespace()))
        .enumerate()
        .map(|(index, line)| {
            serde_json::from_slice(line).map_err(|e| BodyError::Malformed {
                index,
                message: e.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    const E: &str = r#"{"timestamp":1,"service":"a","status":200,"latency_ms":1}"#;

    #[test]
    fn content_types() {
        assert_eq!(
            Format::from_content_type("application/json; charset=utf-8"),
            Some(Format::Json)
        );
        assert_eq!(
            Format::from_content_type("application/x-ndjson"),
            Some(Format::Ndjson)
        );
        assert_eq!(Format::from_content_type("text/plain"), None);
    }

    #[test]
    fn single_array_and_ndjson() {
        assert_eq!(parse(E.as_bytes(), Format::Json).unwrap().len(), 1);
        assert_eq!(
            parse(format!("[{E},{E}]").as_bytes(), Format::Json)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            parse(format!("{E}\n\n{E}\n{E}\n").as_bytes(), Format::Ndjson)
                .unwrap()
                .len(),
            3
        );
        assert_eq!(parse(b"[]", Format::Json), Err(BodyError::Empty));
    }

    #[test]
    fn reports_index_and_field_of_bad_events() {
        let bad = r#"{"timestamp":1,"service":"a","status":200}"#;
        let err = parse(format!("[{E},{bad},{E},{bad}]").as_bytes(), Format::Json).unwrap_err();
        let BodyError::Invalid { errors, invalid } = err else {
            panic!("{err:?}")
        };
        assert_eq!(invalid, 2);
        assert_eq!(
            (errors[0].index, errors[0].field.as_str()),
            (1, "latency_ms")
        );
        assert_eq!(errors[1].index, 3);
        let err = parse(format!("{E}\n{{oops\n").as_bytes(), Format::Ndjson).unwrap_err();
        assert!(
            matches!(err, BodyError::Malformed { index: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn metric_overflowing_to_infinity_is_refused() {
        // serde_json refuses a number that overflows f64 while parsing: 400 malformed JSON.
        for body in [
            r#"{"timestamp":1,"service":"a","metrics":{"cpu":1e400}}"#,
            r#"{"timestamp":1,"service":"a","metrics":{"cpu":-1e309}}"#,
        ] {
            let err = parse(body.as_bytes(), Format::Json).unwrap_err();
            assert!(
                matches!(&err, BodyError::Malformed { index: 0, message } if message.contains("out of range")),
                "{err:?}"
            );
        }
        let ok = r#"{"timestamp":1,"service":"a","metrics":{"cpu":1.7e308}}"#;
        assert_eq!(
            parse(ok.as_bytes(), Format::Ndjson).unwrap()[0].metrics["cpu"],
            1.7e308
        );
    }

    #[test]
    fn gzip_round_trip_and_bomb_limit() {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(E.as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(decode(&gz, Some("gzip"), 1024).unwrap(), E.as_bytes());
        let mut enc = GzEncoder::new(Vec::new(), Compression::best());
        enc.write_all(&vec![b' '; 1 << 20]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 4096);
        assert_eq!(
            decode(&bomb, Some("gzip"), 1000),
            Err(BodyError::TooLarge { limit: 1000 })
        );
        assert!(matches!(
            decode(b"not gzip", Some("gzip"), 1000),
            Err(BodyError::BadGzip(_))
        ));
        assert!(matches!(
            decode(b"x", Some("br"), 1000),
            Err(BodyError::UnsupportedEncoding(_))
        ));
    }
}
