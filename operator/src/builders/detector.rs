//! A detector's children: a StatefulSet running `helios detect`, its headless Service, and the
//! ServiceAccount, Role and RoleBinding that let the worker read its own Detector and write the
//! runtime part of its status (nothing else).

use super::kafka_env::{bootstrap_env, security_env};
use super::{
    ApiServer, BuildError, Owner, container_security_context, env, env_from_secret, http_probe,
    placed, worker_pod_spec,
};
use crate::naming::{self, DETECTOR_LABEL};
use helios_crds::alertmanager::AlertmanagerSpec;
use helios_crds::{AnomalyPipeline, Detector};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, PodTemplateSpec, Service, ServiceAccount, ServicePort,
    ServiceSpec, VolumeMount,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The component name of detector children.
pub const COMPONENT: &str = "detect";
/// The port of `helios detect`'s metrics and health server.
pub const METRICS_PORT: i32 = 9090;
/// The API group of the Helios kinds.
const HELIOS_GROUP: &str = "helios.dev";
/// The RBAC API group.
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// A detector's children.
#[derive(Debug, Clone)]
pub struct DetectorChildren {
    /// The detect workload.
    pub stateful_set: StatefulSet,
    /// The headless Service governing the StatefulSet.
    pub service: Service,
    /// Whether the ServiceAccount, Role and RoleBinding below are applied.
    pub per_detector_identity: bool,
    /// The identity of the detect pods.
    pub service_account: ServiceAccount,
    /// Read this Detector, write its status; nothing else.
    pub role: Role,
    /// Grants `role` to `service_account`.
    pub role_binding: RoleBinding,
}

/// The replicas a detector should run: zero while its pipeline is suspended.
pub fn desired_replicas(detector: &Detector, pipeline: &AnomalyPipeline) -> i32 {
    if pipeline.spec.suspend {
        0
    } else {
        detector.spec.replicas
    }
}

/// How detect pods get their Kubernetes (and cloud) identity.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerIdentity {
    /// A ServiceAccount, Role and RoleBinding per Detector, so the worker can write its runtime
    /// status; off: the pods run as the namespace's `default` account and write no status.
    pub per_detector: bool,
    /// Annotations of each detector ServiceAccount (e.g. `eks.amazonaws.com/role-arn` for IRSA,
    /// which the worker needs to invoke the report Lambda).
    pub annotations: BTreeMap<String, String>,
}

impl Default for WorkerIdentity {
    fn default() -> Self {
        Self {
            per_detector: true,
            annotations: BTreeMap::new(),
        }
    }
}

/// Build the children of `detector`, which belongs to `pipeline`.
pub fn build(
    detector: &Detector,
    pipeline: &AnomalyPipeline,
    image: &str,
) -> Result<DetectorChildren, BuildError> {
    build_with(detector, pipeline, image, &WorkerIdentity::default(), None)
}

/// Build the children of `detector` with the pods' identity settings, its pods told to reach
/// the API server (which they write their status to) at `api_server` when given.
pub fn build_with(
    detector: &Detector,
    pipeline: &AnomalyPipeline,
    image: &str,
    identity: &WorkerIdentity,
    api_server: Option<&ApiServer>,
) -> Result<DetectorChildren, BuildError> {
    let owner = Owner::of(detector)?;
    let spec_json =
        serde_json::to_string(&detector.spec).map_err(|e| BuildError::Render(e.to_string()))?;
    let mut env = detect_env(&owner, pipeline, spec_json);
    env.extend(alertmanager_env(
        detector.spec.alerting.alertmanager.as_ref(),
    ));
    if !identity.per_detector {
        env.push(super::env("HELIOS_KUBE_STATUS", "off"));
    }
    let pipeline_ref = &detector.spec.pipeline_ref.name;
    let mut sts = stateful_set(&owner, detector, pipeline, env, image, api_server);
    if !identity.per_detector
        && let Some(pod) = sts.spec.as_mut().and_then(|s| s.template.spec.as_mut())
    {
        pod.service_account_name = None;
        pod.automount_service_account_token = Some(false);
    }
    let mut account = service_account(&owner, pipeline_ref);
    if !identity.annotations.is_empty() {
        account.metadata.annotations = Some(identity.annotations.clone());
    }
    Ok(DetectorChildren {
        per_detector_identity: identity.per_detector,
        stateful_set: sts,
        service: service(&owner, pipeline_ref),
        service_account: account,
        role: role(&owner, pipeline_ref),
        role_binding: role_binding(&owner, pipeline_ref),
    })
}

