//! The registry preflight as the CLI runs it: `registry check`, and before `deploy` and
//! `registry update` write anything.

use std::path::PathBuf;

use anyhow::Context as _;
use sparrow_core::{RegistryAuth, RegistryServer};
use sparrow_registry::{CheckOptions, all_passed, check_images};

use crate::GlobalArgs;
use crate::credentials::RegistryArgs;

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
    /// Reads `--registry-ca` and validates the options (before anything is contacted). An
    /// `http://` `--registry-server` means plain HTTP, with a warning.
    pub fn options(
        &self,
        global: &GlobalArgs,
        registry: &RegistryArgs,
    ) -> anyhow::Result<CheckOptions> {
        let ca_pem = match &self.registry_ca {
            Some(path) => Some(crate::input::read_file(
                "--registry-ca",
                path,
                crate::input::MAX_CA_BYTES,
                "a CA bundle is a few PEM certificates",
            )?),
            None => None,
        };
        let options = CheckOptions {
            ca_pem,
            insecure_skip_tls_verify: self.insecure_skip_tls_verify,
            timeout: global.timeout,
            plain_http: plain_http(registry),
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

/// True for `--registry-server http://…`, after a warning on stderr.
fn plain_http(registry: &RegistryArgs) -> bool {
    let Some(text) = &registry.registry_server else {
        return false;
    };
    let is_http = text
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"));
    // The server as parsed: never the raw text, which could carry pasted user information.
    if let (true, Ok(server)) = (is_http, RegistryServer::parse(text)) {
        eprintln!(
            "warning: --registry-server http://{server}: plain HTTP, so credentials and images cross the network unencrypted; the cluster's container runtime must also be configured to pull from it over HTTP"
        );
    }
    is_http
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
    check_and_print(server, auth, images, options, hint, &|line| {
        crate::say!("{line}")
    })
    .await
}

/// [`check_and_report`], each line printed by `print` (above a spinner).
pub async fn check_and_print(
    server: &RegistryServer,
    auth: Option<&RegistryAuth>,
    images: &[(&str, &str)],
    options: &CheckOptions,
    hint: &'static str,
    print: &dyn Fn(&str),
) -> anyhow::Result<()> {
    let checks = check_images(server, auth, images, options).await?;
    for check in &checks {
        print(&check.to_string());
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
