//! `testkube`: an in-process Kubernetes API server test double, kept for what the real node
//! cannot be made to do on purpose: injected errors, latency, cut watches, restarts, request
//! counters. It serves what the product's tests send through kubectl and kube-rs (see the
//! README for each part and why it stays). Test support only: never a product backend.
//!
//! ```no_run
//! # async fn demo() -> Result<(), testkube::Error> {
//! let cluster = testkube::TestCluster::start().await?;
//! let client = cluster.client();
//! std::fs::write("/tmp/kubeconfig", cluster.kubeconfig()).ok();
//! # drop(client); Ok(()) }
//! ```

mod admission;
mod discovery;
mod error;
mod faults;
mod handlers;
mod openapi;
mod patch;
mod protobuf;
mod resources;
mod selectors;
mod server;
mod store;
mod tls;
mod util;
mod validation;
mod watch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio_rustls::TlsAcceptor;

pub use error::{ApiError, Error};
pub use protobuf::encode_envelope as protobuf_envelope;
pub use tls::ServingCert;

use handlers::Shared;
use resources::{NAMESPACES, RESOURCES};
use store::Store;

/// Configures a [`TestCluster`] before starting it.
#[derive(Debug, Clone)]
pub struct Builder {
    addr: SocketAddr,
    plain_http: bool,
    watch_history: usize,
    bookmark_interval: Duration,
    ready_deployments: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            plain_http: false,
            watch_history: 20_000,
            bookmark_interval: Duration::from_secs(5),
            ready_deployments: false,
        }
    }
}

impl Builder {
    /// Listening address (default `127.0.0.1:0`, a free port).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Serve plain HTTP instead of HTTPS.
    pub fn plain_http(mut self) -> Self {
        self.plain_http = true;
        self
    }

    /// How many change events are kept for watches resuming from a resourceVersion; older
    /// versions get 410 Expired.
    pub fn watch_history(mut self, events: usize) -> Self {
        self.watch_history = events;
        self
    }

    /// Interval of BOOKMARK events on watches that allow them.
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// Plays the deployment controller: after every Deployment write, its status reports all
    /// replicas updated, ready and available for the current generation (a second write, as
    /// in a real cluster). Off by default, so rollout waits can also be tested to time out.
    pub fn ready_deployments(mut self) -> Self {
        self.ready_deployments = true;
        self
    }

    /// Binds, creates the `default`, `kube-system` and `kube-public` namespaces and serves.
    pub async fn start(self) -> Result<TestCluster, Error> {
        let listener = server::bind(self.addr).await?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: self.addr,
            source,
        })?;
        let cert = if self.plain_http {
            None
        } else {
            let ip = addr.ip().to_string();
            Some(ServingCert::generate(&["localhost", &ip])?)
        };
        let acceptor = match &cert {
            Some(c) => Some(TlsAcceptor::from(c.server_config(&[b"h2", b"http/1.1"])?)),
            None => None,
        };
        let shared = Arc::new(Shared {
            ready_deployments: self.ready_deployments,
            store: Store::new(self.watch_history),
            faults: faults::Faults::default(),
            requests: Mutex::new(BTreeMap::new()),
            endpoints: RwLock::new(Default::default()),
            server_address: addr.to_string(),
            bookmark_interval: self.bookmark_interval,
            applied: Mutex::new(Default::default()),
        });
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let mut obj =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            validation::normalize(&RESOURCES[NAMESPACES], &mut obj);
            if let Err(e) = shared.store.create(NAMESPACES, obj, false) {
                tracing::warn!(namespace = ns, error = %e.message, "creating initial namespace");
            }
        }
        let scheme = if cert.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let mut config = kube::Config::new(url.parse().map_err(Error::Url)?);
        config.root_cert = cert.as_ref().map(|c| vec![c.ca_der.clone()]);
        config.default_namespace = "default".into();
        let client = kube::Client::try_from(config).map_err(Error::Client)?;
        let serving = server::serve(listener, shared.clone(), acceptor.clone());
        tracing::info!(%url, "testkube listening");
        Ok(TestCluster {
            shared,
            addr,
            url,
            cert,
            acceptor,
            client,
            serving: tokio::sync::Mutex::new(Some(serving)),
        })
    }
}

/// A running in-process API server.
pub struct TestCluster {
    shared: Arc<Shared>,
    addr: SocketAddr,
    url: String,
    cert: Option<ServingCert>,
    acceptor: Option<TlsAcceptor>,
    client: kube::Client,
    serving: tokio::sync::Mutex<Option<server::Serving>>,
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCluster")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl TestCluster {
    /// A builder for non-default settings.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Starts an HTTPS server on a free 127.0.0.1 port.
    pub async fn start() -> Result<Self, Error> {
        Builder::default().start().await
    }

