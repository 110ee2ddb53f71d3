//! Flags (those `sparrow_core::manifests::controller_args` renders) and the wiring of a run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use kube::Client;
use prometheus_client::registry::Registry;
use sparrow_core::PullPolicy;
use sparrow_core::names::DEFAULT_NAMESPACE;
use sparrow_inject::{InjectConfig, Injector, SidecarKind};
use tokio::net::TcpListener;

use std::time::Duration;

use sparrow_core::names::{CONTROLLER_NAME, LEASE_NAME};
use sparrow_kube::copies::{CopyConfig, PullSecretCopier};
use sparrow_kube::leader::{LeaseConfig, run_election};
use sparrow_kube::metrics::CopyMetrics;

use crate::admission::Webhook;
use crate::copies::KubeCopies;
use crate::http::{AppState, router};
use crate::metrics::AdmissionMetrics;
use crate::namespaces::{NamespaceCache, NamespaceLabels};
use crate::pull_secrets::PullSecretCopies;
use crate::readiness::Readiness;
use crate::server::serve;
use crate::tls::{ReloadingCert, server_config};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// The Sparrow Mesh controller: injects the sidecar into pods of meshed namespaces.
#[derive(Debug, Clone, Parser)]
#[command(name = "sparrow-controller", version)]
pub struct Args {
    /// Address to serve HTTPS on.
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub addr: SocketAddr,
    /// PEM certificate (chain) to serve; re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: PathBuf,
    /// PEM private key of the certificate; re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub tls_key: PathBuf,
    /// The control plane's namespace (never injected).
    #[arg(long, value_name = "NS", default_value = DEFAULT_NAMESPACE)]
    pub mesh_namespace: String,
    /// Image of the injected sidecar proxy [default: the release's image on ghcr.io/sparrow-mesh].
    #[arg(long, value_name = "IMG")]
    pub sidecar_image: Option<String>,
    /// Image of the injected init container [default: the release's image on ghcr.io/sparrow-mesh].
    #[arg(long, value_name = "IMG")]
    pub init_image: Option<String>,
    /// `imagePullPolicy` of the injected containers (Always, IfNotPresent, Never).
    #[arg(long, value_name = "POLICY")]
    pub pull_policy: Option<PullPolicy>,
    /// Namespaces injected even with --disable-auto-inject, whatever their label.
    #[arg(long, value_name = "NS,...", value_delimiter = ',')]
    pub enabled_namespaces: Vec<String>,
    /// Inject only namespaces or pods labelled `injector.sparrow-mesh.io/auto-inject=enabled`
    /// and the --enabled-namespaces.
    #[arg(long)]
    pub disable_auto_inject: bool,
    /// Log format.
    #[arg(long, value_enum, default_value = "plain")]
    pub log_format: LogFormat,
}

impl Args {
    /// Parses the command line and runs the controller until SIGTERM or Ctrl-C.
    pub fn parse_and_run() -> anyhow::Result<()> {
        let args = Self::parse();
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("could not start the async runtime")?
            .block_on(args.run())
    }

    /// The injection settings these flags describe.
    pub fn inject_config(&self) -> InjectConfig {
        let defaults = InjectConfig::default();
        InjectConfig {
            mesh_namespace: self.mesh_namespace.clone(),
            proxy_image: self.sidecar_image.clone().unwrap_or(defaults.proxy_image),
            init_image: self.init_image.clone().unwrap_or(defaults.init_image),
            pull_policy: self.pull_policy.or(defaults.pull_policy),
            disable_auto_inject: self.disable_auto_inject,
            enabled_namespaces: self
                .enabled_namespaces
                .iter()
                .filter(|n| !n.is_empty())
                .cloned()
                .collect(),
            sidecar: defaults.sidecar,
        }
    }

