//! `sparrow-controller`: the sidecar-injection webhook. Everything lives in the library.

use anyhow::anyhow;

// Admission reviews allocate many small, short-lived objects; mimalloc handles that with
// less CPU than glibc malloc and returns memory readily.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow!("a rustls crypto provider was already installed"))?;
    sparrow_controller::Args::parse_and_run()
}
