//! Names of the status conditions each kind reports.

/// The one summary condition of both kinds; never driven by runtime signals.
pub const READY: &str = "Ready";
/// Pipeline: both Kafka topics exist with the declared partitions and config.
pub const TOPICS_READY: &str = "TopicsReady";
/// Pipeline: the ingestion Deployment has its desired replicas available.
pub const INGESTION_AVAILABLE: &str = "IngestionAvailable";
/// Pipeline: every Detector of the pipeline is Ready.
pub const DETECTORS_READY: &str = "DetectorsReady";
/// Pipeline: the Lambda function is Active and the S3 bucket reachable.
pub const REPORT_HOOK_READY: &str = "ReportHookReady";
/// Both kinds: the workloads are scaled to zero by `suspend`.
pub const SUSPENDED: &str = "Suspended";
/// Detector: the model finished warm-up and is scoring (progress in the message).
pub const MODEL_TRAINED: &str = "ModelTrained";
/// Detector: events arrived recently (runtime signal, not part of Ready).
pub const DATA_FLOWING: &str = "DataFlowing";
/// Detector: an anomaly episode is open (runtime signal, not part of Ready).
pub const ANOMALY_ACTIVE: &str = "AnomalyActive";

/// Pipeline detail conditions that make up `Ready`.
pub const PIPELINE_READY_PARTS: [&str; 4] = [
    TOPICS_READY,
    INGESTION_AVAILABLE,
    DETECTORS_READY,
    REPORT_HOOK_READY,
];
