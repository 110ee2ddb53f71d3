//! One image from a file tree: a single gzip layer, its config, its manifest, and a one-entry
//! image index (linux/amd64), so an arm64 manifest can join the index later without changing
//! the tag's meaning. Every blob is canonical JSON or reproducible tar+gzip.

use std::collections::HashMap;
use std::io::Write as _;

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, Digest, HistoryBuilder,
    ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType, Os,
    PlatformBuilder, RootFsBuilder,
};

use crate::canonical::to_canonical_json;
use crate::rootfs::RootFs;

/// Label keys every image carries (the OCI pre-defined annotation keys).
pub const LABEL_TITLE: &str = "org.opencontainers.image.title";
/// The image's version: the crate version.
pub const LABEL_VERSION: &str = "org.opencontainers.image.version";
/// The commit the binaries were built from.
pub const LABEL_REVISION: &str = "org.opencontainers.image.revision";
/// Where the source lives.
pub const LABEL_SOURCE: &str = "org.opencontainers.image.source";
/// The layout's `index.json` names each image with this annotation.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// What an image is made of.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Repository name, such as `sparrow-controller`.
    pub name: String,
    /// Tag: the crate version.
    pub tag: String,
    /// Commit the binaries come from.
    pub revision: String,
    /// Source repository URL.
    pub source: String,
    /// The command the container runs.
    pub entrypoint: Vec<String>,
    /// `uid:gid` the container runs as.
    pub user: String,
    /// Environment (`PATH=...`).
    pub env: Vec<String>,
    /// The single layer's content.
    pub rootfs: RootFs,
    /// Seconds since the epoch: every file's mtime and the config's `created`.
    pub epoch: u64,
}

/// A content-addressed blob and its media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// What the bytes are.
    pub media_type: MediaType,
    /// `sha256:<hex>`.
    pub digest: String,
    /// The exact bytes.
    pub bytes: Vec<u8>,
}

impl Blob {
    /// Hashes `bytes`.
    pub fn new(media_type: MediaType, bytes: Vec<u8>) -> Self {
        Self {
            media_type,
            digest: sha256_digest(&bytes),
            bytes,
        }
    }

    /// The OCI descriptor pointing at this blob.
    pub fn descriptor(&self) -> Result<Descriptor, BuildError> {
        Ok(Descriptor::new(
            self.media_type.clone(),
            self.bytes.len() as u64,
            parse_digest(&self.digest)?,
        ))
    }
}

/// A built image: every blob it needs, index first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// Repository name.
    pub name: String,
    /// Tag.
    pub tag: String,
    /// The one-entry image index: its digest is what the tag points to.
    pub index: Blob,
    /// The linux/amd64 manifest.
    pub manifest: Blob,
    /// The image config.
    pub config: Blob,
    /// The gzip-compressed layer.
    pub layer: Blob,
}

impl BuiltImage {
    /// `name:tag`, the layout's ref name.
    pub fn ref_name(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }
}

