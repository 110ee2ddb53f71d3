//! `images push`, `images list` and `--images-from` against the real docker-registry (htpasswd,
//! TLS from a generated CA; one plain-HTTP instance), with a layout built here by
//! sparrow-image from small stand-in binaries (the registry does not care what the bytes run;
//! the images themselves are run by sparrow-image's run_images test).

use std::path::{Path, PathBuf};
use std::process::Output;

use sparrow_core::{RegistryAuth, RegistryServer, dockerconfigjson};
use sparrow_image::{ImageSpec, MODE_EXEC, base_rootfs, build_image, layout_files, write_layout};
use sparrow_registry_fixture::LocalRegistry;

const TAG: &str = "9.9.9";
const USER: &str = "robot";
const PASSWORD: &str = "s3cret-pw";
const NAMES: [&str; 3] = ["sparrow-controller", "sparrow-proxy", "sparrow-init"];
/// A JSON key: the registry's `_json_key` user has it as its password.
const KEY: &str = r#"{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"}"#;

struct Built {
    dir: tempfile::TempDir,
    digests: Vec<String>,
}

impl Built {
    fn layout(&self) -> PathBuf {
        self.dir.path().join("layout")
    }

    fn archive(&self) -> PathBuf {
        self.dir.path().join("sparrow-images.tar")
    }
}

/// A layout (and its archive) holding `names` at `TAG`, each with its own stand-in binary.
fn build(names: &[&str]) -> Built {
    let dir = tempfile::tempdir().expect("tempdir");
    let images: Vec<_> = names
        .iter()
        .map(|name| {
            let mut rootfs = base_rootfs();
            let binary = format!("usr/local/bin/{name}");
            rootfs.file(
                &binary,
                format!("stand-in for {name}\n").repeat(4096),
                MODE_EXEC,
            );
            build_image(&ImageSpec {
                name: (*name).to_owned(),
                tag: TAG.to_owned(),
                revision: "0123456789abcdef".to_owned(),
                source: "https://example.com/sparrow".to_owned(),
                entrypoint: vec![format!("/{binary}")],
                user: "65532:65532".to_owned(),
                env: Vec::new(),
                rootfs,
                epoch: 1_700_000_000,
            })
            .expect("image builds")
        })
        .collect();
    let files = layout_files(&images).expect("layout");
    std::fs::create_dir_all(dir.path().join("layout")).expect("mkdir");
    write_layout(&dir.path().join("layout"), &files).expect("write layout");
    let tar = sparrow_image::archive(&files, 1_700_000_000).expect("archive");
    std::fs::write(dir.path().join("sparrow-images.tar"), tar).expect("write archive");
    Built {
        digests: images
            .iter()
            .map(|image| image.index.digest.clone())
            .collect(),
        dir,
    }
}

async fn registry() -> LocalRegistry {
    LocalRegistry::start(&[(USER, PASSWORD), ("_json_key", KEY)])
        .await
        .unwrap_or_else(|error| panic!("{error}"))
}

async fn sparrowctl(args: Vec<String>, stdin: &str) -> Output {
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut cmd = assert_cmd::Command::cargo_bin("sparrowctl").expect("binary");
        cmd.env_remove("SPARROW_REGISTRY_PASSWORD")
            .env("KUBECONFIG", "/nonexistent");
        cmd.args(&args).write_stdin(stdin).output().expect("run")
    })
    .await
    .expect("join")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// `images push --from FROM --registry-server R/PATH --registry-ca CA` plus `credentials`.
fn push_args(
    registry: &LocalRegistry,
    path: &str,
    from: &Path,
    credentials: &[&str],
) -> Vec<String> {
    let mut list = strings(&["images", "push", "--timeout", "20s", "--image-tag", TAG]);
    list.extend([
        "--from".to_owned(),
        from.display().to_string(),
        "--registry-server".to_owned(),
        format!("{}/{path}", registry.authority()),
        "--registry-ca".to_owned(),
        registry.ca_path().display().to_string(),
    ]);
    list.extend(strings(credentials));
    list
}

