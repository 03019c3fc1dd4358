//! Where the objects go: S3 (the hook) or a local directory (`helios report --local`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;

use crate::error::Error;
use crate::request::ReportConfig;

/// Region used when neither the request nor `AWS_REGION` names one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// One object to write.
#[derive(Debug, Clone)]
pub struct Object {
    /// Key.
    pub key: String,
    /// Content.
    pub body: String,
    /// MIME type.
    pub content_type: &'static str,
}

/// An access key pair given explicitly instead of through the environment.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// S3 clients per (endpoint, region), built from the environment's credentials.
#[derive(Debug, Default)]
pub struct S3Clients {
    default_endpoint: Option<String>,
    credentials: Option<StaticCredentials>,
    clients: Mutex<HashMap<(Option<String>, String), aws_sdk_s3::Client>>,
}

impl S3Clients {
    /// Clients that use `default_endpoint` when a request names none, and `credentials`
    /// (else `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`).
    pub fn new(default_endpoint: Option<String>, credentials: Option<StaticCredentials>) -> Self {
        Self {
            default_endpoint,
            credentials,
            clients: Mutex::default(),
        }
    }

    fn client(&self, cfg: &ReportConfig) -> Result<aws_sdk_s3::Client, Error> {
        let endpoint = cfg
            .endpoint
            .clone()
            .or_else(|| self.default_endpoint.clone())
            .filter(|e| !e.is_empty());
        let region = cfg
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        let cache_key = (endpoint.clone(), region.clone());
        if let Ok(map) = self.clients.lock()
            && let Some(c) = map.get(&cache_key)
        {
            return Ok(c.clone());
        }
        let creds = match &self.credentials {
            Some(c) => {
                Credentials::new(&c.access_key_id, &c.secret_access_key, None, None, "static")
            }
            None => env_credentials()?,
        };
        let client = build_client(endpoint, region, creds);
        if let Ok(mut map) = self.clients.lock() {
            map.insert(cache_key, client.clone());
        }
        Ok(client)
    }

    /// Write the objects to `cfg.bucket`, in order; the first failure stops the write.
    pub async fn put_all(&self, cfg: &ReportConfig, objects: &[Object]) -> Result<(), Error> {
        let client = self.client(cfg)?;
        for o in objects {
            client
                .put_object()
                .bucket(&cfg.bucket)
                .key(&o.key)
                .content_type(o.content_type)
                .body(ByteStream::from(o.body.clone().into_bytes()))
                .send()
                .await
                .map_err(|e| Error::S3Write {
                    bucket: cfg.bucket.clone(),
                    key: o.key.clone(),
                    reason: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
                })?;
            tracing::debug!(bucket = %cfg.bucket, key = %o.key, "wrote object");
        }
        Ok(())
    }
}

/// Credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN` (what
/// Lambda gives a function for its execution role).
fn env_credentials() -> Result<Credentials, Error> {
    let id = std::env::var("AWS_ACCESS_KEY_ID")
        .ok()
        .filter(|v| !v.is_empty());
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY")
        .ok()
        .filter(|v| !v.is_empty());
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Credentials::new(
            id,
            secret,
            std::env::var("AWS_SESSION_TOKEN").ok().filter(|v| !v.is_empty()),
            None,
            "environment",
        )),
        _ => Err(Error::Config(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set (Lambda sets them from the execution role)"
                .to_string(),
        )),
    }
}

fn build_client(
    endpoint: Option<String>,
    region: String,
    creds: Credentials,
) -> aws_sdk_s3::Client {
    let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(30))
        .build();
    let mut b = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(creds)
        .timeout_config(timeouts);
    if let Some(ep) = endpoint {
        b = b.endpoint_url(ep).force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(b.build())
}

/// Write the objects under `dir` (keys become relative paths); returns the file paths.
pub fn write_dir(dir: &std::path::Path, objects: &[Object]) -> Result<Vec<PathBuf>, Error> {
    let mut paths = Vec::with_capacity(objects.len());
    for o in objects {
        let path = dir.join(&o.key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                action: "cannot create",
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, &o.body).map_err(|source| Error::Io {
            action: "cannot write",
            path: path.clone(),
            source,
        })?;
        paths.push(path);
    }
    Ok(paths)
}
