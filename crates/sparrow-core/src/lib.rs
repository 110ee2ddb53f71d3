//! Sparrow's vocabulary: names, registry credentials, and the control plane as typed
//! Kubernetes objects. Pure: no I/O, no async, so every rule is tested without a cluster.

#![deny(missing_docs)]

pub mod auth;
pub mod config;
pub mod manifests;
pub mod names;
pub mod registry;
pub mod tls;

pub use auth::{
    CredentialKind, RegistryAuth, RegistryAuthError, dockerconfigjson, secret_data_hash,
};
pub use config::{ImageOverrides, Images, InjectionScope, MeshConfig, PullPolicy};
pub use manifests::{ControlPlane, Object};
pub use registry::{RegistryServer, RegistryServerError};
pub use tls::WebhookTls;