fn password_login() -> [&'static str; 3] {
    ["--registry-username", USER, "--registry-password-stdin"]
}

/// A docker config file for skopeo with `auth` for the registry.
fn authfile(registry: &LocalRegistry, auth: &RegistryAuth, dir: &Path) -> PathBuf {
    let server = RegistryServer::parse(&registry.authority()).expect("server");
    let path = dir.join("auth.json");
    std::fs::write(&path, dockerconfigjson(&server, auth)).expect("authfile");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_push_uploads_everything_once_and_skopeo_finds_each_image() {
    let registry = registry().await;
    let built = build(&NAMES);
    let output = sparrowctl(
        push_args(&registry, "team/mesh", &built.layout(), &password_login()),
        &format!("{PASSWORD}\n"),
    )
    .await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    for (name, digest) in NAMES.iter().zip(&built.digests) {
        let line = stdout
            .lines()
            .find(|line| line.contains(&format!("/team/mesh/{name}:{TAG}")))
            .unwrap_or_else(|| panic!("no line for {name}: {stdout}"));
        assert!(line.starts_with("pushed "), "{line}");
        assert!(line.contains(digest.as_str()), "{line}");
        assert!(line.contains("(2 blobs uploaded"), "{line}");
    }
    assert!(!stdout.contains(PASSWORD) && !text(&output.stderr).contains(PASSWORD));

    let dir = tempfile::tempdir().expect("tempdir");
    let auth = RegistryAuth::user_password(USER, PASSWORD).expect("auth");
    let authfile = authfile(&registry, &auth, dir.path());
    for (name, digest) in NAMES.iter().zip(&built.digests) {
        let image = format!("{}/team/mesh/{name}:{TAG}", registry.authority());
        let inspect = registry
            .skopeo_inspect(&image, Some(&authfile))
            .await
            .expect("skopeo");
        let inspected = text(&inspect.stdout);
        assert!(
            inspect.status.success(),
            "{inspected}{}",
            text(&inspect.stderr)
        );
        let json: serde_json::Value = serde_json::from_str(&inspected).expect("skopeo JSON");
        assert_eq!(json["Labels"]["org.opencontainers.image.title"], *name);
        assert_eq!(json["Architecture"], "amd64");
        // The tag is the one-entry index: skopeo reports its digest.
        assert_eq!(json["Digest"], digest.as_str(), "{inspected}");
    }

    // The second push writes nothing: every blob, manifest and tag is already there.
    let output = sparrowctl(
        push_args(&registry, "team/mesh", &built.archive(), &password_login()),
        &format!("{PASSWORD}\n"),
    )
    .await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("already present "))
            .count(),
        3,
        "{stdout}"
    );
    assert!(stdout.contains("(3 already present)"), "{stdout}");

    // `registry check --images-from` finds all three, pinned by digest.
    let mut check = strings(&["registry", "check", "--timeout", "20s", "--image-tag", TAG]);
    check.extend([
        "--registry-server".to_owned(),
        format!("{}/team/mesh", registry.authority()),
        "--registry-ca".to_owned(),
        registry.ca_path().display().to_string(),
        "--images-from".to_owned(),
        built.archive().display().to_string(),
    ]);
    check.extend(strings(&password_login()));
    let output = sparrowctl(check, &format!("{PASSWORD}\n")).await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    for (name, digest) in NAMES.iter().zip(&built.digests) {
        assert!(
            stdout.contains(&format!("/team/mesh/{name}:{TAG}@{digest}  found {digest}")),
            "{stdout}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_key_push_works_and_a_wrong_password_tags_nothing() {
    let registry = registry().await;
    let built = build(&NAMES);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key.json");
    std::fs::write(&key, format!("{KEY}\n")).expect("key file");
    let key_flag = key.display().to_string();
    let output = sparrowctl(
        push_args(
            &registry,
            "keyed",
            &built.archive(),
            &["--registry-key", &key_flag],
        ),
        "",
    )
    .await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("pushed ")).count(),
        3,
        "{stdout}"
    );
    assert!(!stdout.contains("private_key") && !text(&output.stderr).contains("private_key"));

    // Wrong password: one line naming the first image and the cause, exit 1, and no tag.
    let output = sparrowctl(
        push_args(&registry, "refused", &built.layout(), &password_login()),
        "wrong-pw\n",
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: {}/refused/sparrow-controller:{TAG}: unauthorized: the registry refused the credentials",
            registry.authority()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-pw"), "{stderr}");
    let auth = RegistryAuth::user_password(USER, PASSWORD).expect("auth");
    let authfile = authfile(&registry, &auth, dir.path());
    for name in NAMES {
        let image = format!("{}/refused/{name}:{TAG}", registry.authority());
        let inspect = registry
            .skopeo_inspect(&image, Some(&authfile))
            .await
            .expect("skopeo");
        assert!(!inspect.status.success(), "{image} exists");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_one_line_naming_the_problem() {
    let registry = registry().await;
    let two = build(&NAMES[..2]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let not_tar = scratch.path().join("images.tar");
    std::fs::write(&not_tar, "certainly not a tar archive\n".repeat(40)).expect("write");
    let empty_dir = scratch.path().join("empty");
    std::fs::create_dir(&empty_dir).expect("mkdir");
    let missing = scratch.path().join("missing.tar");
    let cases: Vec<(PathBuf, String)> = vec![
        (
            missing.clone(),
            format!(
                "error: --from {}: no such file or directory",
                missing.display()
            ),
        ),
        (
            empty_dir.clone(),
            format!(
                "error: --from {}: not an OCI image layout (no oci-layout)",
                empty_dir.display()
            ),
        ),
        (
            not_tar.clone(),
            format!(
                "error: --from {}: not an OCI archive (not a tar file)",
                not_tar.display()
            ),
        ),
        (
            two.layout(),
            format!(
                "error: {} has no image sparrow-init:{TAG} (it holds: sparrow-controller:{TAG}, sparrow-proxy:{TAG})",
                two.layout().display()
            ),
        ),
    ];
    for (from, expected) in cases {
        let output = sparrowctl(
            push_args(&registry, "bad", &from, &password_login()),
            &format!("{PASSWORD}\n"),
        )
        .await;
        let stderr = text(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}: {stderr}",
            from.display()
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with(&expected),
            "{stderr}\nexpected: {expected}"
        );
        assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
    }

    // TLS failure: the line names the image and gives the --registry-ca hint.
    let built = build(&NAMES);
    let mut no_ca = strings(&["images", "push", "--timeout", "20s", "--image-tag", TAG]);
    no_ca.extend([
        "--from".to_owned(),
        built.layout().display().to_string(),
        "--registry-server".to_owned(),
        format!("{}/tls", registry.authority()),
    ]);
    let output = sparrowctl(no_ca, "").await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("/tls/sparrow-controller:9.9.9: TLS failure"),
        "{stderr}"
    );
    assert!(stderr.contains("pass --registry-ca FILE"), "{stderr}");

    // Unreachable: a port nobody listens on.
    let mut stopped = LocalRegistry::start(&[]).await.expect("registry");
    let authority = stopped.authority();
    stopped.stop();
    let mut gone = strings(&["images", "push", "--timeout", "20s", "--image-tag", TAG]);
    gone.extend([
        "--from".to_owned(),
        built.layout().display().to_string(),
        "--registry-server".to_owned(),
        authority.clone(),
    ]);
    let output = sparrowctl(gone, "").await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: {authority}/sparrow-controller:{TAG}: unreachable: connection to {authority} refused"
        )
    );

    // Usage: push needs a registry.
    let output = sparrowctl(
        strings(&[
            "images",
            "push",
            "--from",
            &built.layout().display().to_string(),
        ]),
        "",
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).starts_with("error: images push needs --registry-server"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_registries_are_used_over_http_with_a_warning() {
    let registry = LocalRegistry::start_plain_http(&[(USER, PASSWORD)])
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let built = build(&NAMES);
    let server = format!("http://{}/kind", registry.authority());
    let mut push = strings(&["images", "push", "--timeout", "20s", "--image-tag", TAG]);
    push.extend([
        "--from".to_owned(),
        built.layout().display().to_string(),
        "--registry-server".to_owned(),
        server.clone(),
    ]);
    push.extend(strings(&password_login()));
    let output = sparrowctl(push, &format!("{PASSWORD}\n")).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("pushed ")).count(),
        3,
        "{stdout}"
    );
    assert!(
        stderr.starts_with(&format!(
            "warning: --registry-server http://{}/kind: plain HTTP",
            registry.authority()
        )),
        "{stderr}"
    );

    let mut check = strings(&["registry", "check", "--timeout", "20s", "--image-tag", TAG]);
    check.extend(["--registry-server".to_owned(), server]);
    check.extend(strings(&password_login()));
    let output = sparrowctl(check, &format!("{PASSWORD}\n")).await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("found sha256:"))
            .count(),
        3
    );
}

