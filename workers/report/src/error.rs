//! The crate's typed errors.

use std::path::PathBuf;

/// Everything that can stop a report from being produced.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The anomaly (the function's input) is malformed; the message names the field.
    #[error("invalid report request: {0}")]
    InvalidRequest(String),
    /// An object could not be written to S3.
    #[error("cannot write s3://{bucket}/{key}: {reason}")]
    S3Write {
        /// Target bucket.
        bucket: String,
        /// Target key.
        key: String,
        /// What the S3 client said.
        reason: String,
    },
    /// A local file could not be read or written (`--local` mode).
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("cannot read", "cannot write").
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The JSON document could not be serialised (should not happen with finite numbers).
    #[error("cannot serialise the report: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The configuration of the process is unusable (bad URL, bad TLS roots...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The Lambda runtime loop failed for good.
    #[error("lambda runtime: {0}")]
    Runtime(String),
}

impl Error {
    /// A short, stable type name, used as the Lambda `errorType`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidRequest(_) => "InvalidRequest",
            Error::S3Write { .. } => "S3WriteFailed",
            Error::Io { .. } => "IoError",
            Error::Serialize(_) => "SerializeFailed",
            Error::Config(_) => "InvalidConfiguration",
            Error::Runtime(_) => "RuntimeFailed",
        }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.kind().to_string(),
            error_message: e.to_string(),
        }
    }
}
