//! The registry flags shared by `deploy`, `registry update` and `registry check`, and the
//! rules that turn them into a [`RegistryServer`] and optional [`RegistryAuth`].

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sparrow_core::{ImageOverrides, Images, RegistryAuth, RegistryServer};

use crate::usage::{UsageError, usage_bail};

/// Environment variable that holds the registry password (never on the command line).
pub const PASSWORD_ENV: &str = "SPARROW_REGISTRY_PASSWORD";

/// Where images come from, and the credentials to pull them.
#[derive(Clone, Default, clap::Args)]
#[command(next_help_heading = "Private registry")]
pub struct RegistryArgs {
    /// Registry the mesh images are pulled from: HOST[:PORT][/PATH], for example
    /// registry.example.com:5000/mesh. Only HOST[:PORT] is used for authentication.
    /// [default: ghcr.io/sparrow-mesh]
    #[arg(long, value_name = "HOST[:PORT][/PATH]")]
    pub registry_server: Option<String>,
    /// Path to a JSON key file for the registry (username `_json_key`), relative to the
    /// working directory or absolute. Cannot be used with --registry-username or --registry-password.
    #[arg(long, value_name = "FILE")]
    pub registry_key: Option<PathBuf>,
    /// User name for the registry. Must be used with a password: --registry-password-stdin,
    /// $SPARROW_REGISTRY_PASSWORD or --registry-password.
    #[arg(long, value_name = "USER")]
    pub registry_username: Option<String>,
    /// Password for the registry. Exposes the password on the console and in shell history:
    /// prefer --registry-password-stdin or $SPARROW_REGISTRY_PASSWORD.
    #[arg(
        long,
        value_name = "PASSWORD",
        conflicts_with = "registry_password_stdin"
    )]
    pub registry_password: Option<String>,
    /// Read the registry password from standard input (one trailing newline is removed).
    #[arg(long)]
    pub registry_password_stdin: bool,
}

/// Redacted: the password must not reach a log through `{:?}`.
impl std::fmt::Debug for RegistryArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryArgs")
            .field("registry_server", &self.registry_server)
            .field("registry_key", &self.registry_key)
            .field("registry_username", &self.registry_username)
            .field(
                "registry_password",
                &self.registry_password.as_ref().map(|_| "<redacted>"),
            )
            .field("registry_password_stdin", &self.registry_password_stdin)
            .finish()
    }
}

/// `--registry-credential-expires` (deploy and `registry update`).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Private registry")]
pub struct ExpiryArgs {
    /// When the registry credential expires (Harbor robot accounts, ACR tokens): RFC 3339
    /// (2027-03-01T12:00:00Z) or a plain date (2027-03-01, midnight UTC). Recorded on the
    /// pull secret: status warns within --expiry-warning and fails once it has passed. A
    /// password that is a JWT with an `exp` claim needs no flag.
    #[arg(long, value_name = "DATE")]
    pub registry_credential_expires: Option<String>,
}

