//! One run of the controller: the pieces built from the flags, every long-lived task owned by
//! a [`Supervisor`], the webhook served until SIGTERM or until a task dies, then the Lease
//! released and the tasks stopped.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kube::Client;
use prometheus_client::registry::Registry;
use rustls::server::ResolvesServerCert;
use sparrow_core::names::{CONTROLLER_NAME, LEASE_NAME};
use sparrow_core::tls::service_dns_names;
use sparrow_core::webhook_pki::Lifetimes;
use sparrow_inject::{Injector, SidecarKind};
use sparrow_kube::runtime::copies::PullSecretCopier;
use sparrow_kube::runtime::leader::{LeaseConfig, run_election};
use sparrow_kube::runtime::metrics::CopyMetrics;
use sparrow_kube::runtime::webhook_certs::{CertKeeper, CertWatch};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admission::Webhook;
use crate::args::Args;
use crate::certs::{
    CertEvents, CertMetrics, keep_while_leading, serve_from_secret, verified_by_bundle,
};
use crate::client_auth::{ReloadingClientCa, server_config_requiring_client_certs};
use crate::copies::{KubeCopies, pull_secret_copier};
use crate::events::{EventMetrics, EventRecorder, KubeEventSink, client_without_retries};
use crate::http::{AppState, health_router, router};
use crate::metrics::AdmissionMetrics;
use crate::namespaces::{NamespaceCache, NamespaceLabels};
use crate::pull_secrets::PullSecretCopies;
use crate::readiness::Readiness;
use crate::server::{ServerLimits, serve, serve_health};
use crate::supervisor::Supervisor;
use crate::tls::{ReloadingCert, SecretCert, server_config};
use sparrow_kube::runtime::copies::SourceSecret;

/// How long a new caBundle is given to reach the API server before the serving certificate
/// changes CA, and a new serving certificate to reach every replica before the old CA leaves
/// the bundle (both follow watches: well under a second on a healthy cluster).
const CERT_SETTLE: Duration = Duration::from_secs(10);

