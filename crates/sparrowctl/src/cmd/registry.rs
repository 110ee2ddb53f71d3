//! `sparrowctl registry update`: rotate the registry credentials.

use anyhow::Context as _;
use sparrow_core::credential_switch::DeployedCredential;
use sparrow_core::manifests::kind_source_pull_secret;
use sparrow_core::names::DEFAULT_IMAGE_TAG;
use sparrow_core::{RegistryServer, dockerconfigjson};
use sparrow_kube::secrets::drop_stale_credential_expiry;
use sparrow_kube::update::{deployed_images, stored_registry_key, update_source};

use crate::GlobalArgs;
use crate::cluster::{block_on, check_global, connect_retrying};
use crate::credentials::{
    ExpiryArgs, ImageArgs, PASSWORD_ENV, PasswordSources, RegistryArgs, recorded_expiry,
};
use crate::images_from::ImagesFromArgs;
use crate::input::StdinWithDeadline;
use crate::preflight::{RegistryTlsArgs, check_and_report};
use crate::usage::usage_bail;

mod switch;

/// `registry` verbs.
#[derive(Debug, clap::Subcommand)]
pub enum RegistryCommand {
    /// Replace the stored registry credentials (rotation); the controller refreshes every copy.
    ///
    /// Without --registry-server the registry already stored is kept. Also switches the kind
    /// of credential with no moment in which a copy is missing: --registry-secret NAME makes
    /// the mesh copy a Secret another tool keeps (Sparrow's own Secret is deleted once the new
    /// controller runs); credential flags on such a mesh switch it back to Sparrow's own.
    /// A mesh whose credential comes from a credential-provider plugin is switched with deploy.
    ///
    /// Examples:
    ///   sparrowctl registry update --registry-username robot2 --registry-password-stdin < pw.txt
    ///   sparrowctl registry update --registry-secret ecr-pull
    #[command(verbatim_doc_comment)]
    Update(UpdateArgs),
    /// Prove the credentials and every mesh image against the registry; deploys nothing.
    ///
    /// One line per image: found (with digest), not found, unauthorized, forbidden, TLS
    /// failure, unreachable. Exit 0 only if every image is found.
    ///
    /// Example:
    ///   sparrowctl registry check --registry-server registry.example.com:5000/mesh \
    ///       --registry-username robot --registry-password-stdin --registry-ca ca.pem < pw.txt
    #[command(verbatim_doc_comment)]
    Check(CheckArgs),
}

/// Flags of `registry check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    images: ImageArgs,
    #[command(flatten)]
    images_from: ImagesFromArgs,
    #[command(flatten)]
    tls: RegistryTlsArgs,
}

/// Flags of `registry update`.
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// Switch the mesh to a kubernetes.io/dockerconfigjson Secret in the mesh namespace that
    /// another tool keeps: checked as deploy checks it, then the controller copies it, byte
    /// for byte, into the namespaces of meshed pods; Sparrow never writes or deletes it.
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with_all = ["registry_key", "registry_username", "registry_password", "registry_password_stdin", "registry_credential_expires"],
        help_heading = "Private registry"
    )]
    registry_secret: Option<String>,
    #[command(flatten)]
    expiry: ExpiryArgs,
    #[command(flatten)]
    tls: RegistryTlsArgs,
    /// Update without first checking the new credentials against the deployed images.
    #[arg(long, help_heading = "Registry check")]
    skip_registry_check: bool,
}

/// Runs a `registry` verb.
pub fn run(global: &GlobalArgs, command: RegistryCommand) -> anyhow::Result<()> {
    match command {
        RegistryCommand::Update(args) => update(global, args),
        RegistryCommand::Check(args) => check(global, args),
    }
}

fn check(global: &GlobalArgs, args: CheckArgs) -> anyhow::Result<()> {
    let env = std::env::var(PASSWORD_ENV).ok();
    args.registry.check_rules(false, env.is_some())?;
    if let Some(text) = &args.registry.registry_server {
        args.images.resolve(
            &RegistryServer::parse(text).map_err(crate::usage::UsageError::from_display)?,
        )?;
    }
    let resolved = args.registry.resolve(
        PasswordSources {
            env,
            stdin: &mut StdinWithDeadline::stdin(global.timeout),
            warnings: &mut std::io::stderr(),
        },
        None,
    )?;
    let images = args.images.resolve(&resolved.server)?;
    let tag = args.images.image_tag.as_deref();
    let images =
        args.images_from
            .pin(&resolved.server, tag.unwrap_or(DEFAULT_IMAGE_TAG), images)?;
    let options = args.tls.options(global, &args.registry)?;
    block_on(check_and_report(
        &resolved.server,
        resolved.auth.as_ref(),
        &images.all(),
        &options,
        "",
    ))?
}

