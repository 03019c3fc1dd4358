//! The kit of the reconcile test tier: a [`Context`] whose API client talks to a scripted
//! server (a `tower_test` mock, no sockets) and whose watch caches the test fills, so a real
//! reconcile runs in milliseconds. A scenario is the list of requests the reconcile must make, in
//! order (requests made at the same time in a [`concurrently`] group, in any order among
//! themselves), each checked (method, path, query) and answered with JSON; Events are answered
//! on the side and only recorded. The reconcile and its scenario share one timeout.

use super::{Context, cache};
use crate::apply::{Child, ChildCaches, IdentityCaches};
use crate::builders::detector::WorkerIdentity;
use crate::metrics::Metrics;
use helios_crds::{AnomalyPipeline, Detector};
use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Client;
use kube::api::ObjectMeta;
use kube::client::Body;
use kube::core::{PartialObjectMeta, PartialObjectMetaExt};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a reconcile and its scenario may take together (they take milliseconds).
const LIMIT: Duration = Duration::from_secs(10);
/// The image the context renders.
pub const IMAGE: &str = "helios:test";
/// The first resourceVersion the scripted server answers with (then one more per request).
const FIRST_REVISION: u64 = 100;

type ApiHandle = tower_test::mock::Handle<Request<Body>, Response<Body>>;
type Answer = Box<dyn FnOnce(&Value, u64) -> (StatusCode, Value) + Send>;

/// One request a scenario expects, and its answer.
pub struct Step {
    method: Method,
    path: String,
    query: Vec<String>,
    answer: Answer,
    /// The concurrent group the step belongs to (see [`concurrently`]).
    group: Option<u64>,
}

/// `steps` made at the same time: the scripted server accepts them in any order (each still
/// checked and answered as its own step), after the steps before them and before the ones after.
pub fn concurrently(steps: Vec<Step>) -> Vec<Step> {
    static GROUPS: AtomicU64 = AtomicU64::new(1);
    let group = GROUPS.fetch_add(1, Ordering::Relaxed);
    steps
        .into_iter()
        .map(|s| Step {
            group: Some(group),
            ..s
        })
        .collect()
}

impl Step {
    /// A `method` request to exactly `path`, answered by echoing its body as stored (see [`echo`]).
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            answer: Box::new(|body, rv| (StatusCode::OK, echo(body, rv))),
            group: None,
        }
    }

    /// A server-side apply (forced, with the operator's field manager) to `path`.
    pub fn apply(path: impl Into<String>) -> Self {
        Self::new(Method::PATCH, path)
            .query("fieldManager=helios-operator")
            .query("force=true")
    }

    /// A server-side apply of the status of `object` (its JSON) at `path`; answered with the
    /// object carrying the applied status.
    pub fn apply_status(path: impl Into<String>, object: Value) -> Self {
        Self::apply(path).answer_with(move |body, rv| {
            let mut stored = object;
            stored["status"] = body["status"].clone();
            stored["metadata"]["resourceVersion"] = rv.to_string().into();
            (StatusCode::OK, stored)
        })
    }

    /// A background DELETE of `path`.
    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path).answer(200, status_json(200, "", "deleted"))
    }

    /// A metadata-only LIST of `path` answered with `items` (their metadata).
    pub fn list_metadata(path: impl Into<String>, items: Vec<ObjectMeta>) -> Self {
        let items: Vec<Value> = items
            .into_iter()
            .map(|m| json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": m}))
            .collect();
        Self::new(Method::GET, path).answer(
            200,
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
                   "metadata": {"resourceVersion": "1"}, "items": items}),
        )
    }

    /// The query must contain `fragment` (e.g. `force=true`).
    pub fn query(mut self, fragment: impl Into<String>) -> Self {
        self.query.push(fragment.into());
        self
    }

    /// Answer with `code` and `body`.
    pub fn answer(self, code: u16, body: Value) -> Self {
        let code = StatusCode::from_u16(code).expect("a valid HTTP status code");
        self.answer_with(move |_, _| (code, body))
    }

    /// Answer with what `f` makes of the request body and the next resourceVersion.
    pub fn answer_with(
        mut self,
        f: impl FnOnce(&Value, u64) -> (StatusCode, Value) + Send + 'static,
    ) -> Self {
        self.answer = Box::new(f);
        self
    }

    /// Answer with an API error `code` (a `Status` with `reason`).
    pub fn fail(self, code: u16, reason: &str) -> Self {
        self.answer(code, status_json(code, reason, "scripted failure"))
    }

    fn describe(&self) -> String {
        match self.query.as_slice() {
            [] => format!("{} {}", self.method, self.path),
            query => format!("{} {}?{}", self.method, self.path, query.join("&")),
        }
    }

    /// Why `method` `path`?`query` is not this step, if it is not.
    fn mismatch(&self, method: &Method, path: &str, query: &str) -> Option<String> {
        let ok = *method == self.method
            && path == self.path
            && self.query.iter().all(|q| query.split('&').any(|p| p == q));
        (!ok).then(|| format!("expected {}, got {method} {path}?{query}", self.describe()))
    }
}

