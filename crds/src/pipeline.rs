//! `AnomalyPipeline`: one stream of events — its Kafka topics, its ingestion Deployment, its
//! storage and its report hook.

use crate::common::{Duration, SecretKeyRef, Severity};
use crate::placement::Placement;
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Desired state of an anomaly-detection pipeline.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "helios.dev",
    version = "v1alpha1",
    kind = "AnomalyPipeline",
    plural = "anomalypipelines",
    shortname = "ap",
    category = "helios",
    namespaced,
    status = "AnomalyPipelineStatus",
    scale = r#"{"specReplicasPath":".spec.ingestion.replicas","statusReplicasPath":".status.ingestion.replicas"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Topic","type":"string","jsonPath":".status.topics.events"}"#,
    printcolumn = r#"{"name":"Detectors","type":"string","jsonPath":".status.detectors.summary"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = kube::core::Rule::new("size(self.metadata.name) <= 200")
        .message("metadata.name must be at most 200 characters (it is part of the Kafka topic names)")
)]
#[serde(rename_all = "camelCase")]
pub struct AnomalyPipelineSpec {
    /// The Kafka cluster and the pipeline's two topics.
    pub kafka: KafkaSpec,
    /// The HTTP ingestion Deployment that accepts events and writes them to Kafka.
    #[serde(default)]
    pub ingestion: IngestionSpec,
    /// Where window aggregates and anomalies are stored (PostgreSQL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// The report hook: a Lambda function that writes incident reports to S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting: Option<ReportingSpec>,
    /// Pause the pipeline without deleting it: ingestion and detectors scale to zero.
    #[serde(default)]
    pub suspend: bool,
}

/// The Kafka cluster and topics of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.bootstrapServers) != has(self.bootstrapConfigMapRef)", "message": "set exactly one of kafka.bootstrapServers or kafka.bootstrapConfigMapRef"}
]))]
pub struct KafkaSpec {
    /// Comma-separated `host:port` list of brokers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9.\-]+:[0-9]+(,[A-Za-z0-9.\-]+:[0-9]+)*$"))]
    pub bootstrap_servers: Option<String>,
    /// A ConfigMap key holding the bootstrap servers (a shared cluster config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_config_map_ref: Option<ConfigMapKeyRef>,
    /// TLS to the brokers; certificates by Secret reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<KafkaTls>,
    /// SASL authentication; credentials by Secret reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl: Option<KafkaSasl>,
    /// Settings of the `events` and `anomalies` topics.
    #[serde(default)]
    pub topics: TopicsSpec,
    /// What happens to the topics when the pipeline is deleted: `Retain` (default) keeps them,
    /// `Delete` removes them.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// A reference to one key of a ConfigMap in the object's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigMapKeyRef {
    /// Name of the ConfigMap.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the ConfigMap's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// TLS settings for Kafka.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTls {
    /// Use TLS for broker connections.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// CA certificate (PEM) to verify the brokers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// Client certificate (PEM) for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<SecretKeyRef>,
    /// Client private key (PEM) for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret_ref: Option<SecretKeyRef>,
}

/// SASL settings for Kafka.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaSasl {
    /// SASL mechanism.
    pub mechanism: SaslMechanism,
    /// Secret key holding the user name.
    pub username_secret_ref: SecretKeyRef,
    /// Secret key holding the password.
    pub password_secret_ref: SecretKeyRef,
}

/// Supported SASL mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SaslMechanism {
    /// SASL/PLAIN (only over TLS).
    #[serde(rename = "PLAIN")]
    Plain,
    /// SASL/SCRAM-SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// SASL/SCRAM-SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

/// The two topics of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicsSpec {
    /// The topic ingestion writes events to and detectors read from.
    #[serde(default = "TopicSpec::events_default")]
    pub events: TopicSpec,
    /// The topic detectors publish anomalies to.
    #[serde(default = "TopicSpec::anomalies_default")]
    pub anomalies: TopicSpec,
}

