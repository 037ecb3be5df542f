//! What the JSON of EMQX's two gateways has in common (docs/emqx.md): a message is one
//! object; numbers are the standards' raw unsigned integers of a known width (BYTE, WORD,
//! DWORD), to be checked and scaled by the reader; and one error type for both.
//!
//! The message's shape (an object, its envelope objects and lists) is checked first: a
//! message without it is `malformed_json`. Inside, a field with the wrong type or a value
//! the wire could not have carried makes the sample invalid, naming the field.

use fleet_domain::{DeadLetterReason, InvalidSample};
use serde_json::{Map, Value};

use super::json::kind;

/// The largest value of a BYTE, WORD and DWORD on the wire.
pub(crate) const BYTE: u64 = 0xFF;
pub(crate) const WORD: u64 = 0xFFFF;
pub(crate) const DWORD: u64 = 0xFFFF_FFFF;

/// Why a whole message from an EMQX gateway was rejected.
#[derive(Debug, thiserror::Error)]
pub enum EmqxError {
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    /// The envelope is not as the gateway publishes it.
    #[error("{0}")]
    Shape(String),
    /// The terminal the payload names is not the one its topic names.
    #[error("{0}")]
    Mismatch(String),
    #[error("the data unit is encrypted (scheme {0}); the gateway passes it on undeciphered")]
    Encrypted(u64),
    /// The message's one sample is invalid.
    #[error(transparent)]
    Invalid(#[from] InvalidSample),
}

impl EmqxError {
    /// The reason the message is kept under in the dead letters.
    pub fn reason(&self) -> DeadLetterReason {
        match self {
            Self::NotJson(_) | Self::Shape(_) => DeadLetterReason::MalformedJson,
            Self::Mismatch(_) => DeadLetterReason::VinMismatch,
            Self::Encrypted(_) => DeadLetterReason::Encrypted,
            Self::Invalid(_) => DeadLetterReason::InvalidSample,
        }
    }
}

/// The payload as one JSON object.
pub(crate) fn message(payload: &[u8]) -> Result<Map<String, Value>, EmqxError> {
    match serde_json::from_slice::<Value>(payload)? {
        Value::Object(object) => Ok(object),
        other => Err(EmqxError::Shape(format!("expected an object, found {}", kind(&other)))),
    }
}

/// The object under `key`, which the envelope must have.
pub(crate) fn envelope<'a>(object: &'a Map<String, Value>, key: &str) -> Result<&'a Map<String, Value>, EmqxError> {
    match object.get(key) {
        Some(Value::Object(inner)) => Ok(inner),
        None | Some(Value::Null) => Err(EmqxError::Shape(format!("no {key} object"))),
        Some(other) => Err(EmqxError::Shape(format!("{key}: expected an object, found {}", kind(other)))),
    }
}

/// The raw unsigned integer under `key`, at most `max` (the field's width on the wire);
/// `None` when absent or null.
pub(crate) fn raw(object: &Map<String, Value>, key: &'static str, max: u64) -> Result<Option<u64>, InvalidSample> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v <= max => Ok(Some(v)),
            _ => Err(InvalidSample::new(key, format!("{n} is not a raw value of 0..={max}"))),
        },
        Some(other) => Err(InvalidSample::new(key, format!("expected an integer, found {}", kind(other)))),
    }
}

/// Like [`raw`], for a field the message must have.
pub(crate) fn required_raw(object: &Map<String, Value>, key: &'static str, max: u64) -> Result<u64, InvalidSample> {
    raw(object, key, max)?.ok_or_else(|| InvalidSample::new(key, "missing"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn reads_raw_integers_within_their_width() {
        let o = object(json!({"a": 0, "b": 65535, "c": 65536, "d": -1, "e": 1.5, "f": "7", "g": null}));
        assert_eq!(raw(&o, "a", WORD), Ok(Some(0)));
        assert_eq!(raw(&o, "b", WORD), Ok(Some(65535)));
        assert_eq!(raw(&o, "c", WORD).unwrap_err().field, "c");
        assert_eq!(raw(&o, "d", DWORD).unwrap_err().field, "d");
        assert_eq!(raw(&o, "e", DWORD).unwrap_err().field, "e");
        assert_eq!(raw(&o, "f", BYTE).unwrap_err().field, "f");
        assert_eq!(raw(&o, "g", BYTE), Ok(None));
        assert_eq!(raw(&o, "absent", BYTE), Ok(None));
        assert_eq!(required_raw(&o, "absent", BYTE).unwrap_err().problem, "missing");
    }

    #[test]
    fn maps_each_error_to_its_dead_letter_reason() {
        assert_eq!(message(b"{").unwrap_err().reason(), DeadLetterReason::MalformedJson);
        assert_eq!(message(b"[1]").unwrap_err().reason(), DeadLetterReason::MalformedJson);
        let o = object(json!({"Data": 3}));
        assert_eq!(envelope(&o, "Data").unwrap_err().reason(), DeadLetterReason::MalformedJson);
        assert_eq!(envelope(&o, "Other").unwrap_err().to_string(), "no Other object");
        assert_eq!(EmqxError::Mismatch(String::new()).reason(), DeadLetterReason::VinMismatch);
        assert_eq!(EmqxError::Encrypted(2).reason(), DeadLetterReason::Encrypted);
        assert_eq!(EmqxError::from(InvalidSample::new("x", "y")).reason(), DeadLetterReason::InvalidSample);
    }
}
