//! The TLS accept loop: one task per connection (handshake, then HTTP/1.1 or HTTP/2 with
//! keep-alive), bounded in number and in time, and a graceful stop that lets in-flight
//! requests finish.
//!
//! Bounds: the TLS handshake, the request headers (HTTP/1.1) and the body (see
//! [`crate::body`]) each have a deadline; a connection with no request in flight for
//! [`ServerLimits::idle_timeout`] is closed gracefully (this also ends an HTTP/2 client that
//! never sends its preface or headers); at most [`ServerLimits::max_connections`] are open
//! ([`ServerLimits::max_connections_per_peer`] from one address), the most wasteful one not
//! working on a request making room for a new one (see [`crate::connections`]).
//!
//! The kubelet's probes have a listener of their own ([`serve_health`]): plain HTTP, its own
//! connection table, on a thread and runtime of its own, so no load on the webhook's port can
//! make a probe wait.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::connections::{
    ConnectionSlot, ConnectionState, ConnectionTable, FRESH, MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_PEER, TableLimits,
};

/// How long in-flight requests get to finish once shutdown starts (the pod's grace period is
/// 30 s by default).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a connection closed to make room may finish what it had started (the answer to
/// an evicted slow body, a stream that crossed the GOAWAY): the API server's webhook timeout.
pub const EVICTED_GRACE: Duration = Duration::from_secs(10);

/// How many connections the server holds and for how long.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_connections_per_peer: usize,
    /// A client that does not finish its TLS handshake in this time is dropped.
    pub handshake_timeout: Duration,
    /// An HTTP/1.1 client that does not send its request headers in this time is dropped
    /// (also between keep-alive requests).
    pub header_timeout: Duration,
    /// A connection with no request in flight for this long is closed gracefully.
    pub idle_timeout: Duration,
    /// Concurrent HTTP/2 streams per connection.
    pub max_streams: u32,
}

impl ServerLimits {
    /// The health listener's: a few probes at a time, short deadlines.
    pub fn health() -> Self {
        Self {
            max_connections: 32,
            max_connections_per_peer: 16,
            handshake_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10),
            max_streams: 4,
        }
    }
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: MAX_CONNECTIONS,
            max_connections_per_peer: MAX_CONNECTIONS_PER_PEER,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_streams: 64,
        }
    }
}

/// Serves `app` over TLS on `listener` with the default [`ServerLimits`] until `shutdown`
/// completes, then stops accepting, lets in-flight requests finish (at most
/// [`DRAIN_TIMEOUT`]) and returns.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()>,
) {
    serve_with_limits(listener, tls, app, shutdown, ServerLimits::default()).await;
}

/// [`serve`] with the given limits.
pub async fn serve_with_limits(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()>,
    limits: ServerLimits,
) {
    let acceptor = TlsAcceptor::from(tls);
    serve_connections(listener, Some(acceptor), app, shutdown, limits).await;
}

/// Serves `app` over plain HTTP on `listener`, on a thread of its own with its own runtime and
/// connection table, for as long as the process lives; the returned future ends only if that
/// server does (a task owning it sees it die).
pub fn serve_health(
    listener: std::net::TcpListener,
    app: Router,
    limits: ServerLimits,
) -> impl Future<Output = ()> + Send {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("health".to_owned())
        .spawn(move || {
            let _done = done_tx;
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::error!(%error, "cannot start the health listener's runtime");
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = listener
                    .set_nonblocking(true)
                    .and_then(|()| TcpListener::from_std(listener));
                match listener {
                    Ok(listener) => {
                        serve_connections(listener, None, app, std::future::pending(), limits)
                            .await;
                    }
                    Err(error) => tracing::error!(%error, "cannot use the health listener"),
                }
            });
        });
    async move {
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the health listener's thread");
            return;
        }
        let _ = done_rx.await;
    }
}

