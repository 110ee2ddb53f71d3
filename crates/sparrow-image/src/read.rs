//! Reads images back from an OCI layout directory or an OCI archive (`.tar`, or `.tar.gz`),
//! checking every blob against its digest: what `images push` uploads and `images list --from`
//! pins.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use crate::image::{Blob, REF_NAME, sha256_digest};

/// Why a layout or one of its images cannot be used. Every message names the path given.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Nothing at the path.
    #[error(
        "{path}: no such file or directory: give the directory or the .tar that scripts/build-images.sh writes (target/images/)"
    )]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// A directory without `oci-layout` and `index.json`.
    #[error(
        "{path}: not an OCI image layout (no {file}): give the directory or the .tar that scripts/build-images.sh writes"
    )]
    NotALayout {
        /// The path given.
        path: PathBuf,
        /// The file that is missing.
        file: &'static str,
    },
    /// A file that is not a tar holding a layout.
    #[error(
        "{path}: not an OCI archive ({reason}): give the .tar that scripts/build-images.sh writes"
    )]
    NotAnArchive {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading failed.
    #[error("{path}: cannot read {what}: {source}")]
    Io {
        /// The path given.
        path: PathBuf,
        /// What was being read.
        what: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// `index.json` names no such image.
    #[error(
        "{path} has no image {reference} (it holds: {found}): build it with scripts/build-images.sh"
    )]
    NoSuchImage {
        /// The path given.
        path: PathBuf,
        /// `name:tag`.
        reference: String,
        /// The ref names the layout does hold.
        found: String,
    },
    /// A document or blob is absent, corrupt, or of a kind this reader does not follow.
    #[error("{path}: image {reference}: {problem}")]
    Broken {
        /// The path given.
        path: PathBuf,
        /// `name:tag`.
        reference: String,
        /// What is wrong.
        problem: String,
    },
}

/// One platform manifest and the blobs it references (config first, then layers).
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// The manifest's exact bytes.
    pub manifest: Blob,
    /// Config and layers.
    pub blobs: Vec<Blob>,
}

/// One image as stored: what its tag points to (an index, or a single manifest) and everything
/// below it.
#[derive(Debug, Clone)]
pub struct StoredImage {
    /// `name:tag`.
    pub reference: String,
    /// The tagged document: an image index, or a manifest.
    pub top: Blob,
    /// The platform manifests (for a tagged manifest, that one).
    pub manifests: Vec<StoredManifest>,
}

impl StoredImage {
    /// The digest the tag points to.
    pub fn digest(&self) -> &str {
        &self.top.digest
    }

    /// True when the tag points to an image index rather than to a manifest.
    pub fn is_index(&self) -> bool {
        self.top.media_type == MediaType::ImageIndex
    }
}

enum Store {
    Dir(PathBuf),
    Archive(HashMap<String, Vec<u8>>),
}

/// An opened layout (directory or archive).
pub struct Layout {
    path: PathBuf,
    store: Store,
    index: ImageIndex,
}

impl std::fmt::Debug for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layout").field("path", &self.path).finish()
    }
}

