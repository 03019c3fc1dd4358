//! The Helios API: group `helios.dev`, version `v1alpha1`.
//!
//! Two namespaced kinds: [`AnomalyPipeline`] (one stream of events and everything around it) and
//! [`Detector`] (one model over one slice of a pipeline's events). Validation that the API server
//! enforces at admission (OpenAPI schema + CEL `x-kubernetes-validations`) is declared on the
//! types; [`generate`] renders the CRD YAML that is checked in under `crds/yaml/`.

pub mod alertmanager;
pub mod common;
pub mod conditions;
pub mod detector;
pub mod generate;
pub mod maintenance;
pub mod pipeline;
pub mod placement;

pub use common::{Duration, Feature, SecretKeyRef, Severity};
pub use detector::{Detector, DetectorSpec, DetectorStatus};
pub use pipeline::{AnomalyPipeline, AnomalyPipelineSpec, AnomalyPipelineStatus};
pub use placement::Placement;

/// The API group of every Helios kind.
pub const GROUP: &str = "helios.dev";
/// The served and stored API version.
pub const VERSION: &str = "v1alpha1";
