//! Posts alerts to Alertmanager's v2 API (`POST /api/v2/alerts`) over HTTP or HTTPS, with a
//! bearer token or basic auth, to every configured Alertmanager (an HA cluster gets each alert
//! from each sender, as from Prometheus).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::alertmanager::alert::PostableAlert;

/// Longest one post may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a post (or the client) failed; the name is the metric label.
#[derive(Debug, thiserror::Error)]
pub enum AlertmanagerError {
    /// The settings are unusable (URL, CA file, credentials).
    #[error("alertmanager settings: {0}")]
    Config(String),
    /// No answer (connect, TLS, timeout).
    #[error("alertmanager {url} unreachable: {reason}")]
    Unreachable {
        /// The endpoint posted to.
        url: String,
        /// What failed.
        reason: String,
    },
    /// Alertmanager answered with an error status.
    #[error("alertmanager {url} answered {status}: {body}")]
    Refused {
        /// The endpoint posted to.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of its answer.
        body: String,
    },
}

impl AlertmanagerError {
    /// Stable name (metric label, log field).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Unreachable { .. } => "unreachable",
            Self::Refused { .. } => "refused",
        }
    }
}

/// How the worker authenticates to Alertmanager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// None.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// Username.
        username: String,
        /// Password.
        password: String,
    },
}

impl Auth {
    /// The `Authorization` header value.
    fn header(&self) -> Option<String> {
        match self {
            Self::None => None,
            Self::Bearer(t) => Some(format!("Bearer {t}")),
            Self::Basic { username, password } => Some(format!(
                "Basic {}",
                base64(format!("{username}:{password}").as_bytes())
            )),
        }
    }
}

/// Standard base64 with padding (RFC 4648), for basic auth.
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A client of one or more Alertmanagers.
#[derive(Clone, Debug)]
pub struct AlertmanagerClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    urls: Vec<String>,
    auth: Auth,
}

impl AlertmanagerClient {
    /// A client of `urls` (base URLs, e.g. `http://alertmanager:9093`) trusting the
    /// certificates of `ca_pem` (a PEM bundle) or else the platform's roots.
    pub fn new(
        urls: Vec<String>,
        auth: Auth,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, AlertmanagerError> {
        if urls.is_empty() {
            return Err(AlertmanagerError::Config("no Alertmanager URL".into()));
        }
        for u in &urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(AlertmanagerError::Config(format!(
                    "HELIOS_ALERTMANAGER_URL: {u:?} is not an http(s) URL"
                )));
            }
        }
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match ca_pem {
            Some(pem) => {
                let bad =
                    |e: String| AlertmanagerError::Config(format!("the Alertmanager CA: {e}"));
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem) {
                    roots
                        .add(cert.map_err(|e| bad(e.to_string()))?)
                        .map_err(|e| bad(e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(bad("no PEM certificate in it".into()));
                }
                let tls = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| bad(e.to_string()))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                builder.with_tls_config(tls)
            }
            None => builder
                .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
                .map_err(|e| AlertmanagerError::Config(format!("TLS roots: {e}")))?,
        };
        let connector = builder.https_or_http().enable_http1().build();
        Ok(Self {
            http: Client::builder(TokioExecutor::new()).build(connector),
            urls: urls
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            auth,
        })
    }

    /// Posts `alerts` to every Alertmanager; Ok when at least one took them (the others are
    /// logged: the next re-send reaches them).
    pub async fn post(&self, alerts: &[PostableAlert]) -> Result<(), AlertmanagerError> {
        let body = Bytes::from(
            serde_json::to_vec(alerts).map_err(|e| AlertmanagerError::Config(e.to_string()))?,
        );
        let mut first_error = None;
        let mut delivered = false;
        for url in &self.urls {
            match self.post_one(url, body.clone()).await {
                Ok(()) => delivered = true,
                Err(e) => {
                    tracing::warn!(error = %e, kind = e.name(), "posting alerts failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if !delivered => Err(e),
            _ => Ok(()),
        }
    }

    async fn post_one(&self, base: &str, body: Bytes) -> Result<(), AlertmanagerError> {
        let url = format!("{base}/api/v2/alerts");
        let mut req = http::Request::post(&url).header("content-type", "application/json");
        if let Some(h) = self.auth.header() {
            req = req.header("authorization", h);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| AlertmanagerError::Config(format!("{url}: {e}")))?;
        let unreachable = |reason: String| AlertmanagerError::Unreachable {
            url: url.clone(),
            reason,
        };
        let resp = tokio::time::timeout(POST_TIMEOUT, self.http.request(req))
            .await
            .map_err(|_| unreachable(format!("no answer in {POST_TIMEOUT:?}")))?
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| {
                String::from_utf8_lossy(&b.to_bytes())
                    .chars()
                    .take(300)
                    .collect()
            })
            .unwrap_or_default();
        Err(AlertmanagerError::Refused {
            url,
            status: status.as_u16(),
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_rfc_base64() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        let auth = Auth::Basic {
            username: "Aladdin".into(),
            password: "open sesame".into(),
        };
        assert_eq!(
            auth.header().as_deref(),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        assert_eq!(
            Auth::Bearer("t".into()).header().as_deref(),
            Some("Bearer t")
        );
        assert_eq!(Auth::None.header(), None);
    }

    #[test]
    fn a_url_that_is_not_http_is_refused_by_name() {
        let e = AlertmanagerClient::new(vec!["alertmanager:9093".into()], Auth::None, None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("HELIOS_ALERTMANAGER_URL") && e.contains("alertmanager:9093"),
            "{e}"
        );
        let missing = AlertmanagerClient::new(
            vec!["https://am:9093".into()],
            Auth::None,
            Some(b"not a certificate".as_slice()),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(missing.contains("Alertmanager CA"), "{missing}");
    }
}
