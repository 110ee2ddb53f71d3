//! A transparent L4 proxy: the outbound listener takes the pod's redirected outbound TCP and
//! connects to the original destination (SO_ORIGINAL_DST), the inbound listener takes the
//! redirected inbound TCP and connects to the application on the original pod IP and port.
//! Bytes are copied opaquely in both directions (no sniffing, so servers that speak first
//! work; half-close is passed on). The admin server answers `/live`, `/ready` and
//! `/metrics`; on SIGTERM readiness drops, the listeners close and open connections get a
//! grace period.
//!
//! It runs on one thread (a current-thread runtime) and moves payload with splice(2), never
//! through its own memory: a sidecar's memory is paid once per pod.

#![deny(missing_docs)]

mod admin;
mod args;
pub mod destination;
mod forward;
mod metrics;
mod orig_dst;
mod run;
mod splice;

pub use args::Args;
pub use destination::{Direction, Refusal};
pub use metrics::ProxyMetrics;
