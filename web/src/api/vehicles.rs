//! `/api/v1/vehicles`: the registry of cars, their current state and their tracks.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use fleet_domain::{Duty, NewVehicle, Sample, SampleSource, Vehicle, VehicleState, VehicleStatus, Vin};
use fleet_storage::StorageError;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::access::{self, VehicleScope};
use crate::api::edit;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, JsonBody};

/// A track without `from` covers this long before `to`.
pub const DEFAULT_TRACK_SPAN: chrono::Duration = chrono::Duration::hours(2);
/// Samples in a track when the request names no `limit`.
pub const DEFAULT_TRACK_LIMIT: i64 = 10_000;
/// The most samples one track request may ask for.
pub const MAX_TRACK_LIMIT: i64 = 100_000;

/// A vehicle's status at `now`, derived by the domain's one rule from its state and its
/// order duty (as the live feed tracks it from order events). A car that never reported is
/// offline.
pub(crate) fn status_at(state: Option<&VehicleState>, duty: Duty, now: DateTime<Utc>) -> VehicleStatus {
    state.map_or(VehicleStatus::Offline, |s| s.status(now, duty))
}

/// The `state` of `GET /api/v1/vehicles/{vin}`: the stored state and its derived status.
#[derive(Debug, Serialize)]
pub(crate) struct StateDetail {
    #[serde(flatten)]
    state: VehicleState,
    status: VehicleStatus,
}

impl StateDetail {
    fn new(s: &VehicleState, duty: Duty, now: DateTime<Utc>) -> Self {
        Self { state: s.clone(), status: status_at(Some(s), duty, now) }
    }
}

/// A vehicle with its current state (null when the car never reported).
#[derive(Debug, Serialize)]
pub(crate) struct VehicleDetail {
    #[serde(flatten)]
    vehicle: Vehicle,
    state: Option<StateDetail>,
}

/// `VehicleState` (docs/live-feed.md): what the map and the live feed show of a car, with
/// the car's unit beside it. Fields are null until the car has reported (and `lat`/`lon`
/// until it has sent a valid position).
#[derive(Debug, Serialize)]
pub(crate) struct VehicleStateView {
    pub vin: Vin,
    pub plate: String,
    pub unit_id: Option<String>,
    pub ts: Option<DateTime<Utc>>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub speed_kmh: Option<f64>,
    pub heading_deg: Option<f64>,
    pub soc_pct: Option<f64>,
    pub status: VehicleStatus,
}

impl VehicleStateView {
    pub(crate) fn new(v: &Vehicle, s: Option<&VehicleState>, duty: Duty, now: DateTime<Utc>) -> Self {
        Self::with_status(v, s, status_at(s, duty, now))
    }

