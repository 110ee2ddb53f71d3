use std::time::Duration;

use super::*;

const ECR: &str = r#"
apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: ecr-credential-provider
    matchImages:
      - "*.dkr.ecr.*.amazonaws.com"
      - "*.dkr.ecr.*.amazonaws.com.cn"
    defaultCacheDuration: "12h"
    apiVersion: credentialprovider.kubelet.k8s.io/v1
    args: [get-credentials]
    env:
      - name: AWS_SECRET_ACCESS_KEY
        value: TOPSECRET
  - name: local
    matchImages: ["registry.example.com:5000"]
    defaultCacheDuration: "1h30m"
    apiVersion: credentialprovider.kubelet.k8s.io/v1
    tokenAttributes:
      serviceAccountTokenAudience: registry.example.com
      requireServiceAccount: true
      requiredServiceAccountAnnotationKeys: [example.com/role]
      cacheType: ServiceAccount
"#;

/// The ECR config with `provider` as its only provider (YAML flow mapping).
fn with_provider(provider: &str) -> String {
    format!(
        "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n  - {provider}\n"
    )
}

fn error(text: &str) -> String {
    CredentialProviderConfig::parse(text)
        .expect_err(text)
        .to_string()
}

const OK: &str = "matchImages: [reg.io], defaultCacheDuration: 1h, apiVersion: credentialprovider.kubelet.k8s.io/v1";

#[test]
fn the_kubelets_own_config_is_read() {
    let config = CredentialProviderConfig::parse(ECR).expect("valid");
    assert_eq!(config.providers.len(), 2);
    let ecr = &config.providers[0];
    assert_eq!(ecr.name, "ecr-credential-provider");
    assert_eq!(ecr.default_cache_duration, Duration::from_secs(12 * 3600));
    assert_eq!(ecr.args, ["get-credentials"]);
    assert_eq!(ecr.env[0].value, "TOPSECRET");
    let local = &config.providers[1];
    assert_eq!(local.default_cache_duration, Duration::from_secs(5400));
    let token = local.token_attributes.as_ref().expect("token mode");
    assert_eq!(token.service_account_token_audience, "registry.example.com");
    assert!(token.require_service_account);
    assert_eq!(token.cache_type, TokenCacheType::ServiceAccount);
}

#[test]
fn json_is_read_too_and_to_json_reads_back() {
    let config = CredentialProviderConfig::parse(ECR).expect("valid");
    let json = config.to_json();
    assert!(
        json.contains("\"defaultCacheDuration\":\"12h0m0s\""),
        "{json}"
    );
    assert_eq!(CredentialProviderConfig::parse(&json), Ok(config));
}

#[test]
fn debug_never_shows_env_values() {
    let config = CredentialProviderConfig::parse(ECR).expect("valid");
    let debug = format!("{config:?}");
    assert!(!debug.contains("TOPSECRET"), "{debug}");
    assert!(
        debug.contains("AWS_SECRET_ACCESS_KEY=<redacted>"),
        "{debug}"
    );
}

#[test]
fn parse_errors_never_quote_the_text() {
    let broken = ECR.replace("value: TOPSECRET", "value: [TOPSECRET");
    let message = error(&broken);
    assert!(
        message.starts_with("the credential provider config is not YAML or JSON (error at line"),
        "{message}"
    );
    assert!(!message.contains("TOPSECRET"), "{message}");
    let wrong_type = ECR.replace("value: TOPSECRET", "value: {TOPSECRET: 1}");
    let message = error(&wrong_type);
    assert_eq!(
        message,
        "the credential provider config is not a valid CredentialProviderConfig: a value has the wrong type (expected a string)"
    );
    assert_eq!(
        error(&with_provider(&format!("{{name: a, {OK}, extra: 1}}"))),
        "the credential provider config is not a valid CredentialProviderConfig: unknown field `extra`, expected one of `name`, `matchImages`, `defaultCacheDuration`, `apiVersion`, `args`, `env`, `tokenAttributes`"
    );
}

