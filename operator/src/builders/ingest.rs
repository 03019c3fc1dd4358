//! The pipeline's children: the rendered-config ConfigMap, the ingestion Deployment running
//! `helios ingest`, its Service (port 80 → 8080) and, with two or more replicas, a
//! PodDisruptionBudget.

use super::kafka_env::{bootstrap_env, security_env};
use super::{
    ApiServer, BuildError, Owner, container_security_context, env, env_from_secret, http_probe,
    parse_bytes, placed, worker_pod_spec,
};
use crate::naming::{self, CONFIG_HASH_ANNOTATION, TopicNames};
use helios_crds::AnomalyPipeline;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerPort, EnvVar, PodTemplateSpec, Service, ServicePort,
    ServiceSpec, VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use std::collections::BTreeMap;

/// The component name of ingestion children (`app.kubernetes.io/component`).
pub const COMPONENT: &str = "ingest";
/// The port `helios ingest` listens on.
pub const INGEST_PORT: i32 = 8080;
/// The key of the rendered config in the ConfigMap.
pub const CONFIG_KEY: &str = "pipeline.json";

/// Everything the pipeline's children are built from.
#[derive(Debug, Clone)]
pub struct IngestChildren {
    /// The rendered pipeline config.
    pub config_map: ConfigMap,
    /// The ingestion workload.
    pub deployment: Deployment,
    /// The ingestion endpoint.
    pub service: Service,
    /// Present with two or more desired replicas.
    pub pdb: Option<PodDisruptionBudget>,
}

/// The resolved settings of a pipeline as the workers and people see them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderedConfig {
    /// `namespace/name` of the pipeline.
    pub pipeline: String,
    /// The events topic.
    pub events_topic: String,
    /// The anomalies topic.
    pub anomalies_topic: String,
    /// Bootstrap servers, when given inline.
    pub bootstrap_servers: Option<String>,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: u64,
    /// Sustained events per second per pod.
    pub rate_limit_eps: Option<i64>,
    /// Token-bucket size.
    pub rate_limit_burst: Option<i64>,
    /// Whether clients must present a bearer token.
    pub auth_required: bool,
    /// Storage retention.
    pub storage_retention: Option<String>,
    /// Whether the pipeline is suspended.
    pub suspended: bool,
}

/// The replicas the ingestion Deployment should run (zero while suspended).
pub fn desired_replicas(pipeline: &AnomalyPipeline) -> i32 {
    if pipeline.spec.suspend {
        0
    } else {
        pipeline.spec.ingestion.replicas
    }
}

/// Render the pipeline's resolved config.
pub fn render_config(
    owner: &Owner,
    pipeline: &AnomalyPipeline,
    topics: &TopicNames,
) -> Result<RenderedConfig, BuildError> {
    let ingestion = &pipeline.spec.ingestion;
    let max_body_bytes = parse_bytes(&ingestion.max_body_size)
        .ok_or_else(|| BuildError::InvalidMaxBodySize(ingestion.max_body_size.clone()))?;
    Ok(RenderedConfig {
        pipeline: format!("{}/{}", owner.namespace, owner.name),
        events_topic: topics.events.clone(),
        anomalies_topic: topics.anomalies.clone(),
        bootstrap_servers: pipeline.spec.kafka.bootstrap_servers.clone(),
        max_body_bytes,
        rate_limit_eps: ingestion.rate_limit.as_ref().map(|r| r.events_per_second),
        rate_limit_burst: ingestion.rate_limit.as_ref().and_then(|r| r.burst),
        auth_required: ingestion.auth_token_secret_ref.is_some(),
        storage_retention: pipeline
            .spec
            .storage
            .as_ref()
            .map(|s| s.retention.0.clone()),
        suspended: pipeline.spec.suspend,
    })
}

/// Build every child of a pipeline (pods with the kubelet's API server variables).
pub fn build(pipeline: &AnomalyPipeline, image: &str) -> Result<IngestChildren, BuildError> {
    let owner = Owner::of(pipeline)?;
    let topics = naming::topic_names(&owner.namespace, &owner.name);
    let config = render_config(&owner, pipeline, &topics)?;
    build_rendered(&owner, pipeline, &topics, &config, image, None)
}

