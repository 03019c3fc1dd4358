//! `helios detect`: the detector worker.
//!
//! ```text
//! Kafka events (group helios.<ns>.<detector>, manual commits)
//!   ─▶ selector ─▶ partition key ─▶ event-time windows ─▶ features ─▶ per-key Isolation Forest
//!   ─▶ alert policy ─▶ PostgreSQL (windows, anomalies, models; one transaction per batch)
//!   ─▶ offsets committed ─▶ notifier: anomalies topic + report hook (Lambda) ─▶ notified=true
//! ```
//!
//! A restart neither loses nor duplicates an alert: offsets are committed only for messages
//! whose windows are written, alert ids are deterministic and inserts are idempotent, a key's
//! model and alert state are rebuilt from its stored windows, and notifications are driven by
//! the anomalies table (an outbox).
//!
//! The worker also reports on itself in its Detector's status ([`status`], written by
//! [`kube_status`] under the field manager `helios-detect`): `ModelTrained`, `DataFlowing`,
//! `AnomalyActive`, `model` and `lastAnomaly`, beside the operator's `Ready`.

pub mod alertmanager;
pub mod args;
pub mod config;
pub mod feedback;
pub mod feedback_reader;
pub mod http;
pub mod kafka;
pub mod kube_status;
pub mod maintenance;
pub mod metrics;
pub mod notifier;
pub mod offsets;
pub mod partition;
pub mod pipeline;
pub mod records;
pub mod report;
pub mod score_board;
pub mod selector;
pub mod status;
pub mod store;
pub mod watermark;
pub mod windows;
pub mod worker;

pub use args::Args;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use helios_detection::alert::Mode;
use helios_report::request::ReportConfig;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::config::{ConfigError, DetectorConfig};

