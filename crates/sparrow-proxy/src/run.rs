//! A run: bind, serve, and on SIGTERM drop readiness, drain and exit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::admin::{self, AdminState};
use crate::args::Args;
use crate::destination::OwnPorts;
use crate::forward::Forwarder;
use crate::{Direction, ProxyMetrics};

async fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({what})"))
}

/// Resolves once `stop` holds true (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard wait_for returns is not Send: drop it before anything else awaits.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Serves until SIGTERM or SIGINT, then drains within the grace period.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let admin_listener = bind(args.admin_listen_addr, "admin").await?;
    let inbound = bind(args.inbound_listen_addr, "inbound").await?;
    let outbound = bind(args.outbound_listen_addr, "outbound").await?;

    let mut registry = Registry::default();
    let metrics = Arc::new(ProxyMetrics::register(&mut registry));
    let state = Arc::new(AdminState {
        ready: AtomicBool::new(false),
        registry,
    });
    let own = OwnPorts {
        inbound: args.inbound_listen_addr.port(),
        outbound: args.outbound_listen_addr.port(),
    };
    let forwarder = |direction| Forwarder {
        direction,
        own,
        connect_timeout: args.connect_timeout,
        metrics: metrics.clone(),
    };
    let (stop_traffic, traffic_stopped) = watch::channel(false);
    let (stop_admin, admin_stopped) = watch::channel(false);
    let grace = args.shutdown_grace_period;
    let admin = tokio::spawn(admin::serve(admin_listener, state.clone(), admin_stopped));
    let inbound =
        tokio::spawn(forwarder(Direction::Inbound).serve(inbound, traffic_stopped.clone(), grace));
    let outbound =
        tokio::spawn(forwarder(Direction::Outbound).serve(outbound, traffic_stopped, grace));
    state.ready.store(true, Ordering::Release);
    tracing::info!(
        inbound = %args.inbound_listen_addr,
        outbound = %args.outbound_listen_addr,
        admin = %args.admin_listen_addr,
        pod = args.pod_name.as_deref().unwrap_or("-"),
        namespace = args.pod_namespace.as_deref().unwrap_or("-"),
        mesh = args.control_plane_namespace.as_deref().unwrap_or("-"),
        "proxy ready"
    );

    let signal = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    tracing::info!(signal, grace = %humantime::format_duration(grace), "shutting down");
    state.ready.store(false, Ordering::Release);
    let _ = stop_traffic.send(true);
    let (inbound, outbound) = tokio::join!(inbound, outbound);
    inbound.context("the inbound listener failed")?;
    outbound.context("the outbound listener failed")?;
    let _ = stop_admin.send(true);
    admin.await.context("the admin server failed")?;
    tracing::info!("drained");
    Ok(())
}
