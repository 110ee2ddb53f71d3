//! The real `sparrow-controller` binary, started with the flags the rendered Deployment passes,
//! against a testkube API server: it becomes ready once its namespace cache has synced, injects
//! a pod created through kube-rs, takes the Lease, and on SIGTERM turns not ready and releases
//! the Lease at once, yet keeps injecting for its shutdown delay, then exits cleanly.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use sparrow_core::names::{CONTROLLER_NAME, LEASE_NAME, PROXY_CONTAINER, WEBHOOK_CONFIG_NAME};
use sparrow_core::{MeshConfig, WebhookTls, manifests};
use testkube::TestCluster;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// `GET /readyz` over TLS, as the kubelet's probe does: its status and body; `None` when not
/// reachable.
async fn readyz(addr: SocketAddr, ca_pem: &str, server_name: &str) -> Option<(StatusCode, String)> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).ok()?)
        .ok()?;
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.ok()?;
    let name = ServerName::try_from(server_name.to_owned()).ok()?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .ok()?;
    tokio::spawn(conn);
    let request = Request::get("/readyz")
        .header("host", server_name)
        .body(Empty::<bytes::Bytes>::new())
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The names of the containers `pod` runs, init containers first.
fn container_names(pod: &Pod) -> Vec<String> {
    pod.spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers))
        .map(|c| c.name.clone())
        .collect()
}

fn plain_pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "web", "image": "registry.example.com/web:1"}]}
    }))
    .expect("pod")
}

/// The shutdown delay this test gives the controller.
const SHUTDOWN_DELAY: Duration = Duration::from_secs(5);

#[tokio::test]
async fn binary_injects_and_stops_on_sigterm() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cluster = TestCluster::start().await.expect("testkube starts");
    let client = cluster.client();
    let mesh = MeshConfig::default();
    let tls = WebhookTls::generate(&mesh.namespace, time::OffsetDateTime::now_utc())
        .expect("certificate");
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, kubeconfig) = (
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
        dir.path().join("kubeconfig"),
    );
    std::fs::write(&cert, &tls.cert_pem).expect("write cert");
    std::fs::write(&key, &tls.key_pem).expect("write key");
    std::fs::write(&kubeconfig, cluster.kubeconfig()).expect("write kubeconfig");

    let addr = free_port();
    // The Deployment's flags, with this test's address and files.
    let mut args: Vec<String> = manifests::controller_args(&mesh)
        .into_iter()
        .filter(|a| {
            !["--addr=", "--health-addr=", "--tls-cert=", "--tls-key="]
                .iter()
                .any(|p| a.starts_with(p))
        })
        .collect();
    args.push(format!("--addr={addr}"));
    args.push(format!("--health-addr={}", free_port()));
    args.push(format!("--tls-cert={}", cert.display()));
    args.push(format!("--tls-key={}", key.display()));
    args.push(format!("--shutdown-delay={}s", SHUTDOWN_DELAY.as_secs()));
    // The mesh namespace, where the controller's Lease lives.
    let mesh_ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": mesh.namespace}
    }))
    .expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &mesh_ns)
        .await
        .expect("mesh namespace created");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sparrow-controller"))
        .args(&args)
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "info")
        .env("POD_NAME", "sparrow-controller-0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("controller starts");

    cluster.set_service_endpoint(&mesh.namespace, CONTROLLER_NAME, addr);
    let configuration = MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(WEBHOOK_CONFIG_NAME.to_owned()),
            ..ObjectMeta::default()
        },
        webhooks: Some(manifests::injector_webhooks(&mesh, Some(&tls.ca_pem))),
    };
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &configuration)
        .await
        .expect("webhook registered");
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"kubernetes.io/metadata.name": "shop"}}
    }))
    .expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");

    // Ready means: serving TLS and the namespace cache has synced. The process is outside
    // this test's runtime, so its readiness is polled, as the kubelet does.
    let server_name = format!("{CONTROLLER_NAME}.{}.svc", mesh.namespace);
    let mut ready = false;
    for _ in 0..300 {
        if readyz(addr, &tls.ca_pem, &server_name).await.map(|r| r.0) == Some(StatusCode::OK) {
            ready = true;
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("controller exited early: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "controller never became ready");

    let pods = Api::<Pod>::namespaced(client, "shop");
    let created = pods
        .create(&PostParams::default(), &plain_pod("web"))
        .await
        .expect("pod created");
    // testkube reports 1.33: the proxy is a native sidecar, among the init containers.
    let injected = ["sparrow-init", PROXY_CONTAINER, "web"];
    assert_eq!(container_names(&created), injected);

    // The only replica leads: it holds the Lease until it stops.
    let leases = Api::<Lease>::namespaced(cluster.client(), &mesh.namespace);
    let holder = || async {
        let lease = leases.get_opt(LEASE_NAME).await.expect("read the Lease")?;
        lease.spec.and_then(|s| s.holder_identity)
    };
    let mut held = false;
    for _ in 0..300 {
        if holder().await.as_deref() == Some("sparrow-controller-0") {
            held = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(held, "the controller never took the Lease");

    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let signalled = std::time::Instant::now();
    // During the delay: not ready, the Lease given up, and admissions still answered.
    let mut stopping = None;
    for _ in 0..80 {
        stopping = readyz(addr, &tls.ca_pem, &server_name).await;
        if stopping.as_ref().is_some_and(|r| r.0 != StatusCode::OK) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        stopping,
        Some((
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down\n".to_owned()
        ))
    );
    let mut released = false;
    for _ in 0..80 {
        if holder().await.is_none() {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        released,
        "the Lease is released as soon as the shutdown starts"
    );
    let late = pods
        .create(&PostParams::default(), &plain_pod("late"))
        .await
        .expect("a pod created during the shutdown delay is admitted");
    assert_eq!(container_names(&late), injected);
    assert!(
        signalled.elapsed() < SHUTDOWN_DELAY,
        "the checks above ran within the delay"
    );
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("controller stops after SIGTERM")
        .expect("controller output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "exit {}: {stdout}", output.status);
    // --log-format=json: every line is a JSON object.
    for line in stdout.lines() {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "not JSON: {line}");
    }
    assert!(
        signalled.elapsed() >= SHUTDOWN_DELAY,
        "stopped {:?} after SIGTERM, before its delay",
        signalled.elapsed()
    );
    assert!(stdout.contains("SIGTERM received"), "{stdout}");
    assert!(stdout.contains("still answering"), "{stdout}");
    assert!(stdout.contains("released the Lease"), "{stdout}");
    assert_eq!(
        holder().await,
        None,
        "the next leader need not wait for the Lease to expire"
    );
}