    /// Runs the controller: certificate, API client, namespace cache, HTTPS server.
    pub async fn run(self) -> anyhow::Result<()> {
        crate::logging::init_logging(self.log_format)?;
        let mut config = self.inject_config();
        let cert = ReloadingCert::load(&self.tls_cert, &self.tls_key)
            .context("cannot load the serving certificate")?;
        let tls = server_config(Arc::new(cert)).context("cannot configure TLS")?;
        let client = Client::try_default()
            .await
            .context("cannot configure access to the Kubernetes API (kubeconfig or in-cluster)")?;
        // Native sidecars (restartable init containers) need 1.29; older servers get a classic one.
        let version = client
            .apiserver_version()
            .await
            .context("cannot read the API server's version")?;
        config.sidecar = SidecarKind::for_server_version(&version.major, &version.minor);
        tracing::info!(server = %version.git_version, sidecar = ?config.sidecar, "proxy injection");
        let copy_client = client.clone();
        let (namespaces, _watch) = NamespaceCache::spawn(client);
        let namespaces: Arc<dyn NamespaceLabels> = Arc::new(namespaces);

        let mut registry = Registry::default();
        let metrics = AdmissionMetrics::register(&mut registry);
        let copies = start_pull_secret_copies(&copy_client, &config.mesh_namespace, &mut registry);
        let ready = namespaces.clone();
        let copies_ready = copies.clone();
        let readiness = Readiness::new()
            .with("namespaces", move || ready.is_synced())
            .with("pull-secret copies", move || copies_ready.is_synced());
        let injector =
            Injector::new(config.clone()).context("cannot prepare the injected containers")?;
        let pull_secrets: Arc<dyn PullSecretCopies> =
            Arc::new(KubeCopies::new(copies, copy_client, &instance_name()));
        let webhook = Webhook::new(injector, namespaces, Some(pull_secrets), metrics);
        let state = Arc::new(AppState {
            webhook,
            registry,
            readiness,
        });

        let listener = TcpListener::bind(self.addr)
            .await
            .with_context(|| format!("cannot listen on {}", self.addr))?;
        tracing::info!(
            addr = %self.addr,
            mesh_namespace = %config.mesh_namespace,
            disable_auto_inject = config.disable_auto_inject,
            enabled_namespaces = ?config.enabled_namespaces,
            "serving the injection webhook"
        );
        serve(listener, Arc::new(tls), router(state), shutdown_signal()).await;
        Ok(())
    }
}

/// This replica's name: the pod name the Deployment passes in `POD_NAME`, else the hostname.
fn instance_name() -> String {
    std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("{CONTROLLER_NAME}-{}", std::process::id()))
}

/// Starts the copier's watches, and the leader election whose winner keeps every copy current.
fn start_pull_secret_copies(
    client: &Client,
    mesh_namespace: &str,
    registry: &mut Registry,
) -> PullSecretCopier {
    let metrics = CopyMetrics::default();
    metrics.register(registry);
    let copier = PullSecretCopier::new(client.clone(), CopyConfig::new(mesh_namespace), metrics);
    let watches = copier.clone();
    tokio::spawn(async move { watches.run_watches().await });

    let (leading_tx, leading) = tokio::sync::watch::channel(false);
    let lease = LeaseConfig {
        namespace: mesh_namespace.to_owned(),
        name: LEASE_NAME.to_owned(),
        identity: instance_name(),
        lease_duration: Duration::from_secs(15),
        renew_interval: Duration::from_secs(5),
    };
    tokio::spawn(run_election(client.clone(), lease, leading_tx));
    let syncer = copier.clone();
    tokio::spawn(async move {
        let mut leading = leading;
        loop {
            // Sync while leading; when leadership is lost, wait to win it again.
            if leading.wait_for(|l| *l).await.is_err() {
                return;
            }
            syncer.run_sync(leading.clone()).await;
        }
    });
    copier
}

/// SIGTERM (the kubelet stopping the pod) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use sparrow_core::manifests::controller_args;
    use sparrow_core::{InjectionScope, MeshConfig};

    use super::*;

    fn parse(mesh: &MeshConfig) -> Args {
        let argv = std::iter::once("sparrow-controller".to_owned()).chain(controller_args(mesh));
        match Args::try_parse_from(argv) {
            Ok(args) => args,
            Err(e) => panic!("the rendered Deployment's flags are refused: {e}"),
        }
    }

    #[test]
    fn accepts_the_flags_the_deployment_renders() {
        let mut mesh = MeshConfig {
            namespace: "mesh".to_owned(),
            ..MeshConfig::default()
        };
        let args = parse(&mesh);
        assert_eq!(args.addr.to_string(), "0.0.0.0:8443");
        assert_eq!(args.log_format, LogFormat::Json);
        assert_eq!(args.inject_config(), InjectConfig::from_mesh(&mesh));

        mesh.injection = InjectionScope {
            disable_auto_inject: true,
            enabled_namespaces: vec!["a".to_owned(), "b".to_owned()],
        };
        let args = parse(&mesh);
        assert!(args.disable_auto_inject);
        assert_eq!(args.inject_config(), InjectConfig::from_mesh(&mesh));
        assert_eq!(args.inject_config().enabled_namespaces, ["a", "b"]);
    }

    #[test]
    fn certificate_flags_are_required() {
        assert!(Args::try_parse_from(["sparrow-controller"]).is_err());
        let args = Args::try_parse_from([
            "sparrow-controller",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
            "--log-format",
            "plain",
        ])
        .expect("minimal flags");
        assert_eq!(args.inject_config(), InjectConfig::default());
    }
}
