//! The detection library shared by the workers: event-time windows, features, the Isolation
//! Forest, explanations and alerting. Pure computation: no Kafka, no database, no I/O (the only
//! exception is [`eval`], which reads benchmark datasets from disk).
//!
//! ```text
//! Event ─▶ window::Windower ─▶ features::FeatureAccumulator ─▶ stream::StreamDetector
//!                                                               │  (forest::IsolationForest)
//!                                                               ▼
//!                                     explain::explain ─▶ alert::AlertState ─▶ Fired/Resolved
//! ```

pub mod alert;
pub mod dense;
pub mod engine;
pub mod error;
pub mod eval;
pub mod event;
pub mod explain;
pub mod features;
pub mod forest;
pub mod hash;
pub mod rank;
pub mod rng;
pub mod sketch;
pub mod stats;
pub mod window;

pub use error::DetectionError;
