//! Label and field selectors: the query-string syntax and the `metav1.LabelSelector` object form.

use serde_json::Value;

use crate::error::ApiError;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` / `key==value`.
    Equals(String, String),
    /// `key!=value` (also matches when the key is absent).
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)` (also matches when the key is absent).
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<Requirement>);

impl LabelSelector {
    /// Parses the query-string form (`a=b,c in (d,e),!f`).
    pub fn parse(input: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top_level(input) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(part)?);
        }
        Ok(Self(reqs))
    }

    /// Builds a selector from a `metav1.LabelSelector` JSON object; `None` or `{}` match everything.
    pub fn from_object(selector: Option<&Value>) -> Result<Self, String> {
        let mut reqs = Vec::new();
        let Some(sel) = selector.filter(|v| !v.is_null()) else {
            return Ok(Self(reqs));
        };
        if let Some(labels) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in labels {
                reqs.push(Requirement::Equals(
                    k.clone(),
                    v.as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        for expr in sel
            .get("matchExpressions")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let key = expr
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let values: Vec<String> = expr
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| {
                    vs.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let op = expr
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default();
            reqs.push(match op {
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                other => return Err(format!("{other:?} is not a valid label selector operator")),
            });
        }
        Ok(Self(reqs))
    }

    /// Whether the labels object (or its absence) satisfies every requirement.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
        })
    }

    /// Whether an object's `metadata.labels` satisfy the selector.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.0.is_empty() || self.matches(obj.pointer("/metadata/labels"))
    }
}

fn split_top_level(input: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&input[start..]);
    parts
}

fn invalid_selector(input: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!("unable to parse requirement: {why}: {input:?}"))
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 317
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_set(input: &str, rest: &str) -> Result<Vec<String>, ApiError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| invalid_selector(input, "expected a parenthesised set of values"))?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    if values.iter().any(|v| !valid_value(v)) {
        return Err(invalid_selector(input, "invalid label value"));
    }
    Ok(values)
}

fn parse_requirement(part: &str) -> Result<Requirement, ApiError> {
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        return if valid_key(key) {
            Ok(Requirement::DoesNotExist(key.to_string()))
        } else {
            Err(invalid_selector(part, "invalid label key"))
        };
    }
    let (key, op, value) = if let Some((k, v)) = part.split_once("!=") {
        (k, "!=", v)
    } else if let Some((k, v)) = part.split_once("==") {
        (k, "=", v)
    } else if let Some((k, v)) = part.split_once('=') {
        (k, "=", v)
    } else {
        let mut words = part.splitn(2, char::is_whitespace);
        let key = words.next().unwrap_or_default();
        let rest = words.next().unwrap_or_default().trim_start();
        if rest.is_empty() {
            return if valid_key(key) {
                Ok(Requirement::Exists(key.to_string()))
            } else {
                Err(invalid_selector(part, "invalid label key"))
            };
        }
        if !valid_key(key) {
            return Err(invalid_selector(part, "invalid label key"));
        }
        if let Some(set) = rest.strip_prefix("notin") {
            return Ok(Requirement::NotIn(key.to_string(), parse_set(part, set)?));
        }
        if let Some(set) = rest.strip_prefix("in") {
            return Ok(Requirement::In(key.to_string(), parse_set(part, set)?));
        }
        return Err(invalid_selector(part, "found unknown operator"));
    };
    let key = key.trim();
    let value = value.trim();
    if !valid_key(key) {
        return Err(invalid_selector(part, "invalid label key"));
    }
    if !valid_value(value) {
        return Err(invalid_selector(part, "invalid label value"));
    }
    Ok(match op {
        "!=" => Requirement::NotEquals(key.to_string(), value.to_string()),
        _ => Requirement::Equals(key.to_string(), value.to_string()),
    })
}

/// A parsed field selector: conjunction of `path=value` / `path!=value` terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `metadata.name=x,metadata.namespace!=y`; any dotted field path is accepted.
    pub fn parse(input: &str) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        for part in input.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{input}'; can't understand '{part}'"
                )));
            };
            terms.push((field.trim().to_string(), equal, value.trim().to_string()));
        }
        Ok(Self(terms))
    }

    /// Whether the object satisfies every term; absent fields compare as "".
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = match obj.pointer(&pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }

    /// The value a `metadata.namespace=` term pins, to narrow a scan.
    pub fn namespace(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, eq, _)| f == "metadata.namespace" && *eq)
            .map(|(_, _, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels() -> Value {
        json!({"usage": "sparrow-registry-key", "tier": "web"})
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).expect("valid selector")
    }

    #[test]
    fn label_selector_operators() {
        let l = labels();
        assert!(sel("usage=sparrow-registry-key").matches(Some(&l)));
        assert!(sel("usage==sparrow-registry-key").matches(Some(&l)));
        assert!(!sel("usage!=sparrow-registry-key").matches(Some(&l)));
        assert!(sel("missing!=x").matches(Some(&l)));
        assert!(sel("tier in (web, db)").matches(Some(&l)));
        assert!(!sel("tier notin (web,db)").matches(Some(&l)));
        assert!(sel("missing notin (web)").matches(Some(&l)));
        assert!(sel("tier").matches(Some(&l)));
        assert!(!sel("!tier").matches(Some(&l)));
        assert!(sel("!missing,usage,tier in (web)").matches(Some(&l)));
        assert!(!sel("tier=db").matches(Some(&l)));
        assert!(!sel("tier").matches(None));
        assert!(sel("").matches(None));
    }

    #[test]
    fn label_selector_rejects_garbage() {
        assert_eq!(LabelSelector::parse("a in b").map_err(|e| e.code), Err(400));
        assert_eq!(LabelSelector::parse("a=b c").map_err(|e| e.code), Err(400));
        assert_eq!(
            LabelSelector::parse("a foo (b)").map_err(|e| e.code),
            Err(400)
        );
        assert_eq!(LabelSelector::parse("!").map_err(|e| e.code), Err(400));
    }

    #[test]
    fn object_form_selectors() {
        let s = json!({"matchLabels": {"tier": "web"}, "matchExpressions": [
            {"key": "usage", "operator": "In", "values": ["sparrow-registry-key"]},
            {"key": "gone", "operator": "DoesNotExist"}
        ]});
        let selector = LabelSelector::from_object(Some(&s)).expect("valid");
        assert!(selector.matches(Some(&labels())));
        let s =
            json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]});
        assert!(
            !LabelSelector::from_object(Some(&s))
                .expect("valid")
                .matches(Some(&labels()))
        );
        let bad = json!({"matchExpressions": [{"key": "tier", "operator": "Near"}]});
        assert!(LabelSelector::from_object(Some(&bad)).is_err());
        assert!(
            LabelSelector::from_object(None)
                .expect("empty")
                .matches(None)
        );
    }

    #[test]
    fn field_selectors() {
        let obj = json!({"metadata": {"name": "a", "namespace": "shop"}, "type": "Opaque"});
        let f = FieldSelector::parse("metadata.name=a,metadata.namespace==shop").expect("valid");
        assert!(f.matches(&obj));
        assert_eq!(f.namespace(), Some("shop"));
        assert!(
            !FieldSelector::parse("metadata.name!=a")
                .expect("valid")
                .matches(&obj)
        );
        assert!(
            FieldSelector::parse("type=Opaque")
                .expect("valid")
                .matches(&obj)
        );
        assert!(FieldSelector::parse("metadata.name").is_err());
    }
}
