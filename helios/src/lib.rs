//! The subcommands of the `helios` binary as a library, so benchmarks can reuse them (the
//! Detector file loader, the backtest replay).

pub mod cmd;
