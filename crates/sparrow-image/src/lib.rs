//! The mesh's own OCI images, built from the workspace's static binaries, reproducibly: the
//! same binaries, version, revision and epoch give the same bytes and the same digests.
//!
//! ```no_run
//! use sparrow_image::{build_image, layout_files, mesh_images, write_layout, MeshInputs};
//!
//! # fn demo(inputs: MeshInputs) -> anyhow::Result<()> {
//! let images = mesh_images(&inputs)?
//!     .iter()
//!     .map(build_image)
//!     .collect::<Result<Vec<_>, _>>()?;
//! let files = layout_files(&images)?;
//! write_layout(std::path::Path::new("target/images"), &files)?;
//! for image in &images {
//!     println!("{} {}", image.ref_name(), image.index.digest);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! [`Layout::open`] reads a layout directory or archive back, checking every digest.

#![deny(missing_docs)]

mod canonical;
mod image;
mod layout;
mod mesh;
mod read;
mod rootfs;

pub use canonical::to_canonical_json;
pub use image::{
    Blob, BuildError, BuiltImage, ImageSpec, LABEL_REVISION, LABEL_SOURCE, LABEL_TITLE,
    LABEL_VERSION, REF_NAME, build_image, rfc3339, sha256_digest,
};
pub use layout::{OCI_LAYOUT, archive, layout_files, write_layout};
pub use mesh::{
    CONTROLLER_IMAGE_NAME, CONTROLLER_UID, INIT_IMAGE_NAME, InputError, MeshInputs,
    PROXY_IMAGE_NAME, PROXY_UID, base_rootfs, mesh_images,
};
pub use oci_spec::image::MediaType;
pub use read::{Layout, ReadError, StoredImage, StoredManifest};
pub use rootfs::{Entry, MODE_EXEC, MODE_FILE, MODE_STICKY, RootFs};
