//! Typed errors of the detection library.

use thiserror::Error;

/// Everything that can go wrong in the pure detection code.
#[derive(Debug, Error)]
pub enum DetectionError {
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A model was asked to train on no rows.
    #[error("cannot train on an empty data set")]
    EmptyTrainingSet,
    /// A row does not have the number of features the model expects.
    #[error("dimension mismatch: expected {expected} features, got {got}")]
    DimensionMismatch {
        /// Number of features the model was trained with.
        expected: usize,
        /// Number of features supplied.
        got: usize,
    },
    /// A value is NaN or infinite where a finite number is required.
    #[error("non-finite value in feature {feature}")]
    NonFinite {
        /// Index of the offending feature.
        feature: usize,
    },
    /// A snapshot has a version this library cannot read.
    #[error("unsupported snapshot version {found} (supported: {supported})")]
    UnsupportedSnapshotVersion {
        /// Version found in the snapshot.
        found: u32,
        /// Version this library writes and reads.
        supported: u32,
    },
    /// A snapshot is structurally invalid (e.g. a child index out of range).
    #[error("corrupt snapshot: {0}")]
    CorruptSnapshot(String),
    /// A feature name outside the closed set.
    #[error("unknown feature name {0:?}")]
    UnknownFeature(String),
    /// A timestamp could not be parsed.
    #[error("invalid timestamp {0:?}")]
    InvalidTimestamp(String),
    /// JSON (de)serialisation failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}
