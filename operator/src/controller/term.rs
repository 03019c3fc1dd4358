//! One leadership term's wiring: the shared watch streams and caches of both controllers,
//! the two controllers built on them, and the error policy they share.

use super::{Context, ReconcileError, backoff, cache, detector, pipeline, trigger};
use crate::apply::{ChildCaches, IdentityCaches};
use futures::StreamExt;
use helios_crds::{AnomalyPipeline, Detector};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::core::PartialObjectMeta as Meta;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::ReflectHandle;
use kube::{Api, Client, Resource, ResourceExt};
use std::sync::Arc;

fn error_policy<K: ResourceExt>(
    kind: &'static str,
    obj: &K,
    error: &ReconcileError,
    ctx: &Context,
) -> Action {
    ctx.metrics.failed(kind, error.reason());
    let key = cache::key_of(kind, obj);
    let n = ctx.failed(&key);
    let stage = error.stage().as_str();
    match error {
        // Only a spec change can fix it; the watch brings that change.
        ReconcileError::InvalidSpec(_) => {
            tracing::warn!(%key, stage, error = %error, "invalid spec; waiting for a change");
            Action::await_change()
        }
        _ => {
            let delay = backoff(n);
            tracing::warn!(%key, stage, error = %error, retry_in = ?delay, "reconcile failed");
            Action::requeue(delay)
        }
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Reconciles in flight per controller: bounds memory and the burst on the API server and the
/// broker when thousands of objects arrive at once (a cold start).
const CONCURRENCY: u16 = 32;

fn controller_config() -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(CONCURRENCY)
}

/// Run both controllers until `stop` resolves (then no new reconcile starts and the ones in flight
/// finish) or the future is dropped. Both read
/// and are triggered by one shared reflector per custom resource kind, and own their children
/// through shared metadata-only reflectors that the child applier reads.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    stop: futures::future::Shared<futures::future::BoxFuture<'static, ()>>,
) {
    let ns = namespace.as_deref();
    let Some(term) = start_term(&ctx, ns) else {
        tracing::error!("cannot subscribe to the shared watch streams");
        return;
    };
    let Term {
        pipes,
        dets,
        mut services,
        config_maps,
        deployments,
        pdbs,
        stateful_sets,
        pipeline_triggers,
        detector_triggers,
        roots,
        caches,
    } = term;
    // The root streams run as tasks of this term (aborted with it); the controllers start once
    // every cache holds a complete listing. (Waiting here, once, rather than in each reconcile:
    // a store's readiness wakes only its most recent waiter.)
    let mut tasks = tokio::task::JoinSet::new();
    for root in roots {
        tasks.spawn(root);
    }
    if !caches.ready().await {
        tracing::error!("the watch caches stopped before their first listing");
        return;
    }
    ctx.begin_term(caches);
    let (Some(ingest_services), Some(detector_services)) = (services.pop(), services.pop()) else {
        return;
    };

    // Every trigger passes only changes of what the reconcile reads (see `trigger`).
    let own = |c: &Arc<Context>| Arc::clone(c);
    let pipelines = Controller::for_shared_stream(
        trigger::only_relevant(pipes.own, trigger::primary, |_| false),
        pipes.store.clone(),
    )
    .with_config(controller_config())
    .graceful_shutdown_on(stop.clone())
    .owns_shared_stream(trigger::children::<Deployment, _>(deployments, own(&ctx)))
    .owns_shared_stream(trigger::children::<Service, _>(ingest_services, own(&ctx)))
    .owns_shared_stream(trigger::children::<ConfigMap, _>(config_maps, own(&ctx)))
    .owns_shared_stream(trigger::children::<PodDisruptionBudget, _>(pdbs, own(&ctx)))
    .reconcile_on(pipeline_triggers)
    .watches_shared_stream(
        trigger::only_relevant(dets.other, trigger::detector_for_pipeline, |_| false),
        |d: Arc<Detector>| {
            d.namespace()
                .map(|ns| ObjectRef::new(&d.spec.pipeline_ref.name).within(&ns))
        },
    )
    .run(
        pipeline::reconcile,
        |obj, err, ctx| error_policy(pipeline::KIND, obj.as_ref(), err, &ctx),
        Arc::clone(&ctx),
    )
    .for_each(|result| async move {
        if let Err(e) = result {
            tracing::debug!(error = %e, "pipeline controller event");
        }
    });

    let store = dets.store.clone();
    let detectors = Controller::for_shared_stream(
        trigger::only_relevant(dets.own, trigger::primary, |_| false),
        dets.store.clone(),
    )
    .with_config(controller_config())
    .graceful_shutdown_on(stop)
    .owns_shared_stream(trigger::children::<StatefulSet, _>(
        stateful_sets,
        own(&ctx),
    ))
    .owns_shared_stream(trigger::children::<Service, _>(
        detector_services,
        own(&ctx),
    ))
    .reconcile_on(detector_triggers)
    .watches_shared_stream(
        trigger::only_relevant(pipes.other, trigger::pipeline_for_detectors, |_| false),
        move |p: Arc<AnomalyPipeline>| {
            let (ns, name) = (p.namespace().unwrap_or_default(), p.name_any());
            cache::detectors_in(&store, &ns, &name)
                .iter()
                .map(|d| ObjectRef::from_obj(d.as_ref()))
                .collect::<Vec<_>>()
        },
    )
    .run(
        detector::reconcile,
        |obj, err, ctx| error_policy(detector::KIND, obj.as_ref(), err, &ctx),
        Arc::clone(&ctx),
    )
    .for_each(|result| async move {
        if let Err(e) = result {
            tracing::debug!(error = %e, "detector controller event");
        }
    });

    futures::join!(pipelines, detectors);
    tasks.abort_all();
}