impl ExpiryArgs {
    /// The flag's rules, before any credential is read: it needs credentials, and a date
    /// that is one and has not passed. Returns the date (seconds since the epoch).
    pub fn check(&self, registry: &RegistryArgs) -> anyhow::Result<Option<i64>> {
        let Some(text) = &self.registry_credential_expires else {
            return Ok(None);
        };
        if !registry.has_credentials() {
            usage_bail!(
                "--registry-credential-expires needs the credential it describes: --registry-key FILE, or --registry-username with a password"
            );
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        sparrow_core::expiry::parse_expiry_date(text, now)
            .map(Some)
            .map_err(|e| UsageError::from_display(e).into())
    }
}

/// The expiry to record for `auth`: the flag's date (already [`ExpiryArgs::check`]ed), else
/// the `exp` claim of a password that is a JWT.
pub fn recorded_expiry(
    flag: Option<i64>,
    auth: Option<&RegistryAuth>,
) -> Option<sparrow_core::CredentialExpiry> {
    let password = auth
        .filter(|a| a.kind() == sparrow_core::CredentialKind::UsernamePassword)
        .map(RegistryAuth::password);
    sparrow_core::expiry::credential_expiry(flag, password)
}

/// Image tag and per-image overrides.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Images")]
pub struct ImageArgs {
    /// Tag of the mesh images. [default: the sparrowctl version]
    #[arg(long, value_name = "TAG")]
    pub image_tag: Option<String>,
    /// Use this controller image instead of <registry-server>/sparrow-controller:<tag>.
    #[arg(long, value_name = "IMAGE")]
    pub controller_image: Option<String>,
    /// Use this sidecar image instead of <registry-server>/sparrow-proxy:<tag>.
    #[arg(long, value_name = "IMAGE")]
    pub sidecar_image: Option<String>,
    /// Use this init image instead of <registry-server>/sparrow-init:<tag>.
    #[arg(long, value_name = "IMAGE")]
    pub init_image: Option<String>,
}

/// Resolved registry flags.
#[derive(Debug, Clone)]
pub struct Registry {
    /// Where images come from.
    pub server: RegistryServer,
    /// Credentials, when any were given.
    pub auth: Option<RegistryAuth>,
}

/// Where a password comes from; only the command-line flag earns a warning.
pub struct PasswordSources<'a> {
    /// `$SPARROW_REGISTRY_PASSWORD`, if set.
    pub env: Option<String>,
    /// Standard input, read only when `--registry-password-stdin` is given.
    pub stdin: &'a mut dyn Read,
    /// Where the `--registry-password` warning goes.
    pub warnings: &'a mut dyn std::io::Write,
}

impl RegistryArgs {
    /// The flag rules, exactly as the seed page states them; reads nothing. `server_known`
    /// is true where the server can come from the cluster (`registry update`).
    /// `env_password` says whether $SPARROW_REGISTRY_PASSWORD is set.
    pub fn check_rules(&self, server_known: bool, env_password: bool) -> anyhow::Result<()> {
        let has_password_flag = self.registry_password.is_some() || self.registry_password_stdin;
        if self.registry_key.is_some() && (self.registry_username.is_some() || has_password_flag) {
            usage_bail!(
                "--registry-key cannot be used with --registry-username or --registry-password"
            );
        }
        if has_password_flag && self.registry_username.is_none() {
            usage_bail!("--registry-password must be used with --registry-username");
        }
        if self.registry_username.is_some() && !has_password_flag && !env_password {
            usage_bail!(
                "--registry-username must be used with a password: --registry-password-stdin, ${PASSWORD_ENV} or --registry-password"
            );
        }
        let has_credentials = self.registry_key.is_some() || self.registry_username.is_some();
        if let Some(text) = &self.registry_server {
            RegistryServer::parse(text).map_err(UsageError::from_display)?;
        } else if has_credentials && !server_known {
            usage_bail!(
                "credentials need --registry-server: name the registry they are for, for example --registry-server registry.example.com:5000"
            );
        }
        Ok(())
    }

    /// True when a key or a username was given.
    pub fn has_credentials(&self) -> bool {
        self.registry_key.is_some() || self.registry_username.is_some()
    }

