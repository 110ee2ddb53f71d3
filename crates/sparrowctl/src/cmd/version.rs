//! `sparrowctl version`.

use sparrow_core::names::{DEFAULT_IMAGE_TAG, DEFAULT_REGISTRY_SERVER};

/// Prints the CLI version and the default images it deploys.
pub fn run() -> anyhow::Result<()> {
    println!("sparrowctl {}", env!("CARGO_PKG_VERSION"));
    println!(
        "default images: {DEFAULT_REGISTRY_SERVER}/{{sparrow-controller,sparrow-proxy,sparrow-init}}:{DEFAULT_IMAGE_TAG}"
    );
    Ok(())
}
