//! `deploy`: read what must be kept or refused (the webhook certificate, a foreign pull
//! secret, a namespace Sparrow did not create, another mesh's cluster-wide objects), then
//! server-side apply every part of the control plane in order; the webhook configuration
//! separately, once the controller can answer it.

use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use sparrow_core::names::{
    CONTROLLER_NAME, CREDENTIAL_PROVIDER_CONFIG_KEY, CREDENTIAL_PROVIDER_SECRET_NAME,
    FIELD_MANAGER, PULL_SECRET_NAME, WEBHOOK_CONFIG_NAME,
};
use sparrow_core::ownership::{belongs_to, mesh_of};
use sparrow_core::{ControlPlane, Object, PARTS};

use crate::error::{ClusterError, is_already_exists};
use crate::parts::{api, read_part};
use crate::runtime::webhook_certs::bundle_of;
use crate::secrets::is_ours;
use crate::timed;

/// Whether the mesh namespace is Sparrow's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NamespaceOwner {
    /// It does not exist: deploy creates it, marked as created by Sparrow.
    #[default]
    Absent,
    /// Deploy created it (it carries this mesh's marker).
    Sparrow,
    /// It existed before: used as it is, never labelled, never deleted by `remove`.
    Someone,
}

/// What `deploy` must keep from the cluster as it is.
#[derive(Debug, Default)]
pub struct Existing {
    /// Who owns the mesh namespace.
    pub namespace: NamespaceOwner,
    /// The webhook configuration exists already (a previous deploy).
    pub webhook_present: bool,
    /// The mesh's pull secret exists already (a previous deploy with credentials).
    pub pull_secret_present: bool,
    /// The Secret another tool keeps that the controller copies now (`--registry-secret` of
    /// a previous deploy), as its Deployment says.
    pub registry_secret: Option<String>,
    /// The credential-provider plugin the controller runs now (a previous deploy's
    /// `--registry-credential-provider`), with its stored config.
    pub credential_plugin: Option<sparrow_core::config::CredentialPlugin>,
    /// The mesh namespace is being deleted (a `remove` moments ago): its uid. Nothing can be
    /// created in it until it is gone ([`wait_namespace_gone`]).
    pub namespace_terminating: Option<String>,
}

/// One step of applying, reported as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyStep {
    /// An object was applied (`Kind ns/name`).
    Applied(String),
    /// The namespace existed and is not Sparrow's: used as it is.
    NamespaceKept(String),
}

/// Reads, before any write, everything that decides what deploy may do: refuses a pull
/// secret Sparrow does not own and cluster-wide objects of another mesh; finds who owns the
/// namespace.
pub async fn read_existing(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
) -> Result<Existing, ClusterError> {
    let mut existing = Existing::default();
    for part in PARTS.iter().filter(|p| !p.kind.namespaced()) {
        let Some(found) = read_part(client, part, namespace, timeout).await? else {
            continue;
        };
        let labels = found.metadata.labels.as_ref();
        if part.is_namespace() {
            if found.metadata.deletion_timestamp.is_some() {
                existing.namespace_terminating =
                    Some(found.metadata.uid.clone().unwrap_or_default());
            }
            existing.namespace = if belongs_to(labels, namespace) {
                NamespaceOwner::Sparrow
            } else {
                NamespaceOwner::Someone
            };
        } else if let Some(other) = mesh_of(labels).filter(|m| *m != namespace) {
            return Err(ClusterError::OtherMesh {
                object: part.describe(namespace),
                mesh: other.to_owned(),
            });
        }
        existing.webhook_present |= part.gates_admission();
    }
    if existing.namespace == NamespaceOwner::Absent {
        return Ok(existing);
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let action = format!("reading Secret {namespace}/{PULL_SECRET_NAME}");
    if let Some(secret) = timed(&action, timeout, secrets.get_opt(PULL_SECRET_NAME)).await? {
        if !is_ours(&secret) {
            return Err(ClusterError::ForeignSecret {
                namespace: namespace.to_owned(),
                name: PULL_SECRET_NAME.to_owned(),
            });
        }
        existing.pull_secret_present = true;
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let action = format!("reading Deployment {namespace}/{CONTROLLER_NAME}");
    let deployment = timed(&action, timeout, deployments.get_opt(CONTROLLER_NAME)).await?;
    existing.registry_secret = deployment
        .as_ref()
        .and_then(sparrow_core::manifests::registry_secret_in);
    if let Some((provider, image)) = deployment
        .as_ref()
        .and_then(sparrow_core::manifests::credential_plugin_in)
    {
        let action = format!("reading Secret {namespace}/{CREDENTIAL_PROVIDER_SECRET_NAME}");
        let config = timed(
            &action,
            timeout,
            secrets.get_opt(CREDENTIAL_PROVIDER_SECRET_NAME),
        )
        .await?
        .and_then(|s| s.data?.remove(CREDENTIAL_PROVIDER_CONFIG_KEY))
        .and_then(|bytes| String::from_utf8(bytes.0).ok());
        existing.credential_plugin = config.map(|config| sparrow_core::config::CredentialPlugin {
            config,
            provider,
            image,
        });
    }
    Ok(existing)
}

/// The Secret `name` of the mesh namespace that `--registry-secret` names (`None`: it does
/// not exist). Read once by `deploy` to check it; never written.
pub async fn read_registry_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<Option<Secret>, ClusterError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let action = format!("reading Secret {namespace}/{name}");
    timed(&action, timeout, secrets.get_opt(name)).await
}

/// Waits until the namespace being deleted (uid `uid`) is gone, for up to `timeout`.
/// Kubernetes refuses every object created in it meanwhile ("is being terminated").
pub async fn wait_namespace_gone(
    client: &kube::Client,
    namespace: &str,
    uid: &str,
    timeout: Duration,
) -> Result<(), ClusterError> {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::runtime::wait::{await_condition, conditions::is_deleted};
    let api: Api<Namespace> = Api::all(client.clone());
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let gone = await_condition(api.clone(), namespace, is_deleted(uid));
        match tokio::time::timeout_at(deadline, gone).await {
            Ok(Ok(_)) => return Ok(()),
            // A watch that breaks (API restart, 410) is started again until the deadline.
            Ok(Err(error)) => {
                tracing::debug!(%error, "watching Namespace {namespace}; retrying");
                let pause = tokio::time::Instant::now() + Duration::from_millis(500);
                tokio::time::sleep_until(pause.min(deadline)).await;
            }
            Err(_) => {
                return Err(ClusterError::NamespaceTerminating {
                    namespace: namespace.to_owned(),
                    seconds: timeout.as_secs().max(1),
                });
            }
        }
    }
}