    /// Applies [`RegistryArgs::check_rules`], then reads the key file or password. Usage
    /// errors come before any file or stdin is read. `stored_server` stands in for a missing
    /// `--registry-server` (the server the cluster already uses).
    pub fn resolve(
        &self,
        sources: PasswordSources<'_>,
        stored_server: Option<RegistryServer>,
    ) -> anyhow::Result<Registry> {
        self.check_rules(stored_server.is_some(), sources.env.is_some())?;
        let has_password_flag = self.registry_password.is_some() || self.registry_password_stdin;
        // The env var is ambient: it counts as a password only next to --registry-username.
        let env_password = sources
            .env
            .filter(|_| self.registry_username.is_some() && !has_password_flag);
        let server = match (&self.registry_server, stored_server) {
            (Some(text), _) => RegistryServer::parse(text).map_err(UsageError::from_display)?,
            (None, Some(stored)) => stored,
            (None, None) => RegistryServer::default(),
        };

        let auth = if let Some(path) = &self.registry_key {
            Some(read_key_file(path)?)
        } else if let Some(username) = &self.registry_username {
            let password = if let Some(password) = &self.registry_password {
                password.clone()
            } else if self.registry_password_stdin {
                read_password(sources.stdin)?
            } else {
                env_password.unwrap_or_default()
            };
            let auth = RegistryAuth::user_password(username, &password)
                .map_err(UsageError::from_display)?;
            // Warn only once the command is otherwise valid, so an error stays one line.
            if self.registry_password.is_some() {
                let _ = writeln!(
                    sources.warnings,
                    "warning: --registry-password exposes the password on the console and in shell history; use --registry-password-stdin or ${PASSWORD_ENV} instead"
                );
            }
            Some(auth)
        } else {
            None
        };
        Ok(Registry { server, auth })
    }
}

impl ImageArgs {
    /// The three images for `server`.
    pub fn resolve(&self, server: &RegistryServer) -> anyhow::Result<Images> {
        let tag = self
            .image_tag
            .as_deref()
            .unwrap_or(sparrow_core::names::DEFAULT_IMAGE_TAG);
        if tag.is_empty()
            || tag.len() > 128
            || !tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            || tag.starts_with(['.', '-'])
        {
            usage_bail!(
                "invalid --image-tag {tag:?}: a tag is 1-128 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
            );
        }
        for (flag, image) in [
            ("--controller-image", &self.controller_image),
            ("--sidecar-image", &self.sidecar_image),
            ("--init-image", &self.init_image),
        ] {
            if let Some(image) = image
                && let Err(error) = sparrow_core::image_ref::validate_image_ref(image)
            {
                let shown: String = image.chars().take(80).collect();
                let ellipsis = if shown.len() < image.len() { "..." } else { "" };
                usage_bail!(
                    "invalid {flag} {shown:?}{ellipsis}: it {error}; give an image reference such as registry.example.com/mesh/proxy:1.0"
                );
            }
        }
        let overrides = ImageOverrides {
            controller: self.controller_image.clone(),
            proxy: self.sidecar_image.clone(),
            init: self.init_image.clone(),
        };
        let images = Images::resolve(server, tag, &overrides);
        for (label, image) in images.all() {
            if let Err(error) = sparrow_core::image_ref::validate_image_ref(image) {
                usage_bail!(
                    "the {label} image {image:?} is not a valid image reference: it {error}; shorten --registry-server or give the image with its flag"
                );
            }
        }
        Ok(images)
    }
}

fn read_key_file(path: &Path) -> anyhow::Result<RegistryAuth> {
    let shown = path.display();
    let bytes = crate::input::read_file(
        "--registry-key",
        path,
        crate::input::MAX_KEY_BYTES,
        "a Kubernetes Secret holds at most 1 MiB, so no usable key is larger",
    )?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("--registry-key {shown}: the key file is not UTF-8 text"))?;
    RegistryAuth::json_key(&text).with_context(|| format!("--registry-key {shown}"))
}

fn read_password(stdin: &mut dyn Read) -> anyhow::Result<String> {
    let bytes = crate::input::read_bounded(
        "--registry-password-stdin",
        stdin,
        crate::input::MAX_PASSWORD_BYTES,
        "a Kubernetes Secret holds at most 1 MiB, so no usable password is larger",
    )?;
    let text = String::from_utf8(bytes).map_err(|_| {
        anyhow::anyhow!(
            "--registry-password-stdin: the password on standard input is not UTF-8 text"
        )
    })?;
    // Like `docker login --password-stdin`: exactly one trailing newline is not part of it.
    let trimmed = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests;
