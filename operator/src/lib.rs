//! The Helios operator: one reconciler per kind, the pure builders of child objects, and the
//! Kafka/Lambda/S3 clients that reconcile talks to.

pub use helios_crds::{GROUP, VERSION};
