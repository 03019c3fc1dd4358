//! `helios operator` settings: flags with environment fallbacks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `helios operator`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Image of the workers (`helios ingest`, `helios detect`) the operator deploys.
    #[arg(
        long,
        env = "HELIOS_WORKER_IMAGE",
        default_value = "ghcr.io/helios-dev/helios:latest"
    )]
    pub worker_image: String,
    /// Address of the `/healthz`, `/readyz` and `/metrics` server.
    #[arg(long, env = "HELIOS_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Namespace of the leader-election Lease (default: `POD_NAMESPACE`, else `default`).
    #[arg(long, env = "HELIOS_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Name of the leader-election Lease.
    #[arg(long, env = "HELIOS_LEASE_NAME", default_value = "helios-operator")]
    pub lease_name: String,
    /// This replica's identity in the Lease (default: `POD_NAME`, else the hostname).
    #[arg(long, env = "HELIOS_IDENTITY")]
    pub identity: Option<String>,
    /// Watch only this namespace (default: every namespace).
    #[arg(long, env = "HELIOS_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Kubeconfig file (default: in-cluster config, then `~/.kube/config`).
    #[arg(long, env = "HELIOS_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Upper bound of every Kafka admin request, in seconds.
    #[arg(long, env = "HELIOS_KAFKA_TIMEOUT_SECS", default_value_t = 10)]
    pub kafka_timeout_secs: u64,
    /// How long a Lease is valid without renewal, in seconds.
    #[arg(long, env = "HELIOS_LEASE_DURATION_SECS", default_value_t = 15)]
    pub lease_duration_secs: u64,
    /// How often the leader renews its Lease, in seconds.
    #[arg(long, env = "HELIOS_LEASE_RENEW_SECS", default_value_t = 5)]
    pub lease_renew_secs: u64,
    /// Give each Detector's pods their own ServiceAccount, Role and RoleBinding (to write their
    /// runtime status); `false` runs them as the namespace's `default` account, without status.
    #[arg(
        long,
        env = "HELIOS_WORKER_IDENTITIES",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub worker_identities: bool,
    /// Annotations of the detectors' ServiceAccounts, `key=value` (e.g. the IRSA role ARN).
    #[arg(
        long = "worker-service-account-annotation",
        env = "HELIOS_WORKER_SA_ANNOTATIONS",
        value_delimiter = ','
    )]
    pub worker_sa_annotations: Vec<String>,
    /// API server host the worker pods use (`KUBERNETES_SERVICE_HOST` in every pod template)
    /// where the `kubernetes` Service's IP is not served, e.g. without kube-proxy; unset: the
    /// kubelet's variables.
    #[arg(long, env = "HELIOS_WORKER_API_SERVER_HOST")]
    pub worker_api_server_host: Option<String>,
    /// API server port of `--worker-api-server-host` (`KUBERNETES_SERVICE_PORT`; default 443).
    #[arg(
        long,
        env = "HELIOS_WORKER_API_SERVER_PORT",
        requires = "worker_api_server_host"
    )]
    pub worker_api_server_port: Option<u16>,
    /// Seconds without a heartbeat from a Detector's worker (`status.worker.heartbeatTime`,
    /// written every 60 s) after which its `ModelTrained`, `DataFlowing` and `AnomalyActive`
    /// are set to `Unknown` (reason `WorkerSilent`); 0 turns the check off.
    #[arg(
        long,
        env = "HELIOS_WORKER_HEARTBEAT_TIMEOUT_SECS",
        default_value_t = 180
    )]
    pub worker_heartbeat_timeout_secs: u64,
}

impl Args {
    /// Defaults for everything but the worker image (for tests and embedding).
    pub fn new(worker_image: impl Into<String>) -> Self {
        Self {
            worker_image: worker_image.into(),
            metrics_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            leader_election_namespace: None,
            lease_name: "helios-operator".into(),
            identity: None,
            namespace: None,
            kubeconfig: None,
            kafka_timeout_secs: 10,
            lease_duration_secs: 15,
            lease_renew_secs: 5,
            worker_identities: true,
            worker_sa_annotations: Vec::new(),
            worker_api_server_host: None,
            worker_api_server_port: None,
            worker_heartbeat_timeout_secs: 180,
        }
    }

    /// The worker heartbeat timeout (`None` when 0: off).
    pub fn worker_heartbeat_timeout(&self) -> Option<Duration> {
        (self.worker_heartbeat_timeout_secs > 0)
            .then(|| Duration::from_secs(self.worker_heartbeat_timeout_secs))
    }

    /// Where worker pods reach the API server: `--worker-api-server-host` (blank counts as
    /// unset) with its port, 443 unless given.
    pub fn worker_api_server(&self) -> Option<crate::builders::ApiServer> {
        let host = self.worker_api_server_host.as_deref().map(str::trim)?;
        (!host.is_empty()).then(|| crate::builders::ApiServer {
            host: host.to_string(),
            port: self.worker_api_server_port.unwrap_or(443),
        })
    }

