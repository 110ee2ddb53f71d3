//! The push against a real registry (docker-registry with htpasswd and TLS): what is written,
//! what is skipped, and what is mounted instead of uploaded.

use std::time::Duration;

use sparrow_core::{RegistryAuth, RegistryServer};
use sparrow_image::{
    ImageSpec, Layout, MODE_EXEC, RootFs, build_image, layout_files, write_layout,
};
use sparrow_registry::{CheckOptions, PushError, push_images};
use sparrow_registry_fixture::LocalRegistry;

const USER: &str = "robot";
const PASSWORD: &str = "pw-for-push";

/// Two images sharing one layer (the same file tree), differing in their configs.
fn twins(dir: &std::path::Path) -> Layout {
    let mut rootfs = RootFs::new();
    rootfs.file("usr/local/bin/app", vec![7u8; 64 * 1024], MODE_EXEC);
    let images: Vec<_> = ["first", "second"]
        .into_iter()
        .map(|name| {
            build_image(&ImageSpec {
                name: name.to_owned(),
                tag: "1.0".to_owned(),
                revision: "r".to_owned(),
                source: "s".to_owned(),
                entrypoint: vec!["/usr/local/bin/app".to_owned()],
                user: "0:0".to_owned(),
                env: Vec::new(),
                rootfs: rootfs.clone(),
                epoch: 0,
            })
            .expect("builds")
        })
        .collect();
    assert_eq!(images[0].layer, images[1].layer, "the layer is shared");
    write_layout(dir, &layout_files(&images).expect("layout")).expect("write");
    Layout::open(dir).expect("opens")
}

fn options(registry: &LocalRegistry) -> CheckOptions {
    CheckOptions {
        ca_pem: Some(registry.ca_pem().to_vec()),
        timeout: Duration::from_secs(20),
        ..CheckOptions::default()
    }
}

#[tokio::test]
async fn a_shared_layer_is_mounted_and_a_second_push_writes_nothing() {
    let registry = LocalRegistry::start(&[(USER, PASSWORD)])
        .await
        .expect("registry");
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = twins(dir.path());
    let (first, second) = (
        layout.image("first:1.0").expect("first"),
        layout.image("second:1.0").expect("second"),
    );
    let server = RegistryServer::parse(&format!("{}/team", registry.authority())).expect("server");
    let auth = RegistryAuth::user_password(USER, PASSWORD).expect("auth");
    let targets = [("first", &first), ("second", &second)];

    let mut lines = Vec::new();
    let pushed = push_images(
        &server,
        Some(&auth),
        &targets,
        &options(&registry),
        |image| lines.push(image.to_string()),
    )
    .await
    .expect("pushed");
    assert_eq!(lines.len(), 2);
    assert_eq!((pushed[0].blobs_uploaded, pushed[0].blobs_mounted), (2, 0));
    // The layer came from team/first by a cross-repository mount; only the config was sent.
    assert_eq!((pushed[1].blobs_uploaded, pushed[1].blobs_mounted), (1, 1));
    // Manifest by digest, index by digest, tag.
    assert_eq!(pushed[1].manifests_written, 3);
    assert_eq!(pushed[1].digest, second.digest());

    let again = push_images(&server, Some(&auth), &targets, &options(&registry), |_| {})
        .await
        .expect("pushed again");
    assert!(
        again.iter().all(|image| image.already_present()),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_refused_push_names_the_image_and_never_the_password() {
    let registry = LocalRegistry::start(&[(USER, PASSWORD)])
        .await
        .expect("registry");
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = twins(dir.path());
    let first = layout.image("first:1.0").expect("first");
    let server = RegistryServer::parse(&registry.authority()).expect("server");
    let wrong = RegistryAuth::user_password(USER, "not-the-password").expect("auth");
    let error = push_images(
        &server,
        Some(&wrong),
        &[("first", &first)],
        &options(&registry),
        |_| {},
    )
    .await
    .expect_err("refused");
    assert!(matches!(error, PushError::Image { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "{}/first:1.0: unauthorized: the registry refused the credentials for {}",
            registry.authority(),
            registry.authority()
        )
    );
}
