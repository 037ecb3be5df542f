//! `/api/v1/drivers`: drivers, each possibly bound to one car.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use fleet_domain::{Driver, NewDriver, Vehicle, Vin};
use fleet_storage::StorageError;
use serde::Serialize;

use crate::AppState;
use crate::access::{self, DriverScope};
use crate::api::edit;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{ApiPath, JsonBody};

#[derive(Serialize)]
pub(crate) struct DriverList {
    drivers: Vec<Driver>,
}

/// The unit's vehicles by VIN, which a unit's driver scope needs; empty for other scopes.
async fn unit_cars(state: &AppState, scope: &DriverScope) -> Result<HashMap<Vin, Vehicle>, ApiError> {
    Ok(match scope {
        DriverScope::UnitCars(unit) => {
            state.store.vehicles().list(Some(unit)).await?.into_iter().map(|v| (v.vin.clone(), v)).collect()
        }
        DriverScope::All | DriverScope::Own(_) => HashMap::new(),
    })
}

fn sees(scope: &DriverScope, cars: &HashMap<Vin, Vehicle>, d: &Driver) -> bool {
    scope.sees(d, d.vehicle_vin.as_ref().and_then(|vin| cars.get(vin)))
}

/// `GET /api/v1/drivers`.
pub(crate) async fn list(State(state): State<AppState>, auth: AuthUser) -> Result<Json<DriverList>, ApiError> {
    let scope = DriverScope::of(&auth.user);
    let cars = unit_cars(&state, &scope).await?;
    let drivers = match &scope {
        DriverScope::Own(id) => match id {
            Some(id) => state.store.drivers().get(id).await?.into_iter().collect(),
            None => Vec::new(),
        },
        _ => state.store.drivers().list().await?.into_iter().filter(|d| sees(&scope, &cars, d)).collect(),
    };
    Ok(Json(DriverList { drivers }))
}

/// `GET /api/v1/drivers/{id}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Driver>, ApiError> {
    let scope = DriverScope::of(&auth.user);
    let cars = unit_cars(&state, &scope).await?;
    match state.store.drivers().get(&id).await? {
        Some(d) if sees(&scope, &cars, &d) => Ok(Json(d)),
        _ => Err(ApiError::NotFound("driver")),
    }
}

/// `POST /api/v1/drivers` (admin): the id is generated when absent.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    body: JsonBody,
) -> Result<impl IntoResponse, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let new: NewDriver = body.parse()?;
    let vin = new.validate()?;
    let id = new.id.clone().unwrap_or_else(|| super::new_id("d"));
    let driver = state.store.drivers().create(&id, &new, vin.as_ref()).await.map_err(|e| match e {
        StorageError::MissingReference(_) => ApiError::validation("vehicle_vin", "no vehicle has this VIN"),
        e => e.into(),
    })?;
    tracing::info!(driver.id = %driver.id, user.id = auth.user.id, "driver created");
    Ok((StatusCode::CREATED, super::location("drivers", &driver.id), Json(driver)))
}

/// `PATCH /api/v1/drivers/{id}` (admin): name, phone, and the car the driver drives.
pub(crate) async fn patch(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<String>,
    body: JsonBody,
) -> Result<Json<Driver>, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let current = state.store.drivers().get(&id).await?.ok_or(ApiError::NotFound("driver"))?;
    let merged = edit::merge(&current, body.parse()?, &["name", "phone", "vehicle_vin"], &["id", "retired"])?;
    let new: NewDriver = edit::read(merged)?;
    let vin = new.validate()?;
    let driver = state.store.drivers().update(&id, &new, vin.as_ref()).await.map_err(|e| match e {
        StorageError::MissingReference(_) => ApiError::validation("vehicle_vin", "no vehicle has this VIN"),
        e => e.into(),
    })?;
    let driver = driver.ok_or(ApiError::NotFound("driver"))?;
    tracing::info!(driver.id = %driver.id, user.id = auth.user.id, "driver edited");
    Ok(Json(driver))
}

/// `POST /api/v1/drivers/{id}/retire` (admin): never dispatched again; trips and statistics
/// keep naming the driver.
pub(crate) async fn retire(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Driver>, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let driver = state.store.drivers().retire(&id).await?.ok_or(ApiError::NotFound("driver"))?;
    tracing::info!(driver.id = %driver.id, user.id = auth.user.id, "driver retired");
    Ok(Json(driver))
}
