//! `/metrics`, `/healthz` (the process runs) and `/readyz` (migrated, consuming).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::metrics::Metrics;

/// What the probes look at.
#[derive(Clone)]
pub struct Health {
    /// Metrics to render.
    pub metrics: Metrics,
    /// True once the database is migrated and the consumer subscribed.
    pub ready: Arc<AtomicBool>,
}

/// The probe and metrics routes.
pub fn router(health: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(health)
}

async fn metrics(State(h): State<Health>) -> String {
    h.metrics.render()
}

async fn readyz(State(h): State<Health>) -> (StatusCode, &'static str) {
    if h.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}
