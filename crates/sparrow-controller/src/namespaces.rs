//! Namespace labels for the injection decision, from a watch-fed cache: the admission path
//! makes no API call.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::task::JoinHandle;

/// The labels of namespaces, as known locally.
pub trait NamespaceLabels: Send + Sync {
    /// The labels of `namespace`; `None` when it is not known (yet).
    fn labels(&self, namespace: &str) -> Option<BTreeMap<String, String>>;
    /// The initial list has been received (readiness).
    fn is_synced(&self) -> bool;
}

/// A fixed map of namespace name to labels (tests, and tools without a cluster).
#[derive(Debug, Clone, Default)]
pub struct StaticNamespaceLabels(pub BTreeMap<String, BTreeMap<String, String>>);

impl StaticNamespaceLabels {
    /// Namespaces labelled as Kubernetes labels them (`kubernetes.io/metadata.name`), each with
    /// an optional `injector.sparrow-mesh.io/auto-inject` switch.
    pub fn with_switches(namespaces: &[(&str, Option<&str>)]) -> Self {
        use sparrow_core::names::{AUTO_INJECT_LABEL, NAMESPACE_NAME_LABEL};
        Self(
            namespaces
                .iter()
                .map(|(name, switch)| {
                    let mut labels =
                        BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), (*name).to_owned())]);
                    if let Some(switch) = switch {
                        labels.insert(AUTO_INJECT_LABEL.to_owned(), (*switch).to_owned());
                    }
                    ((*name).to_owned(), labels)
                })
                .collect(),
        )
    }
}

impl NamespaceLabels for StaticNamespaceLabels {
    fn labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.0.get(namespace).cloned()
    }
    fn is_synced(&self) -> bool {
        true
    }
}

/// Namespaces' metadata mirrored by a watch (metadata only: the labels are all we need).
#[derive(Clone)]
pub struct NamespaceCache {
    store: Store<PartialObjectMeta<Namespace>>,
    synced: Arc<AtomicBool>,
}

impl NamespaceCache {
    /// Starts the watch on `client`; the returned task runs it (with backoff on errors) for
    /// as long as the process lives.
    pub fn spawn(client: Client) -> (Self, JoinHandle<()>) {
        let (store, writer) = reflector::store();
        let synced = Arc::new(AtomicBool::new(false));
        // Metadata only: labels are all the decision needs, and a lot less to keep.
        let api: Api<PartialObjectMeta<Namespace>> = Api::all(client);
        let stream =
            reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
                .backoff(sparrow_kube::runtime::watch_backoff())
                .touched_objects();
        let ready_store = store.clone();
        let ready_flag = synced.clone();
        let task = tokio::spawn(async move {
            let mark_ready = async move {
                if ready_store.wait_until_ready().await.is_ok() {
                    ready_flag.store(true, Ordering::Release);
                    tracing::info!("namespace cache synced");
                }
            };
            let drive = stream.for_each(|event| async move {
                if let Err(error) = event {
                    tracing::warn!(%error, "namespace watch failed; retrying");
                }
            });
            tokio::join!(mark_ready, drive);
        });
        (Self { store, synced }, task)
    }
}

impl NamespaceLabels for NamespaceCache {
    fn labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.store
            .get(&ObjectRef::new(namespace))
            .map(|ns| ns.metadata.labels.clone().unwrap_or_default())
    }
    fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }
}

/// Whether the namespace cache says `namespace` is meshed now under `config`: a pod with no
/// opinion of its own would be injected there. `None`: the cache does not know it. Nothing a
/// review carries counts (not a pod's labels, not its annotations).
pub fn meshed_now(
    namespaces: &dyn NamespaceLabels,
    config: &sparrow_inject::InjectConfig,
    namespace: &str,
) -> Option<bool> {
    use sparrow_core::names::NAMESPACE_NAME_LABEL;
    let mut labels = namespaces.labels(namespace)?;
    labels
        .entry(NAMESPACE_NAME_LABEL.to_owned())
        .or_insert_with(|| namespace.to_owned());
    let neutral = k8s_openapi::api::core::v1::Pod::default();
    Some(sparrow_inject::decide(&neutral, &labels, config) == sparrow_inject::Decision::Inject)
}

/// [`meshed_now`] for the copier: the leader writes copies only where the webhook injects.
pub struct MeshedNow {
    /// The namespace cache.
    pub namespaces: Arc<dyn NamespaceLabels>,
    /// The injection settings.
    pub config: sparrow_inject::InjectConfig,
}

impl sparrow_kube::runtime::copies::MeshedNamespaces for MeshedNow {
    fn meshed_now(&self, namespace: &str) -> Option<bool> {
        meshed_now(&*self.namespaces, &self.config, namespace)
    }
}
