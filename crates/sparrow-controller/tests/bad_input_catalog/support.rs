//! The catalog's server: the real webhook (namespace cache and pull-secret copier fed by a
//! testkube API server holding a deployed mesh) behind the real TLS server on 127.0.0.1, and
//! raw clients that can send what no well-behaved client would.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use prometheus_client::registry::Registry;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use sparrow_controller::{
    AdmissionMetrics, AppState, BodyLimits, KubeCopies, NamespaceCache, NamespaceLabels,
    PullSecretCopies, Readiness, ReloadingCert, ServerLimits, Webhook, pull_secret_copier,
    router_with_limits, serve_with_limits, server_config,
};
use sparrow_core::names::{AUTO_INJECT_LABEL, NAMESPACE_NAME_LABEL};
use sparrow_core::{MeshConfig, WebhookTls, manifests};
use sparrow_inject::{InjectConfig, Injector};
use sparrow_kube::runtime::metrics::CopyMetrics;
use testkube::TestCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub const REVIEW: &str = include_str!("../../../../testdata/reviews/review-replicaset-pod.json");

/// Namespaces of the catalog's cluster: `shop` and `fresh` are meshed, `legacy` opted out.
/// Only the positive controls make a copy in `shop` and `fresh`.
pub const NAMESPACES: &[(&str, Option<&str>)] = &[
    ("shop", None),
    ("fresh", None),
    ("legacy", Some("disabled")),
];

pub struct Catalog {
    pub cluster: TestCluster,
    pub addr: SocketAddr,
    ca_pem: String,
    _dir: tempfile::TempDir,
}

/// The verbs that change the cluster.
const WRITES: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

impl Catalog {
    pub async fn start() -> Self {
        Self::start_with(ServerLimits::default(), BodyLimits::default()).await
    }

    pub async fn start_with(limits: ServerLimits, body_limits: BodyLimits) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cluster = TestCluster::start().await.expect("testkube starts");
        let mesh = MeshConfig::default();
        let client = cluster.client();
        let mut names: Vec<(&str, Option<&str>)> = vec![(mesh.namespace.as_str(), None)];
        names.extend_from_slice(NAMESPACES);
        for (name, switch) in names {
            let mut labels = BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned())]);
            if let Some(s) = switch {
                labels.insert(AUTO_INJECT_LABEL.to_owned(), s.to_owned());
            }
            let ns = Namespace {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    labels: Some(labels),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            };
            Api::<Namespace>::all(client.clone())
                .create(&PostParams::default(), &ns)
                .await
                .expect("namespace");
        }
        // The source pull secret: any admission that reaches the copier would write a copy.
        let server =
            sparrow_core::RegistryServer::parse("127.0.0.1:5000/team/mesh").expect("server");
        let auth = sparrow_core::RegistryAuth::user_password("robot", "pw").expect("auth");
        let secret: Secret = manifests::pull_secret(
            &mesh.namespace,
            sparrow_core::dockerconfigjson(&server, &auth),
        );
        Api::<Secret>::namespaced(client.clone(), &mesh.namespace)
            .create(&PostParams::default(), &secret)
            .await
            .expect("source secret");

        let (namespaces, _watch) = NamespaceCache::spawn(client.clone());
        let mut registry = Registry::default();
        let copy_metrics = CopyMetrics::register(&mut registry);
        let copier = pull_secret_copier(
            client.clone(),
            &InjectConfig::from_mesh(&mesh),
            sparrow_kube::runtime::copies::SourceSecret::Own,
            Arc::new(namespaces.clone()),
            copy_metrics,
        )
        .await
        .expect("copier");
        let watches = copier.clone();
        tokio::spawn(async move { watches.run_watches().await });
        tokio::time::timeout(Duration::from_secs(30), copier.synced())
            .await
            .expect("copier synced");
        tokio::time::timeout(Duration::from_secs(30), async {
            while NAMESPACES
                .iter()
                .any(|(n, _)| namespaces.labels(n).is_none())
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the namespace cache knows the catalog's namespaces");
        let copies: Arc<dyn PullSecretCopies> = Arc::new(KubeCopies::new(
            copier,
            recorder_for(client.clone(), "catalog"),
        ));
        let metrics = AdmissionMetrics::register(&mut registry);
        let webhook = Webhook::new(
            Injector::new(InjectConfig::from_mesh(&mesh)).expect("injector"),
            Arc::new(namespaces),
            Some(copies),
            metrics,
        );
        let state = Arc::new(AppState {
            webhook,
            registry,
            readiness: Readiness::new(),
        });

        let tls =
            WebhookTls::generate_for(&["127.0.0.1".to_owned()], time::OffsetDateTime::now_utc())
                .expect("certificate");
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::write(&cert, &tls.cert_pem).expect("cert");
        std::fs::write(&key, &tls.key_pem).expect("key");
        let resolver = ReloadingCert::load(&cert, &key).expect("certificate loads");
        let config = server_config(Arc::new(resolver)).expect("TLS config");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(serve_with_limits(
            listener,
            Arc::new(config),
            router_with_limits(state, body_limits),
            std::future::pending(),
            limits,
        ));
        cluster.reset_requests();
        Self {
            cluster,
            addr,
            ca_pem: tls.ca_pem,
            _dir: dir,
        }
    }

    /// Requests that changed the cluster since the last reset, by (verb, resource).
    pub fn writes(&self) -> Vec<((String, String), u64)> {
        self.cluster
            .requests()
            .into_iter()
            .filter(|((verb, _), _)| WRITES.contains(&verb.as_str()))
            .collect()
    }

    pub fn tls_config(&self, alpn: &[&[u8]]) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).expect("CA PEM"))
            .expect("CA added");
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    /// A TLS connection (HTTP/1.1 by ALPN).
    pub async fn connect(&self) -> TlsStream<TcpStream> {
        self.connect_alpn(&[b"http/1.1"]).await
    }

    pub async fn connect_alpn(&self, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.expect("connect");
        let name = ServerName::try_from("127.0.0.1").expect("name");
        TlsConnector::from(Arc::new(self.tls_config(alpn)))
            .connect(name, tcp)
            .await
            .expect("TLS handshake")
    }

    /// Sends `request` as it is and reads the answer until the server closes.
    pub async fn raw(&self, request: &[u8]) -> RawReply {
        let mut tls = self.connect().await;
        // The server may answer and close before all of it is written (that is the point).
        let _ = tls.write_all(request).await;
        let _ = tls.flush().await;
        read_reply(&mut tls).await
    }

    /// `POST /inject` with `body` as `application/json`.
    pub async fn post(&self, body: &[u8]) -> RawReply {
        self.raw(&http_request(
            "POST",
            "/inject",
            &[("content-type", "application/json")],
            body,
        ))
        .await
    }
}

