//! Geofences (`/api/v1/geofences`), working hours (`/api/v1/working-hours`) and the alarms
//! they raise (`/api/v1/alarms`). Alarms are evaluated by the statistics deriver as samples
//! are stored, late ones too (`fleet_stats::deriver`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use fleet_domain::alarm::{Alarm, AlarmKind};
use fleet_domain::geofence::{Geofence, NewGeofence, WorkingHours};
use fleet_domain::{Role, User};
use fleet_storage::StorageError;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::access::{self, VehicleScope};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, JsonBody};

/// Alarms in one answer at most.
pub const MAX_ALARMS: i64 = 10_000;

/// Drawing and deleting geofences: admins and dispatchers (on the dispatcher's map).
fn edits_geofences(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Dispatcher)
}

#[derive(Serialize)]
pub(crate) struct GeofenceList {
    geofences: Vec<Geofence>,
}

/// Whether a caller sees a geofence: the whole fleet's, and a unit user its unit's and its
/// cars'; a driver none.
fn sees_fence(user: &User, cars: &[fleet_domain::Vehicle], f: &Geofence) -> bool {
    match user.role {
        Role::Admin | Role::Dispatcher | Role::Auditor => true,
        Role::Unit => match (&f.vin, &f.unit_id) {
            (Some(vin), _) => cars.iter().any(|c| c.vin.as_str() == vin),
            (None, Some(u)) => user.unit_id.as_deref() == Some(u.as_str()),
            (None, None) => true,
        },
        Role::Driver => false,
    }
}

/// `GET /api/v1/geofences`.
pub(crate) async fn list(State(state): State<AppState>, auth: AuthUser) -> Result<Json<GeofenceList>, ApiError> {
    access::require(auth.user.role != Role::Driver)?;
    let scope = VehicleScope::load(&state.store, &auth.user).await?;
    let cars = super::vehicles::visible_vehicles(&state, &scope).await?;
    let geofences =
        state.store.geofences().list().await?.into_iter().filter(|f| sees_fence(&auth.user, &cars, f)).collect();
    Ok(Json(GeofenceList { geofences }))
}

/// `POST /api/v1/geofences` (admin, dispatcher): a GeoJSON Polygon (closed rings), or a Point
/// with `radius_m`; for one car (`vin`), a unit's cars (`unit_id`) or the whole fleet.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    body: JsonBody,
) -> Result<impl IntoResponse, ApiError> {
    access::require(edits_geofences(auth.user.role))?;
    let new: NewGeofence = body.parse()?;
    new.validate()?;
    let fence = state.store.geofences().create(&new).await.map_err(|e| match e {
        StorageError::MissingReference(_) if new.vin.is_some() => {
            ApiError::validation("vin", "no vehicle has this VIN")
        }
        StorageError::MissingReference(_) => ApiError::validation("unit_id", "no unit has this id"),
        e => e.into(),
    })?;
    tracing::info!(
        geofence.id = fence.id,
        geofence.kind = fence.kind.as_str(),
        user.id = auth.user.id,
        "geofence drawn"
    );
    Ok((StatusCode::CREATED, super::location("geofences", &fence.id.to_string()), Json(fence)))
}

/// `DELETE /api/v1/geofences/{id}` (admin, dispatcher): its alarms stay.
pub(crate) async fn delete(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    access::require(edits_geofences(auth.user.role))?;
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("geofence"))?;
    if !state.store.geofences().delete(id).await? {
        return Err(ApiError::NotFound("geofence"));
    }
    tracing::info!(geofence.id = id, user.id = auth.user.id, "geofence deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/working-hours`.
pub(crate) async fn working_hours(
    State(state): State<AppState>,
    _auth: AuthUser,
) -> Result<Json<WorkingHours>, ApiError> {
    Ok(Json(state.store.settings().working_hours().await?))
}

/// `PUT /api/v1/working-hours` (admin): weekdays, hours, holidays and make-up working days.
pub(crate) async fn put_working_hours(
    State(state): State<AppState>,
    auth: AuthUser,
    body: JsonBody,
) -> Result<Json<WorkingHours>, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let mut hours: WorkingHours = body.parse()?;
    hours.validate()?;
    hours.weekdays.sort_unstable();
    hours.weekdays.dedup();
    hours.holidays.sort_unstable();
    hours.workdays.sort_unstable();
    state.store.settings().put_working_hours(&hours).await?;
    tracing::info!(user.id = auth.user.id, "working hours set");
    Ok(Json(hours))
}

#[derive(Deserialize)]
pub(crate) struct AlarmQuery {
    from: Option<String>,
    to: Option<String>,
    kind: Option<String>,
    /// Only those nobody has acknowledged (the alarm centre's unread ones).
    #[serde(default)]
    unacknowledged: bool,
}

#[derive(Serialize)]
pub(crate) struct AlarmList {
    alarms: Vec<Alarm>,
}

