//! Pushing the mesh's images from a layout into a registry, over the OCI distribution API.
//!
//! Per image, in this order: every blob the registry lacks (mounted from a repository this
//! push already filled, where the registry offers it, else uploaded), each manifest by its
//! digest and exact bytes, the index by its digest, and only then the tag; finally the tag is
//! read back and its digest compared. A push that fails midway leaves blobs and untagged
//! manifests, never a tag pointing at an incomplete image.

use std::collections::HashMap;
use std::fmt;

use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth as OciAuth;
use oci_client::{Client, Reference, RegistryOperation};
use sparrow_core::{RegistryAuth, RegistryServer};
use sparrow_image::{Blob, StoredImage};

use crate::check::build_client;
use crate::classify::{Context, classify, classify_status};
use crate::options::{CheckError, CheckOptions};
use crate::outcome::Outcome;

/// What a push did for one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// `HOST[:PORT][/PATH]/name:tag`.
    pub reference: String,
    /// The digest the tag points to (read back from the registry).
    pub digest: String,
    /// Blobs uploaded.
    pub blobs_uploaded: usize,
    /// Blobs mounted from another repository of this push.
    pub blobs_mounted: usize,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// Manifests, indexes and tags written.
    pub manifests_written: usize,
}

impl PushedImage {
    /// True when the registry already had everything: nothing was written.
    pub fn already_present(&self) -> bool {
        self.blobs_uploaded == 0 && self.blobs_mounted == 0 && self.manifests_written == 0
    }
}

/// `pushed   127.0.0.1:5000/mesh/sparrow-proxy:0.1.0  sha256:…  (3 blobs, 4.1 MB)`
impl fmt::Display for PushedImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.already_present() {
            return write!(f, "already present  {}  {}", self.reference, self.digest);
        }
        write!(
            f,
            "pushed           {}  {}  ({} blob{} uploaded, {:.1} MB{})",
            self.reference,
            self.digest,
            self.blobs_uploaded,
            if self.blobs_uploaded == 1 { "" } else { "s" },
            self.bytes_uploaded as f64 / 1_000_000.0,
            if self.blobs_mounted > 0 {
                format!(", {} mounted", self.blobs_mounted)
            } else {
                String::new()
            }
        )
    }
}

/// Why a push stopped.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The options are unusable (see [`CheckOptions::validate`]).
    #[error(transparent)]
    Options(#[from] CheckError),
    /// The registry refused or failed for this image; its tag was not written.
    #[error("{reference}: {}", describe(outcome, repository))]
    Image {
        /// The image that failed.
        reference: String,
        /// The repository written to.
        repository: String,
        /// What went wrong, classified as the preflight does, credentials redacted.
        outcome: Outcome,
    },
}

/// The outcome's text, with "pushing" where the preflight says "pulling".
fn describe(outcome: &Outcome, repository: &str) -> String {
    match outcome {
        Outcome::Forbidden { registry } => format!(
            "forbidden: {registry} accepted the credentials but does not allow pushing to {repository}"
        ),
        other => other.to_string(),
    }
}

/// Pushes each `(name, image)` to `<server>/<name>:<tag>` (the tag from the image's
/// `name:tag`), in order, calling `on_pushed` after each; stops at the first failure.
/// `auth` is sent to `server` (anonymous when `None`).
pub async fn push_images(
    server: &RegistryServer,
    auth: Option<&RegistryAuth>,
    images: &[(&str, &StoredImage)],
    options: &CheckOptions,
    mut on_pushed: impl FnMut(&PushedImage),
) -> Result<Vec<PushedImage>, PushError> {
    let client = build_client(options)?;
    let oci_auth = match auth {
        Some(auth) => OciAuth::Basic(auth.username().to_owned(), auth.password().to_owned()),
        None => OciAuth::Anonymous,
    };
    let mut pushed = Vec::new();
    // Digest -> a repository of this push that holds it: the source for a mount.
    let mut holders: HashMap<String, String> = HashMap::new();
    for &(name, image) in images {
        let tag = image
            .reference
            .rsplit_once(':')
            .map_or("latest", |(_, tag)| tag)
            .to_owned();
        let repository = match server.path().as_str() {
            "" => name.to_owned(),
            path => format!("{path}/{name}"),
        };
        let reference = Reference::with_tag(server.authority(), repository.clone(), tag);
        let shown = format!("{server}/{name}:{}", reference.tag().unwrap_or_default());
        let job = ImagePush {
            client: client.clone(),
            auth: oci_auth.clone(),
            reference,
            credentials_sent: auth.is_some(),
            timeout: options.timeout,
        };
        let (image_owned, holders_now) = (image.clone(), holders.clone());
        // A task per image: a panic inside the HTTP client costs this image, not the process.
        let result = tokio::spawn(async move { job.run(&image_owned, &holders_now).await })
            .await
            .unwrap_or_else(|error| {
                Err(Outcome::Other {
                    detail: format!("the push stopped unexpectedly: {error}"),
                })
            });
        match result {
            Ok(mut done) => {
                done.reference = shown;
                for manifest in &image.manifests {
                    for blob in &manifest.blobs {
                        holders.insert(blob.digest.clone(), repository.clone());
                    }
                }
                on_pushed(&done);
                pushed.push(done);
            }
            Err(outcome) => {
                return Err(PushError::Image {
                    reference: shown,
                    repository,
                    outcome: outcome.redact(auth),
                });
            }
        }
    }
    Ok(pushed)
}

