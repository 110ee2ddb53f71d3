//! Sparrow's vocabulary: names, registry credentials, and the control plane as typed
//! Kubernetes objects. Pure: no I/O, no async, so every rule is tested without a cluster.

#![deny(missing_docs)]

pub mod auth;
pub mod client_ca;
pub mod config;
pub mod credential_provider;
pub mod credential_switch;
pub mod dockerconfig;
pub mod expiry;
pub mod image_ref;
pub mod inventory;
pub mod manifests;
pub mod names;
pub mod ownership;
pub mod pods;
pub mod registry;
pub mod selector;
pub mod tls;
pub mod webhook_auth;
pub mod webhook_pki;

pub use auth::{
    CredentialKind, RegistryAuth, RegistryAuthError, dockerconfigjson, secret_data_hash,
};
pub use client_ca::{ClientCaError, WebhookClientCa};
pub use config::{ImageOverrides, Images, InjectionScope, MeshConfig, PullPolicy};
pub use dockerconfig::{
    DockerConfigError, LoginError, RegistryLogin, StoredCredential, login_for, stored_credential,
};
pub use expiry::{CredentialExpiry, ExpirySource, ExpiryState};
pub use inventory::{Kind, PARTS, Part};
pub use manifests::{ControlPlane, Object};
pub use pods::{carries_sidecar, quantities};
pub use registry::{RegistryServer, RegistryServerError};
pub use tls::WebhookTls;
