//! `sparrowctl images list` and `sparrowctl images push`: the mesh's images for mirroring
//! tools, and into a private registry (the air-gapped install).

use std::path::PathBuf;

use anyhow::Context as _;
use sparrow_core::RegistryServer;
use sparrow_core::names::DEFAULT_IMAGE_TAG;
use sparrow_registry::push_images;

use crate::GlobalArgs;
use crate::cluster::block_on;
use crate::credentials::{ImageArgs, PASSWORD_ENV, PasswordSources, RegistryArgs};
use crate::images_from::{mesh_images, open_layout, pin_images};
use crate::preflight::RegistryTlsArgs;
use crate::usage::{UsageError, usage_bail};

/// `images` verbs.
#[derive(Debug, clap::Subcommand)]
pub enum ImagesCommand {
    /// Print every image the mesh needs, one reference a line (what mirroring tools read).
    ///
    /// With --from, each reference is pinned by the digest of the built layout.
    ///
    /// Example:
    ///   sparrowctl images list --registry-server registry.example.com:5000/mesh --from target/images
    #[command(verbatim_doc_comment)]
    List(ListArgs),
    /// Push the mesh's images from a built layout or archive into a registry.
    ///
    /// Uploads only the blobs the registry lacks, each manifest by its exact bytes, then the
    /// tag, and reads the tag back. One line per image: pushed or already present, digest.
    ///
    /// Example:
    ///   sparrowctl images push --from sparrow-images-0.1.0.tar \
    ///       --registry-server registry.example.com:5000/mesh \
    ///       --registry-username robot --registry-password-stdin < password.txt
    #[command(verbatim_doc_comment)]
    Push(PushArgs),
}

/// Flags of `images list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Registry the mesh images are pulled from: HOST[:PORT][/PATH].
    /// [default: ghcr.io/sparrow-mesh]
    #[arg(long, value_name = "HOST[:PORT][/PATH]")]
    registry_server: Option<String>,
    #[command(flatten)]
    images: ImageArgs,
    /// Pin each reference by the digest in this OCI layout or archive.
    #[arg(long, value_name = "DIR|FILE.tar")]
    from: Option<PathBuf>,
    /// Output format: one reference a line, or a JSON array of {component, image}.
    #[arg(short, long, value_enum, default_value = "text", value_name = "FORMAT")]
    output: ListFormat,
}

/// `-o/--output` of `images list`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ListFormat {
    /// One reference a line.
    Text,
    /// A JSON array.
    Json,
}

/// Flags of `images push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The OCI layout directory or archive to push (what scripts/build-images.sh writes).
    #[arg(long, value_name = "DIR|FILE.tar")]
    from: PathBuf,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Tag of the images to push (their ref names in the layout). [default: the sparrowctl version]
    #[arg(long, value_name = "TAG", help_heading = "Images")]
    image_tag: Option<String>,
    #[command(flatten)]
    tls: RegistryTlsArgs,
}

/// Runs an `images` verb.
pub fn run(global: &GlobalArgs, command: ImagesCommand) -> anyhow::Result<()> {
    match command {
        ImagesCommand::List(args) => list(args),
        ImagesCommand::Push(args) => push(global, args),
    }
}

fn list(args: ListArgs) -> anyhow::Result<()> {
    let server = match &args.registry_server {
        Some(text) => RegistryServer::parse(text).map_err(UsageError::from_display)?,
        None => RegistryServer::default(),
    };
    let mut images = args.images.resolve(&server)?;
    if let Some(path) = &args.from {
        let tag = args
            .images
            .image_tag
            .as_deref()
            .unwrap_or(DEFAULT_IMAGE_TAG);
        images = pin_images(&open_layout("--from", path)?, &server, tag, images)?;
    }
    let text = match args.output {
        ListFormat::Text => images
            .all()
            .iter()
            .map(|(_, image)| format!("{image}\n"))
            .collect::<String>(),
        ListFormat::Json => {
            let entries: Vec<_> = images
                .all()
                .iter()
                .map(|(component, image)| serde_json::json!({"component": component, "image": image}))
                .collect();
            let mut text = serde_json::to_string_pretty(&entries).context("rendering JSON")?;
            text.push('\n');
            text
        }
    };
    crate::output::write_all(text.as_bytes()).context("writing the image list")?;
    Ok(())
}

fn push(global: &GlobalArgs, args: PushArgs) -> anyhow::Result<()> {
    let env = std::env::var(PASSWORD_ENV).ok();
    // Usage errors first: nothing is read or contacted for a bad command line.
    args.registry.check_rules(false, env.is_some())?;
    if args.registry.registry_server.is_none() {
        usage_bail!(
            "images push needs --registry-server: name the registry to push to, for example --registry-server registry.example.com:5000/mesh"
        );
    }
    let tag = args.image_tag.as_deref().unwrap_or(DEFAULT_IMAGE_TAG);
    let layout = open_layout("--from", &args.from)?;
    let images = mesh_images(&layout, tag)?;
    let resolved = args.registry.resolve(
        PasswordSources {
            env,
            stdin: &mut std::io::stdin().lock(),
            warnings: &mut std::io::stderr(),
        },
        None,
    )?;
    let options = args.tls.options(global, &args.registry)?;
    let targets: Vec<_> = images.iter().map(|(name, image)| (*name, image)).collect();
    let pushed = block_on(push_images(
        &resolved.server,
        resolved.auth.as_ref(),
        &targets,
        &options,
        |image| crate::say!("{image}"),
    ))??;
    let present = pushed
        .iter()
        .filter(|image| image.already_present())
        .count();
    crate::say!(
        "{} images in {} ({present} already present); deploy with --registry-server {} --images-from {} to pin them by digest.",
        pushed.len(),
        resolved.server,
        resolved.server,
        args.from.display()
    );
    Ok(())
}
