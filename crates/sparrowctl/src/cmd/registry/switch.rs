//! `registry update` switching the kind of the mesh's registry credential: to a Secret another
//! tool keeps (`--registry-secret NAME`) or back to Sparrow's own (credential flags). Every
//! copy in a meshed namespace keeps a credential throughout: the new source exists before
//! the controller is switched to it, copies are rewritten in place, never deleted, and the
//! old own source goes only once the new controller has rolled out.

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::Deployment;
use sparrow_core::credential_switch::{DeployedCredential, deployed_credential, registry_of_image};
use sparrow_core::manifests::{controller_role, kind_source_pull_secret};
use sparrow_core::names::PULL_SECRET_NAME;
use sparrow_core::{CredentialExpiry, RegistryAuth, RegistryServer, dockerconfigjson};
use sparrow_kube::switch::{apply_role, patch_controller, read_controller, write_own_source};
use sparrow_kube::{Cluster, ClusterError};

use crate::GlobalArgs;
use crate::external_secret::{self, ExternalSecret};
use crate::preflight::check_and_print;
use crate::progress::Progress;

/// The one line for a mesh whose controller runs a credential-provider plugin.
fn plugin_refused(namespace: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "the mesh in namespace {namespace} gets its registry credential from a credential-provider plugin: registry update switches only between --registry-username/--registry-key and --registry-secret; switching from or to a plugin is done with `sparrowctl deploy`; nothing was changed"
    )
}

/// The controller Deployment, which says what the mesh copies now; the plugin refused.
pub async fn read_deployed(
    cluster: &Cluster,
    namespace: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<Option<(Deployment, DeployedCredential)>> {
    let Some(deployment) = read_controller(&cluster.client, namespace, timeout).await? else {
        return Ok(None);
    };
    match deployed_credential(&deployment) {
        DeployedCredential::Plugin => Err(plugin_refused(namespace)),
        kind => Ok(Some((deployment, kind))),
    }
}

/// The registry the mesh pulls from, when no --registry-server is given: the one Sparrow's
/// own Secret holds a login for, else the deployed controller image's.
async fn mesh_registry(
    cluster: &Cluster,
    namespace: &str,
    deployment: &Deployment,
    timeout: std::time::Duration,
) -> anyhow::Result<RegistryServer> {
    match sparrow_kube::update::stored_registry_key(&cluster.client, namespace, timeout).await {
        Ok(key) => {
            return RegistryServer::parse(&key)
                .with_context(|| format!("the stored registry {key:?}"));
        }
        Err(ClusterError::NotDeployed { .. }) => {}
        Err(error) => return Err(error.into()),
    }
    sparrow_kube::update::images_of(deployment)
        .and_then(|images| registry_of_image(&images.controller))
        .with_context(|| {
            format!(
                "cannot tell which registry the mesh in namespace {namespace} pulls from: give --registry-server; nothing was changed"
            )
        })
}

/// Patches the controller to `registry_secret` (`None`: Sparrow's own Secret) and waits until
/// it has rolled out.
async fn switch_controller(
    cluster: &Cluster,
    global: &GlobalArgs,
    progress: &Progress,
    deployment: &Deployment,
    registry_secret: Option<&str>,
    kept: &str,
) -> anyhow::Result<()> {
    let ns = &global.namespace;
    patch_controller(
        &cluster.client,
        ns,
        deployment,
        registry_secret,
        global.timeout,
    )
    .await?;
    progress.done(&format!(
        "patched Deployment {ns}/{}: it copies and pulls with Secret {ns}/{}",
        sparrow_core::names::CONTROLLER_NAME,
        registry_secret.unwrap_or(PULL_SECRET_NAME)
    ));
    let waited = progress
        .waiting(
            "waiting for the new controller to roll out",
            sparrow_kube::wait::wait_for_controller(&cluster.client, ns, global.timeout),
        )
        .await;
    if let Err(error) = waited {
        anyhow::bail!(
            "{error}; {kept} until it has rolled out, and the copies keep their credential: run registry update again once it is fixed"
        );
    }
    progress.done("the new controller is available");
    Ok(())
}

/// What `registry update --registry-secret NAME` needs from the command line.
pub struct ToExternal<'a> {
    /// The Secret another tool keeps (name already checked).
    pub name: &'a str,
    /// `--registry-server`, when given.
    pub server: Option<RegistryServer>,
    /// The registry check's options, `None` with --skip-registry-check.
    pub check: Option<&'a sparrow_registry::CheckOptions>,
}

