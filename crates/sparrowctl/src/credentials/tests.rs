use super::*;

struct Run {
    result: anyhow::Result<Registry>,
    warnings: String,
    stdin_read: bool,
}

/// Resolves `args` with `env` as $SPARROW_REGISTRY_PASSWORD and `stdin` as standard input.
fn resolve(args: RegistryArgs, env: Option<&str>, stdin: &str) -> Run {
    struct Tracking<'a> {
        inner: &'a [u8],
        read: bool,
    }
    impl Read for Tracking<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.read = true;
            self.inner.read(buf)
        }
    }
    let mut input = Tracking {
        inner: stdin.as_bytes(),
        read: false,
    };
    let mut warnings = Vec::new();
    let result = args.resolve(
        PasswordSources {
            env: env.map(str::to_owned),
            stdin: &mut input,
            warnings: &mut warnings,
        },
        None,
    );
    Run {
        result,
        warnings: String::from_utf8(warnings).expect("utf8"),
        stdin_read: input.read,
    }
}

fn args(
    server: Option<&str>,
    key: Option<&str>,
    user: Option<&str>,
    password: Option<&str>,
    stdin: bool,
) -> RegistryArgs {
    RegistryArgs {
        registry_server: server.map(str::to_owned),
        registry_key: key.map(PathBuf::from),
        registry_username: user.map(str::to_owned),
        registry_password: password.map(str::to_owned),
        registry_password_stdin: stdin,
    }
}

const SERVER: Option<&str> = Some("registry.example.com:5000/mesh");

#[test]
fn flag_rules_are_usage_errors_and_read_nothing() {
    let cases = [
        (
            args(SERVER, Some("key.json"), Some("robot"), None, false),
            "--registry-key cannot be used with --registry-username or --registry-password",
        ),
        (
            args(SERVER, Some("key.json"), None, Some("pw"), false),
            "--registry-key cannot be used with --registry-username or --registry-password",
        ),
        (
            args(SERVER, Some("key.json"), None, None, true),
            "--registry-key cannot be used with --registry-username or --registry-password",
        ),
        (
            args(SERVER, None, None, Some("pw"), false),
            "--registry-password must be used with --registry-username",
        ),
        (
            args(SERVER, None, None, None, true),
            "--registry-password must be used with --registry-username",
        ),
        (
            args(SERVER, None, Some("robot"), None, false),
            "--registry-username must be used with a password",
        ),
        (
            args(None, None, Some("robot"), Some("pw"), false),
            "credentials need --registry-server",
        ),
        (
            args(None, Some("key.json"), None, None, false),
            "credentials need --registry-server",
        ),
        (
            args(Some("robot@registry.example.com"), None, None, None, false),
            "contains user information",
        ),
        (
            args(SERVER, None, Some("ro:bot"), Some("pw"), false),
            "contains ':'",
        ),
    ];
    for (args, needle) in cases {
        let run = resolve(args.clone(), None, "from-stdin\n");
        let error = run.result.expect_err(needle);
        assert!(
            error.downcast_ref::<UsageError>().is_some(),
            "{needle}: not a usage error: {error:#}"
        );
        assert!(
            format!("{error:#}").contains(needle),
            "{error:#} does not contain {needle}"
        );
        assert!(
            !run.stdin_read,
            "{needle}: stdin must not be read for a usage error"
        );
    }
}

#[test]
fn server_alone_makes_no_secret_and_no_server_is_the_default() {
    let run = resolve(args(SERVER, None, None, None, false), Some("ambient"), "");
    let registry = run.result.expect("ok");
    assert_eq!(
        registry.server.to_string(),
        "registry.example.com:5000/mesh"
    );
    assert!(registry.auth.is_none());
    let registry = resolve(args(None, None, None, None, false), None, "")
        .result
        .expect("ok");
    assert_eq!(registry.server.to_string(), "ghcr.io/sparrow-mesh");
}