/// Why the worker stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// PostgreSQL failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Kafka failed.
    #[error(transparent)]
    Kafka(#[from] kafka::KafkaFailure),
    /// The report hook is misconfigured.
    #[error(transparent)]
    Report(#[from] report::ReportError),
    /// The detection library refused its input.
    #[error("detection: {0}")]
    Detection(#[from] helios_detection::DetectionError),
    /// Metrics registration failed.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Io(#[from] std::io::Error),
    /// `--kube-status on` without a usable Kubernetes configuration.
    #[error(transparent)]
    KubeStatus(#[from] kube_status::KubeStatusError),
    /// The Alertmanager settings are unusable.
    #[error(transparent)]
    Alertmanager(#[from] alertmanager::AlertmanagerError),
}

/// Runs the worker until SIGTERM/SIGINT.
pub async fn run(args: Args) -> Result<(), Error> {
    serve(args, shutdown_signal()).await
}

/// Runs the worker until `shutdown` resolves (tests pass their own future). Dropping the
/// returned future stops every task it started, as a crash would.
pub async fn serve(args: Args, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let mut cfg = DetectorConfig::from_json(&args.detector_config, &args.detector)?;
    cfg.core.model.z_guard = args.z_guard.max(0.0);
    if let Some(n) = args.guard_after_windows {
        cfg.apply_guard_wait(n);
    }
    let idle_close = match &args.idle_close {
        Some(text) => config::flag_duration("HELIOS_DETECT_IDLE_CLOSE", text)?,
        None => worker::default_quiet_wait(&cfg.window),
    };
    let metrics = metrics::Metrics::new()?;
    let ready = Arc::new(AtomicBool::new(false));
    let status = status::StatusHandle::new(chrono::Utc::now());
    let kube = kube_status::client(args.kube_status, args.kubeconfig.as_deref()).await?;
    let mut tasks = JoinSet::new();

    let listener = TcpListener::bind(args.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "metrics and probes listening");
    let router = http::router(http::Health {
        metrics: metrics.clone(),
        ready: ready.clone(),
    });
    tasks.spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "http server stopped");
        }
    });

    let pool = store::connect(&args.database_url).await?;
    store::migrate(&pool).await?;
    store::ensure_partitions(&pool, chrono::Utc::now()).await?;
    let store = store::Store::new(pool, cfg.id.id(), cfg.feature_names());

    let kafka_props = args.kafka_client_properties();
    let notify = if cfg.policy().mode == Mode::Enforce {
        let producer = kafka::AnomalyProducer::new(
            &args.kafka_bootstrap,
            &args.anomalies_topic,
            &kafka_props,
        )?;
        let reports = report_client(&args)?;
        let alerts = alert_sink(&args, &cfg, &metrics)?.map(|sink| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tasks.spawn(sink.run(rx));
            tx
        });
        if let Some(alerts) = &alerts {
            for open in store.open_anomalies(&cfg.pipeline).await? {
                let _ = alerts.send(alertmanager::AlertEvent::Fired(Box::new(open)));
            }
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for pending in store.outbox(&cfg.pipeline).await? {
            tracing::info!(id = %pending.anomaly_id, "re-notifying an anomaly from the outbox");
            let _ = tx.send(pending);
        }
        let n = notifier::Notifier {
            cfg: cfg.clone(),
            store: store.clone(),
            producer,
            reports,
            metrics: metrics.clone(),
            status: status.clone(),
            alerts: alerts.clone(),
        };
        let notifier = tasks.spawn(n.run(rx));
        Some((tx, notifier, alerts))
    } else {
        tracing::info!("dry-run: anomalies are recorded, never published or reported");
        None
    };

    let (consumer, generation) = kafka::consumer(
        &args.kafka_bootstrap,
        &cfg.id.group_id(),
        &args.events_topic,
        &kafka_props,
        metrics.clone(),
    )?;
    let restore_limit = match args.restore_windows {
        0 => cfg.core.model.history + cfg.core.model.warmup + cfg.core.model.shingle,
        n => n,
    };
    tracing::info!(detector = %cfg.id.id(), group = %cfg.id.group_id(), topic = %args.events_topic,
                   ?idle_close, "detector consuming");
    let (stop_status, stopped) = tokio::sync::watch::channel(false);
    // The labels stored so far, in force before the first window (and without a kube client,
    // the only ones).
    let suppressions = feedback::Suppressions::default();
    feedback_reader::reload(&store, &cfg.pipeline, &suppressions, &status).await?;
    if let Some(client) = &kube {
        let interval = config::flag_duration("HELIOS_FEEDBACK_INTERVAL", &args.feedback_interval)?;
        let reader = feedback_reader::FeedbackReader {
            api: kube::Api::namespaced(client.clone(), &cfg.id.namespace),
            name: cfg.id.name.clone(),
            store: store.clone(),
            pipeline: cfg.pipeline.clone(),
            suppressions: suppressions.clone(),
            status: status.clone(),
            metrics: metrics.clone(),
            interval: interval.max(Duration::from_millis(100)),
        };
        tasks.spawn(reader.run(stop_status.subscribe()));
    }
    let writer = kube.map(|client| {
        tracing::info!(detector = %cfg.id.id(), "writing the runtime status to the Detector");
        let w = kube_status::StatusWriter::new(
            client,
            &cfg.id,
            &args.detector_config,
            status.clone(),
            status::StatusSettings::from_config(&cfg),
            metrics.clone(),
        );
        tokio::spawn(w.run(stopped))
    });
    ready.store(true, Ordering::Relaxed);
    let cfg_score_keys = cfg.score_metrics_keys;
    let worker = worker::Worker {
        cfg,
        consumer: Arc::new(consumer),
        topic: args.events_topic.clone(),
        generation,
        store,
        notify: notify.as_ref().map(|(tx, _, _)| tx.clone()),
        alerts: notify.as_ref().and_then(|(_, _, a)| a.clone()),
        metrics,
        idle_close,
        restore_limit,
        status,
        score_keys: args
            .score_metrics_keys
            .or(cfg_score_keys)
            .unwrap_or(score_board::DEFAULT_TOP_KEYS),
        suppressions,
    };
    let result = worker.run(shutdown).await;
    ready.store(false, Ordering::Relaxed);
    if let Some((tx, handle, alerts)) = notify {
        drop(tx);
        drop(alerts);
        let wait = Duration::from_secs(args.shutdown_timeout_secs);
        let drained = tokio::time::timeout(wait, async {
            while let Some(done) = tasks.join_next_with_id().await {
                if matches!(&done, Ok((id, ())) if *id == handle.id()) {
                    break;
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("pending notifications stay in the outbox for the next start");
        }
    }
    if let Some(mut writer) = writer {
        // One last write (e.g. the report URI the notifier just got), bounded.
        let _ = stop_status.send(true);
        if tokio::time::timeout(Duration::from_secs(12), &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
    }
    tasks.shutdown().await;
    tracing::info!("detector stopped");
    result
}

/// The Alertmanager sink, when `--alertmanager-url` or the Detector names one (flags win).
fn alert_sink(
    args: &Args,
    cfg: &DetectorConfig,
    metrics: &metrics::Metrics,
) -> Result<Option<alertmanager::AlertSink>, Error> {
    let spec = cfg.alertmanager.as_ref();
    let mut urls: Vec<String> = args
        .alertmanager_urls
        .iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() {
        urls = spec.map(|s| s.urls()).unwrap_or_default();
    }
    if urls.is_empty() {
        return Ok(None);
    }
    let secret = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let auth = match (
        secret(&args.alertmanager_bearer_token),
        secret(&args.alertmanager_username),
    ) {
        (Some(token), _) => alertmanager::Auth::Bearer(token),
        (None, Some(username)) => alertmanager::Auth::Basic {
            username,
            password: secret(&args.alertmanager_password).unwrap_or_default(),
        },
        (None, None) => alertmanager::Auth::None,
    };
    let ca = match (
        secret(&args.alertmanager_ca_file),
        secret(&args.alertmanager_ca),
    ) {
        (Some(path), _) => Some(std::fs::read(&path).map_err(|e| {
            ConfigError::Invalid(format!("HELIOS_ALERTMANAGER_CA_FILE {path}: {e}"))
        })?),
        (None, Some(pem)) => Some(pem.into_bytes()),
        (None, None) => None,
    };
    let duration = |field: &'static str,
                    flag: &Option<String>,
                    spec: Option<&helios_crds::Duration>,
                    default: &str| {
        let text = secret(flag)
            .or_else(|| spec.map(|d| d.0.clone()))
            .unwrap_or_else(|| default.into());
        config::flag_duration(field, &text)
    };
    let resend = duration(
        "HELIOS_ALERTMANAGER_RESEND",
        &args.alertmanager_resend,
        spec.and_then(|s| s.resend_interval.as_ref()),
        "1m",
    )?;
    if resend.is_zero() {
        return Err(
            ConfigError::Invalid("HELIOS_ALERTMANAGER_RESEND must be above 0".into()).into(),
        );
    }
    let max_age = duration(
        "HELIOS_ALERTMANAGER_MAX_AGE",
        &args.alertmanager_max_age,
        spec.and_then(|s| s.max_age.as_ref()),
        "1h",
    )?;
    let client = alertmanager::AlertmanagerClient::new(urls, auth, ca.as_deref())?;
    Ok(Some(alertmanager::AlertSink {
        client,
        settings: alertmanager::AlertSettings { resend, max_age },
        metrics: metrics.clone(),
    }))
}

fn report_client(
    args: &Args,
) -> Result<Option<(report::ReportClient, report::ReportLimiter)>, Error> {
    let Some(function) = args.report_function.clone().filter(|f| !f.is_empty()) else {
        return Ok(None);
    };
    let bucket = args
        .report_bucket
        .clone()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            report::ReportError::Config("HELIOS_REPORT_BUCKET is required with a function".into())
        })?;
    let min_severity = records::parse_severity(&args.report_min_severity).ok_or_else(|| {
        ConfigError::Invalid(format!(
            "HELIOS_REPORT_MIN_SEVERITY must be Info, Warning or Critical, got {:?}",
            args.report_min_severity
        ))
    })?;
    let cooldown = config::flag_duration("HELIOS_REPORT_COOLDOWN", &args.report_cooldown)?;
    let target = report::ReportTarget {
        function,
        config: ReportConfig {
            bucket,
            prefix: args.report_prefix.clone(),
            endpoint: args.report_s3_endpoint.clone().filter(|e| !e.is_empty()),
            region: None,
            llm: None,
            history_table: Some("helios.anomalies".into()),
        },
    };
    let client = report::ReportClient::from_env(target, args.lambda_endpoint.as_deref())?;
    let limiter = report::ReportLimiter::new(
        min_severity,
        i64::try_from(cooldown.as_millis()).unwrap_or(i64::MAX),
        args.report_max_per_hour,
    );
    Ok(Some((client, limiter)))
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
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
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
