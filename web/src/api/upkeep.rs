//! The vehicle file's upkeep: service records (`/api/v1/vehicles/{vin}/maintenance`) and what
//! is falling due (`/api/v1/reminders`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::NaiveDate;
use fleet_domain::costs::{check_entry, today};
use fleet_domain::upkeep::{Reminder, reminders};
use fleet_domain::{ValidationError, Vin};
use fleet_storage::MaintenanceRecord;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::access::{self, VehicleScope};
use crate::api::vehicles::{visible_vehicle, visible_vehicles};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{ApiPath, JsonBody};

/// A service to record, as received.
#[derive(Debug, Deserialize)]
struct NewService {
    on: NaiveDate,
    #[serde(default)]
    odometer_km: Option<f64>,
    #[serde(default)]
    note: String,
    #[serde(default)]
    cost_yuan: f64,
}

impl NewService {
    fn validate(&self, today: NaiveDate) -> Result<(), ValidationError> {
        let future = "a service cannot be recorded before it is done";
        check_entry(self.on, today, future, "cost_yuan", self.cost_yuan, &self.note)?;
        if let Some(km) = self.odometer_km
            && !(km.is_finite() && (0.0..=fleet_domain::registry::MAX_ODOMETER_KM).contains(&km))
        {
            return Err(ValidationError::new("odometer_km", "must be 0 to 2,000,000"));
        }
        Ok(())
    }
}

/// `POST /api/v1/vehicles/{vin}/maintenance {on, odometer_km, note, cost_yuan}` (admin):
/// records a service; the file's last service moves to it (unless a later one is on record).
pub(crate) async fn record(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(vin): ApiPath<String>,
    body: JsonBody,
) -> Result<impl IntoResponse, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let vin = Vin::parse(&vin).map_err(|_| ApiError::NotFound("vehicle"))?;
    let service: NewService = body.parse()?;
    service.validate(today())?;
    let record = state
        .store
        .vehicles()
        .record_maintenance(&vin, service.on, service.odometer_km, service.note.trim(), service.cost_yuan)
        .await?
        .ok_or(ApiError::NotFound("vehicle"))?;
    if let Some(vehicle) = state.store.vehicles().get(vin.as_str()).await? {
        state.bus.publish(fleet_bus::Event::VehicleChanged(std::sync::Arc::new(vehicle)));
    }
    tracing::info!(vehicle.vin = %vin, record.id = record.id, user.id = auth.user.id, "service recorded");
    Ok((StatusCode::CREATED, Json(record)))
}

#[derive(Serialize)]
pub(crate) struct ServiceList {
    records: Vec<MaintenanceRecord>,
}

/// `GET /api/v1/vehicles/{vin}/maintenance`: the car's service records, latest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(vin): ApiPath<String>,
) -> Result<Json<ServiceList>, ApiError> {
    let vehicle = visible_vehicle(&state, &auth, &vin).await?;
    Ok(Json(ServiceList { records: state.store.vehicles().maintenance(vehicle.vin.as_str()).await? }))
}

#[derive(Serialize)]
pub(crate) struct ReminderList {
    reminders: Vec<Reminder>,
}

/// `GET /api/v1/reminders`: what falls due within 30 days or 500 km, or is overdue, for the
/// cars the caller sees (odometers from telemetry), soonest date first.
pub(crate) async fn reminders_list(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<ReminderList>, ApiError> {
    let scope = VehicleScope::load(&state.store, &auth.user).await?;
    let vehicles = visible_vehicles(&state, &scope).await?;
    let odometers: std::collections::HashMap<Vin, f64> = state
        .store
        .telemetry()
        .states()
        .await?
        .into_iter()
        .filter_map(|s| Some((s.vin.clone(), s.odometer_km?)))
        .collect();
    let today = today();
    let mut out: Vec<Reminder> =
        vehicles.iter().flat_map(|v| reminders(v, odometers.get(&v.vin).copied(), today)).collect();
    out.sort_by(|a, b| {
        (!a.overdue, a.due_on.unwrap_or(NaiveDate::MAX), a.vin.as_str()).cmp(&(
            !b.overdue,
            b.due_on.unwrap_or(NaiveDate::MAX),
            b.vin.as_str(),
        ))
    });
    Ok(Json(ReminderList { reminders: out }))
}
