//! Sidecar injection for Sparrow Mesh: whether a pod gets the sidecar ([`decide`]), the JSON
//! Patch that gives it ([`patch`]), the same applied to a typed pod ([`inject_pod`]), and to
//! workloads in multi-document YAML for `sparrowctl inject` ([`inject_documents`]).
//!
//! Pure: no I/O, no async, so every rule is tested without a cluster.

#![deny(missing_docs)]

mod config;
mod containers;
mod decision;
mod documents;
mod error;
mod patch;
mod ports;
pub mod proxy_env;
mod redirect;

pub use config::{InjectConfig, NATIVE_SIDECAR_MINOR, SidecarKind};
pub use containers::{
    ADMIN_PORT, INBOUND_PORT, OUTBOUND_PORT, PROXY_UID, init_container, proxy_container,
};
pub use decision::{Decision, SkipReason, decide, decide_manual, has_sidecar};
pub use documents::{DocumentOutcome, Injected, inject_documents, inject_documents_with_report};
pub use error::InjectError;
pub use patch::{Injector, inject_pod, patch};
pub use ports::{
    PortRange, SKIP_INBOUND_PORTS_ANNOTATION, SKIP_OUTBOUND_PORTS_ANNOTATION, parse_port_ranges,
};
pub use redirect::{
    INBOUND_PORTS_TO_IGNORE_FLAG, INCOMING_PROXY_PORT_FLAG, OUTBOUND_PORTS_TO_IGNORE_FLAG,
    OUTGOING_PROXY_PORT_FLAG, PROXY_UID_FLAG, RedirectFlags,
};

#[cfg(test)]
mod fixtures;