/// The watch streams of one leadership term.
struct Term {
    pipes: cache::SharedKind<AnomalyPipeline>,
    dets: cache::SharedKind<Detector>,
    services: Vec<ReflectHandle<Meta<Service>>>,
    config_maps: ReflectHandle<Meta<ConfigMap>>,
    deployments: ReflectHandle<Deployment>,
    pdbs: ReflectHandle<Meta<PodDisruptionBudget>>,
    stateful_sets: ReflectHandle<StatefulSet>,
    pipeline_triggers: futures::channel::mpsc::UnboundedReceiver<ObjectRef<AnomalyPipeline>>,
    detector_triggers: futures::channel::mpsc::UnboundedReceiver<ObjectRef<Detector>>,
    roots: Vec<cache::Root>,
    caches: cache::Caches,
}

/// Keep the root of a child reflector in `roots`; its store and first subscriber.
fn split<W: kube::Resource<DynamicType = ()> + Clone + 'static>(
    roots: &mut Vec<cache::Root>,
    stream: cache::ChildStream<W>,
) -> (kube::runtime::reflector::Store<W>, Option<ReflectHandle<W>>) {
    let cache::ChildStream {
        store,
        mut subs,
        root,
    } = stream;
    roots.push(root);
    (store, subs.pop())
}