/// One image's push: everything it needs to talk to the registry.
struct ImagePush {
    client: Client,
    auth: OciAuth,
    reference: Reference,
    credentials_sent: bool,
    timeout: std::time::Duration,
}

impl ImagePush {
    async fn run(
        &self,
        image: &StoredImage,
        holders: &HashMap<String, String>,
    ) -> Result<PushedImage, Outcome> {
        let tag = self.reference.tag().unwrap_or("latest").to_owned();
        let ctx = self.context(&tag);
        self.within(
            &ctx,
            self.client
                .auth(&self.reference, &self.auth, RegistryOperation::Push),
        )
        .await?;
        // Proves the credentials (a Basic challenge is only answered on the next request)
        // and says whether the tag is already where it should be.
        let tagged = self.manifest_digest(&self.reference, &ctx).await?;
        let mut done = PushedImage {
            reference: self.reference.whole(),
            digest: image.digest().to_owned(),
            blobs_uploaded: 0,
            blobs_mounted: 0,
            bytes_uploaded: 0,
            manifests_written: 0,
        };
        for manifest in &image.manifests {
            for blob in &manifest.blobs {
                self.ensure_blob(blob, holders, &mut done).await?;
            }
            self.ensure_manifest(&manifest.manifest, &mut done).await?;
        }
        if image.is_index() {
            self.ensure_manifest(&image.top, &mut done).await?;
        }
        if tagged.as_deref() != Some(image.digest()) {
            self.put_manifest(&self.reference, &image.top, &ctx).await?;
            done.manifests_written += 1;
        }
        match self.manifest_digest(&self.reference, &ctx).await? {
            Some(found) if found == image.digest() => Ok(done),
            found => Err(Outcome::Other {
                detail: format!(
                    "the tag reads back as {}, not the pushed {}: something else wrote it meanwhile",
                    found.as_deref().unwrap_or("nothing"),
                    image.digest()
                ),
            }),
        }
    }

    async fn ensure_blob(
        &self,
        blob: &Blob,
        holders: &HashMap<String, String>,
        done: &mut PushedImage,
    ) -> Result<(), Outcome> {
        let ctx = self.context(&blob.digest);
        let exists = self
            .within(&ctx, self.client.blob_exists(&self.reference, &blob.digest))
            .await?;
        if exists {
            return Ok(());
        }
        if let Some(source) = holders.get(&blob.digest) {
            let source = Reference::with_digest(
                self.reference.registry().to_owned(),
                source.clone(),
                blob.digest.clone(),
            );
            let mount = self
                .client
                .mount_blob(&self.reference, &source, &blob.digest);
            // A registry that does not offer the mount answers with an upload session instead.
            if matches!(tokio::time::timeout(self.timeout, mount).await, Ok(Ok(()))) {
                done.blobs_mounted += 1;
                return Ok(());
            }
        }
        let upload = self
            .client
            .push_blob(&self.reference, blob.bytes.clone(), &blob.digest);
        self.within(&ctx, upload).await?;
        done.blobs_uploaded += 1;
        done.bytes_uploaded += blob.bytes.len() as u64;
        Ok(())
    }

    async fn ensure_manifest(&self, blob: &Blob, done: &mut PushedImage) -> Result<(), Outcome> {
        let by_digest = self.reference.clone_with_digest(blob.digest.clone());
        let ctx = self.context(&blob.digest);
        if self.manifest_digest(&by_digest, &ctx).await?.is_none() {
            self.put_manifest(&self.put_by_digest(&blob.digest), blob, &ctx)
                .await?;
            done.manifests_written += 1;
        }
        Ok(())
    }

    /// Where a manifest is PUT by digest: the same URL, `/manifests/<digest>`, as
    /// `clone_with_digest` gives, with the digest standing where a tag would. A registry may
    /// answer that PUT without a Location header (ECR does); oci-client then rebuilds the
    /// location by cutting the tag off the URL, and panics on a reference that has no tag.
    fn put_by_digest(&self, digest: &str) -> Reference {
        Reference::with_tag(
            self.reference.registry().to_owned(),
            self.reference.repository().to_owned(),
            digest.to_owned(),
        )
    }

    /// PUT of the exact bytes, so the registry's digest is the layout's.
    async fn put_manifest(
        &self,
        reference: &Reference,
        blob: &Blob,
        ctx: &Context<'_>,
    ) -> Result<(), Outcome> {
        let content_type = blob
            .media_type
            .to_string()
            .parse()
            .map_err(|_| Outcome::Other {
                detail: format!("invalid media type {}", blob.media_type),
            })?;
        let put = self
            .client
            .push_manifest_raw(reference, blob.bytes.clone(), content_type);
        self.within(ctx, put).await.map(drop)
    }