#[test]
fn another_kind_or_api_version_is_named() {
    assert_eq!(
        error("apiVersion: v1\nkind: ConfigMap\n"),
        "the credential provider config is a document of kind \"ConfigMap\", not a CredentialProviderConfig: give the file the kubelet reads with --image-credential-provider-config"
    );
    assert_eq!(
        error("providers: []\n"),
        "the credential provider config is a document without a kind, not a CredentialProviderConfig: give the file the kubelet reads with --image-credential-provider-config"
    );
    assert_eq!(
        error("- a\n- b\n"),
        "the credential provider config is a list, not a CredentialProviderConfig: give the file the kubelet reads with --image-credential-provider-config"
    );
    assert_eq!(
        error("apiVersion: kubelet.config.k8s.io/v1alpha1\nkind: CredentialProviderConfig\n"),
        "the credential provider config has apiVersion \"kubelet.config.k8s.io/v1alpha1\"; expected kubelet.config.k8s.io/v1 (or v1beta1)"
    );
    let beta = ECR.replace(
        "kubelet.config.k8s.io/v1\n",
        "kubelet.config.k8s.io/v1beta1\n",
    );
    assert!(CredentialProviderConfig::parse(&beta).is_ok());
}

#[test]
fn provider_names_are_file_names() {
    assert_eq!(
        error(
            "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders: []\n"
        ),
        "the credential provider config has no providers: add one with name, matchImages, defaultCacheDuration and apiVersion"
    );
    assert_eq!(
        error(&with_provider(&format!("{{{OK}}}"))),
        "provider 1 of the credential provider config has no name: give the plugin binary's file name"
    );
    for name in ["x/y", "/usr/bin/ecr", "..\\\\x", ".", ".."] {
        let shown = name.replace("\\\\", "\\");
        assert_eq!(
            error(&with_provider(&format!("{{name: \"{name}\", {OK}}}"))),
            format!(
                "provider name {shown:?} has a path in it: give only the binary's file name; the binary itself goes in the plugin directory (--credential-provider-bin-dir, as the kubelet's --image-credential-provider-bin-dir)"
            )
        );
    }
    assert_eq!(
        error(&with_provider(&format!("{{name: \"a b\", {OK}}}"))),
        "provider name \"a b\" contains whitespace: give the plugin binary's file name, which the kubelet requires to have none"
    );
    let twice = format!(
        "{}  - {{name: a, {OK}}}\n",
        with_provider(&format!("{{name: a, {OK}}}"))
    );
    assert_eq!(
        error(&twice),
        "provider name \"a\" appears twice in the credential provider config: each provider names a different binary"
    );
}

#[test]
fn match_images_cache_duration_and_api_version_are_required() {
    let v1 = "apiVersion: credentialprovider.kubelet.k8s.io/v1";
    assert_eq!(
        error(&with_provider(&format!(
            "{{name: a, defaultCacheDuration: 1h, {v1}}}"
        ))),
        "provider \"a\" has no matchImages: give the registries it serves, such as \"*.dkr.ecr.*.amazonaws.com\""
    );
    assert_eq!(
        error(&with_provider(&format!(
            "{{name: a, matchImages: [\"\"], defaultCacheDuration: 1h, {v1}}}"
        ))),
        "provider \"a\" has an invalid matchImages entry \"\": give HOST[:PORT][/PATH], with * for any part of a host label"
    );
    assert_eq!(
        error(&with_provider(&format!(
            "{{name: a, matchImages: [reg.io], {v1}}}"
        ))),
        "provider \"a\" has no defaultCacheDuration: give how long its credentials last, such as 12h"
    );
    assert_eq!(
        error(&with_provider(&format!(
            "{{name: a, matchImages: [reg.io], defaultCacheDuration: 2d, {v1}}}"
        ))),
        "provider \"a\" has an invalid defaultCacheDuration: \"2d\" is not a duration: write it as Go does, a number and a unit (h, m, s, ms, us, ns) repeated, such as 12h, 30m, 1h30m or 10s"
    );
    assert_eq!(
        error(&with_provider(&format!(
            "{{name: a, matchImages: [reg.io], defaultCacheDuration: -1h, {v1}}}"
        ))),
        "provider \"a\" has an invalid defaultCacheDuration: \"-1h\" is negative: a cache duration is 0s or more"
    );
    assert_eq!(
        error(&with_provider(&format!(
            "{{name: a, matchImages: [reg.io], defaultCacheDuration: 0s, {v1}}}"
        ))),
        "provider \"a\" has defaultCacheDuration 0s: Sparrow keeps its credential in a Secret and refreshes it at half this lifetime; give how long the credentials last, such as 12h"
    );
    for (version, shown) in [
        (
            "apiVersion: credentialprovider.kubelet.k8s.io/v1beta1, ",
            "credentialprovider.kubelet.k8s.io/v1beta1",
        ),
        ("", ""),
    ] {
        assert_eq!(
            error(&with_provider(&format!(
                "{{name: a, matchImages: [reg.io], {version}defaultCacheDuration: 1h}}"
            ))),
            format!(
                "provider \"a\" has apiVersion {shown:?}; Sparrow speaks credentialprovider.kubelet.k8s.io/v1: set apiVersion to it, with a plugin that answers in v1"
            )
        );
    }
}

