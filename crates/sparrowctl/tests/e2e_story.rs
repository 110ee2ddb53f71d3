//! The whole story with the real binaries (testkube serve, sparrowctl, sparrow-controller,
//! kubectl), through `scripts/quickstart.sh`, the README's main job: deploy, a pod comes
//! back with the sidecar and imagePullSecrets, its namespace gets the copy, rotation reaches
//! the copy, remove leaves nothing labelled.

use std::path::{Path, PathBuf};

fn binaries_dir() -> PathBuf {
    let sparrowctl = Path::new(env!("CARGO_BIN_EXE_sparrowctl"));
    let dir = sparrowctl.parent().expect("target dir").to_path_buf();
    for name in ["testkube", "sparrow-controller"] {
        assert!(
            dir.join(name).is_file(),
            "{name} is not built in {}: run `cargo build --bins` (scripts/test.sh does)",
            dir.display()
        );
    }
    dir
}

#[test]
fn quickstart_story_passes_every_step() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = std::process::Command::new("bash")
        .arg(root.join("scripts/quickstart.sh"))
        .env("SPARROW_BIN_DIR", binaries_dir())
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
