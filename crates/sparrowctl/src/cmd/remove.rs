//! `sparrowctl remove`: check that `-n` holds a Sparrow control plane, then delete what
//! that mesh created (the webhook first, the control plane, its pull-secret copies, the
//! namespace if deploy created it), and nothing else. With `--adopt-unmarked`, also the
//! parts of an install from before the marker, listed before asking.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::Context as _;
use sparrow_kube::ClusterError;
use sparrow_kube::remove::{
    Plan, Removal, RemoveReport, RemoveStep, Unmarked, execute, observe, plan,
};

use crate::GlobalArgs;
use crate::cluster::{block_on, check_global, connect_reporting};
use crate::progress::Progress;
use crate::usage::usage_bail;

/// Flags of `remove`.
#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short = 'y', long)]
    yes: bool,

    /// Also delete objects named like the control plane's that carry no
    /// sparrow-mesh.io/mesh label: an install made before Sparrow marked what it creates.
    ///
    /// Lists everything it will delete first (the unmarked objects flagged), then asks as
    /// remove always does. Never deletes a Secret sparrow-registry-key Sparrow cannot prove it
    /// made, nor a namespace Sparrow did not create; an object marked for another mesh stops
    /// it with nothing deleted. Without this flag remove names the unmarked objects it leaves.
    #[arg(long)]
    adopt_unmarked: bool,
}

/// The answer at the prompt was not yes: nothing was removed.
#[derive(Debug, thiserror::Error)]
#[error("not confirmed: nothing was removed")]
pub struct NotConfirmed;

/// Runs `remove`.
pub fn run(global: &GlobalArgs, args: RemoveArgs) -> anyhow::Result<()> {
    check_global(global)?;
    if !args.yes && !std::io::stdin().is_terminal() {
        usage_bail!(
            "refusing to remove Sparrow Mesh without confirmation: stdin is not a terminal; pass --yes"
        );
    }
    let unmarked = if args.adopt_unmarked {
        Unmarked::Adopt
    } else {
        Unmarked::Leave
    };
    block_on(remove_from_cluster(global, args.yes, unmarked))?
}

async fn remove_from_cluster(
    global: &GlobalArgs,
    yes: bool,
    unmarked: Unmarked,
) -> anyhow::Result<()> {
    let mesh = global.namespace.as_str();
    let progress = Progress::new();
    let cluster = connect_reporting(global, &progress).await?;
    progress.working("reading what Sparrow installed");
    let observed = observe(&cluster.client, mesh, global.timeout).await?;
    let removal = match plan(&observed, unmarked) {
        Plan::NothingInstalled => {
            drop(progress);
            crate::say!(
                "Nothing installed: no Sparrow Mesh in namespace {mesh} or anywhere else; nothing deleted."
            );
            return Ok(());
        }
        Plan::NotHere {
            elsewhere,
            unmarked,
        } => {
            drop(progress);
            for object in &unmarked {
                crate::say!("Left untouched: {object}.");
            }
            return Err(ClusterError::NoControlPlane {
                namespace: mesh.to_owned(),
                elsewhere,
            }
            .into());
        }
        Plan::OtherMesh { object, owner } => {
            return Err(ClusterError::AdoptOtherMesh {
                object,
                owner,
                namespace: mesh.to_owned(),
            }
            .into());
        }
        Plan::Remove(removal) => removal,
    };
    let progress = if unmarked == Unmarked::Adopt {
        // The list goes out whole, before any question and any deletion.
        drop(progress);
        crate::say!("remove --adopt-unmarked will delete, in this order:");
        for line in removal.listing() {
            crate::say!("  {line}");
        }
        Progress::new()
    } else {
        progress
    };
    if !yes {
        drop(progress);
        confirm(mesh, &removal)?;
        return run_removal(global, &cluster, &removal, &Progress::new()).await;
    }
    run_removal(global, &cluster, &removal, &progress).await
}

/// Asks on the terminal; anything but yes is [`NotConfirmed`].
fn confirm(mesh: &str, removal: &Removal) -> anyhow::Result<()> {
    // A prompt nobody can read is not a yes: a closed stdout is an error, and nothing is removed.
    let mut out = std::io::stdout().lock();
    let unmarked = match removal.unmarked_parts() {
        0 => String::new(),
        n => format!(" ({n} of them unmarked)"),
    };
    write!(
        out,
        "Remove Sparrow Mesh from namespace {mesh}: {} object(s) of the control plane{unmarked} and {} copie(s) of its registry secret? [y/N] ",
        removal.parts.len(),
        removal.copies.len()
    )
    .and_then(|()| out.flush())
    .context("writing the confirmation prompt (or pass --yes)")?;
    drop(out);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(NotConfirmed.into())
    }
}

async fn run_removal(
    global: &GlobalArgs,
    cluster: &sparrow_kube::Cluster,
    removal: &Removal,
    progress: &Progress,
) -> anyhow::Result<()> {
    let mesh = global.namespace.as_str();
    let report = execute(
        &cluster.client,
        mesh,
        removal,
        global.timeout,
        |step| match step {
            RemoveStep::Deleted(what) => progress.done(&format!("deleted {what}")),
            RemoveStep::AlreadyGone(what) => progress.working(&format!("{what} already gone")),
        },
    )
    .await?;
    print_report(mesh, &report);
    Ok(())
}

fn print_report(mesh: &str, report: &RemoveReport) {
    crate::say!(
        "Sparrow Mesh removed from namespace {mesh}: {} object(s) deleted, {} registry secret(s) among them.",
        report.deleted,
        report.secrets_deleted.len()
    );
    if let Some(why) = &report.namespace_kept {
        crate::say!("Namespace {mesh} was kept: {why}.");
    }
    for object in &report.kept {
        crate::say!("Left untouched: {object}.");
    }
    for secret in &report.foreign_secrets {
        crate::say!(
            "Left untouched: Secret {secret} (Sparrow cannot prove it made it: it lacks the controller's proof)."
        );
    }
    if !report.injected_namespaces.is_empty() {
        crate::say!(
            "Pods in these namespaces still carry the sidecar; restart them (kubectl rollout restart) to drop it: {}",
            report.injected_namespaces.join(", ")
        );
    }
}
