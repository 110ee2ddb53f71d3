//! `deploy`: read what must be kept (the webhook certificate, a foreign pull secret), then
//! server-side apply every object of the control plane in order.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sparrow_core::names::{FIELD_MANAGER, PULL_SECRET_NAME, TLS_SECRET_NAME};
use sparrow_core::{ControlPlane, Object, WebhookTls};

use crate::error::ClusterError;
use crate::secrets::is_ours;
use crate::timed;

/// What `deploy` must keep from the cluster as it is.
#[derive(Debug, Default)]
pub struct Existing {
    /// The webhook certificate already in use: reused so the running controller and the
    /// webhook's caBundle never disagree.
    pub tls: Option<WebhookTls>,
}

/// Reads the existing TLS secret and refuses a pull secret Sparrow does not own.
/// Two GETs; a missing namespace simply means nothing exists yet.
pub async fn read_existing(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
) -> Result<Existing, ClusterError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let action = format!("reading Secret {namespace}/{PULL_SECRET_NAME}");
    if let Some(secret) = timed(&action, timeout, secrets.get_opt(PULL_SECRET_NAME)).await?
        && !is_ours(&secret)
    {
        return Err(ClusterError::ForeignSecret {
            namespace: namespace.to_owned(),
            name: PULL_SECRET_NAME.to_owned(),
        });
    }
    let action = format!("reading Secret {namespace}/{TLS_SECRET_NAME}");
    let tls = timed(&action, timeout, secrets.get_opt(TLS_SECRET_NAME))
        .await?
        .and_then(|secret| {
            let data = secret.data?;
            let text = |key: &str| {
                data.get(key)
                    .and_then(|b| String::from_utf8(b.0.clone()).ok())
                    .filter(|t| !t.is_empty())
            };
            Some(WebhookTls {
                ca_pem: text("ca.crt")?,
                cert_pem: text("tls.crt")?,
                key_pem: text("tls.key")?,
            })
        });
    Ok(Existing { tls })
}

/// Server-side applies every object in order (field manager `sparrowctl`, forced: we own
/// these fields). `on_applied` is called after each object.
pub async fn apply_control_plane(
    client: &kube::Client,
    plane: &ControlPlane,
    timeout: Duration,
    mut on_applied: impl FnMut(&Object),
) -> Result<(), ClusterError> {
    for object in &plane.objects {
        apply_object(client, object, timeout).await?;
        on_applied(object);
    }
    Ok(())
}

/// Server-side applies one object.
pub async fn apply_object(
    client: &kube::Client,
    object: &Object,
    timeout: Duration,
) -> Result<(), ClusterError> {
    match object {
        Object::Namespace(o) => apply(Api::all(client.clone()), o, object, timeout).await,
        Object::Secret(o) => apply(namespaced(client, object), o, object, timeout).await,
        Object::ServiceAccount(o) => apply(namespaced(client, object), o, object, timeout).await,
        Object::ClusterRole(o) => apply(Api::all(client.clone()), o, object, timeout).await,
        Object::ClusterRoleBinding(o) => apply(Api::all(client.clone()), o, object, timeout).await,
        Object::Role(o) => apply(namespaced(client, object), o, object, timeout).await,
        Object::RoleBinding(o) => apply(namespaced(client, object), o, object, timeout).await,
        Object::Deployment(o) => apply(namespaced(client, object), o, object, timeout).await,
        Object::Service(o) => apply(namespaced(client, object), o, object, timeout).await,
        Object::MutatingWebhookConfiguration(o) => {
            apply(Api::all(client.clone()), o, object, timeout).await
        }
    }
}

fn namespaced<K>(client: &kube::Client, object: &Object) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    Api::namespaced(
        client.clone(),
        object.meta().namespace.as_deref().unwrap_or("default"),
    )
}

async fn apply<K>(
    api: Api<K>,
    value: &K,
    object: &Object,
    timeout: Duration,
) -> Result<(), ClusterError>
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let action = format!("applying {}", object.describe());
    timed(
        &action,
        timeout,
        api.patch(object.name(), &params, &Patch::Apply(value)),
    )
    .await?;
    Ok(())
}
