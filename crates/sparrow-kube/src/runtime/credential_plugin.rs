//! The source pull secret kept fresh by a kubelet credential-provider plugin: the leader runs
//! the plugin as the kubelet would ([`sparrow_credential_provider::run`]), turns its answer
//! into the `.dockerconfigjson` a static credential would have ([`pull_secret`]) and writes
//! it into `sparrow-registry-key`, recording when it expires and when the plugin runs next;
//! the copy machinery carries it to every copy. A failed run writes only a note of why
//! (`sparrow-mesh.io/refresh-failed`) and leaves the last good credential in place. When to
//! run is decided by the pure schedule in [`sparrow_core::credential_provider`]; the loop
//! that follows it is the controller's.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use sparrow_core::CredentialExpiry;
use sparrow_core::RegistryServer;
use sparrow_core::credential_provider::{Provider, PullSecretError, expires_at, pull_secret};
use sparrow_core::expiry::{ExpirySource, rfc3339};
use sparrow_core::manifests::expiring_source_pull_secret;
use sparrow_core::names::{
    CONTROLLER_NAME, CREDENTIAL_KIND_ANNOTATION, NEXT_REFRESH_ANNOTATION, PULL_SECRET_NAME,
    REFRESH_FAILED_ANNOTATION, REFRESHED_AT_ANNOTATION,
};
use sparrow_credential_provider::{Limits, RunError};

use crate::error::{ClusterError, is_already_exists, is_not_found};
use crate::within;

/// How long a token requested for the plugin lives (the API server's minimum is 10 minutes).
const TOKEN_LIFETIME: i64 = 600;

/// Why a refresh failed, in one line without a credential.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The plugin could not be run, failed, or answered nonsense.
    #[error(transparent)]
    Plugin(#[from] RunError),
    /// Its answer holds no usable credential for the registry.
    #[error("the plugin's answer is unusable: {0}")]
    Answer(#[from] PullSecretError),
    /// A token for the controller's ServiceAccount could not be had, or the Secret written.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// What a good refresh obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Obtained {
    /// When the plugin answered (seconds since the epoch).
    pub at: i64,
    /// How long the answer may be used; `None`: not to be cached (refresh at the floor).
    pub lifetime: Option<Duration>,
    /// When the credential expires, when that is known.
    pub expires: Option<i64>,
}

/// What the source records of the last refresh, so a new leader keeps the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recorded {
    /// When the plugin was to run next.
    pub next_refresh: Option<i64>,
    /// When the credential it holds expires.
    pub expires: Option<i64>,
    /// Whether the Secret holds a credential at all.
    pub present: bool,
}

/// Runs one plugin for the mesh and writes its credential into the source pull secret.
pub struct PluginRefresher {
    client: kube::Client,
    mesh: String,
    server: RegistryServer,
    images: Vec<String>,
    provider: Provider,
    bin_dir: PathBuf,
    limits: Limits,
    api_timeout: Duration,
}

impl PluginRefresher {
    /// A refresher for the mesh in `mesh` pulling `images` from `server`, running `provider`
    /// from `bin_dir`.
    pub fn new(
        client: kube::Client,
        mesh: &str,
        server: RegistryServer,
        images: Vec<String>,
        provider: Provider,
        bin_dir: PathBuf,
    ) -> Self {
        Self {
            client,
            mesh: mesh.to_owned(),
            server,
            images,
            provider,
            bin_dir,
            limits: Limits::default(),
            api_timeout: Duration::from_secs(10),
        }
    }

