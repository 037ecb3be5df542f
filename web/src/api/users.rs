//! `/api/v1/users` (admin) and `/api/v1/me`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use std::sync::Arc;

use fleet_bus::{Event, Revocation, RevokeReason};
use fleet_domain::{NewUser, Role, User};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::access;
use crate::api::edit;
use crate::auth::{AuthUser, hash_password_blocking};
use crate::error::ApiError;
use crate::extract::{ApiPath, JsonBody};

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
    links_exist(&state, &new).await?;
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

/// Checked before writing to name the field; the foreign keys stay the last word.
async fn links_exist(state: &AppState, user: &NewUser) -> Result<(), ApiError> {
    if let Some(unit) = &user.unit_id
        && state.store.units().get(unit).await?.is_none()
    {
        return Err(ApiError::validation("unit_id", "no unit has this id"));
    }
    if let Some(driver) = &user.driver_id
        && state.store.drivers().get(driver).await?.is_none()
    {
        return Err(ApiError::validation("driver_id", "no driver has this id"));
    }
    Ok(())
}

/// The writable fields of a user.
#[derive(Deserialize)]
struct UserEdit {
    role: Role,
    unit_id: Option<String>,
    driver_id: Option<String>,
}

/// Ends every session of a user whose access changed: their next request logs in again
/// under the new rules, and live-feed connections opened under the old ones close.
async fn end_sessions(state: &AppState, user_id: i64) -> Result<(), ApiError> {
    state.store.tokens().revoke_all_for(user_id, None).await?;
    state.bus.publish(Event::TokensRevoked(Arc::new(Revocation {
        user_id,
        token_hash: None,
        except: None,
        reason: RevokeReason::AccountChanged,
    })));
    Ok(())
}

fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound("user"))
}

/// `PATCH /api/v1/users/{id}` (admin): role, unit and driver links. A change ends the user's
/// sessions.
pub(crate) async fn patch(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<String>,
    body: JsonBody,
) -> Result<Json<User>, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let id = parse_id(&id)?;
    let current = state.store.users().get(id).await?.ok_or(ApiError::NotFound("user"))?;
    let merged =
        edit::merge(&current, body.parse()?, &["role", "unit_id", "driver_id"], &["id", "username", "retired"])?;
    let edit: UserEdit = edit::read(merged)?;
    let new = NewUser {
        username: current.username.clone(),
        password: String::new(),
        role: edit.role,
        unit_id: edit.unit_id,
        driver_id: edit.driver_id,
    };
    new.validate_account()?;
    if id == auth.user.id && new.role != Role::Admin {
        return Err(ApiError::Conflict("an admin cannot take away their own admin role".to_owned()));
    }
    links_exist(&state, &new).await?;
    let user = state
        .store
        .users()
        .update(id, new.role, new.unit_id.as_deref(), new.driver_id.as_deref())
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    let changed = (user.role, &user.unit_id, &user.driver_id) != (current.role, &current.unit_id, &current.driver_id);
    if changed && id != auth.user.id {
        end_sessions(&state, id).await?;
    }
    tracing::info!(user.id = user.id, user.role = user.role.as_str(), by.user.id = auth.user.id, "user edited");
    Ok(Json(user))
}

/// `POST /api/v1/users/{id}/retire` (admin): the user cannot log in any more and their
/// sessions end; the audit log keeps their name. An admin cannot retire themselves.
pub(crate) async fn retire(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<User>, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let id = parse_id(&id)?;
    if id == auth.user.id {
        return Err(ApiError::Conflict("an admin cannot retire their own account".to_owned()));
    }
    let user = state.store.users().retire(id).await?.ok_or(ApiError::NotFound("user"))?;
    end_sessions(&state, id).await?;
    tracing::info!(user.id = user.id, by.user.id = auth.user.id, "user retired");
    Ok(Json(user))
}
