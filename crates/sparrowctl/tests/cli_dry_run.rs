//! `sparrowctl deploy --dry-run`, `version`, `completion` and every bad-input case, through
//! the real binary: exit code, the one-line message, and nothing on stdout.

use assert_cmd::Command;
use base64::Engine as _;
use predicates::prelude::*;

fn sparrowctl() -> Command {
    let mut cmd = Command::cargo_bin("sparrowctl").expect("binary");
    cmd.env_remove("SPARROW_REGISTRY_PASSWORD")
        .env("KUBECONFIG", "/nonexistent/kubeconfig");
    cmd
}

fn documents(yaml: &str) -> Vec<serde_json::Value> {
    yaml.split("\n---\n")
        .map(|doc| doc.trim_start_matches("---\n"))
        .filter(|doc| !doc.trim().is_empty())
        .map(|doc| serde_saphyr::from_str(doc).expect("valid YAML document"))
        .collect()
}

fn decoded_dockerconfigjson(items: &[serde_json::Value]) -> String {
    let secret = items
        .iter()
        .find(|o| o["metadata"]["name"] == "sparrow-registry-key")
        .expect("pull secret rendered");
    let data = secret["data"][".dockerconfigjson"].as_str().expect("data");
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64"),
    )
    .expect("utf8")
}

#[test]
fn dry_run_with_password_from_stdin_renders_everything() {
    let output = sparrowctl()
        .args([
            "deploy",
            "--dry-run",
            "--registry-server",
            "127.0.0.1:5000/team/mesh",
            "--registry-username",
            "robot",
            "--registry-password-stdin",
            "--image-tag",
            "1.2.3",
        ])
        .write_stdin("s3cret\n")
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "no warning without --registry-password: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let docs = documents(&String::from_utf8(output.stdout).expect("utf8"));
    let kinds: Vec<_> = docs
        .iter()
        .map(|d| d["kind"].as_str().expect("kind").to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "Secret",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "Deployment",
            "Service",
            "MutatingWebhookConfiguration"
        ]
    );
    assert_eq!(
        decoded_dockerconfigjson(&docs),
        r#"{"auths":{"127.0.0.1:5000":{"username":"robot","password":"s3cret","auth":"cm9ib3Q6czNjcmV0"}}}"#
    );
    let deployment = &docs[7];
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "127.0.0.1:5000/team/mesh/sparrow-controller:1.2.3"
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["imagePullSecrets"][0]["name"],
        "sparrow-registry-key"
    );
    // No certificate and no key: the controller makes them, and fills caBundle in.
    let text = serde_json::to_string(&docs).expect("json");
    assert!(
        !text.contains("PRIVATE KEY") && !text.contains("caBundle"),
        "{text}"
    );
    for hook in docs[9]["webhooks"].as_array().expect("webhooks") {
        assert_eq!(hook["clientConfig"].get("caBundle"), None);
    }
}

#[test]
fn dry_run_json_key_as_one_json_list_in_another_namespace() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("key.json"),
        "{\"type\":\"service_account\"}\n",
    )
    .expect("write");
    let output = sparrowctl()
        .current_dir(dir.path())
        .args([
            "deploy",
            "--dry-run",
            "-o",
            "json",
            "-n",
            "mesh-system",
            "--registry-server",
            "europe-docker.pkg.dev/acme/mesh",
            "--registry-key",
            "key.json",
        ])
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let list: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(list["kind"], "List");
    let items = list["items"].as_array().expect("items");
    assert!(
        items
            .iter()
            .skip(1)
            .filter(|o| o["metadata"]["namespace"].is_string())
            .all(|o| o["metadata"]["namespace"] == "mesh-system")
    );
    assert_eq!(
        decoded_dockerconfigjson(items),
        r#"{"auths":{"europe-docker.pkg.dev":{"username":"_json_key","password":"{\"type\":\"service_account\"}","auth":"X2pzb25fa2V5OnsidHlwZSI6InNlcnZpY2VfYWNjb3VudCJ9"}}}"#
    );
}

