//! `/api/v1/units`: the departments that apply for trips.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use fleet_domain::{NewUnit, Unit};
use serde::Serialize;

use crate::AppState;
use crate::access::{self, UnitScope};
use crate::api::edit;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{ApiPath, JsonBody};

#[derive(Serialize)]
pub(crate) struct UnitList {
    units: Vec<Unit>,
}

/// `GET /api/v1/units`: every unit, or a unit user's own.
pub(crate) async fn list(State(state): State<AppState>, auth: AuthUser) -> Result<Json<UnitList>, ApiError> {
    let scope = access::unit_scope(&auth.user)?;
    let units = match scope {
        UnitScope::All => state.store.units().list().await?,
        UnitScope::Own(id) => state.store.units().get(&id).await?.into_iter().collect(),
    };
    Ok(Json(UnitList { units }))
}

/// `GET /api/v1/units/{id}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Unit>, ApiError> {
    let scope = access::unit_scope(&auth.user)?;
    match state.store.units().get(&id).await? {
        Some(unit) if scope.sees(&unit.id) => Ok(Json(unit)),
        _ => Err(ApiError::NotFound("unit")),
    }
}

/// `POST /api/v1/units` (admin): the id is generated when absent.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    body: JsonBody,
) -> Result<impl IntoResponse, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let new: NewUnit = body.parse()?;
    new.validate()?;
    let id = new.id.clone().unwrap_or_else(|| super::new_id("u"));
    let unit = state.store.units().create(&id, &new).await?;
    tracing::info!(unit.id = %unit.id, user.id = auth.user.id, "unit created");
    Ok((StatusCode::CREATED, super::location("units", &unit.id), Json(unit)))
}

/// `PATCH /api/v1/units/{id}` (admin): name, budget, auto-approval, contact e-mail.
pub(crate) async fn patch(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<String>,
    body: JsonBody,
) -> Result<Json<Unit>, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let current = state.store.units().get(&id).await?.ok_or(ApiError::NotFound("unit"))?;
    let merged = edit::merge(
        &current,
        body.parse()?,
        &["name", "monthly_energy_budget_kwh", "auto_approve", "contact_email"],
        &["id"],
    )?;
    let new: NewUnit = edit::read(merged)?;
    new.validate()?;
    let unit = state.store.units().update(&id, &new).await?.ok_or(ApiError::NotFound("unit"))?;
    tracing::info!(unit.id = %unit.id, user.id = auth.user.id, "unit edited");
    Ok(Json(unit))
}