/// A Kubernetes `Status` answer.
pub fn status_json(code: u16, reason: &str, message: &str) -> Value {
    let status = if code < 300 { "Success" } else { "Failure" };
    json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": status,
           "reason": reason, "message": message, "code": code})
}

/// `body` as the API server would store it: at resourceVersion `rv`, with a uid and (if it had
/// none) generation 1.
pub fn echo(body: &Value, rv: u64) -> Value {
    let mut stored = body.clone();
    let meta = &mut stored["metadata"];
    meta["resourceVersion"] = rv.to_string().into();
    if meta.get("uid").is_none() {
        meta["uid"] = format!("uid-{rv}").into();
    }
    if meta.get("generation").is_none() {
        meta["generation"] = 1.into();
    }
    stored
}

/// One request the scripted server received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The method.
    pub method: Method,
    /// The path and query.
    pub uri: String,
    /// The JSON body (`Null` when empty).
    pub body: Value,
}

impl Seen {
    fn is_event(&self) -> bool {
        self.uri.starts_with("/apis/events.k8s.io/")
    }
}

/// What the scripted server saw during one scenario.
#[derive(Debug, Default)]
pub struct Log {
    /// Every request in arrival order, Events included.
    pub requests: Vec<Seen>,
    /// Requests that were not the expected step, and steps never requested.
    pub problems: Vec<String>,
}

impl Log {
    /// Panic with every problem unless the reconcile made exactly the scripted requests.
    pub fn assert_followed(&self) {
        assert!(
            self.problems.is_empty(),
            "the reconcile did not follow the scenario:\n{}",
            self.problems.join("\n")
        );
    }

    /// The non-Event requests as `METHOD path` (no query).
    pub fn calls(&self) -> Vec<String> {
        self.requests
            .iter()
            .filter(|s| !s.is_event())
            .map(|s| {
                let path = s.uri.split('?').next().unwrap_or_default();
                format!("{} {path}", s.method)
            })
            .collect()
    }

    /// The bodies of the requests to `method` `path` (no query).
    pub fn bodies(&self, method: &Method, path: &str) -> Vec<&Value> {
        self.requests
            .iter()
            .filter(|s| s.method == *method && s.uri.split('?').next() == Some(path))
            .map(|s| &s.body)
            .collect()
    }

    /// The reasons of the Events published (created or counted again), in order.
    pub fn event_reasons(&self) -> Vec<String> {
        self.requests
            .iter()
            .filter(|s| s.is_event())
            .filter_map(|s| s.body["reason"].as_str().map(str::to_string))
            .collect()
    }
}

