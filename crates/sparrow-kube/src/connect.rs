//! Finding and reaching the cluster, the way kubectl does: `--kubeconfig`, then `$KUBECONFIG`,
//! then `~/.kube/config`, then the in-cluster service account; `--context` picks a context.

use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::{ClusterError, describe};

mod exec;

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
    reach_with(loaded, timeout, false).await
}

/// [`reach`], but an API server that refuses or drops connections (restarting) is asked
/// again until `timeout` has passed.
pub async fn reach_retrying(
    loaded: ClusterConfig,
    timeout: Duration,
) -> Result<Cluster, ClusterError> {
    reach_with(loaded, timeout, true).await
}

async fn reach_with(
    loaded: ClusterConfig,
    timeout: Duration,
    retry: bool,
) -> Result<Cluster, ClusterError> {
    let ClusterConfig {
        mut config,
        context,
        requested_context,
    } = loaded;
    let deadline = tokio::time::Instant::now() + timeout;
    let bad = |detail: String| ClusterError::BadConfig {
        context: requested_context.clone(),
        detail,
    };
    // --timeout governs connecting too: kube's own connect timeout (30s) must not cut it
    // short, so it is set past ours, which then fires first with a message that names it.
    config.connect_timeout = Some(timeout + Duration::from_secs(1));
    let server = shown_server(&config.cluster_url);
    check_identity_files(&config.auth_info).map_err(&bad)?;
    if let Some(plugin) = config.auth_info.exec.take() {
        // The credential is fetched once, here, within --timeout; a CLI command is short
        // enough for any token's lifetime.
        match exec::run(&plugin, timeout).await.map_err(&bad)? {
            exec::ExecCredential::Token(token) => config.auth_info.token = Some(token.into()),
            exec::ExecCredential::Certificate { cert, key } => {
                config.auth_info.client_certificate_data = Some(cert);
                config.auth_info.client_key_data = Some(key.into());
            }
        }
    }
    let client = kube::Client::try_from(config).map_err(|e| bad(error_chain(&e)))?;
    let unreachable = |detail: String| ClusterError::Unreachable {
        server: server.clone(),
        context: context.clone(),
        detail,
    };
    loop {
        match tokio::time::timeout_at(deadline, client.apiserver_version()).await {
            Ok(Ok(_)) => break,
            Ok(Err(error)) if retry && is_transient(&error) => {
                let pause = Duration::from_millis(500);
                if tokio::time::Instant::now() + pause >= deadline {
                    return Err(unreachable(format!(
                        "{} (asked again for {})",
                        describe(&error),
                        humanize(timeout)
                    )));
                }
                tokio::time::sleep(pause).await;
            }
            Ok(Err(error)) => return Err(unreachable(describe(&error))),
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {} (--timeout): check that the API server is running and reachable from this machine (address, VPN, firewall), or raise --timeout",
                    humanize(timeout)
                )));
            }
        }
    }
    Ok(Cluster {
        client,
        server,
        context,
    })
}

/// True for an error worth asking again: the connection was refused, reset or closed (an
/// API server restarting), or the server answered 429 or 5xx.
pub fn is_transient(error: &kube::Error) -> bool {
    use std::io::ErrorKind as K;
    match error {
        kube::Error::Api(status) => return status.code == 429 || status.code >= 500,
        kube::Error::HyperError(hyper)
            if hyper.is_incomplete_message() || hyper.is_closed() || hyper.is_canceled() =>
        {
            return true;
        }
        _ => {}
    }
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(cause) = source {
        // An io::Error may wrap another (`Other` around the TLS handshake's `UnexpectedEof`),
        // which its own source() skips: each is looked into.
        let mut io = cause.downcast_ref::<std::io::Error>();
        while let Some(inner) = io {
            if matches!(
                inner.kind(),
                K::ConnectionRefused
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::BrokenPipe
                    | K::UnexpectedEof
            ) {
                return true;
            }
            io = inner
                .get_ref()
                .and_then(|e| e.downcast_ref::<std::io::Error>());
        }
        source = cause.source();
    }
    false
}

/// The API server URL for messages: user information (`https://user:password@host`) is
/// masked, as kubectl never shows it either.
fn shown_server(url: &impl std::fmt::Display) -> String {
    let text = url.to_string();
    let (scheme, rest) = text.split_once("://").unwrap_or(("", &text));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[end..]),
        None => text,
    }
}

/// The client certificate and key files the kubeconfig names must be readable; kube-rs
/// reports a missing one without its name.
fn check_identity_files(user: &kube::config::AuthInfo) -> Result<(), String> {
    let files = [
        (
            "client-certificate",
            user.client_certificate_data.is_none(),
            &user.client_certificate,
        ),
        (
            "client-key",
            user.client_key_data.is_none(),
            &user.client_key,
        ),
    ];
    for (field, from_file, path) in files {
        if let (true, Some(path)) = (from_file, path)
            && let Err(error) = std::fs::File::open(path)
        {
            return Err(format!(
                "its {field} file {path}: cannot read the file: {error}"
            ));
        }
    }
    Ok(())
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