fn labels(owner: &Owner, pipeline: &str) -> BTreeMap<String, String> {
    let mut labels = naming::labels(COMPONENT, &owner.name, pipeline);
    labels.insert(DETECTOR_LABEL.into(), owner.name.clone());
    labels
}

fn meta(owner: &Owner, pipeline: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(naming::detect_name(&owner.name)),
        namespace: Some(owner.namespace.clone()),
        labels: Some(labels(owner, pipeline)),
        owner_references: Some(vec![owner.reference.clone()]),
        ..Default::default()
    }
}

/// The environment of the detect container.
pub fn detect_env(owner: &Owner, pipeline: &AnomalyPipeline, spec_json: String) -> Vec<EnvVar> {
    let topics = naming::topic_names(&owner.namespace, &pipeline_name(pipeline));
    let kafka = &pipeline.spec.kafka;
    let mut out = vec![
        bootstrap_env(kafka),
        env("HELIOS_EVENTS_TOPIC", topics.events),
        env("HELIOS_ANOMALIES_TOPIC", topics.anomalies),
        env(
            "HELIOS_DETECTOR",
            format!("{}/{}", owner.namespace, owner.name),
        ),
        env("HELIOS_DETECTOR_CONFIG", spec_json),
        env("HELIOS_DETECT_LISTEN", format!("0.0.0.0:{METRICS_PORT}")),
    ];
    if let Some(storage) = &pipeline.spec.storage {
        out.push(env_from_secret(
            "DATABASE_URL",
            &storage.postgres_secret_ref,
        ));
    }
    if let Some(r) = &pipeline.spec.reporting {
        out.push(env(
            "HELIOS_REPORT_FUNCTION",
            r.lambda.function_name.clone(),
        ));
        if let Some(endpoint) = &r.lambda.endpoint {
            out.push(env("HELIOS_LAMBDA_ENDPOINT", endpoint.clone()));
        }
        out.push(env("HELIOS_REPORT_BUCKET", r.s3.bucket.clone()));
        out.push(env("HELIOS_REPORT_PREFIX", r.s3.prefix.clone()));
        if let Some(endpoint) = &r.s3.endpoint {
            out.push(env("HELIOS_REPORT_S3_ENDPOINT", endpoint.clone()));
        }
        out.push(env(
            "HELIOS_REPORT_MIN_SEVERITY",
            format!("{:?}", r.min_severity),
        ));
        out.push(env("HELIOS_REPORT_COOLDOWN", r.cooldown.0.clone()));
        out.push(env(
            "HELIOS_REPORT_MAX_PER_HOUR",
            r.max_reports_per_hour.to_string(),
        ));
    }
    // `helios detect` takes librdkafka properties but no SASL credential variables.
    out.extend(security_env(kafka, false));
    out
}

/// The Alertmanager credentials and CA, from the Secrets `spec.alerting.alertmanager` names
/// (its URLs and intervals reach the worker in the spec itself).
pub fn alertmanager_env(am: Option<&AlertmanagerSpec>) -> Vec<EnvVar> {
    let Some(am) = am else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(token) = &am.bearer_token_secret_ref {
        out.push(env_from_secret("HELIOS_ALERTMANAGER_BEARER_TOKEN", token));
    }
    if let Some(basic) = &am.basic_auth {
        out.push(env_from_secret(
            "HELIOS_ALERTMANAGER_USERNAME",
            &basic.username_secret_ref,
        ));
        out.push(env_from_secret(
            "HELIOS_ALERTMANAGER_PASSWORD",
            &basic.password_secret_ref,
        ));
    }
    if let Some(ca) = &am.ca_secret_ref {
        out.push(env_from_secret("HELIOS_ALERTMANAGER_CA", ca));
    }
    out
}

