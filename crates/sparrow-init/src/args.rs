//! The command line (the flags the injector renders, see [`sparrow_inject::RedirectFlags`],
//! plus a few of this program's own) and the run.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use sparrow_inject::{
    ADMIN_PORT, INBOUND_PORT, INBOUND_PORTS_TO_IGNORE_FLAG, INCOMING_PROXY_PORT_FLAG,
    OUTBOUND_PORT, OUTBOUND_PORTS_TO_IGNORE_FLAG, OUTGOING_PROXY_PORT_FLAG, PROXY_UID_FLAG,
    PortRange, RedirectFlags,
};

use crate::backend::Backend;
use crate::iptables::{Iptables, detect_backend};
use crate::rules::{Existing, Redirect, restore_document};
use crate::subnet::Ipv4Subnet;

/// Which iptables to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IptablesMode {
    /// The node's, as kubernetes-sigs/iptables-wrappers decides (nft unless the kubelet's
    /// hint chains are only in the legacy tables).
    Auto,
    /// iptables over nf_tables.
    Nft,
    /// Legacy iptables.
    Legacy,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// Ports as the flags take them: `25,4191,8000-8100`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortList(pub Vec<PortRange>);

fn port_list(value: &str) -> Result<PortList, String> {
    PortRange::parse_list(value).map(PortList).ok_or_else(|| {
        format!(
            "{value:?} is not a comma-separated list of ports (1-65535) or ranges like 8000-8100"
        )
    })
}

/// Redirects the pod's TCP traffic to sparrow-proxy: inbound to the incoming port, outbound
/// to the outgoing port, except the proxy's own connections, loopback and what is ignored.
/// Run as the pod's init container (root, CAP_NET_ADMIN); running it again replaces its
/// rules.
#[derive(Debug, Clone, Parser)]
#[command(name = "sparrow-init", version)]
pub struct Args {
    /// The proxy's inbound port.
    #[arg(long = INCOMING_PROXY_PORT_FLAG, value_name = "PORT", default_value_t = INBOUND_PORT)]
    pub incoming_proxy_port: u16,
    /// The proxy's outbound port.
    #[arg(long = OUTGOING_PROXY_PORT_FLAG, value_name = "PORT", default_value_t = OUTBOUND_PORT)]
    pub outgoing_proxy_port: u16,
    /// The proxy's uid: its connections are not redirected.
    #[arg(long = PROXY_UID_FLAG, value_name = "UID", default_value_t = 2102)]
    pub proxy_uid: u32,
    /// Inbound ports and ranges not redirected (the proxy's admin port belongs here).
    #[arg(long = INBOUND_PORTS_TO_IGNORE_FLAG, value_name = "PORTS", value_parser = port_list)]
    pub inbound_ports_to_ignore: Option<PortList>,
    /// Outbound destination ports and ranges not redirected.
    #[arg(long = OUTBOUND_PORTS_TO_IGNORE_FLAG, value_name = "PORTS", value_parser = port_list)]
    pub outbound_ports_to_ignore: Option<PortList>,
    /// Outbound destination subnets not redirected (IPv4 CIDRs, comma-separated).
    #[arg(long, value_name = "CIDR,...", value_delimiter = ',')]
    pub subnets_to_ignore: Vec<Ipv4Subnet>,
    /// Which iptables to program.
    #[arg(long, value_enum, default_value = "auto")]
    pub iptables_mode: IptablesMode,
    /// Print the iptables-restore document instead of applying it (needs no privilege).
    #[arg(long)]
    pub simulate: bool,
    /// Log format.
    #[arg(long, value_enum, default_value = "plain")]
    pub log_format: LogFormat,
}

impl Args {
    /// Parses the command line and runs; errors are one line on stderr and exit status 1
    /// (usage errors: 2).
    pub fn parse_and_run() -> ExitCode {
        let args = Self::parse();
        init_logging(args.log_format);
        match args.run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("sparrow-init: error: {error:#}");
                ExitCode::FAILURE
            }
        }
    }

    /// The redirect these flags describe.
    pub fn redirect(&self) -> Redirect {
        let list = |l: &Option<PortList>| l.as_ref().map(|l| l.0.clone()).unwrap_or_default();
        let mut subnets = self.subnets_to_ignore.clone();
        subnets.sort();
        subnets.dedup();
        Redirect {
            flags: RedirectFlags {
                incoming_proxy_port: self.incoming_proxy_port,
                outgoing_proxy_port: self.outgoing_proxy_port,
                proxy_uid: self.proxy_uid,
                inbound_ports_to_ignore: list(&self.inbound_ports_to_ignore),
                outbound_ports_to_ignore: list(&self.outbound_ports_to_ignore),
            },
            subnets_to_ignore: subnets,
        }
    }

    /// Installs the redirect (or prints it with `--simulate`).
    pub fn run(&self) -> anyhow::Result<()> {
        let redirect = self.redirect();
        if !redirect
            .flags
            .inbound_ports_to_ignore
            .iter()
            .any(|r| (r.first..=r.last).contains(&ADMIN_PORT))
        {
            tracing::warn!(
                admin_port = ADMIN_PORT,
                "the proxy's admin port is not among --inbound-ports-to-ignore: the kubelet's probes will be redirected"
            );
        }
        if self.simulate {
            let document = restore_document(&redirect, Existing::default());
            let mode = format!("{:?}", self.iptables_mode).to_lowercase();
            let mut out = std::io::stdout().lock();
            writeln!(out, "# iptables-restore --noflush (backend: {mode})")
                .and_then(|()| out.write_all(document.as_bytes()))
                .context("writing to stdout")?;
            return Ok(());
        }
        let backend = match self.iptables_mode {
            IptablesMode::Auto => detect_backend().context("cannot choose the iptables backend")?,
            IptablesMode::Nft => Backend::Nft,
            IptablesMode::Legacy => Backend::Legacy,
        };
        install(Iptables::new(backend), &redirect)
    }
}

/// Reads the NAT table, then replaces our chains and adds the jumps still missing in one
/// `iptables-restore`.
pub fn install(iptables: Iptables, redirect: &Redirect) -> anyhow::Result<()> {
    let backend = iptables.backend();
    let save = iptables.save("nat").context("cannot read the NAT table")?;
    let existing = Existing::parse(&save);
    let document = restore_document(redirect, existing);
    iptables
        .restore_noflush(&document)
        .context("cannot install the redirect")?;
    let flags = &redirect.flags;
    tracing::info!(
        %backend,
        incoming_proxy_port = flags.incoming_proxy_port,
        outgoing_proxy_port = flags.outgoing_proxy_port,
        proxy_uid = flags.proxy_uid,
        replaced = existing.inbound_jump || existing.outbound_jump,
        "redirect installed"
    );
    Ok(())
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

#[cfg(test)]
mod tests;
