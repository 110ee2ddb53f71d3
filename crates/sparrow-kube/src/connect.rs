//! Finding and reaching the cluster, the way kubectl does: `--kubeconfig`, then `$KUBECONFIG`,
//! then `~/.kube/config`, then the in-cluster service account; `--context` picks a context.

use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::{ClusterError, describe};

/// Which cluster to talk to.
#[derive(Debug, Clone, Default)]
pub struct ClusterTarget {
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`.
    pub context: Option<String>,
}

/// A reachable cluster.
#[derive(Clone)]
pub struct Cluster {
    /// The API client.
    pub client: kube::Client,
    /// The API server URL, for messages.
    pub server: String,
    /// The context in use (or `in-cluster`), for messages.
    pub context: String,
}

/// A loaded configuration, not yet used: what [`load`] found and [`reach`] connects with.
pub struct ClusterConfig {
    config: kube::Config,
    /// The context in use (or `in-cluster`), for messages.
    context: String,
    /// `--context` as given, for the bad-config message.
    requested_context: Option<String>,
}

/// Loads the configuration without contacting the API server: a kubeconfig that does not
/// parse, or a `--context` it lacks, is found before anything else is done.
pub async fn load(target: &ClusterTarget) -> Result<ClusterConfig, ClusterError> {
    let (config, context) = load_config(target).await?;
    Ok(ClusterConfig {
        config,
        context,
        requested_context: target.context.clone(),
    })
}

/// Proves the API server of a loaded configuration answers within `timeout`.
pub async fn reach(loaded: ClusterConfig, timeout: Duration) -> Result<Cluster, ClusterError> {
    let ClusterConfig {
        mut config,
        context,
        requested_context,
    } = loaded;
    // --timeout governs connecting too: kube's own connect timeout (30s) must not cut it
    // short, so it is set past ours, which then fires first with a message that names it.
    config.connect_timeout = Some(timeout + Duration::from_secs(1));
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(|e| ClusterError::BadConfig {
        context: requested_context,
        detail: describe(&e),
    })?;
    let unreachable = |detail: String| ClusterError::Unreachable {
        server: server.clone(),
        context: context.clone(),
        detail,
    };
    match tokio::time::timeout(timeout, client.apiserver_version()).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => return Err(unreachable(describe(&error))),
        Err(_) => {
            return Err(unreachable(format!(
                "no answer within {} (--timeout): check that the API server is running and reachable from this machine (address, VPN, firewall), or raise --timeout",
                humanize(timeout)
            )));
        }
    }
    Ok(Cluster {
        client,
        server,
        context,
    })
}

async fn load_config(target: &ClusterTarget) -> Result<(kube::Config, String), ClusterError> {
    let options = KubeConfigOptions {
        context: target.context.clone(),
        ..KubeConfigOptions::default()
    };
    let bad = |detail: String| ClusterError::BadConfig {
        context: target.context.clone(),
        detail,
    };
    let kubeconfig = match &target.kubeconfig {
        Some(path) => Some(
            Kubeconfig::read_from(path)
                .map_err(|e| bad(format!("{}: {}", path.display(), kubeconfig_error(&e))))?,
        ),
        None if std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty())
            || default_kubeconfig_exists() =>
        {
            Some(Kubeconfig::read().map_err(|e| bad(kubeconfig_error(&e)))?)
        }
        None => None,
    };
    match kubeconfig {
        Some(kubeconfig) => {
            let context = target
                .context
                .clone()
                .or_else(|| kubeconfig.current_context.clone())
                .unwrap_or_else(|| "<none>".to_owned());
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| bad(error_chain(&e)))?;
            Ok((config, context))
        }
        None => {
            if let Some(context) = &target.context {
                return Err(ClusterError::NoConfig {
                    detail: format!("--context {context} given but no kubeconfig exists"),
                });
            }
            let config = kube::Config::incluster().map_err(|e| ClusterError::NoConfig {
                detail: format!("no kubeconfig, and not in a cluster: {}", error_chain(&e)),
            })?;
            Ok((config, "in-cluster".to_owned()))
        }
    }
}

/// A duration as the user wrote it: `2m`, `30s`, `1m 30s`.
pub fn humanize(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match (seconds / 60, seconds % 60) {
        (0, 0) => format!("{}ms", duration.as_millis()),
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

/// A kubeconfig loading error in one line. A YAML error shows its position only: the
/// parser's own text quotes source lines, and a kubeconfig holds tokens and keys.
fn kubeconfig_error(error: &kube::config::KubeconfigError) -> String {
    use kube::config::KubeconfigError as E;
    match error {
        E::Parse(yaml) => match yaml.location() {
            Some(at) => format!(
                "not a valid kubeconfig: YAML error at line {}, column {}",
                at.line(),
                at.column()
            ),
            None => "not a valid kubeconfig: YAML error".to_owned(),
        },
        E::ReadConfig(io, path) => format!("cannot read {}: {io}", path.display()),
        other => error_chain(other),
    }
}

fn default_kubeconfig_exists() -> bool {
    std::env::var_os("HOME").is_some_and(|home| PathBuf::from(home).join(".kube/config").is_file())
}

/// An error and its causes on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}
