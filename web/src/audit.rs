//! The audit log of every write (issue 8): each POST, PUT, PATCH or DELETE under `/api/v1` is
//! recorded after it is answered — who (by the bearer token, when valid), when, the method and
//! path (never the query string or the body: they may carry secrets), and the status — and
//! `GET /api/v1/audit` lists it for admins and auditors.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use chrono::Utc;
use fleet_domain::Role;
use fleet_storage::AuditEntry;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::ApiQuery;

/// Entries in one listing when the request names no `limit`.
pub const DEFAULT_LIMIT: i64 = 1000;
/// The most entries one listing may ask for.
pub const MAX_LIMIT: i64 = 10_000;

/// Records every write request under `/api/v1` once it is answered.
pub(crate) async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let write = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    if !write || !req.uri().path().starts_with("/api/v1/") {
        return next.run(req).await;
    }
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let token = crate::auth::bearer_token(req.headers()).map(str::to_owned);
    let response = next.run(req).await;
    // A logout revokes the token it came with: look the user up before judging it by it.
    let user = match token {
        Some(t) => crate::auth::authenticate_any(&state, &t).await,
        None => None,
    };
    if let Err(e) =
        state.store.audit().record(Utc::now(), user.as_ref(), &method, &path, response.status().as_u16()).await
    {
        // The write happened; losing its audit line is logged loudly (and counted).
        metrics::counter!("fleet_audit_failures_total").increment(1);
        tracing::error!(error = %e, http.method = %method, http.path = %path, "could not record a write in the audit log");
    }
    response
}

#[derive(Deserialize)]
pub(crate) struct AuditQuery {
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize)]
pub(crate) struct AuditList {
    entries: Vec<AuditEntry>,
}

/// `GET /api/v1/audit?from=&to=&limit=` (admin, auditor): newest first; default the last 7 days.
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditList>, ApiError> {
    if !matches!(auth.user.role, Role::Admin | Role::Auditor) {
        return Err(ApiError::Forbidden);
    }
    let to = q.to.as_deref().map(|s| crate::api::vehicles::parse_time("to", s)).transpose()?.unwrap_or_else(Utc::now);
    let from = q
        .from
        .as_deref()
        .map(|s| crate::api::vehicles::parse_time("from", s))
        .transpose()?
        .unwrap_or(to - chrono::Duration::days(7));
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be 1 to {MAX_LIMIT}")));
    }
    Ok(Json(AuditList {
        entries: state.store.audit().list(from, to + chrono::Duration::milliseconds(1), limit).await?,
    }))
}
