use std::collections::BTreeMap;

use super::*;
use crate::credential_provider::CacheKeyType;

fn response(entries: &[(&str, &str, &str)]) -> CredentialProviderResponse {
    CredentialProviderResponse {
        cache_key_type: CacheKeyType::Registry,
        cache_duration: None,
        auth: entries
            .iter()
            .map(|(key, username, password)| {
                (
                    (*key).to_owned(),
                    AuthConfig {
                        username: (*username).to_owned(),
                        password: (*password).to_owned(),
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
    }
}

fn images(server: &RegistryServer) -> Vec<String> {
    vec![
        server.image("sparrow-proxy", "v1"),
        server.image("sparrow-controller", "v1"),
    ]
}

#[test]
fn the_matching_entry_is_written_as_a_static_credential_is() {
    let server = RegistryServer::parse("registry.example.com:5000/mesh").expect("server");
    let answer = response(&[
        ("other.example.com", "x", "y"),
        ("registry.example.com:5000", "robot", "s3cret"),
    ]);
    let bytes = pull_secret(&answer, &server, &images(&server)).expect("secret");
    let auth = RegistryAuth::user_password("robot", "s3cret").expect("auth");
    assert_eq!(bytes, dockerconfigjson(&server, &auth));
    assert!(
        !String::from_utf8(bytes)
            .expect("utf-8")
            .contains("other.example.com")
    );
}

#[test]
fn the_most_specific_key_wins_as_in_the_kubelet() {
    let server = RegistryServer::parse("registry.example.com/team/mesh").expect("server");
    let images = images(&server);
    let answer = response(&[
        ("*.example.com", "wild", "p"),
        ("registry.example.com", "host", "p"),
        ("registry.example.com/team", "team", "p"),
        ("https://registry.example.com/v2/other", "other", "p"),
    ]);
    assert_eq!(
        matching_auth(&answer, &images).map(|(k, a)| (k, a.username.as_str())),
        Some(("registry.example.com/team", "team"))
    );
    let answer = response(&[
        ("*.example.com", "wild", "p"),
        ("registry.example.com", "host", "p"),
    ]);
    assert_eq!(
        matching_auth(&answer, &images).map(|(_, a)| a.username.as_str()),
        Some("host")
    );
    let answer = response(&[
        ("*.example.com", "wild", "p"),
        ("https://registry.example.com/v1/", "v1", "p"),
    ]);
    assert_eq!(
        matching_auth(&answer, &images).map(|(_, a)| a.username.as_str()),
        Some("v1")
    );
    let answer = response(&[("*.example.com", "wild", "p")]);
    assert_eq!(
        matching_auth(&answer, &images).map(|(_, a)| a.username.as_str()),
        Some("wild")
    );
}

#[test]
fn an_answer_without_a_usable_entry_is_named() {
    let server = RegistryServer::parse("registry.example.com:5000").expect("server");
    let images = images(&server);
    assert_eq!(
        pull_secret(&response(&[]), &server, &images).map_err(|e| e.to_string()),
        Err("answered no credentials (an empty auth map) for registry.example.com:5000: check the plugin's own configuration and permissions for that registry".to_owned())
    );
    assert_eq!(
        pull_secret(&response(&[("registry.example.com", "u", "TOPSECRET")]), &server, &images).map_err(|e| e.to_string()),
        Err("answered credentials for registry.example.com, none of which matches all of the mesh's images in registry.example.com:5000: the plugin serves another registry; check its matchImages".to_owned())
    );
    for (username, password, problem) in [
        ("", "TOPSECRET", "an empty username"),
        ("a:TOPSECRET", "TOPSECRET", "a ':' in the username"),
        ("u", "", "an empty password"),
    ] {
        let message = pull_secret(
            &response(&[("registry.example.com:5000", username, password)]),
            &server,
            &images,
        )
        .expect_err(problem)
        .to_string();
        assert_eq!(
            message,
            format!(
                "answered a credential for \"registry.example.com:5000\" with {problem}: the plugin is broken, report it to its authors"
            )
        );
        assert!(!message.contains("TOPSECRET"));
    }
    let huge = "x".repeat(1 << 20);
    let message = pull_secret(
        &response(&[("registry.example.com:5000", "u", &huge)]),
        &server,
        &images,
    )
    .expect_err("too large")
    .to_string();
    assert!(message.starts_with("answered a credential for \"registry.example.com:5000\" that is too large for a Secret: "), "{message}");
}

#[test]
fn without_images_the_server_itself_is_matched() {
    let server = RegistryServer::parse("registry.example.com:5000/mesh").expect("server");
    let answer = response(&[("registry.example.com:5000", "robot", "s3cret")]);
    assert!(pull_secret(&answer, &server, &[]).is_ok());
}