fn pipeline_name(pipeline: &AnomalyPipeline) -> String {
    pipeline.metadata.name.clone().unwrap_or_default()
}

fn stateful_set(
    owner: &Owner,
    detector: &Detector,
    pipeline: &AnomalyPipeline,
    env: Vec<EnvVar>,
    image: &str,
    api_server: Option<&ApiServer>,
) -> StatefulSet {
    let pipeline_ref = &detector.spec.pipeline_ref.name;
    let container = Container {
        name: "detect".into(),
        image: Some(image.into()),
        command: Some(vec!["helios".into()]),
        args: Some(vec!["detect".into()]),
        ports: Some(vec![ContainerPort {
            name: Some("metrics".into()),
            container_port: METRICS_PORT,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        env: Some(env),
        liveness_probe: Some(http_probe("/healthz", "metrics", 10)),
        readiness_probe: Some(http_probe("/readyz", "metrics", 5)),
        security_context: Some(container_security_context()),
        volume_mounts: Some(vec![VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    StatefulSet {
        metadata: meta(owner, pipeline_ref),
        spec: Some(StatefulSetSpec {
            replicas: Some(desired_replicas(detector, pipeline)),
            service_name: Some(naming::detect_name(&owner.name)),
            pod_management_policy: Some("Parallel".into()),
            selector: LabelSelector {
                match_labels: Some(naming::selector_labels(COMPONENT, &owner.name)),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(owner, pipeline_ref)),
                    ..Default::default()
                }),
                // The worker writes its runtime status with this identity.
                spec: Some(placed(
                    worker_pod_spec(
                        container,
                        Some(naming::detect_name(&owner.name)),
                        api_server,
                    ),
                    detector.spec.placement.as_ref(),
                )),
            },
            ..Default::default()
        }),
        status: None,
    }
}

fn service(owner: &Owner, pipeline: &str) -> Service {
    Service {
        metadata: meta(owner, pipeline),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(naming::selector_labels(COMPONENT, &owner.name)),
            ports: Some(vec![ServicePort {
                name: Some("metrics".into()),
                port: METRICS_PORT,
                target_port: Some(IntOrString::String("metrics".into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

fn service_account(owner: &Owner, pipeline: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(owner, pipeline),
        ..Default::default()
    }
}

/// The worker's permissions: get its own Detector, get and patch its own status.
fn role(owner: &Owner, pipeline: &str) -> Role {
    let only_this = Some(vec![owner.name.clone()]);
    Role {
        metadata: meta(owner, pipeline),
        rules: Some(vec![
            PolicyRule {
                api_groups: Some(vec![HELIOS_GROUP.into()]),
                resources: Some(vec!["detectors".into()]),
                resource_names: only_this.clone(),
                verbs: vec!["get".into()],
                ..Default::default()
            },
            PolicyRule {
                api_groups: Some(vec![HELIOS_GROUP.into()]),
                resources: Some(vec!["detectors/status".into()]),
                resource_names: only_this,
                verbs: vec!["get".into(), "patch".into()],
                ..Default::default()
            },
        ]),
    }
}

fn role_binding(owner: &Owner, pipeline: &str) -> RoleBinding {
    let name = naming::detect_name(&owner.name);
    RoleBinding {
        metadata: meta(owner, pipeline),
        role_ref: RoleRef {
            api_group: RBAC_GROUP.into(),
            kind: "Role".into(),
            name: name.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name,
            namespace: Some(owner.namespace.clone()),
            api_group: None,
        }]),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::builders::fixtures;

    fn env_of(c: &DetectorChildren) -> Vec<EnvVar> {
        c.stateful_set
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .env
            .clone()
            .unwrap()
    }

    fn value(env: &[EnvVar], name: &str) -> Option<String> {
        env.iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    }

    #[test]
    fn stateful_set_runs_helios_detect_with_the_env() {
        let c = build(&fixtures::detector(), &fixtures::pipeline(), "helios:1").unwrap();
        let sts = &c.stateful_set;
        assert_eq!(sts.metadata.name.as_deref(), Some("auth-errors-detect"));
        let spec = sts.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(2));
        assert_eq!(spec.service_name.as_deref(), Some("auth-errors-detect"));
        let env = env_of(&c);
        assert_eq!(
            value(&env, "HELIOS_KAFKA_BOOTSTRAP").as_deref(),
            Some("kafka:9092")
        );
        assert_eq!(
            value(&env, "HELIOS_EVENTS_TOPIC").as_deref(),
            Some("helios.team-a.shop.events")
        );
        assert_eq!(
            value(&env, "HELIOS_ANOMALIES_TOPIC").as_deref(),
            Some("helios.team-a.shop.anomalies")
        );
        assert_eq!(
            value(&env, "HELIOS_DETECTOR").as_deref(),
            Some("team-a/auth-errors")
        );
        let config: helios_crds::DetectorSpec =
            serde_json::from_str(&value(&env, "HELIOS_DETECTOR_CONFIG").unwrap()).unwrap();
        assert_eq!(config, fixtures::detector().spec);
        let db = env.iter().find(|e| e.name == "DATABASE_URL").unwrap();
        let r = db
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
            .unwrap();
        assert_eq!((r.name.as_str(), r.key.as_str()), ("shop-pg", "url"));
        assert_eq!(
            value(&env, "HELIOS_REPORT_FUNCTION").as_deref(),
            Some("helios-report")
        );
        assert_eq!(
            value(&env, "HELIOS_LAMBDA_ENDPOINT").as_deref(),
            Some("http://lambda:9001")
        );
    }

    #[test]
    fn children_are_labelled_and_owned_by_the_detector() {
        let c = build(&fixtures::detector(), &fixtures::pipeline(), "i").unwrap();
        for m in [
            &c.stateful_set.metadata,
            &c.service.metadata,
            &c.service_account.metadata,
            &c.role.metadata,
            &c.role_binding.metadata,
        ] {
            assert_eq!(m.name.as_deref(), Some("auth-errors-detect"));
            assert_eq!(m.namespace.as_deref(), Some("team-a"));
            let l = m.labels.as_ref().unwrap();
            assert_eq!(l["helios.dev/pipeline"], "shop");
            assert_eq!(l["helios.dev/detector"], "auth-errors");
            assert_eq!(l["app.kubernetes.io/managed-by"], "helios-operator");
            let o = &m.owner_references.as_ref().unwrap()[0];
            assert_eq!((o.kind.as_str(), o.uid.as_str()), ("Detector", "2222-bbbb"));
            assert_eq!(o.controller, Some(true));
        }
        assert_eq!(
            c.service.spec.unwrap().cluster_ip.as_deref(),
            Some("None"),
            "headless"
        );
    }

    #[test]
    fn detect_pods_run_as_their_own_service_account() {
        let c = build(&fixtures::detector(), &fixtures::pipeline(), "i").unwrap();
        let pod = c.stateful_set.spec.unwrap().template.spec.unwrap();
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some("auth-errors-detect")
        );
        assert_eq!(pod.automount_service_account_token, Some(true));
    }

    #[test]
    fn without_per_detector_identities_pods_use_the_default_account_and_write_no_status() {
        let identity = WorkerIdentity {
            per_detector: false,
            annotations: BTreeMap::new(),
        };
        let c = build_with(
            &fixtures::detector(),
            &fixtures::pipeline(),
            "i",
            &identity,
            None,
        )
        .unwrap();
        assert!(!c.per_detector_identity);
        let pod = c.stateful_set.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.service_account_name, None);
        assert_eq!(pod.automount_service_account_token, Some(false));
        let env = &pod.containers[0].env;
        assert!(
            env.iter()
                .flatten()
                .any(|e| e.name == "HELIOS_KUBE_STATUS" && e.value.as_deref() == Some("off"))
        );
    }

    #[test]
    fn service_account_carries_the_cloud_identity_annotations() {
        let identity = WorkerIdentity {
            per_detector: true,
            annotations: BTreeMap::from([(
                "eks.amazonaws.com/role-arn".to_string(),
                "arn:aws:iam::1:role/detect".to_string(),
            )]),
        };
        let c = build_with(
            &fixtures::detector(),
            &fixtures::pipeline(),
            "i",
            &identity,
            None,
        )
        .unwrap();
        let annotations = c.service_account.metadata.annotations.unwrap();
        assert_eq!(
            annotations["eks.amazonaws.com/role-arn"],
            "arn:aws:iam::1:role/detect"
        );
    }

    #[test]
    fn alertmanager_credentials_come_from_the_named_secrets_and_nothing_when_unset() {
        let plain = build(&fixtures::detector(), &fixtures::pipeline(), "i").unwrap();
        assert!(
            env_of(&plain)
                .iter()
                .all(|e| !e.name.starts_with("HELIOS_ALERTMANAGER"))
        );
        let mut d = fixtures::detector();
        d.spec.alerting.alertmanager = Some(
            serde_json::from_value(serde_json::json!({
                "url": "https://am.monitoring:9093",
                "bearerTokenSecretRef": {"name": "am", "key": "token"},
                "caSecretRef": {"name": "am-ca", "key": "ca.crt"}
            }))
            .unwrap(),
        );
        let env = env_of(&build(&d, &fixtures::pipeline(), "i").unwrap());
        let from = |name: &str| {
            env.iter()
                .find(|e| e.name == name)
                .and_then(|e| e.value_from.as_ref()?.secret_key_ref.as_ref())
                .map(|s| (s.name.clone(), s.key.clone()))
        };
        assert_eq!(
            from("HELIOS_ALERTMANAGER_BEARER_TOKEN"),
            Some(("am".into(), "token".into()))
        );
        assert_eq!(
            from("HELIOS_ALERTMANAGER_CA"),
            Some(("am-ca".into(), "ca.crt".into()))
        );
        assert!(from("HELIOS_ALERTMANAGER_USERNAME").is_none());
        // The URL travels in the spec the worker reads.
        let spec = env
            .iter()
            .find(|e| e.name == "HELIOS_DETECTOR_CONFIG")
            .and_then(|e| e.value.clone())
            .unwrap();
        assert!(spec.contains("https://am.monitoring:9093"), "{spec}");
    }

    #[test]
    fn role_allows_only_reading_the_detector_and_patching_its_status() {
        let c = build(&fixtures::detector(), &fixtures::pipeline(), "i").unwrap();
        let rules = c.role.rules.unwrap();
        let mut grants = Vec::new();
        for r in &rules {
            assert_eq!(
                r.api_groups.as_deref(),
                Some(&["helios.dev".to_string()][..])
            );
            assert_eq!(
                r.resource_names.as_deref(),
                Some(&["auth-errors".to_string()][..]),
                "only this detector"
            );
            assert!(r.non_resource_urls.is_none());
            for res in r.resources.as_ref().unwrap() {
                for verb in &r.verbs {
                    grants.push(format!("{res}:{verb}"));
                }
            }
        }
        grants.sort();
        assert_eq!(
            grants,
            vec![
                "detectors/status:get",
                "detectors/status:patch",
                "detectors:get"
            ]
        );
        let b = c.role_binding;
        assert_eq!(
            (b.role_ref.kind.as_str(), b.role_ref.name.as_str()),
            ("Role", "auth-errors-detect")
        );
        assert_eq!(b.role_ref.api_group, "rbac.authorization.k8s.io");
        let s = &b.subjects.unwrap()[0];
        assert_eq!(
            (s.kind.as_str(), s.name.as_str(), s.namespace.as_deref()),
            ("ServiceAccount", "auth-errors-detect", Some("team-a"))
        );
    }

    #[test]
    fn suspended_pipeline_scales_detectors_to_zero() {
        let mut p = fixtures::pipeline();
        p.spec.suspend = true;
        let c = build(&fixtures::detector(), &p, "i").unwrap();
        assert_eq!(c.stateful_set.spec.unwrap().replicas, Some(0));
    }

    #[test]
    fn no_storage_no_database_url() {
        let mut p = fixtures::pipeline();
        p.spec.storage = None;
        p.spec.reporting = None;
        let c = build(&fixtures::detector(), &p, "i").unwrap();
        let env = env_of(&c);
        assert!(env.iter().all(|e| e.name != "DATABASE_URL"));
        assert!(env.iter().all(|e| !e.name.starts_with("HELIOS_REPORT")));
    }
}
