//! `deploy --registry-credential-provider`: the kubelet's `CredentialProviderConfig` read and
//! checked before anything is contacted, the provider covering the mesh's images picked out of
//! it, and (with `--credential-provider-bin-dir`) the plugin run once here, as the kubelet
//! would, to check its credential against the registry and to seed the source Secret before
//! the controller, which runs it from then on, can pull its own image.

use std::path::{Path, PathBuf};

use sparrow_core::config::CredentialPlugin;
use sparrow_core::credential_provider::{
    CredentialProviderConfig, Provider, expires_at, matching_auth, pull_secret,
};
use sparrow_core::expiry::{CredentialExpiry, ExpirySource};
use sparrow_core::{Images, RegistryAuth, RegistryServer};
use sparrow_credential_provider::Limits;

/// The plugin flags of `deploy`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Credential-provider plugin")]
pub struct PluginArgs {
    /// A kubelet CredentialProviderConfig file (kubelet.config.k8s.io/v1, as given to the
    /// kubelet's --image-credential-provider-config). The controller runs the provider whose
    /// matchImages cover the mesh's images, exactly as the kubelet would, and keeps Secret
    /// sparrow-registry-key fresh with its answers: at about half the credential's lifetime,
    /// retrying with backoff on failure while the last good credential stays. Cannot be used
    /// with the other credential flags.
    #[arg(
        long,
        value_name = "FILE",
        requires = "credential_provider_image",
        conflicts_with_all = ["registry_key", "registry_username", "registry_password", "registry_password_stdin", "registry_credential_expires", "registry_secret"]
    )]
    pub registry_credential_provider: Option<PathBuf>,
    /// An image holding the plugin binaries under /credential-providers and a `cp` (a busybox
    /// base is enough): an init container copies them into the controller pod. Pulled with the
    /// mesh's pull secret.
    #[arg(long, value_name = "IMAGE", requires = "registry_credential_provider")]
    pub credential_provider_image: Option<String>,
    /// Run the plugin once here, from DIR (the kubelet's --image-credential-provider-bin-dir),
    /// to check its credential against the registry and store it before the controller starts,
    /// so the control plane's first pulls have it. Leave it out where the nodes' kubelets run
    /// the same plugin (EKS nodes do for ECR): they pull the control plane themselves.
    #[arg(long, value_name = "DIR", requires = "registry_credential_provider")]
    pub credential_provider_bin_dir: Option<PathBuf>,
}

/// The config file, its provider for `images` and the image of binaries, checked; nothing is
/// run or contacted.
pub fn read(args: &PluginArgs, images: &Images) -> anyhow::Result<Option<CredentialPlugin>> {
    let Some(path) = &args.registry_credential_provider else {
        return Ok(None);
    };
    let shown = path.display();
    let bytes = crate::input::read_file(
        "--registry-credential-provider",
        path,
        crate::input::MAX_KEY_BYTES,
        "a Secret holds at most 1 MiB, so no usable config is larger",
    )?;
    let text = String::from_utf8(bytes).map_err(|_| {
        anyhow::anyhow!(
            "--registry-credential-provider {shown}: the file is not UTF-8 text: give a kubelet CredentialProviderConfig"
        )
    })?;
    let config = CredentialProviderConfig::parse(&text)
        .map_err(|e| anyhow::anyhow!("--registry-credential-provider {shown}: {e}"))?;
    let provider = config
        .provider_for(&image_refs(images))
        .map_err(|e| anyhow::anyhow!("--registry-credential-provider {shown}: {e}"))?;
    let image = args.credential_provider_image.clone().unwrap_or_default();
    sparrow_core::image_ref::validate_image_ref(&image)
        .map_err(|e| crate::usage::UsageError(format!("--credential-provider-image: {e}")))?;
    Ok(Some(CredentialPlugin {
        config: text,
        provider: provider.name.clone(),
        image,
    }))
}

fn image_refs(images: &Images) -> Vec<String> {
    images.all().iter().map(|(_, r)| (*r).to_owned()).collect()
}

/// What one run of the plugin here obtained: the credential and when it expires.
pub struct Seed {
    /// The credential, checked as a static one is.
    pub auth: RegistryAuth,
    /// When it expires, when the answer says.
    pub expiry: Option<CredentialExpiry>,
}

/// Runs the plugin once from `bin_dir` for the mesh's images, as the kubelet would.
pub async fn run_once(
    plugin: &CredentialPlugin,
    bin_dir: &Path,
    server: &RegistryServer,
    images: &Images,
) -> anyhow::Result<Seed> {
    let config = CredentialProviderConfig::parse(&plugin.config)?;
    let provider: &Provider = config
        .providers
        .iter()
        .find(|p| p.name == plugin.provider)
        .ok_or_else(|| anyhow::anyhow!("the config lost provider {}", plugin.provider))?;
    if provider.token_attributes.is_some() {
        anyhow::bail!(
            "--credential-provider-bin-dir: provider {} asks for a service-account token (tokenAttributes), which only exists in the cluster: leave --credential-provider-bin-dir out and let the nodes' kubelets pull the control plane",
            provider.name
        );
    }
    let refs = image_refs(images);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let response = sparrow_credential_provider::run(
        bin_dir,
        provider,
        &images.controller,
        None,
        &Limits::default(),
    )
    .await?;
    // The same bytes the controller will store; then the login they hold.
    pull_secret(&response, server, &refs)?;
    let (_, entry) = matching_auth(&response, &refs)
        .ok_or_else(|| anyhow::anyhow!("the plugin's answer covers none of the mesh's images"))?;
    let auth = RegistryAuth::user_password(&entry.username, &entry.password)?;
    let expiry = expires_at(now, response.lifetime(provider.default_cache_duration)).map(|at| {
        CredentialExpiry {
            at,
            source: ExpirySource::Plugin,
        }
    });
    Ok(Seed { auth, expiry })
}
