//! The registry preflight: before anything is deployed, prove that the credentials open the
//! registry and that every image the mesh would run is there, over the OCI distribution API;
//! and the push that puts the mesh's images there in the first place ([`push_images`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), sparrow_registry::CheckError> {
//! use sparrow_core::{ImageOverrides, Images, RegistryAuth, RegistryServer};
//! use sparrow_registry::{CheckOptions, all_passed, check_images};
//!
//! let server = RegistryServer::parse("registry.example.com:5000/mesh").expect("valid server");
//! let auth = RegistryAuth::user_password("robot", "s3cret").expect("valid credentials");
//! let images = Images::resolve(&server, "0.1.0", &ImageOverrides::default());
//! let checks = check_images(&server, Some(&auth), &images.all(), &CheckOptions::default()).await?;
//! for check in &checks {
//!     println!("{check}");
//! }
//! assert!(all_passed(&checks));
//! # Ok(())
//! # }
//! ```
//!
//! Binaries install the rustls crypto provider (ring) at start; when none is installed yet,
//! [`check_images`] installs ring as the process default, never aws-lc-rs.

#![deny(missing_docs)]

mod check;
mod classify;
mod options;
mod outcome;
mod push;

pub use check::check_images;
pub use options::{CheckError, CheckOptions, DEFAULT_TIMEOUT};
pub use outcome::{ImageCheck, Outcome, REGISTRY_CA_HINT, all_passed};
pub use push::{PushError, PushedImage, push_images};