/// Build every child of a pipeline from its already validated `config` (see [`render_config`]),
/// its pods told to reach the API server at `api_server` when given.
pub fn build_rendered(
    owner: &Owner,
    pipeline: &AnomalyPipeline,
    topics: &TopicNames,
    config: &RenderedConfig,
    image: &str,
    api_server: Option<&ApiServer>,
) -> Result<IngestChildren, BuildError> {
    let config_json =
        serde_json::to_string_pretty(config).map_err(|e| BuildError::Render(e.to_string()))?;
    let config_hash = format!("{:08x}", naming::fnv32(&config_json));
    let config_map = config_map(owner, config_json);
    let deployment = deployment(
        owner,
        pipeline,
        topics,
        config,
        &config_hash,
        image,
        api_server,
    );
    let service = service(owner);
    let pdb = (desired_replicas(pipeline) >= 2).then(|| pdb(owner));
    Ok(IngestChildren {
        config_map,
        deployment,
        service,
        pdb,
    })
}

fn meta(owner: &Owner, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(owner.namespace.clone()),
        labels: Some(naming::labels(COMPONENT, &owner.name, &owner.name)),
        owner_references: Some(vec![owner.reference.clone()]),
        ..Default::default()
    }
}

fn selector(owner: &Owner) -> LabelSelector {
    LabelSelector {
        match_labels: Some(naming::selector_labels(COMPONENT, &owner.name)),
        match_expressions: None,
    }
}

fn config_map(owner: &Owner, config_json: String) -> ConfigMap {
    ConfigMap {
        metadata: meta(owner, naming::config_name(&owner.name)),
        data: Some(BTreeMap::from([(CONFIG_KEY.to_string(), config_json)])),
        ..Default::default()
    }
}

/// The environment of the ingestion container.
pub fn ingest_env(
    pipeline: &AnomalyPipeline,
    topics: &TopicNames,
    config: &RenderedConfig,
) -> Vec<EnvVar> {
    let kafka = &pipeline.spec.kafka;
    let mut out = vec![
        bootstrap_env(kafka),
        env("HELIOS_EVENTS_TOPIC", topics.events.clone()),
        env("HELIOS_INGEST_LISTEN", format!("0.0.0.0:{INGEST_PORT}")),
        env("HELIOS_MAX_BODY_BYTES", config.max_body_bytes.to_string()),
    ];
    if let Some(eps) = config.rate_limit_eps {
        out.push(env("HELIOS_RATE_LIMIT_EPS", eps.to_string()));
        let burst = config.rate_limit_burst.unwrap_or(eps);
        out.push(env("HELIOS_RATE_LIMIT_BURST", burst.to_string()));
    }
    if let Some(token) = &pipeline.spec.ingestion.auth_token_secret_ref {
        out.push(env_from_secret("HELIOS_INGEST_TOKEN", token));
    }
    if let Some(keys) = pipeline
        .spec
        .ingestion
        .otlp
        .as_ref()
        .and_then(|o| o.attributes.as_ref())
    {
        out.push(env("HELIOS_OTLP_ATTRIBUTES", otlp_attributes(keys)));
    }
    out.extend(security_env(kafka, true));
    out
}

/// `spec.ingestion.otlp.attributes` as the worker reads it: the keys joined by `,`, `none`
/// for an empty list (the worker's default applies only when the field is unset).
fn otlp_attributes(keys: &[String]) -> String {
    if keys.is_empty() {
        "none".into()
    } else {
        keys.join(",")
    }
}

