//! `Idempotency-Key` (docs/api.md): any POST may carry one; a repeat with the same key by the
//! same user within 24 h answers as the first did, without running again. Answers are kept
//! in storage, so a retry after a restart (or on another instance) is answered too.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use fleet_storage::KeptAnswer;

use crate::AppState;
use crate::error::ApiError;

/// The request header.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Marks a replayed answer.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// How long an answer is kept for its key.
pub const KEEP_FOR: chrono::Duration = chrono::Duration::hours(24);
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 200;
/// Largest answer kept (API answers are small JSON; a larger one is sent but not kept).
const MAX_KEPT_BODY: usize = 1024 * 1024;

/// Marks an answer that must not be kept for its key (a response extension): it carries a
/// secret shown once (a vehicle's MQTT secret), which must not sit in the database for 24 h.
/// A repeat with the same key runs the request again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NotKept;

/// Replays a kept answer for a POST's key, or runs the request and keeps its answer (unless
/// it is a server error, which the client should be free to retry).
pub(crate) async fn idempotent(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || is_authentication(req.uri().path()) {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(&IDEMPOTENCY_KEY) else {
        return next.run(req).await;
    };
    let key = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= MAX_KEY_LEN && k.bytes().all(|b| b.is_ascii_graphic()) => k.to_owned(),
        _ => {
            return ApiError::BadRequest(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
            ))
            .into_response();
        }
    };
    // Without a valid token the handler answers 401 as usual; nothing is kept.
    let Some(token) = crate::auth::bearer_token(req.headers()).map(str::to_owned) else {
        return next.run(req).await;
    };
    let Ok(user) = crate::auth::authenticate(&state, &token).await else {
        return next.run(req).await;
    };
    let request = format!("POST {}", req.uri().path());
    let now = Utc::now();
    match state.store.idempotency_keys().get(user.id, &key, now - KEEP_FOR).await {
        Ok(Some(kept)) if kept.request == request => return replay(kept),
        Ok(Some(_)) => {
            return ApiError::Conflict("this Idempotency-Key was used for another request".to_owned()).into_response();
        }
        Ok(None) => {}
        Err(e) => return ApiError::from(e).into_response(),
    }
    let response = next.run(req).await;
    if response.status().is_server_error() || response.extensions().get::<NotKept>().is_some() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_KEPT_BODY).await else {
        return ApiError::Internal("an answer too large to keep for its Idempotency-Key".to_owned()).into_response();
    };
    let kept = KeptAnswer { request, status: parts.status.as_u16(), body: bytes.to_vec() };
    if let Err(e) = state.store.idempotency_keys().put(user.id, &key, &kept, now, now - KEEP_FOR).await {
        // The action happened; failing to keep its answer only weakens a later retry.
        tracing::warn!(error = %e, user.id = user.id, "could not keep an answer for its Idempotency-Key");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Login, logout and password change never take part: a kept login answer would be a live
/// token in plain text for 24 h, replayed to whoever repeats the key with any password.
fn is_authentication(path: &str) -> bool {
    path.starts_with("/api/v1/auth/")
}

fn replay(kept: KeptAnswer) -> Response {
    let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    let mut response = (status, kept.body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}