#[test]
fn password_sources() {
    // --registry-password warns.
    let run = resolve(
        args(SERVER, None, Some("robot"), Some("pw1"), false),
        Some("env"),
        "stdin",
    );
    assert_eq!(
        run.result.expect("ok").auth.expect("auth").password(),
        "pw1"
    );
    assert!(
        run.warnings.contains(
            "--registry-password exposes the password on the console and in shell history"
        ),
        "{}",
        run.warnings
    );
    // stdin: one trailing newline removed, no warning.
    let run = resolve(
        args(SERVER, None, Some("robot"), None, true),
        Some("env"),
        "pw 2\n",
    );
    assert_eq!(
        run.result.expect("ok").auth.expect("auth").password(),
        "pw 2"
    );
    assert!(run.warnings.is_empty());
    let run = resolve(
        args(SERVER, None, Some("robot"), None, true),
        None,
        "pw3\r\n",
    );
    assert_eq!(
        run.result.expect("ok").auth.expect("auth").password(),
        "pw3"
    );
    let run = resolve(
        args(SERVER, None, Some("robot"), None, true),
        None,
        "pw4\n\n",
    );
    assert_eq!(
        run.result.expect("ok").auth.expect("auth").password(),
        "pw4\n"
    );
    // env counts as a password next to --registry-username.
    let run = resolve(
        args(SERVER, None, Some("robot"), None, false),
        Some("from-env"),
        "",
    );
    assert_eq!(
        run.result.expect("ok").auth.expect("auth").password(),
        "from-env"
    );
    assert!(run.warnings.is_empty());
    // empty stdin is an error that names the safer ways.
    let run = resolve(args(SERVER, None, Some("robot"), None, true), None, "\n");
    assert!(
        format!("{:#}", run.result.expect_err("empty")).contains("the registry password is empty")
    );
}

#[test]
fn key_file_errors_name_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("key.json");
    std::fs::write(
        &good,
        "{\"type\":\"service_account\",\"private_key\":\"k\"}\n",
    )
    .expect("write");
    let registry = resolve(
        args(
            SERVER,
            Some(good.to_str().expect("utf8")),
            None,
            None,
            false,
        ),
        None,
        "",
    )
    .result
    .expect("ok");
    let auth = registry.auth.expect("auth");
    assert_eq!(auth.username(), "_json_key");
    assert_eq!(
        auth.password(),
        "{\"type\":\"service_account\",\"private_key\":\"k\"}"
    );

    let not_json = dir.path().join("key.txt");
    std::fs::write(&not_json, "private-key-text").expect("write");
    let missing = dir.path().join("missing.json");
    let cases = [
        (missing.clone(), "cannot read the file"),
        (dir.path().to_path_buf(), "is a directory"),
        (not_json.clone(), "is not a JSON object"),
    ];
    for (path, needle) in cases {
        let run = resolve(
            args(
                SERVER,
                Some(path.to_str().expect("utf8")),
                None,
                None,
                false,
            ),
            None,
            "",
        );
        let message = format!("{:#}", run.result.expect_err(needle));
        assert!(message.contains(needle), "{message}");
        assert!(
            message.contains(&path.display().to_string()),
            "names the path: {message}"
        );
        assert!(
            !message.contains("private-key-text"),
            "leaks the key: {message}"
        );
    }
}

#[test]
fn image_flags() {
    let server = RegistryServer::parse("r.example.com/mesh").expect("valid");
    let images = ImageArgs {
        image_tag: Some("1.4.0".into()),
        ..ImageArgs::default()
    }
    .resolve(&server)
    .expect("ok");
    assert_eq!(images.proxy, "r.example.com/mesh/sparrow-proxy:1.4.0");
    for tag in ["", "-x", "a b", "v1:2", &"x".repeat(129)] {
        let error = ImageArgs {
            image_tag: Some(tag.into()),
            ..ImageArgs::default()
        }
        .resolve(&server)
        .expect_err(tag);
        assert!(
            error.downcast_ref::<UsageError>().is_some()
                && error.to_string().contains("invalid --image-tag"),
            "{error}"
        );
    }
    let error = ImageArgs {
        sidecar_image: Some("a b".into()),
        ..ImageArgs::default()
    }
    .resolve(&server)
    .expect_err("space");
    assert!(
        error.to_string().contains("invalid --sidecar-image"),
        "{error}"
    );
}
