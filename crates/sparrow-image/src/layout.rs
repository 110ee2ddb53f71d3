//! The OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) holding several images,
//! each named in `index.json` by `org.opencontainers.image.ref.name = <name>:<tag>`, written to
//! a directory or as one archive (the same files in a reproducible tar).

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;

use oci_spec::image::{ImageIndexBuilder, MediaType};

use crate::image::{BuildError, BuiltImage, REF_NAME, json};
use crate::rootfs::{MODE_EXEC, MODE_FILE, RootFs};

/// The `oci-layout` marker file's content.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The layout's files by relative path: `oci-layout`, `index.json`, `blobs/sha256/<hex>`.
pub fn layout_files(images: &[BuiltImage]) -> Result<BTreeMap<String, Vec<u8>>, BuildError> {
    let mut files = BTreeMap::new();
    let mut sorted: Vec<&BuiltImage> = images.iter().collect();
    sorted.sort_by_key(|image| image.ref_name());
    let mut entries = Vec::new();
    for image in sorted {
        for blob in [&image.index, &image.manifest, &image.config, &image.layer] {
            let hex = blob.digest.trim_start_matches("sha256:");
            files.insert(format!("blobs/sha256/{hex}"), blob.bytes.clone());
        }
        let mut entry = image.index.descriptor()?;
        entry.set_annotations(Some(HashMap::from([(
            REF_NAME.to_owned(),
            image.ref_name(),
        )])));
        entries.push(entry);
    }
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(entries)
        .build()
        .map_err(|source| BuildError::Spec {
            image: "index.json".to_owned(),
            source,
        })?;
    files.insert("index.json".to_owned(), json(&index, "index.json")?);
    files.insert("oci-layout".to_owned(), OCI_LAYOUT.to_vec());
    Ok(files)
}

/// Writes the layout into `dir`, replacing any layout there (other files are left alone).
pub fn write_layout(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> io::Result<()> {
    let blobs = dir.join("blobs");
    if blobs.exists() {
        std::fs::remove_dir_all(&blobs)?;
    }
    std::fs::create_dir_all(blobs.join("sha256"))?;
    for (path, bytes) in files {
        std::fs::write(dir.join(path), bytes)?;
    }
    Ok(())
}

/// The layout as one uncompressed tar (an OCI archive), every entry stamped with `epoch`.
pub fn archive(files: &BTreeMap<String, Vec<u8>>, epoch: u64) -> io::Result<Vec<u8>> {
    let mut tree = RootFs::new();
    tree.dir("blobs/sha256", MODE_EXEC);
    for (path, bytes) in files {
        tree.file(path, bytes.clone(), MODE_FILE);
    }
    tree.to_tar(epoch)
}
