//! The bad-input catalog of the CLI: flags, key, CA and kubeconfig files, standard input and
//! `inject` documents. Every case asserts its exit code (2 usage, 1 anything else), the one
//! line it prints, that nothing panicked, that no secret is echoed, and, against a testkube
//! holding a deployed mesh, that the API server saw no write (usage errors: no request at all).

use std::path::{Path, PathBuf};

use testkube::TestCluster;

/// What a case must produce.
struct Case {
    args: Vec<String>,
    stdin: Vec<u8>,
    code: i32,
    needle: String,
}

fn case(args: &[&str], code: i32, needle: &str) -> Case {
    Case {
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        stdin: Vec::new(),
        code,
        needle: needle.to_owned(),
    }
}

fn with_stdin(mut case: Case, stdin: Vec<u8>) -> Case {
    case.stdin = stdin;
    case
}

const SECRET: &str = "TOPSECRET-token-value";

/// Files the cases point at, in one directory.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = Self { dir };
        files.write("not-json.txt", b"not a key");
        files.write("array.json", b"[1,2]");
        files.write("empty", b"");
        files.write("not-utf8", b"\xff\xfe{}");
        files.write("two-mib", &vec![b'a'; 2 << 20]);
        // Valid JSON just under the key limit, too large for a Secret once in a dockerconfigjson.
        let mut big = b"{\"k\":\"".to_vec();
        big.extend(vec![b'a'; (1 << 20) - 16]);
        big.extend(b"\"}");
        files.write("big-key.json", &big);
        files.write("five-mib", &vec![b'a'; 5 << 20]);
        files.write("ca-not-pem.pem", b"hello");
        files.write(
            "key.pem",
            b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
        );
        files.write(
            "kubeconfig-bad-yaml",
            format!(
                "apiVersion: v1\nusers:\n- name: u\n  user:\n    token: {SECRET}\n  x: [unclosed\n"
            )
            .as_bytes(),
        );
        files.write("kubeconfig-not-map", b"- a\n- b\n");
        files.write("bad.yaml", format!("password: {SECRET}\nb: [\n").as_bytes());
        files.write(
            "bad-template.yaml",
            b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {template: 3}\n",
        );
        files.write(
            "no-template.yaml",
            b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n",
        );
        files.write(
            "bad-pod.yaml",
            b"apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: 3\n",
        );
        files.write("recursive.yaml", b"a: &x [*x]\n");
        files.write(
            "bad-ports.yaml",
            b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations:\n    config.sparrow-mesh.io/skip-inbound-ports: \"abc\"\nspec:\n  containers: [{name: web, image: nginx}]\n",
        );
        files.write("laughs.yaml", billion_laughs().as_bytes());
        std::fs::create_dir(files.path("dir")).expect("dir");
        let fifo = files.path("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo (coreutils)");
        assert!(status.success(), "mkfifo");
        files
    }

    /// An executable shell script.
    fn script(&self, name: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt as _;
        self.write(name, format!("#!/bin/sh\n{body}\n").as_bytes());
        std::fs::set_permissions(self.path(name), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        self.s(name)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path(name), bytes).expect("write");
    }

    fn s(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

const DEPLOY: &[&str] = &["deploy", "--skip-registry-check", "--wait=false"];

/// Nine levels of nine aliases: 9^9 nodes from a 500-byte file.
fn billion_laughs() -> String {
    let mut text = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let aliases = vec![format!("*{}", pair[0]); 9].join(", ");
        text.push_str(&format!("{}: &{} [{aliases}]\n", pair[1], pair[1]));
    }
    text
}

/// The test cluster's kubeconfig with its user's token replaced by `user` (YAML lines
/// indented under `user:`), and its server by `server` when given.
fn kubeconfig_with(base: &str, user: &str, server: Option<&str>) -> String {
    let mut text = base.replace("    token: testkube-token\n", user);
    if let Some(server) = server {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("server: "))
            .expect("server line")
            .to_owned();
        text = text.replace(&line, &format!("    server: {server}"));
    }
    text
}

/// A kubeconfig user whose credential comes from the exec plugin `command`.
fn exec_user(command: &str) -> String {
    format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {command}\n"
    )
}

/// The bad kubeconfigs of the catalog, next to the test cluster's own.
fn write_kubeconfigs(files: &Files, base: &str) {
    let hangs = files.script("plugin-hangs", "exec sleep 300");
    let garbage = files.script(
        "plugin-garbage",
        &format!("echo '{{\"kind\": \"ExecCredential\", \"status\": {{\"token\": {SECRET} [}}'"),
    );
    let fails = files.script(
        "plugin-fails",
        "echo 'sso: the session expired; run sso login' >&2\nexit 3",
    );
    let no_status = files.script("plugin-no-status", "echo '{\"kind\": \"ExecCredential\"}'");
    for (name, user) in [
        ("kc-exec-hangs", exec_user(&hangs)),
        ("kc-exec-garbage", exec_user(&garbage)),
        ("kc-exec-fails", exec_user(&fails)),
        ("kc-exec-no-status", exec_user(&no_status)),
        (
            "kc-exec-missing",
            exec_user("/nonexistent/sparrow-auth-plugin"),
        ),
        (
            "kc-client-key-missing",
            format!(
                "    client-certificate: {}\n    client-key: {}\n",
                files.s("ca-not-pem.pem"),
                files.s("missing-client.key")
            ),
        ),
    ] {
        files.write(name, kubeconfig_with(base, &user, None).as_bytes());
    }
    files.write(
        "kc-server-userinfo",
        kubeconfig_with(
            base,
            "    token: testkube-token\n",
            Some(&format!("https://robot:{SECRET}@127.0.0.1:9")),
        )
        .as_bytes(),
    );
}