    /// The view of a car whose status is already derived (the live feed adds order duties).
    pub(crate) fn with_status(v: &Vehicle, s: Option<&VehicleState>, status: VehicleStatus) -> Self {
        Self {
            vin: v.vin.clone(),
            plate: v.plate.clone(),
            unit_id: v.unit_id.clone(),
            ts: s.map(|s| s.ts),
            lat: s.and_then(|s| s.lat),
            lon: s.and_then(|s| s.lon),
            speed_kmh: s.and_then(|s| s.speed_kmh),
            heading_deg: s.and_then(|s| s.heading_deg),
            soc_pct: s.and_then(|s| s.soc_pct),
            status,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct VehicleList {
    vehicles: Vec<Vehicle>,
}

#[derive(Serialize)]
pub(crate) struct StateList {
    vehicles: Vec<VehicleStateView>,
}

/// The vehicles a scope sees, in plate order.
pub(crate) async fn visible_vehicles(state: &AppState, scope: &VehicleScope) -> Result<Vec<Vehicle>, ApiError> {
    Ok(match scope {
        VehicleScope::All => state.store.vehicles().list(None).await?,
        VehicleScope::Unit(unit) => state.store.vehicles().list(Some(unit)).await?,
        VehicleScope::Car(None) => Vec::new(),
        VehicleScope::Car(Some(vin)) => state.store.vehicles().get(vin.as_str()).await?.into_iter().collect(),
    })
}

/// A vehicle the caller sees, else 404 (whether it exists or not).
pub(crate) async fn visible_vehicle(state: &AppState, auth: &AuthUser, vin: &str) -> Result<Vehicle, ApiError> {
    let scope = VehicleScope::load(&state.store, &auth.user).await?;
    match state.store.vehicles().get(vin).await? {
        Some(v) if scope.sees(&v) => Ok(v),
        _ => Err(ApiError::NotFound("vehicle")),
    }
}

/// `GET /api/v1/vehicles`.
pub(crate) async fn list(State(state): State<AppState>, auth: AuthUser) -> Result<Json<VehicleList>, ApiError> {
    let scope = VehicleScope::load(&state.store, &auth.user).await?;
    Ok(Json(VehicleList { vehicles: visible_vehicles(&state, &scope).await? }))
}

/// `POST /api/v1/vehicles` (admin).
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    body: JsonBody,
) -> Result<impl IntoResponse, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let new: NewVehicle = body.parse()?;
    let vin = new.validate()?;
    let vehicle = state.store.vehicles().create(&vin, &new).await.map_err(|e| match e {
        StorageError::MissingReference(_) => ApiError::validation("unit_id", "no unit has this id"),
        e => e.into(),
    })?;
    tracing::info!(vehicle.vin = %vehicle.vin, user.id = auth.user.id, "vehicle registered");
    state.bus.publish(fleet_bus::Event::VehicleChanged(std::sync::Arc::new(vehicle.clone())));
    Ok((StatusCode::CREATED, super::location("vehicles", vehicle.vin.as_str()), Json(vehicle)))
}

/// `GET /api/v1/vehicles/{vin}`: the vehicle and its current state.
pub(crate) async fn get(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(vin): ApiPath<String>,
) -> Result<Json<VehicleDetail>, ApiError> {
    let vehicle = visible_vehicle(&state, &auth, &vin).await?;
    let current = state.store.telemetry().state(vehicle.vin.as_str()).await?;
    let now = Utc::now();
    let duty = state.live.duty(&vehicle.vin);
    Ok(Json(VehicleDetail { vehicle, state: current.as_ref().map(|s| StateDetail::new(s, duty, now)) }))
}

/// `GET /api/v1/vehicles/states`: the map's view of every visible vehicle.
pub(crate) async fn states(State(state): State<AppState>, auth: AuthUser) -> Result<Json<StateList>, ApiError> {
    let scope = VehicleScope::load(&state.store, &auth.user).await?;
    let vehicles = visible_vehicles(&state, &scope).await?;
    let mut current: HashMap<Vin, VehicleState> = match &scope {
        VehicleScope::All | VehicleScope::Unit(_) => {
            state.store.telemetry().states().await?.into_iter().map(|s| (s.vin.clone(), s)).collect()
        }
        VehicleScope::Car(_) => {
            let mut one = HashMap::new();
            for v in &vehicles {
                if let Some(s) = state.store.telemetry().state(v.vin.as_str()).await? {
                    one.insert(v.vin.clone(), s);
                }
            }
            one
        }
    };
    let now = Utc::now();
    let vehicles = vehicles
        .iter()
        .map(|v| VehicleStateView::new(v, current.remove(&v.vin).as_ref(), state.live.duty(&v.vin), now))
        .collect();
    Ok(Json(StateList { vehicles }))
}

/// A vehicle's MQTT account as issued (docs/mqtt.md): shown in this answer only.
#[derive(Serialize)]
pub(crate) struct MqttSecret {
    username: String,
    password: String,
}

/// `POST /api/v1/vehicles/{vin}/mqtt-secret` (admin): a fresh random secret for the vehicle's
/// MQTT account (username = VIN), replacing any earlier one. Only its Mosquitto password-file
/// line is stored, and the answer is never kept for an `Idempotency-Key` (a retry issues
/// another secret, which replaces this one). The embedded broker takes it at once, as it reads
/// the stored line at each login; Mosquitto once `fleetd mqtt-passwd` has rewritten its
/// password file and the broker has reloaded it.
pub(crate) async fn mqtt_secret(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(vin): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let vehicle = visible_vehicle(&state, &auth, &vin).await?;
    access::require(access::manages_registry(auth.user.role))?;
    let password = crate::mqtt_account::new_vehicle_secret();
    let line = crate::mqtt_account::mosquitto_password_line(vehicle.vin.as_str(), &password);
    state.store.mqtt_secrets().replace(&vehicle.vin, &line, Utc::now()).await?;
    tracing::info!(vehicle.vin = %vehicle.vin, user.id = auth.user.id, "MQTT secret issued");
    let mut response = Json(MqttSecret { username: vehicle.vin.as_str().to_owned(), password }).into_response();
    response.extensions_mut().insert(crate::idempotency::NotKept);
    Ok(response)
}

/// `GET /api/v1/vehicles/{vin}/track` query.
#[derive(Deserialize)]
pub(crate) struct TrackQuery {
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
}

/// One stored sample of a track: the sample's fields, and what its stored frame holds beyond
/// them (a GB/T 32960 report's other blocks; a JT/T 808 location's alarm and status words,
/// altitude and additional items).
#[derive(Serialize)]
pub(crate) struct TrackSample {
    #[serde(flatten)]
    sample: Sample,
    blocks: Option<serde_json::Value>,
}

impl From<Sample> for TrackSample {
    fn from(sample: Sample) -> Self {
        let blocks = sample.frame.as_deref().and_then(|frame| match sample.source {
            SampleSource::Jt808 => jt808_blocks(frame),
            _ => fleet_gbt32960::blocks_json(frame),
        });
        Self { sample, blocks }
    }
}

/// A JT/T 808 location body as JSON: the words and items a sample has no field for.
fn jt808_blocks(body: &[u8]) -> Option<serde_json::Value> {
    let location = fleet_jt808::Location::from_body(body).ok()?;
    let extras: Vec<_> = location
        .extras
        .iter()
        .map(|e| {
            let hex: String = e.value.iter().map(|b| format!("{b:02x}")).collect();
            serde_json::json!({ "id": e.id, "value_hex": hex })
        })
        .collect();
    Some(serde_json::json!({
        "jt808": {
            "alarm": location.alarm,
            "status": location.status,
            "altitude_m": location.altitude_m,
            "mileage_0_1km": location.mileage,
            "extras": extras,
        }
    }))
}

#[derive(Serialize)]
pub(crate) struct Track {
    vin: Vin,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// True when `limit` cut the track short: ask again from the last sample's `ts`.
    truncated: bool,
    samples: Vec<TrackSample>,
}

/// `GET /api/v1/vehicles/{vin}/track?from=&to=&limit=`: stored samples in time order.
pub(crate) async fn track(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(vin): ApiPath<String>,
    ApiQuery(q): ApiQuery<TrackQuery>,
) -> Result<Json<Track>, ApiError> {
    let (from, to, limit) = track_window(&q, Utc::now())?;
    let vehicle = visible_vehicle(&state, &auth, &vin).await?;
    let samples = state.store.telemetry().track(vehicle.vin.as_str(), from, to, limit).await?;
    let truncated = i64::try_from(samples.len()).unwrap_or(i64::MAX) >= limit;
    let samples = samples.into_iter().map(TrackSample::from).collect();
    Ok(Json(Track { vin: vehicle.vin, from, to, truncated, samples }))
}

/// The time window and limit of a track request: `to` defaults to now, `from` to two hours
/// before `to`.
fn track_window(q: &TrackQuery, now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>, i64), ApiError> {
    let to = q.to.as_deref().map(|s| parse_time("to", s)).transpose()?.unwrap_or(now);
    let from = q.from.as_deref().map(|s| parse_time("from", s)).transpose()?.unwrap_or(to - DEFAULT_TRACK_SPAN);
    if to < from {
        return Err(ApiError::BadRequest(format!("to ({to}) is before from ({from})")));
    }
    let limit = q.limit.unwrap_or(DEFAULT_TRACK_LIMIT);
    if !(1..=MAX_TRACK_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be 1 to {MAX_TRACK_LIMIT}")));
    }
    Ok((from, to, limit))
}

/// An RFC 3339 time from a query string. A `+` of the offset that arrived unencoded reads as
/// a space; it is taken back.
pub(crate) fn parse_time(field: &str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|e| if s.contains(' ') { DateTime::parse_from_rfc3339(&s.replace(' ', "+")) } else { Err(e) })
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            ApiError::BadRequest(format!("{field}: expected an RFC 3339 time such as 2026-05-01T08:00:00+08:00 ({e})"))
        })
}

