use super::*;

#[test]
fn the_kubelets_documented_examples() {
    // From the kubelet's CredentialProviderConfig reference.
    for (pattern, image, expected) in [
        (
            "123456789.dkr.ecr.us-east-1.amazonaws.com",
            "123456789.dkr.ecr.us-east-1.amazonaws.com/mesh/proxy:v1",
            true,
        ),
        ("*.azurecr.io", "example.azurecr.io/mesh", true),
        ("gcr.io", "gcr.io/mesh/proxy", true),
        ("*.*.registry.io", "abc.def.registry.io", true),
        ("*.*.registry.io", "registry.io", false),
        ("registry.io:8080/path", "registry.io:8080/path/mesh", true),
        (
            "*.dkr.ecr.*.amazonaws.com",
            "123456789.dkr.ecr.eu-west-1.amazonaws.com/x",
            true,
        ),
        (
            "*.dkr.ecr.*.amazonaws.com",
            "123456789.dkr.ecr.eu-west-1.amazonaws.com.cn/x",
            false,
        ),
    ] {
        assert_eq!(urls_match(pattern, image), expected, "{pattern} vs {image}");
    }
}

#[test]
fn a_star_matches_within_one_label_and_label_counts_must_agree() {
    assert!(urls_match("*.example.com", "a.example.com/x"));
    assert!(!urls_match("*.example.com", "example.com/x"));
    assert!(!urls_match("*.example.com", "a.b.example.com/x"));
    assert!(urls_match("reg-*.example.com", "reg-eu.example.com"));
    assert!(!urls_match("reg-*.example.com", "mirror-eu.example.com"));
    assert!(!urls_match("*", "localhost:5000/x"));
    assert!(urls_match("*:5000", "localhost:5000/x"));
}

#[test]
fn ports_must_be_equal_including_their_absence() {
    assert!(urls_match("reg.io:5000", "reg.io:5000/mesh/proxy:v1"));
    assert!(!urls_match("reg.io:5000", "reg.io:5001/mesh/proxy:v1"));
    assert!(!urls_match("reg.io", "reg.io:5000/mesh/proxy:v1"));
    assert!(!urls_match("reg.io:5000", "reg.io/mesh/proxy:v1"));
    assert!(urls_match("[::1]:5000", "[::1]:5000/mesh"));
}

#[test]
fn the_path_is_a_string_prefix() {
    assert!(urls_match("reg.io/team", "reg.io/team/proxy:v1"));
    assert!(urls_match("reg.io/team", "reg.io/teammates/proxy:v1"));
    assert!(!urls_match("reg.io/team", "reg.io/other/proxy:v1"));
    assert!(!urls_match("reg.io/team/proxy", "reg.io/team"));
}

#[test]
fn go_match_syntax_within_a_label() {
    assert!(label_matches("reg?", "reg1"));
    assert!(!label_matches("reg?", "reg"));
    assert!(label_matches("reg[0-9]", "reg7"));
    assert!(!label_matches("reg[^0-9]", "reg7"));
    assert!(label_matches("reg[^0-9]", "regx"));
    assert!(label_matches("a\\*b", "a*b"));
    assert!(!label_matches("a\\*b", "axb"));
    assert!(label_matches("**x", "abx"));
    assert!(label_matches("", ""));
    // Malformed patterns match nothing.
    assert!(!label_matches("reg[0-9", "reg7"));
    assert!(!label_matches("reg[]", "reg"));
    assert!(!label_matches("reg\\", "reg"));
}