/// A kubeconfig exec plugin that hangs, fails, prints garbage or is missing; a client key
/// that is missing; a server URL with a password in it.
fn kubeconfig_credential_cases(files: &Files) -> Vec<Case> {
    let mut cases = Vec::new();
    let with = |verb: &[&str], kubeconfig: &str, needle: &str| {
        let mut args = verb.to_vec();
        let path = files.s(kubeconfig);
        args.extend_from_slice(&["--kubeconfig", &path, "--timeout", "3s"]);
        case(&args, 1, needle)
    };
    for verb in [DEPLOY, &["status"], &["remove", "--yes"]] {
        cases.push(with(
            verb,
            "kc-exec-hangs",
            "plugin-hangs did not finish within 3s (--timeout)",
        ));
    }
    cases.push(with(
        &["status"],
        "kc-exec-garbage",
        "plugin-garbage printed no valid ExecCredential (error at line 1",
    ));
    cases.push(with(
        &["status"],
        "kc-exec-fails",
        "plugin-fails failed (exit status 3): sso: the session expired; run sso login",
    ));
    cases.push(with(
        DEPLOY,
        "kc-exec-no-status",
        "plugin-no-status printed an ExecCredential without a status",
    ));
    cases.push(with(
        &["status"],
        "kc-exec-missing",
        "cannot run its exec plugin /nonexistent/sparrow-auth-plugin: No such file or directory",
    ));
    cases.push(with(
        &["status"],
        "kc-client-key-missing",
        &format!(
            "its client-key file {}: cannot read the file",
            files.s("missing-client.key")
        ),
    ));
    cases.push(with(
        &["status"],
        "kc-server-userinfo",
        "cannot reach the Kubernetes API server at https://***@127.0.0.1:9/",
    ));
    cases
}

/// `--from` and `--images-from`: a device or FIFO is refused before anything is read.
fn images_from_cases(files: &Files) -> Vec<Case> {
    let fifo = files.s("fifo");
    vec![
        case(
            &["images", "list", "--from", "/dev/zero"],
            1,
            "--from /dev/zero: is a device",
        ),
        case(
            &["images", "list", "--from", &fifo],
            1,
            "is a FIFO (named pipe)",
        ),
        case(
            &["deploy", "--dry-run", "--images-from", "/dev/zero"],
            1,
            "--images-from /dev/zero: is a device",
        ),
        case(
            &["deploy", "--dry-run", "--images-from", &fifo],
            1,
            "is a FIFO",
        ),
        case(
            &["registry", "check", "--images-from", "/dev/zero"],
            1,
            "is a device",
        ),
        case(
            &[
                "images",
                "push",
                "--from",
                "/dev/zero",
                "--registry-server",
                "r.io",
            ],
            1,
            "--from /dev/zero: is a device",
        ),
    ]
}

/// `deploy --webhook-client-ca` with files that are no CA certificate, and the webhook-auth
/// inputs: refused before anything is contacted.
fn webhook_client_ca_cases(files: &Files) -> Vec<Case> {
    let ca = |name: &str, needle: &str| {
        let path = files.s(name);
        deploy(&["--webhook-client-ca", &path], 1, needle)
    };
    let auth = |cert: &str, key: &str, needle: &str| {
        let (cert, key) = (files.s(cert), files.s(key));
        let out = files.s("webhook-auth-out");
        case(
            &[
                "webhook-auth",
                "--client-cert",
                &cert,
                "--client-key",
                &key,
                "--out",
                &out,
            ],
            1,
            needle,
        )
    };
    vec![
        ca("missing.pem", "missing.pem: cannot read the file"),
        ca("dir", "is a directory, not a regular file"),
        ca(
            "ca-not-pem.pem",
            "ca-not-pem.pem holds no PEM certificate (-----BEGIN CERTIFICATE-----): give the CA certificate",
        ),
        ca(
            "key.pem",
            "key.pem holds a private key: give only the CA certificate",
        ),
        ca("not-utf8", "the file is not UTF-8 text"),
        deploy(
            &[
                "--webhook-client-ca",
                &files.s("ca-not-pem.pem"),
                "--no-webhook-client-ca",
            ],
            2,
            "cannot be used with",
        ),
        auth("ca-not-pem.pem", "key.pem", "--client-cert"),
        auth("key.pem", "key.pem", "holds no PEM CERTIFICATE block"),
        auth("missing.pem", "key.pem", "cannot read the file"),
    ]
}

fn deploy(extra: &[&str], code: i32, needle: &str) -> Case {
    let mut args = DEPLOY.to_vec();
    args.extend_from_slice(extra);
    case(&args, code, needle)
}

