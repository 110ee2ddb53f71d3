//! `remove`: read, decide ([`plan`]), then delete exactly what was judged ours: the webhook
//! first (so no pod creation depends on a controller about to go), the rest of the control
//! plane, the pull-secret copies the controller proves it made, the key they are proven
//! with, then the namespace if deploy created it.

mod contents;
pub mod plan;

use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ListParams, ObjectMeta};
use sparrow_core::manifests::pull_secret_selector;
use sparrow_core::names::{COPY_KEY_SECRET_NAME, PULL_SECRET_NAME};
use sparrow_core::ownership::{CopyKey, belongs_to, is_copy_of};
use sparrow_core::{Kind, PARTS, Part};

use crate::error::ClusterError;
use crate::parts::{api, delete_exact, part_api, read_part};
use crate::secrets::{copy_key_of, foreign_pull_secrets, namespaces_with_sidecar};
use crate::timed;

pub use plan::{Found, NamespaceFate, Observed, Plan, Removal, Target, Unmarked, plan};

/// Deletions run this many at a time (thousands of copies must go in seconds).
const DELETE_CONCURRENCY: usize = 16;

/// One step of `remove`, reported as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveStep {
    /// An object was deleted (`Kind ns/name`).
    Deleted(String),
    /// An object was already gone.
    AlreadyGone(String),
}

/// What `remove` found besides what it deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RemoveReport {
    /// Pull secrets deleted, the source and the copies (`ns/name`).
    pub secrets_deleted: Vec<String>,
    /// Objects deleted in all.
    pub deleted: usize,
    /// Secrets named `sparrow-registry-key` the controller cannot prove it made, left
    /// untouched (`ns/name`).
    pub foreign_secrets: Vec<String>,
    /// Objects named like ours that another owner made, left untouched (`Kind ns/name`, why).
    pub kept: Vec<String>,
    /// Namespaces whose pods still carry the sidecar: they need a restart.
    pub injected_namespaces: Vec<String>,
    /// Why the namespace was kept, when it was.
    pub namespace_kept: Option<String>,
}

/// Reads everything `remove` decides on; writes nothing.
pub async fn observe(
    client: &kube::Client,
    mesh: &str,
    timeout: Duration,
) -> Result<Observed, ClusterError> {
    let mut parts = Vec::new();
    for part in PARTS {
        let found = if plan::names_its_namespace(part.kind) {
            read_whole(client, part, mesh, timeout).await?
        } else {
            read_part(client, part, mesh, timeout)
                .await?
                .map(|m| found(m.metadata))
        };
        parts.push((*part, found));
    }
    let labelled_secrets = labelled_secrets(client, timeout).await?;
    let copy_key = read_key(client, mesh, timeout).await?;
    let namespace_is_ours = parts.iter().any(|(p, f)| {
        p.is_namespace()
            && f.as_ref()
                .is_some_and(|f| belongs_to(Some(&f.labels), mesh))
    });
    let foreign_in_namespace = if namespace_is_ours {
        contents::foreign_objects(client, mesh, timeout).await?
    } else {
        Vec::new()
    };
    Ok(Observed {
        mesh: mesh.to_owned(),
        parts,
        labelled_secrets,
        copy_key,
        foreign_in_namespace,
    })
}

/// A part whose spec names the namespace it serves, with [`Found::refers_to`].
async fn read_whole(
    client: &kube::Client,
    part: &Part,
    mesh: &str,
    timeout: Duration,
) -> Result<Option<Found>, ClusterError> {
    let action = format!("reading {}", part.describe(mesh));
    let object = timed(
        &action,
        timeout,
        part_api(client, part, mesh).get_opt(part.name(mesh)),
    )
    .await?;
    Ok(object.map(|o| Found {
        refers_to: plan::referenced_namespaces(part.kind, &o.data),
        ..found(o.metadata)
    }))
}

/// The mesh's copy key and its Secret, when there is one of this mesh.
async fn read_key(
    client: &kube::Client,
    mesh: &str,
    timeout: Duration,
) -> Result<Option<(CopyKey, Found)>, ClusterError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), mesh);
    let action = format!("reading Secret {mesh}/{COPY_KEY_SECRET_NAME}");
    let Some(secret) = timed(&action, timeout, secrets.get_opt(COPY_KEY_SECRET_NAME)).await? else {
        return Ok(None);
    };
    let key = copy_key_of(&secret, mesh).map_err(|detail| ClusterError::BadCopyKey {
        namespace: mesh.to_owned(),
        detail,
    })?;
    Ok(key.map(|key| (key, found(secret.metadata))))
}

fn found(meta: ObjectMeta) -> Found {
    Found {
        terminating: meta.deletion_timestamp.is_some(),
        namespace: meta.namespace,
        name: meta.name.unwrap_or_default(),
        uid: meta.uid,
        labels: meta.labels.unwrap_or_default(),
        annotations: meta.annotations.unwrap_or_default(),
        refers_to: Vec::new(),
    }
}

async fn labelled_secrets(
    client: &kube::Client,
    timeout: Duration,
) -> Result<Vec<Found>, ClusterError> {
    let all: Api<Secret> = Api::all(client.clone());
    let list = timed(
        "listing Secrets labelled usage=sparrow-registry-key",
        timeout,
        all.list_metadata(&ListParams::default().labels(&pull_secret_selector())),
    )
    .await?;
    Ok(list.items.into_iter().map(|m| found(m.metadata)).collect())
}

