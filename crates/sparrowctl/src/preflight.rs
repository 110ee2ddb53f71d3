//! The registry preflight as the CLI runs it: `registry check`, and before `deploy` and
//! `registry update` write anything.

use std::path::PathBuf;

use anyhow::Context as _;
use sparrow_core::{RegistryAuth, RegistryServer};
use sparrow_registry::{CheckOptions, all_passed, check_images};

use crate::GlobalArgs;

/// How the registry is reached.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Registry check")]
pub struct RegistryTlsArgs {
    /// PEM file with the CA certificate of a registry whose certificate is not publicly trusted.
    #[arg(long, value_name = "FILE")]
    pub registry_ca: Option<PathBuf>,
    /// Accept any certificate the registry presents (for testing only).
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,
}

impl RegistryTlsArgs {
    /// Reads `--registry-ca` and validates the options (before anything is contacted).
    pub fn options(&self, global: &GlobalArgs) -> anyhow::Result<CheckOptions> {
        let ca_pem = match &self.registry_ca {
            Some(path) => Some(std::fs::read(path).with_context(|| {
                format!("--registry-ca {}: cannot read the file", path.display())
            })?),
            None => None,
        };
        let options = CheckOptions {
            ca_pem,
            insecure_skip_tls_verify: self.insecure_skip_tls_verify,
            timeout: global.timeout,
        };
        options
            .validate()
            .with_context(|| match &self.registry_ca {
                Some(path) => format!("--registry-ca {}", path.display()),
                None => "registry check options".to_owned(),
            })?;
        Ok(options)
    }
}

/// Some image failed the check (the lines were printed).
#[derive(Debug, thiserror::Error)]
#[error("registry check failed: {failed} of {total} images cannot be pulled from {server}{hint}")]
pub struct CheckFailed {
    failed: usize,
    total: usize,
    server: String,
    hint: &'static str,
}

/// Checks `images` (label, reference) and prints one line each; an error unless all pass.
pub async fn check_and_report(
    server: &RegistryServer,
    auth: Option<&RegistryAuth>,
    images: &[(&str, &str)],
    options: &CheckOptions,
    hint: &'static str,
) -> anyhow::Result<()> {
    let checks = check_images(server, auth, images, options).await?;
    for check in &checks {
        println!("{check}");
    }
    if all_passed(&checks) {
        return Ok(());
    }
    let failed = checks.iter().filter(|c| !c.passed()).count();
    Err(CheckFailed {
        failed,
        total: checks.len(),
        server: server.to_string(),
        hint,
    }
    .into())
}