impl Default for TopicsSpec {
    fn default() -> Self {
        Self {
            events: TopicSpec::events_default(),
            anomalies: TopicSpec::anomalies_default(),
        }
    }
}

/// Settings of one Kafka topic. Partitions can grow but never shrink; a topic is never
/// recreated to change it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.partitions >= oldSelf.partitions", "message": "partitions cannot be decreased (Kafka cannot remove partitions)", "fieldPath": ".partitions", "reason": "FieldValueForbidden"},
    {"rule": "self.replicationFactor == oldSelf.replicationFactor", "message": "replicationFactor is immutable", "fieldPath": ".replicationFactor", "reason": "FieldValueForbidden"}
]))]
pub struct TopicSpec {
    /// Number of partitions (at least 1; may be increased, never decreased).
    #[schemars(range(min = 1, max = 10000))]
    pub partitions: i32,
    /// Replication factor (immutable once created).
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 16))]
    pub replication_factor: i32,
    /// How long Kafka keeps messages (`retention.ms`), e.g. `168h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Duration>,
    /// Extra topic configuration (`cleanup.policy`, `min.insync.replicas`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

impl TopicSpec {
    fn events_default() -> Self {
        Self {
            partitions: 3,
            replication_factor: 1,
            retention: None,
            config: BTreeMap::new(),
        }
    }

    fn anomalies_default() -> Self {
        Self {
            partitions: 1,
            replication_factor: 1,
            retention: None,
            config: BTreeMap::new(),
        }
    }
}

/// What deleting a pipeline does to its Kafka topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the topics (default).
    #[default]
    Retain,
    /// Delete the topics (a finalizer makes sure it happens, with a bounded retry).
    Delete,
}

/// The ingestion Deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestionSpec {
    /// Number of ingestion pods.
    #[serde(default = "two")]
    #[schemars(range(min = 0, max = 100))]
    pub replicas: i32,
    /// CPU/memory requests and limits of the ingestion container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Token-bucket rate limit per pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Largest accepted request body, e.g. `5Mi` (bigger requests get 413).
    #[serde(default = "default_body_size")]
    #[schemars(regex(pattern = r"^[1-9][0-9]*(Ki|Mi|Gi|k|M|G)?$"))]
    pub max_body_size: String,
    /// Secret key holding the bearer token clients must send; unset means no authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token_secret_ref: Option<SecretKeyRef>,
    /// Where the ingestion pods run (node selector, tolerations, affinity, host network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// How OpenTelemetry spans sent to `POST /v1/traces` become events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp: Option<OtlpIngestion>,
}

/// How OTLP spans become events (the worker's `HELIOS_OTLP_ATTRIBUTES`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtlpIngestion {
    /// Span or resource attribute keys copied into each event's `attributes` (the span's value
    /// first); unset keeps the worker's default (`service.version`,
    /// `deployment.environment.name`, `http.request.method`), an empty list copies none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), inner(regex(pattern = r"^[^,\s]{1,256}$")))]
    pub attributes: Option<Vec<String>>,
}

impl Default for IngestionSpec {
    fn default() -> Self {
        Self {
            replicas: 2,
            resources: None,
            rate_limit: None,
            max_body_size: default_body_size(),
            auth_token_secret_ref: None,
            placement: None,
            otlp: None,
        }
    }
}

/// A token-bucket rate limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.burst) || self.burst >= self.eventsPerSecond", "message": "burst must be at least eventsPerSecond", "fieldPath": ".burst"}
]))]
pub struct RateLimit {
    /// Sustained events per second (must be positive).
    #[schemars(range(min = 1))]
    pub events_per_second: i64,
    /// Bucket size: events allowed in a burst (defaults to eventsPerSecond).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub burst: Option<i64>,
}

/// Storage of windows and anomalies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Secret key holding the PostgreSQL connection URL (`postgres://user:pass@host/db`).
    pub postgres_secret_ref: SecretKeyRef,
    /// How long window aggregates and anomalies are kept, e.g. `720h`.
    #[serde(default = "default_storage_retention")]
    pub retention: Duration,
}

