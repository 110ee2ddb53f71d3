//! A written layout reads back, from the directory and from the archive, with the same
//! digests; broken layouts are refused with a message naming what is wrong.

use std::path::Path;

use sparrow_image::{
    ImageSpec, Layout, MODE_EXEC, ReadError, archive, base_rootfs, build_image, layout_files,
    write_layout,
};

fn spec(name: &str) -> ImageSpec {
    let mut rootfs = base_rootfs();
    rootfs.file(
        &format!("usr/local/bin/{name}"),
        name.repeat(100),
        MODE_EXEC,
    );
    ImageSpec {
        name: name.to_owned(),
        tag: "1.2.3".to_owned(),
        revision: "rev".to_owned(),
        source: "src".to_owned(),
        entrypoint: vec![format!("/usr/local/bin/{name}")],
        user: "0:0".to_owned(),
        env: Vec::new(),
        rootfs,
        epoch: 1,
    }
}

/// Writes `b:1.2.3` and `a:1.2.3` as a directory and as `images.tar` under `dir`; returns
/// their digests in that order.
fn write(dir: &Path) -> Vec<String> {
    let images: Vec<_> = ["b", "a"]
        .into_iter()
        .map(|name| build_image(&spec(name)).expect("builds"))
        .collect();
    let files = layout_files(&images).expect("layout");
    std::fs::create_dir_all(dir.join("layout")).expect("mkdir");
    write_layout(&dir.join("layout"), &files).expect("write");
    std::fs::write(dir.join("images.tar"), archive(&files, 1).expect("tar")).expect("write");
    images
        .iter()
        .map(|image| image.index.digest.clone())
        .collect()
}

#[test]
fn directory_and_archive_hold_the_same_images() {
    let dir = tempfile::tempdir().expect("tempdir");
    let digests = write(dir.path());
    for path in [dir.path().join("layout"), dir.path().join("images.tar")] {
        let layout = Layout::open(&path).expect("opens");
        // index.json lists the images sorted by ref name, whatever the build order.
        assert_eq!(layout.ref_names(), ["a:1.2.3", "b:1.2.3"]);
        let b = layout.image("b:1.2.3").expect("b");
        assert_eq!(b.digest(), digests[0]);
        assert!(b.is_index());
        assert_eq!(b.manifests.len(), 1);
        assert_eq!(b.manifests[0].blobs.len(), 2, "config and one layer");
    }
}

#[test]
fn the_archive_is_reproducible() {
    let one = tempfile::tempdir().expect("tempdir");
    let two = tempfile::tempdir().expect("tempdir");
    write(one.path());
    write(two.path());
    assert_eq!(
        std::fs::read(one.path().join("images.tar")).expect("read"),
        std::fs::read(two.path().join("images.tar")).expect("read")
    );
}

#[test]
fn broken_layouts_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let digests = write(dir.path());
    let layout_dir = dir.path().join("layout");

    let error = Layout::open(&dir.path().join("nothing")).expect_err("missing");
    assert!(matches!(error, ReadError::Missing { .. }), "{error}");

    let error = Layout::open(dir.path()).expect_err("not a layout");
    assert!(
        error
            .to_string()
            .contains("not an OCI image layout (no oci-layout)"),
        "{error}"
    );

    let text = dir.path().join("text.tar");
    std::fs::write(&text, "x".repeat(2048)).expect("write");
    let error = Layout::open(&text).expect_err("not a tar");
    assert!(
        error
            .to_string()
            .contains("not an OCI archive (not a tar file)"),
        "{error}"
    );

    let layout = Layout::open(&layout_dir).expect("opens");
    let error = layout.image("c:1.2.3").expect_err("no such image");
    assert_eq!(
        error.to_string(),
        format!(
            "{} has no image c:1.2.3 (it holds: a:1.2.3, b:1.2.3): build it with scripts/build-images.sh",
            layout_dir.display()
        )
    );

    // A blob whose bytes no longer match its digest, then one that is gone.
    let manifest: serde_json::Value = {
        let image = layout.image("a:1.2.3").expect("a");
        serde_json::from_slice(&image.manifests[0].manifest.bytes).expect("json")
    };
    let layer = manifest["layers"][0]["digest"].as_str().expect("digest");
    let blob = layout_dir
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    std::fs::write(&blob, b"tampered").expect("write");
    let error = layout.image("a:1.2.3").expect_err("corrupt");
    assert!(
        error
            .to_string()
            .contains(&format!("blob {layer} does not match")),
        "{error}"
    );
    std::fs::remove_file(&blob).expect("remove");
    let error = layout.image("a:1.2.3").expect_err("missing blob");
    assert!(
        error
            .to_string()
            .contains(&format!("blob {layer} is missing")),
        "{error}"
    );
    // The other image is untouched.
    assert_eq!(layout.image("b:1.2.3").expect("b").digest(), digests[0]);
}

#[test]
fn a_gzipped_archive_is_read_too() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let digests = write(dir.path());
    let tar = std::fs::read(dir.path().join("images.tar")).expect("read");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip");
    let path = dir.path().join("images.tar.gz");
    std::fs::write(&path, gz.finish().expect("gzip")).expect("write");
    let layout = Layout::open(&path).expect("opens");
    assert_eq!(layout.image("a:1.2.3").expect("a").digest(), digests[1]);
}
