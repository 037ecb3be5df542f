//! `/api/v1/dead-letters` (admin, auditor): what ingestion rejected, and why.

use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use fleet_domain::{DeadLetter, DeadLetterReason};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::access;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::ApiQuery;

/// Dead letters returned when the request names no `limit`.
pub const DEFAULT_LIMIT: i64 = 100;
/// The most dead letters one request may ask for (each carries up to 64 KiB of payload).
pub const MAX_LIMIT: i64 = 1000;

#[derive(Deserialize)]
pub(crate) struct DeadLetterQuery {
    limit: Option<i64>,
    reason: Option<String>,
}

/// A dead letter as served: the raw bytes in base64.
#[derive(Serialize)]
pub(crate) struct DeadLetterView {
    received_at: DateTime<Utc>,
    topic: String,
    vin: Option<String>,
    reason: DeadLetterReason,
    detail: String,
    size: usize,
    payload_base64: String,
}

impl From<DeadLetter> for DeadLetterView {
    fn from(d: DeadLetter) -> Self {
        Self {
            received_at: d.received_at,
            topic: d.topic,
            vin: d.vin,
            reason: d.reason,
            detail: d.detail,
            size: d.size,
            payload_base64: STANDARD.encode(&d.payload),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct DeadLetterList {
    dead_letters: Vec<DeadLetterView>,
}

/// `GET /api/v1/dead-letters?limit=&reason=`: the newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(q): ApiQuery<DeadLetterQuery>,
) -> Result<Json<DeadLetterList>, ApiError> {
    access::require(access::reads_dead_letters(auth.user.role))?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be 1 to {MAX_LIMIT}")));
    }
    let reason = match q.reason.as_deref().filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => Some(DeadLetterReason::parse(r).ok_or_else(|| {
            let known: Vec<&str> = DeadLetterReason::ALL.iter().map(|r| r.as_str()).collect();
            ApiError::BadRequest(format!("unknown reason {r:?}; one of {}", known.join(", ")))
        })?),
    };
    let letters = state.store.dead_letters().recent(limit, reason).await?;
    Ok(Json(DeadLetterList { dead_letters: letters.into_iter().map(DeadLetterView::from).collect() }))
}
