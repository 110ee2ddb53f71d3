//! The admin server: `/live`, `/ready` (200 once the listeners are bound, 503 while
//! starting or draining) and `/metrics` (OpenMetrics text).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What the admin server reports.
#[derive(Debug)]
pub struct AdminState {
    /// Listeners bound and not draining.
    pub ready: AtomicBool,
    /// The metrics.
    pub registry: Registry,
}

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

const PLAIN: &str = "text/plain; charset=utf-8";

/// The answer to one request.
pub fn respond(state: &AdminState, method: &Method, path: &str) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, PLAIN, "only GET\n");
    }
    match path {
        "/live" => text(StatusCode::OK, PLAIN, "live\n"),
        "/ready" if state.ready.load(Ordering::Acquire) => text(StatusCode::OK, PLAIN, "ready\n"),
        "/ready" => text(StatusCode::SERVICE_UNAVAILABLE, PLAIN, "not ready\n"),
        "/metrics" => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
                Ok(()) => text(
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    body,
                ),
                Err(_) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    PLAIN,
                    "cannot encode the metrics\n",
                ),
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            PLAIN,
            "not found: try /live, /ready or /metrics\n",
        ),
    }
}

/// Serves until `stop` turns true (after the traffic listeners drained).
pub async fn serve(listener: TcpListener, state: Arc<AdminState>, mut stop: watch::Receiver<bool>) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = crate::run::stopped(&mut stop) => return,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = respond(&state, request.method(), request.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "admin connection failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    fn body(response: Response<Full<Bytes>>) -> String {
        let bytes = futures_body(response);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn futures_body(response: Response<Full<Bytes>>) -> Bytes {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .map(|rt| rt.block_on(response.into_body().collect()))
            .map(|c| c.map(|c| c.to_bytes()).unwrap_or_default())
            .unwrap_or_default()
    }

    #[test]
    fn answers_probes_and_metrics() {
        let mut registry = Registry::default();
        let metrics = crate::ProxyMetrics::register(&mut registry);
        metrics.opened(crate::Direction::Inbound);
        metrics.connect_error(crate::Direction::Outbound);
        let state = AdminState {
            ready: AtomicBool::new(false),
            registry,
        };
        let get = |path: &str| respond(&state, &Method::GET, path);
        assert_eq!(get("/live").status(), StatusCode::OK);
        assert_eq!(get("/ready").status(), StatusCode::SERVICE_UNAVAILABLE);
        state.ready.store(true, Ordering::Release);
        assert_eq!(get("/ready").status(), StatusCode::OK);
        assert_eq!(get("/nope").status(), StatusCode::NOT_FOUND);
        assert_eq!(
            respond(&state, &Method::POST, "/ready").status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        let metrics = body(get("/metrics"));
        assert!(
            metrics.contains("sparrow_proxy_tcp_connections_opened_total{direction=\"inbound\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("sparrow_proxy_tcp_connect_errors_total{direction=\"outbound\"} 1"),
            "{metrics}"
        );
    }
}
