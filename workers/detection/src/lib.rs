//! The detection library shared by the workers: event-time windows, features, the Isolation
//! Forest, explanations and alerting. Pure computation: no Kafka, no database, no I/O.
