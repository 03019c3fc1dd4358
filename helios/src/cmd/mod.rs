//! One module per subcommand.

pub mod crdgen;