    /// The digest `reference` resolves to, `None` when the registry has no such manifest.
    async fn manifest_digest(
        &self,
        reference: &Reference,
        ctx: &Context<'_>,
    ) -> Result<Option<String>, Outcome> {
        let head = self.client.fetch_manifest_digest(reference, &self.auth);
        match tokio::time::timeout(self.timeout, head).await {
            Err(_elapsed) => Err(ctx.timed_out()),
            Ok(Ok(digest)) => Ok(Some(digest)),
            Ok(Err(error)) if is_not_found(&error) => Ok(None),
            Ok(Err(error)) => Err(classify_push(&error, ctx)),
        }
    }

    async fn within<T>(
        &self,
        ctx: &Context<'_>,
        request: impl std::future::Future<Output = Result<T, OciDistributionError>>,
    ) -> Result<T, Outcome> {
        match tokio::time::timeout(self.timeout, request).await {
            Err(_elapsed) => Err(ctx.timed_out()),
            Ok(result) => result.map_err(|error| classify_push(&error, ctx)),
        }
    }

    fn context<'a>(&'a self, version: &'a str) -> Context<'a> {
        Context {
            registry: self.reference.registry(),
            repository: self.reference.repository(),
            version,
            credentials_sent: self.credentials_sent,
            timeout: self.timeout,
        }
    }
}

/// The registry has no such manifest (or repository yet).
fn is_not_found(error: &OciDistributionError) -> bool {
    use OciDistributionError as E;
    match error {
        E::ImageManifestNotFoundError(_) => true,
        E::ServerError { code: 404, .. } => true,
        E::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
            )
        }),
        _ => false,
    }
}

/// As the preflight classifies, plus the HTTP status that oci-client leaves inside a
/// transport error for blob requests (`HEAD` of a blob answered 401, a 413 for an upload).
fn classify_push(error: &OciDistributionError, ctx: &Context<'_>) -> Outcome {
    if let OciDistributionError::RequestError(request) = error
        && let Some(status) = request.status()
    {
        return classify_status(status.as_u16(), "", ctx);
    }
    classify(error, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pushed(uploaded: usize, mounted: usize, manifests: usize) -> PushedImage {
        PushedImage {
            reference: "127.0.0.1:5000/mesh/sparrow-proxy:0.1.0".to_owned(),
            digest: "sha256:abc".to_owned(),
            blobs_uploaded: uploaded,
            blobs_mounted: mounted,
            bytes_uploaded: 4_100_000 * uploaded as u64,
            manifests_written: manifests,
        }
    }

    #[test]
    fn lines_say_what_was_written() {
        for (image, line) in [
            (
                pushed(0, 0, 0),
                "already present  127.0.0.1:5000/mesh/sparrow-proxy:0.1.0  sha256:abc",
            ),
            (
                pushed(2, 0, 3),
                "pushed           127.0.0.1:5000/mesh/sparrow-proxy:0.1.0  sha256:abc  (2 blobs uploaded, 8.2 MB)",
            ),
            (
                pushed(1, 1, 3),
                "pushed           127.0.0.1:5000/mesh/sparrow-proxy:0.1.0  sha256:abc  (1 blob uploaded, 4.1 MB, 1 mounted)",
            ),
            // Only the tag moved: still a write.
            (
                pushed(0, 0, 1),
                "pushed           127.0.0.1:5000/mesh/sparrow-proxy:0.1.0  sha256:abc  (0 blobs uploaded, 0.0 MB)",
            ),
        ] {
            assert_eq!(image.to_string(), line);
        }
    }

    #[test]
    fn a_forbidden_push_says_pushing() {
        let error = PushError::Image {
            reference: "127.0.0.1:5000/mesh/sparrow-proxy:0.1.0".to_owned(),
            repository: "mesh/sparrow-proxy".to_owned(),
            outcome: Outcome::Forbidden {
                registry: "127.0.0.1:5000".to_owned(),
            },
        };
        assert_eq!(
            error.to_string(),
            "127.0.0.1:5000/mesh/sparrow-proxy:0.1.0: forbidden: 127.0.0.1:5000 accepted the credentials but does not allow pushing to mesh/sparrow-proxy"
        );
    }

    #[test]
    fn missing_manifests_are_not_errors() {
        assert!(is_not_found(
            &OciDistributionError::ImageManifestNotFoundError("x".to_owned())
        ));
        assert!(is_not_found(&OciDistributionError::ServerError {
            code: 404,
            url: "u".to_owned(),
            message: String::new(),
        }));
        assert!(!is_not_found(&OciDistributionError::ServerError {
            code: 401,
            url: "u".to_owned(),
            message: String::new(),
        }));
    }
}
