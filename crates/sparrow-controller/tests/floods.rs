//! The connection floods of issue 27 against the real server on loopback, each source on an
//! address of its own (127.0.0.2, 127.0.0.3; the "API server" on 127.0.0.1):
//! - while idle TLS connections churn and kept-alive clients post reviews back to back, an
//!   HTTP/2 client sending reviews as the API server does gets every one answered, and the
//!   health listener answers every probe;
//! - a body arriving slowly is answered 503 when its connection makes room, not reset.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::registry::Registry;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sparrow_controller::{
    AdmissionMetrics, AppState, NamespaceLabels, Readiness, ReloadingCert, ServerLimits,
    StaticNamespaceLabels, Webhook, health_router, router, serve_health, serve_with_limits,
    server_config,
};
use sparrow_core::WebhookTls;
use sparrow_inject::{InjectConfig, Injector};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const REVIEW: &str = include_str!("../../../testdata/reviews/review-replicaset-pod.json");
const APISERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const IDLE_FLOOD: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const REVIEW_FLOOD: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// A review the webhook answers without any cluster work: a dry run in a namespace not meshed.
fn cheap_review(uid: &str) -> Vec<u8> {
    let mut review: serde_json::Value = serde_json::from_str(REVIEW).expect("review");
    review["request"]["uid"] = uid.into();
    review["request"]["dryRun"] = true.into();
    review.to_string().into_bytes()
}

struct Server {
    addr: SocketAddr,
    health: SocketAddr,
    connector: TlsConnector,
}

async fn start(limits: ServerLimits) -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = WebhookTls::generate_for(&["127.0.0.1".to_owned()], time::OffsetDateTime::now_utc())
        .expect("certificate");
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, &tls.cert_pem).expect("cert");
    std::fs::write(&key, &tls.key_pem).expect("key");
    let resolver = ReloadingCert::load(&cert, &key).expect("certificate loads");
    let config = server_config(Arc::new(resolver)).expect("TLS config");
    let mut registry = Registry::default();
    let metrics = AdmissionMetrics::register(&mut registry);
    let namespaces: Arc<dyn NamespaceLabels> =
        Arc::new(StaticNamespaceLabels::with_switches(&[("shop", None)]));
    let webhook = Webhook::new(
        Injector::new(InjectConfig::default()).expect("injector"),
        namespaces,
        None,
        metrics,
    );
    let state = Arc::new(AppState {
        webhook,
        registry,
        readiness: Readiness::new(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let health = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let health_addr = health.local_addr().expect("addr");
    tokio::spawn(serve_health(
        health,
        health_router(state.clone()),
        ServerLimits::health(),
    ));
    tokio::spawn(serve_with_limits(
        listener,
        Arc::new(config),
        router(state),
        std::future::pending(),
        limits,
    ));
    // The certificate files are read once at start and then only when they change.
    std::mem::forget(dir);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(tls.ca_pem.as_bytes()).expect("CA"))
        .expect("CA added");
    let mut client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Server {
        addr,
        health: health_addr,
        connector: TlsConnector::from(Arc::new(client)),
    }
}

impl Server {
    async fn tcp_from(&self, source: IpAddr) -> std::io::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(source, 0))?;
        socket.connect(self.addr).await
    }

    async fn tls_from(&self, source: IpAddr) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = self.tcp_from(source).await?;
        let name = ServerName::try_from("127.0.0.1").expect("name");
        self.connector.connect(name, tcp).await
    }
}

/// Reads until the server closes; true when it did within `limit`.
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let closed = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, closed).await.is_ok()
}

