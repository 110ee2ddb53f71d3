//! `sparrow-controller`: the sidecar-injection webhook. Everything lives in the library.

use anyhow::anyhow;

fn main() -> anyhow::Result<()> {
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow!("a rustls crypto provider was already installed"))?;
    sparrow_controller::Args::parse_and_run()
}
