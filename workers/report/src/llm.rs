//! A small client for an OpenAI-compatible chat completions API: bounded time, one retry.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use crate::error::Error;
use crate::prompt::ChatMessage;
use crate::request::LlmConfig;

/// Pause before the single retry.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Largest error body excerpt kept in a message.
const EXCERPT: usize = 200;

/// Why the chat API gave no narrative.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    /// An attempt took longer than the configured timeout.
    #[error("timeout after {0} ms")]
    Timeout(u64),
    /// The API answered with an error status.
    #[error("HTTP {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status {
        /// HTTP status code.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// The connection failed.
    #[error("transport error: {0}")]
    Transport(String),
    /// The answer was not a chat completion, or was empty.
    #[error("bad response: {0}")]
    BadResponse(String),
    /// The configuration cannot be used (bad URL, key with invalid characters).
    #[error("bad configuration: {0}")]
    Config(String),
}

impl LlmError {
    fn retryable(&self) -> bool {
        match self {
            LlmError::Timeout(_) | LlmError::Transport(_) => true,
            LlmError::Status { status, .. } => *status == 429 || *status >= 500,
            LlmError::BadResponse(_) | LlmError::Config(_) => false,
        }
    }
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
}

/// An HTTP(S) client for chat completions (connections are pooled across invocations).
#[derive(Clone, Debug)]
pub struct LlmClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl LlmClient {
    /// A client trusting the platform's root certificates.
    pub fn new() -> Result<Self, Error> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| Error::Config(format!("TLS roots for the LLM client: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            http: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// The narrative for `messages`; at most two attempts of `timeout_ms` each.
    pub async fn complete(
        &self,
        cfg: &LlmConfig,
        messages: &[ChatMessage],
    ) -> Result<String, (LlmError, u32)> {
        let mut attempts = 1;
        let mut result = self.attempt(cfg, messages).await;
        if let Err(e) = &result
            && e.retryable()
        {
            tracing::warn!(error = %e, "LLM attempt failed; retrying once");
            tokio::time::sleep(RETRY_PAUSE).await;
            attempts += 1;
            result = self.attempt(cfg, messages).await;
        }
        result.map_err(|e| (e, attempts))
    }

    async fn attempt(&self, cfg: &LlmConfig, messages: &[ChatMessage]) -> Result<String, LlmError> {
        let url = format!("{}/chat/completions", cfg.base_url.trim_end_matches('/'));
        let body = serde_json::json!({
            "model": cfg.model,
            "messages": messages,
            "temperature": 0.2,
            "max_tokens": 400,
        });
        let mut req = http::Request::post(&url).header("content-type", "application/json");
        if let Some(key) = cfg.api_key.as_deref().filter(|k| !k.is_empty()) {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| LlmError::Config(format!("request to {url}: {e}")))?;
        let call = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| LlmError::Transport(error_chain(&e)))?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| LlmError::Transport(e.to_string()))?
                .to_bytes();
            Ok::<_, LlmError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(Duration::from_millis(cfg.timeout_ms), call)
            .await
            .map_err(|_| LlmError::Timeout(cfg.timeout_ms))??;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            return Err(LlmError::Status {
                status: status.as_u16(),
                body: text
                    .chars()
                    .take(EXCERPT)
                    .collect::<String>()
                    .trim()
                    .to_string(),
            });
        }
        parse_completion(&bytes)
    }
}

/// The text of the first choice of a chat completion.
pub fn parse_completion(bytes: &[u8]) -> Result<String, LlmError> {
    let c: Completion =
        serde_json::from_slice(bytes).map_err(|e| LlmError::BadResponse(e.to_string()))?;
    let text = c
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message.content)
        .map(|t| t.trim().to_string())
        .unwrap_or_default();
    if text.is_empty() {
        return Err(LlmError::BadResponse("empty completion".to_string()));
    }
    Ok(text)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_completions() {
        let ok = br#"{"choices":[{"message":{"role":"assistant","content":"  It broke. "}}]}"#;
        assert_eq!(parse_completion(ok).unwrap(), "It broke.");
        let empty = br#"{"choices":[]}"#;
        assert!(matches!(
            parse_completion(empty),
            Err(LlmError::BadResponse(_))
        ));
        assert!(parse_completion(b"<html>").is_err());
    }

    #[test]
    fn messages_and_retry_policy() {
        assert_eq!(LlmError::Timeout(2000).to_string(), "timeout after 2000 ms");
        assert_eq!(
            LlmError::Status {
                status: 500,
                body: String::new()
            }
            .to_string(),
            "HTTP 500"
        );
        assert!(
            LlmError::Status {
                status: 503,
                body: String::new()
            }
            .retryable()
        );
        assert!(
            !LlmError::Status {
                status: 401,
                body: String::new()
            }
            .retryable()
        );
    }
}
