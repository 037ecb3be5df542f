//! The one place where a failure becomes an HTTP response: every refusal is an [`ApiError`],
//! rendered as `{"error": {"code": "…", "message": "…"}}` (docs/api.md, "Errors").

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fleet_domain::ValidationError;
use fleet_storage::StorageError;
use serde_json::json;

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is malformed (bad JSON, bad query, impossible time range).
    #[error("{0}")]
    BadRequest(String),
    /// No token, or one that is unknown, expired or revoked.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// A login (or a password change) with the wrong username or password.
    #[error("wrong username or password")]
    InvalidCredentials,
    /// The caller's role may not take this action.
    #[error("your role may not do this")]
    Forbidden,
    /// No such thing, or one outside the caller's view (the two look the same).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A unique key exists already; the message says which.
    #[error("{0}")]
    Conflict(String),
    /// The order's status does not allow the action.
    #[error("{0}")]
    InvalidTransition(String),
    /// The unit's monthly energy budget is spent.
    #[error("the unit's energy budget for {0} is spent; an admin may override it")]
    BudgetExhausted(String),
    /// The car holds an overlapping active order.
    #[error("the vehicle already holds an overlapping active order")]
    VehicleBusy,
    #[error("the request body is too large")]
    TooLarge,
    /// The request's body did not arrive within the server's body timeout.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// A field fails validation; the message names it.
    #[error("{field}: {problem}")]
    Validation { field: String, problem: String },
    /// Too many failed logins for one username.
    #[error("too many failed logins; try again in {} s", retry_after_secs(*.retry_after))]
    TooManyAttempts { retry_after: Duration },
    /// The database is unreachable or overloaded: retry later. The detail is logged, not sent.
    #[error("the service is temporarily unavailable; try again later")]
    Unavailable(String),
    /// A bug or inconsistent data. The detail is logged, not sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The status code and the stable machine-readable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            Self::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::InvalidTransition(_) => (StatusCode::CONFLICT, "invalid_transition"),
            Self::VehicleBusy => (StatusCode::CONFLICT, "vehicle_busy"),
            Self::BudgetExhausted(_) => (StatusCode::CONFLICT, "budget_exhausted"),
            Self::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            Self::Validation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Self::TooManyAttempts { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// A validation failure of one field.
    pub fn validation(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Validation { field: field.into(), problem: problem.into() }
    }
}

/// Whole seconds to wait, rounded up and never 0 (a `Retry-After: 0` invites a hot loop).
fn retry_after_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Logged here, once: the handler only returns the error.
        match &self {
            Self::Unavailable(detail) => tracing::warn!(error = %detail, "request failed: storage unavailable"),
            Self::Internal(detail) => tracing::error!(error = %detail, "request failed: internal error"),
            _ => {}
        }
        let (status, code) = self.status_and_code();
        let body = json!({ "error": { "code": code, "message": self.to_string() } });
        let mut response = (status, Json(body)).into_response();
        if let Self::TooManyAttempts { retry_after } = &self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs(*retry_after)));
        }
        response
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            StorageError::MissingReference(what) => Self::validation(what, format!("{what} does not exist")),
            e @ StorageError::InvalidTransition { .. } => Self::InvalidTransition(e.to_string()),
            StorageError::VehicleBusy => Self::VehicleBusy,
            StorageError::Stale => Self::Conflict("the order changed meanwhile; read it again".to_owned()),
            StorageError::NotTheirs => Self::NotFound("order"),
            e if e.is_transient() => Self::Unavailable(e.to_string()),
            e => Self::Internal(e.to_string()),
        }
    }
}

impl From<fleet_stats::StatsError> for ApiError {
    fn from(e: fleet_stats::StatsError) -> Self {
        match e {
            fleet_stats::StatsError::BadMonth(month) => Self::BadRequest(format!("bad month {month:?}")),
            fleet_stats::StatsError::Storage(e) => e.into(),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        Self::Validation { field: e.field.to_owned(), problem: e.problem }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            // Well-formed JSON of the wrong shape (a missing field, a string for a number):
            // the message names the field.
            JsonRejection::JsonDataError(e) => Self::Validation { field: "body".into(), problem: source_text(&e) },
            JsonRejection::JsonSyntaxError(e) => Self::BadRequest(format!("malformed JSON: {}", source_text(&e))),
            JsonRejection::MissingJsonContentType(_) => {
                Self::BadRequest("expected a JSON body with Content-Type: application/json".into())
            }
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::TooLarge,
            other => Self::BadRequest(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        match r {
            QueryRejection::FailedToDeserializeQueryString(e) => {
                Self::BadRequest(format!("bad query: {}", source_text(&e)))
            }
            other => Self::BadRequest(other.body_text()),
        }
    }
}

/// serde's own message (axum wraps it behind a generic prefix).
fn source_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(e: ApiError) -> (StatusCode, serde_json::Value, Option<String>) {
        let r = e.into_response();
        let status = r.status();
        let retry = r.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap(), retry)
    }

    #[tokio::test]
    async fn errors_render_in_the_documented_shape() {
        let (status, body, _) = body_of(ApiError::NotFound("vehicle")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found");
        assert_eq!(body["error"]["message"], "vehicle not found");
    }

    #[tokio::test]
    async fn too_many_attempts_says_when_to_retry() {
        let (status, body, retry) =
            body_of(ApiError::TooManyAttempts { retry_after: Duration::from_millis(61_200) }).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["error"]["code"], "too_many_attempts");
        assert_eq!(retry.as_deref(), Some("62"));
    }

    #[test]
    fn storage_conflicts_and_missing_references_map_to_409_and_422() {
        let (s, c) = ApiError::from(StorageError::Conflict("plate")).status_and_code();
        assert_eq!((s, c), (StatusCode::CONFLICT, "conflict"));
        assert_eq!(ApiError::from(StorageError::Conflict("plate")).to_string(), "plate already exists");
        let e = ApiError::from(StorageError::MissingReference("unit"));
        assert_eq!(e.status_and_code(), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
        assert_eq!(e.to_string(), "unit: unit does not exist");
    }

    #[test]
    fn unreachable_database_is_503_and_a_bug_is_500() {
        let e = ApiError::from(StorageError::Db(sqlx::Error::PoolTimedOut));
        assert_eq!(e.status_and_code(), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"));
        assert!(!e.to_string().contains("pool"), "internal detail must not reach the client");
        let e = ApiError::from(StorageError::Corrupt("role \"x\"".into()));
        assert_eq!(e.status_and_code(), (StatusCode::INTERNAL_SERVER_ERROR, "internal"));
    }

    #[test]
    fn validation_errors_name_their_field() {
        let e = ApiError::from(ValidationError::new("vin", "a VIN has 17 characters, this one has 3"));
        assert_eq!(e.status_and_code().1, "validation_failed");
        assert!(e.to_string().starts_with("vin: "));
    }

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(5)), 5);
        assert_eq!(retry_after_secs(Duration::from_millis(5_001)), 6);
    }
}
