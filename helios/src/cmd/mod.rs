//! One module per subcommand.

pub mod backtest;
pub mod crdgen;
pub mod detector_file;
pub mod eval;
pub mod eval_multivariate;
