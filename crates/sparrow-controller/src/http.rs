//! The HTTP surface: `POST /inject`, `GET /healthz`, `GET /readyz`, `GET /metrics`; every other
//! method or path gets a one-line answer saying what is served.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode, Version, header};
use prometheus_client::registry::Registry;
use sparrow_core::names::WEBHOOK_PATH;

use crate::admission::Webhook;
use crate::body::{BodyLimits, read_review_body};
use crate::connections::ConnectionState;
use crate::held_body::HeldBody;
use crate::readiness::Readiness;

pub use crate::body::MAX_REVIEW_BYTES;

/// What the handlers share.
pub struct AppState {
    /// Answers reviews.
    pub webhook: Webhook,
    /// Every metric of the process, rendered at `/metrics`.
    pub registry: Registry,
    /// What `/readyz` waits for.
    pub readiness: Readiness,
}

struct Shared {
    app: Arc<AppState>,
    body_limits: BodyLimits,
}

/// The routes, with the default bounds on review bodies.
pub fn router(state: Arc<AppState>) -> Router {
    router_with_limits(state, BodyLimits::default())
}

/// The routes, with review bodies bounded by `body_limits`.
pub fn router_with_limits(state: Arc<AppState>, body_limits: BodyLimits) -> Router {
    let shared = Arc::new(Shared {
        app: state,
        body_limits,
    });
    Router::new()
        .route(WEBHOOK_PATH, post(inject))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(shared)
}

/// The health listener's routes (plain HTTP, for the kubelet's probes and scrapers): `GET
/// /healthz`, `/readyz` and `/metrics`, nothing that reads a body.
pub fn health_router(state: Arc<AppState>) -> Router {
    let shared = Arc::new(Shared {
        app: state,
        body_limits: BodyLimits::default(),
    });
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(health_not_found)
        .with_state(shared)
}

/// The health listener's answer to anything else.
async fn health_not_found(request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let message = format!(
        "no {} {} here: this listener answers GET /healthz, GET /readyz and GET /metrics",
        parts.method,
        shown(parts.uri.path())
    );
    refusal(StatusCode::NOT_FOUND, message, parts.version, body)
}

/// The one-line description of what is served, for wrong paths and methods.
const SERVED: &str = "this server answers POST /inject (AdmissionReview v1), GET /healthz, GET /readyz and GET /metrics";

async fn inject(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let started = Instant::now();
    let metrics = shared.app.webhook.metrics();
    let (parts, mut body) = request.into_parts();
    if let Err(message) = check_content_type(&parts.headers) {
        metrics.observe("bad-request", "content-type", started.elapsed());
        return refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message,
            parts.version,
            body,
        );
    }
    let connection = parts.extensions.get::<Arc<ConnectionState>>();
    let read =
        match read_review_body(&parts.headers, &mut body, &shared.body_limits, connection).await {
            Ok(read) => read,
            Err(error) => {
                let status = error.status();
                tracing::warn!(%status, %error, "admission review body refused");
                metrics.observe(error.metric(), "", started.elapsed());
                return refusal(status, error.to_string(), parts.version, body);
            }
        };
    // The review has arrived: this connection is working, not stalling.
    let _busy = connection.map(ConnectionState::busy);
    match shared.app.webhook.review(&read.bytes).await {
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

/// The API server sends `application/json`; anything else (or nothing) is refused.
fn check_content_type(headers: &HeaderMap) -> Result<(), String> {
    let value = headers.get(header::CONTENT_TYPE);
    let essence = value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    match essence {
        Some(t) if t.eq_ignore_ascii_case("application/json") => Ok(()),
        Some(t) => Err(format!(
            "Content-Type {t:?} is not supported: send the AdmissionReview as application/json"
        )),
        None => Err(
            "the request has no readable Content-Type: send the AdmissionReview as application/json"
                .to_owned(),
        ),
    }
}

/// A refusal sent before (or instead of) reading the rest of the body. The request body is
/// dropped only once the answer is complete: over HTTP/2 the client then gets `RST_STREAM
/// NO_ERROR` after a full response; over HTTP/1 the connection is closed after it.
fn refusal(status: StatusCode, message: String, version: Version, request_body: Body) -> Response {
    let text = format!("{message}\n");
    let drain = version >= Version::HTTP_2;
    let mut response = Response::new(Body::new(HeldBody::new(text.into(), request_body, drain)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if version < Version::HTTP_2 {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.app.readiness.is_stopping() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let pending = shared.app.readiness.pending();
    if pending.is_empty() {
        "ok\n".into_response()
    } else {
        let body = format!("waiting for: {}\n", pending.join(", "));
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &shared.app.registry) {
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

async fn method_not_allowed(request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let message = format!(
        "{} is not allowed on {}: {SERVED}",
        parts.method,
        shown(path)
    );
    let allow = if path == WEBHOOK_PATH {
        "POST"
    } else {
        "GET, HEAD"
    };
    let mut response = refusal(StatusCode::METHOD_NOT_ALLOWED, message, parts.version, body);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

async fn not_found(request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let message = format!("no such path {}: {SERVED}", shown(parts.uri.path()));
    refusal(StatusCode::NOT_FOUND, message, parts.version, body)
}

/// A path as shown in an answer: at most 64 characters of it.
fn shown(path: &str) -> String {
    match path.char_indices().nth(64) {
        Some((cut, _)) => format!("{}...", &path[..cut]),
        None => path.to_owned(),
    }
}