/// Switches the mesh to copy the Secret another tool keeps, from Sparrow's own Secret or from
/// another such Secret.
pub async fn to_external(
    cluster: &Cluster,
    global: &GlobalArgs,
    wanted: ToExternal<'_>,
) -> anyhow::Result<()> {
    let ns = &global.namespace;
    let name = wanted.name;
    let Some((deployment, from)) = read_deployed(cluster, ns, global.timeout).await? else {
        return Err(ClusterError::NotDeployed {
            namespace: ns.clone(),
        }
        .into());
    };
    let registry = match wanted.server {
        Some(server) => server,
        None => mesh_registry(cluster, ns, &deployment, global.timeout).await?,
    };
    let images = sparrow_kube::update::images_of(&deployment).with_context(|| {
        format!(
            "Deployment {ns}/{} names no images: run `sparrowctl deploy`",
            sparrow_core::names::CONTROLLER_NAME
        )
    })?;
    let progress = Progress::new();
    let secret = ExternalSecret {
        namespace: ns,
        name,
        registry: &registry,
        images: &images,
    };
    external_secret::check_registry_secret(
        cluster,
        &secret,
        global.timeout,
        &progress,
        wanted.check,
        &external_secret::UPDATE,
    )
    .await?;
    let previous = match &from {
        DeployedCredential::External(old) if old == name => {
            drop(progress);
            crate::say!(
                "The mesh in namespace {ns} already copies Secret {ns}/{name}; nothing was changed."
            );
            return Ok(());
        }
        DeployedCredential::External(old) => Some(old.clone()),
        _ => None,
    };
    // The new controller reads NAME from its start; the old one keeps reading its own.
    let both: Vec<String> = previous.iter().cloned().chain([name.to_owned()]).collect();
    apply_role(
        &cluster.client,
        controller_role(ns, false, &both),
        global.timeout,
    )
    .await?;
    progress.done(&format!(
        "applied Role {ns}/{}: the controller may read Secret {ns}/{name}",
        sparrow_core::names::CONTROLLER_NAME
    ));
    let kept = match &previous {
        Some(old) => format!("the controller still copies Secret {ns}/{old}"),
        None => format!("Secret {ns}/{PULL_SECRET_NAME} is kept"),
    };
    switch_controller(cluster, global, &progress, &deployment, Some(name), &kept).await?;
    match &previous {
        Some(old) => {
            apply_role(
                &cluster.client,
                controller_role(ns, false, &[name.to_owned()]),
                global.timeout,
            )
            .await?;
            progress.done(&format!(
                "applied Role {ns}/{}: the controller no longer reads Secret {ns}/{old} (left as it is)",
                sparrow_core::names::CONTROLLER_NAME
            ));
        }
        None => {
            sparrow_kube::secrets::delete_own_source(&cluster.client, ns, global.timeout).await?;
            progress.done(&format!(
                "deleted Secret {ns}/{PULL_SECRET_NAME}: the credential Sparrow stored before (the copies now follow Secret {ns}/{name})"
            ));
        }
    }
    drop(progress);
    crate::say!(
        "Registry credentials of the mesh in namespace {ns} switched to Secret {ns}/{name}, which another tool keeps (Sparrow never writes or deletes it); the controller rewrites every copy from it in place."
    );
    Ok(())
}

/// What `registry update --registry-username/--registry-key` brings to a mesh that copies a
/// Secret another tool keeps.
pub struct ToOwn<'a> {
    /// `--registry-server`, when given.
    pub server: Option<RegistryServer>,
    /// The credential given.
    pub auth: &'a RegistryAuth,
    /// When it expires, when known.
    pub expiry: Option<&'a CredentialExpiry>,
    /// The registry check's options, `None` with --skip-registry-check.
    pub check: Option<&'a sparrow_registry::CheckOptions>,
}

/// Switches a mesh that copies the Secret `from` (another tool keeps it) back to Sparrow's own
/// Secret, written from the credential given. `from` is never touched.
pub async fn to_own(
    cluster: &Cluster,
    global: &GlobalArgs,
    deployment: &Deployment,
    from: &str,
    wanted: ToOwn<'_>,
) -> anyhow::Result<()> {
    let ns = &global.namespace;
    let registry = match wanted.server {
        Some(server) => server,
        None => mesh_registry(cluster, ns, deployment, global.timeout).await?,
    };
    let progress = Progress::new();
    if let Some(options) = wanted.check {
        let images = sparrow_kube::update::images_of(deployment).with_context(|| {
            format!(
                "Deployment {ns}/{} names no images: run `sparrowctl deploy`",
                sparrow_core::names::CONTROLLER_NAME
            )
        })?;
        progress.line("Checking the deployed images with the new credentials:");
        check_and_print(
            &registry,
            Some(wanted.auth),
            &images.all(),
            options,
            "; the credentials were not changed (or pass --skip-registry-check)",
            &|line| progress.line(line),
        )
        .await?;
    }
    let secret = kind_source_pull_secret(
        ns,
        dockerconfigjson(&registry, wanted.auth),
        wanted.expiry,
        false,
    );
    write_own_source(&cluster.client, ns, &secret, global.timeout).await?;
    progress.done(&format!(
        "wrote Secret {ns}/{PULL_SECRET_NAME} with the given credential ({}) for {}",
        wanted.auth.kind(),
        registry.auth_key()
    ));
    let kept = format!("the controller still copies Secret {ns}/{from}");
    switch_controller(cluster, global, &progress, deployment, None, &kept).await?;
    // Only now: the old controller read `from` until it was gone.
    apply_role(
        &cluster.client,
        controller_role(ns, false, &[]),
        global.timeout,
    )
    .await?;
    progress.done(&format!(
        "applied Role {ns}/{}: the controller no longer reads Secret {ns}/{from} (left as it is)",
        sparrow_core::names::CONTROLLER_NAME
    ));
    drop(progress);
    crate::say!(
        "Registry credentials of the mesh in namespace {ns} switched to Secret {ns}/{PULL_SECRET_NAME}, which Sparrow keeps; the controller rewrites every copy from it in place. Secret {ns}/{from} was not touched."
    );
    if let Some(expiry) = wanted.expiry {
        crate::say!(
            "The credential expires {} (from {}).",
            expiry.rfc3339(),
            crate::cmd::deploy::expiry_origin(expiry.source)
        );
    }
    Ok(())
}
