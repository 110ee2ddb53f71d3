//! `sparrowctl remove`: the webhook, the control plane, every labelled pull secret in every
//! namespace, then the namespace.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use sparrow_core::manifests::pull_secret_selector;
use sparrow_kube::remove::{RemoveStep, remove};

use crate::GlobalArgs;
use crate::cluster::{block_on, connect_reporting};
use crate::progress::Progress;
use crate::usage::usage_bail;

/// Flags of `remove`.
#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short = 'y', long)]
    yes: bool,
}

/// Runs `remove`.
pub fn run(global: &GlobalArgs, args: RemoveArgs) -> anyhow::Result<()> {
    if !args.yes {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            usage_bail!(
                "refusing to remove Sparrow Mesh without confirmation: stdin is not a terminal; pass --yes"
            );
        }
        print!(
            "Remove Sparrow Mesh from namespace {} and delete every Secret labelled {} in every namespace? [y/N] ",
            global.namespace,
            pull_secret_selector()
        );
        std::io::stdout().flush()?;
        let mut answer = String::new();
        stdin.lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            println!("Nothing removed.");
            return Ok(());
        }
    }
    block_on(remove_from_cluster(global))?
}

async fn remove_from_cluster(global: &GlobalArgs) -> anyhow::Result<()> {
    let progress = Progress::new();
    let cluster = connect_reporting(global, &progress).await?;
    let mut deleted = 0usize;
    let report = remove(
        &cluster.client,
        &global.namespace,
        global.timeout,
        |step| match step {
            RemoveStep::Deleted(what) => {
                deleted += 1;
                progress.done(&format!("deleted {what}"));
            }
            RemoveStep::AlreadyGone(what) => progress.working(&format!("{what} already gone")),
        },
    )
    .await?;
    drop(progress);
    println!(
        "Sparrow Mesh removed from namespace {}: {deleted} object(s) deleted, {} registry secret(s) among them.",
        global.namespace,
        report.secrets_deleted.len()
    );
    if report.namespace_kept {
        println!(
            "Namespace {} was kept: Sparrow did not create it.",
            global.namespace
        );
    }
    for secret in &report.foreign_secrets {
        println!(
            "Left untouched: Secret {secret} (not created by Sparrow: no usage=sparrow-registry-key label)."
        );
    }
    if !report.injected_namespaces.is_empty() {
        println!(
            "Pods in these namespaces still carry the sidecar; restart them (kubectl rollout restart) to drop it: {}",
            report.injected_namespaces.join(", ")
        );
    }
    Ok(())
}
