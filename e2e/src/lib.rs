//! Access to the real local stack that `e2e/stack up` starts: its endpoints (read from
//! `e2e/.stack/env`) and clients configured for them.
//!
//! Every accessor fails loudly, naming the component and the command that starts it: a test
//! against the stack never skips itself because a server is missing.

pub mod clients;
pub mod env;
pub mod helm;
pub mod kubectl;
pub mod podrun;
pub mod topics;

pub use env::{StackEnv, StackError};

/// The repository root (the parent of `e2e/`).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}

/// A TCP port on 127.0.0.1 that is free now (the kernel's pick; its listener is closed at once).
pub fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()
        .map(|a| a.port())
}
