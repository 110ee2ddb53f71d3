//! `registry check`, and the check `deploy` and `registry update` run before writing, against
//! the real docker-registry (htpasswd, TLS from a generated CA) and testkube.

use std::process::Output;

use sparrow_registry_fixture::LocalRegistry;
use testkube::TestCluster;

const TAG: &str = "9.9.9";

async fn registry() -> LocalRegistry {
    let registry = LocalRegistry::start(&[("robot", "s3cret-pw"), ("robot2", "n3w-pw")])
        .await
        .expect("docker-registry");
    for name in ["sparrow-controller", "sparrow-proxy", "sparrow-init"] {
        registry
            .push_image(
                &format!("team/mesh/{name}"),
                TAG,
                Some(("robot", "s3cret-pw")),
            )
            .await
            .expect("push");
    }
    registry
}

async fn sparrowctl(
    args: Vec<String>,
    stdin: &str,
    kubeconfig: Option<std::path::PathBuf>,
) -> Output {
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut cmd = assert_cmd::Command::cargo_bin("sparrowctl").expect("binary");
        cmd.env_remove("SPARROW_REGISTRY_PASSWORD").env(
            "KUBECONFIG",
            kubeconfig.unwrap_or_else(|| "/nonexistent".into()),
        );
        cmd.args(&args).write_stdin(stdin).output().expect("run")
    })
    .await
    .expect("join")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn check_args(registry: &LocalRegistry, user: &str, with_ca: bool) -> Vec<String> {
    let mut list = args(&[
        "registry",
        "check",
        "--timeout",
        "5s",
        "--image-tag",
        TAG,
        "--registry-username",
        user,
        "--registry-password-stdin",
    ]);
    list.extend([
        "--registry-server".to_owned(),
        format!("{}/team/mesh", registry.authority()),
    ]);
    if with_ca {
        list.extend([
            "--registry-ca".to_owned(),
            registry.ca_path().display().to_string(),
        ]);
    }
    list
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_check_reports_each_image_and_never_the_password() {
    let registry = registry().await;
    let output = sparrowctl(check_args(&registry, "robot", true), "s3cret-pw\n", None).await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with('✓') && l.contains("found sha256:"))
            .count(),
        3,
        "{stdout}"
    );
    assert!(stdout.contains(&format!(
        "{}/team/mesh/sparrow-proxy:{TAG}",
        registry.authority()
    )));

    let output = sparrowctl(check_args(&registry, "robot", true), "wrong-pw\n", None).await;
    assert_eq!(output.status.code(), Some(1));
    let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(all.contains("unauthorized"), "{all}");
    assert!(
        text(&output.stderr).contains("registry check failed: 3 of 3 images cannot be pulled"),
        "{all}"
    );
    assert!(
        !all.contains("wrong-pw") && !all.contains("s3cret-pw"),
        "{all}"
    );

    let output = sparrowctl(check_args(&registry, "robot", false), "s3cret-pw\n", None).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stdout).contains("pass --registry-ca FILE"),
        "{}",
        text(&output.stdout)
    );

    let mut bad_ca = check_args(&registry, "robot", false);
    bad_ca.extend(["--registry-ca".to_owned(), "/etc/hostname".to_owned()]);
    let output = sparrowctl(bad_ca, "s3cret-pw\n", None).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("--registry-ca /etc/hostname"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_checks_first_and_writes_nothing_when_the_registry_refuses() {
    let registry = registry().await;
    let cluster = TestCluster::start().await.expect("testkube");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.kubeconfig()).expect("write");
    let deploy = |password: &str| {
        let mut list = check_args(&registry, "robot", true);
        list[0] = "deploy".to_owned();
        list.remove(1);
        list.push("--wait=false".to_owned());
        (list, format!("{password}\n"))
    };

    let (list, stdin) = deploy("wrong-pw");
    let output = sparrowctl(list, &stdin, Some(kubeconfig.clone())).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("nothing was deployed"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(
        cluster.total_requests(),
        0,
        "not even a read: {:?}",
        cluster.requests()
    );

    let (list, stdin) = deploy("s3cret-pw");
    let output = sparrowctl(list, &stdin, Some(kubeconfig.clone())).await;
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    assert!(
        text(&output.stdout)
            .contains("applied MutatingWebhookConfiguration sparrow-sidecar-injector")
    );

    // Rotation to credentials the registry refuses: checked against the deployed images, not stored.
    let before = cluster
        .object("secrets", "sparrow-mesh", "sparrow-registry-key")
        .expect("source");
    let mut update = args(&[
        "registry",
        "update",
        "--timeout",
        "5s",
        "--registry-username",
        "robot2",
        "--registry-password-stdin",
    ]);
    update.extend([
        "--registry-ca".to_owned(),
        registry.ca_path().display().to_string(),
    ]);
    let output = sparrowctl(update.clone(), "not-robot2s\n", Some(kubeconfig.clone())).await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    assert!(
        text(&output.stderr).contains("the credentials were not changed"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(
        cluster
            .object("secrets", "sparrow-mesh", "sparrow-registry-key")
            .expect("source"),
        before
    );

    let output = sparrowctl(update, "n3w-pw\n", Some(kubeconfig)).await;
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    assert_ne!(
        cluster
            .object("secrets", "sparrow-mesh", "sparrow-registry-key")
            .expect("source"),
        before
    );
}
