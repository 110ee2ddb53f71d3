//! The mesh's three images: what each holds and how it runs.
//!
//! Every image has the same small base: `/etc/passwd` and `/etc/group` naming the users the
//! mesh runs as, `/etc/nsswitch.conf` (`hosts: files dns`: glibc's built-in NSS modules, so a
//! static binary resolves names), an `/etc/hosts` with `localhost` (the kubelet mounts its own
//! over it; a bare runtime such as runc does not, and without it even `localhost` fails), and
//! `/tmp`. The binary is `/usr/local/bin/<name>`, the entrypoint.

use std::path::PathBuf;

use crate::image::ImageSpec;
use crate::rootfs::{MODE_EXEC, MODE_FILE, MODE_STICKY, RootFs};

/// The controller image's repository name.
pub const CONTROLLER_IMAGE_NAME: &str = "sparrow-controller";
/// The proxy image's repository name.
pub const PROXY_IMAGE_NAME: &str = "sparrow-proxy";
/// The init image's repository name.
pub const INIT_IMAGE_NAME: &str = "sparrow-init";

/// The controller's uid and gid (the Deployment's `runAsUser`/`runAsGroup`).
pub const CONTROLLER_UID: u32 = 65532;
/// The proxy's uid: the init container's redirect exempts this uid's traffic.
pub const PROXY_UID: u32 = 2102;

const PATH_ENV: &str = "PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the images are built from.
#[derive(Debug, Clone)]
pub struct MeshInputs {
    /// The static `sparrow-controller` binary.
    pub controller: PathBuf,
    /// The static `sparrow-proxy` binary.
    pub proxy: PathBuf,
    /// The static `sparrow-init` binary.
    pub init: PathBuf,
    /// A directory holding what `sparrow-init` needs to program netfilter (the xtables
    /// binaries, their libraries, the loader, the extensions), laid out as in the image.
    pub init_root: PathBuf,
    /// Tag and `org.opencontainers.image.version`.
    pub version: String,
    /// `org.opencontainers.image.revision`.
    pub revision: String,
    /// `org.opencontainers.image.source`.
    pub source: String,
    /// Every mtime and `created`.
    pub epoch: u64,
}

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {what} {path}: {source}")]
pub struct InputError {
    what: &'static str,
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The three image specs, controller, proxy, init.
pub fn mesh_images(inputs: &MeshInputs) -> Result<Vec<ImageSpec>, InputError> {
    let controller = binary_image(
        inputs,
        CONTROLLER_IMAGE_NAME,
        &inputs.controller,
        CONTROLLER_UID,
    )?;
    let proxy = binary_image(inputs, PROXY_IMAGE_NAME, &inputs.proxy, PROXY_UID)?;
    let mut init = binary_image(inputs, INIT_IMAGE_NAME, &inputs.init, 0)?;
    init.rootfs
        .add_tree(&inputs.init_root)
        .map_err(|source| InputError {
            what: "the netfilter tree",
            path: inputs.init_root.clone(),
            source,
        })?;
    // The xtables lock lives in /run; init runs as root (it programs netfilter).
    init.rootfs.dir("run", MODE_EXEC);
    Ok(vec![controller, proxy, init])
}

fn binary_image(
    inputs: &MeshInputs,
    name: &str,
    binary: &std::path::Path,
    uid: u32,
) -> Result<ImageSpec, InputError> {
    let data = std::fs::read(binary).map_err(|source| InputError {
        what: "the binary",
        path: binary.to_path_buf(),
        source,
    })?;
    let entrypoint = format!("/usr/local/bin/{name}");
    let mut rootfs = base_rootfs();
    rootfs.file(&entrypoint, data, MODE_EXEC);
    Ok(ImageSpec {
        name: name.to_owned(),
        tag: inputs.version.clone(),
        revision: inputs.revision.clone(),
        source: inputs.source.clone(),
        entrypoint: vec![entrypoint],
        user: format!("{uid}:{uid}"),
        env: vec![PATH_ENV.to_owned()],
        rootfs,
        epoch: inputs.epoch,
    })
}

/// The files every image has.
pub fn base_rootfs() -> RootFs {
    let passwd = format!(
        "root:x:0:0:root:/root:/sbin/nologin\n\
         nonroot:x:{CONTROLLER_UID}:{CONTROLLER_UID}:nonroot:/home/nonroot:/sbin/nologin\n\
         sparrow-proxy:x:{PROXY_UID}:{PROXY_UID}:sparrow-proxy:/nonexistent:/sbin/nologin\n"
    );
    let group = format!("root:x:0:\nnonroot:x:{CONTROLLER_UID}:\nsparrow-proxy:x:{PROXY_UID}:\n");
    let mut rootfs = RootFs::new();
    rootfs
        .file("etc/passwd", passwd, MODE_FILE)
        .file("etc/group", group, MODE_FILE)
        .file(
            "etc/nsswitch.conf",
            "passwd: files\ngroup: files\nhosts: files dns\n",
            MODE_FILE,
        )
        .file(
            "etc/hosts",
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
            MODE_FILE,
        )
        .dir("tmp", MODE_STICKY);
    rootfs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uids_are_the_ones_the_manifests_use() {
        assert_eq!(i64::from(PROXY_UID), sparrow_inject::PROXY_UID);
        use sparrow_core::names;
        assert_eq!(CONTROLLER_IMAGE_NAME, names::CONTROLLER_IMAGE_NAME);
        assert_eq!(PROXY_IMAGE_NAME, names::PROXY_IMAGE_NAME);
        assert_eq!(INIT_IMAGE_NAME, names::INIT_IMAGE_NAME);
    }

    #[test]
    fn users_resolve_in_passwd_and_group() {
        let root = base_rootfs();
        let text = |path| match root.get(path) {
            Some(crate::rootfs::Entry::File { data, .. }) => {
                String::from_utf8(data.clone()).expect("utf-8")
            }
            other => panic!("{path}: {other:?}"),
        };
        assert!(text("etc/passwd").contains("sparrow-proxy:x:2102:2102:"));
        assert!(text("etc/passwd").contains("nonroot:x:65532:65532:"));
        assert!(text("etc/group").contains("sparrow-proxy:x:2102:"));
        assert!(text("etc/nsswitch.conf").contains("hosts: files dns\n"));
    }
}