#[test]
fn password_from_env_and_the_command_line_warning() {
    let output = sparrowctl()
        .env("SPARROW_REGISTRY_PASSWORD", "from-env")
        .args([
            "deploy",
            "--dry-run",
            "-o",
            "json",
            "--registry-server",
            "r.example.com",
            "--registry-username",
            "robot",
        ])
        .output()
        .expect("run");
    assert!(output.status.success());
    assert!(output.stderr.is_empty());
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert!(
        decoded_dockerconfigjson(list["items"].as_array().expect("items"))
            .contains(r#""password":"from-env""#)
    );

    sparrowctl()
        .args([
            "deploy",
            "--dry-run",
            "--registry-server",
            "r.example.com",
            "--registry-username",
            "robot",
            "--registry-password",
            "hunter2",
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning: --registry-password exposes the password on the console and in shell history",
        ))
        .stderr(predicate::str::contains("hunter2").not());
}

#[test]
fn server_alone_renders_no_pull_secret() {
    let output = sparrowctl()
        .args([
            "deploy",
            "--dry-run",
            "--registry-server",
            "harbor.example.com/mesh",
        ])
        .output()
        .expect("run");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("utf8");
    let docs = documents(&text);
    assert!(
        !docs
            .iter()
            .any(|d| d["kind"] == "Secret" && d["metadata"]["name"] == "sparrow-registry-key"),
        "no pull secret"
    );
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("deployment");
    assert!(
        deployment["spec"]["template"]["spec"]["imagePullSecrets"].is_null(),
        "no imagePullSecrets"
    );
    assert!(text.contains("image: harbor.example.com/mesh/sparrow-controller:"));
}

/// (args, stdin, exit code, text the single stderr line must contain)
#[test]
fn bad_input_is_one_line_with_the_right_exit_code_and_no_stdout() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notjson.json"), "secret-key-text").expect("write");
    std::fs::create_dir(dir.path().join("keydir")).expect("mkdir");
    let cases: &[(&[&str], &str, i32, &str)] = &[
        (
            &[
                "deploy",
                "--dry-run",
                "--registry-server",
                "r.example.com",
                "--registry-key",
                "k.json",
                "--registry-username",
                "u",
            ],
            "",
            2,
            "--registry-key cannot be used with --registry-username or --registry-password",
        ),
        (
            &[
                "deploy",
                "--dry-run",
                "--registry-server",
                "r.example.com",
                "--registry-key",
                "k.json",
                "--registry-password",
                "p",
            ],
            "",
            2,
            "--registry-key cannot be used with --registry-username or --registry-password",
        ),
        (
            &[
                "deploy",
                "--dry-run",
                "--registry-server",
                "r.example.com",
                "--registry-username",
                "u",
            ],
            "",
            2,
            "--registry-username must be used with a password",
        ),
        (
            &[
                "deploy",
                "--dry-run",
                "--registry-server",
                "r.example.com",
                "--registry-password",
                "p",
            ],
            "",
            2,
            "--registry-password must be used with --registry-username",
        ),
        (
            &[
                "deploy",
                "--dry-run",
                "--registry-server",
                "r.example.com",
                "--registry-password-stdin",
            ],
            "pw",
            2,
            "--registry-password must be used with --registry-username",
        ),
        (
            &[
                "deploy",
                "--dry-run",
                "--registry-username",
                "u",
                "--registry-password",
                "p",
            ],
            "",
            2,
            "credentials need --registry-server",
        ),
        (
            &["deploy", "--dry-run", "--registry-key", "k.json"],
            "",
            2,
            "credentials need --registry-server",
        ),
        (
            &[
                "deploy",
                "--dry-run",
                "--registry-server",
                "r.example.com",
                "--registry-username",
                "u",
                "--registry-password",
                "p",
                "--registry-password-stdin",
            ],
            "",
            2,
            "cannot be used with",
        ),
        (
            &[
                "deploy",
                "--dry-run",
                "--registry-server",
                "r.example.com",
                "--registry-username",
                "u",
                "--registry-password-stdin",
            ],
            "",
            2,
            "the registry password is empty",
        ),
        (
            &["deploy", "--dry-run", "--registry-server", ""],
            "",
            2,
            "--registry-server is empty",
        ),
        (
            &[
                "deploy",
                "--dry-run",
                "--registry-server",
                "r.example.com:99999",
            ],
            "",
            2,
            "invalid port \"99999\"",
        ),
        (
            &[
                "deploy",
                "--dry-run",
                "--registry-server",
                "r.example.com/Mesh",
            ],
            "",
            2,
            "invalid path segment \"Mesh\"",
        ),
        (
            &[
                "deploy",
                "--dry-run",
                "--registry-server",
                "r.example.com/mesh:1.0",
            ],
            "",
            2,
            "contains an image tag",
        ),
        (
            &[
                "deploy",
                "--dry-run",
                "--registry-server",
                "robot:pw@r.example.com",
            ],
            "",
            2,
            "contains user information",
        ),
        (
            &[
                "deploy",
                "--dry-run",
                "--registry-server",
                "r.example.com",
                "--registry-key",
                "missing.json",
            ],
            "",
            1,
            "--registry-key missing.json: cannot read the file",
        ),
        (
            &[
                "deploy",
                "--dry-run",
                "--registry-server",
                "r.example.com",
                "--registry-key",
                "keydir",
            ],
            "",
            1,
            "--registry-key keydir: is a directory",
        ),
        (
            &[
                "deploy",
                "--dry-run",
                "--registry-server",
                "r.example.com",
                "--registry-key",
                "notjson.json",
            ],
            "",
            1,
            "--registry-key notjson.json: the registry key is not a JSON object",
        ),
        (
            &[
                "deploy",
                "--dry-run",
                "--registry-server",
                "r.example.com",
                "--registry-username",
                "a:b",
                "--registry-password",
                "p",
            ],
            "",
            2,
            "contains ':'",
        ),
        (
            &["deploy", "--dry-run", "--pull-policy", "Sometimes"],
            "",
            2,
            "invalid value 'Sometimes' for '--pull-policy",
        ),
        (
            &["deploy", "--dry-run", "-o", "xml"],
            "",
            2,
            "invalid value 'xml'",
        ),
        (&["deploy", "-o", "json"], "", 2, "--dry-run"),
        (
            &["deploy", "--dry-run", "--enabled-namespaces", "shop"],
            "",
            2,
            "--disable-auto-inject",
        ),
        (
            &[
                "deploy",
                "--dry-run",
                "--disable-auto-inject",
                "--enabled-namespaces",
                "Shop",
            ],
            "",
            2,
            "--enabled-namespaces: invalid namespace \"Shop\"",
        ),
        (
            &["deploy", "--dry-run", "-n", "Bad_NS"],
            "",
            2,
            "-n/--namespace: invalid namespace \"Bad_NS\"",
        ),
        (
            &["deploy", "--dry-run", "--timeout", "soon"],
            "",
            2,
            "invalid value 'soon' for '--timeout",
        ),
        (
            &["deploy", "--dry-run", "--image-tag", "v1:2"],
            "",
            2,
            "invalid --image-tag",
        ),
        (
            &["deploy", "--bogus"],
            "",
            2,
            "unexpected argument '--bogus'",
        ),
        (&["completion", "tcsh"], "", 2, "invalid value 'tcsh'"),
    ];
    for (args, stdin, code, needle) in cases {
        let output = sparrowctl()
            .current_dir(dir.path())
            .args(*args)
            .write_stdin(*stdin)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(*code), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: {stderr:?} lacks {needle:?}"
        );
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: one line: {stderr:?}"
        );
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr:?}");
        assert!(
            !stderr.contains("secret-key-text") && !stderr.contains("Error {"),
            "{args:?}: {stderr:?}"
        );
        assert!(output.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
}

