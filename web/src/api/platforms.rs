//! `/api/v1/platforms` (admin): accounts of the platforms that forward GB/T 32960.3 reports of
//! many vehicles over the TCP gateway. A platform logs in with the username and password
//! (12 and 20 bytes on the wire); the password is kept as an argon2 hash only.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::access;
use crate::auth::{AuthUser, hash_password_blocking};
use crate::error::ApiError;
use crate::extract::JsonBody;

/// Widths of the credentials in a platform login frame.
const USERNAME_MAX: usize = 12;
const PASSWORD_MAX: usize = 20;
const NAME_MAX: usize = 100;

#[derive(Serialize)]
pub(crate) struct PlatformOut {
    id: i64,
    name: String,
    username: String,
    created_at: DateTime<Utc>,
}

impl From<fleet_storage::Platform> for PlatformOut {
    fn from(p: fleet_storage::Platform) -> Self {
        Self { id: p.id, name: p.name, username: p.username, created_at: p.created_at }
    }
}

#[derive(Serialize)]
pub(crate) struct PlatformList {
    platforms: Vec<PlatformOut>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPlatform {
    name: String,
    username: String,
    password: String,
}

/// Credentials travel as fixed-width text in the frame: visible ASCII, no padding byte.
fn credential(field: &'static str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > max || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::validation(field, format!("1 to {max} visible ASCII characters")));
    }
    Ok(())
}

/// `GET /api/v1/platforms` (admin).
pub(crate) async fn list(State(state): State<AppState>, auth: AuthUser) -> Result<Json<PlatformList>, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let platforms = state.store.platforms().list().await?.into_iter().map(PlatformOut::from).collect();
    Ok(Json(PlatformList { platforms }))
}

/// `POST /api/v1/platforms` (admin).
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    body: JsonBody,
) -> Result<impl IntoResponse, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let new: NewPlatform = body.parse()?;
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX {
        return Err(ApiError::validation("name", format!("1 to {NAME_MAX} characters")));
    }
    credential("username", &new.username, USERNAME_MAX)?;
    credential("password", &new.password, PASSWORD_MAX)?;
    let hash = hash_password_blocking(new.password).await?;
    let platform = state.store.platforms().create(name, &new.username, &hash, Utc::now()).await?;
    tracing::info!(platform.id = platform.id, by.user.id = auth.user.id, "GB/T 32960 platform account created");
    Ok((StatusCode::CREATED, super::location("platforms", &platform.id.to_string()), Json(PlatformOut::from(platform))))
}