/// The fields `PATCH /api/v1/vehicles/{vin}` may change.
const VEHICLE_WRITABLE: [&str; 14] = [
    "plate",
    "model",
    "seats",
    "battery_kwh",
    "consumption_kwh_per_100km",
    "unit_id",
    "terminal_phone",
    "insurance_until",
    "inspection_due",
    "maintenance_every_km",
    "maintenance_every_months",
    "last_maintenance_on",
    "last_maintenance_km",
    "in_maintenance",
];

/// `PATCH /api/v1/vehicles/{vin}` (admin): any registry or vehicle-file field; a car put
/// `in_maintenance` is not dispatched and shows status `maintenance`.
pub(crate) async fn patch(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(vin): ApiPath<String>,
    body: JsonBody,
) -> Result<Json<Vehicle>, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let current = state.store.vehicles().get(&vin).await?.ok_or(ApiError::NotFound("vehicle"))?;
    let merged = edit::merge(&current, body.parse()?, &VEHICLE_WRITABLE, &["vin", "retired"])?;
    let new: NewVehicle = edit::read(merged)?;
    let vin = new.validate()?;
    let vehicle = state.store.vehicles().update(&vin, &new).await.map_err(|e| match e {
        StorageError::MissingReference(_) => ApiError::validation("unit_id", "no unit has this id"),
        e => e.into(),
    })?;
    let vehicle = vehicle.ok_or(ApiError::NotFound("vehicle"))?;
    tracing::info!(vehicle.vin = %vehicle.vin, user.id = auth.user.id, "vehicle edited");
    state.bus.publish(fleet_bus::Event::VehicleChanged(std::sync::Arc::new(vehicle.clone())));
    Ok(Json(vehicle))
}