/// Carries out `removal` for the mesh in `mesh`, reporting each step.
pub async fn execute(
    client: &kube::Client,
    mesh: &str,
    removal: &Removal,
    timeout: Duration,
    mut on_step: impl FnMut(RemoveStep),
) -> Result<RemoveReport, ClusterError> {
    let mut report = RemoveReport {
        kept: removal.kept.clone(),
        ..RemoveReport::default()
    };
    for target in &removal.parts {
        let existed = delete_target(client, target, timeout).await?;
        report_step(&mut report, &mut on_step, target, existed);
    }
    // Copies, then again for any a controller still shutting down made meanwhile; the key
    // last, since it is what proves them.
    let key = read_key(client, mesh, timeout).await?.map(|(key, _)| key);
    let mut copies = removal.copies.clone();
    for _round in 0..3 {
        if copies.is_empty() {
            break;
        }
        for (target, existed) in delete_all(client, &copies, timeout).await? {
            report_step(&mut report, &mut on_step, &target, existed);
        }
        copies = copies_of(client, mesh, key.as_ref(), timeout).await?;
    }
    report.foreign_secrets = foreign_pull_secrets(client, mesh, key.as_ref(), timeout).await?;
    if let Some(target) = &removal.copy_key {
        let existed = delete_target(client, target, timeout).await?;
        report_step(&mut report, &mut on_step, target, existed);
    }
    report.injected_namespaces = injected_namespaces(client, timeout).await?;
    match &removal.namespace {
        NamespaceFate::Delete(target) => {
            let existed = delete_target(client, target, timeout).await?;
            report_step(&mut report, &mut on_step, target, existed);
        }
        NamespaceFate::Kept(why) => report.namespace_kept = Some(why.clone()),
        NamespaceFate::Terminating => {
            on_step(RemoveStep::AlreadyGone(format!(
                "Namespace {mesh} (terminating)"
            )));
        }
        NamespaceFate::Gone => on_step(RemoveStep::AlreadyGone(format!("Namespace {mesh}"))),
    }
    Ok(report)
}

fn report_step(
    report: &mut RemoveReport,
    on_step: &mut impl FnMut(RemoveStep),
    target: &Target,
    existed: bool,
) {
    if !existed {
        on_step(RemoveStep::AlreadyGone(target.describe()));
        return;
    }
    report.deleted += 1;
    if target.kind == Kind::Secret && target.name == PULL_SECRET_NAME {
        report.secrets_deleted.push(format!(
            "{}/{}",
            target.namespace.as_deref().unwrap_or_default(),
            target.name
        ));
    }
    on_step(RemoveStep::Deleted(target.describe()));
}

async fn delete_target(
    client: &kube::Client,
    target: &Target,
    timeout: Duration,
) -> Result<bool, ClusterError> {
    let api = api(client, target.kind, target.namespace.as_deref());
    let action = format!("deleting {}", target.describe());
    delete_exact(&api, &target.name, target.uid.clone(), &action, timeout).await
}

async fn delete_all(
    client: &kube::Client,
    targets: &[Target],
    timeout: Duration,
) -> Result<Vec<(Target, bool)>, ClusterError> {
    let mut results: Vec<(Target, bool)> = futures::stream::iter(targets.iter().cloned())
        .map(|target| async move {
            let existed = delete_target(client, &target, timeout).await?;
            Ok::<_, ClusterError>((target, existed))
        })
        .buffer_unordered(DELETE_CONCURRENCY)
        .try_collect()
        .await?;
    results.sort_by_key(|(t, _)| t.describe());
    Ok(results)
}

async fn copies_of(
    client: &kube::Client,
    mesh: &str,
    key: Option<&CopyKey>,
    timeout: Duration,
) -> Result<Vec<Target>, ClusterError> {
    Ok(labelled_secrets(client, timeout)
        .await?
        .into_iter()
        .filter(|s| s.namespace.as_deref() != Some(mesh))
        .filter(|s| is_copy_of(Some(&s.labels), Some(&s.annotations), mesh))
        .filter(|s| plan::is_proven(key, mesh, s))
        .map(|s| Target {
            kind: Kind::Secret,
            namespace: s.namespace,
            name: s.name,
            uid: s.uid,
            unmarked: false,
        })
        .collect())
}

/// Namespaces with pods that carry the sidecar.
pub async fn injected_namespaces(
    client: &kube::Client,
    timeout: Duration,
) -> Result<Vec<String>, ClusterError> {
    let namespaces = namespaces_with_sidecar(client, None, timeout).await?;
    Ok(namespaces.into_iter().collect())
}

/// [`observe`], [`plan`] and [`execute`] in one: removes the mesh in `mesh` (and, with
/// [`Unmarked::Adopt`], the parts of an install from before the marker). Nothing installed
/// is an empty report; a namespace that holds no control plane, or an object another mesh
/// claims while adopting, is an error, with nothing deleted.
pub async fn remove(
    client: &kube::Client,
    mesh: &str,
    unmarked: Unmarked,
    timeout: Duration,
    on_step: impl FnMut(RemoveStep),
) -> Result<RemoveReport, ClusterError> {
    match plan(&observe(client, mesh, timeout).await?, unmarked) {
        Plan::NothingInstalled => Ok(RemoveReport::default()),
        Plan::Remove(removal) => execute(client, mesh, &removal, timeout, on_step).await,
        Plan::NotHere { elsewhere, .. } => Err(ClusterError::NoControlPlane {
            namespace: mesh.to_owned(),
            elsewhere,
        }),
        Plan::OtherMesh { object, owner } => Err(ClusterError::AdoptOtherMesh {
            object,
            owner,
            namespace: mesh.to_owned(),
        }),
    }
}
