//! `helios operator`: the admin server, leader election, and both controllers while leading.

use crate::args::Args;
use crate::controller::{self, Context};
use crate::leader::{Elector, LeaseConfig};
use crate::metrics::{Metrics, MetricsError};
use crate::reporting;
use crate::server::{self, AdminState};
use kube::runtime::events::{Recorder, Reporter};
use kube::{Client, Config};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// Why the operator could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// No usable Kubernetes configuration.
    #[error("cannot load the Kubernetes configuration: {0}")]
    KubeConfig(String),
    /// The client could not be built.
    #[error("cannot create the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// The API server did not answer.
    #[error("the Kubernetes API server is unreachable: {0}")]
    ApiUnreachable(#[source] kube::Error),
    /// A flag is malformed.
    #[error("invalid arguments: {0}")]
    InvalidArgs(String),
    /// The CRDs are not installed (or not served) on this cluster.
    #[error(
        "the {crd} CRD is not installed on this cluster ({source}); install it with `helm install helios charts/helios` or `kubectl apply --server-side -f crds/yaml/`"
    )]
    CrdMissing {
        /// The CRD's name.
        crd: &'static str,
        /// The API's answer.
        source: kube::Error,
    },
    /// Listing a kind failed for another reason (RBAC, network).
    #[error("cannot list {crd}: {source}")]
    CrdCheck {
        /// The CRD's name.
        crd: &'static str,
        /// The API's answer.
        source: kube::Error,
    },
    /// Metrics registration failed.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The admin server could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

async fn client(args: &Args) -> Result<Client, OperatorError> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| OperatorError::KubeConfig(e.to_string()))?;
            Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .map_err(|e| OperatorError::KubeConfig(e.to_string()))?
        }
        None => Config::infer()
            .await
            .map_err(|e| OperatorError::KubeConfig(e.to_string()))?,
    };
    Client::try_from(config).map_err(OperatorError::Client)
}

/// Run until SIGTERM/SIGINT: serve health and metrics, campaign for the Lease, and run the
/// controllers only while this replica leads.
pub async fn run(args: Args) -> Result<(), OperatorError> {
    let client = client(&args).await?;
    let version = client
        .apiserver_version()
        .await
        .map_err(OperatorError::ApiUnreachable)?;
    tracing::info!(server = %version.git_version, "connected to the Kubernetes API");
    let worker_identity = args.worker_identity().map_err(OperatorError::InvalidArgs)?;
    check_crds(&client, args.namespace.as_deref()).await?;

    let metrics = Arc::new(Metrics::new()?);
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .map_err(|source| OperatorError::Bind {
            addr: args.metrics_addr,
            source,
        })?;
    let app = server::router(AdminState {
        metrics: Arc::clone(&metrics),
        ready: Arc::clone(&ready),
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "admin server stopped");
        }
    });

    let identity = args.identity();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "helios-operator".into(),
            instance: Some(identity.clone()),
        },
    );
    let aws = reporting::load_aws_config().await;
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            args.worker_image.clone(),
            recorder,
            Arc::clone(&metrics),
            aws,
            args.kafka_timeout(),
        )
        .with_worker_identity(worker_identity)
        .with_worker_api_server(args.worker_api_server())
        .with_worker_heartbeat_timeout(args.worker_heartbeat_timeout()),
    );
    ready.store(true, Ordering::Relaxed);

    let elector = Elector::new(
        client,
        LeaseConfig {
            namespace: args.lease_namespace(),
            name: args.lease_name.clone(),
            identity: identity.clone(),
            lease_duration: Duration::from_secs(args.lease_duration_secs.max(2)),
            renew_every: Duration::from_secs(args.lease_renew_secs.max(1)),
        },
    );
    let (leading_tx, mut leading) = watch::channel(false);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let campaign = tokio::spawn(elector.run(leading_tx, async move {
        let _ = stop_rx.await;
    }));

    let namespace = args.namespace.clone();
    let grace = (Duration::from_secs(args.lease_duration_secs.max(2)) / 3).min(MAX_STOP_GRACE);
    let mut controllers: Option<Term> = None;
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            changed = leading.changed() => {
                if changed.is_err() {
                    break;
                }
                let lead = *leading.borrow_and_update();
                metrics.set_leader(lead);
                match (lead, controllers.is_some()) {
                    (true, false) => {
                        tracing::info!(%identity, "leading: starting the controllers");
                        controllers = Some(Term::start(Arc::clone(&ctx), namespace.clone()));
                    }
                    (false, true) => {
                        tracing::warn!(%identity, "lost the lease: stopping the controllers");
                        if let Some(term) = controllers.take() {
                            term.stop(grace).await;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    tracing::info!("shutting down");
    if let Some(term) = controllers.take() {
        term.stop(grace).await;
    }
    if tokio::time::timeout(grace, ctx.events.flush())
        .await
        .is_err()
    {
        tracing::warn!(
            ?grace,
            "Events still queued after the grace period: dropped"
        );
    }
    let _ = stop_tx.send(());
    let _ = campaign.await;
    Ok(())
}

/// The longest the controllers of a term get to finish their reconciles in flight when it ends
/// (a third of the lease, at most this: a successor may start once the lease expires).
const MAX_STOP_GRACE: Duration = Duration::from_secs(10);

/// The controllers of one leadership term and the signal that stops them gracefully.
struct Term {
    handle: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Term {
    fn start(ctx: Arc<Context>, namespace: Option<String>) -> Self {
        use futures::FutureExt;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            let _ = stopped.await;
        }
        .boxed()
        .shared();
        Self {
            handle: tokio::spawn(controller::run(ctx, namespace, signal)),
            stop,
        }
    }

    /// Start no new reconcile, let the ones in flight finish for at most `grace`, then abort.
    async fn stop(self, grace: Duration) {
        let _ = self.stop.send(());
        let mut handle = self.handle;
        if tokio::time::timeout(grace, &mut handle).await.is_err() {
            tracing::warn!(
                ?grace,
                "reconciles still running after the grace period: aborted"
            );
            handle.abort();
        }
    }
}

fn crd_error(crd: &'static str) -> impl FnOnce(kube::Error) -> OperatorError {
    move |source| match &source {
        kube::Error::Api(s) if s.code == 404 => OperatorError::CrdMissing { crd, source },
        _ => OperatorError::CrdCheck { crd, source },
    }
}

/// Fail fast, with the fix in the message, when the CRDs are not served.
async fn check_crds(client: &Client, namespace: Option<&str>) -> Result<(), OperatorError> {
    let params = kube::api::ListParams::default().limit(1);
    let pipelines: kube::Api<helios_crds::AnomalyPipeline> = match namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    };
    pipelines
        .list_metadata(&params)
        .await
        .map_err(crd_error("anomalypipelines.helios.dev"))?;
    let detectors: kube::Api<helios_crds::Detector> = match namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    };
    detectors
        .list_metadata(&params)
        .await
        .map_err(crd_error("detectors.helios.dev"))?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
