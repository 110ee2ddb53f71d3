//! `sparrowctl registry update`: rotate the registry credentials.

use anyhow::Context as _;
use sparrow_core::manifests::pull_secret;
use sparrow_core::{RegistryServer, dockerconfigjson};
use sparrow_kube::update::{stored_registry_key, update_source};

use crate::GlobalArgs;
use crate::cluster::{block_on, connect};
use crate::credentials::{PASSWORD_ENV, PasswordSources, RegistryArgs};
use crate::usage::usage_bail;

/// `registry` verbs.
#[derive(Debug, clap::Subcommand)]
pub enum RegistryCommand {
    /// Replace the stored registry credentials (rotation); the controller refreshes every copy.
    ///
    /// Without --registry-server the registry already stored is kept.
    ///
    /// Example:
    ///   sparrowctl registry update --registry-username robot2 --registry-password-stdin < pw.txt
    #[command(verbatim_doc_comment)]
    Update(UpdateArgs),
}

/// Flags of `registry update`.
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Runs a `registry` verb.
pub fn run(global: &GlobalArgs, command: RegistryCommand) -> anyhow::Result<()> {
    match command {
        RegistryCommand::Update(args) => update(global, args),
    }
}

fn update(global: &GlobalArgs, args: UpdateArgs) -> anyhow::Result<()> {
    let registry = args.registry;
    let env = std::env::var(PASSWORD_ENV).ok();
    // Usage errors first: nothing is contacted or read for a bad command line.
    registry.check_rules(true, env.is_some())?;
    if !registry.has_credentials() {
        usage_bail!(
            "registry update needs credentials: --registry-key FILE, or --registry-username with a password"
        );
    }
    block_on(async {
        let cluster = connect(global).await?;
        let stored = match &registry.registry_server {
            Some(_) => None,
            None => {
                let key =
                    stored_registry_key(&cluster.client, &global.namespace, global.timeout).await?;
                Some(
                    RegistryServer::parse(&key)
                        .with_context(|| format!("the stored registry {key:?}"))?,
                )
            }
        };
        let resolved = registry.resolve(
            PasswordSources {
                env,
                stdin: &mut std::io::stdin().lock(),
                warnings: &mut std::io::stderr(),
            },
            stored,
        )?;
        let auth = resolved.auth.context("no credentials given")?;
        let secret = pull_secret(&global.namespace, dockerconfigjson(&resolved.server, &auth));
        let copies =
            update_source(&cluster.client, &global.namespace, &secret, global.timeout).await?;
        println!(
            "Registry credentials ({}) for {} updated in Secret {}/{}; the controller will refresh {copies} cop{}.",
            auth.kind(),
            resolved.server.auth_key(),
            global.namespace,
            sparrow_core::names::PULL_SECRET_NAME,
            if copies == 1 { "y" } else { "ies" }
        );
        anyhow::Ok(())
    })?
}
