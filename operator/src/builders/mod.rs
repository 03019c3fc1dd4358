//! Pure builders of child objects: given a CR (and the operator's settings), the exact objects
//! that server-side apply sends. No I/O here; everything is unit-tested.

pub mod detector;
pub mod ingest;
pub mod kafka_env;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapKeySelector, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, PodSecurityContext, PodSpec, Probe, SeccompProfile, SecretKeySelector,
    SecurityContext, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;

/// Why a child object cannot be built from a CR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The CR lacks metadata the builders need (name, namespace or uid).
    #[error("the object has no metadata.{0}")]
    MissingMetadata(&'static str),
    /// `ingestion.maxBodySize` is not a quantity such as `5Mi`.
    #[error("invalid ingestion.maxBodySize {0:?}: expected e.g. 512Ki, 5Mi, 1G")]
    InvalidMaxBodySize(String),
    /// A spec could not be rendered as JSON (never expected).
    #[error("cannot render the config as JSON: {0}")]
    Render(String),
}

/// Name, namespace and controller owner reference of a CR, checked present.
#[derive(Debug, Clone)]
pub struct Owner {
    /// The CR's name.
    pub name: String,
    /// The CR's namespace.
    pub namespace: String,
    /// A controller owner reference pointing at the CR.
    pub reference: OwnerReference,
}

impl Owner {
    /// Extract the owner facts of `obj`, failing if name, namespace or uid is missing.
    pub fn of<K: Resource<DynamicType = ()>>(obj: &K) -> Result<Self, BuildError> {
        let meta = obj.meta();
        let name = meta
            .name
            .clone()
            .ok_or(BuildError::MissingMetadata("name"))?;
        let namespace = meta
            .namespace
            .clone()
            .ok_or(BuildError::MissingMetadata("namespace"))?;
        let reference = obj
            .controller_owner_ref(&())
            .ok_or(BuildError::MissingMetadata("uid"))?;
        Ok(Self {
            name,
            namespace,
            reference,
        })
    }
}

/// Parse a Kubernetes-style byte quantity: `1024`, `512Ki`, `5Mi`, `1Gi`, `5k`, `5M`, `1G`.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits.parse().ok()?;
    let scale: u64 = match unit {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => return None,
    };
    value.checked_mul(scale)
}

/// A plain environment variable.
pub fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

/// An environment variable read from a Secret key.
pub fn env_from_secret(name: &str, secret: &helios_crds::SecretKeyRef) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.name.clone(),
                key: secret.key.clone(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
    }
}

