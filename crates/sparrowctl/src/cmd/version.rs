//! `sparrowctl version [-o text|json]`.

use sparrow_core::names::{
    CONTROLLER_IMAGE_NAME, DEFAULT_IMAGE_TAG, DEFAULT_REGISTRY_SERVER, INIT_IMAGE_NAME,
    PROXY_IMAGE_NAME,
};

/// Flags of `version`.
#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text", value_name = "FORMAT")]
    output: VersionFormat,
}

/// `-o/--output` of `version`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum VersionFormat {
    /// Lines for a person.
    Text,
    /// One JSON object.
    Json,
}

/// Prints the CLI version and the default images it deploys.
pub fn run(args: VersionArgs) -> anyhow::Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    match args.output {
        VersionFormat::Text => {
            crate::say!("sparrowctl {version}");
            crate::say!(
                "default images: {DEFAULT_REGISTRY_SERVER}/{{sparrow-controller,sparrow-proxy,sparrow-init}}:{DEFAULT_IMAGE_TAG}"
            );
        }
        VersionFormat::Json => {
            let image =
                |name: &str| format!("{DEFAULT_REGISTRY_SERVER}/{name}:{DEFAULT_IMAGE_TAG}");
            let json = serde_json::json!({
                "version": version,
                "defaultImages": {
                    "controller": image(CONTROLLER_IMAGE_NAME),
                    "proxy": image(PROXY_IMAGE_NAME),
                    "init": image(INIT_IMAGE_NAME),
                },
            });
            crate::say!("{json}");
        }
    }
    Ok(())
}
