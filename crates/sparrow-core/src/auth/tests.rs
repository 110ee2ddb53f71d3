use super::*;

fn server(s: &str) -> RegistryServer {
    RegistryServer::parse(s).expect("valid server")
}

#[test]
fn user_password_validation() {
    let cases: &[(&str, &str, Result<(), &str>)] = &[
        ("robot", "s3cret", Ok(())),
        ("robot$harbor", "p:w", Ok(())),
        ("", "pw", Err("--registry-username is empty")),
        ("ro:bot", "pw", Err("--registry-username contains ':'")),
        ("robot", "", Err("the registry password is empty")),
    ];
    for (user, password, expected) in cases {
        let got = RegistryAuth::user_password(user, password)
            .map(|_| ())
            .map_err(|e| e.to_string());
        match (got, expected) {
            (Ok(()), Ok(())) => {}
            (Err(got), Err(needle)) => {
                assert!(got.contains(needle), "{user:?}: {got}");
                assert!(!got.contains("bot"), "the value is never echoed: {got}");
            }
            (got, expected) => panic!("{user:?}/{password:?}: got {got:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn json_key_validation_never_quotes_the_key() {
    let ok = RegistryAuth::json_key("{\"type\":\"service_account\"}\n\n").expect("object");
    assert_eq!(ok.password(), "{\"type\":\"service_account\"}");
    assert_eq!(ok.username(), "_json_key");
    let cases = [
        ("[1,2]", "found a JSON array"),
        ("\"secret-text\"", "found a JSON string"),
        ("42", "found a JSON number"),
        ("null", "found a JSON null"),
        ("secret-text", "invalid JSON at line 1 column 1"),
        (
            "{\"private_key\": \"secret-text\"",
            "invalid JSON at line 1",
        ),
        ("", "invalid JSON"),
    ];
    for (text, needle) in cases {
        let err = RegistryAuth::json_key(text).expect_err(text).to_string();
        assert!(err.contains(needle), "{text:?}: {err}");
        assert!(!err.contains("secret-text"), "leaks the key: {err}");
    }
}

#[test]
fn debug_redacts() {
    let up = RegistryAuth::user_password("robot", "hunter2").expect("valid");
    let key = RegistryAuth::json_key("{\"private_key\":\"hunter2\"}").expect("valid");
    for auth in [up, key] {
        let shown = format!("{auth:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}

#[test]
fn dockerconfigjson_shape() {
    let auth = RegistryAuth::user_password("U", "P").expect("valid");
    let got = String::from_utf8(dockerconfigjson(
        &server("registry.example.com:5000/mesh"),
        &auth,
    ))
    .expect("utf8");
    assert_eq!(
        got,
        r#"{"auths":{"registry.example.com:5000":{"username":"U","password":"P","auth":"VTpQ"}}}"#
    );
    let hub = String::from_utf8(dockerconfigjson(&server("docker.io/acme"), &auth)).expect("utf8");
    assert!(
        hub.starts_with(r#"{"auths":{"https://index.docker.io/v1/":"#),
        "{hub}"
    );
}

/// Recorded from `kubectl create secret docker-registry` (v1.32): Go escapes HTML characters.
#[test]
fn dockerconfigjson_escapes_like_go() {
    let auth = RegistryAuth::user_password("U", "p<a>&\"\\é\tx").expect("valid");
    let got = String::from_utf8(dockerconfigjson(&server("127.0.0.1:5000"), &auth)).expect("utf8");
    assert_eq!(
        got,
        r#"{"auths":{"127.0.0.1:5000":{"username":"U","password":"p\u003ca\u003e\u0026\"\\é\tx","auth":"VTpwPGE+JiJcw6kJeA=="}}}"#
    );
    let key =
        RegistryAuth::json_key("{\n \"type\": \"service_account\",\n \"k\": \"a\u{2028}b\"\n}\n")
            .expect("valid");
    let got = String::from_utf8(dockerconfigjson(
        &server("europe-docker.pkg.dev/acme/mesh"),
        &key,
    ))
    .expect("utf8");
    assert_eq!(
        got,
        r#"{"auths":{"europe-docker.pkg.dev":{"username":"_json_key","password":"{\n \"type\": \"service_account\",\n \"k\": \"a\u2028b\"\n}","auth":"X2pzb25fa2V5OnsKICJ0eXBlIjogInNlcnZpY2VfYWNjb3VudCIsCiAiayI6ICJh4oCoYiIKfQ=="}}}"#
    );
}

#[test]
fn dockerconfigjson_is_valid_json_for_any_password() {
    use proptest::prelude::*;
    proptest!(|(user in "[a-zA-Z0-9._$-]{1,20}", password in any::<String>().prop_filter("non-empty", |p| !p.is_empty()))| {
        let auth = RegistryAuth::user_password(&user, &password).expect("valid");
        let bytes = dockerconfigjson(&server("r.example.com"), &auth);
        let parsed: serde_json::Value = serde_json::from_slice(&bytes).expect("valid JSON");
        let entry = &parsed["auths"]["r.example.com"];
        prop_assert_eq!(entry["username"].as_str(), Some(user.as_str()));
        prop_assert_eq!(entry["password"].as_str(), Some(password.as_str()));
        let basic = BASE64.decode(entry["auth"].as_str().expect("auth")).expect("base64");
        prop_assert_eq!(basic, format!("{user}:{password}").into_bytes());
    });
}

#[test]
fn data_hash_separates_keys_and_values() {
    let a = secret_data_hash([("ab", b"c".as_slice())]);
    let b = secret_data_hash([("a", b"bc".as_slice())]);
    assert_ne!(a, b);
    assert_eq!(a.len(), 64);
    assert_eq!(a, secret_data_hash([("ab", b"c".as_slice())]));
}
