//! The controller's HTTP surface served over TLS on 127.0.0.1, driven by a rustls client that
//! trusts the webhook CA, as the API server does.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use sparrow_controller::{
    AdmissionMetrics, AdmissionWarning, AppState, BoxFuture, MAX_REVIEW_BYTES, NamespaceLabels,
    PullSecretCopies, PullSecretCopyError, Readiness, ReloadingCert, StaticNamespaceLabels,
    Webhook, router, serve, server_config,
};
use sparrow_core::WebhookTls;
use sparrow_core::names::{AUTO_INJECT_LABEL, PROXY_CONTAINER};
use sparrow_inject::{InjectConfig, Injector};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio_rustls::TlsConnector;

const REVIEW: &str = include_str!("../../../testdata/reviews/review-replicaset-pod.json");

fn generate_tls() -> WebhookTls {
    WebhookTls::generate_for(&["127.0.0.1".to_owned()], time::OffsetDateTime::now_utc())
        .expect("certificate")
}

/// Writes the pair the way a projected Secret volume changes: new files, then a rename.
fn write_pair(dir: &Path, tls: &WebhookTls) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    for (path, pem) in [(&cert, &tls.cert_pem), (&key, &tls.key_pem)] {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, pem).expect("write");
        std::fs::rename(&tmp, path).expect("rename");
    }
    (cert, key)
}

/// A client trusting the given CAs, like the API server with the webhook's `caBundle`.
#[derive(Clone)]
struct Client {
    addr: SocketAddr,
    trusted: Vec<String>,
}

struct TestServer {
    client: Client,
    dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
}

struct Reply {
    status: StatusCode,
    body: Bytes,
    server_cert: CertificateDer<'static>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn namespaces() -> StaticNamespaceLabels {
    StaticNamespaceLabels::with_switches(&[("shop", None), ("legacy", Some("disabled"))])
}

async fn start(copies: Option<Arc<dyn PullSecretCopies>>, readiness: Readiness) -> TestServer {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = generate_tls();
    let (cert, key) = write_pair(dir.path(), &tls);
    let resolver = ReloadingCert::load(&cert, &key).expect("certificate loads");
    let config = server_config(Arc::new(resolver)).expect("TLS config");
    let mut registry = Registry::default();
    let metrics = AdmissionMetrics::register(&mut registry);
    let namespaces: Arc<dyn NamespaceLabels> = Arc::new(namespaces());
    let webhook = Webhook::new(
        Injector::new(InjectConfig::default()).expect("injector"),
        namespaces,
        copies,
        metrics,
    );
    let state = Arc::new(AppState {
        webhook,
        registry,
        readiness,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(serve(listener, Arc::new(config), router(state), async {
        let _ = rx.await;
    }));
    TestServer {
        client: Client {
            addr,
            trusted: vec![tls.ca_pem],
        },
        dir,
        shutdown: Some(tx),
        handle,
    }
}

impl Client {
    fn connector(&self) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        for pem in &self.trusted {
            roots
                .add(CertificateDer::from_pem_slice(pem.as_bytes()).expect("CA PEM"))
                .expect("CA added");
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }

    /// One request on a new connection (so every request sees the current certificate).
    async fn request(&self, method: Method, path: &str, body: Vec<u8>) -> Reply {
        let tcp = TcpStream::connect(self.addr).await.expect("connect");
        let name = ServerName::try_from("127.0.0.1").expect("name");
        let tls = self
            .connector()
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        let server_cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .expect("a server certificate")
            .clone()
            .into_owned();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("HTTP handshake");
        tokio::spawn(conn);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            body,
            server_cert,
        }
    }

    async fn post(&self, body: Vec<u8>) -> Reply {
        self.request(Method::POST, "/inject", body).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, Vec::new()).await
    }
}

impl TestServer {
    async fn post(&self, body: Vec<u8>) -> Reply {
        self.client.post(body).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.client.get(path).await
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("server stops")
            .expect("server task");
    }
}

