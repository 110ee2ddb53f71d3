use super::*;

#[test]
fn accepts_and_normalises() {
    // (input, Display, auth_key, image("sparrow-proxy", "1.0"))
    let cases = [
        (
            "registry.example.com",
            "registry.example.com",
            "registry.example.com",
            "registry.example.com/sparrow-proxy:1.0",
        ),
        (
            "registry.example.com:5000/mesh",
            "registry.example.com:5000/mesh",
            "registry.example.com:5000",
            "registry.example.com:5000/mesh/sparrow-proxy:1.0",
        ),
        (
            "https://registry.example.com:5000/mesh/",
            "registry.example.com:5000/mesh",
            "registry.example.com:5000",
            "registry.example.com:5000/mesh/sparrow-proxy:1.0",
        ),
        (
            "http://harbor.local/",
            "harbor.local",
            "harbor.local",
            "harbor.local/sparrow-proxy:1.0",
        ),
        (
            "HTTPS://harbor.local",
            "harbor.local",
            "harbor.local",
            "harbor.local/sparrow-proxy:1.0",
        ),
        (
            "localhost:5000",
            "localhost:5000",
            "localhost:5000",
            "localhost:5000/sparrow-proxy:1.0",
        ),
        (
            "127.0.0.1:5000/team/mesh",
            "127.0.0.1:5000/team/mesh",
            "127.0.0.1:5000",
            "127.0.0.1:5000/team/mesh/sparrow-proxy:1.0",
        ),
        (
            "[::1]:5000/mesh",
            "[::1]:5000/mesh",
            "[::1]:5000",
            "[::1]:5000/mesh/sparrow-proxy:1.0",
        ),
        (
            "[fe80::1]",
            "[fe80::1]",
            "[fe80::1]",
            "[fe80::1]/sparrow-proxy:1.0",
        ),
        (
            "europe-docker.pkg.dev/acme/mesh",
            "europe-docker.pkg.dev/acme/mesh",
            "europe-docker.pkg.dev",
            "europe-docker.pkg.dev/acme/mesh/sparrow-proxy:1.0",
        ),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/mesh",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/mesh",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/mesh/sparrow-proxy:1.0",
        ),
        (
            "docker.io/acme",
            "docker.io/acme",
            "https://index.docker.io/v1/",
            "docker.io/acme/sparrow-proxy:1.0",
        ),
        (
            "index.docker.io/acme",
            "index.docker.io/acme",
            "https://index.docker.io/v1/",
            "index.docker.io/acme/sparrow-proxy:1.0",
        ),
        (
            "registry-1.docker.io/acme",
            "registry-1.docker.io/acme",
            "https://index.docker.io/v1/",
            "registry-1.docker.io/acme/sparrow-proxy:1.0",
        ),
        (
            "registry:1",
            "registry:1",
            "registry:1",
            "registry:1/sparrow-proxy:1.0",
        ),
        (
            "registry:65535/a.b_c__d---e",
            "registry:65535/a.b_c__d---e",
            "registry:65535",
            "registry:65535/a.b_c__d---e/sparrow-proxy:1.0",
        ),
    ];
    for (input, display, auth_key, image) in cases {
        let server = RegistryServer::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(server.to_string(), display, "{input}");
        assert_eq!(server.auth_key(), auth_key, "{input}");
        assert_eq!(server.image("sparrow-proxy", "1.0"), image, "{input}");
    }
}

#[test]
fn docker_hub_with_a_port_is_a_plain_registry() {
    let server = RegistryServer::parse("docker.io:443/acme").expect("valid");
    assert_eq!(server.auth_key(), "docker.io:443");
}

#[test]
fn default_is_ghcr() {
    assert_eq!(
        RegistryServer::default().to_string(),
        crate::names::DEFAULT_REGISTRY_SERVER
    );
    assert_eq!(
        RegistryServer::parse(crate::names::DEFAULT_REGISTRY_SERVER).expect("valid"),
        RegistryServer::default()
    );
}