#[test]
fn token_attributes_are_checked_as_the_kubelet_checks_them() {
    let with = |attributes: &str| {
        error(&with_provider(&format!(
            "{{name: a, {OK}, tokenAttributes: {{{attributes}}}}}"
        )))
    };
    assert_eq!(
        with("requireServiceAccount: true, cacheType: Token"),
        "provider \"a\" has tokenAttributes without serviceAccountTokenAudience: give the audience its plugin expects in the token"
    );
    assert_eq!(
        with("serviceAccountTokenAudience: x, cacheType: Token"),
        "provider \"a\" has tokenAttributes without requireServiceAccount: set it to true or false"
    );
    assert_eq!(
        with("serviceAccountTokenAudience: x, requireServiceAccount: true"),
        "provider \"a\" has tokenAttributes.cacheType \"\": set it to ServiceAccount or Token"
    );
    assert_eq!(
        with("serviceAccountTokenAudience: x, requireServiceAccount: true, cacheType: Pod"),
        "provider \"a\" has tokenAttributes.cacheType \"Pod\": set it to ServiceAccount or Token"
    );
    assert_eq!(
        with(
            "serviceAccountTokenAudience: x, requireServiceAccount: false, requiredServiceAccountAnnotationKeys: [k], cacheType: Token"
        ),
        "provider \"a\" has requiredServiceAccountAnnotationKeys but requireServiceAccount false: set requireServiceAccount to true or drop the required keys"
    );
    assert_eq!(
        with(
            "serviceAccountTokenAudience: x, requireServiceAccount: true, requiredServiceAccountAnnotationKeys: [k], optionalServiceAccountAnnotationKeys: [k], cacheType: Token"
        ),
        "provider \"a\" has a bad service account annotation key \"k\": each key appears once, in requiredServiceAccountAnnotationKeys or optionalServiceAccountAnnotationKeys, not empty"
    );
}

#[test]
fn the_first_provider_covering_all_images_is_chosen() {
    let config = CredentialProviderConfig::parse(ECR).expect("valid");
    let images = |host: &str| {
        vec![
            format!("{host}/mesh/sparrow-proxy:v1"),
            format!("{host}/mesh/sparrow-controller:v1"),
        ]
    };
    let ecr = images("123456789012.dkr.ecr.eu-west-1.amazonaws.com");
    assert_eq!(
        config.provider_for(&ecr).map(|p| p.name.as_str()),
        Ok("ecr-credential-provider")
    );
    let local = images("registry.example.com:5000");
    assert_eq!(
        config.provider_for(&local).map(|p| p.name.as_str()),
        Ok("local")
    );
    assert!(config.providers[1].matches(&local[0]));
    assert!(!config.providers[0].matches(&local[0]));

    let mixed = vec![ecr[0].clone(), local[0].clone()];
    let error = config
        .provider_for(&mixed)
        .expect_err("no provider covers both");
    assert_eq!(
        error.to_string(),
        "no provider in the credential provider config matches all of the mesh's images (123456789012.dkr.ecr.eu-west-1.amazonaws.com/mesh/sparrow-proxy:v1, registry.example.com:5000/mesh/sparrow-proxy:v1); its matchImages are ecr-credential-provider: [*.dkr.ecr.*.amazonaws.com, *.dkr.ecr.*.amazonaws.com.cn]; local: [registry.example.com:5000]: add a pattern that covers them, such as \"123456789012.dkr.ecr.eu-west-1.amazonaws.com\""
    );
}
