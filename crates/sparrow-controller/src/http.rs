//! The HTTP surface: `POST /inject`, `GET /healthz`, `GET /readyz`, `GET /metrics`.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{StatusCode, header};
use prometheus_client::registry::Registry;
use sparrow_core::names::WEBHOOK_PATH;

use crate::admission::Webhook;
use crate::readiness::Readiness;

/// The largest review accepted: Kubernetes' own request size limit. Larger bodies get 413.
pub const MAX_REVIEW_BYTES: usize = 3 * 1024 * 1024;

/// What the handlers share.
pub struct AppState {
    /// Answers reviews.
    pub webhook: Webhook,
    /// Every metric of the process, rendered at `/metrics`.
    pub registry: Registry,
    /// What `/readyz` waits for.
    pub readiness: Readiness,
}

/// The routes, with the body limit.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, post(inject))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_REVIEW_BYTES))
        .with_state(state)
}

async fn inject(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let metrics = state.webhook.metrics();
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let result = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "too-large"
            } else {
                "bad-request"
            };
            tracing::warn!(%status, "admission review body refused");
            metrics.observe(result, "", started.elapsed());
            return rejection.into_response();
        }
    };
    match state.webhook.review(&body).await {
        Ok(outcome) => {
            metrics.observe(outcome.result, outcome.reason, started.elapsed());
            ([(header::CONTENT_TYPE, "application/json")], outcome.body).into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "bad admission review");
            metrics.observe("bad-request", "", started.elapsed());
            (StatusCode::BAD_REQUEST, format!("{error}\n")).into_response()
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let pending = state.readiness.pending();
    if pending.is_empty() {
        "ok\n".into_response()
    } else {
        let body = format!("waiting for: {}\n", pending.join(", "));
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "could not encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
