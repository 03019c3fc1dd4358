//! `helios ingest` settings: command-line flags with environment fallbacks (the operator renders
//! the environment into the Deployment; the token comes from the referenced Secret).

use std::net::SocketAddr;
use std::time::Duration;

/// Arguments of `helios ingest`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "HELIOS_INGEST_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Kafka bootstrap servers (`host:port,...`).
    #[arg(long, env = "HELIOS_KAFKA_BOOTSTRAP")]
    pub kafka_bootstrap: String,
    /// The events topic to write to.
    #[arg(long, env = "HELIOS_EVENTS_TOPIC")]
    pub topic: String,
    /// Extra librdkafka producer properties, `key=value` (TLS, SASL mechanism, ...).
    #[arg(
        long = "kafka-property",
        env = "HELIOS_KAFKA_PROPERTIES",
        value_delimiter = ','
    )]
    pub kafka_properties: Vec<String>,
    /// SASL user name (from a Secret).
    #[arg(long, env = "HELIOS_KAFKA_SASL_USERNAME", hide_env_values = true)]
    pub kafka_sasl_username: Option<String>,
    /// SASL password (from a Secret).
    #[arg(long, env = "HELIOS_KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<String>,
    /// Bearer token clients must present; unset disables authentication.
    #[arg(long, env = "HELIOS_INGEST_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Largest accepted request body in bytes (after decompression).
    #[arg(long, env = "HELIOS_MAX_BODY_BYTES", default_value_t = 5 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Sustained events per second (token bucket); unset disables rate limiting.
    #[arg(long, env = "HELIOS_RATE_LIMIT_EPS")]
    pub rate_limit_eps: Option<u64>,
    /// Token-bucket size in events (defaults to the rate).
    #[arg(long, env = "HELIOS_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<u64>,
    /// Longest a request waits for Kafka's acknowledgement (librdkafka `message.timeout.ms`).
    #[arg(long, env = "HELIOS_PRODUCE_TIMEOUT_MS", default_value_t = 10_000)]
    pub produce_timeout_ms: u64,
    /// Producer batching delay (librdkafka `linger.ms`).
    #[arg(long, env = "HELIOS_LINGER_MS", default_value_t = 2)]
    pub linger_ms: u64,
    /// Bound on request bytes in flight to Kafka; beyond it requests wait (backpressure).
    #[arg(long, env = "HELIOS_MAX_INFLIGHT_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub max_inflight_bytes: usize,
    /// Requests that may hold a body (read, decoded or awaiting Kafka) at once; past it a request
    /// is shed at once with 503 and `Retry-After: 1`, its body drained unbuffered. With the body
    /// limit it bounds the memory requests can hold (see the README's "Overload").
    #[arg(long, env = "HELIOS_MAX_CONCURRENT_REQUESTS", default_value_t = 64)]
    pub max_concurrent_requests: usize,
    /// Consecutive produce failures that open the circuit breaker.
    #[arg(long, env = "HELIOS_BREAKER_FAILURES", default_value_t = 3)]
    pub breaker_failures: u32,
    /// `Retry-After` seconds sent while the breaker is open.
    #[arg(long, env = "HELIOS_BREAKER_RETRY_AFTER_SECS", default_value_t = 2)]
    pub breaker_retry_after_secs: u64,
    /// Span/resource attribute keys an OTLP span copies into its event's `attributes` (span
    /// value first, then resource); `none` for none.
    #[arg(
        long = "otlp-attribute",
        env = "HELIOS_OTLP_ATTRIBUTES",
        value_delimiter = ',',
        default_value = "service.version,deployment.environment.name,http.request.method"
    )]
    pub otlp_attributes: Vec<String>,
    /// Longest graceful shutdown waits for in-flight requests and the producer flush.
    #[arg(long, env = "HELIOS_SHUTDOWN_TIMEOUT_SECS", default_value_t = 25)]
    pub shutdown_timeout_secs: u64,
}

impl Args {
    /// The produce timeout as a [`Duration`].
    pub fn produce_timeout(&self) -> Duration {
        Duration::from_millis(self.produce_timeout_ms)
    }

    /// `(key, value)` pairs of the extra producer properties; bad entries are an error.
    pub fn extra_properties(&self) -> Result<Vec<(String, String)>, crate::Error> {
        self.kafka_properties
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                p.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| {
                        crate::Error::Config(format!("kafka property {p:?} is not key=value"))
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(extra: &[&str]) -> Args {
        let base = ["ingest", "--kafka-bootstrap", "k:9092", "--topic", "t"];
        Cli::try_parse_from(base.iter().chain(extra)).unwrap().args
    }

    #[test]
    fn otlp_attribute_list_defaults_and_splits() {
        assert_eq!(
            parse(&[]).otlp_attributes,
            [
                "service.version",
                "deployment.environment.name",
                "http.request.method"
            ]
        );
        assert_eq!(
            parse(&["--otlp-attribute", "tenant,region"]).otlp_attributes,
            ["tenant", "region"]
        );
        assert_eq!(
            parse(&["--otlp-attribute", "none"]).otlp_attributes,
            ["none"]
        );
    }
}
