//! One module per subcommand.

pub mod crdgen;
pub mod detector_file;
pub mod eval;
pub mod eval_multivariate;