#[test]
fn version_and_completion() {
    sparrowctl()
        .arg("version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with(format!(
            "sparrowctl {}",
            env!("CARGO_PKG_VERSION")
        )));
    for shell in ["bash", "zsh", "fish"] {
        sparrowctl()
            .args(["completion", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("registry-server"));
    }
}

/// `sparrowctl ... | head -1`: the reader goes away before the output ends. Each printing
/// command that needs no cluster ends quietly with exit 0, no panic and no error line.
#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = dir.path().join("app.yaml");
    std::fs::write(
        &app,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: web\n    image: nginx\n",
    )
    .expect("write");
    let app = app.to_str().expect("utf-8 path");
    let commands: [&[&str]; 5] = [
        &["completion", "bash"],
        &["version"],
        &[
            "images",
            "list",
            "--registry-server",
            "registry.example.com:5000/mesh",
        ],
        &["images", "list", "-o", "json"],
        &["inject", "-f", app],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("sparrowctl"))
            .args(args)
            .env_remove("SPARROW_REGISTRY_PASSWORD")
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run sparrowctl");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        // (inject reports what it injected on stderr; that is not an error)
        assert!(
            !stderr.contains("error") && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn help_teaches_every_flag() {
    let help = sparrowctl()
        .args(["deploy", "--help"])
        .output()
        .expect("run");
    let text = String::from_utf8(help.stdout).expect("utf8");
    for flag in [
        "--registry-server",
        "--registry-key",
        "--registry-username",
        "--registry-password",
        "--registry-password-stdin",
        "SPARROW_REGISTRY_PASSWORD",
        "--image-tag",
        "--pull-policy",
        "--controller-image",
        "--sidecar-image",
        "--init-image",
        "--disable-auto-inject",
        "--enabled-namespaces",
        "--dry-run",
        "--output",
        "--kubeconfig",
        "--context",
        "--namespace",
        "--timeout",
    ] {
        assert!(text.contains(flag), "deploy --help lacks {flag}");
    }
}

#[test]
fn inject_adds_the_sidecar_and_pull_secret_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: nginx\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n";
    std::fs::write(dir.path().join("app.yaml"), app).expect("write");
    let output = sparrowctl()
        .current_dir(dir.path())
        .args([
            "inject",
            "-f",
            "app.yaml",
            "--registry-server",
            "127.0.0.1:5000/team/mesh",
            "--image-tag",
            "1.0",
        ])
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let docs = documents(&String::from_utf8(output.stdout).expect("utf8"));
    assert_eq!(docs.len(), 2);
    let pod = &docs[0]["spec"]["template"]["spec"];
    let names = |list: &serde_json::Value| -> Vec<String> {
        list.as_array()
            .expect("a container list")
            .iter()
            .map(|c| c["name"].as_str().expect("name").to_owned())
            .collect()
    };
    // A native sidecar unless told the cluster is older than 1.29.
    assert_eq!(names(&pod["containers"]), ["web"]);
    assert_eq!(
        names(&pod["initContainers"]),
        ["sparrow-init", "sparrow-proxy"]
    );
    assert_eq!(pod["initContainers"][1]["restartPolicy"], "Always");
    assert_eq!(
        pod["initContainers"][1]["image"],
        "127.0.0.1:5000/team/mesh/sparrow-proxy:1.0"
    );
    assert_eq!(pod["imagePullSecrets"][0]["name"], "sparrow-registry-key");
    assert_eq!(docs[1]["kind"], "ConfigMap");
    assert_eq!(docs[1]["data"]["a"], "b");
    assert!(String::from_utf8_lossy(&output.stderr).contains("injected Deployment web"));

    let classic = sparrowctl()
        .current_dir(dir.path())
        .args(["inject", "-f", "app.yaml", "--server-version", "1.28"])
        .output()
        .expect("run");
    assert!(
        classic.status.success(),
        "{}",
        String::from_utf8_lossy(&classic.stderr)
    );
    let docs = documents(&String::from_utf8(classic.stdout).expect("utf8"));
    let pod = &docs[0]["spec"]["template"]["spec"];
    assert_eq!(names(&pod["containers"]), ["web", "sparrow-proxy"]);
    assert_eq!(names(&pod["initContainers"]), ["sparrow-init"]);
    sparrowctl()
        .args(["inject", "-f", "app.yaml", "--server-version", "latest"])
        .current_dir(dir.path())
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "\"latest\" is not a Kubernetes version like 1.29",
        ));

    // stdin, and a bad document is one line, exit 1.
    sparrowctl()
        .args(["inject", "-f", "-"])
        .write_stdin("kind: [unclosed")
        .assert()
        .code(1)
        .stdout("");
    sparrowctl()
        .args(["inject", "-f", "missing.yaml"])
        .current_dir(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "-f missing.yaml: cannot read the file",
        ));
}