/// An HTTP/1.1 request with `Connection: close` and a Content-Length (unless `headers` has one).
pub fn http_request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let has_length = headers.iter().any(|(n, _)| {
        n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding")
    });
    if !has_length {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawReply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// Reads one response: its head, then Content-Length bytes of body (or up to the close).
pub async fn read_reply<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> RawReply {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(reply) = parse_reply(&bytes) {
            return reply;
        }
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("the server answers within 60 s");
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    }
    // Closed early (or a HEAD answer): whatever head and body arrived.
    parse_reply(&bytes)
        .or_else(|| parse_head_only(&bytes))
        .unwrap_or_else(|| RawReply {
            status: 0,
            head: String::from_utf8_lossy(&bytes).into_owned(),
            body: Vec::new(),
        })
}

fn parse_reply(bytes: &[u8]) -> Option<RawReply> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = &bytes[end + 4..];
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    (body.len() >= length).then(|| RawReply {
        status,
        head,
        body: body[..length].to_vec(),
    })
}

fn parse_head_only(bytes: &[u8]) -> Option<RawReply> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(RawReply {
        status,
        head,
        body: bytes[end + 4..].to_vec(),
    })
}

/// The recorded review with `edit` applied.
pub fn review_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut review: Value = serde_json::from_str(REVIEW).expect("fixture");
    edit(&mut review);
    serde_json::to_vec(&review).expect("serializes")
}

/// The bounded Event recorder, its worker writing to `client` as `instance`.
fn recorder_for(client: kube::Client, instance: &str) -> sparrow_controller::EventRecorder {
    let events =
        sparrow_controller::EventRecorder::new(sparrow_controller::EventMetrics::default());
    let sink = sparrow_controller::KubeEventSink::new(client, "sparrow-controller", instance);
    let worker = events.clone();
    tokio::spawn(async move { worker.run(sink).await });
    events
}
