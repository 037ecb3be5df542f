//! `/api/v1/users` (admin) and `/api/v1/me`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use fleet_domain::{NewUser, User};
use serde::Serialize;

use crate::AppState;
use crate::access;
use crate::auth::{AuthUser, hash_password_blocking};
use crate::error::ApiError;
use crate::extract::JsonBody;

#[derive(Serialize)]
pub(crate) struct UserList {
    users: Vec<User>,
}

/// `GET /api/v1/users` (admin).
pub(crate) async fn list(State(state): State<AppState>, auth: AuthUser) -> Result<Json<UserList>, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    Ok(Json(UserList { users: state.store.users().list().await? }))
}

/// `POST /api/v1/users` (admin): a `unit` user needs `unit_id`, a `driver` user `driver_id`.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    body: JsonBody,
) -> Result<impl IntoResponse, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let new: NewUser = body.parse()?;
    new.validate()?;
    // Checked here to name the field; the foreign keys stay the last word.
    if let Some(unit) = &new.unit_id
        && state.store.units().get(unit).await?.is_none()
    {
        return Err(ApiError::validation("unit_id", "no unit has this id"));
    }
    if let Some(driver) = &new.driver_id
        && state.store.drivers().get(driver).await?.is_none()
    {
        return Err(ApiError::validation("driver_id", "no driver has this id"));
    }
    let hash = hash_password_blocking(new.password.clone()).await?;
    let user = state
        .store
        .users()
        .create(&new.username, &hash, new.role, new.unit_id.as_deref(), new.driver_id.as_deref())
        .await?;
    tracing::info!(user.id = user.id, user.role = user.role.as_str(), by.user.id = auth.user.id, "user created");
    Ok((StatusCode::CREATED, super::location("users", &user.id.to_string()), Json(user)))
}

/// `GET /api/v1/me`: the caller.
pub(crate) async fn me(auth: AuthUser) -> Json<User> {
    Json(auth.user)
}