/// The caches of a term and their streams (nothing runs until the roots are driven).
fn start_term(ctx: &Arc<Context>, ns: Option<&str>) -> Option<Term> {
    let client = &ctx.client;
    // A deleted Detector changes its pipeline's count; a deleted pipeline its Detectors' Ready.
    let (to_pipelines, pipeline_triggers) =
        futures::channel::mpsc::unbounded::<ObjectRef<AnomalyPipeline>>();
    let (to_detectors, detector_triggers) =
        futures::channel::mpsc::unbounded::<ObjectRef<Detector>>();
    let pipelines_on_delete = to_pipelines.clone();
    let (dets, dets_root) = cache::shared(
        api::<Detector>(client, ns),
        detector::KIND,
        Arc::clone(ctx),
        move |d: &Detector| {
            if let Some(ns) = d.namespace() {
                let _ = pipelines_on_delete
                    .unbounded_send(ObjectRef::new(&d.spec.pipeline_ref.name).within(&ns));
            }
        },
    )?;
    let detectors = dets.store.clone();
    let detectors_on_delete = to_detectors.clone();
    let (pipes, pipes_root) = cache::shared(
        api::<AnomalyPipeline>(client, ns),
        pipeline::KIND,
        Arc::clone(ctx),
        move |p: &AnomalyPipeline| {
            let (ns, name) = (p.namespace().unwrap_or_default(), p.name_any());
            for d in cache::detectors_in(&detectors, &ns, &name) {
                let _ = detectors_on_delete.unbounded_send(ObjectRef::from_obj(d.as_ref()));
            }
        },
    )?;
    let mut roots = vec![pipes_root, dets_root];
    // A deleted child is re-applied by its owner's next reconcile.
    let owner_of = {
        let (to_pipelines, to_detectors) = (to_pipelines.clone(), to_detectors.clone());
        move |meta: &kube::api::ObjectMeta| {
            let ns = meta.namespace.clone().unwrap_or_default();
            for o in meta.owner_references.iter().flatten() {
                if o.controller != Some(true) {
                    continue;
                }
                // A closed channel means the term is ending: nothing left to trigger.
                match o.kind.as_str() {
                    "AnomalyPipeline" => {
                        drop(to_pipelines.unbounded_send(ObjectRef::new(&o.name).within(&ns)));
                    }
                    "Detector" => {
                        drop(to_detectors.unbounded_send(ObjectRef::new(&o.name).within(&ns)));
                    }
                    _ => {}
                }
            }
        }
    };
    // Metadata only, except the workloads: their rollout status is what their owners report.
    macro_rules! children {
        ($w:ty, $subs:expr) => {
            children!($w, $subs, cache::strip_meta::<$w>)
        };
        ($w:ty, $subs:expr, $strip:expr) => {{
            let owner_of = owner_of.clone();
            cache::children::<$w>(api(client, ns), $subs, $strip, move |m| owner_of(m.meta()))?
        }};
    }
    let (config_maps, cm_sub) = split(&mut roots, children!(Meta<ConfigMap>, 1));
    let (deployments, dep_sub) = split(
        &mut roots,
        children!(Deployment, 1, trigger::strip_deployment),
    );
    let (pdbs, pdb_sub) = split(&mut roots, children!(Meta<PodDisruptionBudget>, 1));
    let (stateful_sets, sts_sub) = split(
        &mut roots,
        children!(StatefulSet, 1, trigger::strip_stateful_set),
    );
    let cache::ChildStream {
        store: services,
        subs: service_subs,
        root: service_root,
    } = children!(Meta<Service>, 2);
    roots.push(service_root);
    let identities = if ctx.worker_identity.per_detector {
        let (service_accounts, _) = split(&mut roots, children!(Meta<ServiceAccount>, 0));
        let (roles, _) = split(&mut roots, children!(Meta<Role>, 0));
        let (role_bindings, _) = split(&mut roots, children!(Meta<RoleBinding>, 0));
        Some(IdentityCaches {
            service_accounts,
            roles,
            role_bindings,
        })
    } else {
        None
    };
    let caches = cache::Caches {
        pipelines: pipes.store.clone(),
        detectors: dets.store.clone(),
        children: ChildCaches {
            config_maps,
            deployments,
            services,
            pdbs,
            stateful_sets,
            identities,
        },
    };
    Some(Term {
        pipes,
        dets,
        services: service_subs,
        config_maps: cm_sub?,
        deployments: dep_sub?,
        pdbs: pdb_sub?,
        stateful_sets: sts_sub?,
        pipeline_triggers,
        detector_triggers,
        roots,
        caches,
    })
}