/// `--registry-server` values that are not registries.
const BAD_SERVERS: &[(&str, &str)] = &[
    ("", "--registry-server is empty"),
    ("https://", "--registry-server is empty"),
    ("registry .example.com", "contains whitespace"),
    ("robot@registry.example.com", "contains user information"),
    (
        "https://robot:pw@registry.example.com/mesh",
        "contains user information",
    ),
    ("registry.example.com/mesh:1.0", "contains an image tag"),
    ("registry.example.com/mesh@sha256:abcd", "contains a digest"),
    ("reg.com@sha256:abcd", "contains a digest"),
    // A password pasted as a digest or a query is masked (SECRET is checked absent).
    (
        "registry.example.com/mesh@sha256:TOPSECRET-token-value",
        "\"registry.example.com/mesh@***\" contains a digest",
    ),
    (
        "registry.example.com/mesh?password=TOPSECRET-token-value",
        "\"registry.example.com/mesh?***\" contains a query or fragment",
    ),
    ("ftp://registry.example.com", "unsupported scheme"),
    ("registry.example.com:0", "invalid port"),
    ("registry.example.com:65536", "invalid port"),
    ("registry.example.com:http", "invalid port"),
    ("[::1", "invalid host"),
    ("-registry.example.com", "invalid host"),
    ("registry..example.com", "invalid host"),
    ("regi$try.example.com", "invalid host"),
    ("registry.example.com/Mesh", "invalid path segment"),
    ("registry.example.com/-mesh", "invalid path segment"),
    ("registry.example.com/a___b", "invalid path segment"),
    ("registry.example.com//mesh", "empty path segment"),
];

const BAD_NAMESPACES: &[&str] = &["Bad_Name", "x-", "a.b", "UPPER"];

fn flag_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (name, needle) in [
        (
            "other/ecr-pull",
            "--registry-secret other/ecr-pull: the Secret must be in the mesh namespace sparrow-mesh, the only one whose Secrets the controller may read besides its copies",
        ),
        (
            "Ecr_Pull",
            "--registry-secret \"Ecr_Pull\" is not a Secret name",
        ),
        (
            "sparrow-registry-key",
            "--registry-secret sparrow-registry-key: that Secret is one Sparrow keeps itself",
        ),
        (
            "sparrow-copy-key",
            "--registry-secret sparrow-copy-key: that Secret is one Sparrow keeps itself",
        ),
    ] {
        cases.push(deploy(&["--registry-secret", name], 2, needle));
    }
    for conflicting in [
        &["--registry-username", "u", "--registry-password", "p"][..],
        &["--registry-key", "key.json"][..],
        &["--registry-credential-expires", "2030-01-01"][..],
    ] {
        let mut args = vec!["--registry-secret", "ecr-pull"];
        args.extend_from_slice(conflicting);
        cases.push(deploy(&args, 2, "cannot be used with"));
    }
    cases.extend(registry_update_secret_cases());
    for (server, needle) in BAD_SERVERS {
        let flag = format!("--registry-server={server}");
        cases.push(deploy(&[&flag], 2, needle));
        cases.push(case(&["registry", "check", &flag], 2, needle));
    }
    let long_name = format!("ghcr.io/{}", "a".repeat(260));
    let long_server = format!("r.io/{}", "a".repeat(250));
    for (flag, image, needle) in [
        ("--sidecar-image", "UPPER/@@::", "invalid --sidecar-image"),
        ("--sidecar-image", "", "invalid --sidecar-image"),
        ("--init-image", "a b", "whitespace"),
        ("--controller-image", "ghcr.io/proxy:-x", "invalid tag"),
        (
            "--controller-image",
            "ghcr.io/proxy@sha256:xyz",
            "invalid digest",
        ),
        ("--init-image", long_name.as_str(), "at most 255"),
        ("--sidecar-image", "ghcr.io//p", "invalid path component"),
        ("--sidecar-image", "-bad.io/p", "invalid registry host"),
    ] {
        let flag = format!("{flag}={image}");
        cases.push(deploy(&[&flag], 2, needle));
        cases.push(case(&["inject", "-f", "-", &flag], 2, needle));
    }
    cases.push(deploy(
        &["--registry-server", &long_server],
        2,
        "is not a valid image reference",
    ));
    for tag in ["", "-x", ".x", "a b", "a:b", &"t".repeat(129)] {
        cases.push(deploy(
            &[&format!("--image-tag={tag}")],
            2,
            "invalid --image-tag",
        ));
    }
    for ns in BAD_NAMESPACES {
        for verb in [
            &["deploy"][..],
            &["status"],
            &["remove", "--yes"],
            &["inject", "-f", "-"],
        ] {
            let mut args = verb.to_vec();
            args.extend_from_slice(&["-n", ns]);
            cases.push(case(&args, 2, "-n/--namespace: invalid namespace"));
        }
        cases.push(case(
            &[
                "registry",
                "update",
                "-n",
                ns,
                "--registry-username",
                "u",
                "--registry-password",
                "p",
            ],
            2,
            "-n/--namespace: invalid namespace",
        ));
    }
    for (list, needle) in [
        ("kube-system", "kube-system is a system namespace"),
        ("kube-public", "kube-public is a system namespace"),
        ("kube-node-lease", "kube-node-lease is a system namespace"),
        ("sparrow-mesh", "sparrow-mesh is the mesh's own namespace"),
        ("shop,Bad", "invalid namespace \"Bad\""),
    ] {
        cases.push(deploy(
            &["--disable-auto-inject", "--enabled-namespaces", list],
            2,
            needle,
        ));
    }
    for timeout in ["0s", "abc", "-1s", "1x"] {
        cases.push(case(
            &["status", &format!("--timeout={timeout}")],
            2,
            "--timeout",
        ));
    }
    for (args, needle) in [
        (
            &["deploy", "--pull-policy", "Sometimes"][..],
            "--pull-policy",
        ),
        (&["deploy", "-o", "json"], "--dry-run"),
        (&["deploy", "--dry-run", "-o", "xml"], "--output"),
        (&["status", "-o", "yaml"], "--output"),
        (&["version", "-o", "yaml"], "--output"),
        (&["deploy", "--wait=maybe"], "--wait"),
        (
            &["deploy", "--enabled-namespaces", "shop"],
            "--disable-auto-inject",
        ),
        (&["completion", "tcsh"], "tcsh"),
        (&["frobnicate"], "frobnicate"),
        (
            &[
                "deploy",
                "--registry-server",
                "r.io",
                "--registry-username",
                "u",
            ],
            "must be used with a password",
        ),
        (
            &[
                "deploy",
                "--registry-server",
                "r.io",
                "--registry-password",
                "p",
            ],
            "must be used with --registry-username",
        ),
        (
            &[
                "deploy",
                "--registry-username",
                "u",
                "--registry-password",
                "p",
            ],
            "credentials need --registry-server",
        ),
        (
            &[
                "deploy",
                "--registry-server",
                "r.io",
                "--registry-key",
                "k",
                "--registry-username",
                "u",
            ],
            "--registry-key cannot be used with",
        ),
        (
            &[
                "deploy",
                "--registry-server",
                "r.io",
                "--registry-username",
                "u",
                "--registry-password",
                "p",
                "--registry-password-stdin",
            ],
            "cannot be used with",
        ),
        (&["registry", "update"], "registry update needs credentials"),
        (
            &["registry", "update", "--registry-password", "p"],
            "must be used with --registry-username",
        ),
        (
            &[
                "deploy",
                "--registry-server",
                "r.io",
                "--registry-username",
                "",
                "--registry-password",
                "p",
            ],
            "--registry-username is empty",
        ),
        (
            &[
                "deploy",
                "--registry-server",
                "r.io",
                "--registry-username",
                "u:x",
                "--registry-password",
                "p",
            ],
            "contains ':'",
        ),
        (&["remove"], "stdin is not a terminal; pass --yes"),
        (&["inject"], "--filename"),
    ] {
        let mut c = case(args, 2, needle);
        if args[0] == "deploy" {
            c.args.extend(["--skip-registry-check".to_owned()]);
        }
        cases.push(c);
    }
    cases
}

