//! The controller's runtime half: what `sparrow-controller` runs for as long as it lives.
//! The CLI's operations (apply, wait, update, status, remove) are the crate's other half, at
//! its root.
//!
//! - [`copies`]: the pull-secret copy index (pure) and the driver that writes what it plans;
//! - [`leader`]: the Lease election whose winner runs the copy sync;
//! - [`metrics`]: the copy counters on `/metrics`.

pub mod copies;
pub mod leader;
pub mod metrics;
