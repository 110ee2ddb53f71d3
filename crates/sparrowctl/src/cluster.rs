//! Connecting to the cluster from the global flags, and the async runtime the verbs use.

use sparrow_kube::{Cluster, ClusterTarget};

use crate::GlobalArgs;

/// A single-threaded runtime: the CLI does one thing at a time and starts fast.
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}

/// Loads the kubeconfig (or in-cluster config) and proves the API server answers.
pub async fn connect(global: &GlobalArgs) -> anyhow::Result<Cluster> {
    let target = ClusterTarget {
        kubeconfig: global.kubeconfig.clone(),
        context: global.context.clone(),
    };
    Ok(sparrow_kube::connect(&target, global.timeout).await?)
}

/// [`connect`], shown as a step of `progress`.
pub async fn connect_reporting(
    global: &GlobalArgs,
    progress: &crate::progress::Progress,
) -> anyhow::Result<Cluster> {
    progress.working("connecting to the cluster");
    let cluster = connect(global).await?;
    progress.done(&format!(
        "connected to {} (context {})",
        cluster.server, cluster.context
    ));
    Ok(cluster)
}
