//! The pipeline's Kafka topics: a pure plan (observed vs declared → create, grow, alter, or
//! refuse as incompatible) and the rdkafka admin client that carries it out.

pub mod admin;
pub mod plan;

pub use admin::{TopicAdmin, TopicError};
pub use plan::{DesiredTopic, Incompatibility, ObservedTopic, TopicPlan};
