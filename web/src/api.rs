//! The JSON API under `/api/v1`, one module per resource, and its OpenAPI document.

pub(crate) mod alarms;
pub(crate) mod costs;
pub(crate) mod dead_letters;
pub(crate) mod drivers;
pub(crate) mod edit;
pub(crate) mod import;
pub(crate) mod misuse;
pub(crate) mod orders;
pub(crate) mod platforms;
pub(crate) mod stations;
pub(crate) mod stats;
pub(crate) mod trips;
pub(crate) mod units;
pub(crate) mod upkeep;
pub(crate) mod users;
pub(crate) mod vehicles;

use axum::http::header;
use axum::response::IntoResponse;
use rand::Rng;

/// The hand-written OpenAPI 3.1 document (`GET /api/v1/openapi.json`, no token needed).
pub(crate) const OPENAPI: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json`.
pub(crate) async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// A listing's time window from its `from` and `to` query parameters (RFC 3339): `to`
/// defaults to now, `from` to `span` before `to`; `from` after `to` → 400.
pub(crate) fn time_window(
    from: Option<&str>,
    to: Option<&str>,
    span: chrono::Duration,
) -> Result<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>), crate::error::ApiError> {
    let to = to.map(|s| vehicles::parse_time("to", s)).transpose()?.unwrap_or_else(chrono::Utc::now);
    let from = from.map(|s| vehicles::parse_time("from", s)).transpose()?.unwrap_or(to - span);
    if from > to {
        return Err(crate::error::ApiError::BadRequest("from must not be after to".into()));
    }
    Ok((from, to))
}

/// A fresh id for an object whose creator gave none: `prefix` and 10 random lowercase
/// letters and digits (36^10 ≈ 3.7·10^15 values, so a collision is not worth a retry).
pub(crate) fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..10).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
    format!("{prefix}{tail}")
}

/// `Location` of a created object.
pub(crate) fn location(collection: &str, id: &str) -> [(header::HeaderName, String); 1] {
    [(header::LOCATION, format!("/api/v1/{collection}/{id}"))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_client_ids() {
        let id = new_id("u");
        assert_eq!(id.len(), 11);
        assert!(fleet_domain::registry::validate_id("id", &id).is_ok());
        assert_ne!(id, new_id("u"));
    }

    #[test]
    fn the_openapi_document_is_valid_json_of_version_3_1() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json parses");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    }

    #[test]
    fn every_reference_in_the_openapi_document_resolves() {
        fn walk(v: &serde_json::Value, doc: &serde_json::Value, bad: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                        let target = r.strip_prefix('#').and_then(|p| doc.pointer(p));
                        if target.is_none() {
                            bad.push(r.to_owned());
                        }
                    }
                    m.values().for_each(|v| walk(v, doc, bad));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, doc, bad)),
                _ => {}
            }
        }
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let mut bad = Vec::new();
        walk(&doc, &doc, &mut bad);
        assert!(bad.is_empty(), "dangling $ref: {bad:?}");
    }

    #[test]
    fn every_error_code_is_in_the_documents_error_schema() {
        use crate::error::ApiError;
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let documented = &doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"];
        let every = [
            ApiError::BadRequest(String::new()),
            ApiError::Unauthorized,
            ApiError::InvalidCredentials,
            ApiError::Forbidden,
            ApiError::NotFound("x"),
            ApiError::MethodNotAllowed,
            ApiError::Conflict(String::new()),
            ApiError::InvalidTransition(String::new()),
            ApiError::BudgetExhausted(String::new()),
            ApiError::VehicleBusy,
            ApiError::TooLarge,
            ApiError::RequestTimeout,
            ApiError::validation("f", "p"),
            ApiError::TooManyAttempts { retry_after: std::time::Duration::from_secs(1) },
            ApiError::Unavailable(String::new()),
            ApiError::Internal(String::new()),
        ];
        let mut codes: Vec<&str> = every.iter().map(|e| e.status_and_code().1).collect();
        let mut listed: Vec<&str> = documented.as_array().unwrap().iter().filter_map(|c| c.as_str()).collect();
        codes.sort_unstable();
        listed.sort_unstable();
        assert_eq!(codes, listed, "the Error schema's codes are exactly the API's");
        // A new variant must be added above: this match fails to compile without it.
        match &every[0] {
            ApiError::BadRequest(_)
            | ApiError::Unauthorized
            | ApiError::InvalidCredentials
            | ApiError::Forbidden
            | ApiError::NotFound(_)
            | ApiError::MethodNotAllowed
            | ApiError::Conflict(_)
            | ApiError::InvalidTransition(_)
            | ApiError::BudgetExhausted(_)
            | ApiError::VehicleBusy
            | ApiError::TooLarge
            | ApiError::RequestTimeout
            | ApiError::Validation { .. }
            | ApiError::TooManyAttempts { .. }
            | ApiError::Unavailable(_)
            | ApiError::Internal(_) => {}
        }
    }
}
