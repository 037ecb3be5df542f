//! Editing registry records (`PATCH`): the body names the fields to change, as a JSON merge
//! patch does (a field absent stays, `null` clears an optional one). The record's current
//! fields with the patch laid over them are then validated as a whole, exactly as a new record
//! would be, so an edit can never store what a creation would refuse.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Lays `patch` over `current` (both JSON objects). A key in `fixed` may only repeat its
/// current value (the record's identity, or a state changed by its own action); a key in
/// neither list is refused by name.
pub(crate) fn merge(
    current: &impl serde::Serialize,
    patch: Value,
    writable: &[&str],
    fixed: &[&str],
) -> Result<Value, ApiError> {
    let current = serde_json::to_value(current).map_err(|e| ApiError::Internal(e.to_string()))?;
    let Value::Object(mut record) = current else {
        return Err(ApiError::Internal("a registry record did not serialize to a JSON object".into()));
    };
    let Value::Object(patch) = patch else {
        return Err(ApiError::BadRequest("expected a JSON object naming the fields to change".into()));
    };
    if patch.is_empty() {
        return Err(ApiError::BadRequest("the body names no field to change".into()));
    }
    for (key, value) in patch {
        if fixed.contains(&key.as_str()) {
            if record.get(&key) != Some(&value) {
                return Err(ApiError::validation(key, "cannot be changed here"));
            }
        } else if writable.contains(&key.as_str()) {
            record.insert(key, value);
        } else {
            return Err(ApiError::validation(key, "no such writable field"));
        }
    }
    let kept: Map<String, Value> =
        record.into_iter().filter(|(k, _)| writable.contains(&k.as_str()) || fixed.contains(&k.as_str())).collect();
    Ok(Value::Object(kept))
}

/// Reads a merged record as the type a creation reads, with the same refusal for a value of
/// the wrong shape (422 naming the body, as a creation's would).
pub(crate) fn read<T: serde::de::DeserializeOwned>(merged: Value) -> Result<T, ApiError> {
    serde_json::from_value(merged).map_err(|e| ApiError::validation("body", e.to_string()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_patch_changes_only_what_it_names_and_refuses_the_rest_by_name() {
        let current = json!({"id": "u1", "name": "A", "budget": 10, "secret": "x"});
        let merged = merge(&current, json!({"name": "B"}), &["name", "budget"], &["id"]).unwrap();
        assert_eq!(merged, json!({"id": "u1", "name": "B", "budget": 10}));
        // The identity may be repeated, not changed.
        assert!(merge(&current, json!({"id": "u1", "budget": null}), &["name", "budget"], &["id"]).is_ok());
        let e = merge(&current, json!({"id": "u2"}), &["name"], &["id"]).unwrap_err();
        assert!(e.to_string().starts_with("id:"), "{e}");
        let e = merge(&current, json!({"colour": "red"}), &["name"], &["id"]).unwrap_err();
        assert!(e.to_string().starts_with("colour:"), "{e}");
        let e = merge(&current, json!({"secret": "y"}), &["name"], &["id"]).unwrap_err();
        assert!(e.to_string().starts_with("secret:"), "{e}");
        assert!(matches!(merge(&current, json!([1]), &["name"], &[]), Err(ApiError::BadRequest(_))));
        assert!(matches!(merge(&current, json!({}), &["name"], &[]), Err(ApiError::BadRequest(_))));
    }
}
