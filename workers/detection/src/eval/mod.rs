//! Offline evaluation: NAB loading, the NAB scorer, window/point metrics and the generic
//! multivariate (SMD-style) layout. This is the only module that reads files.

pub mod baselines;
pub mod error;
pub mod generator;
pub mod metrics;
pub mod multivariate;
pub mod nab;
pub mod nab_score;

pub use error::EvalError;
