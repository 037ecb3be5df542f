//! `GET /api/v1/alarms/misuse?month=`: trips that look like private use of an official car
//! (公车私用) — movement without an order, outside working hours, or outside the service area —
//! listed for the auditor with a link to each trip's track.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use fleet_domain::Role;
use fleet_domain::trips::{MisuseReason, month_of};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::ApiQuery;

#[derive(Deserialize)]
pub(crate) struct MisuseQuery {
    month: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct MisuseAlarm {
    vin: String,
    plate: String,
    unit_id: Option<String>,
    start_ts: DateTime<Utc>,
    end_ts: DateTime<Utc>,
    distance_km: f64,
    reasons: Vec<MisuseReason>,
    order_id: Option<String>,
    /// The trip's samples: `GET` this with the same token.
    track: String,
}

#[derive(Serialize)]
pub(crate) struct MisuseList {
    month: String,
    alarms: Vec<MisuseAlarm>,
}

/// `GET /api/v1/alarms/misuse?month=YYYY-MM` (admin, dispatcher, auditor; a unit for its cars).
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(q): ApiQuery<MisuseQuery>,
) -> Result<Json<MisuseList>, ApiError> {
    let own_unit = match auth.user.role {
        Role::Driver => return Err(ApiError::Forbidden),
        Role::Unit => Some(auth.user.unit_id.clone().unwrap_or_default()),
        _ => None,
    };
    let month = match q.month {
        Some(m) => super::trips::parse_month(&m)?,
        None => month_of(Utc::now()),
    };
    let (start, end) = fleet_stats::monthly::month_bounds(&month)
        .ok_or_else(|| ApiError::BadRequest(format!("bad month {month:?}")))?;
    let alarms = fleet_stats::misuse::misuse_trips(&state.store, start, end, own_unit.as_deref())
        .await?
        .into_iter()
        .map(|m| {
            let (t, car) = (m.trip, m.vehicle);
            MisuseAlarm {
                vin: car.vin.to_string(),
                plate: car.plate.clone(),
                unit_id: car.unit_id.clone(),
                track: format!(
                    "/api/v1/vehicles/{}/track?from={}&to={}",
                    car.vin,
                    t.trip.start_ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    t.trip.end_ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                ),
                start_ts: t.trip.start_ts,
                end_ts: t.trip.end_ts,
                distance_km: t.trip.distance_km,
                reasons: m.reasons,
                order_id: t.order_id,
            }
        })
        .collect();
    Ok(Json(MisuseList { month, alarms }))
}