/// Runs the controller until SIGTERM (exit 0) or a long-lived task's end (an error: the
/// kubelet restarts the pod).
pub async fn run(args: Args) -> anyhow::Result<()> {
    crate::logging::init_logging(args.log_format)?;
    let mut config = args.inject_config();
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
    let injector =
        Injector::new(config.clone()).context("cannot prepare the injected containers")?;
    let instance = instance_name();
    let (stopping_tx, stopping) = watch::channel(false);
    let mut tasks = Supervisor::new();

    let (namespaces, namespace_watch) = NamespaceCache::spawn(client.clone());
    tasks.spawn("namespace-watch", async move {
        if let Err(error) = namespace_watch.await {
            tracing::error!(%error, "the namespace watch failed");
        }
    });
    let namespaces: Arc<dyn NamespaceLabels> = Arc::new(namespaces);
    let mut registry = Registry::default();
    let metrics = AdmissionMetrics::register(&mut registry);
    let source = match &args.registry_secret {
        Some(name) => SourceSecret::External(name.clone()),
        None => SourceSecret::Own,
    };
    let copier = pull_secret_copier(
        client.clone(),
        &config,
        source,
        namespaces.clone(),
        CopyMetrics::register(&mut registry),
    )
    .await
    .context("cannot read or make the key pull-secret copies are proven with")?;
    let lease = args.lease_config(LEASE_NAME, &instance);
    let leading = spawn_copy_tasks(&mut tasks, &client, &copier, lease, stopping.clone());

    let ready = (namespaces.clone(), copier.clone());
    let mut readiness = Readiness::new()
        .with("namespaces", {
            let ns = ready.0;
            move || ns.is_synced()
        })
        .with("pull-secret copies", move || ready.1.is_synced())
        .with("long-lived tasks", tasks.all_running());
    let events = EventRecorder::new(EventMetrics::register(&mut registry));
    let cert_metrics = CertMetrics::register(&mut registry);
    let resolver: Arc<dyn ResolvesServerCert> = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Arc::new(ReloadingCert::load(cert, key).context("cannot load the serving certificate")?)
        }
        _ => {
            let served = Arc::new(SecretCert::new().context("cannot configure TLS")?);
            let (watch, run) = CertWatch::spawn(&client, &config.mesh_namespace);
            tasks.spawn("certificate-watches", run);
            tasks.spawn(
                "serving-certificate",
                serve_from_secret(watch.clone(), served.clone(), cert_metrics.clone()),
            );
            let keeper = CertKeeper::new(
                client.clone(),
                &config.mesh_namespace,
                service_dns_names(&config.mesh_namespace),
                Lifetimes::for_leaf(args.webhook_cert_validity, CERT_SETTLE),
            );
            let report = CertEvents::new(&config.mesh_namespace, events.clone(), cert_metrics);
            tasks.spawn(
                "webhook-certificates",
                keep_while_leading(keeper, watch.clone(), leading.clone(), report),
            );
            let check = served.clone();
            readiness = readiness.with("serving certificate verified by caBundle", move || {
                verified_by_bundle(&watch, &check)
            });
            served
        }
    };
    let tls = match &args.webhook_client_ca {
        Some(path) => {
            let client_ca = ReloadingClientCa::load(path)
                .context("cannot load the webhook client CA (--webhook-client-ca)")?;
            server_config_requiring_client_certs(resolver, Arc::new(client_ca))
                .context("cannot configure TLS")?
        }
        None => server_config(resolver).context("cannot configure TLS")?,
    };
    let event_client = client_without_retries()
        .await
        .context("cannot configure access to the Kubernetes API for Events")?;
    let sink = KubeEventSink::new(event_client, CONTROLLER_NAME, &instance);
    tasks.spawn("event-recorder", {
        let events = events.clone();
        async move { events.run(sink).await }
    });
    if let (Some(config_path), Some(bin_dir), Some(provider), Some(registry_server_arg)) = (
        &args.credential_provider_config,
        &args.credential_provider_bin_dir,
        &args.credential_provider,
        &args.registry_server,
    ) {
        let registry_server = registry_server_arg;
        let refresher = crate::credential_plugin::refresher(
            client.clone(),
            &config.mesh_namespace,
            config_path,
            bin_dir,
            provider,
            registry_server,
            vec![config.proxy_image.clone(), config.init_image.clone()],
        )?;
        let metrics = crate::credential_plugin::PluginMetrics::register(&mut registry);
        tasks.spawn(
            "credential-plugin",
            crate::credential_plugin::keep_fresh(
                refresher,
                leading.clone(),
                events.clone(),
                metrics,
                config.mesh_namespace.clone(),
            ),
        );
        // Not ready before the first credential is there to pull with.
        let source = copier.clone();
        readiness = readiness.with("registry credential obtained", move || source.has_source());
    }
    let kube_copies = Arc::new(KubeCopies::new(copier, events));
    tasks.spawn("source-presence", {
        let (copies, mesh) = (kube_copies.clone(), config.mesh_namespace.clone());
        async move { copies.report_source_presence(&mesh).await }
    });
    // A plugin renews its short-lived credential well before it lapses: only an expiry is
    // news then, not the warning window.
    let window = if args.credential_provider_config.is_some() {
        Duration::ZERO
    } else {
        sparrow_core::expiry::DEFAULT_EXPIRY_WARNING
    };
    tasks.spawn("credential-expiry", {
        let (copies, mesh) = (kube_copies.clone(), config.mesh_namespace.clone());
        async move { copies.report_credential_expiry(&mesh, window).await }
    });
    let copies: Arc<dyn PullSecretCopies> = kube_copies;
    let webhook = Webhook::new(injector, namespaces, Some(copies), metrics);
    let state = Arc::new(AppState {
        webhook,
        registry,
        readiness,
    });
    tasks.spawn("parked-copies", {
        let state = state.clone();
        async move { state.webhook.copy_parked().await }
    });
    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    if let Some(addr) = args.health_addr {
        let health = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot listen on {addr}"))?;
        let app = health_router(state.clone());
        tasks.spawn(
            "health-listener",
            serve_health(health, app, ServerLimits::health()),
        );
    }
    tracing::info!(
        addr = %args.addr,
        health_addr = ?args.health_addr,
        client_certificates_required = args.webhook_client_ca.is_some(),
        mesh_namespace = %config.mesh_namespace,
        disable_auto_inject = config.disable_auto_inject,
        enabled_namespaces = ?config.enabled_namespaces,
        %instance,
        "serving the injection webhook"
    );
    // The election may be mid-round (one renew interval at most), then releases the Lease
    // (another at most).
    let release_within = args.lease_renew_interval * 2 + Duration::from_secs(1);
    let stopped = Stopping {
        tasks,
        stopping: stopping_tx,
        release_within,
        readiness: state.readiness.clone(),
        delay: args.shutdown_delay,
    };
    serve_until_stopped(listener, tls, state, stopped).await
}

