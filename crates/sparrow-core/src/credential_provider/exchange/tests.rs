use std::collections::BTreeMap;
use std::time::Duration;

use super::*;

const V1: &str = "credentialprovider.kubelet.k8s.io/v1";

fn answer(fields: &str) -> Vec<u8> {
    format!(r#"{{"apiVersion":"{V1}","kind":"CredentialProviderResponse",{fields}}}"#).into_bytes()
}

fn error(stdout: &[u8]) -> String {
    CredentialProviderResponse::parse(stdout, V1)
        .expect_err("refused")
        .to_string()
}

#[test]
fn the_request_is_what_the_kubelet_writes() {
    let request = CredentialProviderRequest::new("reg.io/mesh/proxy:v1");
    assert_eq!(
        String::from_utf8(request.to_json()).expect("utf-8"),
        r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"reg.io/mesh/proxy:v1"}"#
    );
    let request = CredentialProviderRequest {
        service_account_token: Some("TOPSECRET-token".to_owned()),
        service_account_annotations: BTreeMap::from([(
            "example.com/role".to_owned(),
            "puller".to_owned(),
        )]),
        ..request
    };
    let json: serde_json::Value = serde_json::from_slice(&request.to_json()).expect("json");
    assert_eq!(json["serviceAccountToken"], "TOPSECRET-token");
    assert_eq!(
        json["serviceAccountAnnotations"]["example.com/role"],
        "puller"
    );
    let debug = format!("{request:?}");
    assert!(!debug.contains("TOPSECRET"), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
}

#[test]
fn a_valid_answer_is_read() {
    let response = CredentialProviderResponse::parse(
        &answer(r#""cacheKeyType":"Registry","cacheDuration":"6h0m0s","auth":{"reg.io":{"username":"AWS","password":"TOPSECRET"}},"extra":1"#),
        V1,
    )
    .expect("valid");
    assert_eq!(response.cache_key_type, CacheKeyType::Registry);
    assert_eq!(response.cache_duration, Some(Duration::from_secs(6 * 3600)));
    assert_eq!(response.auth["reg.io"].username, "AWS");
    assert_eq!(response.auth["reg.io"].password, "TOPSECRET");
    let debug = format!("{response:?}");
    assert!(!debug.contains("TOPSECRET"), "{debug}");
    assert!(debug.contains("AWS"), "{debug}");
}

#[test]
fn the_lifetime_falls_back_to_the_default_and_zero_means_do_not_cache() {
    let default = Duration::from_secs(3600);
    for (fields, expected) in [
        (r#""cacheKeyType":"Image""#, Some(default)),
        (
            r#""cacheKeyType":"Image","cacheDuration":null"#,
            Some(default),
        ),
        (r#""cacheKeyType":"Image","cacheDuration":"0s""#, None),
        (
            r#""cacheKeyType":"Global","cacheDuration":"10m""#,
            Some(Duration::from_secs(600)),
        ),
    ] {
        let response = CredentialProviderResponse::parse(&answer(fields), V1).expect(fields);
        assert_eq!(response.lifetime(default), expected, "{fields}");
        assert!(response.auth.is_empty());
    }
}

#[test]
fn each_wrong_answer_is_named_without_quoting_a_credential() {
    assert_eq!(
        error(b"password: TOPSECRET"),
        "printed no JSON on stdout (error at line 1, column 1): a credential provider prints a CredentialProviderResponse there, and its diagnostics on stderr"
    );
    assert_eq!(
        error(b"[\"TOPSECRET\"]"),
        "printed a JSON array on stdout, not a CredentialProviderResponse object"
    );
    assert_eq!(
        error(br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","kind":"CredentialProviderResponse"}"#),
        "answered apiVersion \"credentialprovider.kubelet.k8s.io/v1beta1\"; this provider is configured for credentialprovider.kubelet.k8s.io/v1: use a plugin version that speaks it, or set the provider's apiVersion to what the plugin speaks"
    );
    assert_eq!(
        error(br#"{"kind":"CredentialProviderResponse"}"#),
        "answered apiVersion \"\"; this provider is configured for credentialprovider.kubelet.k8s.io/v1: use a plugin version that speaks it, or set the provider's apiVersion to what the plugin speaks"
    );
    assert_eq!(
        error(format!(r#"{{"apiVersion":"{V1}","kind":"ExecCredential"}}"#).as_bytes()),
        "answered kind \"ExecCredential\", not CredentialProviderResponse: the plugin is not a kubelet credential provider"
    );
    assert_eq!(
        error(&answer(r#""cacheKeyType":"Pod""#)),
        "answered cacheKeyType \"Pod\"; the kubelet accepts only Image, Registry or Global: the plugin is broken, report it to its authors"
    );
    assert_eq!(
        error(&answer(r#""auth":{}"#)),
        "answered cacheKeyType \"\"; the kubelet accepts only Image, Registry or Global: the plugin is broken, report it to its authors"
    );
    assert_eq!(
        error(&answer(r#""cacheKeyType":"Image","cacheDuration":"soon""#)),
        "answered an invalid cacheDuration: \"soon\" is not a duration: write it as Go does, a number and a unit (h, m, s, ms, us, ns) repeated, such as 12h, 30m, 1h30m or 10s"
    );
    assert_eq!(
        error(&answer(r#""cacheKeyType":"Image","cacheDuration":3600"#)),
        "answered a cacheDuration that is not a string such as \"12h0m0s\""
    );
    for auth in [
        r#"{"reg.io":{"username":"u","password":["TOPSECRET"]}}"#,
        r#"{"reg.io":"TOPSECRET"}"#,
    ] {
        let message = error(&answer(&format!(r#""cacheKeyType":"Image","auth":{auth}"#)));
        assert_eq!(
            message,
            "answered an auth entry \"reg.io\" without a username and password string: the plugin is broken, report it to its authors"
        );
    }
    assert_eq!(
        error(&answer(r#""cacheKeyType":"Image","auth":"TOPSECRET""#)),
        "answered an auth entry \"\" without a username and password string: the plugin is broken, report it to its authors"
    );
}
