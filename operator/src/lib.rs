//! The Helios operator: one reconciler per kind, the pure builders of child objects, and the
//! Kafka/Lambda/S3 clients that reconcile talks to.

pub mod apply;
pub mod args;
pub mod builders;
pub mod conditions;
pub mod controller;
pub mod events;
pub mod finalizer;
pub mod health;
pub mod kafka;
pub mod leader;
pub mod metrics;
pub mod naming;
pub mod reporting;
pub mod run;
pub mod server;

pub use args::Args;
pub use helios_crds::{GROUP, VERSION};
pub use run::{OperatorError, run};