/// What stopping takes: the tasks, the signal that tells the election to stop, how long it
/// may take to release the Lease, and what a SIGTERM changes before the listener closes.
struct Stopping {
    tasks: Supervisor,
    stopping: watch::Sender<bool>,
    release_within: Duration,
    readiness: Readiness,
    delay: Duration,
}

/// Serves until SIGTERM or a task's end; either way stops the election (it releases the
/// Lease) and every task before returning.
///
/// On SIGTERM the replica first turns not ready and gives up the Lease, yet keeps accepting
/// for `delay`: until the endpoint controller and the nodes' proxies have dropped the pod, the
/// Service still sends the API server's new connections here, and a listener closed (or a
/// network namespace gone) by then would leave an admission to time out.
async fn serve_until_stopped(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    state: Arc<AppState>,
    stop: Stopping,
) -> anyhow::Result<()> {
    let Stopping {
        mut tasks,
        stopping,
        release_within,
        readiness,
        delay,
    } = stop;
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
    let stopped = async {
        let ended = tokio::select! {
            () = shutdown_signal() => None,
            ended = tasks.first_ended() => Some(ended),
        };
        match &ended {
            Some(ended) => {
                tracing::error!(task = ended.name, reason = %ended.reason, "a long-lived task ended; stopping so the kubelet restarts the controller");
            }
            None => {
                readiness.stop();
                stopping.send_replace(true);
                tracing::info!(
                    delay = %humantime::format_duration(delay),
                    "not ready and giving up the Lease; still answering while the Service stops sending connections here"
                );
                tokio::time::sleep(delay).await;
            }
        }
        let _ = ended_tx.send(ended);
    };
    serve(listener, Arc::new(tls), router(state), stopped).await;
    stopping.send_replace(true);
    let ended = ended_rx.await.ok().flatten();
    // The election releases the Lease when told to stop; give it its renew interval.
    if tokio::time::timeout(release_within, tasks.wait_for("election"))
        .await
        .is_err()
    {
        tracing::warn!("the election did not stop in time; the Lease expires on its own");
    }
    tasks.shutdown().await;
    match ended {
        Some(ended) => Err(ended.into()),
        None => Ok(()),
    }
}

/// The copier's watches, the election, and the sync that runs while this replica leads;
/// returns whether this replica leads, as the election says.
fn spawn_copy_tasks(
    tasks: &mut Supervisor,
    client: &Client,
    copier: &PullSecretCopier,
    lease: LeaseConfig,
    stopping: watch::Receiver<bool>,
) -> watch::Receiver<bool> {
    let watches = copier.clone();
    tasks.spawn(
        "pull-secret-watches",
        async move { watches.run_watches().await },
    );
    let (leading_tx, leading) = watch::channel(false);
    let mut stop = stopping;
    let told_to_stop = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tasks.spawn(
        "election",
        run_election(client.clone(), lease, leading_tx, told_to_stop),
    );
    let syncer = copier.clone();
    let leads = leading.clone();
    tasks.spawn("pull-secret-sync", async move {
        let mut leading = leading;
        // Sync while leading; when leadership is lost, wait to win it again.
        while leading.wait_for(|l| *l).await.is_ok() {
            syncer.run_sync(leading.clone()).await;
        }
    });
    leads
}

/// This replica's name, computed once: the pod name the Deployment passes in `POD_NAME`,
/// else the hostname.
fn instance_name() -> String {
    std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("{CONTROLLER_NAME}-{}", std::process::id()))
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
