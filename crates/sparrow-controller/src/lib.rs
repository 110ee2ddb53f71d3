//! The Sparrow Mesh controller: serves the sidecar-injection webhook over TLS (`POST /inject`),
//! `/healthz`, `/readyz` and `/metrics`.
//!
//! The pieces are public so tests (and the next issues) can assemble them without a cluster:
//! [`Webhook`] answers AdmissionReviews from a [`NamespaceLabels`] cache and an optional
//! [`PullSecretCopies`]; [`router`] puts it behind HTTP; [`serve`] runs that over TLS with a
//! certificate re-read from disk when it changes ([`ReloadingCert`]).

#![deny(missing_docs)]

mod admission;
mod args;
mod body;
mod certs;
mod client_auth;
mod connections;
mod copies;
mod credential_plugin;
mod events;
mod held_body;
mod http;
mod logging;
mod metrics;
mod namespaces;
mod parked;
mod pull_secrets;
mod readiness;
mod review;
mod run;
mod server;
mod supervisor;
mod tls;
mod validation;

pub use admission::{AdmissionOutcome, BadReview, NAMESPACE_WAIT, Webhook};
pub use args::{Args, LogFormat};
pub use body::{BODY_BUDGET_BYTES, BODY_TIMEOUT, BodyBudget, BodyLimits};
pub use client_auth::{ClientCaError, ReloadingClientCa, server_config_requiring_client_certs};
pub use connections::{MAX_CONNECTIONS, MAX_CONNECTIONS_PER_PEER};
pub use copies::{KubeCopies, pull_secret_copier};
pub use events::{
    EventBook, EventMetrics, EventRecorder, EventSink, EventWrite, EventWriteError, KubeEventSink,
    Occurrence, Offered, client_without_retries, without_retries,
};
pub use http::{AppState, MAX_REVIEW_BYTES, health_router, router, router_with_limits};
pub use logging::init_logging;
pub use metrics::AdmissionMetrics;
pub use namespaces::{MeshedNow, NamespaceCache, NamespaceLabels, StaticNamespaceLabels};
pub use pull_secrets::{AdmissionWarning, BoxFuture, PullSecretCopies, PullSecretCopyError};
pub use readiness::Readiness;
pub use server::{
    DRAIN_TIMEOUT, EVICTED_GRACE, ServerLimits, serve, serve_health, serve_with_limits,
};
pub use supervisor::{Supervisor, TaskEnded};
pub use tls::{ReloadingCert, TlsError, server_config};
