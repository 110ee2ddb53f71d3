//! The builder as scripts/build-images.sh runs it: the layer listing of each image is a golden
//! file, and building twice from the same inputs gives the same bytes and digests.
//!
//! The binaries are stand-ins written here (what they contain does not change a listing or
//! reproducibility); the init image's netfilter tree is the real one, assembled by
//! scripts/netfilter-root.sh from Debian's packages (run as root: it verifies the tree with
//! chroot).

use std::path::{Path, PathBuf};
use std::process::Command;

use sparrow_image::{MeshInputs, mesh_images};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Stand-in binaries and the real netfilter tree under `dir`.
fn inputs(dir: &Path, epoch: u64) -> MeshInputs {
    let netfilter = dir.join("netfilter-root");
    let status = Command::new(workspace().join("scripts/netfilter-root.sh"))
        .arg(workspace().join("target/images-cache"))
        .arg(&netfilter)
        .status()
        .expect("run scripts/netfilter-root.sh");
    assert!(
        status.success(),
        "scripts/netfilter-root.sh failed: {status}"
    );
    let binary = |name: &str| {
        let path = dir.join(name);
        std::fs::write(&path, format!("stand-in for {name}\n")).expect("write");
        path
    };
    MeshInputs {
        controller: binary("sparrow-controller"),
        proxy: binary("sparrow-proxy"),
        init: binary("sparrow-init"),
        init_root: netfilter,
        version: "0.1.0".to_owned(),
        revision: "0123456789abcdef0123456789abcdef01234567".to_owned(),
        source: "https://github.com/sparrow-mesh/sparrow".to_owned(),
        epoch,
    }
}

#[test]
fn each_layer_listing_is_the_golden_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("SPARROW_UPDATE_GOLDEN").is_some();
    for spec in mesh_images(&inputs(dir.path(), 1)).expect("specs") {
        let listing = spec.rootfs.listing();
        let path = golden.join(format!("{}.txt", spec.name));
        if update {
            std::fs::write(&path, &listing).expect("write golden");
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            listing,
            expected,
            "{} differs from {} (after a deliberate change: SPARROW_UPDATE_GOLDEN=1 cargo test -p sparrow-image --test build)",
            spec.name,
            path.display()
        );
    }
}

/// Runs the builder into `out`; returns what it printed.
fn build(inputs: &MeshInputs, out: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sparrow-image"))
        .arg("--out")
        .arg(out)
        .arg("--controller")
        .arg(&inputs.controller)
        .arg("--proxy")
        .arg(&inputs.proxy)
        .arg("--init")
        .arg(&inputs.init)
        .arg("--init-root")
        .arg(&inputs.init_root)
        .args(["--tag", &inputs.version])
        .args(["--revision", &inputs.revision])
        .args(["--source", &inputs.source])
        .env("SOURCE_DATE_EPOCH", inputs.epoch.to_string())
        .output()
        .expect("run sparrow-image");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn building_twice_gives_identical_digests_and_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs = inputs(dir.path(), 1_764_000_000);
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let printed = build(&inputs, &one);
    // The archive's path differs between the two; the digests must not.
    let digests = |text: &str| -> Vec<String> {
        text.lines()
            .map(|line| {
                line.split_whitespace()
                    .find(|word| word.starts_with("sha256:"))
                    .expect("a digest on every line")
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(digests(&printed), digests(&build(&inputs, &two)));
    assert_eq!(
        printed.lines().count(),
        4,
        "three images and the archive: {printed}"
    );
    for name in ["sparrow-controller", "sparrow-proxy", "sparrow-init"] {
        assert!(printed.contains(&format!("{name}:0.1.0 ")), "{printed}");
    }
    let archive = "sparrow-images-0.1.0.tar";
    assert_eq!(
        std::fs::read(one.join(archive)).expect("archive"),
        std::fs::read(two.join(archive)).expect("archive")
    );
    assert_eq!(
        std::fs::read(one.join("index.json")).expect("index"),
        std::fs::read(two.join("index.json")).expect("index")
    );

    // Another epoch is another build: every image changes.
    let later = MeshInputs {
        epoch: inputs.epoch + 1,
        ..inputs.clone()
    };
    let moved = digests(&build(&later, &dir.path().join("three")));
    for (before, after) in digests(&printed).iter().zip(&moved) {
        assert_ne!(before, after);
    }
}