    /// `https://127.0.0.1:PORT` (or `http://` when plain).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Listening socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA certificate (PEM) that signed the serving certificate; `None` for plain HTTP.
    pub fn ca_pem(&self) -> Option<&str> {
        self.cert.as_ref().map(|c| c.ca_pem.as_str())
    }

    /// A kube client for this cluster (cheap to clone; default namespace `default`).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// Kubeconfig YAML (context `testkube`, namespace `default`) usable by kubectl and kube-rs.
    pub fn kubeconfig(&self) -> String {
        let ca = self
            .cert
            .as_ref()
            .map(|c| {
                format!(
                    "\n    certificate-authority-data: {}",
                    STANDARD.encode(&c.ca_pem)
                )
            })
            .unwrap_or_default();
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: testkube
  cluster:
    server: {url}{ca}
users:
- name: testkube-admin
  user:
    token: testkube-token
contexts:
- name: testkube
  context:
    cluster: testkube
    user: testkube-admin
    namespace: default
current-context: testkube
preferences: {{}}
",
            url = self.url
        )
    }

    /// Request counts by (verb, plural resource), e.g. `("create", "secrets")`.
    pub fn requests(&self) -> BTreeMap<(String, String), u64> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Count of one (verb, plural resource) pair.
    pub fn request_count(&self, verb: &str, resource: &str) -> u64 {
        self.requests()
            .get(&(verb.to_string(), resource.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Total resource requests (discovery and OpenAPI excluded).
    pub fn total_requests(&self) -> u64 {
        self.requests().values().sum()
    }

    /// Forgets every request count.
    pub fn reset_requests(&self) {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Routes webhook calls for Service `namespace/name` to `addr`.
    pub fn set_service_endpoint(&self, namespace: &str, name: &str, addr: SocketAddr) {
        self.shared
            .endpoints
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert((namespace.to_string(), name.to_string()), addr);
    }

    /// Fails the next `times` requests matching `verb` and plural `resource` (`"*"` for any)
    /// with `status`; 429 answers carry `Retry-After: 1`.
    pub fn fail_next(&self, verb: &str, resource: &str, times: usize, status: u16) {
        self.shared.faults.fail_next(verb, resource, times, status);
    }

    /// Delays every resource request by `latency` (zero to turn off).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.faults.set_latency(latency);
    }

    /// Removes pending injected failures and latency.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Ends every open watch stream (clients see the stream close and must re-watch).
    pub fn cut_watches(&self) {
        self.shared.store.cut_watches();
    }

    /// Number of open watch streams.
    pub fn watch_count(&self) -> usize {
        self.shared.store.watcher_count(None)
    }

    /// Resolves once a client has an open watch on the plural `resource` (`"secrets"`): after
    /// it, every change is delivered to that watch. Wrap it in a timeout.
    pub async fn wait_for_watch(&self, resource: &str) {
        let indexes: Vec<usize> = RESOURCES
            .iter()
            .enumerate()
            .filter(|(_, r)| r.plural == resource)
            .map(|(i, _)| i)
            .collect();
        self.shared.store.wait_for_watcher(&indexes).await;
    }

    /// Stops serving: closes the listener and every connection. The store is kept.
    pub async fn stop(&self) {
        if let Some(serving) = self.serving.lock().await.take() {
            serving.stop().await;
        }
    }

    /// Serves again on the same address after [`TestCluster::stop`].
    pub async fn resume(&self) -> Result<(), Error> {
        let mut serving = self.serving.lock().await;
        if serving.is_none() {
            let listener = server::bind(self.addr).await?;
            *serving = Some(server::serve(
                listener,
                self.shared.clone(),
                self.acceptor.clone(),
            ));
        }
        Ok(())
    }

    /// [`TestCluster::stop`] then [`TestCluster::resume`].
    pub async fn restart(&self) -> Result<(), Error> {
        self.stop().await;
        self.resume().await
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.resource_version()
    }

    /// Reads an object straight from the store (no request counted), by plural resource name
    /// (`"secrets"`, `"deployments"`), namespace (`""` for cluster-scoped) and name.
    pub fn object(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let idx = resources::find_plural(resource)?;
        self.shared
            .store
            .get(idx, namespace, name)
            .map(|o| (*o).clone())
    }

    /// Every object of a plural resource, in one namespace or all, straight from the store.
    pub fn objects(&self, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(idx) = resources::find_plural(resource) else {
            return Vec::new();
        };
        self.shared
            .store
            .list(idx, namespace)
            .0
            .iter()
            .map(|o| (**o).clone())
            .collect()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Some(serving) = self.serving.get_mut().as_ref() {
            serving.abort();
        }
    }
}