/// The accept loop: TLS when `acceptor` is given, plain HTTP otherwise.
async fn serve_connections(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    app: Router,
    shutdown: impl Future<Output = ()>,
    limits: ServerLimits,
) {
    let table = ConnectionTable::new(TableLimits {
        max: limits.max_connections,
        per_peer: limits.max_connections_per_peer,
        fresh: FRESH,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let builder = Arc::new(http_builder(&limits));
    let service = TowerToHyperService::new(app);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match table.admit(peer.ip(), acceptor.is_none()) {
            Ok(slot) => slot,
            Err(refused) => {
                // Every connection that could make room is working: refuse this one at once,
                // before its handshake costs anything.
                tracing::debug!(%peer, ?refused, "connection refused");
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let connection = Connection {
            acceptor: acceptor.clone(),
            builder: builder.clone(),
            service: service.clone(),
            limits: limits.clone(),
            stop: stop_rx.clone(),
        };
        tokio::spawn(async move {
            connection.run(tcp, slot).await;
            tracing::trace!(%peer, "connection closed");
        });
    }
    drop(listener);
    tracing::info!("shutting down: waiting for in-flight requests");
    let _ = stop_tx.send(true);
    tokio::select! {
        () = table.wait_empty() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("drain timeout: closing remaining connections"),
    }
}

fn http_builder(limits: &ServerLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // Request heads larger than this get 431 (and bodies are read in pieces this large).
        .max_buf_size(64 * 1024)
        // Headers and body in one buffer: one TLS record and one write per response, instead
        // of a write per part (the syscalls were the largest cost under load).
        .writev(false);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams)
        .max_header_list_size(64 * 1024)
        // A peer that stops answering pings is gone.
        .keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(10));
    builder
}

/// What a connection task needs.
struct Connection {
    acceptor: Option<TlsAcceptor>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    service: TowerToHyperService<Router>,
    limits: ServerLimits,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, tcp: TcpStream, slot: ConnectionSlot) {
        let state = slot.state().clone();
        let service = Tracked {
            inner: self.service.clone(),
            state: state.clone(),
        };
        let Some(acceptor) = self.acceptor.take() else {
            let conn = self.builder.serve_connection(TokioIo::new(tcp), service);
            drive(conn, &state, &mut self.stop, self.limits.idle_timeout).await;
            drop(slot);
            return;
        };
        let handshake = tokio::time::timeout(self.limits.handshake_timeout, acceptor.accept(tcp));
        let tls = tokio::select! {
            done = handshake => match done {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    return;
                }
            },
            () = state.evicted() => return,
        };
        state.handshaken();
        let conn = self.builder.serve_connection(TokioIo::new(tls), service);
        drive(conn, &state, &mut self.stop, self.limits.idle_timeout).await;
        drop(slot);
    }
}

/// Runs `conn` to its end: gracefully closed on shutdown or when idle; when evicted, dropped
/// if it never sent a request, else closed gracefully within [`EVICTED_GRACE`].
async fn drive<C>(
    conn: C,
    state: &ConnectionState,
    stop: &mut watch::Receiver<bool>,
    idle_timeout: Duration,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    tokio::pin!(conn);
    let mut closing = *stop.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    let mut evicted_at: Option<tokio::time::Instant> = None;
    loop {
        let idle_left = idle_timeout.saturating_sub(state.idle_for());
        let grace_end = evicted_at.map(|at| at + EVICTED_GRACE);
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(error) = ended {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = state.evicted(), if evicted_at.is_none() => {
                if !state.was_used() {
                    tracing::debug!("unused connection closed to make room for a new one");
                    return;
                }
                tracing::debug!("connection closing gracefully to make room for a new one");
                if !closing {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                evicted_at = Some(tokio::time::Instant::now());
            }
            () = async { if let Some(end) = grace_end { tokio::time::sleep_until(end).await } }, if grace_end.is_some() => {
                tracing::debug!("evicted connection did not finish in time");
                return;
            }
            changed = stop.changed(), if !closing => {
                if changed.is_err() || *stop.borrow() {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            () = tokio::time::sleep(idle_left.max(Duration::from_millis(1))), if !closing => {
                if state.idle_for() >= idle_timeout {
                    tracing::debug!("closing an idle connection");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// The app, with each request counted on its connection and the connection's state in the
/// request's extensions (so the handler can mark it busy).
#[derive(Clone)]
struct Tracked {
    inner: TowerToHyperService<Router>,
    state: Arc<ConnectionState>,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl hyper::service::Service<http::Request<Incoming>> for Tracked {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, mut request: http::Request<Incoming>) -> Self::Future {
        let in_flight = self.state.request();
        request.extensions_mut().insert(self.state.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            drop(in_flight);
            response
        })
    }
}
