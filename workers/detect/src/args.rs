//! `helios detect` settings: command-line flags with the environment the operator renders into
//! the detector's StatefulSet.

use std::net::SocketAddr;

pub use crate::kube_status::KubeStatusMode;

/// Arguments of `helios detect`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The Detector spec as JSON (`DetectorSpec`).
    #[arg(long = "detector-config", env = "HELIOS_DETECTOR_CONFIG")]
    pub detector_config: String,
    /// The Detector as `namespace/name` (detector id, consumer group, fingerprints).
    #[arg(long, env = "HELIOS_DETECTOR")]
    pub detector: String,
    /// Kafka bootstrap servers (`host:port,...`).
    #[arg(long, env = "HELIOS_KAFKA_BOOTSTRAP")]
    pub kafka_bootstrap: String,
    /// The events topic to consume.
    #[arg(long, env = "HELIOS_EVENTS_TOPIC")]
    pub events_topic: String,
    /// The topic anomalies are published to.
    #[arg(long, env = "HELIOS_ANOMALIES_TOPIC")]
    pub anomalies_topic: String,
    /// Extra librdkafka properties for consumer and producer, `key=value` (TLS, SASL, ...).
    #[arg(
        long = "kafka-property",
        env = "HELIOS_KAFKA_PROPERTIES",
        value_delimiter = ','
    )]
    pub kafka_properties: Vec<String>,
    /// SASL username (from the pipeline's Secret reference).
    #[arg(long, env = "HELIOS_KAFKA_SASL_USERNAME", hide_env_values = true)]
    pub kafka_sasl_username: Option<String>,
    /// SASL password (from the pipeline's Secret reference).
    #[arg(long, env = "HELIOS_KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<String>,
    /// PostgreSQL URL for windows, anomalies and models.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Address of the `/metrics`, `/healthz` and `/readyz` server.
    #[arg(long, env = "HELIOS_DETECT_LISTEN", default_value = "0.0.0.0:9090")]
    pub listen: SocketAddr,
    /// Windows per key replayed from PostgreSQL to rebuild a key's model (0 = warm-up + history).
    #[arg(long, env = "HELIOS_DETECT_RESTORE_WINDOWS", default_value_t = 0)]
    pub restore_windows: usize,
    /// Quiet wait: a partition that delivers nothing for this long (wall clock) stops holding
    /// the event-time watermark, and when every partition is quiet all open windows close.
    /// Partitions read to their end (empty, or caught up with old events, as in a replay)
    /// never wait for it; a caught-up live partition holds the watermark at most at now minus
    /// this. Default: window size + allowed lateness (e.g. `5m30s` for 5-minute windows).
    #[arg(long, env = "HELIOS_DETECT_IDLE_CLOSE")]
    pub idle_close: Option<String>,
    /// Range guard: also flag a window when a feature's robust z reaches this (0 = off).
    #[arg(long, env = "HELIOS_DETECT_Z_GUARD", default_value_t = crate::config::DEFAULT_Z_GUARD)]
    pub z_guard: f64,
    /// Range guard: windows a key must have seen before the guard acts. Default: 288 (a day
    /// of 5-minute windows, so a first morning ramp is not an anomaly) for gauges, and for
    /// per-request features a week of scored windows (at most the history) to calibrate
    /// their guard on; a value given here applies to both.
    #[arg(long, env = "HELIOS_DETECT_GUARD_AFTER_WINDOWS")]
    pub guard_after_windows: Option<usize>,
    /// Lambda function of the report hook; unset disables reports.
    #[arg(long, env = "HELIOS_REPORT_FUNCTION")]
    pub report_function: Option<String>,
    /// Lambda endpoint override (emulator, LocalStack).
    #[arg(long, env = "HELIOS_LAMBDA_ENDPOINT")]
    pub lambda_endpoint: Option<String>,
    /// S3 bucket the report hook writes to (required with a report function).
    #[arg(long, env = "HELIOS_REPORT_BUCKET")]
    pub report_bucket: Option<String>,
    /// Key prefix of the reports.
    #[arg(long, env = "HELIOS_REPORT_PREFIX", default_value = "")]
    pub report_prefix: String,
    /// S3 endpoint override passed to the report hook.
    #[arg(long, env = "HELIOS_REPORT_S3_ENDPOINT")]
    pub report_s3_endpoint: Option<String>,
    /// Lowest severity that gets a report (`Info`, `Warning`, `Critical`).
    #[arg(long, env = "HELIOS_REPORT_MIN_SEVERITY", default_value = "Warning")]
    pub report_min_severity: String,
    /// Minimum time between two reports of the same fingerprint.
    #[arg(long, env = "HELIOS_REPORT_COOLDOWN", default_value = "15m")]
    pub report_cooldown: String,
    /// Most reports per rolling hour (0 = unlimited).
    #[arg(long, env = "HELIOS_REPORT_MAX_PER_HOUR", default_value_t = 20)]
    pub report_max_per_hour: u32,
    /// Keys exported with a `key` label on the score metrics (`helios_detect_score`,
    /// `_threshold`, `_model_age_seconds`, `_model_training_windows`): those with the highest
    /// score over their last 12 windows; 0 exports only the aggregates. Default: the Detector's
    /// `spec.scoreMetricsKeys`, else 10.
    #[arg(long, env = "HELIOS_SCORE_METRICS_KEYS")]
    pub score_metrics_keys: Option<usize>,
    /// Alertmanager base URL(s) (`http(s)://host:9093`, comma-separated for an HA cluster:
    /// each gets every alert); unset: the Detector's `spec.alerting.alertmanager`, if any.
    #[arg(
        long = "alertmanager-url",
        env = "HELIOS_ALERTMANAGER_URL",
        value_delimiter = ','
    )]
    pub alertmanager_urls: Vec<String>,
    /// Bearer token for Alertmanager (from the Secret the Detector names).
    #[arg(long, env = "HELIOS_ALERTMANAGER_BEARER_TOKEN", hide_env_values = true)]
    pub alertmanager_bearer_token: Option<String>,
    /// Basic-auth username for Alertmanager.
    #[arg(long, env = "HELIOS_ALERTMANAGER_USERNAME", hide_env_values = true)]
    pub alertmanager_username: Option<String>,
    /// Basic-auth password for Alertmanager.
    #[arg(long, env = "HELIOS_ALERTMANAGER_PASSWORD", hide_env_values = true)]
    pub alertmanager_password: Option<String>,
    /// PEM file of the CA(s) Alertmanager's certificate is checked against (default: the
    /// platform's roots).
    #[arg(long, env = "HELIOS_ALERTMANAGER_CA_FILE")]
    pub alertmanager_ca_file: Option<String>,
    /// The same CA bundle as PEM text (what the operator passes from the Detector's
    /// `caSecretRef`).
    #[arg(long, env = "HELIOS_ALERTMANAGER_CA", hide_env_values = true)]
    pub alertmanager_ca: Option<String>,
    /// Interval between re-posts of the firing alerts (a posted alert lives four of them);
    /// default: the Detector's `resendInterval`, else `1m`.
    #[arg(long, env = "HELIOS_ALERTMANAGER_RESEND")]
    pub alertmanager_resend: Option<String>,
    /// Anomalies whose firing window ended longer ago than this (wall clock) are recorded but
    /// not paged, so a replay of history pages nobody; default: the Detector's `maxAge`, else
    /// `1h`.
    #[arg(long, env = "HELIOS_ALERTMANAGER_MAX_AGE")]
    pub alertmanager_max_age: Option<String>,
    /// How often the Detector's feedback annotations (`helios.dev/feedback-<anomalyId>:
    /// false-positive | confirmed`) are read (with the runtime status writer's client).
    #[arg(long, env = "HELIOS_FEEDBACK_INTERVAL", default_value = "30s")]
    pub feedback_interval: String,
    /// Longest a graceful shutdown waits for pending notifications.
    #[arg(long, env = "HELIOS_SHUTDOWN_TIMEOUT_SECS", default_value_t = 20)]
    pub shutdown_timeout_secs: u64,
    /// Write the runtime status (`ModelTrained`, `DataFlowing`, `AnomalyActive`, model, last
    /// anomaly) to the Detector: `auto` (in a cluster or with a kubeconfig), `on`, `off`.
    #[arg(long, env = "HELIOS_KUBE_STATUS", value_enum, default_value_t = KubeStatusMode::Auto)]
    pub kube_status: KubeStatusMode,
    /// Kubeconfig file(s) of the status writer; the in-cluster configuration when unset.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<String>,
}

impl Args {
    /// The librdkafka properties of every client: `--kafka-property` plus the SASL credentials.
    pub fn kafka_client_properties(&self) -> Vec<String> {
        let mut props = self.kafka_properties.clone();
        if let Some(user) = &self.kafka_sasl_username {
            props.push(format!("sasl.username={user}"));
        }
        if let Some(pass) = &self.kafka_sasl_password {
            props.push(format!("sasl.password={pass}"));
        }
        props
    }
}