#[tokio::test]
async fn images_list_prints_references_pinned_by_the_layout() {
    let built = build(&NAMES);
    let base = strings(&[
        "images",
        "list",
        "--registry-server",
        "registry.example.com:5000/mesh",
        "--image-tag",
        TAG,
    ]);
    let output = sparrowctl(base.clone(), "").await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        format!(
            "registry.example.com:5000/mesh/sparrow-controller:{TAG}\n\
             registry.example.com:5000/mesh/sparrow-proxy:{TAG}\n\
             registry.example.com:5000/mesh/sparrow-init:{TAG}\n"
        )
    );

    let mut pinned = base.clone();
    pinned.extend([
        "--from".to_owned(),
        built.archive().display().to_string(),
        "--sidecar-image".to_owned(),
        "mirror.example.com/proxy:1".to_owned(),
        "-o".to_owned(),
        "json".to_owned(),
    ]);
    let output = sparrowctl(pinned, "").await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        json,
        serde_json::json!([
            {"component": "controller", "image": format!("registry.example.com:5000/mesh/sparrow-controller:{TAG}@{}", built.digests[0])},
            {"component": "proxy", "image": "mirror.example.com/proxy:1"},
            {"component": "init", "image": format!("registry.example.com:5000/mesh/sparrow-init:{TAG}@{}", built.digests[2])},
        ])
    );
}

