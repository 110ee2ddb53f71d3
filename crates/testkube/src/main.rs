//! `testkube serve`: run the test API server until SIGTERM/SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

/// In-process Kubernetes API server test double (test support, never a product backend).
#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API until SIGTERM or SIGINT.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: SocketAddr,
        /// Write a kubeconfig for the server to this path.
        #[arg(long)]
        kubeconfig_out: Option<PathBuf>,
        /// Route webhook calls for a Service: NS/NAME=HOST:PORT (repeatable).
        #[arg(long = "service-endpoint", value_name = "NS/NAME=HOST:PORT")]
        service_endpoints: Vec<String>,
        /// Serve plain HTTP instead of HTTPS.
        #[arg(long)]
        plain_http: bool,
    },
}

fn parse_endpoint(spec: &str) -> anyhow::Result<(String, String, SocketAddr)> {
    let Some((svc, addr)) = spec.split_once('=') else {
        bail!("--service-endpoint {spec:?} must look like NS/NAME=HOST:PORT");
    };
    let Some((ns, name)) = svc.split_once('/') else {
        bail!("--service-endpoint {spec:?} must look like NS/NAME=HOST:PORT");
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .with_context(|| format!("resolving {addr:?} in --service-endpoint"))?
        .next()
        .with_context(|| format!("{addr:?} resolves to no address"))?;
    Ok((ns.to_string(), name.to_string(), addr))
}

async fn serve(
    addr: SocketAddr,
    kubeconfig_out: Option<PathBuf>,
    service_endpoints: Vec<String>,
    plain_http: bool,
) -> anyhow::Result<()> {
    let endpoints = service_endpoints
        .iter()
        .map(|s| parse_endpoint(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut builder = testkube::TestCluster::builder().addr(addr);
    if plain_http {
        builder = builder.plain_http();
    }
    let cluster = builder.start().await.context("starting testkube")?;
    for (ns, name, addr) in endpoints {
        cluster.set_service_endpoint(&ns, &name, addr);
    }
    if let Some(path) = kubeconfig_out {
        std::fs::write(&path, cluster.kubeconfig())
            .with_context(|| format!("writing kubeconfig to {}", path.display()))?;
    }
    // Install the handlers before announcing readiness: a caller may signal right after the line.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing SIGTERM handler")?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("installing SIGINT handler")?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {}", cluster.url()).context("writing to stdout")?;
    stdout.flush().context("flushing stdout")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    cluster.stop().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Args::parse().command {
        Command::Serve {
            addr,
            kubeconfig_out,
            service_endpoints,
            plain_http,
        } => serve(addr, kubeconfig_out, service_endpoints, plain_http).await,
    }
}