/// Clients that open a TLS connection, send nothing, and reopen when closed, until `stop`.
fn idle_flood(server: &Arc<Server>, clients: usize, stop: &Arc<AtomicBool>) {
    for _ in 0..clients {
        let (server, stop) = (server.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match server.tls_from(IDLE_FLOOD).await {
                    Ok(mut tls) => {
                        closed_within(&mut tls, Duration::from_millis(500)).await;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        });
    }
}

/// Kept-alive HTTP/1.1 clients posting reviews back to back, reconnecting when closed.
fn review_flood(server: &Arc<Server>, clients: usize, stop: &Arc<AtomicBool>) {
    for n in 0..clients {
        let (server, stop) = (server.clone(), stop.clone());
        tokio::spawn(async move {
            let body = cheap_review(&format!("flood-{n}"));
            while !stop.load(Ordering::Relaxed) {
                let Ok(tls) = server.tls_from(REVIEW_FLOOD).await else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let Ok((mut sender, conn)) =
                    hyper::client::conn::http1::handshake(TokioIo::new(tls)).await
                else {
                    continue;
                };
                tokio::spawn(conn);
                while !stop.load(Ordering::Relaxed) && sender.ready().await.is_ok() {
                    let request = post(&body);
                    let Ok(response) = sender.send_request(request).await else {
                        break;
                    };
                    let _ = response.into_body().collect().await;
                }
            }
        });
    }
}

/// The server refused the request without processing it (the connection was closing: a
/// GOAWAY, a refused stream): a client may send it again, as Go's does.
fn unprocessed(error: &hyper::Error) -> bool {
    if error.is_canceled() {
        return true;
    }
    let h2 = std::error::Error::source(error).and_then(|s| s.downcast_ref::<h2::Error>());
    h2.is_some_and(|e| e.is_go_away() || e.reason() == Some(h2::Reason::REFUSED_STREAM))
}

fn post(body: &[u8]) -> Request<Full<Bytes>> {
    Request::builder()
        .method("POST")
        .uri("https://127.0.0.1/inject")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request")
}

/// One GET over plain HTTP on a new connection, as the kubelet probes: its status.
async fn probe(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut tcp = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: probe\r\nconnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.ok()?;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_neither_fail_the_api_servers_reviews_nor_the_probes() {
    let limits = ServerLimits {
        max_connections: 24,
        max_connections_per_peer: 12,
        ..ServerLimits::default()
    };
    let server = Arc::new(start(limits).await);
    let stop = Arc::new(AtomicBool::new(false));
    idle_flood(&server, 40, &stop);
    review_flood(&server, 20, &stop);

    // The API server: HTTP/2, one connection kept alive, a new one when it is told to go
    // (GOAWAY), and a request the server refused unprocessed sent again, as Go's client does.
    // Every review it sends must be answered.
    let mut sender: Option<hyper::client::conn::http2::SendRequest<Full<Bytes>>> = None;
    let mut failures = Vec::new();
    let mut probes_failed = Vec::new();
    let mut connections = 0;
    let mut resent = 0;
    for n in 0..60 {
        let body = cheap_review(&format!("api-{n}"));
        let mut attempts = 0;
        let answer = loop {
            attempts += 1;
            if sender.as_ref().is_none_or(|s| s.is_closed()) {
                let tls = server
                    .tls_from(APISERVER)
                    .await
                    .expect("the API server connects");
                let (new, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                        .await
                        .expect("HTTP/2");
                tokio::spawn(conn);
                sender = Some(new);
                connections += 1;
            }
            let Some(current) = sender.as_mut() else {
                unreachable!("connected above");
            };
            match current.send_request(post(&body)).await {
                Err(error) if attempts < 3 && unprocessed(&error) => {
                    resent += 1;
                    sender = None;
                }
                other => break other,
            }
        };
        match answer {
            Ok(response) if response.status() == StatusCode::OK => {
                let _ = response.into_body().collect().await;
            }
            Ok(response) => failures.push(format!("review {n}: {}", response.status())),
            Err(error) => failures.push(format!("review {n}: {error:?}")),
        }
        let started = Instant::now();
        match probe(server.health, "/healthz").await {
            Some(200) if started.elapsed() < Duration::from_secs(2) => {}
            other => probes_failed.push(format!("probe {n}: {other:?} in {:?}", started.elapsed())),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "the API server's reviews failed: {failures:#?}"
    );
    assert!(
        probes_failed.is_empty(),
        "probes failed: {probes_failed:#?}"
    );
    println!(
        "60 reviews over {connections} connection(s) ({resent} sent again after GOAWAY), 60 probes, all answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_making_room_is_answered_not_reset() {
    let limits = ServerLimits {
        max_connections: 2,
        max_connections_per_peer: 2,
        ..ServerLimits::default()
    };
    let server = start(limits).await;
    let head = b"POST /inject HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 10000\r\n\r\n{";
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut tls = server.tls_from(IDLE_FLOOD).await.expect("connect");
        tls.write_all(head).await.expect("headers");
        slow.push(tls);
    }
    // Both bodies have started; the third connection makes room.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _third = server.tls_from(APISERVER).await.expect("room is made");
    let mut answer = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(10), slow[0].read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(read.is_ok(), "the oldest slow body's connection was closed");
    assert!(
        text.starts_with("HTTP/1.1 503"),
        "answered before being closed: {text:?}"
    );
    assert!(text.contains("too slowly"), "{text}");
}