#[tokio::test]
async fn deploy_dry_run_pins_the_images_from_a_layout() {
    let built = build(&NAMES);
    let output = sparrowctl(
        vec![
            "deploy".to_owned(),
            "--dry-run".to_owned(),
            "--registry-server".to_owned(),
            "registry.example.com:5000/mesh".to_owned(),
            "--image-tag".to_owned(),
            TAG.to_owned(),
            "--images-from".to_owned(),
            built.layout().display().to_string(),
        ],
        "",
    )
    .await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    for (name, digest) in NAMES.iter().zip(&built.digests) {
        assert!(
            stdout.contains(&format!(
                "registry.example.com:5000/mesh/{name}:{TAG}@{digest}"
            )),
            "{name} not pinned:\n{stdout}"
        );
    }

    let output = sparrowctl(
        strings(&[
            "deploy",
            "--dry-run",
            "--images-from",
            "/nonexistent/images",
        ]),
        "",
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr).trim_end(),
        "error: --images-from /nonexistent/images: no such file or directory: give the directory or the .tar that scripts/build-images.sh writes (target/images/)"
    );
}

/// A registry front that refuses blob uploads into repositories whose path contains `refuse`
/// with 413 and a quota error, as a registry behind a size-limiting proxy or over its quota
/// does, and passes every other request to `upstream` unchanged (one request per connection).
struct QuotaFront {
    port: u16,
}

