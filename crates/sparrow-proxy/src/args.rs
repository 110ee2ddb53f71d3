//! The command line; every flag can also come from the environment the injector sets.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use sparrow_inject::proxy_env::{
    ADMIN_LISTEN_ADDR_ENV, CONTROL_PLANE_NAMESPACE_ENV, INBOUND_LISTEN_ADDR_ENV,
    OUTBOUND_LISTEN_ADDR_ENV, POD_NAME_ENV, POD_NAMESPACE_ENV, SHUTDOWN_GRACE_PERIOD_ENV,
};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// The Sparrow Mesh sidecar: a transparent TCP proxy for the traffic sparrow-init redirects.
#[derive(Debug, Clone, Parser)]
#[command(name = "sparrow-proxy", version)]
pub struct Args {
    /// Where redirected inbound connections arrive.
    #[arg(long, env = INBOUND_LISTEN_ADDR_ENV, value_name = "ADDR", default_value = "0.0.0.0:4143")]
    pub inbound_listen_addr: SocketAddr,
    /// Where redirected outbound connections arrive.
    #[arg(long, env = OUTBOUND_LISTEN_ADDR_ENV, value_name = "ADDR", default_value = "127.0.0.1:4140")]
    pub outbound_listen_addr: SocketAddr,
    /// The admin server (/live, /ready, /metrics); never redirected.
    #[arg(long, env = ADMIN_LISTEN_ADDR_ENV, value_name = "ADDR", default_value = "0.0.0.0:4191")]
    pub admin_listen_addr: SocketAddr,
    /// How long open connections may take to finish after SIGTERM.
    #[arg(long, env = SHUTDOWN_GRACE_PERIOD_ENV, value_name = "DURATION", default_value = "20s", value_parser = humantime::parse_duration)]
    pub shutdown_grace_period: Duration,
    /// How long connecting to a destination may take.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
    /// The mesh's namespace (for the logs).
    #[arg(long, env = CONTROL_PLANE_NAMESPACE_ENV, value_name = "NS")]
    pub control_plane_namespace: Option<String>,
    /// The pod's name (for the logs).
    #[arg(long, env = POD_NAME_ENV, value_name = "NAME")]
    pub pod_name: Option<String>,
    /// The pod's namespace (for the logs).
    #[arg(long, env = POD_NAMESPACE_ENV, value_name = "NS")]
    pub pod_namespace: Option<String>,
    /// Log format.
    #[arg(long, value_enum, default_value = "plain")]
    pub log_format: LogFormat,
}

impl Args {
    /// Parses the command line and runs until SIGTERM or Ctrl-C and the drain that follows;
    /// errors are one line on stderr and exit status 1 (usage errors: 2).
    pub fn parse_and_run() -> ExitCode {
        let args = Self::parse();
        init_logging(args.log_format);
        let run = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("could not start the async runtime")
            .and_then(|runtime| runtime.block_on(crate::run::run(args)));
        match run {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("sparrow-proxy: error: {error:#}");
                ExitCode::FAILURE
            }
        }
    }
}

fn init_logging(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        );
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