/// `POST /api/v1/vehicles/{vin}/retire` (admin): never dispatched again; its history and
/// statistics stay. A car holding an order (assigned, accepted or under way) → 409: the
/// dispatcher moves the order first.
pub(crate) async fn retire(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(vin): ApiPath<String>,
) -> Result<Json<Vehicle>, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let current = state.store.vehicles().get(&vin).await?.ok_or(ApiError::NotFound("vehicle"))?;
    let holding = state.store.orders().occupying().await?;
    if let Some(o) = holding.iter().find(|o| o.order.vin.as_ref() == Some(&current.vin)) {
        return Err(ApiError::Conflict(format!("the vehicle holds order {}; reassign or finish it first", o.order.id)));
    }
    let vehicle = state.store.vehicles().retire(&vin).await?.ok_or(ApiError::NotFound("vehicle"))?;
    tracing::info!(vehicle.vin = %vehicle.vin, user.id = auth.user.id, "vehicle retired");
    state.bus.publish(fleet_bus::Event::VehicleChanged(std::sync::Arc::new(vehicle.clone())));
    Ok(Json(vehicle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(from: Option<&str>, to: Option<&str>, limit: Option<i64>) -> TrackQuery {
        TrackQuery { from: from.map(Into::into), to: to.map(Into::into), limit }
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_track_defaults_to_the_last_two_hours_and_ten_thousand_samples() {
        let now = t("2026-05-01T10:00:00Z");
        assert_eq!(track_window(&q(None, None, None), now).unwrap(), (t("2026-05-01T08:00:00Z"), now, 10_000));
        let (from, to, _) = track_window(&q(None, Some("2026-05-01T08:00:00+08:00"), None), now).unwrap();
        assert_eq!((from, to), (t("2026-04-30T22:00:00Z"), t("2026-05-01T00:00:00Z")));
    }

    #[test]
    fn a_track_ending_before_it_starts_or_with_a_bad_limit_is_a_bad_request() {
        let now = Utc::now();
        let backwards = q(Some("2026-05-01T10:00:00Z"), Some("2026-05-01T09:00:00Z"), None);
        assert!(matches!(track_window(&backwards, now), Err(ApiError::BadRequest(_))));
        assert!(matches!(track_window(&q(None, None, Some(0)), now), Err(ApiError::BadRequest(_))));
        assert!(matches!(track_window(&q(None, None, Some(100_001)), now), Err(ApiError::BadRequest(_))));
        assert!(track_window(&q(None, None, Some(100_000)), now).is_ok());
    }

    #[test]
    fn times_parse_as_rfc3339_even_with_an_unencoded_plus() {
        assert_eq!(parse_time("from", "2026-05-01T08:00:00 08:00").unwrap(), t("2026-05-01T00:00:00Z"));
        assert_eq!(parse_time("from", "2026-05-01T00:00:00Z").unwrap(), t("2026-05-01T00:00:00Z"));
        let e = parse_time("from", "yesterday").unwrap_err();
        assert!(e.to_string().starts_with("from: "), "{e}");
    }

    #[test]
    fn a_car_that_never_reported_is_offline() {
        assert_eq!(status_at(None, Duty::default(), Utc::now()), VehicleStatus::Offline);
    }
}
