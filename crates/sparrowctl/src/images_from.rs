//! `--images-from DIR|FILE.tar`: the mesh's images pinned by the digests of a built layout,
//! so a tag moved in the registry changes nothing (`R/sparrow-proxy:<tag>@sha256:…`).

use std::path::{Path, PathBuf};

use sparrow_core::names::{CONTROLLER_IMAGE_NAME, INIT_IMAGE_NAME, PROXY_IMAGE_NAME};
use sparrow_core::{Images, RegistryServer};
use sparrow_image::{Layout, StoredImage};

/// The flag, for `deploy` and `registry check`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Images")]
pub struct ImagesFromArgs {
    /// Pin the mesh images by the digests of this OCI layout or archive (what
    /// scripts/build-images.sh writes and `sparrowctl images push` pushed).
    #[arg(long, value_name = "DIR|FILE.tar")]
    pub images_from: Option<PathBuf>,
}

impl ImagesFromArgs {
    /// `images` with each image that is `<server>/<name>:<tag>` pinned to the layout's
    /// digest; overridden images are kept as given. Unchanged without the flag.
    pub fn pin(
        &self,
        server: &RegistryServer,
        tag: &str,
        images: Images,
    ) -> anyhow::Result<Images> {
        match &self.images_from {
            None => Ok(images),
            Some(path) => pin_images(&open_layout("--images-from", path)?, server, tag, images),
        }
    }
}

/// Opens a layout, the error naming `flag`. What is not a directory must be a regular file
/// of at most [`MAX_IMAGES_ARCHIVE_BYTES`]: an archive is read whole, and a device or FIFO
/// (`/dev/zero`) would never end.
pub fn open_layout(flag: &str, path: &Path) -> anyhow::Result<Layout> {
    // A path that does not exist is left to the layout reader, whose message says what to build.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_dir()) {
        crate::input::check_file(
            flag,
            path,
            MAX_IMAGES_ARCHIVE_BYTES,
            "the mesh's image archive is tens of MiB; give the archive scripts/build-images.sh wrote, or its directory",
        )?;
    }
    Layout::open(path).map_err(|error| anyhow::anyhow!("{flag} {error}"))
}

/// An image archive: the mesh's three images are tens of MiB, and the archive is read whole.
pub const MAX_IMAGES_ARCHIVE_BYTES: u64 = 1 << 30;

/// The three images of `layout` for `tag`, in the order controller, proxy, init.
pub fn mesh_images(layout: &Layout, tag: &str) -> anyhow::Result<[(&'static str, StoredImage); 3]> {
    let read = |name: &'static str| {
        layout
            .image(&format!("{name}:{tag}"))
            .map(|image| (name, image))
            .map_err(anyhow::Error::new)
    };
    Ok([
        read(CONTROLLER_IMAGE_NAME)?,
        read(PROXY_IMAGE_NAME)?,
        read(INIT_IMAGE_NAME)?,
    ])
}

/// Pins the images that are the default reference for their name.
pub fn pin_images(
    layout: &Layout,
    server: &RegistryServer,
    tag: &str,
    mut images: Images,
) -> anyhow::Result<Images> {
    let stored = mesh_images(layout, tag)?;
    let slots = [&mut images.controller, &mut images.proxy, &mut images.init];
    for (slot, (name, image)) in slots.into_iter().zip(stored) {
        if *slot == server.image(name, tag) {
            *slot = format!("{slot}@{}", image.digest());
        }
    }
    Ok(images)
}