    /// The detect pods' identity settings; a malformed annotation names itself.
    pub fn worker_identity(&self) -> Result<crate::builders::detector::WorkerIdentity, String> {
        let mut annotations = std::collections::BTreeMap::new();
        for item in &self.worker_sa_annotations {
            let (k, v) = item.split_once('=').ok_or_else(|| {
                format!("--worker-service-account-annotation {item:?} is not key=value")
            })?;
            annotations.insert(k.trim().to_string(), v.trim().to_string());
        }
        Ok(crate::builders::detector::WorkerIdentity {
            per_detector: self.worker_identities,
            annotations,
        })
    }

    /// The Kafka admin timeout.
    pub fn kafka_timeout(&self) -> Duration {
        Duration::from_secs(self.kafka_timeout_secs.max(1))
    }

    /// This replica's identity: `--identity`, `POD_NAME`, the hostname, or a fixed fallback.
    pub fn identity(&self) -> String {
        self.identity
            .clone()
            .or_else(|| std::env::var("POD_NAME").ok())
            .or_else(|| hostname::get().ok().and_then(|h| h.into_string().ok()))
            .unwrap_or_else(|| "helios-operator".into())
    }

    /// The Lease namespace: `--leader-election-namespace`, `POD_NAMESPACE`, or `default`.
    pub fn lease_namespace(&self) -> String {
        self.leader_election_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn defaults_parse() {
        let cli = Cli::try_parse_from(["op", "--worker-image", "img:1", "--identity", "me"]);
        let args = cli.map(|c| c.args).ok();
        let args = args.as_ref();
        assert_eq!(args.map(|a| a.worker_image.as_str()), Some("img:1"));
        assert_eq!(args.map(|a| a.metrics_addr.port()), Some(8080));
        assert_eq!(args.map(|a| a.lease_name.as_str()), Some("helios-operator"));
        assert_eq!(args.map(Args::identity).as_deref(), Some("me"));
        assert!(!Args::new("x").identity().is_empty());
    }

    #[test]
    fn worker_identity_flags_parse() {
        let cli = Cli::try_parse_from([
            "op",
            "--worker-identities",
            "false",
            "--worker-service-account-annotation",
            "eks.amazonaws.com/role-arn=arn:aws:iam::1:role/d",
        ])
        .map(|c| c.args)
        .ok();
        let identity = cli.as_ref().map(Args::worker_identity);
        let identity = identity.and_then(Result::ok);
        assert_eq!(identity.as_ref().map(|i| i.per_detector), Some(false));
        assert_eq!(
            identity
                .as_ref()
                .and_then(|i| i.annotations.get("eks.amazonaws.com/role-arn").cloned())
                .as_deref(),
            Some("arn:aws:iam::1:role/d")
        );
        let mut bad = Args::new("x");
        bad.worker_sa_annotations = vec!["novalue".into()];
        assert!(bad.worker_identity().is_err());
    }

    #[test]
    fn worker_heartbeat_timeout_defaults_to_three_heartbeats_and_zero_turns_it_off() {
        let parse = |argv: &[&str]| {
            Cli::try_parse_from(argv.iter().copied())
                .map(|c| c.args.worker_heartbeat_timeout())
                .ok()
        };
        assert_eq!(parse(&["op"]), Some(Some(Duration::from_secs(180))));
        assert_eq!(
            parse(&["op", "--worker-heartbeat-timeout-secs", "30"]),
            Some(Some(Duration::from_secs(30)))
        );
        assert_eq!(
            parse(&["op", "--worker-heartbeat-timeout-secs", "0"]),
            Some(None)
        );
        assert_eq!(
            Args::new("x").worker_heartbeat_timeout(),
            Some(crate::controller::detector::DEFAULT_HEARTBEAT_TIMEOUT)
        );
    }

    #[test]
    fn worker_api_server_flags_parse() {
        let parse = |argv: &[&str]| {
            Cli::try_parse_from(argv.iter().copied())
                .map(|c| c.args.worker_api_server())
                .map_err(|e| e.kind())
        };
        assert_eq!(parse(&["op"]), Ok(None), "absent: nothing rendered");
        assert_eq!(
            parse(&["op", "--worker-api-server-host", "10.0.0.1"]),
            Ok(Some(crate::builders::ApiServer {
                host: "10.0.0.1".into(),
                port: 443
            }))
        );
        assert_eq!(
            parse(&[
                "op",
                "--worker-api-server-host",
                "api.internal",
                "--worker-api-server-port",
                "6443"
            ]),
            Ok(Some(crate::builders::ApiServer {
                host: "api.internal".into(),
                port: 6443
            }))
        );
        assert_eq!(parse(&["op", "--worker-api-server-host", " "]), Ok(None));
        assert_eq!(
            parse(&["op", "--worker-api-server-port", "6443"]),
            Err(clap::error::ErrorKind::MissingRequiredArgument),
            "a port without a host is refused"
        );
        assert!(
            parse(&[
                "op",
                "--worker-api-server-host",
                "h",
                "--worker-api-server-port",
                "70000"
            ])
            .is_err()
        );
    }
}
