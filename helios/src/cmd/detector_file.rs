//! Loads a Detector spec from a YAML file (a whole `Detector` object or a bare spec), as
//! `helios eval` and `helios backtest` take it, and maps it onto the detector core.

use std::path::Path;

use helios_crds::DetectorSpec;
use helios_detect::config::{DetectorConfig, DetectorId};

/// Why a Detector file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DetectorFileError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML is not a Detector (or its spec).
    #[error("{path}: not a Detector spec: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The parse error (names the field).
        source: serde_yaml::Error,
    },
    /// The spec does not map onto a detector.
    #[error("{path}: {source}")]
    Config {
        /// The file.
        path: String,
        /// The mapping error (names the field).
        source: helios_detect::config::ConfigError,
    },
}

/// Parses YAML holding a `Detector` (with `spec:`) or a bare `DetectorSpec`.
pub fn parse_spec(text: &str, path: &str) -> Result<DetectorSpec, DetectorFileError> {
    let value: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|source| DetectorFileError::Parse {
            path: path.to_string(),
            source,
        })?;
    let spec = value.get("spec").cloned().unwrap_or(value);
    serde_yaml::from_value(spec).map_err(|source| DetectorFileError::Parse {
        path: path.to_string(),
        source,
    })
}

/// Reads a Detector file.
pub fn read_spec(path: &Path) -> Result<DetectorSpec, DetectorFileError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| DetectorFileError::Read {
        path: name.clone(),
        source,
    })?;
    parse_spec(&text, &name)
}

/// The worker configuration of a spec under the id `eval/<name>`.
pub fn detector_config(
    spec: &DetectorSpec,
    name: &str,
    path: &str,
) -> Result<DetectorConfig, DetectorFileError> {
    let id = DetectorId {
        namespace: "eval".into(),
        name: name.into(),
    };
    DetectorConfig::from_spec(spec, id).map_err(|source| DetectorFileError::Config {
        path: path.to_string(),
        source,
    })
}

/// The default Detector over the given features (what a team gets without tuning).
pub fn default_spec(features: &[String]) -> Result<DetectorSpec, DetectorFileError> {
    let features: Vec<String> = features.iter().map(|f| format!("\"{f}\"")).collect();
    let yaml = format!(
        "pipelineRef: {{name: eval}}\nfeatures: [{}]\n",
        features.join(", ")
    );
    parse_spec(&yaml, "<default Detector>")
}

/// The Detector of `path`, or the default Detector over `features`, with a name for messages.
pub fn read_or_default(
    path: Option<&Path>,
    features: &[String],
) -> Result<(DetectorSpec, String), DetectorFileError> {
    match path {
        Some(p) => Ok((read_spec(p)?, p.display().to_string())),
        None => Ok((default_spec(features)?, "<default Detector>".to_string())),
    }
}