/// An environment variable read from a ConfigMap key.
pub fn env_from_config_map(name: &str, map: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            config_map_key_ref: Some(ConfigMapKeySelector {
                name: map.into(),
                key: key.into(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
    }
}

/// An HTTP GET probe on the named container port.
pub fn http_probe(path: &str, port: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(port.into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

/// Where worker pods reach the Kubernetes API when the `kubernetes` Service's IP is not served
/// there (no kube-proxy, e.g. Cilium's kube-proxy replacement): the operator's
/// `--worker-api-server-host`/`--worker-api-server-port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiServer {
    /// Rendered as `KUBERNETES_SERVICE_HOST` (a name or an IP).
    pub host: String,
    /// Rendered as `KUBERNETES_SERVICE_PORT`.
    pub port: u16,
}

impl ApiServer {
    /// The variables in-cluster clients read; set in the container, they take precedence over
    /// the ones the kubelet derives from the `kubernetes` Service.
    pub fn env(&self) -> [EnvVar; 2] {
        [
            env("KUBERNETES_SERVICE_HOST", self.host.clone()),
            env("KUBERNETES_SERVICE_PORT", self.port.to_string()),
        ]
    }
}

/// The pod of a worker: its one container, non-root, 30 s to drain, a writable `/tmp`
/// (the root filesystem is read-only), `service_account` or no API token at all, and the
/// API server override `api_server` (none: the kubelet's `kubernetes` Service variables).
pub fn worker_pod_spec(
    mut container: Container,
    service_account: Option<String>,
    api_server: Option<&ApiServer>,
) -> PodSpec {
    if let Some(api) = api_server {
        container.env.get_or_insert_with(Vec::new).extend(api.env());
    }
    PodSpec {
        containers: vec![container],
        automount_service_account_token: Some(service_account.is_some()),
        service_account_name: service_account,
        security_context: Some(pod_security_context()),
        termination_grace_period_seconds: Some(30),
        volumes: Some(vec![Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

/// `spec` scheduled as `placement` asks: its node selector, tolerations, affinity, priority
/// class and host network (with the DNS policy that keeps cluster names resolvable there).
pub fn placed(mut spec: PodSpec, placement: Option<&helios_crds::Placement>) -> PodSpec {
    let Some(p) = placement else {
        return spec;
    };
    spec.node_selector = (!p.node_selector.is_empty()).then(|| p.node_selector.clone());
    spec.tolerations = (!p.tolerations.is_empty()).then(|| p.tolerations.clone());
    spec.affinity = p.affinity.clone();
    spec.priority_class_name = p.priority_class_name.clone();
    if p.host_network {
        spec.host_network = Some(true);
        spec.dns_policy = Some("ClusterFirstWithHostNet".into());
    }
    spec
}

/// The user and group every worker runs as (the distroless `nonroot` user).
pub const WORKER_UID: i64 = 65532;

/// The restricted pod security context every worker pod runs with.
pub fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(WORKER_UID),
        run_as_group: Some(WORKER_UID),
        fs_group: Some(WORKER_UID),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..Default::default()
    }
}

/// The restricted container security context every worker container runs with.
pub fn container_security_context() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..Default::default()
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! CRs for builder tests, parsed from YAML like the examples.
    #![allow(clippy::unwrap_used)]
    use helios_crds::{AnomalyPipeline, Detector};

    /// A pipeline with every optional section set.
    pub fn pipeline() -> AnomalyPipeline {
        serde_yaml::from_str(
            r#"
apiVersion: helios.dev/v1alpha1
kind: AnomalyPipeline
metadata: {name: shop, namespace: team-a, uid: 1111-aaaa, generation: 3}
spec:
  kafka:
    bootstrapServers: kafka:9092
    topics:
      events: {partitions: 6, replicationFactor: 1, retention: 168h}
      anomalies: {partitions: 1, replicationFactor: 1}
  ingestion:
    replicas: 2
    maxBodySize: 5Mi
    rateLimit: {eventsPerSecond: 500, burst: 1000}
    authTokenSecretRef: {name: shop-token, key: token}
    resources:
      requests: {cpu: 250m, memory: 128Mi}
      limits: {memory: 256Mi}
  storage:
    postgresSecretRef: {name: shop-pg, key: url}
  reporting:
    lambda: {functionName: helios-report, endpoint: "http://lambda:9001"}
    s3: {bucket: shop-reports, endpoint: "http://s3:9000"}
"#,
        )
        .unwrap()
    }

    /// A detector of [`pipeline`].
    pub fn detector() -> Detector {
        serde_yaml::from_str(
            r#"
apiVersion: helios.dev/v1alpha1
kind: Detector
metadata: {name: auth-errors, namespace: team-a, uid: 2222-bbbb, generation: 1}
spec:
  pipelineRef: {name: shop}
  replicas: 2
  selector: {services: [auth]}
  features: [event_count, error_rate]
"#,
        )
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodTemplateSpec;

    #[test]
    fn parses_byte_quantities() {
        assert_eq!(parse_bytes("5Mi"), Some(5 * 1024 * 1024));
        assert_eq!(parse_bytes("512Ki"), Some(512 * 1024));
        assert_eq!(parse_bytes("1Gi"), Some(1 << 30));
        assert_eq!(parse_bytes("5k"), Some(5000));
        assert_eq!(parse_bytes("2M"), Some(2_000_000));
        assert_eq!(parse_bytes("1024"), Some(1024));
        for bad in ["", "Mi", "5mi", "5 Mi", "5Ti", "-5"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }

    /// A placement as a user writes it.
    fn placement() -> helios_crds::Placement {
        serde_yaml::from_str(
            r#"
nodeSelector: {pool: detection}
tolerations: [{key: dedicated, operator: Equal, value: detection, effect: NoSchedule}]
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm: {topologyKey: kubernetes.io/hostname}
priorityClassName: high
hostNetwork: true
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The pod spec of a workload's template.
    fn pod_spec(template: Option<&PodTemplateSpec>) -> PodSpec {
        template
            .and_then(|t| t.spec.clone())
            .unwrap_or_else(|| panic!("a pod template with a spec"))
    }

    #[test]
    fn both_workloads_run_where_their_placement_says() {
        let (mut pipeline, mut detector) = (fixtures::pipeline(), fixtures::detector());
        let plain = ingest::build(&pipeline, "helios:1").unwrap_or_else(|e| panic!("{e}"));
        let plain = pod_spec(plain.deployment.spec.as_ref().map(|s| &s.template));
        assert_eq!(
            (
                plain.node_selector,
                plain.tolerations,
                plain.host_network,
                plain.dns_policy
            ),
            (None, None, None, None),
            "no placement: the scheduler's defaults"
        );
        pipeline.spec.ingestion.placement = Some(placement());
        detector.spec.placement = Some(placement());
        let ingest = ingest::build(&pipeline, "helios:1").unwrap_or_else(|e| panic!("{e}"));
        let detect =
            detector::build(&detector, &pipeline, "helios:1").unwrap_or_else(|e| panic!("{e}"));
        for spec in [
            pod_spec(ingest.deployment.spec.as_ref().map(|s| &s.template)),
            pod_spec(detect.stateful_set.spec.as_ref().map(|s| &s.template)),
        ] {
            let want = placement();
            assert_eq!(spec.node_selector, Some(want.node_selector));
            assert_eq!(spec.tolerations, Some(want.tolerations));
            assert_eq!(spec.affinity, want.affinity);
            assert_eq!(spec.priority_class_name.as_deref(), Some("high"));
            assert_eq!(spec.host_network, Some(true));
            assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
            // What the operator owns stays as it was: one non-root container, /tmp.
            assert_eq!(spec.containers.len(), 1);
            assert!(spec.security_context.is_some());
        }
    }

    #[test]
    fn both_workloads_reach_the_api_server_the_operator_names_and_only_then() {
        let (pipeline, detector) = (fixtures::pipeline(), fixtures::detector());
        let owner = Owner::of(&pipeline).unwrap_or_else(|e| panic!("{e}"));
        let topics = crate::naming::topic_names(&owner.namespace, &owner.name);
        let config =
            ingest::render_config(&owner, &pipeline, &topics).unwrap_or_else(|e| panic!("{e}"));
        let specs = |api: Option<&ApiServer>| {
            let ingest = ingest::build_rendered(&owner, &pipeline, &topics, &config, "i", api)
                .unwrap_or_else(|e| panic!("{e}"));
            let detect = detector::build_with(
                &detector,
                &pipeline,
                "i",
                &detector::WorkerIdentity::default(),
                api,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            [
                pod_spec(ingest.deployment.spec.as_ref().map(|s| &s.template)),
                pod_spec(detect.stateful_set.spec.as_ref().map(|s| &s.template)),
            ]
        };
        let service_env = |spec: &PodSpec| -> Vec<(String, Option<String>)> {
            spec.containers
                .iter()
                .flat_map(|c| c.env.iter().flatten())
                .filter(|e| e.name.starts_with("KUBERNETES_SERVICE_"))
                .map(|e| (e.name.clone(), e.value.clone()))
                .collect()
        };
        for spec in specs(None) {
            assert_eq!(
                service_env(&spec),
                [],
                "no override: the kubelet's variables"
            );
        }
        let api = ApiServer {
            host: "10.0.0.1".into(),
            port: 6443,
        };
        let plain = specs(None);
        for (spec, plain) in specs(Some(&api)).iter().zip(plain) {
            assert_eq!(
                service_env(spec),
                [
                    ("KUBERNETES_SERVICE_HOST".into(), Some("10.0.0.1".into())),
                    ("KUBERNETES_SERVICE_PORT".into(), Some("6443".into())),
                ]
            );
            // Added after the worker's own variables, which stay as they were.
            let env = spec.containers[0].env.clone().unwrap_or_default();
            let before = plain.containers[0].env.clone().unwrap_or_default();
            assert_eq!(env[..before.len()], before[..]);
            assert_eq!(env.len(), before.len() + 2);
        }
    }

    #[test]
    fn owner_requires_uid() {
        let mut p = fixtures::pipeline();
        let owner = Owner::of(&p).ok();
        assert_eq!(
            owner.as_ref().map(|o| o.reference.controller),
            Some(Some(true))
        );
        assert_eq!(
            owner.map(|o| o.reference.kind),
            Some("AnomalyPipeline".into())
        );
        p.metadata.uid = None;
        assert_eq!(
            Owner::of(&p).err(),
            Some(BuildError::MissingMetadata("uid"))
        );
    }

    #[test]
    fn security_contexts_are_restricted() {
        let c = container_security_context();
        assert_eq!(c.read_only_root_filesystem, Some(true));
        assert_eq!(c.allow_privilege_escalation, Some(false));
        assert_eq!(
            c.capabilities.and_then(|c| c.drop),
            Some(vec!["ALL".to_string()])
        );
        let p = pod_security_context();
        assert_eq!(p.run_as_non_root, Some(true));
        assert_eq!(
            p.seccomp_profile.map(|s| s.type_),
            Some("RuntimeDefault".into())
        );
    }
}
