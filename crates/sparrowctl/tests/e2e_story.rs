//! The story with the real binaries on the embedded test cluster (testkube serve, sparrowctl,
//! sparrow-controller, kubectl), through `scripts/quickstart.sh --embedded`: deploy, a pod comes
//! back with the sidecar and imagePullSecrets, its namespace gets the copy, rotation reaches
//! the copy, remove leaves nothing labelled.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the other binaries the story runs (testkube, sparrow-controller) into this test's
/// own target directory, so it never runs a missing or stale build; cargo built sparrowctl
/// for this test already. The build asks for exactly what `scripts/test.sh` builds (every
/// target of the workspace, tests and examples included, all features: the same feature
/// unification). Run from a shell after test.sh's build it does nothing (0.6 s); run from
/// this test under `cargo test` it still rebuilds ring and what depends on it (about 2 of
/// the test's 3 minutes in CI), from something in the test process's environment not yet
/// found.
fn binaries_dir(root: &Path) -> PathBuf {
    let sparrowctl = Path::new(env!("CARGO_BIN_EXE_sparrowctl"));
    let dir = sparrowctl.parent().expect("target dir").to_path_buf();
    let target_dir = dir.parent().expect("target root");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "--workspace",
            "--all-features",
            "--lib",
            "--bins",
            "--tests",
            "--examples",
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(root);
    if dir.file_name().is_some_and(|profile| profile == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(
        status.success(),
        "building testkube and sparrow-controller failed: {status}"
    );
    for name in ["testkube", "sparrow-controller"] {
        assert!(
            dir.join(name).is_file(),
            "{name} is not in {}",
            dir.display()
        );
    }
    dir
}

#[test]
fn quickstart_story_passes_every_step() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let binaries = binaries_dir(&root);
    let output = std::process::Command::new("bash")
        .arg(root.join("scripts/quickstart.sh"))
        .arg("--embedded")
        .env("SPARROW_BIN_DIR", binaries)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run quickstart.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "quickstart failed\n{stdout}\n{stderr}"
    );
    for expected in [
        "containers: sparrow-init sparrow-proxy web",
        "imagePullSecrets: sparrow-registry-key",
        "the controller will refresh 1 copy",
        "the copy in shop now authenticates as: robot2",
        "deleted Secret shop/sparrow-registry-key",
        "quickstart: every step passed",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
    assert!(
        !stdout.contains("first-password") && !stdout.contains("second-password"),
        "a password leaked:\n{stdout}"
    );
}