fn update(global: &GlobalArgs, args: UpdateArgs) -> anyhow::Result<()> {
    let registry = &args.registry;
    let env = std::env::var(PASSWORD_ENV).ok();
    // Usage errors first: nothing is contacted or read, and no warning printed, for a bad
    // command line.
    check_global(global)?;
    if let Some(name) = &args.registry_secret {
        return update_to_external(global, &args, name);
    }
    registry.check_rules(true, env.is_some())?;
    if !registry.has_credentials() {
        usage_bail!(
            "registry update needs credentials: --registry-key FILE, or --registry-username with a password"
        );
    }
    let expires_flag = args.expiry.check(registry)?;
    let options = args.tls.options(global, registry)?;
    // The credentials are read and checked before anything is contacted; only the registry
    // may come from the cluster (the one already stored), so a stand-in fills it for now.
    let resolved = registry.resolve(
        PasswordSources {
            env,
            stdin: &mut StdinWithDeadline::stdin(global.timeout),
            warnings: &mut std::io::stderr(),
        },
        Some(RegistryServer::default()),
    )?;
    let auth = resolved.auth.context("no credentials given")?;
    let expiry = recorded_expiry(expires_flag, Some(&auth));
    sparrow_core::auth::check_fits_in_secret(&resolved.server, &auth)?;
    let given_server = registry
        .registry_server
        .is_some()
        .then_some(resolved.server);
    block_on(async {
        // Rotation is often done during maintenance: an API server restarting is waited for.
        let cluster = connect_retrying(global).await?;
        let deployed = switch::read_deployed(&cluster, &global.namespace, global.timeout).await?;
        if let Some((deployment, DeployedCredential::External(from))) = &deployed {
            let wanted = switch::ToOwn {
                server: given_server,
                auth: &auth,
                expiry: expiry.as_ref(),
                check: (!args.skip_registry_check).then_some(&options),
            };
            return switch::to_own(&cluster, global, deployment, from, wanted).await;
        }
        let server = match given_server {
            Some(server) => server,
            None => {
                let key =
                    stored_registry_key(&cluster.client, &global.namespace, global.timeout).await?;
                RegistryServer::parse(&key)
                    .with_context(|| format!("the stored registry {key:?}"))?
            }
        };
        if !args.skip_registry_check {
            match deployed_images(&cluster.client, &global.namespace, global.timeout).await? {
                Some(images) => {
                    crate::say!("Checking the deployed images with the new credentials:");
                    check_and_report(
                        &server,
                        Some(&auth),
                        &images.all(),
                        &options,
                        "; the credentials were not changed (or pass --skip-registry-check)",
                    )
                    .await?;
                }
                None => crate::say!(
                    "No controller Deployment found: the new credentials are stored without an image check."
                ),
            }
        }
        let secret = kind_source_pull_secret(
            &global.namespace,
            dockerconfigjson(&server, &auth),
            expiry.as_ref(),
            false,
        );
        let copies =
            update_source(&cluster.client, &global.namespace, &secret, global.timeout).await?;
        if expiry.is_none() {
            drop_stale_credential_expiry(&cluster.client, &global.namespace, global.timeout)
                .await?;
        }
        crate::say!(
            "Registry credentials ({}) for {} updated in Secret {}/{}; the controller will refresh {copies} cop{}.",
            auth.kind(),
            server.auth_key(),
            global.namespace,
            sparrow_core::names::PULL_SECRET_NAME,
            if copies == 1 { "y" } else { "ies" }
        );
        match &expiry {
            Some(expiry) => crate::say!(
                "The credential expires {} (from {}).",
                expiry.rfc3339(),
                super::deploy::expiry_origin(expiry.source)
            ),
            None => crate::say!(
                "No expiry is known for the credential (give --registry-credential-expires DATE if it has one)."
            ),
        }
        anyhow::Ok(())
    })?
}

/// `registry update --registry-secret NAME`: every flag checked before the cluster is contacted.
fn update_to_external(global: &GlobalArgs, args: &UpdateArgs, name: &str) -> anyhow::Result<()> {
    let name = crate::external_secret::check_registry_secret_name(name, &global.namespace)?;
    let server = args
        .registry
        .registry_server
        .as_deref()
        .map(RegistryServer::parse)
        .transpose()
        .map_err(crate::usage::UsageError::from_display)?;
    let options = args.tls.options(global, &args.registry)?;
    block_on(async {
        let cluster = connect_retrying(global).await?;
        let wanted = switch::ToExternal {
            name: &name,
            server,
            check: (!args.skip_registry_check).then_some(&options),
        };
        switch::to_external(&cluster, global, wanted).await
    })?
}