fn deployment(
    owner: &Owner,
    pipeline: &AnomalyPipeline,
    topics: &TopicNames,
    config: &RenderedConfig,
    config_hash: &str,
    image: &str,
    api_server: Option<&ApiServer>,
) -> Deployment {
    let name = naming::ingest_name(&owner.name);
    let container = Container {
        name: "ingest".into(),
        image: Some(image.into()),
        command: Some(vec!["helios".into()]),
        args: Some(vec!["ingest".into()]),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: INGEST_PORT,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        env: Some(ingest_env(pipeline, topics, config)),
        liveness_probe: Some(http_probe("/healthz", "http", 10)),
        readiness_probe: Some(http_probe("/readyz", "http", 5)),
        resources: pipeline.spec.ingestion.resources.clone(),
        security_context: Some(container_security_context()),
        volume_mounts: Some(vec![VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let pod_meta = ObjectMeta {
        labels: Some(naming::labels(COMPONENT, &owner.name, &owner.name)),
        annotations: Some(BTreeMap::from([(
            CONFIG_HASH_ANNOTATION.to_string(),
            config_hash.to_string(),
        )])),
        ..Default::default()
    };
    Deployment {
        metadata: meta(owner, name),
        spec: Some(DeploymentSpec {
            replicas: Some(desired_replicas(pipeline)),
            selector: selector(owner),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(pod_meta),
                spec: Some(placed(
                    worker_pod_spec(container, None, api_server),
                    pipeline.spec.ingestion.placement.as_ref(),
                )),
            },
            ..Default::default()
        }),
        status: None,
    }
}

fn service(owner: &Owner) -> Service {
    Service {
        metadata: meta(owner, naming::ingest_name(&owner.name)),
        spec: Some(ServiceSpec {
            selector: Some(naming::selector_labels(COMPONENT, &owner.name)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

fn pdb(owner: &Owner) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(owner, naming::ingest_name(&owner.name)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(selector(owner)),
            ..Default::default()
        }),
        status: None,
    }
}

/// The in-cluster URL clients POST events to.
pub fn endpoint(namespace: &str, pipeline: &str) -> String {
    format!(
        "http://{}.{namespace}.svc/v1/events",
        naming::ingest_name(pipeline)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::builders::fixtures;

    fn env_value<'a>(env: &'a [EnvVar], name: &str) -> Option<&'a str> {
        env.iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.as_deref())
    }

    fn container(d: &Deployment) -> &Container {
        &d.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
    }

    #[test]
    fn deployment_runs_helios_ingest_with_the_env() {
        let c = build(&fixtures::pipeline(), "helios:1").unwrap();
        let d = &c.deployment;
        assert_eq!(d.metadata.name.as_deref(), Some("shop-ingest"));
        assert_eq!(d.metadata.namespace.as_deref(), Some("team-a"));
        assert_eq!(d.spec.as_ref().unwrap().replicas, Some(2));
        let ct = container(d);
        assert_eq!(ct.image.as_deref(), Some("helios:1"));
        assert_eq!(ct.args, Some(vec!["ingest".to_string()]));
        let env = ct.env.as_ref().unwrap();
        assert_eq!(env_value(env, "HELIOS_KAFKA_BOOTSTRAP"), Some("kafka:9092"));
        assert_eq!(
            env_value(env, "HELIOS_EVENTS_TOPIC"),
            Some("helios.team-a.shop.events")
        );
        assert_eq!(env_value(env, "HELIOS_MAX_BODY_BYTES"), Some("5242880"));
        assert_eq!(env_value(env, "HELIOS_RATE_LIMIT_EPS"), Some("500"));
        assert_eq!(env_value(env, "HELIOS_RATE_LIMIT_BURST"), Some("1000"));
        assert_eq!(env_value(env, "HELIOS_INGEST_LISTEN"), Some("0.0.0.0:8080"));
        let token = env
            .iter()
            .find(|e| e.name == "HELIOS_INGEST_TOKEN")
            .unwrap();
        let r = token
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
            .unwrap();
        assert_eq!((r.name.as_str(), r.key.as_str()), ("shop-token", "token"));
    }

    #[test]
    fn otlp_attributes_reach_the_worker_only_when_set() {
        let plain = build(&fixtures::pipeline(), "helios:1").unwrap();
        let env = container(&plain.deployment).env.clone().unwrap();
        assert_eq!(env_value(&env, "HELIOS_OTLP_ATTRIBUTES"), None);
        for (keys, expected) in [
            (
                vec!["service.version", "k8s.pod.name"],
                "service.version,k8s.pod.name",
            ),
            (vec![], "none"),
        ] {
            let mut p = fixtures::pipeline();
            p.spec.ingestion.otlp = Some(helios_crds::pipeline::OtlpIngestion {
                attributes: Some(keys.into_iter().map(String::from).collect()),
            });
            let c = build(&p, "helios:1").unwrap();
            let env = container(&c.deployment).env.clone().unwrap();
            assert_eq!(env_value(&env, "HELIOS_OTLP_ATTRIBUTES"), Some(expected));
        }
    }

    #[test]
    fn deployment_has_probes_resources_and_restricted_security() {
        let c = build(&fixtures::pipeline(), "helios:1").unwrap();
        let ct = container(&c.deployment);
        let live = ct
            .liveness_probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .unwrap();
        let ready = ct
            .readiness_probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .unwrap();
        assert_eq!(live.path.as_deref(), Some("/healthz"));
        assert_eq!(ready.path.as_deref(), Some("/readyz"));
        assert_eq!(ct.ports.as_ref().unwrap()[0].container_port, 8080);
        let limits = ct
            .resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .unwrap();
        assert_eq!(limits["memory"].0, "256Mi");
        let sc = ct.security_context.as_ref().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        let pod = c
            .deployment
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap();
        assert_eq!(
            pod.security_context.as_ref().unwrap().run_as_non_root,
            Some(true)
        );
    }

    #[test]
    fn suspend_scales_to_zero_and_drops_the_pdb() {
        let mut p = fixtures::pipeline();
        assert!(build(&p, "i").unwrap().pdb.is_some());
        p.spec.suspend = true;
        let c = build(&p, "i").unwrap();
        assert_eq!(c.deployment.spec.unwrap().replicas, Some(0));
        assert!(c.pdb.is_none());
    }

    #[test]
    fn every_child_is_labelled_and_owned() {
        let c = build(&fixtures::pipeline(), "i").unwrap();
        let metas = [
            &c.config_map.metadata,
            &c.deployment.metadata,
            &c.service.metadata,
            &c.pdb.as_ref().unwrap().metadata,
        ];
        for m in metas {
            let labels = m.labels.as_ref().unwrap();
            assert_eq!(labels["app.kubernetes.io/managed-by"], "helios-operator");
            assert_eq!(labels["helios.dev/pipeline"], "shop");
            assert_eq!(labels["app.kubernetes.io/instance"], "shop");
            let owners = m.owner_references.as_ref().unwrap();
            assert_eq!(owners.len(), 1);
            assert_eq!(owners[0].uid, "1111-aaaa");
            assert_eq!(owners[0].controller, Some(true));
        }
    }

    #[test]
    fn service_maps_80_to_the_http_port() {
        let s = build(&fixtures::pipeline(), "i").unwrap().service;
        let port = &s.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
        assert_eq!(port.port, 80);
        assert_eq!(port.target_port, Some(IntOrString::String("http".into())));
        assert_eq!(
            s.spec.unwrap().selector.unwrap()["app.kubernetes.io/instance"],
            "shop"
        );
    }

    #[test]
    fn config_change_changes_the_pod_template_hash() {
        let hash = |p: &AnomalyPipeline| {
            build(p, "i")
                .unwrap()
                .deployment
                .spec
                .unwrap()
                .template
                .metadata
                .unwrap()
                .annotations
                .unwrap()[CONFIG_HASH_ANNOTATION]
                .clone()
        };
        let mut p = fixtures::pipeline();
        let before = hash(&p);
        assert_eq!(before, hash(&p), "deterministic");
        p.spec.ingestion.max_body_size = "1Mi".into();
        assert_ne!(before, hash(&p));
        let cm = build(&p, "i").unwrap().config_map;
        assert!(cm.data.unwrap()[CONFIG_KEY].contains("\"maxBodyBytes\": 1048576"));
    }

    #[test]
    fn bad_body_size_is_a_build_error() {
        let mut p = fixtures::pipeline();
        p.spec.ingestion.max_body_size = "5Ti".into();
        assert_eq!(
            build(&p, "i").err(),
            Some(BuildError::InvalidMaxBodySize("5Ti".into()))
        );
    }
}
