//! Where a Detector's anomalies page: a Prometheus Alertmanager (its v2 API), with the
//! credentials and CA read from Secrets.

use crate::common::{Duration, SecretKeyRef};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An Alertmanager (or the replicas of an HA cluster) the detect pods post anomalies to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!(has(self.bearerTokenSecretRef) && has(self.basicAuth))", "message": "alertmanager: set bearerTokenSecretRef or basicAuth, not both", "fieldPath": ".basicAuth"},
    {"rule": "!has(self.resendInterval) || duration(self.resendInterval) >= duration('1s')", "message": "alertmanager.resendInterval must be at least 1s", "fieldPath": ".resendInterval"}
]))]
pub struct AlertmanagerSpec {
    /// Base URL, e.g. `http://alertmanager.monitoring:9093` (alerts go to `/api/v2/alerts`).
    #[schemars(length(max = 2048), regex(pattern = r"^https?://[^\s,]+$"))]
    pub url: String,
    /// Further replicas of an HA cluster: each gets every alert, as from Prometheus.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 8),
        inner(length(max = 2048), regex(pattern = r"^https?://[^\s,]+$"))
    )]
    pub additional_urls: Vec<String>,
    /// Secret key holding a bearer token (`Authorization: Bearer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_secret_ref: Option<SecretKeyRef>,
    /// Secret keys holding basic-auth credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// Secret key holding the PEM CA bundle Alertmanager's certificate is checked against
    /// (default: the platform's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// How often firing alerts are re-posted (default `1m`); a posted alert lives four of
    /// these, so Alertmanager resolves it by itself if the detector goes away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resend_interval: Option<Duration>,
    /// Anomalies whose firing window ended longer ago than this (default `1h`) are recorded but
    /// not paged: replaying history pages nobody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<Duration>,
}

/// Basic-auth credentials from Secret keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    /// The username's Secret key.
    pub username_secret_ref: SecretKeyRef,
    /// The password's Secret key.
    pub password_secret_ref: SecretKeyRef,
}

impl AlertmanagerSpec {
    /// Every URL alerts go to, the primary first.
    pub fn urls(&self) -> Vec<String> {
        std::iter::once(self.url.clone())
            .chain(self.additional_urls.iter().cloned())
            .collect()
    }
}