    /// The provider it runs.
    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.mesh)
    }

    /// What the source records of the last refresh (nothing when it does not exist).
    pub async fn recorded(&self) -> Result<Recorded, ClusterError> {
        let action = format!("reading Secret {}/{PULL_SECRET_NAME}", self.mesh);
        let secret = match within(
            &action,
            self.api_timeout,
            self.secrets().get_opt(PULL_SECRET_NAME),
        )
        .await?
        {
            Ok(secret) => secret,
            Err(error) => return Err(ClusterError::api(action, error)),
        };
        let Some(secret) = secret else {
            return Ok(Recorded::default());
        };
        let annotations = secret.metadata.annotations.as_ref();
        let time = |key: &str| {
            annotations
                .and_then(|a| a.get(key))
                .and_then(|t| sparrow_core::expiry::parse_rfc3339(t))
        };
        Ok(Recorded {
            next_refresh: time(NEXT_REFRESH_ANNOTATION),
            expires: CredentialExpiry::from_annotations(annotations).map(|e| e.at),
            present: secret.data.is_some_and(|d| !d.is_empty()),
        })
    }

    /// Runs the plugin once (`now`: seconds since the epoch) and, when it answers with a
    /// usable credential, writes it with the time of the run after it (`next_refresh` of the
    /// answer's lifetime).
    pub async fn refresh(
        &self,
        now: i64,
        next_refresh: impl FnOnce(Option<Duration>) -> i64,
    ) -> Result<Obtained, RefreshError> {
        let token = match &self.provider.token_attributes {
            Some(attributes) => Some(
                self.service_account_token(&attributes.service_account_token_audience)
                    .await?,
            ),
            None => None,
        };
        let image = self.images.first().map(String::as_str).unwrap_or_default();
        let response = sparrow_credential_provider::run(
            &self.bin_dir,
            &self.provider,
            image,
            token.as_deref(),
            &self.limits,
        )
        .await?;
        let bytes = pull_secret(&response, &self.server, &self.images)?;
        let lifetime = response.lifetime(self.provider.default_cache_duration);
        let expires = expires_at(now, lifetime);
        let next = next_refresh(lifetime);
        self.write(bytes, now, expires, next).await?;
        Ok(Obtained {
            at: now,
            lifetime,
            expires,
        })
    }

    /// Writes the credential: created when missing (with the mesh's marker, as deploy would),
    /// else merged in, dropping the note of an earlier failure.
    async fn write(
        &self,
        bytes: Vec<u8>,
        now: i64,
        expires: Option<i64>,
        next: i64,
    ) -> Result<(), ClusterError> {
        let expiry = expires.map(|at| CredentialExpiry {
            at,
            source: ExpirySource::Plugin,
        });
        let mut secret = expiring_source_pull_secret(&self.mesh, bytes, expiry.as_ref());
        let annotations = secret
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new);
        annotations.insert(CREDENTIAL_KIND_ANNOTATION.to_owned(), "plugin".to_owned());
        annotations.insert(REFRESHED_AT_ANNOTATION.to_owned(), rfc3339(now));
        annotations.insert(NEXT_REFRESH_ANNOTATION.to_owned(), rfc3339(next));
        let action = format!("creating Secret {}/{PULL_SECRET_NAME}", self.mesh);
        match within(
            &action,
            self.api_timeout,
            self.secrets().create(&PostParams::default(), &secret),
        )
        .await?
        {
            Ok(_) => return Ok(()),
            Err(error) if is_already_exists(&error) => {}
            Err(error) => return Err(ClusterError::api(action, error)),
        }
        let mut patch = serde_json::json!({
            "metadata": { "annotations": secret.metadata.annotations, "labels": secret.metadata.labels },
            "data": secret.data,
        });
        patch["metadata"]["annotations"][REFRESH_FAILED_ANNOTATION] = serde_json::Value::Null;
        if expiry.is_none() {
            for key in CredentialExpiry::ANNOTATIONS {
                patch["metadata"]["annotations"][key] = serde_json::Value::Null;
            }
        }
        // Deleted between the create and the patch: the next run creates it.
        self.merge(patch).await.map(|_| ())
    }

    /// Notes on the source that the last run failed (`why`, one line without a credential),
    /// leaving its credential as it is. A source that does not exist yet is left absent.
    pub async fn record_failure(&self, now: i64, why: &str, next: i64) -> Result<(), ClusterError> {
        let patch = serde_json::json!({ "metadata": { "annotations": {
            REFRESH_FAILED_ANNOTATION: format!("{} {why}", rfc3339(now)),
            NEXT_REFRESH_ANNOTATION: rfc3339(next),
        } } });
        self.merge(patch).await.map(|_| ())
    }

    /// A JSON merge patch of the source; false when it does not exist.
    async fn merge(&self, patch: serde_json::Value) -> Result<bool, ClusterError> {
        let action = format!("updating Secret {}/{PULL_SECRET_NAME}", self.mesh);
        let (secrets, params, patch) =
            (self.secrets(), PatchParams::default(), Patch::Merge(&patch));
        let patched = secrets.patch(PULL_SECRET_NAME, &params, &patch);
        match within(&action, self.api_timeout, patched).await? {
            Ok(_) => Ok(true),
            Err(error) if is_not_found(&error) => Ok(false),
            Err(error) => Err(ClusterError::api(action, error)),
        }
    }

    /// A token for the controller's own ServiceAccount with `audience`, which the plugin is
    /// given as the kubelet gives it a pod's (KEP-4412).
    async fn service_account_token(&self, audience: &str) -> Result<String, ClusterError> {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &self.mesh);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: vec![audience.to_owned()],
                expiration_seconds: Some(TOKEN_LIFETIME),
                bound_object_ref: None,
            },
            ..TokenRequest::default()
        };
        let action = format!(
            "requesting a token for ServiceAccount {}/{CONTROLLER_NAME}",
            self.mesh
        );
        let params = PostParams::default();
        let made = accounts.create_token_request(CONTROLLER_NAME, &params, &request);
        match within(&action, self.api_timeout, made).await? {
            Ok(made) => made.status.map(|s| s.token).ok_or_else(|| {
                ClusterError::Internal(format!("{action}: the answer holds no token"))
            }),
            Err(error) => Err(ClusterError::api(action, error)),
        }
    }
}