impl QuotaFront {
    fn start(upstream: String, refuse: &'static str) -> QuotaFront {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let upstream = upstream.clone();
                std::thread::spawn(move || {
                    let _ = Self::serve(client, &upstream, refuse);
                });
            }
        });
        QuotaFront { port }
    }

    fn serve(mut client: std::net::TcpStream, upstream: &str, refuse: &str) -> std::io::Result<()> {
        use std::io::{BufRead as _, Read as _, Write as _};
        let mut reader = std::io::BufReader::new(client.try_clone()?);
        let mut head = Vec::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("connection:") {
                continue;
            }
            if line == "\r\n" {
                break;
            }
            head.push(line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let request_line = head.first().cloned().unwrap_or_default();
        let mut words = request_line.split(' ');
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        if matches!(method, "PATCH" | "PUT")
            && path.contains(refuse)
            && path.contains("/blobs/uploads/")
        {
            let answer = r#"{"errors":[{"code":"DENIED","message":"quota exceeded: the repository holds at most 0 bytes"}]}"#;
            write!(
                client,
                "HTTP/1.1 413 Request Entity Too Large\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            )?;
            return Ok(());
        }
        let mut server = std::net::TcpStream::connect(upstream)?;
        for line in &head {
            server.write_all(line.as_bytes())?;
        }
        server.write_all(b"connection: close\r\n\r\n")?;
        server.write_all(&body)?;
        std::io::copy(&mut server, &mut client)?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_refusal_midway_names_the_image_and_leaves_no_half_pushed_tag() {
    let registry = LocalRegistry::start_plain_http(&[(USER, PASSWORD)])
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let front = QuotaFront::start(registry.authority(), "/sparrow-proxy/");
    let built = build(&NAMES);
    let server = format!("http://127.0.0.1:{}/quota", front.port);
    let mut push = strings(&["images", "push", "--timeout", "20s", "--image-tag", TAG]);
    push.extend([
        "--from".to_owned(),
        built.layout().display().to_string(),
        "--registry-server".to_owned(),
        server,
    ]);
    push.extend(strings(&password_login()));
    let output = sparrowctl(push, &format!("{PASSWORD}\n")).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    // The controller went in whole before the proxy's first blob was refused.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("pushed ") && l.contains("/quota/sparrow-controller:")),
        "{stdout}"
    );
    let error: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("warning:"))
        .collect();
    assert_eq!(error.len(), 1, "{stderr}");
    assert!(
        error[0].starts_with(&format!(
            "error: 127.0.0.1:{}/quota/sparrow-proxy:{TAG}: ",
            front.port
        )),
        "{stderr}"
    );
    assert!(
        error[0].ends_with(&format!(
            "sparrow-proxy:{TAG}: 127.0.0.1:{} refused the upload as too large or over its quota (HTTP 413): DENIED: quota exceeded: the repository holds at most 0 bytes",
            front.port
        )),
        "{stderr}"
    );

    // Straight at the registry: the controller's tag is there, the proxy's and the init's not.
    let mut check = strings(&["registry", "check", "--timeout", "20s", "--image-tag", TAG]);
    check.extend([
        "--registry-server".to_owned(),
        format!("http://{}/quota", registry.authority()),
    ]);
    check.extend(strings(&password_login()));
    let output = sparrowctl(check, &format!("{PASSWORD}\n")).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("sparrow-controller") && l.contains("found sha256:")),
        "{stdout}"
    );
    for name in ["sparrow-proxy", "sparrow-init"] {
        assert!(
            !stdout
                .lines()
                .any(|l| l.contains(name) && l.contains("found sha256:")),
            "{name} is tagged: {stdout}"
        );
    }
}