/// Serve `steps` in order (Events on the side) until `stop` fires or the client is gone.
async fn serve(
    mut handle: ApiHandle,
    steps: Vec<Step>,
    mut stop: oneshot::Receiver<()>,
) -> (ApiHandle, Log) {
    let mut steps = VecDeque::from(steps);
    let mut log = Log::default();
    let mut rv = FIRST_REVISION;
    loop {
        let next = tokio::select! {
            biased;
            _ = &mut stop => break,
            next = handle.next_request() => next,
        };
        let Some((request, respond)) = next else {
            break;
        };
        rv += 1;
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.expect("a readable request body");
        let seen = Seen {
            method: parts.method.clone(),
            uri: parts
                .uri
                .path_and_query()
                .map(ToString::to_string)
                .unwrap_or_default(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        };
        let (path, query) = (parts.uri.path(), parts.uri.query().unwrap_or_default());
        let (code, answer) = if seen.is_event() {
            (StatusCode::OK, echo(&seen.body, rv))
        } else {
            match next_step(&mut steps, &seen.method, path, query) {
                None => {
                    log.problems
                        .push(format!("unexpected {} {}", seen.method, seen.uri));
                    unscripted()
                }
                Some(step) => match step.mismatch(&seen.method, path, query) {
                    Some(problem) => {
                        log.problems.push(problem);
                        unscripted()
                    }
                    None => (step.answer)(&seen.body, rv),
                },
            }
        };
        log.requests.push(seen);
        let response = Response::builder()
            .status(code)
            .body(Body::from(serde_json::to_vec(&answer).expect("JSON")))
            .expect("a valid response");
        respond.send_response(response);
    }
    log.problems.extend(
        steps
            .iter()
            .map(|s| format!("never requested: {}", s.describe())),
    );
    (handle, log)
}

/// The step a request is: the first one, or any step of the first one's concurrent group that
/// matches it (the first one, mismatched, when none does).
fn next_step(steps: &mut VecDeque<Step>, method: &Method, path: &str, query: &str) -> Option<Step> {
    let Some(group) = steps.front()?.group else {
        return steps.pop_front();
    };
    let at = steps
        .iter()
        .take_while(|s| s.group == Some(group))
        .position(|s| s.mismatch(method, path, query).is_none())
        .unwrap_or(0);
    steps.remove(at)
}

fn unscripted() -> (StatusCode, Value) {
    let code = StatusCode::INTERNAL_SERVER_ERROR;
    (code, status_json(500, "Unscripted", "not in the scenario"))
}

/// A child kind whose cache the kit can fill.
pub trait Cached: Child {
    /// Its writer, if the kit's caches hold this kind.
    fn writer(w: &mut Writers) -> Option<&mut Writer<Self::Cached>>;
    /// What its cache holds of a child with `meta` (and no status).
    fn cached(meta: ObjectMeta) -> Self::Cached;
}

macro_rules! cached {
    ($kind:ty, |$w:ident| $writer:expr) => {
        impl Cached for $kind {
            fn writer($w: &mut Writers) -> Option<&mut Writer<PartialObjectMeta<Self>>> {
                $writer
            }
            fn cached(meta: ObjectMeta) -> PartialObjectMeta<Self> {
                meta.into_response_partial()
            }
        }
    };
}

macro_rules! cached_workload {
    ($kind:ty, |$w:ident| $writer:expr) => {
        impl Cached for $kind {
            fn writer($w: &mut Writers) -> Option<&mut Writer<Self>> {
                Some($writer)
            }
            fn cached(metadata: ObjectMeta) -> Self {
                Self {
                    metadata,
                    ..Default::default()
                }
            }
        }
    };
}

cached!(ConfigMap, |w| Some(&mut w.config_maps));
cached_workload!(Deployment, |w| &mut w.deployments);
cached!(Service, |w| Some(&mut w.services));
cached!(PodDisruptionBudget, |w| Some(&mut w.pdbs));
cached_workload!(StatefulSet, |w| &mut w.stateful_sets);
cached!(ServiceAccount, |w| w.identities.as_mut().map(|i| &mut i.0));
cached!(Role, |w| w.identities.as_mut().map(|i| &mut i.1));
cached!(RoleBinding, |w| w.identities.as_mut().map(|i| &mut i.2));

type IdentityWriters = (
    Writer<PartialObjectMeta<ServiceAccount>>,
    Writer<PartialObjectMeta<Role>>,
    Writer<PartialObjectMeta<RoleBinding>>,
);

/// The writing ends of the kit's caches.
pub struct Writers {
    pipelines: Writer<AnomalyPipeline>,
    detectors: Writer<Detector>,
    config_maps: Writer<PartialObjectMeta<ConfigMap>>,
    deployments: Writer<Deployment>,
    services: Writer<PartialObjectMeta<Service>>,
    pdbs: Writer<PartialObjectMeta<PodDisruptionBudget>>,
    stateful_sets: Writer<StatefulSet>,
    identities: Option<IdentityWriters>,
}

/// A context on a scripted API server, with caches the test fills (a started term, as the
/// controllers see it).
pub struct Kit {
    /// The context a reconcile gets.
    pub ctx: Arc<Context>,
    handle: Option<ApiHandle>,
    writers: Writers,
}

impl Kit {
    /// A kit whose detect pods get `identity`; the identity kinds are cached only when
    /// per-detector identities are on (as in a real term).
    pub fn new(identity: WorkerIdentity) -> Self {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "helios-operator".into(),
                instance: Some("test".into()),
            },
        );
        let metrics = Arc::new(Metrics::new().expect("metrics register"));
        let aws = aws_config::SdkConfig::builder().build();
        let ctx = Context::new(
            client,
            IMAGE.into(),
            recorder,
            metrics,
            aws,
            Duration::from_secs(1),
        )
        .with_worker_identity(identity.clone());

        let (pipelines, pipelines_w) = reflector::store();
        let (detectors, detectors_w) = reflector::store();
        let (config_maps, config_maps_w) = reflector::store();
        let (deployments, deployments_w) = reflector::store();
        let (services, services_w) = reflector::store();
        let (pdbs, pdbs_w) = reflector::store();
        let (stateful_sets, stateful_sets_w) = reflector::store();
        let (identities, identities_w) = if identity.per_detector {
            let (service_accounts, sa_w) = reflector::store();
            let (roles, roles_w) = reflector::store();
            let (role_bindings, rb_w) = reflector::store();
            (
                Some(IdentityCaches {
                    service_accounts,
                    roles,
                    role_bindings,
                }),
                Some((sa_w, roles_w, rb_w)),
            )
        } else {
            (None, None)
        };
        ctx.begin_term(cache::Caches {
            pipelines,
            detectors,
            children: ChildCaches {
                config_maps,
                deployments,
                services,
                pdbs,
                stateful_sets,
                identities,
            },
        });
        Self {
            ctx: Arc::new(ctx),
            handle: Some(handle),
            writers: Writers {
                pipelines: pipelines_w,
                detectors: detectors_w,
                config_maps: config_maps_w,
                deployments: deployments_w,
                services: services_w,
                pdbs: pdbs_w,
                stateful_sets: stateful_sets_w,
                identities: identities_w,
            },
        }
    }

    /// Put `pipeline` in the pipelines cache.
    pub fn cache_pipeline(&mut self, pipeline: &AnomalyPipeline) {
        let event = watcher::Event::Apply(pipeline.clone());
        self.writers.pipelines.apply_watcher_event(&event);
    }

    /// Put `detector` in the detectors cache.
    pub fn cache_detector(&mut self, detector: &Detector) {
        let event = watcher::Event::Apply(detector.clone());
        self.writers.detectors.apply_watcher_event(&event);
    }

    /// Put a child of kind `K` with `meta` in its cache.
    pub fn cache_child<K: Cached>(&mut self, meta: ObjectMeta) {
        let writer = K::writer(&mut self.writers).expect("the kit caches this kind");
        writer.apply_watcher_event(&watcher::Event::Apply(K::cached(meta)));
    }

    /// Put `object` in the cache of its kind as that cache holds it (a workload with status).
    pub fn cache_object<K: Cached>(&mut self, object: K::Cached) {
        let writer = K::writer(&mut self.writers).expect("the kit caches this kind");
        writer.apply_watcher_event(&watcher::Event::Apply(object));
    }

    /// Run `reconcile` against the scripted server answering `steps`; its result and the log.
    pub async fn run<F: Future>(&mut self, steps: Vec<Step>, reconcile: F) -> (F::Output, Log) {
        let handle = self.handle.take().expect("one scenario at a time");
        let (stop, stopped) = oneshot::channel();
        let server = tokio::spawn(serve(handle, steps, stopped));
        let ctx = Arc::clone(&self.ctx);
        let (out, served) = tokio::time::timeout(LIMIT, async {
            let out = reconcile.await;
            // The reconcile awaited every answer, and its Events are published once the
            // background publisher is flushed: nothing is in flight any more.
            ctx.events.flush().await;
            let _ = stop.send(());
            (out, server.await)
        })
        .await
        .expect("the reconcile and its scenario finish within the limit");
        let (handle, log) = served.expect("the scripted server does not panic");
        self.handle = Some(handle);
        (out, log)
    }
}

/// `obj` as an object the API server stores: with a uid, `generation` and resourceVersion `rv`.
pub fn stored<K: kube::Resource>(mut obj: K, uid: &str, generation: i64, rv: u64) -> K {
    let meta = obj.meta_mut();
    meta.uid = Some(uid.into());
    meta.generation = Some(generation);
    meta.resource_version = Some(rv.to_string());
    obj
}

/// Metadata of a child `name` in `namespace` controlled by `owner` (kind and uid), labelled as
/// the operator labels its children of instance `instance`.
pub fn child_meta(namespace: &str, name: &str, owner: (&str, &str), instance: &str) -> ObjectMeta {
    let (kind, uid) = owner;
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        resource_version: Some("50".into()),
        labels: Some(
            [
                ("app.kubernetes.io/managed-by", "helios-operator"),
                ("app.kubernetes.io/instance", instance),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ),
        owner_references: Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                api_version: "helios.dev/v1alpha1".into(),
                kind: kind.into(),
                name: instance.into(),
                uid: uid.into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            },
        ]),
        ..Default::default()
    }
}
