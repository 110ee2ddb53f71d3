//! Helpers shared by the integration tests: kubectl runner, a TLS webhook server, raw requests.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use testkube::{ServingCert, TestCluster};
use tokio::io::AsyncWriteExt;

/// Runs the real kubectl against a cluster with an isolated kubeconfig and discovery cache.
pub struct Kubectl {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn new(cluster: &TestCluster) -> Self {
        assert!(
            std::process::Command::new("kubectl")
                .arg("version")
                .arg("--client")
                .output()
                .is_ok_and(|o| o.status.success()),
            "kubectl not found: run scripts/test.sh, or eval \"$(scripts/local-cluster.sh env)\" for the node's kubectl"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, cluster.kubeconfig()).expect("write kubeconfig");
        Self { dir, kubeconfig }
    }

    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub async fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = tokio::process::Command::new("kubectl");
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn kubectl");
        if let Some(mut pipe) = child.stdin.take()
            && let Some(text) = stdin
        {
            pipe.write_all(text.as_bytes()).await.expect("write stdin");
        }
        child.wait_with_output().await.expect("kubectl output")
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None).await
    }

    /// Runs and asserts success, returning stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `apply` (or any command) with a manifest on stdin, asserting success.
    pub async fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run_with_stdin(args, Some(stdin)).await;
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Sends a raw request through the cluster's kube client; returns status, JSON body, headers.
pub async fn raw(
    cluster: &TestCluster,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value, http::HeaderMap) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(kube::client::Body::from(body))
        .expect("request");
    let resp = cluster.client().send(req).await.expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value, headers)
}

/// An HTTPS admission webhook server whose answer is computed by `decide` from the request.
pub struct Webhook {
    pub addr: SocketAddr,
    pub ca_bundle: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Webhook {
    /// `decide(request) -> response` where response is the AdmissionReview `response` object
    /// without uid (filled in here).
    pub async fn start<F>(dns_name: &str, decide: F) -> Self
    where
        F: Fn(&Value) -> Value + Send + Sync + 'static,
    {
        let cert = ServingCert::generate(&[dns_name]).expect("webhook cert");
        let config = cert.server_config(&[b"http/1.1"]).expect("webhook tls");
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind webhook");
        let addr = listener.local_addr().expect("addr");
        let decide = Arc::new(decide);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let decide = decide.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let decide = decide.clone();
                        async move {
                            let bytes = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let review: Value =
                                serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                            let request = review.get("request").cloned().unwrap_or(Value::Null);
                            let mut response = decide(&request);
                            response["uid"] = request.get("uid").cloned().unwrap_or(Value::Null);
                            let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(
                                body.to_string(),
                            ))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        use base64::Engine;
        let ca_bundle = base64::engine::general_purpose::STANDARD.encode(&cert.ca_pem);
        Self {
            addr,
            ca_bundle,
            task,
        }
    }
}

/// Base64 of a JSON patch document, as a webhook returns it.
pub fn encode_patch(patch: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(patch.to_string())
}