fn review_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut review: Value = serde_json::from_str(REVIEW).expect("fixture");
    edit(&mut review);
    serde_json::to_vec(&review).expect("serializes")
}

fn patched_containers(reply: &Reply) -> Vec<String> {
    let json = reply.json();
    let b64 = json["response"]["patch"].as_str().expect("a patch");
    let patch: json_patch::Patch = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64"),
    )
    .expect("JSON patch");
    let mut object =
        serde_json::from_str::<Value>(REVIEW).expect("fixture")["request"]["object"].clone();
    json_patch::patch(&mut object, &patch).expect("patch applies");
    // The proxy is a native sidecar, among the init containers.
    object["spec"]["initContainers"]
        .as_array()
        .expect("initContainers")
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn pod_is_injected_over_tls() {
    let server = start(None, Readiness::new()).await;
    let reply = server.post(REVIEW.as_bytes().to_vec()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let json = reply.json();
    assert_eq!(json["response"]["allowed"], true);
    assert_eq!(
        json["response"]["uid"],
        "8f7c2b1e-3d4a-4c5b-9e6f-1a2b3c4d5e6f"
    );
    assert_eq!(
        patched_containers(&reply),
        ["sparrow-init", PROXY_CONTAINER]
    );
    server.stop().await;
}

#[tokio::test]
async fn disabled_namespace_disabled_pod_and_non_pods_are_not_injected() {
    let server = start(None, Readiness::new()).await;
    let cases = [
        review_with(|r| {
            r["request"]["namespace"] = json!("legacy");
            r["request"]["object"]["metadata"]["namespace"] = json!("legacy");
        }),
        review_with(|r| {
            r["request"]["object"]["metadata"]["labels"][AUTO_INJECT_LABEL] = json!("disabled");
        }),
        review_with(|r| {
            r["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "ConfigMap"});
            r["request"]["object"] =
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        }),
    ];
    for body in cases {
        let reply = server.post(body).await;
        assert_eq!(reply.status, StatusCode::OK);
        let json = reply.json();
        assert_eq!(json["response"]["allowed"], true, "{json}");
        assert!(json["response"].get("patch").is_none(), "{json}");
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_json_is_400_and_oversized_body_is_413() {
    let server = start(None, Readiness::new()).await;
    let reply = server.post(b"{\"kind\": ".to_vec()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.text().contains("not an AdmissionReview"),
        "{}",
        reply.text()
    );

    let reply = server
        .post(br#"{"apiVersion":"v1","kind":"Pod"}"#.to_vec())
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    let mut huge = REVIEW.as_bytes().to_vec();
    huge.resize(MAX_REVIEW_BYTES + 1, b' ');
    let reply = server.post(huge).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Just under the limit is still answered (trailing blanks are valid JSON).
    let mut big = REVIEW.as_bytes().to_vec();
    big.resize(MAX_REVIEW_BYTES, b' ');
    let reply = server.post(big).await;
    assert_eq!(reply.status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn replaced_certificate_is_served_on_the_next_connection() {
    let mut server = start(None, Readiness::new()).await;
    let first = server.get("/healthz").await;
    assert_eq!(first.status, StatusCode::OK);

    let rotated = generate_tls();
    server.client.trusted.push(rotated.ca_pem.clone());
    write_pair(server.dir.path(), &rotated);
    let want = CertificateDer::from_pem_slice(rotated.cert_pem.as_bytes()).expect("PEM");

    let second = server.get("/healthz").await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.server_cert, want, "the new certificate is served");
    assert_ne!(second.server_cert, first.server_cert);

    // A broken file (half-written rotation) keeps the last good certificate.
    std::fs::write(server.dir.path().join("tls.key"), "not a key").expect("write");
    let third = server.get("/healthz").await;
    assert_eq!(third.server_cert, want);
    server.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let synced = Arc::new(AtomicBool::new(false));
    let flag = synced.clone();
    let readiness = Readiness::new().with("namespaces", move || flag.load(Ordering::SeqCst));
    let server = start(None, readiness).await;

    assert_eq!(server.get("/healthz").await.status, StatusCode::OK);
    let not_ready = server.get("/readyz").await;
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        not_ready.text().contains("namespaces"),
        "{}",
        not_ready.text()
    );
    synced.store(true, Ordering::SeqCst);
    assert_eq!(server.get("/readyz").await.status, StatusCode::OK);

    assert_eq!(
        server.post(REVIEW.as_bytes().to_vec()).await.status,
        StatusCode::OK
    );
    let skipped = review_with(|r| {
        r["request"]["namespace"] = json!("legacy");
        r["request"]["object"]["metadata"]["namespace"] = json!("legacy");
    });
    assert_eq!(server.post(skipped).await.status, StatusCode::OK);
    assert_eq!(
        server.post(b"nope".to_vec()).await.status,
        StatusCode::BAD_REQUEST
    );

    let metrics = server.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = metrics.text();
    for line in [
        r#"sparrow_admissions_total{result="injected",reason=""} 1"#,
        r#"sparrow_admissions_total{result="skipped",reason="namespace-disabled"} 1"#,
        r#"sparrow_admissions_total{result="bad-request",reason=""} 1"#,
        "sparrow_admission_duration_seconds_count 3",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    server.stop().await;
}

/// Holds admissions until released, to have a request in flight during shutdown.
struct GatedCopies {
    entered: Notify,
    release: Notify,
}

impl PullSecretCopies for GatedCopies {
    fn ensure_pull_secret_copy<'a>(
        &'a self,
        _namespace: &'a str,
        _pod: &'a str,
    ) -> BoxFuture<'a, Result<Option<AdmissionWarning>, PullSecretCopyError>> {
        Box::pin(async move {
            self.entered.notify_one();
            self.release.notified().await;
            Ok(Some(AdmissionWarning("copied".to_owned())))
        })
    }

    fn injected_pod_exists<'a>(
        &'a self,
        _namespace: &'a str,
    ) -> BoxFuture<'a, Result<bool, PullSecretCopyError>> {
        Box::pin(async { Ok(true) })
    }
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let gate = Arc::new(GatedCopies {
        entered: Notify::new(),
        release: Notify::new(),
    });
    let mut server = start(Some(gate.clone()), Readiness::new()).await;
    let server_addr = server.client.addr;
    let client = server.client.clone();
    let in_flight = tokio::spawn(async move { client.post(REVIEW.as_bytes().to_vec()).await });
    gate.entered.notified().await;

    if let Some(tx) = server.shutdown.take() {
        let _ = tx.send(());
    }
    // Shutdown has begun once the listener is closed (generous: CI machines are loaded).
    let mut refused = false;
    for _ in 0..1000 {
        if TcpStream::connect(server_addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the listener is closed on shutdown");
    assert!(
        !server.handle.is_finished(),
        "the server waits for the request in flight"
    );

    gate.release.notify_one();
    let reply = in_flight.await.expect("request task");
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["response"]["warnings"], json!(["copied"]));
    tokio::time::timeout(Duration::from_secs(10), &mut server.handle)
        .await
        .expect("server stops after the request")
        .expect("server task");
}

/// The API server may speak HTTP/2 to webhooks (ALPN `h2`).
#[tokio::test]
async fn pod_is_injected_over_http2() {
    let server = start(None, Readiness::new()).await;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(server.client.trusted[0].as_bytes()).expect("CA PEM"))
        .expect("CA added");
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(server.client.addr)
        .await
        .expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(tls),
    )
    .await
    .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    // Two requests on one connection.
    for _ in 0..2 {
        let request = Request::builder()
            .method(Method::POST)
            .uri("https://127.0.0.1/inject")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(REVIEW.as_bytes())))
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let json: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(json["response"]["patchType"], "JSONPatch");
    }
    server.stop().await;
}