/// The report hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportingSpec {
    /// The Lambda function that writes reports.
    pub lambda: LambdaSpec,
    /// Where reports are written.
    pub s3: S3Spec,
    /// Optional LLM that writes the report text (a template is used otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmSpec>,
    /// Only anomalies at or above this severity get a report.
    #[serde(default)]
    pub min_severity: Severity,
    /// Minimum time between two reports for the same fingerprint.
    #[serde(default = "default_report_cooldown")]
    pub cooldown: Duration,
    /// At most this many reports per hour for the whole pipeline.
    #[serde(default = "default_reports_per_hour")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_reports_per_hour: i32,
}

/// The Lambda function of the report hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LambdaSpec {
    /// Function name or ARN.
    #[schemars(length(min = 1, max = 256))]
    pub function_name: String,
    /// AWS region of the function (defaults to the operator's region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Version or alias to invoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
    /// Endpoint override (a Lambda emulator or a VPC endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub endpoint: Option<String>,
}

/// The S3 location of reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Spec {
    /// Bucket name.
    #[schemars(
        length(min = 3, max = 63),
        regex(pattern = r"^[a-z0-9][a-z0-9.\-]*[a-z0-9]$")
    )]
    pub bucket: String,
    /// Key prefix of every report.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// AWS region of the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Endpoint override (an S3-compatible server); path-style addressing is used with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub endpoint: Option<String>,
}

/// An OpenAI-compatible chat-completions API that writes report text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LlmSpec {
    /// Provider kind; `openai-compatible` covers OpenAI and servers speaking its API.
    #[serde(default)]
    pub provider: LlmProvider,
    /// Model name, e.g. `gpt-4o-mini`.
    #[schemars(length(min = 1))]
    pub model: String,
    /// Base URL of the API (default: the provider's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub base_url: Option<String>,
    /// Secret key holding the API key.
    pub api_key_secret_ref: SecretKeyRef,
    /// Give up on the LLM after this long and write the template report.
    #[serde(default = "default_llm_timeout")]
    pub timeout: Duration,
}

/// LLM providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum LlmProvider {
    /// Any server implementing OpenAI's chat completions API.
    #[default]
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
}

/// Observed state of a pipeline.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnomalyPipelineStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (summary), `TopicsReady`, `IngestionAvailable`, `DetectorsReady`,
    /// `ReportHookReady`, `Suspended`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Names of the Kafka topics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<TopicsStatus>,
    /// The ingestion endpoint and replica counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingestion: Option<IngestionStatus>,
    /// Detector counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detectors: Option<DetectorCounts>,
}

/// Topic names in Kafka.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicsStatus {
    /// Name of the events topic.
    pub events: String,
    /// Name of the anomalies topic.
    pub anomalies: String,
    /// Partitions of the events topic as observed in Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_partitions: Option<i32>,
}

/// Ingestion endpoint and replicas.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestionStatus {
    /// In-cluster URL to POST events to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Ready ingestion pods.
    #[serde(default)]
    pub replicas: i32,
}

/// How many detectors reference the pipeline and how many are ready.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetectorCounts {
    /// Detectors referencing this pipeline.
    pub total: i32,
    /// Of those, detectors with `Ready=True`.
    pub ready: i32,
    /// `ready/total`, for `kubectl get`.
    pub summary: String,
}

fn default_true() -> bool {
    true
}
fn one() -> i32 {
    1
}
fn two() -> i32 {
    2
}
fn default_body_size() -> String {
    "5Mi".to_string()
}
fn default_storage_retention() -> Duration {
    Duration::new("720h")
}
fn default_report_cooldown() -> Duration {
    Duration::new("15m")
}
fn default_reports_per_hour() -> i32 {
    20
}
fn default_prefix() -> String {
    "helios/reports".to_string()
}
fn default_llm_timeout() -> Duration {
    Duration::new("20s")
}
