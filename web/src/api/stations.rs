//! `/api/v1/charging-stations`.

use axum::Json;
use axum::extract::State;
use fleet_storage::ChargingStation;
use serde::Serialize;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;

#[derive(Serialize)]
pub(crate) struct StationList {
    charging_stations: Vec<ChargingStation>,
}

/// `GET /api/v1/charging-stations`: every station, for every signed-in role.
pub(crate) async fn list(State(state): State<AppState>, _auth: AuthUser) -> Result<Json<StationList>, ApiError> {
    Ok(Json(StationList { charging_stations: state.store.charging_stations().list().await? }))
}
