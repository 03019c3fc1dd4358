//! Errors of the evaluation code (file access and parsing).

use std::path::PathBuf;

use thiserror::Error;

use crate::DetectionError;

/// Errors while loading or evaluating a data set.
#[derive(Debug, Error)]
pub enum EvalError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// Path that failed.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A line could not be parsed.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// File being parsed.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// A JSON file could not be parsed.
    #[error("invalid json in {path}: {source}")]
    Json {
        /// File being parsed.
        path: PathBuf,
        /// Underlying error.
        source: serde_json::Error,
    },
    /// The data set is inconsistent (e.g. label count differs from row count).
    #[error("inconsistent data set: {0}")]
    Inconsistent(String),
    /// The detector failed.
    #[error(transparent)]
    Detection(#[from] DetectionError),
}

/// Reads a file to a string, mapping the error to [`EvalError::Io`].
pub(crate) fn read_to_string(path: &std::path::Path) -> Result<String, EvalError> {
    std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })
}