/// Why an image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Writing the tar or gzip stream (in memory: practically never).
    #[error("cannot write the layer of {image}: {source}")]
    Layer {
        /// The image being built.
        image: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// oci-spec refused a value (a bug in the spec given).
    #[error("invalid OCI value for {image}: {source}")]
    Spec {
        /// The image being built.
        image: String,
        /// What oci-spec said.
        #[source]
        source: oci_spec::OciSpecError,
    },
    /// Serializing JSON.
    #[error("cannot serialize {what}: {source}")]
    Json {
        /// Which document.
        what: &'static str,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

/// Builds `spec` into its four blobs.
pub fn build_image(spec: &ImageSpec) -> Result<BuiltImage, BuildError> {
    let layer_error = |source| BuildError::Layer {
        image: spec.name.clone(),
        source,
    };
    let tar = spec.rootfs.to_tar(spec.epoch).map_err(layer_error)?;
    let diff_id = sha256_digest(&tar);
    let layer = Blob::new(MediaType::ImageLayerGzip, gzip(&tar).map_err(layer_error)?);
    let config = image_config(spec, diff_id)?;

    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config.descriptor()?)
        .layers(vec![layer.descriptor()?])
        .build()
        .map_err(|source| spec_error(spec, source))?;
    let manifest = Blob::new(MediaType::ImageManifest, json(&manifest, "the manifest")?);
    let index = one_entry_index(spec, &manifest)?;
    Ok(BuiltImage {
        name: spec.name.clone(),
        tag: spec.tag.clone(),
        index,
        manifest,
        config,
        layer,
    })
}

fn spec_error(spec: &ImageSpec, source: oci_spec::OciSpecError) -> BuildError {
    BuildError::Spec {
        image: spec.name.clone(),
        source,
    }
}

/// The image config: platform, user, entrypoint, labels, the one layer's diff_id.
fn image_config(spec: &ImageSpec, diff_id: String) -> Result<Blob, BuildError> {
    let error = |source| spec_error(spec, source);
    let created = rfc3339(spec.epoch);
    let labels: HashMap<String, String> = [
        (LABEL_TITLE, spec.name.as_str()),
        (LABEL_VERSION, spec.tag.as_str()),
        (LABEL_REVISION, spec.revision.as_str()),
        (LABEL_SOURCE, spec.source.as_str()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    let run = ConfigBuilder::default()
        .user(spec.user.clone())
        .entrypoint(spec.entrypoint.clone())
        .env(spec.env.clone())
        .working_dir("/")
        .labels(labels)
        .build()
        .map_err(error)?;
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(vec![diff_id])
        .build()
        .map_err(error)?;
    let history = HistoryBuilder::default()
        .created(created.clone())
        .created_by(format!("sparrow-image {}", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(error)?;
    let config = ImageConfigurationBuilder::default()
        .created(created)
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(run)
        .rootfs(rootfs)
        .history(vec![history])
        .build()
        .map_err(error)?;
    Ok(Blob::new(
        MediaType::ImageConfig,
        json(&config, "the image config")?,
    ))
}

/// An image index with the linux/amd64 manifest as its only entry.
fn one_entry_index(spec: &ImageSpec, manifest: &Blob) -> Result<Blob, BuildError> {
    let error = |source| spec_error(spec, source);
    let platform = PlatformBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .build()
        .map_err(error)?;
    let entry = DescriptorBuilder::default()
        .media_type(MediaType::ImageManifest)
        .size(manifest.bytes.len() as u64)
        .digest(parse_digest(&manifest.digest)?)
        .platform(platform)
        .build()
        .map_err(error)?;
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![entry])
        .build()
        .map_err(error)?;
    Ok(Blob::new(
        MediaType::ImageIndex,
        json(&index, "the image index")?,
    ))
}

pub(crate) fn json(
    value: &impl serde::Serialize,
    what: &'static str,
) -> Result<Vec<u8>, BuildError> {
    to_canonical_json(value).map_err(|source| BuildError::Json { what, source })
}

pub(crate) fn parse_digest(digest: &str) -> Result<Digest, BuildError> {
    digest.parse().map_err(|source| BuildError::Spec {
        image: digest.to_owned(),
        source,
    })
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
    )
}

/// gzip with a zero mtime, no file name and the "unknown" OS byte: only the input decides
/// the output. Level 9: the layer is written once and pulled by every node.
fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// `1970-01-01T00:00:00Z` for `epoch` seconds (UTC).
pub fn rfc3339(epoch: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::{MODE_EXEC, MODE_FILE};

    fn spec() -> ImageSpec {
        let mut rootfs = RootFs::new();
        rootfs
            .file("usr/local/bin/app", b"binary".to_vec(), MODE_EXEC)
            .file("etc/group", "root:x:0:\n", MODE_FILE);
        ImageSpec {
            name: "sparrow-controller".to_owned(),
            tag: "0.1.0".to_owned(),
            revision: "abc123".to_owned(),
            source: "https://example.com/sparrow".to_owned(),
            entrypoint: vec!["/usr/local/bin/app".to_owned()],
            user: "65532:65532".to_owned(),
            env: vec!["PATH=/usr/local/bin".to_owned()],
            rootfs,
            epoch: 1_700_000_000,
        }
    }

    #[test]
    fn the_same_spec_gives_the_same_digests() {
        let first = build_image(&spec()).expect("builds");
        for _ in 0..3 {
            assert_eq!(build_image(&spec()).expect("builds"), first);
        }
        let mut later = spec();
        later.epoch += 1;
        assert_ne!(build_image(&later).expect("builds").index, first.index);
    }

    #[test]
    fn the_config_carries_user_entrypoint_labels_and_platform() {
        let image = build_image(&spec()).expect("builds");
        let config: serde_json::Value =
            serde_json::from_slice(&image.config.bytes).expect("config is JSON");
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["os"], "linux");
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
        assert_eq!(config["config"]["User"], "65532:65532");
        assert_eq!(config["config"]["Entrypoint"][0], "/usr/local/bin/app");
        let labels = &config["config"]["Labels"];
        assert_eq!(labels[LABEL_TITLE], "sparrow-controller");
        assert_eq!(labels[LABEL_VERSION], "0.1.0");
        assert_eq!(labels[LABEL_REVISION], "abc123");
        assert_eq!(labels[LABEL_SOURCE], "https://example.com/sparrow");
        // The diff_id is the digest of the uncompressed layer.
        let mut tar = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(image.layer.bytes.as_slice()),
            &mut tar,
        )
        .expect("gunzip");
        assert_eq!(config["rootfs"]["diff_ids"][0], sha256_digest(&tar));
    }

    #[test]
    fn the_index_points_at_the_manifest_which_points_at_the_blobs() {
        let image = build_image(&spec()).expect("builds");
        let index: serde_json::Value = serde_json::from_slice(&image.index.bytes).expect("JSON");
        assert_eq!(
            index["mediaType"],
            "application/vnd.oci.image.index.v1+json"
        );
        let entries = index["manifests"].as_array().expect("manifests");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["digest"], image.manifest.digest.as_str());
        assert_eq!(entries[0]["size"], image.manifest.bytes.len());
        assert_eq!(entries[0]["platform"]["architecture"], "amd64");
        let manifest: serde_json::Value =
            serde_json::from_slice(&image.manifest.bytes).expect("JSON");
        assert_eq!(
            manifest["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(manifest["config"]["digest"], image.config.digest.as_str());
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(manifest["layers"][0]["digest"], image.layer.digest.as_str());
    }

    #[test]
    fn epochs_format_as_rfc3339() {
        for (epoch, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (4_102_444_799, "2099-12-31T23:59:59Z"),
        ] {
            assert_eq!(rfc3339(epoch), text);
        }
    }
}
