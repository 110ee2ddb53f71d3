//! Canonical JSON (the OCI image spec's "considerations": sorted keys, no insignificant
//! whitespace): the same value always gives the same bytes, hence the same digest. oci-spec's
//! maps are `HashMap`s, whose order changes from run to run, so the value is re-ordered here
//! rather than trusted to any serializer.

use serde::Serialize;
use serde_json::Value;

/// `value` as canonical JSON bytes.
pub fn to_canonical_json(value: &impl Serialize) -> Result<Vec<u8>, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    let mut out = Vec::new();
    write_value(&value, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key)?;
                out.push(b':');
                write_value(item, out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn keys_are_sorted_at_every_depth() {
        let value = serde_json::json!({"b": 1, "a": {"d": [ {"z": 1, "y": 2} ], "c": "x"}});
        let bytes = to_canonical_json(&value).expect("serializes");
        assert_eq!(
            String::from_utf8(bytes).expect("utf-8"),
            r#"{"a":{"c":"x","d":[{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn a_hash_map_gives_the_same_bytes_whatever_its_order() {
        let keys: Vec<String> = (0..64).map(|i| format!("org.example.k{i}")).collect();
        let forward: HashMap<&str, usize> = keys.iter().map(String::as_str).zip(0..).collect();
        let backward: HashMap<&str, usize> = keys
            .iter()
            .rev()
            .map(String::as_str)
            .zip((0..64).rev())
            .collect();
        assert_eq!(
            to_canonical_json(&forward).expect("serializes"),
            to_canonical_json(&backward).expect("serializes")
        );
    }

    #[test]
    fn strings_are_escaped() {
        let bytes = to_canonical_json(&serde_json::json!({"k\"": "a\nb"})).expect("serializes");
        assert_eq!(bytes, br#"{"k\"":"a\nb"}"#);
    }
}