/// `GET /api/v1/alarms?from=&to=&kind=`: alarms timed in the window (default the last 24 h),
/// newest first: everything for admins, dispatchers and auditors, a unit's for its user, a
/// car's for its driver.
pub(crate) async fn alarms(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(q): ApiQuery<AlarmQuery>,
) -> Result<Json<AlarmList>, ApiError> {
    let (from, to) = super::time_window(q.from.as_deref(), q.to.as_deref(), chrono::Duration::hours(24))?;
    let kind = q
        .kind
        .as_deref()
        .map(|k| AlarmKind::parse(k).ok_or_else(|| ApiError::BadRequest(format!("no alarm kind {k:?}"))))
        .transpose()?;
    let scope = VehicleScope::load(&state.store, &auth.user).await?;
    let all = state.store.alarms().list(from, to, kind, q.unacknowledged, MAX_ALARMS).await?;
    let alarms = all.into_iter().filter(|a| sees_alarm(&scope, a)).collect();
    Ok(Json(AlarmList { alarms }))
}

/// Everything for admins, dispatchers and auditors; a unit's for its user; a car's for its driver.
fn sees_alarm(scope: &VehicleScope, a: &Alarm) -> bool {
    match scope {
        VehicleScope::All => true,
        VehicleScope::Unit(unit) => a.unit_id.as_deref() == Some(unit.as_str()),
        VehicleScope::Car(car) => a.vin.is_some() && a.vin == *car,
    }
}

/// `POST /api/v1/alarms/{id}/acknowledge`: marks an alarm the caller sees as dealt with
/// (admins, dispatchers, units; again: unchanged). Not for drivers or auditors.
pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Alarm>, ApiError> {
    let scope = VehicleScope::load(&state.store, &auth.user).await?;
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("alarm"))?;
    let alarm =
        state.store.alarms().get(id).await?.filter(|a| sees_alarm(&scope, a)).ok_or(ApiError::NotFound("alarm"))?;
    access::require(matches!(auth.user.role, Role::Admin | Role::Dispatcher | Role::Unit))?;
    if alarm.acknowledged_at.is_some() {
        return Ok(Json(alarm));
    }
    let alarm = state
        .store
        .alarms()
        .acknowledge(id, auth.user.id, chrono::Utc::now())
        .await?
        .ok_or(ApiError::NotFound("alarm"))?;
    tracing::info!(alarm.id = id, user.id = auth.user.id, "alarm acknowledged");
    Ok(Json(alarm))
}

/// Longest webhook URL.
const MAX_URL_LEN: usize = 2000;

#[derive(Deserialize)]
pub(crate) struct NewWebhook {
    url: String,
    kinds: Vec<String>,
    secret: String,
}

#[derive(Serialize)]
pub(crate) struct WebhookList {
    webhooks: Vec<fleet_storage::Webhook>,
}

/// `GET /api/v1/webhooks` (admin): without their secrets.
pub(crate) async fn webhooks(State(state): State<AppState>, auth: AuthUser) -> Result<Json<WebhookList>, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    Ok(Json(WebhookList { webhooks: state.store.webhooks().list().await? }))
}

/// `POST /api/v1/webhooks {url, kinds, secret}` (admin): every alarm of those kinds raised
/// from now on is POSTed to `url`, signed with `secret`.
pub(crate) async fn create_webhook(
    State(state): State<AppState>,
    auth: AuthUser,
    body: JsonBody,
) -> Result<impl IntoResponse, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let new: NewWebhook = body.parse()?;
    let url = http_url(&new.url)?;
    if new.kinds.is_empty() {
        return Err(ApiError::validation("kinds", "name at least one alarm kind"));
    }
    let kinds = new
        .kinds
        .iter()
        .map(|k| AlarmKind::parse(k).ok_or_else(|| ApiError::validation("kinds", format!("no alarm kind {k:?}"))))
        .collect::<Result<Vec<_>, _>>()?;
    if !(16..=256).contains(&new.secret.chars().count()) {
        return Err(ApiError::validation("secret", "16 to 256 characters"));
    }
    let hook = state.store.webhooks().create(url, &kinds, &new.secret).await?;
    tracing::info!(webhook.id = hook.id, user.id = auth.user.id, "webhook added");
    Ok((StatusCode::CREATED, super::location("webhooks", &hook.id.to_string()), Json(hook)))
}

/// An `http://` URL with a host, at most [`MAX_URL_LEN`] long.
fn http_url(url: &str) -> Result<&str, ApiError> {
    let bad = |why: &str| ApiError::validation("url", why.to_owned());
    if url.len() > MAX_URL_LEN || url.chars().any(char::is_whitespace) {
        return Err(bad("at most 2000 characters, no spaces"));
    }
    let rest = if url.starts_with("https://") {
        // The notifier's HTTP client has no TLS yet (docs/limits.md).
        return Err(bad(
            "https:// is not supported yet: give an http:// receiver on a trusted network, or a local TLS-terminating proxy",
        ));
    } else {
        url.strip_prefix("http://").ok_or_else(|| bad("must start with http://"))?
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') || host.contains('@') {
        return Err(bad("needs a host (and no credentials)"));
    }
    Ok(url)
}

/// `DELETE /api/v1/webhooks/{id}` (admin): it and its pending deliveries go.
pub(crate) async fn delete_webhook(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("webhook"))?;
    if !state.store.webhooks().delete(id).await? {
        return Err(ApiError::NotFound("webhook"));
    }
    tracing::info!(webhook.id = id, user.id = auth.user.id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}
