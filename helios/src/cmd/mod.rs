//! One module per subcommand.

pub mod crdgen;
pub mod eval;
