//! Label selectors as the API server evaluates them, so `status` can tell which webhook
//! would have been called for a pod, and which namespaces a webhook can block.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// True when `labels` satisfy `selector` (`matchLabels` and every `matchExpressions` entry:
/// `In`, `NotIn`, `Exists`, `DoesNotExist`; `NotIn` matches an absent key). An unknown
/// operator matches nothing, as the API server refuses such a selector.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_match = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_match = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_match && expressions_match
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn expression(operator: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "k".to_owned(),
                operator: operator.to_owned(),
                values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
            }]),
        }
    }

    #[test]
    fn operators() {
        let a = labels(&[("k", "a")]);
        let none = labels(&[]);
        let table = [
            ("In", &["a"][..], &a, true),
            ("In", &["b"], &a, false),
            ("In", &["a"], &none, false),
            ("NotIn", &["a"], &a, false),
            ("NotIn", &["b"], &a, true),
            ("NotIn", &["a"], &none, true),
            ("Exists", &[], &a, true),
            ("Exists", &[], &none, false),
            ("DoesNotExist", &[], &none, true),
            ("DoesNotExist", &[], &a, false),
            ("Bogus", &[], &a, false),
        ];
        for (operator, values, labels, want) in table {
            assert_eq!(
                selector_matches(&expression(operator, values), labels),
                want,
                "{operator} {values:?} {labels:?}"
            );
        }
    }

    #[test]
    fn match_labels_and_the_empty_selector() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("k", "a")])),
            match_expressions: None,
        };
        assert!(selector_matches(
            &selector,
            &labels(&[("k", "a"), ("x", "y")])
        ));
        assert!(!selector_matches(&selector, &labels(&[("k", "b")])));
        assert!(selector_matches(&LabelSelector::default(), &labels(&[])));
    }
}