impl Layout {
    /// Opens `path`: a layout directory, or an archive file (read into memory).
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        let shown = path.to_path_buf();
        let metadata = std::fs::metadata(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ReadError::Missing {
                path: shown.clone(),
            },
            _ => ReadError::Io {
                path: shown.clone(),
                what: "it".to_owned(),
                source,
            },
        })?;
        let store = if metadata.is_dir() {
            for file in ["oci-layout", "index.json"] {
                if !path.join(file).is_file() {
                    return Err(ReadError::NotALayout { path: shown, file });
                }
            }
            Store::Dir(path.to_path_buf())
        } else {
            Store::Archive(read_archive(path)?)
        };
        let mut layout = Self {
            path: shown,
            store,
            index: ImageIndex::default(),
        };
        let bytes = layout
            .file("index.json")?
            .ok_or_else(|| layout.not_oci("no index.json"))?;
        layout.index = serde_json::from_slice(&bytes).map_err(|error| {
            layout.not_oci(&format!("index.json is not an image index: {error}"))
        })?;
        Ok(layout)
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every `org.opencontainers.image.ref.name` in `index.json`, in order.
    pub fn ref_names(&self) -> Vec<String> {
        self.index
            .manifests()
            .iter()
            .filter_map(|entry| entry.annotations().as_ref()?.get(REF_NAME).cloned())
            .collect()
    }

    /// Reads image `name:tag` and every blob below it, each checked against its digest.
    pub fn image(&self, reference: &str) -> Result<StoredImage, ReadError> {
        let entry = self
            .index
            .manifests()
            .iter()
            .find(|entry| {
                entry
                    .annotations()
                    .as_ref()
                    .and_then(|a| a.get(REF_NAME))
                    .is_some_and(|name| name == reference)
            })
            .ok_or_else(|| {
                let found = self.ref_names();
                ReadError::NoSuchImage {
                    path: self.path.clone(),
                    reference: reference.to_owned(),
                    found: if found.is_empty() {
                        "nothing".to_owned()
                    } else {
                        found.join(", ")
                    },
                }
            })?;
        let top = self.blob(reference, entry)?;
        let manifests = match entry.media_type() {
            MediaType::ImageIndex => {
                let index: ImageIndex = self.parse(reference, &top, "image index")?;
                index
                    .manifests()
                    .iter()
                    .map(|entry| self.manifest(reference, entry))
                    .collect::<Result<_, _>>()?
            }
            MediaType::ImageManifest => vec![self.manifest(reference, entry)?],
            other => return Err(self.broken(reference, format!("unsupported media type {other}"))),
        };
        Ok(StoredImage {
            reference: reference.to_owned(),
            top,
            manifests,
        })
    }

    fn manifest(&self, reference: &str, entry: &Descriptor) -> Result<StoredManifest, ReadError> {
        if *entry.media_type() != MediaType::ImageManifest {
            return Err(self.broken(
                reference,
                format!(
                    "{} is a {}, not an image manifest",
                    entry.digest(),
                    entry.media_type()
                ),
            ));
        }
        let manifest = self.blob(reference, entry)?;
        let parsed: ImageManifest = self.parse(reference, &manifest, "image manifest")?;
        let mut blobs = vec![self.blob(reference, parsed.config())?];
        for layer in parsed.layers() {
            blobs.push(self.blob(reference, layer)?);
        }
        Ok(StoredManifest { manifest, blobs })
    }

    fn blob(&self, reference: &str, descriptor: &Descriptor) -> Result<Blob, ReadError> {
        let digest = descriptor.digest().to_string();
        let hex = descriptor
            .as_digest_sha256()
            .ok_or_else(|| self.broken(reference, format!("{digest} is not a sha256 digest")))?;
        let bytes = self
            .file(&format!("blobs/sha256/{hex}"))?
            .ok_or_else(|| self.broken(reference, format!("blob {digest} is missing")))?;
        if sha256_digest(&bytes) != digest || bytes.len() as u64 != descriptor.size() {
            return Err(self.broken(
                reference,
                format!("blob {digest} does not match its digest or size (corrupt: rebuild it)"),
            ));
        }
        Ok(Blob {
            media_type: descriptor.media_type().clone(),
            digest,
            bytes,
        })
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        reference: &str,
        blob: &Blob,
        what: &str,
    ) -> Result<T, ReadError> {
        serde_json::from_slice(&blob.bytes).map_err(|error| {
            self.broken(
                reference,
                format!("{} is not an {what}: {error}", blob.digest),
            )
        })
    }

    fn file(&self, relative: &str) -> Result<Option<Vec<u8>>, ReadError> {
        match &self.store {
            Store::Archive(files) => Ok(files.get(relative).cloned()),
            Store::Dir(dir) => match std::fs::read(dir.join(relative)) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(ReadError::Io {
                    path: self.path.clone(),
                    what: relative.to_owned(),
                    source,
                }),
            },
        }
    }

    fn not_oci(&self, reason: &str) -> ReadError {
        match self.store {
            Store::Dir(_) => ReadError::NotALayout {
                path: self.path.clone(),
                file: "index.json",
            },
            Store::Archive(_) => ReadError::NotAnArchive {
                path: self.path.clone(),
                reason: reason.to_owned(),
            },
        }
    }

    fn broken(&self, reference: &str, problem: String) -> ReadError {
        ReadError::Broken {
            path: self.path.clone(),
            reference: reference.to_owned(),
            problem,
        }
    }
}

/// Every regular file of the tar (gunzipped first when it is gzip) by normalized path.
fn read_archive(path: &Path) -> Result<HashMap<String, Vec<u8>>, ReadError> {
    let not_archive = |reason: String| ReadError::NotAnArchive {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        what: "the archive".to_owned(),
        source,
    })?;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut plain)
            .map_err(|error| not_archive(format!("broken gzip: {error}")))?;
        plain
    } else {
        bytes
    };
    // A tar's first header carries "ustar" at offset 257; anything else is not one.
    if bytes.len() < 512 || &bytes[257..262] != b"ustar" {
        return Err(not_archive("not a tar file".to_owned()));
    }
    let mut files = HashMap::new();
    let mut archive = tar::Archive::new(bytes.as_slice());
    let entries = archive
        .entries()
        .map_err(|error| not_archive(format!("unreadable tar: {error}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|error| not_archive(format!("unreadable tar: {error}")))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = entry
            .path()
            .map_err(|error| not_archive(format!("unreadable entry name: {error}")))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|error| not_archive(format!("unreadable entry {name}: {error}")))?;
        files.insert(name, data);
    }
    if !files.contains_key("oci-layout") {
        return Err(not_archive("a tar without oci-layout".to_owned()));
    }
    Ok(files)
}
