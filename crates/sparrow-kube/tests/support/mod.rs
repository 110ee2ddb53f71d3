//! Shared by the copier's testkube tests: a copier of the mesh in [`MESH`], its key made as
//! the controller makes it, its watches running and synced.

use std::sync::Arc;
use std::time::Duration;

use sparrow_kube::runtime::copies::{CopyConfig, MeshedNamespaces, PullSecretCopier};
use sparrow_kube::runtime::copy_key::ensure_copy_key;
use sparrow_kube::runtime::metrics::CopyMetrics;

/// The mesh namespace of these tests.
pub const MESH: &str = "sparrow-mesh";

/// Every namespace meshed: these tests are about the copies, not about which namespaces the
/// webhook selects (the controller's tests cover that with its namespace cache).
struct EveryNamespace;

impl MeshedNamespaces for EveryNamespace {
    fn meshed_now(&self, _namespace: &str) -> Option<bool> {
        Some(true)
    }
}

/// A copier whose API calls have `api_timeout`, watching and synced.
pub async fn watching_copier(client: kube::Client, api_timeout: Duration) -> PullSecretCopier {
    let mut config = CopyConfig::new(MESH);
    config.api_timeout = api_timeout;
    let key = ensure_copy_key(&client, MESH, Duration::from_secs(5))
        .await
        .expect("copy key");
    let copier = PullSecretCopier::new(
        client,
        config,
        key,
        Arc::new(EveryNamespace),
        CopyMetrics::default(),
    );
    let watches = copier.clone();
    tokio::spawn(async move { watches.run_watches().await });
    tokio::time::timeout(Duration::from_secs(10), copier.synced())
        .await
        .expect("watches synced");
    copier
}