/// Applies every object but the webhook configuration, in order (field manager
/// `sparrowctl`, forced: we own these fields). The namespace is created only when absent
/// and applied only when Sparrow created it; someone else's is used untouched.
pub async fn apply_control_plane(
    client: &kube::Client,
    plane: &ControlPlane,
    existing: &Existing,
    timeout: Duration,
    mut on_step: impl FnMut(ApplyStep),
) -> Result<(), ClusterError> {
    for object in plane.objects.iter().filter(|o| !o.gates_admission()) {
        if let Object::Namespace(_) = object {
            let step = ensure_namespace(client, object, existing.namespace, timeout).await?;
            on_step(step);
            continue;
        }
        apply_object(client, object, timeout).await?;
        on_step(ApplyStep::Applied(object.describe()));
    }
    Ok(())
}

/// Applies the webhook configuration: the last step, once the controller can answer.
pub async fn apply_webhook(
    client: &kube::Client,
    plane: &ControlPlane,
    timeout: Duration,
) -> Result<Option<String>, ClusterError> {
    let Some(object) = plane.objects.iter().find(|o| o.gates_admission()) else {
        return Ok(None);
    };
    let Object::MutatingWebhookConfiguration(rendered) = object else {
        apply_object(client, object, timeout).await?;
        return Ok(Some(object.describe()));
    };
    // The controller owns caBundle (its own field manager); deploy renders none. The live
    // one is carried over so that no apply ever blanks it, and when the set of webhooks
    // changes (another injection mode) the object is replaced whole: an apply would keep a
    // removed webhook's caBundle, owned by the controller, and with it a webhook half gone.
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let action = format!("reading {}", object.describe());
    let live = timed(&action, timeout, api.get_opt(WEBHOOK_CONFIG_NAME)).await?;
    let Some(live) = live else {
        apply_object(client, object, timeout).await?;
        return Ok(Some(object.describe()));
    };
    let bundle = bundle_of(&live);
    let mut wanted = rendered.clone();
    for hook in wanted.webhooks.iter_mut().flatten() {
        hook.client_config.ca_bundle = (!bundle.is_empty()).then(|| ByteString(bundle.clone()));
    }
    let names = |c: &MutatingWebhookConfiguration| -> Vec<String> {
        c.webhooks
            .iter()
            .flatten()
            .map(|w| w.name.clone())
            .collect()
    };
    if names(&live) == names(&wanted) {
        apply_object(
            client,
            &Object::MutatingWebhookConfiguration(wanted),
            timeout,
        )
        .await?;
    } else {
        wanted.metadata.resource_version = live.metadata.resource_version;
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        let action = format!("replacing {}", object.describe());
        timed(
            &action,
            timeout,
            api.replace(WEBHOOK_CONFIG_NAME, &params, &wanted),
        )
        .await?;
    }
    Ok(Some(object.describe()))
}

async fn ensure_namespace(
    client: &kube::Client,
    object: &Object,
    owner: NamespaceOwner,
    timeout: Duration,
) -> Result<ApplyStep, ClusterError> {
    let kept = || ApplyStep::NamespaceKept(object.name().to_owned());
    match owner {
        NamespaceOwner::Sparrow => {
            apply_object(client, object, timeout).await?;
            Ok(ApplyStep::Applied(object.describe()))
        }
        NamespaceOwner::Someone => Ok(kept()),
        NamespaceOwner::Absent => {
            // Create, never apply: if someone made it meanwhile, it is theirs.
            let api = api(client, object.kind(), None);
            let value: kube::api::DynamicObject = serde_json::from_value(object.to_json())
                .map_err(|e| ClusterError::Internal(format!("rendering the namespace: {e}")))?;
            let action = format!("creating {}", object.describe());
            let params = PostParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PostParams::default()
            };
            match crate::within(&action, timeout, api.create(&params, &value)).await? {
                Ok(_) => Ok(ApplyStep::Applied(object.describe())),
                Err(error) if is_already_exists(&error) => Ok(kept()),
                Err(error) => Err(ClusterError::api(action, error)),
            }
        }
    }
}

/// Server-side applies one object.
pub async fn apply_object(
    client: &kube::Client,
    object: &Object,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let api = api(client, object.kind(), object.meta().namespace.as_deref());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let action = format!("applying {}", object.describe());
    timed(
        &action,
        timeout,
        api.patch(object.name(), &params, &Patch::Apply(object.to_json())),
    )
    .await?;
    Ok(())
}