#[test]
fn refuses_with_a_message_naming_the_value() {
    // (input, expected variant check, text the message must contain)
    let cases: &[(&str, &str)] = &[
        ("", "--registry-server is empty"),
        ("https://", "--registry-server is empty"),
        (
            "registry .example.com",
            "\"registry .example.com\" contains whitespace",
        ),
        ("registry.example.com\n", "contains whitespace"),
        (
            "robot@registry.example.com",
            "\"***@registry.example.com\" contains user information",
        ),
        (
            "https://robot:pw@registry.example.com/mesh",
            "\"https://***@registry.example.com/mesh\" contains user information",
        ),
        (
            "registry.example.com/mesh:1.0",
            "\"registry.example.com/mesh:1.0\" contains an image tag",
        ),
        (
            "registry.example.com/mesh@sha256:abcd",
            "\"registry.example.com/mesh@***\" contains a digest",
        ),
        // A digest on a bare host is a digest, not user information; masked all the same, as
        // it may be a password pasted after the `@`.
        ("reg.com@sha256:abcd", "\"reg.com@***\" contains a digest"),
        (
            "registry.example.com/mesh@sha256:s3cret-pw",
            "\"registry.example.com/mesh@***\" contains a digest",
        ),
        // A query or fragment is refused, and masked: it often holds a token.
        (
            "registry.example.com/mesh?password=s3cret-pw",
            "\"registry.example.com/mesh?***\" contains a query or fragment",
        ),
        (
            "registry.example.com?token=s3cret-pw",
            "\"registry.example.com?***\" contains a query or fragment",
        ),
        (
            "registry.example.com/mesh#s3cret-pw",
            "\"registry.example.com/mesh#***\" contains a query or fragment",
        ),
        (
            "registry.example.com/mesh?token=s3cret pw",
            "\"registry.example.com/mesh?***\" contains whitespace",
        ),
        ("reg.com:5000@sha256:abcd", "contains a digest"),
        // Found by fuzzing: a host:port after the @ has a digest's shape, but what precedes
        // it is no host: user information, with the password masked.
        (
            "robot:s3cret-pw@registry:5000",
            "\"***@registry:5000\" contains user information",
        ),
        ("ftp://registry.example.com", "unsupported scheme"),
        // Found by fuzzing: credentials pasted before the scheme are masked too.
        (
            "robot:s3cret-pw@https://registry.example.com",
            "\"***://registry.example.com\" has an unsupported scheme",
        ),
        // Found by fuzzing: `2Ai/sparrow-proxy` names a Docker Hub repository, not a registry.
        (
            "2Ai",
            "the single-label host \"2Ai\" would be read as a Docker Hub namespace",
        ),
        (
            "harbor/team",
            "give its full name (such as harbor.example.com), add the port (harbor:443) or use localhost",
        ),
        ("registry.example.com:0", "invalid port \"0\""),
        ("registry.example.com:65536", "invalid port \"65536\""),
        ("registry.example.com:http", "invalid port \"http\""),
        ("registry.example.com:", "invalid port \"\""),
        ("registry.example.com:+80", "invalid port \"+80\""),
        ("[::1]:0", "invalid port \"0\""),
        (
            "registry.example.com:000005000",
            "invalid port \"000005000\"",
        ),
        // Found by fuzzing: a long run of digits is no port, so what precedes the `@` is user
        // information, not a host before a digest, and its password is masked.
        (
            "[::1]:0000000000000002@w:g-",
            "\"***@w:g-\" contains user information",
        ),
        ("[::1", "invalid host"),
        ("[not-ipv6]:5000", "invalid host"),
        ("[::1]5000", "invalid host"),
        (
            "-registry.example.com",
            "invalid host \"-registry.example.com\"",
        ),
        ("registry..example.com", "invalid host"),
        ("regi$try.example.com", "invalid host"),
        ("registry.example.com/Mesh", "invalid path segment \"Mesh\""),
        ("registry.example.com/me sh", "contains whitespace"),
        (
            "registry.example.com/mesh!",
            "invalid path segment \"mesh!\"",
        ),
        (
            "registry.example.com/-mesh",
            "invalid path segment \"-mesh\"",
        ),
        (
            "registry.example.com/mesh.",
            "invalid path segment \"mesh.\"",
        ),
        (
            "registry.example.com/a___b",
            "invalid path segment \"a___b\"",
        ),
        ("registry.example.com//mesh", "empty path segment"),
        ("registry.example.com/a//b", "empty path segment"),
        ("registry.example.com/mesh//", "empty path segment"),
    ];
    for (input, needle) in cases {
        let err = RegistryServer::parse(input).expect_err(input).to_string();
        assert!(
            err.contains(needle),
            "{input:?}: {err:?} does not contain {needle:?}"
        );
        assert!(!err.contains('\n'), "one line: {err:?}");
        assert!(
            !err.contains("s3cret") && !err.contains("robot"),
            "user information is masked: {err:?}"
        );
    }
}
