//! Loading `e2e/.stack/env`, the `KEY=VALUE` file written by `e2e/stack up`.

use std::collections::BTreeMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The command a developer runs to bring the stack up.
pub const START_HINT: &str = "start it with `e2e/stack up` (from the repository root)";

/// Why the stack cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The env file is missing: the stack was never started.
    #[error("the local stack is not up: {path} is missing; {START_HINT}")]
    NotStarted {
        /// Where the env file was expected.
        path: PathBuf,
    },
    /// The env file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The env file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A variable the caller needs is not in the env file.
    #[error("{key} is not set in {path}; re-run `e2e/stack up`")]
    Missing {
        /// The variable.
        key: String,
        /// The env file.
        path: PathBuf,
    },
    /// The component's server does not answer on its address.
    #[error(
        "{component} is not reachable at {addr}: {reason}; {START_HINT} (or check `e2e/stack status`)"
    )]
    Unreachable {
        /// Which component.
        component: String,
        /// host:port that was tried.
        addr: String,
        /// What went wrong.
        reason: String,
    },
}

/// The endpoints and credentials of the running stack.
#[derive(Debug, Clone)]
pub struct StackEnv {
    path: PathBuf,
    vars: BTreeMap<String, String>,
}

impl StackEnv {
    /// The default env file: `$HELIOS_STACK_ENV`, else `e2e/.stack/env` of this checkout.
    pub fn default_path() -> PathBuf {
        match std::env::var_os("HELIOS_STACK_ENV") {
            Some(p) => PathBuf::from(p),
            None => Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(".stack")
                .join("env"),
        }
    }

    /// Load the default env file.
    pub fn load() -> Result<Self, StackError> {
        Self::load_from(&Self::default_path())
    }

    /// Load an env file from `path`.
    pub fn load_from(path: &Path) -> Result<Self, StackError> {
        if !path.exists() {
            return Err(StackError::NotStarted {
                path: path.to_path_buf(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| StackError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            vars: parse_env(&text),
        })
    }

    /// The value of `key`, or an error naming the key and the file.
    pub fn get(&self, key: &str) -> Result<&str, StackError> {
        self.vars
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| StackError::Missing {
                key: key.to_string(),
                path: self.path.clone(),
            })
    }

    /// Every variable, for passing to a child process.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// Check that `component` accepts TCP connections at the `host:port` found in `key`
    /// (a URL or a bare address).
    pub fn require_reachable(&self, component: &str, key: &str) -> Result<(), StackError> {
        let addr = host_port(self.get(key)?);
        check_tcp(&addr).map_err(|reason| StackError::Unreachable {
            component: component.to_string(),
            addr,
            reason,
        })
    }
}

/// Parse `KEY=VALUE` lines; blank lines and `#` comments are ignored, an optional `export `
/// prefix and surrounding single or double quotes are removed.
pub fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

/// The `host:port` part of a URL such as `http://127.0.0.1:9000/x`, or the value itself.
pub fn host_port(value: &str) -> String {
    let rest = value.split_once("://").map_or(value, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let end = rest.find(['/', ',', '?']).unwrap_or(rest.len());
    rest[..end].to_string()
}

fn check_tcp(addr: &str) -> Result<(), String> {
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| "address resolves to nothing".to_string())?;
    TcpStream::connect_timeout(&sock, Duration::from_secs(2))
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_env_lines() {
        let vars = parse_env("# c\nexport A=1\nB='two'\n\nC=\"x=y\"\n");
        assert_eq!(vars.get("A").map(String::as_str), Some("1"));
        assert_eq!(vars.get("B").map(String::as_str), Some("two"));
        assert_eq!(vars.get("C").map(String::as_str), Some("x=y"));
        assert_eq!(vars.len(), 3);
    }

    #[test]
    fn extracts_host_port() {
        assert_eq!(host_port("http://127.0.0.1:9000/path"), "127.0.0.1:9000");
        assert_eq!(
            host_port("postgres://u:p@127.0.0.1:5432/db"),
            "127.0.0.1:5432"
        );
        assert_eq!(host_port("127.0.0.1:9092,127.0.0.1:9093"), "127.0.0.1:9092");
    }

    #[test]
    fn missing_file_names_the_start_command() {
        let err = StackEnv::load_from(Path::new("/nonexistent/helios/env")).err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("e2e/stack up"), "{msg}");
    }
}