/// The project's test plugin (it speaks the kubelet's protocol), built beside sparrowctl by
/// `cargo test --workspace`.
fn test_plugin() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/debug/sparrow-test-credential-provider");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p sparrow-credential-provider` (cargo test --workspace builds it)",
        path.display()
    );
    path
}

/// A CredentialProviderConfig for the test plugin in `bin`, matching `images`, answering
/// from `bin/credential` and misbehaving as `bin/fault` says.
fn plugin_config(bin: &Path, images: &str, name: &str) -> String {
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
- name: {name}
  matchImages: ["{images}"]
  defaultCacheDuration: 10m
  apiVersion: credentialprovider.kubelet.k8s.io/v1
  args: [--credential-file, {bin}/credential, --fault-file, {bin}/fault]
"#,
        bin = bin.display()
    )
}

/// `deploy --registry-credential-provider`: configs that are not what the kubelet takes, and
/// plugins that fail when deploy runs them (`--credential-provider-bin-dir`), each a plugin
/// directory of its own with its fault written.
fn plugin_cases(files: &Files) -> Vec<Case> {
    let mut cases = Vec::new();
    let bin = files.path("plugins");
    std::fs::create_dir_all(&bin).expect("mkdir");
    std::os::unix::fs::symlink(test_plugin(), bin.join("test-provider")).expect("symlink");
    std::fs::write(bin.join("credential"), format!("robot:{SECRET}")).expect("write");
    files.write(
        "provider.yaml",
        plugin_config(&bin, "r.io", "test-provider").as_bytes(),
    );
    files.write(
        "not-a-config.yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    );
    files.write(
        "path-name.yaml",
        plugin_config(&bin, "r.io", "../bin/test-provider").as_bytes(),
    );
    files.write(
        "other-images.yaml",
        plugin_config(&bin, "*.dkr.ecr.*.amazonaws.com", "test-provider").as_bytes(),
    );
    let with = |config: &str, extra: &[&str], code: i32, needle: &str| {
        let mut args = vec![
            "--registry-server",
            "r.io/mesh",
            "--registry-credential-provider",
        ];
        let config = files.s(config);
        args.push(&config);
        args.extend_from_slice(&["--credential-provider-image", "r.io/mesh/plugins:1"]);
        args.extend_from_slice(extra);
        deploy(&args, code, needle)
    };
    cases.push(with(
        "not-a-config.yaml",
        &[],
        1,
        "is a document of kind \"ConfigMap\", not a CredentialProviderConfig",
    ));
    cases.push(with("path-name.yaml", &[], 1, "has a path in it"));
    cases.push(with(
        "other-images.yaml",
        &[],
        1,
        "no provider in the credential provider config matches all of the mesh's images",
    ));
    cases.push(with("missing.yaml", &[], 1, "cannot read the file"));
    // Usage: the image is required, and plugins exclude the other credential flags.
    cases.push(deploy(
        &[
            "--registry-server",
            "r.io/mesh",
            "--registry-credential-provider",
            &files.s("provider.yaml"),
        ],
        2,
        "--credential-provider-image",
    ));
    cases.push(deploy(
        &[
            "--registry-server",
            "r.io/mesh",
            "--registry-credential-provider",
            &files.s("provider.yaml"),
            "--credential-provider-image",
            "r.io/mesh/plugins:1",
            "--registry-secret",
            "x",
        ],
        2,
        "cannot be used with",
    ));
    // Faults of the plugin deploy runs: one directory each, so the cases stay independent.
    for (fault, needle) in [
        (
            "fail",
            "the plugin test-provider failed (exit status 1): sparrow-test-credential-provider: fault injected: fail",
        ),
        ("flood", "printed more than 1 MiB"),
        ("wrong-api-version", "answered apiVersion"),
        (
            "garbage",
            "the plugin test-provider printed no JSON on stdout",
        ),
    ] {
        let dir = files.path(&format!("plugins-{fault}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::os::unix::fs::symlink(test_plugin(), dir.join("test-provider")).expect("symlink");
        std::fs::write(dir.join("credential"), format!("robot:{SECRET}")).expect("write");
        std::fs::write(dir.join("fault"), fault).expect("write");
        let config = format!("provider-{fault}.yaml");
        files.write(
            &config,
            plugin_config(&dir, "r.io", "test-provider").as_bytes(),
        );
        let dir = dir.display().to_string();
        cases.push(with(
            &config,
            &["--credential-provider-bin-dir", &dir],
            1,
            needle,
        ));
    }
    cases
}

fn file_cases(files: &Files) -> Vec<Case> {
    let mut cases = Vec::new();
    let key = |name: &str, code: i32, needle: &str| {
        deploy(
            &[
                "--registry-server",
                "r.io",
                "--registry-key",
                &files.s(name),
            ],
            code,
            needle,
        )
    };
    cases.push(key("missing.json", 1, "cannot read the file"));
    cases.push(key("dir", 1, "is a directory, not a regular file"));
    cases.push(key("fifo", 1, "is a FIFO (named pipe), not a regular file"));
    cases.push(key("two-mib", 1, "larger than 1 MiB"));
    cases.push(key("five-mib", 1, "larger than 1 MiB"));
    cases.push(key("not-json.txt", 1, "is not a JSON object"));
    cases.push(key("array.json", 1, "found a JSON array"));
    cases.push(key("empty", 1, "is not a JSON object"));
    cases.push(key("not-utf8", 1, "not UTF-8 text"));
    cases.push(key(
        "big-key.json",
        1,
        "the registry credentials are too large",
    ));
    cases.push(deploy(
        &["--registry-server", "r.io", "--registry-key", "/dev/zero"],
        1,
        "is a device, not a regular file",
    ));
    for verb in [&["registry", "check"][..], &["registry", "update"]] {
        let mut args = verb.to_vec();
        args.extend_from_slice(&["--registry-server", "r.io", "--registry-key"]);
        for (name, needle) in [
            ("fifo", "FIFO"),
            ("two-mib", "larger than 1 MiB"),
            ("dir", "directory"),
        ] {
            let mut a = args.clone();
            let path = files.s(name);
            a.push(&path);
            cases.push(case(&a, 1, needle));
        }
    }
    let ca = |verb: &[&str], name: &str, needle: &str| {
        let mut args = verb.to_vec();
        let path = files.s(name);
        args.extend_from_slice(&["--registry-server", "r.io", "--registry-ca", &path]);
        case(&args, 1, needle)
    };
    for verb in [&["deploy", "--wait=false"][..], &["registry", "check"]] {
        cases.push(ca(verb, "missing.pem", "cannot read the file"));
        cases.push(ca(verb, "dir", "is a directory"));
        cases.push(ca(verb, "fifo", "is a FIFO"));
        cases.push(ca(verb, "five-mib", "larger than 4 MiB"));
        cases.push(ca(verb, "ca-not-pem.pem", "--registry-ca"));
    }
    cases.extend(webhook_client_ca_cases(files));
    let kube =
        |name: &str, needle: &str| case(&["status", "--kubeconfig", &files.s(name)], 1, needle);
    cases.push(kube("missing", "cannot read the file"));
    cases.push(kube("dir", "is a directory"));
    cases.push(kube("fifo", "is a FIFO"));
    cases.push(kube("five-mib", "larger than 4 MiB"));
    cases.push(kube(
        "kubeconfig-bad-yaml",
        "not a valid kubeconfig: YAML error at line 6",
    ));
    cases.push(kube("kubeconfig-not-map", "not a valid kubeconfig"));
    cases.push(case(
        &["status", "--kubeconfig", "/dev/zero"],
        1,
        "is a device",
    ));
    cases.push(case(
        &["remove", "--yes", "--kubeconfig", &files.s("fifo")],
        1,
        "is a FIFO",
    ));
    cases.push(case(
        &[
            "deploy",
            "--wait=false",
            "--skip-registry-check",
            "--kubeconfig",
            &files.s("kubeconfig-bad-yaml"),
        ],
        1,
        "YAML error at line 6",
    ));
    // With the registry check on, a broken kubeconfig or a missing context is still the error
    // reported: found before the registry (unreachable here) is contacted.
    let checked = |extra: &[&str], needle: &str| {
        let mut args = vec![
            "deploy",
            "--wait=false",
            "--registry-server",
            "127.0.0.1:9/mesh",
            "--registry-username",
            "u",
            "--registry-password-stdin",
        ];
        args.extend_from_slice(extra);
        with_stdin(case(&args, 1, needle), b"pw\n".to_vec())
    };
    cases.push(checked(
        &["--kubeconfig", &files.s("kubeconfig-bad-yaml")],
        "YAML error at line 6",
    ));
    cases.push(checked(
        &["--context", "no-such-context"],
        "no-such-context",
    ));
    cases
}

fn stdin_cases() -> Vec<Case> {
    let password = |verb: &[&str], stdin: Vec<u8>, code: i32, needle: &str| {
        let mut args = verb.to_vec();
        args.extend_from_slice(&[
            "--registry-server",
            "r.io",
            "--registry-username",
            "u",
            "--registry-password-stdin",
        ]);
        with_stdin(case(&args, code, needle), stdin)
    };
    let mut cases = Vec::new();
    for verb in [DEPLOY, &["registry", "check"], &["registry", "update"]] {
        cases.push(password(verb, vec![0; 2 << 20], 1, "larger than 1 MiB"));
        cases.push(password(
            verb,
            b"\n".to_vec(),
            2,
            "the registry password is empty",
        ));
        cases.push(password(verb, b"\xff\xfe\n".to_vec(), 1, "not UTF-8 text"));
    }
    // A password that fits the flag but not a Secret.
    cases.push(password(
        DEPLOY,
        vec![b'p'; 600 << 10],
        1,
        "the registry credentials are too large",
    ));
    cases
}

fn inject_cases(files: &Files) -> Vec<Case> {
    let inject = |name: &str, needle: &str| case(&["inject", "-f", &files.s(name)], 1, needle);
    let mut cases = vec![
        inject("missing.yaml", "cannot read the file"),
        inject("dir", "is a directory"),
        inject("fifo", "is a FIFO"),
        inject("not-utf8", "not UTF-8 text"),
        inject("bad.yaml", "not valid YAML: error at line 2, column 4"),
        inject(
            "recursive.yaml",
            "refused: a YAML alias (*name) refers to the node that holds it",
        ),
        inject(
            "laughs.yaml",
            "refused: its YAML aliases (*name) expand to more nodes than the parser allows (a \"billion laughs\" document)",
        ),
        inject("bad-template.yaml", "has no pod template at /spec/template"),
        inject("no-template.yaml", "has no pod template at /spec/template"),
        inject("bad-pod.yaml", "its pod template is not a valid pod"),
        inject("bad-ports.yaml", "is not a comma-separated list of ports"),
        case(&["inject", "-f", "/dev/zero"], 1, "is a device"),
    ];
    for (stdin, needle) in [
        (
            format!("secret: {SECRET}\nx: [\n").into_bytes(),
            "not valid YAML",
        ),
        (b"\xff".to_vec(), "not UTF-8 text"),
        (
            b"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: []\n".to_vec(),
            "not a valid pod",
        ),
        (vec![b'#'; 33 << 20], "larger than 32 MiB"),
        (billion_laughs().into_bytes(), "billion laughs"),
    ] {
        cases.push(with_stdin(case(&["inject", "-f", "-"], 1, needle), stdin));
    }
    cases
}

/// `registry update --registry-secret NAME` on the static mesh of [`deployed`]: deploy's checks
/// and messages, with nothing written. The Secrets are those [`external_secrets`] makes.
fn registry_update_secret_cases() -> Vec<Case> {
    let update = |extra: &[&str], code: i32, needle: &str| {
        let mut args = vec!["registry", "update", "--registry-secret"];
        args.extend_from_slice(extra);
        case(&args, code, needle)
    };
    let mut cases = vec![
        update(
            &["other/ecr-pull"],
            2,
            "--registry-secret other/ecr-pull: the Secret must be in the mesh namespace sparrow-mesh",
        ),
        update(
            &["sparrow-registry-key"],
            2,
            "--registry-secret sparrow-registry-key: that Secret is one Sparrow keeps itself",
        ),
        update(
            &["sparrow-controller-tls"],
            2,
            "that Secret is one Sparrow keeps itself",
        ),
        update(&["Ecr_Pull"], 2, "is not a Secret name"),
        update(
            &["absent-pull", "--skip-registry-check"],
            1,
            "--registry-secret: Secret sparrow-mesh/absent-pull does not exist: have the tool that keeps it write it there first",
        ),
        update(
            &["opaque-pull", "--skip-registry-check"],
            1,
            "--registry-secret: Secret sparrow-mesh/opaque-pull cannot be used: it is of type Opaque, not kubernetes.io/dockerconfigjson; nothing was changed",
        ),
        update(
            &["elsewhere-pull", "--skip-registry-check"],
            1,
            "--registry-secret: Secret sparrow-mesh/elsewhere-pull cannot be used: no entry under \"auths\" covers 127.0.0.1:5000",
        ),
    ];
    for conflicting in [
        &["--registry-username", "u", "--registry-password", "p"][..],
        &["--registry-key", "key.json"][..],
        &["--registry-credential-expires", "2030-01-01"][..],
        &["--registry-password-stdin"][..],
    ] {
        let mut args = vec!["ecr-pull"];
        args.extend_from_slice(conflicting);
        cases.push(update(&args, 2, "cannot be used with"));
    }
    cases
}

/// Secrets in the mesh namespace that `--registry-secret` must refuse: of another type, and
/// with no login for the mesh's registry.
fn external_secrets(kubeconfig: &Path, home: &Path) {
    for create in [
        &[
            "create",
            "secret",
            "generic",
            "opaque-pull",
            "--from-literal=token=x",
        ][..],
        &[
            "create",
            "secret",
            "docker-registry",
            "elsewhere-pull",
            "--docker-server=registry.elsewhere.example",
            "--docker-username=u",
            "--docker-password=TOPSECRET-token-value",
        ][..],
    ] {
        let mut args = vec!["-n", "sparrow-mesh"];
        args.extend_from_slice(create);
        kubectl(kubeconfig, home, &args);
    }
}

fn writes(cluster: &TestCluster) -> u64 {
    cluster
        .requests()
        .iter()
        .filter(|((verb, _), _)| {
            matches!(
                verb.as_str(),
                "create" | "update" | "patch" | "delete" | "deletecollection"
            )
        })
        .map(|(_, n)| n)
        .sum()
}

async fn run(case: &Case, kubeconfig: &Path, home: &Path) -> std::process::Output {
    let args = case.args.clone();
    let stdin = case.stdin.clone();
    let kubeconfig = kubeconfig.to_path_buf();
    let home = home.to_path_buf();
    tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("sparrowctl")
            .expect("binary")
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", home)
            .env_remove("SPARROW_REGISTRY_PASSWORD")
            .args(&args)
            .write_stdin(stdin)
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .expect("run sparrowctl")
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_is_one_clear_line_with_no_write() {
    let cluster = TestCluster::start().await.expect("testkube");
    let files = Files::new();
    // A mesh to protect: every case below must leave it exactly as it is.
    let kubeconfig = deployed(&cluster, &files).await;
    external_secrets(&kubeconfig, files.dir.path());

    write_kubeconfigs(&files, &cluster.kubeconfig());
    let mut cases = flag_cases();
    cases.extend(file_cases(&files));
    cases.extend(plugin_cases(&files));
    cases.extend(kubeconfig_credential_cases(&files));
    cases.extend(images_from_cases(&files));
    cases.extend(stdin_cases());
    cases.extend(inject_cases(&files));
    let mut failures = Vec::new();
    for case in &cases {
        cluster.reset_requests();
        let output = run(case, &kubeconfig, files.dir.path()).await;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let shown: Vec<String> = case
            .args
            .iter()
            .map(|a| a.chars().take(60).collect())
            .collect();
        let mut problems = Vec::new();
        if output.status.code() != Some(case.code) {
            problems.push(format!(
                "exit {:?}, want {}",
                output.status.code(),
                case.code
            ));
        }
        if !stderr.contains(&case.needle) {
            problems.push(format!("stderr lacks {:?}", case.needle));
        }
        if stderr.lines().count() != 1 || !stderr.starts_with("error: ") {
            problems.push("not one error line".to_owned());
        }
        if stderr.contains("internal error")
            || stderr.contains("panicked")
            || stderr.contains("RUST_BACKTRACE")
        {
            problems.push("panic".to_owned());
        }
        if stderr.contains(SECRET) || stdout.contains(SECRET) {
            problems.push("secret echoed".to_owned());
        }
        if writes(&cluster) != 0 {
            problems.push(format!("wrote to the cluster: {:?}", cluster.requests()));
        }
        if case.code == 2 && cluster.total_requests() != 0 {
            problems.push(format!(
                "usage error contacted the cluster: {:?}",
                cluster.requests()
            ));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{shown:?}: {} | stderr: {}",
                problems.join("; "),
                stderr.trim_end()
            ));
        }
    }
    eprintln!(
        "bad-input catalog (CLI): {} cases, {} failed",
        cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        cases.len() >= 150,
        "the catalog holds {} cases",
        cases.len()
    );
}

/// A testkube holding a mesh deployed with `robot`/[`SECRET`], its kubeconfig in `files`.
async fn deployed(cluster: &TestCluster, files: &Files) -> PathBuf {
    let kubeconfig = files.path("kubeconfig");
    std::fs::write(&kubeconfig, cluster.kubeconfig()).expect("kubeconfig");
    let setup = case(
        &[
            "deploy",
            "--wait=false",
            "--skip-registry-check",
            "--registry-server",
            "127.0.0.1:5000/mesh",
            "--registry-username",
            "robot",
            "--registry-password",
            SECRET,
        ],
        0,
        "",
    );
    let output = run(&setup, &kubeconfig, files.dir.path()).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    kubeconfig
}

/// The controller's certificate keeper for the default mesh, never waiting.
fn keeper(cluster: &TestCluster) -> sparrow_kube::runtime::webhook_certs::CertKeeper {
    use sparrow_core::webhook_pki::{DEFAULT_LEAF_VALIDITY, Lifetimes};
    sparrow_kube::runtime::webhook_certs::CertKeeper::new(
        cluster.client(),
        "sparrow-mesh",
        sparrow_core::tls::service_dns_names("sparrow-mesh"),
        Lifetimes::for_leaf(DEFAULT_LEAF_VALIDITY, std::time::Duration::ZERO),
    )
}

/// The user name stored in the mesh's pull secret.
fn stored_user(cluster: &TestCluster) -> String {
    use base64::Engine as _;
    let secret = cluster
        .object("secrets", "sparrow-mesh", "sparrow-registry-key")
        .expect("pull secret");
    let data = secret["data"][".dockerconfigjson"].as_str().expect("data");
    let json = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    let config: serde_json::Value = serde_json::from_slice(&json).expect("json");
    config["auths"]["127.0.0.1:5000"]["username"]
        .as_str()
        .expect("username")
        .to_owned()
}

fn rotation(user: &str) -> Case {
    with_stdin(
        case(
            &[
                "registry",
                "update",
                "--skip-registry-check",
                "--registry-username",
                user,
                "--registry-password-stdin",
                "--timeout",
                "60s",
            ],
            0,
            "",
        ),
        b"new-password\n".to_vec(),
    )
}

fn assert_success(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_update_waits_for_an_api_server_that_restarts() {
    let cluster = TestCluster::start().await.expect("testkube");
    let files = Files::new();
    let kubeconfig = deployed(&cluster, &files).await;

    // The API server answers 500 while its etcd restarts ("etcdserver: leader changed"):
    // the update is sent again (kube-rs itself retries only 429, 503 and 504).
    cluster.fail_next("patch", "secrets", 2, 500);
    let output = run(&rotation("robot2"), &kubeconfig, files.dir.path()).await;
    assert_success(&output);
    assert_eq!(stored_user(&cluster), "robot2");

    // The API server is down: a connection is cut, then refused, then it is back.
    cluster.stop().await;
    let listener = bind_when_free(cluster.addr()).await;
    let update = tokio::spawn({
        let case = rotation("robot3");
        let kubeconfig = kubeconfig.clone();
        let home = files.dir.path().to_path_buf();
        async move { run(&case, &kubeconfig, &home).await }
    });
    let (connection, _) = listener.accept().await.expect("the CLI connects");
    drop(connection);
    drop(listener);
    cluster.resume().await.expect("resume");
    let output = update.await.expect("join");
    assert_success(&output);
    assert_eq!(stored_user(&cluster), "robot3");
}

/// A listener on `addr` once the stopped API server's own listener has let go of it (its
/// tasks wind down on a loaded machine a moment after `stop` returns).
async fn bind_when_free(addr: std::net::SocketAddr) -> tokio::net::TcpListener {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(error)
                if error.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(error) => panic!("bind the API server's address {addr}: {error}"),
        }
    }
}

/// kubectl against `kubeconfig`; it must succeed.
fn kubectl(kubeconfig: &Path, home: &Path, args: &[&str]) {
    let output = std::process::Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home)
        .args(args)
        .output()
        .expect("kubectl not found: apt-get install -y kubernetes-client");
    assert_success(&output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_says_a_wrong_ca_bundle_blocks_pod_creation() {
    let cluster = TestCluster::builder()
        .ready_deployments()
        .start()
        .await
        .expect("testkube");
    let files = Files::new();
    let kubeconfig = deployed(&cluster, &files).await;
    // What the controller does at start (testkube runs no pod): its certificates and caBundle.
    keeper(&cluster).settle().await.expect("certificates kept");
    let home = files.dir.path();
    kubectl(&kubeconfig, home, &["create", "namespace", "shop"]);
    let label = "injector.sparrow-mesh.io/auto-inject=enabled";
    kubectl(&kubeconfig, home, &["label", "namespace", "shop", label]);
    let status = case(&["status"], 0, "");
    // Positive control: with the caBundle the controller wrote, nothing is blocked.
    let output = run(&status, &kubeconfig, home).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        stdout.contains("✓ admission: pod creation is not blocked anywhere"),
        "{stdout}"
    );

    use base64::Engine as _;
    let other_ca = base64::engine::general_purpose::STANDARD.encode(
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2A=\n-----END CERTIFICATE-----\n",
    );
    let patch = format!(
        r#"[{{"op":"replace","path":"/webhooks/0/clientConfig/caBundle","value":"{other_ca}"}}]"#
    );
    kubectl(
        &kubeconfig,
        home,
        &[
            "patch",
            "mutatingwebhookconfiguration",
            "sparrow-sidecar-injector",
            "--type=json",
            "-p",
            &patch,
        ],
    );
    let output = run(&status, &kubeconfig, home).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("caBundle does NOT verify the serving certificate"),
        "{stdout}"
    );
    assert!(
        stdout.contains("✗ admission: pod creation is blocked in namespace(s) shop"),
        "{stdout}"
    );
    assert!(
        stdout.contains("because the API server cannot verify the controller's certificate"),
        "{stdout}"
    );
    assert!(!stdout.contains("not blocked anywhere"), "{stdout}");
}
