//! Connecting to the cluster from the global flags, and the async runtime the verbs use.

use std::path::PathBuf;

use sparrow_kube::{Cluster, ClusterConfig, ClusterTarget};

use crate::GlobalArgs;
use crate::input::{InputError, MAX_KUBECONFIG_BYTES, check_file};
use crate::usage::UsageError;

/// A single-threaded runtime: the CLI does one thing at a time and starts fast.
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}

/// The usage checks every verb that talks to the cluster makes first: `-n` must be a
/// namespace name Kubernetes accepts.
pub fn check_global(global: &GlobalArgs) -> anyhow::Result<()> {
    sparrow_core::config::validate_namespace(&global.namespace)
        .map_err(|e| UsageError(format!("-n/--namespace: {e}")))?;
    Ok(())
}

/// The kubeconfig files that will be read, as kubectl finds them.
fn kubeconfig_files(global: &GlobalArgs) -> Vec<(PathBuf, bool)> {
    if let Some(path) = &global.kubeconfig {
        return vec![(path.clone(), true)];
    }
    if let Some(value) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        return std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| (p, false))
            .collect();
    }
    std::env::var_os("HOME")
        .map(|home| (PathBuf::from(home).join(".kube/config"), false))
        .into_iter()
        .collect()
}

/// Refuses a kubeconfig that is not a regular file or is larger than a kubeconfig can be,
/// before the loader reads it whole (and before `deploy` contacts the registry).
pub fn check_kubeconfig_files(global: &GlobalArgs) -> Result<(), InputError> {
    for (path, required) in kubeconfig_files(global) {
        let flag = if required {
            "--kubeconfig"
        } else {
            "kubeconfig"
        };
        match check_file(
            flag,
            &path,
            MAX_KUBECONFIG_BYTES,
            "a kubeconfig is a small YAML file",
        ) {
            Err(InputError::Io { source, .. })
                if !required && source.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// Loads the kubeconfig (or in-cluster config) and proves the API server answers.
pub async fn connect(global: &GlobalArgs) -> anyhow::Result<Cluster> {
    Ok(sparrow_kube::connect::reach(load(global).await?, global.timeout).await?)
}

/// [`connect`], asking an API server that refuses connections (restarting) again until
/// --timeout has passed.
pub async fn connect_retrying(global: &GlobalArgs) -> anyhow::Result<Cluster> {
    Ok(sparrow_kube::connect::reach_retrying(load(global).await?, global.timeout).await?)
}

/// Loads the kubeconfig (or in-cluster config) without contacting the API server, so a
/// broken kubeconfig or a missing `--context` can be reported before anything else is done.
pub async fn load(global: &GlobalArgs) -> anyhow::Result<ClusterConfig> {
    check_kubeconfig_files(global)?;
    let target = ClusterTarget {
        kubeconfig: global.kubeconfig.clone(),
        context: global.context.clone(),
    };
    Ok(sparrow_kube::connect::load(&target).await?)
}

/// [`connect`], shown as a step of `progress`.
pub async fn connect_reporting(
    global: &GlobalArgs,
    progress: &crate::progress::Progress,
) -> anyhow::Result<Cluster> {
    reach_reporting(load(global).await?, global, progress).await
}

/// Proves the API server of an already [`load`]ed configuration answers, shown as a step of
/// `progress`.
pub async fn reach_reporting(
    loaded: ClusterConfig,
    global: &GlobalArgs,
    progress: &crate::progress::Progress,
) -> anyhow::Result<Cluster> {
    progress.working("connecting to the cluster");
    let cluster = sparrow_kube::connect::reach(loaded, global.timeout).await?;
    progress.done(&format!(
        "connected to {} (context {})",
        cluster.server, cluster.context
    ));
    Ok(cluster)
}
