//! `--registry-secret NAME` of `deploy` and `registry update`: a kubernetes.io/dockerconfigjson
//! Secret in the mesh namespace that another tool keeps. Its name is checked before anything
//! is contacted; the Secret itself (type, a login for the registry, the images with it) before
//! anything is written. Sparrow never writes or deletes it.

use sparrow_core::names::{
    CA_SECRET_NAME, COPY_KEY_SECRET_NAME, PULL_SECRET_NAME, TLS_SECRET_NAME,
};
use sparrow_core::{Images, RegistryAuth, RegistryServer};
use sparrow_kube::apply;

use crate::preflight::check_and_print;
use crate::progress::Progress;
use crate::usage::usage_bail;

/// What the verb leaves undone when the Secret is refused: the end of every message.
pub struct Refused {
    /// "nothing was deployed".
    pub nothing: &'static str,
    /// The hint after a failed registry check.
    pub check_hint: &'static str,
}

/// `deploy`'s words.
pub const DEPLOY: Refused = Refused {
    nothing: "nothing was deployed",
    check_hint: "; nothing was deployed (fix the Secret or the images, or pass --skip-registry-check)",
};

/// `registry update`'s words.
pub const UPDATE: Refused = Refused {
    nothing: "nothing was changed",
    check_hint: "; nothing was changed (fix the Secret or the images, or pass --skip-registry-check)",
};

/// The Secret to check: its name in the mesh namespace, and the registry and images it must
/// pull.
pub struct ExternalSecret<'a> {
    /// The mesh namespace.
    pub namespace: &'a str,
    /// The Secret's name ([`check_registry_secret_name`]d).
    pub name: &'a str,
    /// The registry whose login it must hold.
    pub registry: &'a RegistryServer,
    /// The images checked with that login.
    pub images: &'a Images,
}

/// `--registry-secret NAME`: a Secret name of the mesh namespace that is not one of Sparrow's
/// own (those it writes and deletes itself).
pub fn check_registry_secret_name(name: &str, mesh: &str) -> anyhow::Result<String> {
    if let Some((namespace, _)) = name.split_once('/') {
        usage_bail!(
            "--registry-secret {name}: the Secret must be in the mesh namespace {mesh}, the only one whose Secrets the controller may read besides its copies; have the tool that keeps it write it into {mesh} (or deploy with -n {namespace})"
        );
    }
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid {
        usage_bail!(
            "--registry-secret {name:?} is not a Secret name (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)"
        );
    }
    if [
        PULL_SECRET_NAME,
        COPY_KEY_SECRET_NAME,
        TLS_SECRET_NAME,
        CA_SECRET_NAME,
    ]
    .contains(&name)
    {
        usage_bail!(
            "--registry-secret {name}: that Secret is one Sparrow keeps itself; name the Secret the other tool writes (to give credentials to Sparrow, use --registry-username or --registry-key)"
        );
    }
    Ok(name.to_owned())
}

/// Reads the Secret another tool keeps and finds its login for the registry, or says in one
/// line what is wrong with it; nothing has been written yet.
pub async fn registry_secret_login(
    cluster: &sparrow_kube::Cluster,
    secret: &ExternalSecret<'_>,
    timeout: std::time::Duration,
    refused: &Refused,
) -> anyhow::Result<RegistryAuth> {
    let (ns, name) = (secret.namespace, secret.name);
    let what = format!("--registry-secret: Secret {ns}/{name}");
    let nothing = refused.nothing;
    let Some(found) = apply::read_registry_secret(&cluster.client, ns, name, timeout).await? else {
        anyhow::bail!(
            "{what} does not exist: have the tool that keeps it write it there first (or try with `kubectl -n {ns} create secret docker-registry {name} ...`); {nothing}"
        );
    };
    if let Some(problem) = sparrow_kube::secrets::external_source_problem(&found) {
        anyhow::bail!("{what} cannot be used: {problem}; {nothing}");
    }
    let bytes = found
        .data
        .as_ref()
        .and_then(|d| d.get(sparrow_core::manifests::DOCKER_CONFIG_JSON_KEY))
        .map(|b| b.0.as_slice())
        .unwrap_or_default();
    let login = sparrow_core::login_for(bytes, secret.registry)
        .map_err(|e| anyhow::anyhow!("{what} cannot be used: {e}; {nothing}"))?;
    RegistryAuth::user_password(&login.username, &login.password).map_err(|e| {
        anyhow::anyhow!(
            "{what} cannot be used: entry \"{}\": {e}; {nothing}",
            login.key
        )
    })
}

/// Reads the Secret, finds its login for the registry and, unless skipped (`check` is
/// `None`), checks the images with it: before anything is written.
pub async fn check_registry_secret(
    cluster: &sparrow_kube::Cluster,
    secret: &ExternalSecret<'_>,
    timeout: std::time::Duration,
    progress: &Progress,
    check: Option<&sparrow_registry::CheckOptions>,
    refused: &Refused,
) -> anyhow::Result<()> {
    let (ns, name) = (secret.namespace, secret.name);
    let auth = registry_secret_login(cluster, secret, timeout, refused).await?;
    progress.done(&format!(
        "Secret {ns}/{name} holds a {} for {}",
        auth.kind(),
        secret.registry.auth_key()
    ));
    if let Some(options) = check {
        progress.line(&format!(
            "Checking {} with the credential in Secret {ns}/{name}:",
            secret.registry
        ));
        check_and_print(
            secret.registry,
            Some(&auth),
            &secret.images.all(),
            options,
            refused.check_hint,
            &|line| progress.line(line),
        )
        .await?;
    }
    Ok(())
}
